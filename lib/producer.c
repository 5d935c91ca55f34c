/*  producer.c - libzbridge's producer: PUT requests pipelined on one DEALER.

    This is zb-producer's engine (it was producer/main.c's), behind the public
    API of zbridge.h. Entries are queued in one buffer; a full batch (or
    zbridge_producer_submit) becomes one PUT request under the next correlation
    id of the window (window.c); up to options.window requests are in flight
    and replies are matched by correlation id, so nothing waits for one reply
    before sending the next request.

    Every entry carries an idempotency key (its own, or "<prefix>-<n>" added
    here). A request not answered within retry_ms is resent with the same
    entries and keys under a new correlation id, and entries answered
    InternalFailure or ThrottlingException (the broker's rate limit) are
    resent with a growing pause; the broker stores each key
    once, so a resend never makes a second event. Each request keeps its
    packed entries beside its window slot for that. A late reply to a
    correlation id that was superseded by a resend is ignored: an entry gets
    its result once, when the reply to its current request comes. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "curve.h"
#include "entryfile.h"
#include "event.h"
#include "lib.h"
#include "mpread.h"
#include "window.h"
#include "wire.h"

//  Request errors, stray replies and resends logged one by one; beyond, only counted
#define LOG_LIMIT           10
//  Upper bounds for the options: sanity, not protocol limits
#define MAX_BATCH           100000
#define MAX_WINDOW          100000
//  Pause before resending InternalFailure entries: doubled per attempt, capped
#define BACKOFF_MS          100
#define BACKOFF_MAX_MS      5000

//  A request in flight, beside its window slot: what to send again
typedef struct {
    uint64_t id;                //  current correlation id, 0: slot free
    msgpack_sbuffer body;       //  the PUT body: array header + entries
    size_t *offsets;            //  entry i is body [offsets [i], offsets [i + 1])
    uint64_t *tags;             //  entry i's tag
    size_t *sync;               //  entry i's place in sync_results + 1, 0: none
    size_t entries;
    unsigned sends;             //  times sent so far
    int64_t sent_ms;            //  last send (monotonic)
    int64_t due_ms;             //  0: waiting for the reply; else resend at
} request_t;

struct zbridge_producer_t {
    zbridge_producer_options_t options;
    char *endpoint;
    zsock_t *sock;
    void *handle;
    zb_window_t *inflight;
    request_t *requests;        //  per window slot
    char key_prefix [112];      //  generated idempotency keys: "<prefix>-<n>"
    uint64_t keys;

    //  Entries queued for the next request
    msgpack_sbuffer queue;
    size_t *qoffsets;           //  batch + 1
    uint64_t *qtags;
    size_t *qsync;
    size_t queued;

    msgpack_sbuffer scratch;    //  a partial resend, or an entry, being built
    msgpack_sbuffer entry;      //  a JSON entry, packed
    size_t *retry_scratch;      //  batch-sized scratch arrays for a reply
    size_t *size_scratch;
    uint64_t *tag_scratch;
    size_t *sync_scratch;
    int64_t next_check_ms;      //  earliest resend due (0: none)
    int64_t last_reply_ms;      //  last progress from the broker
    msgpack_zone zone;          //  reply bodies and entry checks, cleared per use

    //  zbridge_producer_put*: results written here instead of on_result
    zbridge_result_t *sync_results;
    size_t sync_pending;

    zbridge_producer_stats_t stats;
    char error [512];
};

//  Through the user's log callback, and into the object's error buffer (lib.h)
#define s_log(self, ...) zb_lib_log ((self)->options.log, (self)->options.arg, __VA_ARGS__)
#define s_error(self, code, ...) zb_lib_fail ((self)->error, sizeof (self)->error, (code), __VA_ARGS__)

//  "10 s" or "1500 ms"
static void
s_duration (int ms, char *out, size_t size)
{
    if (ms % 1000 == 0)
        snprintf (out, size, "%d s", ms / 1000);
    else
        snprintf (out, size, "%d ms", ms);
}

//  ---------------------------------------------------------------------------
//  Options

void
zbridge_producer_options_init_sized (zbridge_producer_options_t *options, size_t size)
{
    if (!options)
        return;
    zbridge_producer_options_t defaults = {
        .size = size < sizeof defaults? size: sizeof defaults,
        .endpoint = ZB_DEFAULT_INGEST,
        .batch = 10,
        .window = 16,
        .timeout_ms = 10000,
        .retry_ms = 1000,
        .retries = 10,
    };
    memcpy (options, &defaults, defaults.size);
}

//  ---------------------------------------------------------------------------
//  Results

//  len bytes of text into out (size > 0), cut to fit, NUL-terminated; a
//  bare memcpy: it runs for every result
static void
s_copy_text (char *out, size_t size, const char *text, size_t len)
{
    if (len > size - 1)
        len = size - 1;
    if (len)
        memcpy (out, text, len);
    out [len] = 0;
}

static void
s_result (zbridge_producer_t *self, request_t *request, size_t i, int status,
          const msgpack_object *id, bool duplicate, const char *code, size_t codelen,
          const char *message, size_t messagelen)
{
    zbridge_result_t local;
    zbridge_result_t *result = &local;
    size_t sync = request->sync [i];
    if (sync) {
        result = &self->sync_results [sync - 1];
        self->sync_pending--;
    }
    memset (result, 0, sizeof *result);
    result->tag = request->tags [i];
    result->status = status;
    result->duplicate = duplicate;
    if (id)
        s_copy_text (result->id, sizeof result->id, id->via.str.ptr, id->via.str.size);
    if (code)
        s_copy_text (result->code, sizeof result->code, code, codelen);
    if (message)
        s_copy_text (result->message, sizeof result->message, message, messagelen);
    if (status == ZBRIDGE_OK) {
        self->stats.acked++;
        if (duplicate)
            self->stats.duplicates++;
    }
    else
        self->stats.failed++;
    if (!sync && self->options.on_result)
        self->options.on_result (self->options.arg, result);
}

//  Every entry of request fails with status and text
static void
s_fail_request (zbridge_producer_t *self, request_t *request, int status, const char *code,
                const char *text)
{
    for (size_t i = 0; i < request->entries; i++)
        s_result (self, request, i, status, NULL, false, code, code? strlen (code): 0,
                  text, strlen (text));
}

static void
s_request_error (zbridge_producer_t *self, uint64_t id, const char *format, ...)
    ZB_LIB_PRINTF (3, 4);

static void
s_request_error (zbridge_producer_t *self, uint64_t id, const char *format, ...)
{
    self->stats.request_errors++;
    if (self->stats.request_errors > LOG_LIMIT)
        return;
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    s_log (self, "request %" PRIu64 " failed: %s", id, text);
}

static int64_t
s_backoff_ms (unsigned sends)
{
    int64_t wait = BACKOFF_MS;
    for (unsigned i = 1; i < sends && wait < BACKOFF_MAX_MS; i++)
        wait *= 2;
    return wait < BACKOFF_MAX_MS? wait: BACKOFF_MAX_MS;
}

static void
s_due (zbridge_producer_t *self, int64_t at)
{
    if (self->next_check_ms == 0 || at < self->next_check_ms)
        self->next_check_ms = at;
}

//  The request in slot is done: its slot is free again
static void
s_release (zbridge_producer_t *self, int slot)
{
    request_t *request = &self->requests [slot];
    zb_window_cancel (self->inflight, request->id);
    request->id = 0;
    request->due_ms = 0;
}

//  Keep only the entries keep [0 .. count-1] (indexes, ascending) of the
//  request in slot, for a resend after a pause; or give up on them when it
//  was sent too often already.
static void
s_retry_later (zbridge_producer_t *self, int slot, const size_t *keep, size_t count,
               const char *why)
{
    request_t *request = &self->requests [slot];
    if (request->sends > self->options.retries) {
        char text [256];
        snprintf (text, sizeof text, "%s; giving up on %zu entr%s after %u sends",
                  why, count, count == 1? "y": "ies", request->sends);
        s_request_error (self, request->id, "%s", text);
        for (size_t i = 0; i < count; i++)
            s_result (self, request, keep [i], ZBRIDGE_EBROKER, NULL, false, why, strlen (why),
                      text, strlen (text));
        s_release (self, slot);
        return;
    }
    if (count < request->entries) {
        //  A partial resend: a new body with just these entries
        msgpack_sbuffer_clear (&self->scratch);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &self->scratch, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, count);
        size_t *offsets = request->offsets;
        size_t at = self->scratch.size;
        for (size_t i = 0; i < count; i++) {
            size_t start = offsets [keep [i]], end = offsets [keep [i] + 1];
            msgpack_sbuffer_write (&self->scratch, request->body.data + start, end - start);
            self->tag_scratch [i] = request->tags [keep [i]];
            self->sync_scratch [i] = request->sync [keep [i]];
        }
        //  Offsets of the new body (entry sizes are unchanged)
        size_t *sizes = self->size_scratch;
        for (size_t i = 0; i < count; i++)
            sizes [i] = offsets [keep [i] + 1] - offsets [keep [i]];
        for (size_t i = 0; i < count; i++) {
            offsets [i] = at;
            at += sizes [i];
        }
        offsets [count] = at;
        memcpy (request->tags, self->tag_scratch, count * sizeof (uint64_t));
        memcpy (request->sync, self->sync_scratch, count * sizeof (size_t));
        msgpack_sbuffer tmp = request->body;
        request->body = self->scratch;
        self->scratch = tmp;
        request->entries = count;
    }
    uint8_t corr [ZB_CORRELATION_SIZE];
    request->id = zb_window_reissue (self->inflight, request->id, count, NULL, corr);
    request->due_ms = zclock_mono () + s_backoff_ms (request->sends);
    s_due (self, request->due_ms);
}

//  Account one reply: every entry of its request gets its result, or is kept
//  for a resend (InternalFailure).
static void
s_handle_reply (zbridge_producer_t *self)
{
    zb_reply_t reply;
    if (zb_wire_recv_reply (self->handle, &reply) != 0) {
        if (!zsys_interrupted)
            s_log (self, "malformed reply (not 3 frames) ignored");
        return;
    }
    uint64_t id;
    size_t entries;
    const size_t *lines;
    int slot = zb_window_find (self->inflight, zmq_msg_data (&reply.corr),
                               zmq_msg_size (&reply.corr), &id, &entries, &lines);
    if (slot < 0 || self->requests [slot].due_ms) {
        //  Unknown, answered already, or superseded by a resend: its entries
        //  are accounted with the reply to the current request
        self->stats.stray_replies++;
        if (self->stats.stray_replies <= LOG_LIMIT) {
            uint64_t stray;
            if (zb_window_decode (zmq_msg_data (&reply.corr), zmq_msg_size (&reply.corr), &stray))
                s_log (self, "reply for request %" PRIu64 " ignored (unknown, or resent since)",
                       stray);
            else
                s_log (self, "reply with a %zu-byte correlation id ignored (ours are 8 bytes)",
                       zmq_msg_size (&reply.corr));
        }
        zb_reply_close (&reply);
        return;
    }
    self->last_reply_ms = zclock_mono ();
    request_t *request = &self->requests [slot];

    msgpack_object body;
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    bool body_ok = msgpack_unpack ((const char *) zmq_msg_data (&reply.body),
                                   zmq_msg_size (&reply.body), &offset, &self->zone, &body)
                   == MSGPACK_UNPACK_SUCCESS
                && body.type == MSGPACK_OBJECT_MAP;
    size_t status_len = zmq_msg_size (&reply.status);
    const char *status = (const char *) zmq_msg_data (&reply.status);
    size_t *retry = self->retry_scratch;
    size_t nretry = 0;
    size_t throttled = 0;
    char text [320];

    if (zb_reply_is_ok (&reply)) {
        const msgpack_object *results = body_ok? zb_map_get (&body, "results"): NULL;
        if (!results || results->type != MSGPACK_OBJECT_ARRAY) {
            s_request_error (self, id, "OK reply without a results array; counting its %zu "
                             "entries as failed", entries);
            s_fail_request (self, request, ZBRIDGE_EPROTOCOL, NULL,
                            "OK reply without a results array");
        }
        else
        if (results->via.array.size != entries) {
            s_request_error (self, id, "reply has %" PRIu32 " results for %zu entries; "
                             "counting them as failed", results->via.array.size, entries);
            snprintf (text, sizeof text, "reply has %" PRIu32 " results for %zu entries",
                      results->via.array.size, entries);
            s_fail_request (self, request, ZBRIDGE_EPROTOCOL, NULL, text);
        }
        else
            for (size_t i = 0; i < entries; i++) {
                const msgpack_object *result = &results->via.array.ptr [i];
                const msgpack_object *event_id = zb_map_get (result, "id");
                const msgpack_object *duplicate = zb_map_get (result, "duplicate");
                if (event_id && event_id->type == MSGPACK_OBJECT_STR)
                    s_result (self, request, i, ZBRIDGE_OK, event_id,
                              duplicate && duplicate->type == MSGPACK_OBJECT_BOOLEAN
                              && duplicate->via.boolean, NULL, 0, NULL, 0);
                else
                if (zb_str_eq (zb_map_get (result, "code"), "InternalFailure"))
                    retry [nretry++] = i;
                else
                if (zb_str_eq (zb_map_get (result, "code"), "ThrottlingException")) {
                    //  Over the broker's rate limit: not stored, resent later
                    retry [nretry++] = i;
                    throttled++;
                }
                else {
                    const msgpack_object *code = zb_map_get (result, "code");
                    const msgpack_object *message = zb_map_get (result, "message");
                    bool has_code = code && code->type == MSGPACK_OBJECT_STR;
                    bool has_message = message && message->type == MSGPACK_OBJECT_STR;
                    s_result (self, request, i, ZBRIDGE_EREJECTED, NULL, false,
                              has_code? code->via.str.ptr: "unknown",
                              has_code? code->via.str.size: 7,
                              has_message? message->via.str.ptr: "no message",
                              has_message? message->via.str.size: 10);
                }
            }
    }
    else
    if (status_len == strlen (ZB_STATUS_ERROR)
    &&  memcmp (status, ZB_STATUS_ERROR, status_len) == 0) {
        const msgpack_object *code = body_ok? zb_map_get (&body, "code"): NULL;
        const msgpack_object *message = body_ok? zb_map_get (&body, "message"): NULL;
        bool named = code && code->type == MSGPACK_OBJECT_STR
                  && message && message->type == MSGPACK_OBJECT_STR;
        if (named && zb_str_eq (code, "InternalFailure"))
            for (size_t i = 0; i < entries; i++)
                retry [nretry++] = i;
        else
        if (named) {
            s_request_error (self, id, "%.*s: %.*s", (int) code->via.str.size,
                             code->via.str.ptr, (int) message->via.str.size,
                             message->via.str.ptr);
            for (size_t i = 0; i < entries; i++)
                s_result (self, request, i, ZBRIDGE_EBROKER, NULL, false,
                          code->via.str.ptr, code->via.str.size,
                          message->via.str.ptr, message->via.str.size);
        }
        else {
            s_request_error (self, id, "ERROR reply without a code and message");
            s_fail_request (self, request, ZBRIDGE_EPROTOCOL, NULL,
                            "ERROR reply without a code and message");
        }
    }
    else {
        s_request_error (self, id, "reply status is neither OK nor ERROR (%zu bytes)", status_len);
        s_fail_request (self, request, ZBRIDGE_EPROTOCOL, NULL,
                        "reply status is neither OK nor ERROR");
    }
    zb_reply_close (&reply);
    if (nretry)
        s_retry_later (self, slot, retry, nretry,
                       throttled == nretry? "ThrottlingException": "InternalFailure");
    else
        s_release (self, slot);
}

//  Read every reply that is already here, without waiting. Returns how many.
static size_t
s_read_replies (zbridge_producer_t *self)
{
    size_t count = 0;
    while (true) {
        int events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (self->handle, ZMQ_EVENTS, &events, &size) != 0
        ||  !(events & ZMQ_POLLIN))
            return count;
        s_handle_reply (self);
        count++;
    }
}

//  ---------------------------------------------------------------------------
//  Requests

//  Send the request in slot (again) under its current correlation id.
//  ZBRIDGE_OK, or the status of a failed send (self->error says why).
static int
s_send_slot (zbridge_producer_t *self, int slot)
{
    request_t *request = &self->requests [slot];
    uint8_t corr [ZB_CORRELATION_SIZE];
    for (int i = 0; i < ZB_CORRELATION_SIZE; i++)
        corr [i] = (uint8_t) (request->id >> (56 - 8 * i));
    if (zb_wire_send_request (self->handle, ZB_CMD_PUT, corr, sizeof corr,
                              request->body.data, request->body.size) != 0) {
        int error = zmq_errno ();
        char timeout [32];
        s_duration (self->options.timeout_ms, timeout, sizeof timeout);
        if (error == EAGAIN)
            return s_error (self, ZBRIDGE_ETIMEOUT, "no reply from %s within %s",
                            self->endpoint, timeout);
        if (error == EINTR)
            return s_error (self, ZBRIDGE_EINTR, "interrupted");
        return s_error (self, ZBRIDGE_EBROKER, "cannot send to %s: %s", self->endpoint,
                        zmq_strerror (error));
    }
    request->sends++;
    request->sent_ms = zclock_mono ();
    request->due_ms = 0;
    s_due (self, request->sent_ms + self->options.retry_ms);
    return ZBRIDGE_OK;
}

//  Every request in flight fails (the broker is silent): status and text
static void
s_fail_all (zbridge_producer_t *self, int status, const char *text)
{
    for (size_t slot = 0; slot < self->options.window; slot++) {
        request_t *request = &self->requests [slot];
        if (request->id) {
            s_fail_request (self, request, status, NULL, text);
            s_release (self, (int) slot);
        }
    }
}

//  Resend what is due: requests not answered within retry_ms, and entries
//  held back after InternalFailure whose pause is over.
static int
s_resend_due (zbridge_producer_t *self)
{
    int64_t now = zclock_mono ();
    if (self->next_check_ms == 0 || now < self->next_check_ms)
        return ZBRIDGE_OK;
    self->next_check_ms = 0;
    for (size_t slot = 0; slot < self->options.window && !zsys_interrupted; slot++) {
        request_t *request = &self->requests [slot];
        if (request->id == 0)
            continue;
        if (request->due_ms == 0) {
            //  Waiting for a reply
            int64_t deadline = request->sent_ms + self->options.retry_ms;
            if (now < deadline) {
                s_due (self, deadline);
                continue;
            }
            if (request->sends > self->options.retries) {
                char text [256];
                snprintf (text, sizeof text, "no reply within %d ms after %u sends",
                          self->options.retry_ms, request->sends);
                s_request_error (self, request->id, "%s; giving up on its %zu entries",
                                 text, request->entries);
                s_fail_request (self, request, ZBRIDGE_ETIMEOUT, NULL, text);
                s_release (self, (int) slot);
                continue;
            }
            uint64_t old = request->id;
            uint8_t corr [ZB_CORRELATION_SIZE];
            request->id = zb_window_reissue (self->inflight, old, request->entries, NULL, corr);
            if (++self->stats.resends <= LOG_LIMIT)
                s_log (self, "no reply to request %" PRIu64 " within %d ms: resending it as %"
                       PRIu64, old, self->options.retry_ms, request->id);
        }
        else
        if (now < request->due_ms) {
            s_due (self, request->due_ms);
            continue;
        }
        self->stats.retried += request->entries;
        int rc = s_send_slot (self, (int) slot);
        if (rc != ZBRIDGE_OK)
            return rc;
    }
    return ZBRIDGE_OK;
}

//  Requests in flight now
static size_t
s_requests (zbridge_producer_t *self)
{
    return zb_window_requests (self->inflight);
}

//  When the broker has been silent for timeout_ms with requests in flight,
//  fail them all: ZBRIDGE_ETIMEOUT. Else ZBRIDGE_OK.
static int
s_check_timeout (zbridge_producer_t *self, int64_t now)
{
    if (s_requests (self) == 0 || self->options.timeout_ms == 0
    ||  now < self->last_reply_ms + self->options.timeout_ms)
        return ZBRIDGE_OK;
    char timeout [32];
    s_duration (self->options.timeout_ms, timeout, sizeof timeout);
    s_error (self, ZBRIDGE_ETIMEOUT, "no reply from %s within %s", self->endpoint, timeout);
    s_fail_all (self, ZBRIDGE_ETIMEOUT, self->error);
    return ZBRIDGE_ETIMEOUT;
}

//  Wait up to wait_ms for a reply, bounded by the resends and the timeout
//  due. Handles what came; returns how many replies it handled, or -1 with
//  *status set when the broker timed out or a resend failed.
static int
s_wait (zbridge_producer_t *self, int64_t wait_ms, int *status)
{
    *status = s_resend_due (self);
    if (*status != ZBRIDGE_OK)
        return -1;
    size_t handled = s_read_replies (self);
    if (handled)
        return (int) handled;
    int64_t now = zclock_mono ();
    *status = s_check_timeout (self, now);
    if (*status != ZBRIDGE_OK)
        return -1;
    if (s_requests (self) > 0) {
        if (self->options.timeout_ms) {
            int64_t until = self->last_reply_ms + self->options.timeout_ms - now;
            if (wait_ms < 0 || until < wait_ms)
                wait_ms = until;
        }
        if (self->next_check_ms) {
            int64_t until = self->next_check_ms - now;
            if (until < 0)
                until = 0;
            if (wait_ms < 0 || until < wait_ms)
                wait_ms = until;
        }
    }
    //  Bounded, so that a signal landing just before the poll is seen soon
    if (wait_ms < 0 || wait_ms > 250)
        wait_ms = 250;
    zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
    zmq_poll (&item, 1, (long) wait_ms);     //  EINTR: the caller sees zsys_interrupted
    *status = s_resend_due (self);
    if (*status != ZBRIDGE_OK)
        return -1;
    handled = s_read_replies (self);
    *status = s_check_timeout (self, zclock_mono ());
    return *status == ZBRIDGE_OK? (int) handled: -1;
}

//  Send the queued entries as one request; waits for a free slot first.
static int
s_submit (zbridge_producer_t *self)
{
    if (self->queued == 0)
        return ZBRIDGE_OK;
    while (zb_window_full (self->inflight)) {
        if (zsys_interrupted)
            return s_error (self, ZBRIDGE_EINTR, "interrupted");
        int status;
        if (s_wait (self, -1, &status) < 0)
            return status;
    }
    if (s_requests (self) == 0)
        self->last_reply_ms = zclock_mono ();       //  the timeout runs from here
    size_t taken = self->queued;
    uint8_t corr [ZB_CORRELATION_SIZE];
    uint64_t id = zb_window_open (self->inflight, taken, NULL, corr);
    int slot = zb_window_slot (self->inflight, id);
    assert (slot >= 0);
    request_t *request = &self->requests [slot];
    request->id = id;
    request->entries = taken;
    request->sends = 0;
    msgpack_sbuffer_clear (&request->body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &request->body, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, taken);
    size_t header = request->body.size;
    msgpack_sbuffer_write (&request->body, self->queue.data, self->queue.size);
    for (size_t i = 0; i < taken; i++)
        request->offsets [i] = self->qoffsets [i] + header;
    request->offsets [taken] = request->body.size;
    memcpy (request->tags, self->qtags, taken * sizeof (uint64_t));
    memcpy (request->sync, self->qsync, taken * sizeof (size_t));
    self->queued = 0;
    msgpack_sbuffer_clear (&self->queue);
    int rc = s_send_slot (self, slot);
    if (rc != ZBRIDGE_OK) {
        s_fail_request (self, request, rc, NULL, self->error);
        s_release (self, slot);
        return rc;
    }
    self->stats.sent += taken;
    return ZBRIDGE_OK;
}

//  Length of the map header at data, 0 when data does not start with one
static size_t
s_map_header (const uint8_t *data, size_t size, uint32_t *count)
{
    if (size >= 1 && (data [0] & 0xf0) == 0x80) {
        *count = data [0] & 0x0f;
        return 1;
    }
    if (size >= 3 && data [0] == 0xde) {
        *count = ((uint32_t) data [1] << 8) | data [2];
        return 3;
    }
    if (size >= 5 && data [0] == 0xdf) {
        *count = ((uint32_t) data [1] << 24) | ((uint32_t) data [2] << 16)
               | ((uint32_t) data [3] << 8) | data [4];
        return 5;
    }
    return 0;
}

//  A packed entry, checked without allocating and without a tree
//  (common/mpread.h): true when data is exactly one msgpack map that
//  msgpack-c would unpack (its sizes plausible, no more than 32 containers
//  open, as msgpack-c's unpacker allows); *keyed tells whether one of the
//  map's own keys is the string "idempotency-key". (msgpack_unpack into a
//  zone and a lookup did the same: two thirds of zb-producer's instructions
//  per event went there.)
static bool
s_entry_scan (const uint8_t *data, size_t size, bool *keyed)
{
    static const char *const key [] = { "idempotency-key" };
    const uint8_t *p = data, *end = data + size, *value;
    if (size == 0 || !mpr_value (&p, end) || p != end
    ||  !((data [0] & 0xf0) == 0x80 || data [0] == 0xde || data [0] == 0xdf))
        return false;
    *keyed = mpr_fields (data, end, key, 1, &value) && value;
    return true;
}

//  Queue one packed entry; a full batch goes out.
static int
s_enqueue (zbridge_producer_t *self, const void *data, size_t size, uint64_t tag, size_t sync)
{
    //  One whole map, nothing after it
    bool keyed;
    if (!s_entry_scan ((const uint8_t *) data, size, &keyed))
        return s_error (self, ZBRIDGE_EENTRY, "entry is not one msgpack map");
    self->qoffsets [self->queued] = self->queue.size;
    if (keyed)
        msgpack_sbuffer_write (&self->queue, (const char *) data, size);
    else {
        //  The same map with one more key, "idempotency-key": "<prefix>-<n>"
        uint32_t count;
        size_t header = s_map_header ((const uint8_t *) data, size, &count);
        assert (header);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &self->queue, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, count + 1);
        msgpack_sbuffer_write (&self->queue, (const char *) data + header, size - header);
        char value [160];
        int len = snprintf (value, sizeof value, "%s-%" PRIu64, self->key_prefix, ++self->keys);
        msgpack_pack_str_with_body (&pk, "idempotency-key", 15);
        msgpack_pack_str_with_body (&pk, value, (size_t) len);
    }
    self->qtags [self->queued] = tag;
    self->qsync [self->queued] = sync;
    self->queued++;
    if (self->queued == self->options.batch)
        return s_submit (self);
    return ZBRIDGE_OK;
}

//  JSON text -> self->entry; ZBRIDGE_OK or EENTRY
static int
s_pack_json (zbridge_producer_t *self, const char *json, size_t len)
{
    msgpack_sbuffer_clear (&self->entry);
    char err [400];
    if (zb_entryfile_pack_text (json, len, &self->entry, err, sizeof err) != 0)
        return s_error (self, ZBRIDGE_EENTRY, "entry %s", err);
    return ZBRIDGE_OK;
}

//  ---------------------------------------------------------------------------
//  Public API

//  A prefix new for every producer: the clock and the pid, mixed
//  (splitmix64's finalizer).
static void
s_make_prefix (zbridge_producer_t *self)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec)
               ^ ((uint64_t) getpid () << 40) ^ (uint64_t) (uintptr_t) self;
    for (int round = 0; round < 2; round++) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    }
    snprintf (self->key_prefix, sizeof self->key_prefix, "%016" PRIx64, z);
}

static int
s_check_options (const zbridge_producer_options_t *o, zbridge_error_t *error)
{
    if (!o)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "options is NULL");
    if (o->size < offsetof (zbridge_producer_options_t, max_msg_size) + sizeof (o->max_msg_size)
    ||  o->size > sizeof *o)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "options were not set up with "
                             "zbridge_producer_options_init");
    if (!o->endpoint || !*o->endpoint)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "endpoint is empty");
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "batch must be 1 to %d, not %zu",
                             MAX_BATCH, o->batch);
    if (o->window < 1 || o->window > MAX_WINDOW)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "window must be 1 to %d, not %zu",
                             MAX_WINDOW, o->window);
    if (o->timeout_ms < 0)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "timeout_ms must be >= 0, not %d",
                             o->timeout_ms);
    if (o->retry_ms < 1)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "retry_ms must be >= 1, not %d",
                             o->retry_ms);
    if (o->key_prefix && (!*o->key_prefix || strlen (o->key_prefix) > 100))
        return zb_lib_error (error, ZBRIDGE_EINVAL, "key_prefix must be 1 to 100 bytes");
    //  The certificates and the frame size, for every socket made from now on
    //  (common/curve.h: process-wide)
    char reason [512];
    if (zb_curve_client_configure (o->curve_server, o->curve_cert, o->max_msg_size,
                                   reason, sizeof reason) != 0)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "%s", reason);
    return ZBRIDGE_OK;
}

zbridge_producer_t *
zbridge_producer_new (const zbridge_producer_options_t *options, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (s_check_options (options, error) != ZBRIDGE_OK)
        return NULL;
    zbridge_producer_t *self = (zbridge_producer_t *) calloc (1, sizeof (zbridge_producer_t));
    if (!self) {
        zb_lib_error (error, ZBRIDGE_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy (&self->options, options, options->size);
    zbridge_producer_options_t *o = &self->options;
    self->endpoint = strdup (o->endpoint);
    if (o->key_prefix)
        snprintf (self->key_prefix, sizeof self->key_prefix, "%s", o->key_prefix);
    else
        s_make_prefix (self);
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->endpoint || !self->sock) {
        zb_lib_error (error, ZBRIDGE_ENOMEM, "cannot create a DEALER socket: %s",
                      zmq_strerror (zmq_errno ()));
        zbridge_producer_destroy (&self);
        return NULL;
    }
    //  Room for the whole window both ways, so a send never waits on the queue
    int hwm = (int) (o->window * 2 > 1000? o->window * 2: 1000);
    zsock_set_sndhwm (self->sock, hwm);
    zsock_set_rcvhwm (self->sock, hwm);
    zsock_set_sndtimeo (self->sock, o->timeout_ms? o->timeout_ms: -1);
    zsock_set_linger (self->sock, 0);
    zb_curve_client_apply (self->sock);
    if (zsock_connect (self->sock, "%s", self->endpoint) != 0) {
        zb_lib_error (error, ZBRIDGE_EENDPOINT, "cannot connect to '%s': %s", self->endpoint,
                      zmq_strerror (zmq_errno ()));
        zbridge_producer_destroy (&self);
        return NULL;
    }
    self->handle = zsock_resolve (self->sock);
    self->inflight = zb_window_new (o->window, o->batch);
    self->requests = (request_t *) calloc (o->window, sizeof (request_t));
    self->qoffsets = (size_t *) calloc (o->batch + 1, sizeof (size_t));
    self->qtags = (uint64_t *) calloc (o->batch, sizeof (uint64_t));
    self->qsync = (size_t *) calloc (o->batch, sizeof (size_t));
    self->retry_scratch = (size_t *) calloc (o->batch, sizeof (size_t));
    self->size_scratch = (size_t *) calloc (o->batch, sizeof (size_t));
    self->tag_scratch = (uint64_t *) calloc (o->batch, sizeof (uint64_t));
    self->sync_scratch = (size_t *) calloc (o->batch, sizeof (size_t));
    bool ok = self->inflight && self->requests && self->qoffsets && self->qtags && self->qsync
           && self->retry_scratch && self->size_scratch && self->tag_scratch
           && self->sync_scratch;
    for (size_t i = 0; ok && i < o->window; i++) {
        request_t *request = &self->requests [i];
        msgpack_sbuffer_init (&request->body);
        //  Allocated once per slot: for a full batch
        request->offsets = (size_t *) malloc ((o->batch + 1) * sizeof (size_t));
        request->tags = (uint64_t *) malloc (o->batch * sizeof (uint64_t));
        request->sync = (size_t *) malloc (o->batch * sizeof (size_t));
        ok = request->offsets && request->tags && request->sync;
    }
    msgpack_sbuffer_init (&self->queue);
    msgpack_sbuffer_init (&self->scratch);
    msgpack_sbuffer_init (&self->entry);
    msgpack_zone_init (&self->zone, 4096);
    if (!ok) {
        zb_lib_error (error, ZBRIDGE_ENOMEM, "out of memory for a window of %zu requests of "
                      "%zu entries", o->window, o->batch);
        zbridge_producer_destroy (&self);
        return NULL;
    }
    return self;
}

void
zbridge_producer_destroy (zbridge_producer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zbridge_producer_t *self = *self_p;
    if (self->requests)
        for (size_t i = 0; i < self->options.window; i++) {
            msgpack_sbuffer_destroy (&self->requests [i].body);
            free (self->requests [i].offsets);
            free (self->requests [i].tags);
            free (self->requests [i].sync);
        }
    free (self->requests);
    if (self->inflight) {
        msgpack_sbuffer_destroy (&self->queue);
        msgpack_sbuffer_destroy (&self->scratch);
        msgpack_sbuffer_destroy (&self->entry);
        msgpack_zone_destroy (&self->zone);
    }
    free (self->qoffsets);
    free (self->qtags);
    free (self->qsync);
    free (self->retry_scratch);
    free (self->size_scratch);
    free (self->tag_scratch);
    free (self->sync_scratch);
    zb_window_destroy (&self->inflight);
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

int
zbridge_producer_send (zbridge_producer_t *self, const char *json, size_t len, uint64_t tag)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!json)
        return s_error (self, ZBRIDGE_EINVAL, "entry is NULL");
    int rc = s_pack_json (self, json, len? len: strlen (json));
    if (rc != ZBRIDGE_OK)
        return rc;
    return s_enqueue (self, self->entry.data, self->entry.size, tag, 0);
}

int
zbridge_producer_send_msgpack (zbridge_producer_t *self, const void *data, size_t size,
                               uint64_t tag)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!data)
        return s_error (self, ZBRIDGE_EINVAL, "entry is NULL");
    return s_enqueue (self, data, size, tag, 0);
}

int
zbridge_producer_submit (zbridge_producer_t *self)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    return s_submit (self);
}

int
zbridge_producer_poll (zbridge_producer_t *self, int timeout_ms)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    int status;
    if (timeout_ms >= 0) {
        s_wait (self, timeout_ms, &status);
        if (status == ZBRIDGE_OK && zsys_interrupted)
            status = s_error (self, ZBRIDGE_EINTR, "interrupted");
        return status;
    }
    while (s_requests (self) > 0) {
        if (zsys_interrupted)
            return s_error (self, ZBRIDGE_EINTR, "interrupted");
        if (s_wait (self, -1, &status) < 0)
            return status;
    }
    return ZBRIDGE_OK;
}

int
zbridge_producer_flush (zbridge_producer_t *self)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    int rc = s_submit (self);
    if (rc != ZBRIDGE_OK)
        return rc;
    return zbridge_producer_poll (self, -1);
}

int
zbridge_producer_put_batch (zbridge_producer_t *self, const char *const *entries, size_t count,
                            zbridge_result_t *results)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!entries && count)
        return s_error (self, ZBRIDGE_EINVAL, "entries is NULL");
    if (self->sync_results)
        return s_error (self, ZBRIDGE_EINVAL, "put called from a result callback");
    //  Every entry is packed first: an invalid one sends nothing
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    size_t *offsets = (size_t *) calloc (count + 1, sizeof (size_t));
    zbridge_result_t *own = results? NULL: (zbridge_result_t *) calloc (count? count: 1,
                                                                       sizeof *own);
    if (!offsets || (!results && !own)) {
        free (offsets);
        free (own);
        return s_error (self, ZBRIDGE_ENOMEM, "out of memory for %zu entries", count);
    }
    if (results)
        memset (results, 0, count * sizeof *results);
    int rc = ZBRIDGE_OK;
    for (size_t i = 0; i < count && rc == ZBRIDGE_OK; i++) {
        if (!entries [i]) {
            rc = s_error (self, ZBRIDGE_EINVAL, "entry %zu is NULL", i);
            break;
        }
        offsets [i] = packed.size;
        char err [400];
        if (zb_entryfile_pack_text (entries [i], strlen (entries [i]), &packed, err,
                                    sizeof err) != 0)
            rc = s_error (self, ZBRIDGE_EENTRY, "entry %zu %s", i, err);
    }
    offsets [count] = packed.size;
    self->sync_results = results? results: own;
    for (size_t i = 0; i < count && rc == ZBRIDGE_OK; i++) {
        self->sync_pending++;
        rc = s_enqueue (self, packed.data + offsets [i], offsets [i + 1] - offsets [i],
                        i, i + 1);
        if (rc == ZBRIDGE_EENTRY)
            self->sync_pending--;
    }
    if (rc == ZBRIDGE_OK)
        rc = s_submit (self);
    while (rc == ZBRIDGE_OK && self->sync_pending > 0) {
        if (zsys_interrupted)
            rc = s_error (self, ZBRIDGE_EINTR, "interrupted");
        else {
            int status;
            if (s_wait (self, -1, &status) < 0)
                rc = status;
        }
    }
    if (self->sync_pending > 0) {
        //  Interrupted or failed with entries of ours still queued or in
        //  flight: their results are no longer wanted here
        for (size_t slot = 0; slot < self->options.window; slot++)
            for (size_t i = 0; i < self->requests [slot].entries; i++)
                if (self->requests [slot].id)
                    self->requests [slot].sync [i] = 0;
        for (size_t i = 0; i < self->queued; i++)
            self->qsync [i] = 0;
        self->sync_pending = 0;
    }
    if (rc == ZBRIDGE_OK)
        for (size_t i = 0; i < count; i++)
            if (self->sync_results [i].status != ZBRIDGE_OK) {
                rc = ZBRIDGE_EREJECTED;
                s_error (self, rc, "entry %zu: %s%s%s", i, self->sync_results [i].code,
                         *self->sync_results [i].code? ": ": "",
                         self->sync_results [i].message);
                break;
            }
    self->sync_results = NULL;
    free (own);
    free (offsets);
    msgpack_sbuffer_destroy (&packed);
    return rc;
}

int
zbridge_producer_put (zbridge_producer_t *self, const char *json, zbridge_result_t *result)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!json)
        return s_error (self, ZBRIDGE_EINVAL, "entry is NULL");
    zbridge_result_t local = { .status = ZBRIDGE_OK };
    int rc = zbridge_producer_put_batch (self, &json, 1, &local);
    if (rc == ZBRIDGE_EREJECTED)
        rc = local.status;
    if (result)
        *result = local;
    return rc;
}

int
zbridge_producer_stats (zbridge_producer_t *self, zbridge_producer_stats_t *stats)
{
    if (!self || !stats)
        return ZBRIDGE_EINVAL;
    *stats = self->stats;
    stats->queued = self->queued;
    stats->in_flight = zb_window_entries (self->inflight);
    stats->requests = s_requests (self);
    return ZBRIDGE_OK;
}

const char *
zbridge_producer_error (zbridge_producer_t *self)
{
    return self? self->error: "self is NULL";
}
