/*  lib.h - what the files of libzbridge share (not installed): the error
    helper and the event a consumer hands out. */
#ifndef ZB_LIB_H_INCLUDED
#define ZB_LIB_H_INCLUDED

#include <msgpack.h>
#include "zb.h"
#include "zbridge.h"

#if defined (__GNUC__)
#   define ZB_LIB_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
#else
#   define ZB_LIB_PRINTF(f, a)
#endif

//  Fill error (when not NULL) with code and the message; returns code.
int zb_lib_error (zbridge_error_t *error, int code, const char *format, ...) ZB_LIB_PRINTF (3, 4);

//  A log line through the user's callback (nothing when log is NULL).
void zb_lib_log (void (*log) (void *arg, const char *line), void *arg, const char *format, ...)
    ZB_LIB_PRINTF (3, 4);

//  Format the last error of an object into its buffer; returns code.
int zb_lib_fail (char *buffer, size_t size, int code, const char *format, ...) ZB_LIB_PRINTF (4, 5);

//  Longest topic: "$rule/" + a rule name, or a detail-type
#define ZB_LIB_TOPIC_MAX    (ZB_MAX_DETAIL_TYPE + 8)

struct zbridge_event_t {
    char topic [ZB_LIB_TOPIC_MAX + 1];
    uint64_t seq;
    uint64_t topic_seq;
    const msgpack_object *object;   //  the decoded envelope; NULL: not unpacked (lazy)
    zb_str_t raw;                   //  its msgpack bytes
    char *json;                     //  made on demand, freed with the next event
    char json_error [256];
};

//  Point event at a delivery (topic copied, the rest viewed); frees its JSON.
void zb_lib_event_set (zbridge_event_t *event, zb_str_t topic, uint64_t seq,
                       uint64_t topic_seq, const msgpack_object *object, zb_str_t raw);
//  Free what the event holds (its JSON text).
void zb_lib_event_clear (zbridge_event_t *event);

#endif
