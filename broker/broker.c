/*  broker.c - the zbridge broker; see broker.h and docs/PROTOCOL.md.

    One thread, one zloop, three sockets:
    - ingest (ROUTER): PUT and PING. The hot path. Each pass drains up to
      ZB_DRAIN requests with non-blocking raw zmq_msg_t receives; the body is
      decoded once (decode.c: strings stay in the frame) into a msgpack zone
      that is cleared, not freed, between requests; events and replies are
      packed into buffers that are reused.
      Nothing here allocates per event (libzmq itself allocates the frames
      larger than 33 bytes that it queues).
    - publish (XPUB, verboser): every event goes out as [topic+NUL][header]
      [event]. Every subscribe and unsubscribe comes back to us, so we keep
      per-topic counts of exact subscriptions and a total of prefix ones.
    - control (ROUTER): PING and STATS.

    A bad request never stops the loop: every malformed message is read to
    its last frame and answered with an ERROR reply. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "event.h"
#include "rfc3339.h"
#include "topics.h"
#include "uuid.h"
#include "decode.h"
#include "wire.h"
#include "zb.h"

#define ZB_DRAIN            512         //  requests per ingest pass
#define ZB_SUB_DRAIN        1024        //  subscription messages per pass
#define ZB_PUBLISH_HWM      100000      //  events queued per subscriber
//  Replies queued per ingest client. A ROUTER silently drops the replies to a
//  client that has this many unread (it pipelines without reading): room for
//  deep windows, bounded memory (a 100-entry reply is about 7 KB).
#define ZB_REPLY_HWM        10000
#define ZB_CONTROL_MAXMSG   (1024 * 1024)
#define ZB_LINGER_MS        500         //  to flush replies and events at exit
#define ZB_ZONE_CHUNK       (256 * 1024)
#define ZB_LOG_BUDGET       20          //  log lines per second when not verbose
#define ZB_ERRLEN           256
#define ZB_ENDPOINT_MAX     256

//  Frames we keep of a request after the identity: [""]? command corr body
#define ZB_KEEP_FRAMES      4

typedef enum { SOCKET_INGEST, SOCKET_CONTROL } socket_kind_t;

typedef struct {
    zmq_msg_t identity;
    zmq_msg_t part [ZB_KEEP_FRAMES];
    size_t frames;                      //  after the identity, including extra ones
} request_t;

struct zb_broker_t {
    //  Configuration (strings owned)
    char *account;
    char *region;
    size_t account_len;
    size_t region_len;
    uint64_t max_entries;
    uint64_t max_event_size;
    bool verbose;

    zsock_t *ingest;
    zsock_t *publish;
    zsock_t *control;
    void *ingest_h;                     //  raw libzmq handles
    void *publish_h;
    void *control_h;
    char ingest_ep [ZB_ENDPOINT_MAX];
    char publish_ep [ZB_ENDPOINT_MAX];
    char control_ep [ZB_ENDPOINT_MAX];

    zloop_t *loop;
    zb_topics_t *topics;
    zb_uuidgen_t *uuidgen;

    //  Reused per request / per event
    msgpack_zone zone;
    bool zone_ready;
    msgpack_sbuffer event_buf;
    msgpack_packer event_pk;
    msgpack_sbuffer reply_buf;
    msgpack_packer reply_pk;

    //  Arrival time, formatted once per second
    time_t now;
    char now_text [ZB_TIME_MAX];
    size_t now_len;

    int64_t started;                    //  zclock_mono at start, ms

    //  Counters of docs/PROTOCOL.md STATS
    uint64_t seq;
    uint64_t requests;
    uint64_t requests_failed;
    uint64_t entries_in;
    uint64_t entries_rejected;
    uint64_t prefix_subscriptions;      //  held on the publish socket

    //  Logging: at most ZB_LOG_BUDGET lines a second unless verbose
    unsigned log_budget;
    uint64_t log_suppressed;
    uint64_t last_seq_logged;
    unsigned ticks;
};

//  --------------------------------------------------------------------------
//  Logging

static void
s_log (zb_broker_t *self, bool limited, const char *format, ...)
{
    if (limited && !self->verbose) {
        if (self->log_budget == 0) {
            self->log_suppressed++;
            return;
        }
        self->log_budget--;
    }
    char line [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    fprintf (stderr, "zb-broker: %s\n", line);
}

//  Printable copy of bytes from the wire, for log lines and error messages:
//  other bytes as \xNN, cut short with "..." when it does not fit.
static void
s_printable (const void *data, size_t len, char *out, size_t outsize)
{
    assert (outsize >= 8);
    const unsigned char *in = (const unsigned char *) data;
    size_t o = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        //  Keep room for one escape, "..." and the NUL
        if (o + 4 + 4 > outsize)
            break;
        if (in [i] >= 0x20 && in [i] < 0x7f && in [i] != '\\')
            out [o++] = (char) in [i];
        else
            o += (size_t) snprintf (out + o, outsize - o, "\\x%02x", in [i]);
    }
    if (i < len) {
        memcpy (out + o, "...", 3);
        o += 3;
    }
    out [o] = 0;
}

//  --------------------------------------------------------------------------
//  Packing helpers

static void
s_pack_cstr (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

static void
s_pack_bytes (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

static uint64_t
s_uptime_ms (zb_broker_t *self)
{
    return (uint64_t) (zclock_mono () - self->started);
}

//  --------------------------------------------------------------------------
//  Frames

//  Send one frame of a reply or an event. Once the first frame of a message
//  is queued, the others always fit (libzmq checks the high-water mark per
//  message), so only a signal can interrupt them: retry then.
static int
s_send (void *sock, const void *data, size_t size, int flags)
{
    while (zmq_send (sock, data, size, flags | ZMQ_DONTWAIT) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static int
s_send_msg (void *sock, zmq_msg_t *msg, int flags)
{
    while (zmq_msg_send (msg, sock, flags | ZMQ_DONTWAIT) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static void
s_request_init (request_t *req)
{
    zmq_msg_init (&req->identity);
    for (int i = 0; i < ZB_KEEP_FRAMES; i++)
        zmq_msg_init (&req->part [i]);
    req->frames = 0;
}

static void
s_request_close (request_t *req)
{
    zmq_msg_close (&req->identity);
    for (int i = 0; i < ZB_KEEP_FRAMES; i++)
        zmq_msg_close (&req->part [i]);
}

//  Receive one whole request without waiting. 1 when one was read (all its
//  frames consumed, however many), 0 when none is pending.
static int
s_request_recv (void *sock, request_t *req)
{
    s_request_init (req);
    if (zmq_msg_recv (&req->identity, sock, ZMQ_DONTWAIT) == -1)
        return 0;
    bool more = zmq_msg_more (&req->identity) != 0;
    zmq_msg_t extra;
    zmq_msg_init (&extra);
    while (more) {
        zmq_msg_t *part = req->frames < ZB_KEEP_FRAMES ? &req->part [req->frames] : &extra;
        //  The rest of a multipart message is already here: this never waits
        int rc;
        while ((rc = zmq_msg_recv (part, sock, 0)) == -1 && errno == EINTR)
            ;
        if (rc == -1)
            break;                      //  context terminated: nothing more to read
        more = zmq_msg_more (part) != 0;
        req->frames++;
    }
    zmq_msg_close (&extra);
    return 1;
}

//  Reply [identity][""]?[status][corr][body]. corr NULL: an empty frame.
static void
s_reply (zb_broker_t *self, void *sock, request_t *req, bool delimiter,
         const char *status, zmq_msg_t *corr, const void *body, size_t bodylen)
{
    //  A ROUTER drops a reply whose peer has gone (or whose queue is full)
    //  without telling us: nothing to do about either.
    if (s_send_msg (sock, &req->identity, ZMQ_SNDMORE) == -1) {
        s_log (self, true, "cannot reply: %s", zmq_strerror (errno));
        return;
    }
    if ((delimiter && s_send (sock, "", 0, ZMQ_SNDMORE) == -1)
    ||  s_send (sock, status, strlen (status), ZMQ_SNDMORE) == -1
    ||  (corr ? s_send_msg (sock, corr, ZMQ_SNDMORE) : s_send (sock, "", 0, ZMQ_SNDMORE)) == -1
    ||  s_send (sock, body, bodylen, 0) == -1)
        s_log (self, true, "cannot reply: %s", zmq_strerror (errno));
}

//  An ERROR reply: {"code": code, "message": message}.
static void
s_reply_error (zb_broker_t *self, void *sock, request_t *req, bool delimiter,
               zmq_msg_t *corr, const char *code, const char *format, ...)
{
    char message [ZB_ERRLEN];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);

    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (&self->reply_pk, 2);
    s_pack_cstr (&self->reply_pk, "code");
    s_pack_cstr (&self->reply_pk, code);
    s_pack_cstr (&self->reply_pk, "message");
    s_pack_cstr (&self->reply_pk, message);
    s_reply (self, sock, req, delimiter, ZB_STATUS_ERROR, corr,
             self->reply_buf.data, self->reply_buf.size);
    self->requests_failed++;
    s_log (self, true, "request failed: %s: %s", code, message);
}

//  --------------------------------------------------------------------------
//  PUT

//  The arrival time of an entry without its own, to the second.
static zb_str_t
s_now (zb_broker_t *self)
{
    time_t now = time (NULL);
    if (now != self->now || self->now_len == 0) {
        self->now = now;
        self->now_len = (size_t) zb_time_format (now, self->now_text);
    }
    return (zb_str_t) { self->now_text, self->now_len };
}

//  Publish the packed event in event_buf. 0 on success.
static int
s_publish (zb_broker_t *self, zb_topic_t *topic, uint64_t seq, uint64_t topic_seq)
{
    uint8_t header [ZB_HEADER_SIZE];
    zb_header_encode (header, seq, topic_seq);
    //  An XPUB never blocks or refuses a message: a subscriber whose queue is
    //  full just misses it (topic_seq shows it the gap).
    if (s_send (self->publish_h, topic->name, (size_t) topic->len + 1, ZMQ_SNDMORE) == -1)
        return -1;
    if (s_send (self->publish_h, header, sizeof header, ZMQ_SNDMORE) == -1
    ||  s_send (self->publish_h, self->event_buf.data, self->event_buf.size, 0) == -1) {
        //  Only a terminating context gets here; the message is incomplete
        s_log (self, false, "publish failed mid-message: %s", zmq_strerror (errno));
        return -1;
    }
    return 0;
}

//  Count a failed entry against its detail-type when that is a tracked topic.
static void
s_count_rejected (zb_broker_t *self, const msgpack_object *obj)
{
    const msgpack_object *dt = zb_map_get (obj, "detail-type");
    if (dt && dt->type == MSGPACK_OBJECT_STR) {
        zb_topic_t *topic = zb_topics_lookup (self->topics, dt->via.str.ptr, dt->via.str.size);
        if (topic)
            topic->rejected++;
    }
}

//  Process one entry and pack its result into the reply. Returns true when
//  the entry was published.
static bool
s_put_entry (zb_broker_t *self, const msgpack_object *obj)
{
    msgpack_packer *pk = &self->reply_pk;
    char err [ZB_ERRLEN] = "";
    zb_entry_t entry;
    zb_code_t code = zb_entry_parse (obj, &entry, err, sizeof err);

    char time_text [ZB_TIME_MAX];
    zb_str_t when = { NULL, 0 };
    if (code == ZB_OK) {
        if (entry.time.ptr) {
            int len = zb_time_normalize (entry.time.ptr, entry.time.len, time_text);
            if (len < 0) {
                code = ZB_E_INVALID_ARGUMENT;
                snprintf (err, sizeof err, "time: not an RFC 3339 date-time");
            }
            else
                when = (zb_str_t) { time_text, (size_t) len };
        }
        else
            when = s_now (self);
    }
    char id [ZB_UUID_LEN + 1];
    if (code == ZB_OK) {
        zb_uuidgen_next (self->uuidgen, id);
        zb_stamp_t stamp = {
            .id = { id, ZB_UUID_LEN },
            .time = when,
            .account = { self->account, self->account_len },
            .region = { self->region, self->region_len },
        };
        msgpack_sbuffer_clear (&self->event_buf);
        zb_event_pack (&self->event_pk, &entry, &stamp);
        if (self->event_buf.size > self->max_event_size) {
            code = ZB_E_ENTRY_TOO_LARGE;
            snprintf (err, sizeof err,
                      "the event would be %zu bytes packed, more than max-event-size (%" PRIu64 ")",
                      self->event_buf.size, self->max_event_size);
            //  Do not keep a buffer far bigger than any event we publish
            if (self->event_buf.alloc > 4 * self->max_event_size) {
                msgpack_sbuffer_destroy (&self->event_buf);
                msgpack_sbuffer_init (&self->event_buf);
            }
        }
    }
    zb_topic_t *topic = NULL;
    if (code == ZB_OK) {
        int rc = zb_topics_track (self->topics, entry.detail_type.ptr, entry.detail_type.len, &topic);
        if (rc == -1) {
            code = ZB_E_LIMIT_EXCEEDED;
            snprintf (err, sizeof err,
                      "detail-type: the broker already tracks its maximum of %zu detail-types (max-topics)",
                      zb_topics_tracked (self->topics));
        }
        else
        if (rc != 0) {
            code = ZB_E_INTERNAL;
            snprintf (err, sizeof err, "detail-type: out of memory adding the topic");
        }
    }
    if (code == ZB_OK) {
        uint64_t seq = self->seq + 1;
        uint64_t topic_seq = topic->seq + 1;
        if (s_publish (self, topic, seq, topic_seq) == 0) {
            self->seq = seq;
            topic->seq = topic_seq;
            topic->in++;
            topic->out++;
            self->entries_in++;
            msgpack_pack_map (pk, 2);
            s_pack_cstr (pk, "id");
            s_pack_bytes (pk, id, ZB_UUID_LEN);
            s_pack_cstr (pk, "seq");
            msgpack_pack_uint64 (pk, seq);
            return true;
        }
        code = ZB_E_INTERNAL;
        snprintf (err, sizeof err, "the event could not be published: %s", zmq_strerror (errno));
    }
    self->entries_rejected++;
    s_count_rejected (self, obj);
    msgpack_pack_map (pk, 2);
    s_pack_cstr (pk, "code");
    s_pack_cstr (pk, zb_code_name (code));
    s_pack_cstr (pk, "message");
    s_pack_cstr (pk, err [0] ? err : zb_code_name (code));
    return false;
}

static const char *
s_type_name (msgpack_object_type type)
{
    switch (type) {
        case MSGPACK_OBJECT_NIL: return "nil";
        case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return "a float";
        case MSGPACK_OBJECT_STR: return "a string";
        case MSGPACK_OBJECT_BIN: return "binary";
        case MSGPACK_OBJECT_EXT: return "an extension type";
        case MSGPACK_OBJECT_ARRAY: return "an array";
        case MSGPACK_OBJECT_MAP: return "a map";
    }
    return "unknown";
}

//  Decode a request body into the zone. 0 on success; otherwise -1 with the
//  code and message of the ERROR reply.
static int
s_decode_body (zb_broker_t *self, zmq_msg_t *body, msgpack_object *root,
               const char **code, char *err, size_t errlen)
{
    //  Containers deeper than an entry may nest (the body's array is one more
    //  level) are never looked at: zb_entry_parse fails the entry first
    int rc = zb_msgpack_decode (zmq_msg_data (body), zmq_msg_size (body), ZB_MAX_DEPTH + 2,
                                &self->zone, root, err, errlen);
    *code = rc == -2 ? "InternalFailure" : "MalformedRequest";
    return rc == 0 ? 0 : -1;
}

static void
s_put (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr, zmq_msg_t *body)
{
    char err [ZB_ERRLEN];
    const char *code;
    msgpack_object root;
    if (s_decode_body (self, body, &root, &code, err, sizeof err) == -1) {
        s_reply_error (self, sock, req, delimiter, corr, code, "%s", err);
        goto done;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY) {
        s_reply_error (self, sock, req, delimiter, corr, "MalformedRequest",
                       "PUT body must be an array of entries, not %s", s_type_name (root.type));
        goto done;
    }
    uint32_t count = root.via.array.size;
    if (count == 0) {
        s_reply_error (self, sock, req, delimiter, corr, "InvalidArgument", "PUT has no entries");
        goto done;
    }
    if (count > self->max_entries) {
        s_reply_error (self, sock, req, delimiter, corr, "TooManyEntries",
                       "PUT has %" PRIu32 " entries, more than max-entries (%" PRIu64 ")",
                       count, self->max_entries);
        goto done;
    }
    //  {"failed": N, "results": [...]}: N is known only at the end, so it is
    //  packed as a fixed-width uint32 and patched (any width is valid msgpack)
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (&self->reply_pk, 2);
    s_pack_cstr (&self->reply_pk, "failed");
    size_t failed_at = self->reply_buf.size;
    static const char uint32_zero [5] = { (char) 0xce, 0, 0, 0, 0 };
    msgpack_sbuffer_write (&self->reply_buf, uint32_zero, sizeof uint32_zero);
    s_pack_cstr (&self->reply_pk, "results");
    msgpack_pack_array (&self->reply_pk, count);

    uint32_t failed = 0;
    for (uint32_t i = 0; i < count; i++)
        if (!s_put_entry (self, &root.via.array.ptr [i]))
            failed++;

    uint8_t *patch = (uint8_t *) self->reply_buf.data + failed_at + 1;
    patch [0] = (uint8_t) (failed >> 24);
    patch [1] = (uint8_t) (failed >> 16);
    patch [2] = (uint8_t) (failed >> 8);
    patch [3] = (uint8_t) failed;
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr,
             self->reply_buf.data, self->reply_buf.size);
    self->requests++;
done:
    msgpack_zone_clear (&self->zone);
}

//  --------------------------------------------------------------------------
//  PING, STATS

static void
s_ping (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr)
{
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (pk, 4);
    s_pack_cstr (pk, "status");
    s_pack_cstr (pk, "ok");
    s_pack_cstr (pk, "version");
    s_pack_cstr (pk, ZB_VERSION);
    s_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    s_pack_cstr (pk, "uptime_ms");
    msgpack_pack_uint64 (pk, s_uptime_ms (self));
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr,
             self->reply_buf.data, self->reply_buf.size);
}

static void
s_stats (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr)
{
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (pk, 9);
    s_pack_cstr (pk, "version");
    s_pack_cstr (pk, ZB_VERSION);
    s_pack_cstr (pk, "uptime_ms");
    msgpack_pack_uint64 (pk, s_uptime_ms (self));
    s_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    s_pack_cstr (pk, "requests");
    msgpack_pack_uint64 (pk, self->requests);
    s_pack_cstr (pk, "requests_failed");
    msgpack_pack_uint64 (pk, self->requests_failed);
    s_pack_cstr (pk, "entries_in");
    msgpack_pack_uint64 (pk, self->entries_in);
    s_pack_cstr (pk, "entries_rejected");
    msgpack_pack_uint64 (pk, self->entries_rejected);
    s_pack_cstr (pk, "prefix_subscriptions");
    msgpack_pack_uint64 (pk, self->prefix_subscriptions);
    s_pack_cstr (pk, "topics");
    size_t size = zb_topics_size (self->topics);
    msgpack_pack_map (pk, size);
    for (size_t i = 0; i < size; i++) {
        zb_topic_t *topic = zb_topics_at (self->topics, i);
        s_pack_bytes (pk, topic->name, topic->len);
        msgpack_pack_map (pk, 5);
        s_pack_cstr (pk, "in");
        msgpack_pack_uint64 (pk, topic->in);
        s_pack_cstr (pk, "out");
        msgpack_pack_uint64 (pk, topic->out);
        s_pack_cstr (pk, "rejected");
        msgpack_pack_uint64 (pk, topic->rejected);
        s_pack_cstr (pk, "subscribers");
        msgpack_pack_uint64 (pk, topic->subscribers);
        s_pack_cstr (pk, "seq");
        msgpack_pack_uint64 (pk, topic->seq);
    }
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr,
             self->reply_buf.data, self->reply_buf.size);
    //  A reply for thousands of topics is big: do not keep that much around
    if (self->reply_buf.alloc > 1024 * 1024) {
        msgpack_sbuffer_destroy (&self->reply_buf);
        msgpack_sbuffer_init (&self->reply_buf);
    }
}

//  --------------------------------------------------------------------------
//  Request dispatch

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t len = strlen (text);
    return zmq_msg_size (frame) == len && memcmp (zmq_msg_data (frame), text, len) == 0;
}

static void
s_handle (zb_broker_t *self, void *sock, request_t *req, socket_kind_t kind)
{
    //  A leading empty frame is the delimiter a REQ socket adds: echo it
    bool delimiter = req->frames > 0 && zmq_msg_size (&req->part [0]) == 0;
    size_t first = delimiter ? 1 : 0;
    size_t frames = req->frames - first;
    if (frames != 3) {
        s_reply_error (self, sock, req, delimiter, NULL, "MalformedRequest",
                       "expected 3 frames (command, correlation id, body)%s, got %zu",
                       delimiter ? " after the empty delimiter" : "", frames);
        return;
    }
    zmq_msg_t *command = &req->part [first];
    zmq_msg_t *corr = &req->part [first + 1];
    zmq_msg_t *body = &req->part [first + 2];
    if (zmq_msg_size (corr) > ZB_MAX_CORRELATION) {
        s_reply_error (self, sock, req, delimiter, NULL, "MalformedRequest",
                       "correlation id is %zu bytes, more than %d",
                       zmq_msg_size (corr), ZB_MAX_CORRELATION);
        return;
    }
    if (kind == SOCKET_INGEST && s_frame_is (command, ZB_CMD_PUT)) {
        s_put (self, sock, req, delimiter, corr, body);
        return;
    }
    bool ping = s_frame_is (command, ZB_CMD_PING);
    bool stats = kind == SOCKET_CONTROL && s_frame_is (command, ZB_CMD_STATS);
    if (!ping && !stats) {
        char name [64];
        s_printable (zmq_msg_data (command), zmq_msg_size (command), name, sizeof name);
        s_reply_error (self, sock, req, delimiter, corr, "UnknownCommand",
                       "unknown command '%s' (the %s socket serves %s)", name,
                       kind == SOCKET_INGEST ? "ingest" : "control",
                       kind == SOCKET_INGEST ? "PUT and PING" : "PING and STATS");
        return;
    }
    //  The body of PING and STATS is ignored, but must be empty or msgpack
    if (zmq_msg_size (body) > 0) {
        char err [ZB_ERRLEN];
        if (zb_msgpack_validate (zmq_msg_data (body), zmq_msg_size (body), err, sizeof err) == -1) {
            s_reply_error (self, sock, req, delimiter, corr, "MalformedRequest", "%s", err);
            return;
        }
    }
    if (ping)
        s_ping (self, sock, req, delimiter, corr);
    else
        s_stats (self, sock, req, delimiter, corr);
}

static int
s_serve (zb_broker_t *self, void *sock, socket_kind_t kind)
{
    request_t req;
    for (int n = 0; n < ZB_DRAIN; n++) {
        if (!s_request_recv (sock, &req)) {
            s_request_close (&req);
            break;
        }
        if (req.frames == 0)
            //  [identity] alone: a ROUTER never delivers this; nothing to answer
            s_log (self, true, "dropped a message without frames");
        else
            s_handle (self, sock, &req, kind);
        s_request_close (&req);
    }
    return 0;
}

static int
s_on_ingest (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    return s_serve (self, self->ingest_h, SOCKET_INGEST);
}

static int
s_on_control (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    return s_serve (self, self->control_h, SOCKET_CONTROL);
}

//  --------------------------------------------------------------------------
//  Subscriptions

//  True when bytes could be a detail-type, i.e. a topic the broker publishes.
static bool
s_valid_detail_type (const char *name, size_t len)
{
    return len > 0 && len <= ZB_MAX_DETAIL_TYPE
        && name [0] != ZB_RESERVED_PREFIX
        && zb_utf8_valid (name, len)
        && !zb_utf8_has_control (name, len);
}

static void
s_on_subscription (zb_broker_t *self, const uint8_t *data, size_t size)
{
    if (size == 0 || data [0] > 1) {
        char text [64];
        s_printable (data, size, text, sizeof text);
        s_log (self, true, "ignored a message from a subscriber: '%s'", text);
        return;
    }
    bool subscribe = data [0] == 1;
    const char *topic = (const char *) data + 1;
    size_t len = size - 1;
    char name [ZB_MAX_DETAIL_TYPE * 4 + 8];
    if (len > 0 && topic [len - 1] == 0) {
        //  Exact: detail-type + NUL
        len--;
        s_printable (topic, len, name, sizeof name);
        if (!s_valid_detail_type (topic, len)) {
            s_log (self, true, "%s '%s\\x00': not a detail-type, not counted",
                   subscribe ? "subscription to" : "unsubscription from", name);
            return;
        }
        int64_t count = subscribe ? zb_topics_subscribe (self->topics, topic, len)
                                  : zb_topics_unsubscribe (self->topics, topic, len);
        if (count < 0) {
            if (subscribe)
                s_log (self, true, "subscription to '%s' not counted: topic table full", name);
            return;
        }
        s_log (self, true, "%s %s (%" PRId64 " subscriber%s)",
               subscribe ? "subscribe" : "unsubscribe", name, count, count == 1 ? "" : "s");
    }
    else {
        //  Prefix (or everything, when empty): counted only in total
        if (subscribe)
            self->prefix_subscriptions++;
        else
        if (self->prefix_subscriptions > 0)
            self->prefix_subscriptions--;
        s_printable (topic, len, name, sizeof name);
        s_log (self, true, "%s prefix '%s' (%" PRIu64 " prefix subscription%s)",
               subscribe ? "subscribe" : "unsubscribe", name, self->prefix_subscriptions,
               self->prefix_subscriptions == 1 ? "" : "s");
    }
}

static int
s_on_publish (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    for (int n = 0; n < ZB_SUB_DRAIN; n++) {
        if (zmq_msg_recv (&msg, self->publish_h, ZMQ_DONTWAIT) == -1)
            break;
        if (zmq_msg_more (&msg)) {
            //  A multipart message from an XSUB is no subscription: skip it all
            do {
                if (zmq_msg_recv (&msg, self->publish_h, 0) == -1 && errno != EINTR)
                    break;
            } while (zmq_msg_more (&msg));
            s_log (self, true, "ignored a multipart message from a subscriber");
            continue;
        }
        s_on_subscription (self, (const uint8_t *) zmq_msg_data (&msg), zmq_msg_size (&msg));
    }
    zmq_msg_close (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Timer: log budget, and periodic counters when verbose

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zb_broker_t *self = (zb_broker_t *) arg;
    if (self->log_suppressed) {
        fprintf (stderr, "zb-broker: (%" PRIu64 " more log lines suppressed)\n",
                 self->log_suppressed);
        self->log_suppressed = 0;
    }
    self->log_budget = ZB_LOG_BUDGET;
    if (self->verbose && ++self->ticks % 10 == 0 && self->seq != self->last_seq_logged) {
        s_log (self, false, "seq=%" PRIu64 " requests=%" PRIu64 " requests_failed=%" PRIu64
               " entries_in=%" PRIu64 " entries_rejected=%" PRIu64 " topics=%zu",
               self->seq, self->requests, self->requests_failed, self->entries_in,
               self->entries_rejected, zb_topics_size (self->topics));
        self->last_seq_logged = self->seq;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Construction

zb_broker_config_t
zb_broker_config_default (void)
{
    return (zb_broker_config_t) {
        .ingest = ZB_DEFAULT_INGEST,
        .publish = ZB_DEFAULT_PUBLISH,
        .control = ZB_DEFAULT_CONTROL,
        .account = ZB_DEFAULT_ACCOUNT,
        .region = ZB_DEFAULT_REGION,
        .max_entries = ZB_DEFAULT_MAX_ENTRIES,
        .max_event_size = ZB_DEFAULT_MAX_EVENT,
        .max_topics = 10000,
        .verbose = false,
    };
}

//  Create a socket, set its options and bind it; the bound endpoint goes to ep.
static zsock_t *
s_socket (int type, const char *name, const char *endpoint, int64_t maxmsgsize, int sndhwm,
          char *ep, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        snprintf (err, errlen, "cannot create the %s socket: %s", name, zmq_strerror (zmq_errno ()));
        return NULL;
    }
    void *handle = zsock_resolve (sock);
    int linger = ZB_LINGER_MS;
    zmq_setsockopt (handle, ZMQ_LINGER, &linger, sizeof linger);
    if (maxmsgsize > 0)
        zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &maxmsgsize, sizeof maxmsgsize);
    if (sndhwm > 0)
        zmq_setsockopt (handle, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (type == ZMQ_XPUB) {
        int on = 1;
        zmq_setsockopt (handle, ZMQ_XPUB_VERBOSER, &on, sizeof on);
    }
    if (zmq_bind (handle, endpoint) == -1) {
        snprintf (err, errlen, "cannot bind %s to %s: %s", name, endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    size_t size = ZB_ENDPOINT_MAX;
    if (zmq_getsockopt (handle, ZMQ_LAST_ENDPOINT, ep, &size) == -1)
        snprintf (ep, ZB_ENDPOINT_MAX, "%s", endpoint);
    return sock;
}

zb_broker_t *
zb_broker_new (const zb_broker_config_t *config, char *err, size_t errlen)
{
    assert (config);
    assert (config->ingest && config->publish && config->control);
    assert (config->account && config->region);
    assert (config->max_entries > 0 && config->max_event_size > 0 && config->max_topics > 0);
    assert (err && errlen > 0);

    zb_broker_t *self = (zb_broker_t *) zmalloc (sizeof (zb_broker_t));
    assert (self);
    self->account = strdup (config->account);
    self->region = strdup (config->region);
    self->max_entries = config->max_entries;
    self->max_event_size = config->max_event_size;
    self->verbose = config->verbose;
    self->log_budget = ZB_LOG_BUDGET;
    self->started = zclock_mono ();
    self->topics = zb_topics_new ((size_t) config->max_topics);
    self->uuidgen = zb_uuidgen_new ();
    self->zone_ready = msgpack_zone_init (&self->zone, ZB_ZONE_CHUNK);
    msgpack_sbuffer_init (&self->event_buf);
    msgpack_packer_init (&self->event_pk, &self->event_buf, msgpack_sbuffer_write);
    msgpack_sbuffer_init (&self->reply_buf);
    msgpack_packer_init (&self->reply_pk, &self->reply_buf, msgpack_sbuffer_write);
    if (!self->account || !self->region || !self->topics || !self->uuidgen || !self->zone_ready) {
        snprintf (err, errlen, "out of memory");
        zb_broker_destroy (&self);
        return NULL;
    }
    self->account_len = strlen (self->account);
    self->region_len = strlen (self->region);

    int64_t ingest_max = (int64_t) (config->max_entries * config->max_event_size) + 65536;
    self->ingest = s_socket (ZMQ_ROUTER, "ingest", config->ingest, ingest_max, ZB_REPLY_HWM,
                             self->ingest_ep, err, errlen);
    if (self->ingest)
        self->publish = s_socket (ZMQ_XPUB, "publish", config->publish, 0, ZB_PUBLISH_HWM,
                                  self->publish_ep, err, errlen);
    if (self->publish)
        self->control = s_socket (ZMQ_ROUTER, "control", config->control, ZB_CONTROL_MAXMSG, 0,
                                  self->control_ep, err, errlen);
    if (!self->control) {
        zb_broker_destroy (&self);
        return NULL;
    }
    self->ingest_h = zsock_resolve (self->ingest);
    self->publish_h = zsock_resolve (self->publish);
    self->control_h = zsock_resolve (self->control);

    self->loop = zloop_new ();
    assert (self->loop);
    if (zloop_reader (self->loop, self->ingest, s_on_ingest, self) == -1
    ||  zloop_reader (self->loop, self->control, s_on_control, self) == -1
    ||  zloop_reader (self->loop, self->publish, s_on_publish, self) == -1
    ||  zloop_timer (self->loop, 1000, 0, s_on_timer, self) == -1) {
        snprintf (err, errlen, "cannot set up the event loop");
        zb_broker_destroy (&self);
        return NULL;
    }
    return self;
}

void
zb_broker_destroy (zb_broker_t **self_p)
{
    assert (self_p);
    zb_broker_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    zsock_destroy (&self->ingest);
    zsock_destroy (&self->publish);
    zsock_destroy (&self->control);
    zb_topics_destroy (&self->topics);
    zb_uuidgen_destroy (&self->uuidgen);
    if (self->zone_ready)
        msgpack_zone_destroy (&self->zone);
    msgpack_sbuffer_destroy (&self->event_buf);
    msgpack_sbuffer_destroy (&self->reply_buf);
    free (self->account);
    free (self->region);
    free (self);
    *self_p = NULL;
}

const char *
zb_broker_ingest_endpoint (zb_broker_t *self)
{
    assert (self);
    return self->ingest_ep;
}

const char *
zb_broker_publish_endpoint (zb_broker_t *self)
{
    assert (self);
    return self->publish_ep;
}

const char *
zb_broker_control_endpoint (zb_broker_t *self)
{
    assert (self);
    return self->control_ep;
}

int
zb_broker_run (zb_broker_t *self)
{
    assert (self);
    int rc = zloop_start (self->loop);
    //  zloop_start returns -1 when interrupted by a signal, 0 when a handler
    //  asked to stop (ours never do), and also -1 on a poll failure
    int result = zsys_interrupted ? 0 : (rc == 0 ? 0 : -1);
    s_log (self, false, "stopping (seq=%" PRIu64 " requests=%" PRIu64 " requests_failed=%" PRIu64
           " entries_in=%" PRIu64 " entries_rejected=%" PRIu64 " topics=%zu prefix_subscriptions=%" PRIu64 ")",
           self->seq, self->requests, self->requests_failed, self->entries_in,
           self->entries_rejected, zb_topics_size (self->topics), self->prefix_subscriptions);
    return result;
}
