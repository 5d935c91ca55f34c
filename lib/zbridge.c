/*  zbridge.c - libzbridge's small pieces: version, status texts, pattern
    check, and the event accessors. */

#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "codec.h"
#include "event.h"
#include "lib.h"
#include "pattern.h"
#include "rfc3339.h"

const char *
zbridge_version (void)
{
    return ZB_VERSION;
}

bool
zbridge_interrupted (void)
{
    return zsys_interrupted != 0;
}

const char *
zbridge_strerror (int status)
{
    switch (status) {
        case ZBRIDGE_OK:            return "success";
        case ZBRIDGE_EINVAL:        return "bad argument";
        case ZBRIDGE_EENDPOINT:     return "bad endpoint";
        case ZBRIDGE_EPATTERN:      return "bad event pattern";
        case ZBRIDGE_EENTRY:        return "bad entry";
        case ZBRIDGE_ETIMEOUT:      return "timed out";
        case ZBRIDGE_EUNREACHABLE:  return "broker unreachable";
        case ZBRIDGE_EREJECTED:     return "entry rejected by the broker";
        case ZBRIDGE_EBROKER:       return "request failed at the broker";
        case ZBRIDGE_EPROTOCOL:     return "unreadable reply";
        case ZBRIDGE_ECHECKPOINT:   return "checkpoint unusable";
        case ZBRIDGE_EINTR:         return "interrupted";
        case ZBRIDGE_ENOMEM:        return "out of memory";
        case ZBRIDGE_ENOTSUP:       return "not supported";
        case ZBRIDGE_EOUTPUT:       return "output failed";
        default:                    return "unknown status";
    }
}

int
zb_lib_error (zbridge_error_t *error, int code, const char *format, ...)
{
    if (error) {
        error->code = code;
        va_list args;
        va_start (args, format);
        vsnprintf (error->message, sizeof error->message, format, args);
        va_end (args);
    }
    return code;
}

void
zb_lib_log (void (*log) (void *arg, const char *line), void *arg, const char *format, ...)
{
    if (!log)
        return;
    char line [1536];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    log (arg, line);
}

int
zb_lib_fail (char *buffer, size_t size, int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (buffer, size, format, args);
    va_end (args);
    return code;
}

int
zbridge_pattern_check (const char *pattern, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (!pattern)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "pattern is NULL");
    zb_patterns_t *patterns = zb_patterns_new ();
    if (!patterns)
        return zb_lib_error (error, ZBRIDGE_ENOMEM, "out of memory");
    char err [400];
    int rc = ZBRIDGE_OK;
    if (zb_patterns_add (patterns, "pattern", pattern, strlen (pattern), err, sizeof err) != 0)
        rc = zb_lib_error (error, ZBRIDGE_EPATTERN, "not a valid event pattern: %s", err);
    zb_patterns_destroy (&patterns);
    return rc;
}

void
zb_lib_event_set (zbridge_event_t *event, zb_str_t topic, uint64_t seq, uint64_t topic_seq,
                  const msgpack_object *object, zb_str_t raw)
{
    zb_lib_event_clear (event);
    size_t len = topic.len < ZB_LIB_TOPIC_MAX? topic.len: ZB_LIB_TOPIC_MAX;
    memcpy (event->topic, topic.ptr, len);
    event->topic [len] = '\0';
    event->seq = seq;
    event->topic_seq = topic_seq;
    event->object = object;
    event->raw = raw;
}

void
zb_lib_event_clear (zbridge_event_t *event)
{
    free (event->json);
    event->json = NULL;
    event->json_error [0] = '\0';
}

const char *
zbridge_event_topic (const zbridge_event_t *event)
{
    return event? event->topic: NULL;
}

uint64_t
zbridge_event_seq (const zbridge_event_t *event)
{
    return event? event->seq: 0;
}

uint64_t
zbridge_event_topic_seq (const zbridge_event_t *event)
{
    return event? event->topic_seq: 0;
}

const void *
zbridge_event_msgpack (const zbridge_event_t *event, size_t *size)
{
    if (size)
        *size = event? event->raw.len: 0;
    return event? event->raw.ptr: NULL;
}

const char *
zbridge_event_json (zbridge_event_t *event, zbridge_error_t *error)
{
    if (!event) {
        zb_lib_error (error, ZBRIDGE_EINVAL, "event is NULL");
        return NULL;
    }
    if (!event->json && !event->json_error [0]) {
        if (event->object)
            event->json = zb_json_text_from_msgpack (event->object, event->json_error,
                                                     sizeof event->json_error);
        else {
            //  Delivered checked but not unpacked: the objects, for the text
            msgpack_zone zone;
            msgpack_object object;
            size_t offset = 0;
            if (!msgpack_zone_init (&zone, 4096))
                snprintf (event->json_error, sizeof event->json_error, "out of memory");
            else {
                if (msgpack_unpack (event->raw.ptr, event->raw.len, &offset, &zone, &object)
                    == MSGPACK_UNPACK_SUCCESS)
                    event->json = zb_json_text_from_msgpack (&object, event->json_error,
                                                             sizeof event->json_error);
                else
                    snprintf (event->json_error, sizeof event->json_error,
                              "the event could not be unpacked (out of memory)");
                msgpack_zone_destroy (&zone);
            }
        }
    }
    if (!event->json)
        zb_lib_error (error, ZBRIDGE_EENTRY, "%s", event->json_error);
    return event->json;
}

int
zbridge_check_from (const char *from, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (!from)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "from is NULL");
    uint64_t seq;
    char time [ZB_TIME_MAX];
    if (strcmp (from, "latest") == 0 || strcmp (from, "earliest") == 0
    ||  (strncmp (from, "seq:", 4) == 0 && zb_cli_parse_u64 (from + 4, &seq) && seq > 0)
    ||  (strncmp (from, "time:", 5) == 0
         && zb_time_normalize (from + 5, strlen (from + 5), time) >= 0))
        return ZBRIDGE_OK;
    return zb_lib_error (error, ZBRIDGE_EINVAL, "from wants latest, earliest, seq:N (N >= 1) or "
                         "time:RFC3339 (e.g. time:2026-11-26T17:15:01Z), not '%.80s'", from);
}

int
zbridge_check_rule_name (const char *name, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (name && zb_rule_name_ok (name, strlen (name)))
        return ZBRIDGE_OK;
    return zb_lib_error (error, ZBRIDGE_EINVAL, "a rule name is 1 to %d characters of A-Z a-z "
                         "0-9 . - _, not '%.80s'", ZB_RULE_NAME_MAX, name? name: "(null)");
}

int
zbridge_check_checkpoint_name (const char *name, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (name && zb_checkpoint_name_valid (name))
        return ZBRIDGE_OK;
    return zb_lib_error (error, ZBRIDGE_EINVAL, "a checkpoint name is 1 to %d characters of "
                         "A-Z a-z 0-9 . _ - (not starting with '.'), not '%.120s'",
                         ZB_CHECKPOINT_NAME_MAX, name? name: "(null)");
}
