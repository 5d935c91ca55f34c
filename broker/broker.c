/*  broker.c - the zbridge broker; see broker.h and docs/PROTOCOL.md.

    One thread, one zloop, three sockets and the journal (journal.h):
    - ingest (ROUTER): PUT and PING. The hot path, in passes (group commit):
      1. drain up to ZB_DRAIN requests (at most ZB_PASS_BYTES) with
         non-blocking raw zmq_msg_t receives, keeping their frames;
      2. decode each body once (decode.c: strings stay in the frame) into a
         msgpack zone that is cleared, not freed, between requests; validate
         every entry; answer a repeated idempotency key (of this pass or in
         the journal) with the original event; stamp id and time, number the
         events provisionally and pack them one after another into the pass
         buffer;
      3. ONE zb_journal_append for the whole pass (one transaction: one fsync
         with --sync commit). If it fails, the numbers roll back (none is used
         up) and every event of the pass is answered InternalFailure,
         unpublished;
      4. publish every stored event, then send every reply in request order
         (so replies to one client keep the order of its requests).
      The per-pass arrays grow to the biggest pass and are reused: nothing
      here allocates per event (libzmq itself allocates the frames larger
      than 33 bytes that it queues; the journal copies what it stores).
    - publish (XPUB, verboser): every event goes out as [topic+NUL][header]
      [event], and every --heartbeat-ms a $heartbeat. Every subscribe and
      unsubscribe comes back to us, so we keep per-topic counts of exact
      subscriptions and a total of prefix ones.
    - control (ROUTER, mandatory routing): PING, STATS, JOURNAL and the replay
      sessions of replay.c (REPLAY, CREDIT, CANCEL), served from a 1 ms timer
      that exists only while some session has credit and events to send.
    A 1 s timer prunes the journal (retention, dedup window), a bounded number
    of records at a time, and closes replay sessions idle for too long.

    A bad request never stops the loop: every malformed message is read to
    its last frame and answered with an ERROR reply. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "broker.h"
#include "event.h"
#include "journal.h"
#include "metrics.h"
#include "peers.h"
#include "replay.h"
#include "rules.h"
#include "rfc3339.h"
#include "topics.h"
#include "uuid.h"
#include "decode.h"
#include "edge.h"
#include "wake.h"
#include "wire.h"
#include "zb.h"

#define ZB_DRAIN            512         //  requests per ingest pass
#define ZB_SUB_DRAIN        1024        //  subscription messages per pass
//  A topic's events of one request go out in messages of at most this many
//  events and bytes (but always at least one event)
#define ZB_BATCH_EVENTS     64
#define ZB_BATCH_BYTES      (32 * 1024)
//  Replies queued per ingest client. A ROUTER silently drops the replies to a
//  client that has this many unread (it pipelines without reading): room for
//  deep windows, bounded memory (a 100-entry reply is about 7 KB).
#define ZB_REPLY_HWM        10000
#define ZB_LINGER_MS        500         //  to flush replies and events at exit
#define ZB_ZONE_CHUNK       (256 * 1024)
#define ZB_LOG_BUDGET       20          //  log lines per second when not verbose
#define ZB_ERRLEN           256
#define ZB_ENDPOINT_MAX     256
#define ZB_PASS_BYTES       (8 * 1024 * 1024)   //  request frames per ingest pass
#define ZB_PASS_KEEP        (64 * 1024 * 1024)  //  bigger pass buffers are freed after the pass
//  Messages queued per control client: room for the largest credit window
//  (100,000 events). The control ROUTER is mandatory: beyond this a send says
//  EAGAIN and the replay waits for the client to read, instead of a silent
//  drop; so this only bounds the memory one client can make us hold.
#define ZB_CONTROL_HWM      (ZB_REPLAY_MAX_CREDIT + 1000)
#define ZB_REPLAY_SESSIONS  1000
#define ZB_REPLAY_IDLE_MS   60000       //  a session without credit this long is closed
#define ZB_PRUNE_BATCH      5000        //  records per zb_journal_prune call
#define ZB_PRUNE_MS         20          //  time spent pruning per tick, at most
#define ZB_AUTH_TICK_MS     250         //  the allow directory is looked at this often

//  Frames we keep of a request after the identity: [""]? command corr body
#define ZB_KEEP_FRAMES      4

//  Control commands of docs/PROTOCOL.md "Reliability"
#define ZB_CMD_JOURNAL      "JOURNAL"
#define ZB_CMD_REPLAY       "REPLAY"
#define ZB_CMD_CREDIT       "CREDIT"
#define ZB_CMD_CANCEL       "CANCEL"
#define ZB_HEARTBEAT_TOPIC  "$heartbeat"
#define ZB_CMD_RULE_PUT     "RULE-PUT"
#define ZB_CMD_RULE_GET     "RULE-GET"
#define ZB_CMD_RULE_LIST    "RULE-LIST"
#define ZB_CMD_RULE_DELETE  "RULE-DELETE"

typedef struct {
    zmq_msg_t identity;
    zmq_msg_t part [ZB_KEEP_FRAMES];
    size_t frames;                      //  after the identity, including extra ones
} request_t;

//  A request of the ingest pass, kept (frames and all) until its reply is sent.
typedef enum { PASS_NONE, PASS_PUT, PASS_PING, PASS_ERROR } pass_kind_t;

typedef struct {
    request_t req;
    pass_kind_t kind;
    bool delimiter;
    zmq_msg_t *corr;                    //  NULL: the reply's correlation frame is empty
    const char *code;                   //  PASS_ERROR: code (a literal), message in text
    size_t text_off, text_len;
    size_t first, count;                //  PASS_PUT: its results [first, first + count)
} pass_req_t;

//  The outcome of one entry of the pass.
typedef enum { RESULT_STORED, RESULT_DUPLICATE, RESULT_FAILED } result_kind_t;

#define ZB_NO_RECORD SIZE_MAX

typedef struct {
    result_kind_t kind;
    zb_code_t code;                     //  FAILED
    size_t record;                      //  STORED, DUPLICATE of this pass: its record;
                                        //  DUPLICATE of the journal: ZB_NO_RECORD
    size_t text_off, text_len;          //  FAILED: message; DUPLICATE of the journal: id
    uint64_t seq;                       //  DUPLICATE of the journal
} result_t;

//  What the pass keeps of an event besides its zb_record_t.
typedef struct {
    zb_topic_t *topic;
    size_t event_off;                   //  in the pass buffer (event_buf)
    char id [ZB_UUID_LEN + 1];
    bool derived;                       //  a rule's delivery of the entry before it
    uint32_t next;                      //  the next record of its topic in the request
    bool request_start;                 //  the first record of a PUT request
} pass_record_t;

//  The pass's idempotency keys: open addressing, a slot is in use when its
//  gen is the pass's (so a new pass starts empty without clearing anything).
typedef struct {
    uint64_t hash;
    uint32_t record;                    //  record index + 1
    uint32_t gen;
} keyslot_t;

//  An entry of a PUT that zb_entry_parse_packed accepted, and its size.
typedef struct {
    zb_entry_t entry;
    size_t used;
    uint64_t key_hash;          //  zb_journal_key_hash of its idempotency key
} fast_entry_t;

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
    zb_edge_t ingest_edge;          //  serves ingest (edge.h: only s_on_ingest touches it)
    zsock_t *publish;
    zsock_t *control;
    void *ingest_h;                     //  raw libzmq handles
    void *publish_h;
    void *control_h;
    char ingest_ep [ZB_ENDPOINT_MAX];
    char publish_ep [ZB_ENDPOINT_MAX];
    char control_ep [ZB_ENDPOINT_MAX];

    zloop_t *loop;
    bool wake;                          //  zb_wake_install succeeded
    zb_auth_t *auth;                    //  CURVE, authorization, rate limit (auth.h)
    zb_client_t client;                 //  the sender of the request being handled
    int64_t max_subscription;
    int publish_hwm;                    //  ZMQ_SNDHWM of the publish socket
    uint64_t publish_rebuilds;          //  publish socket re-created (keys removed)
    zb_topics_t *topics;
    zb_topic_t *topic_cache [16];       //  recently used tracked topics (s_pass_topic)
    zb_uuidgen_t *uuidgen;

    //  Reused per request / per event
    msgpack_zone zone;
    bool zone_ready;
    msgpack_sbuffer event_buf;          //  the pass's events, packed one after another
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
    uint64_t duplicates;                //  entries answered "duplicate": true
    uint64_t journal_failures;          //  passes the journal could not store
    uint64_t ingest_bytes;              //  request frames read on the ingest socket
    uint64_t replay_requests;           //  REPLAY sessions opened

    //  Who is connected (peers.h) and the metrics endpoint (metrics.h, or NULL)
    zb_peers_t *peers;
    zb_metrics_t *metrics;
    unsigned maintenance_ticks;

    //  The journal, replay sessions, heartbeats
    zb_journal_t *journal;
    zb_replay_t *replay;
    char *journal_where;                //  data directory or "memory"
    uint64_t retain_hours;
    uint64_t retain_mb;
    bool dedup;                         //  dedup window > 0: keys are looked up
    int replay_timer;                   //  zloop timer id while sessions are served, or 0
    msgpack_sbuffer hb_buf;
    msgpack_packer hb_pk;

    //  The ingest pass: arrays grown to the biggest pass, then reused
    pass_req_t *pass;                   //  ZB_DRAIN requests
    result_t *results;
    size_t nresults;
    size_t results_cap;
    zb_record_t *records;               //  what goes to zb_journal_append
    pass_record_t *precs;
    uint32_t *order;                    //  record indices in seq order (s_pass_order)
    zb_record_t *jrecords;              //  the records in that order, when it differs
    uint32_t pass_gen;                  //  stamps topics seen in this pass
    size_t nrecords;
    size_t records_cap;
    char *text;                         //  messages of failed entries and requests
    size_t text_size;
    size_t text_cap;
    keyslot_t *keyslots;
    size_t keymask;                     //  slots - 1 (0: none yet)
    size_t nkeys;
    uint32_t keygen;
    uint64_t pass_ns;                   //  arrival time of the pass's events
    const char *body;                   //  the PUT body being processed
    size_t body_size;
    fast_entry_t *fast;                 //  its entries read by the fast path (s_pass_fast)
    size_t fast_cap;
    bool pass_failed;                   //  the journal refused the pass
    size_t restore_skipped;             //  journal topics beyond max-topics
    char pass_error [ZB_ERRLEN + 64];   //  then the message for its events

    //  Rules (rules.h): matched against every accepted event
    zb_rules_t *rules;
    msgpack_zone rule_zone;             //  the packed event, unpacked for matching
    bool rule_zone_ready;
    msgpack_sbuffer rule_buf;           //  transformer outputs of one event
    msgpack_packer rule_pk;
    zb_rule_t **matched;                //  max_rules
    size_t *rule_off;                   //  per match: output in rule_buf, or SIZE_MAX
    size_t *rule_len;
    size_t max_rules;
    uint64_t rule_failures;             //  deliveries a transformer could not make

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
s_reply_error_text (zb_broker_t *self, void *sock, request_t *req, bool delimiter,
                    zmq_msg_t *corr, const char *code, const char *message, size_t len)
{
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (&self->reply_pk, 2);
    zb_pack_cstr (&self->reply_pk, "code");
    zb_pack_cstr (&self->reply_pk, code);
    zb_pack_cstr (&self->reply_pk, "message");
    msgpack_pack_str (&self->reply_pk, len);
    msgpack_pack_str_body (&self->reply_pk, message, len);
    s_reply (self, sock, req, delimiter, ZB_STATUS_ERROR, corr,
             self->reply_buf.data, self->reply_buf.size);
    self->requests_failed++;
    s_log (self, true, "request failed: %s: %.*s", code, (int) len, message);
}

static void
s_reply_error (zb_broker_t *self, void *sock, request_t *req, bool delimiter,
               zmq_msg_t *corr, const char *code, const char *format, ...)
{
    char message [ZB_ERRLEN];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    s_reply_error_text (self, sock, req, delimiter, corr, code, message, strlen (message));
}

//  --------------------------------------------------------------------------
//  PUT

//  Publish the records order [k, k + n) of the pass, all of one topic with
//  consecutive seq and topic_seq, as one message (protocol version 2): [topic
//  + NUL] [header: first seq, first topic_seq, count] [the events back to back].
//  0 on success.
static int
s_publish (zb_broker_t *self, const uint32_t *order, size_t n)
{
    const zb_record_t *first = &self->records [order [0]];
    zb_topic_t *topic = self->precs [order [0]].topic;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += self->records [order [i]].event.len;
    zmq_msg_t body;
    if (zmq_msg_init_size (&body, bytes) == -1) {
        s_log (self, true, "cannot publish %zu events: %s", n, zmq_strerror (errno));
        return -1;
    }
    char *out = (char *) zmq_msg_data (&body);
    for (size_t i = 0; i < n; i++) {
        const zb_record_t *rec = &self->records [order [i]];
        memcpy (out, rec->event.ptr, rec->event.len);
        out += rec->event.len;
    }
    uint8_t header [ZB_BATCH_HEADER_SIZE];
    size_t header_size = zb_header_encode_batch (header, first->seq, first->topic_seq,
                                                 (uint32_t) n);
    //  An XPUB never blocks or refuses a message: a subscriber whose queue is
    //  full just misses it (topic_seq shows it the gap; the journal has it).
    if (s_send (self->publish_h, topic->name, (size_t) topic->len + 1, ZMQ_SNDMORE) == -1) {
        zmq_msg_close (&body);
        return -1;
    }
    if (s_send (self->publish_h, header, header_size, ZMQ_SNDMORE) == -1
    ||  s_send_msg (self->publish_h, &body, 0) == -1) {
        //  Only a terminating context gets here; the message is incomplete
        s_log (self, false, "publish failed mid-message: %s", zmq_strerror (errno));
        zmq_msg_close (&body);
        return -1;
    }
    return 0;
}

//  Count a failed entry against its detail-type (NULL: it has none that is a
//  string) when that is a tracked topic.
static void
s_count_rejected (zb_broker_t *self, const zb_str_t *detail_type)
{
    if (detail_type) {
        zb_topic_t *topic = zb_topics_lookup (self->topics, detail_type->ptr, detail_type->len);
        if (topic)
            topic->rejected++;
    }
}

//  The detail-type an entry's tree names, as s_count_rejected wants it: the
//  first "detail-type" key's value when that is a string, else NULL.
static const zb_str_t *
s_tree_detail_type (const msgpack_object *obj, zb_str_t *out)
{
    const msgpack_object *dt = zb_map_get (obj, "detail-type");
    if (!dt || dt->type != MSGPACK_OBJECT_STR)
        return NULL;
    *out = (zb_str_t) { dt->via.str.ptr, dt->via.str.size };
    return out;
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

//  --------------------------------------------------------------------------
//  The ingest pass: its buffers

//  Copy bytes into the pass's text buffer; *off says where. false when out
//  of memory (the caller then falls back on a fixed text).
static bool
s_text_add (zb_broker_t *self, const char *data, size_t len, size_t *off)
{
    if (self->text_size + len > self->text_cap) {
        size_t cap = self->text_cap ? self->text_cap : 4096;
        while (cap < self->text_size + len)
            cap *= 2;
        char *text = (char *) realloc (self->text, cap);
        if (!text)
            return false;
        self->text = text;
        self->text_cap = cap;
    }
    memcpy (self->text + self->text_size, data, len);
    *off = self->text_size;
    self->text_size += len;
    return true;
}

//  Slot of the key in the pass's key index, or of the free slot where it goes.
static size_t
s_keys_find (zb_broker_t *self, zb_str_t key, uint64_t hash)
{
    size_t i = (size_t) hash & self->keymask;
    while (self->keyslots [i].gen == self->keygen) {
        if (self->keyslots [i].hash == hash) {
            const zb_str_t *other = &self->records [self->keyslots [i].record - 1].idem_key;
            if (other->len == key.len && memcmp (other->ptr, key.ptr, key.len) == 0)
                return i;
        }
        i = (i + 1) & self->keymask;
    }
    return i;
}

//  Room for `more` records (and their pass_record_t). 0, or -1 when out of
//  memory (nothing changed that matters: arrays only grow).
//  Grow one array to cap elements of size bytes. 0, or -1 (*array unchanged).
static int
s_grow (void **array, size_t cap, size_t size)
{
    void *grown = realloc (*array, cap * size);
    if (!grown)
        return -1;
    *array = grown;
    return 0;
}

static int
s_records_reserve (zb_broker_t *self, size_t more)
{
    if (self->nrecords + more > self->records_cap) {
        size_t cap = self->records_cap ? self->records_cap : 1024;
        while (cap < self->nrecords + more)
            cap *= 2;
        //  The four arrays hold one element per record of the pass
        if (s_grow ((void **) &self->records, cap, sizeof (zb_record_t))
        ||  s_grow ((void **) &self->precs, cap, sizeof (pass_record_t))
        ||  s_grow ((void **) &self->order, cap, sizeof (uint32_t))
        ||  s_grow ((void **) &self->jrecords, cap, sizeof (zb_record_t)))
            return -1;
        self->records_cap = cap;
    }
    return 0;
}

//  Room for `more` entries in the pass: results, records and key slots (kept
//  at most half full). 0, or -1 when out of memory.
static int
s_pass_reserve (zb_broker_t *self, size_t more)
{
    if (self->nresults + more > self->results_cap) {
        size_t cap = self->results_cap ? self->results_cap : 1024;
        while (cap < self->nresults + more)
            cap *= 2;
        result_t *results = (result_t *) realloc (self->results, cap * sizeof (result_t));
        if (!results)
            return -1;
        self->results = results;
        self->results_cap = cap;
    }
    if (s_records_reserve (self, more) == -1)
        return -1;
    if (!self->dedup || (self->nkeys + more) * 2 < self->keymask + 1)
        return 0;
    size_t slots = self->keymask ? self->keymask + 1 : 1024;
    while ((self->nkeys + more) * 2 >= slots)
        slots *= 2;
    keyslot_t *keyslots = (keyslot_t *) calloc (slots, sizeof (keyslot_t));
    if (!keyslots)
        return -1;
    //  Re-file this pass's keys
    free (self->keyslots);
    self->keyslots = keyslots;
    self->keymask = slots - 1;
    self->keygen = 1;
    for (size_t r = 0; r < self->nrecords; r++) {
        zb_str_t key = self->records [r].idem_key;
        if (key.ptr) {
            uint64_t hash = self->records [r].idem_hash;
            size_t i = s_keys_find (self, key, hash);
            self->keyslots [i] = (keyslot_t) { hash, (uint32_t) r + 1, self->keygen };
        }
    }
    return 0;
}

//  Room for `more` bytes at the end of the pass buffer, which grows as
//  msgpack_sbuffer does. 0, or -1 when out of memory (nothing changed).
static int
s_event_buf_reserve (zb_broker_t *self, size_t more)
{
    msgpack_sbuffer *sb = &self->event_buf;
    if (sb->alloc - sb->size >= more)
        return 0;
    size_t alloc = sb->alloc ? sb->alloc * 2 : MSGPACK_SBUFFER_INIT_SIZE;
    while (alloc < sb->size + more) {
        if (alloc * 2 < alloc)
            return -1;
        alloc *= 2;
    }
    char *data = (char *) realloc (sb->data, alloc);
    if (!data)
        return -1;
    sb->data = data;
    sb->alloc = alloc;
    return 0;
}

//  Start a pass: empty arrays, an empty key index, the arrival time.
static void
s_pass_start (zb_broker_t *self)
{
    self->nresults = 0;
    self->nrecords = 0;
    self->nkeys = 0;
    self->text_size = 0;
    self->pass_failed = false;
    msgpack_sbuffer_clear (&self->event_buf);
    if (++self->keygen == 0) {
        //  Wrapped after 4 billion passes: clear the stamps once
        if (self->keyslots)
            memset (self->keyslots, 0, (self->keymask + 1) * sizeof (keyslot_t));
        self->keygen = 1;
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    self->pass_ns = (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

//  Do not keep buffers far bigger than a normal pass needs after a huge one.
static void
s_pass_trim (zb_broker_t *self)
{
    if (self->event_buf.alloc > ZB_PASS_KEEP) {
        msgpack_sbuffer_destroy (&self->event_buf);
        msgpack_sbuffer_init (&self->event_buf);
    }
    if (self->text_cap > ZB_PASS_KEEP) {
        free (self->text);
        self->text = NULL;
        self->text_cap = 0;
    }
}

//  --------------------------------------------------------------------------
//  The ingest pass: PUT

//  A time to the second as RFC 3339 text, formatted once per second.
static zb_str_t
s_time_text (zb_broker_t *self, time_t now)
{
    if (now != self->now || self->now_len == 0) {
        self->now = now;
        self->now_len = (size_t) zb_time_format (now, self->now_text);
    }
    return (zb_str_t) { self->now_text, self->now_len };
}

//  Now, to the second (heartbeats).
static zb_str_t
s_now (zb_broker_t *self)
{
    return s_time_text (self, time (NULL));
}

//  The arrival time of the pass's entries without their own, to the second.
static zb_str_t
s_pass_now (zb_broker_t *self)
{
    return s_time_text (self, (time_t) (self->pass_ns / 1000000000ULL));
}

//  The entry failed: its result carries the code and message; detail_type
//  as s_count_rejected takes it.
static void
s_entry_fail (zb_broker_t *self, result_t *result, const zb_str_t *detail_type,
              zb_code_t code, const char *err)
{
    result->kind = RESULT_FAILED;
    result->code = code;
    result->text_len = 0;
    size_t len = strlen (err);
    if (len > 0 && s_text_add (self, err, len, &result->text_off))
        result->text_len = len;
    self->entries_rejected++;
    s_count_rejected (self, detail_type);
}

//  The rules the packed event at event_buf [off, off + size) matches, in
//  self->matched; their transformer outputs rendered into rule_buf. Returns
//  the number of deliveries to make, or -1 when out of memory (the entry
//  fails then, retryably: a rule never silently misses an accepted event).
static int
s_rules_prepare (zb_broker_t *self, size_t off, size_t size)
{
    if (!self->rules || zb_rules_size (self->rules) == 0)
        return 0;
    //  Matched on the packed bytes in place; unpacked only for a transformer
    size_t n = zb_rules_match_packed (self->rules, self->event_buf.data + off, size,
                                      self->matched, self->max_rules);
    msgpack_sbuffer_clear (&self->rule_buf);
    msgpack_object event;
    bool unpacked = false;
    for (size_t i = 0; i < n; i++) {
        zb_rule_t *rule = self->matched [i];
        self->rule_off [i] = SIZE_MAX;
        self->rule_len [i] = 0;
        if (!rule->transformer)
            continue;
        if (!unpacked) {
            msgpack_zone_clear (&self->rule_zone);
            size_t used = 0;
            if (msgpack_unpack (self->event_buf.data + off, size, &used, &self->rule_zone, &event)
                != MSGPACK_UNPACK_SUCCESS)
                return -1;      //  we packed it: only memory can be missing
            unpacked = true;
        }
        zb_transform_context_t context = {
            .rule_name = { rule->name, strlen (rule->name) },
            .rule_arn = { rule->arn, rule->arn_len },
            .ingestion_time = s_pass_now (self),    //  only for a transformer
        };
        size_t before = self->rule_buf.size;
        char err [ZB_ERRLEN] = "";
        int rc = zb_transform_render (rule->transformer, &event, &context, &self->rule_pk,
                                      err, sizeof err);
        size_t len = self->rule_buf.size - before;
        if (rc == 0 && len > self->max_event_size) {
            rc = -1;
            snprintf (err, sizeof err, "the output is %zu bytes, more than max-event-size", len);
        }
        if (rc != 0) {
            //  The rule's own fault (its template), the same for every try:
            //  counted and logged, the event itself is accepted
            self->rule_buf.size = before;
            self->matched [i] = NULL;
            rule->failed++;
            self->rule_failures++;
            s_log (self, true, "rule %s: transform failed, no delivery: %s", rule->name, err);
            continue;
        }
        self->rule_off [i] = before;
        self->rule_len [i] = len;
    }
    return (int) n;
}

//  After the entry's record r: one record per rule delivery prepared by
//  s_rules_prepare (room was reserved).
static void
s_rules_append (zb_broker_t *self, size_t r, size_t n)
{
    if (n == 0)
        return;
    size_t base = self->event_buf.size;
    if (self->rule_buf.size)
        msgpack_sbuffer_write (&self->event_buf, self->rule_buf.data, self->rule_buf.size);
    for (size_t i = 0; i < n; i++) {
        zb_rule_t *rule = self->matched [i];
        if (!rule)
            continue;
        zb_topic_t *topic = NULL;
        if (zb_topics_track (self->topics, rule->topic, rule->topic_len, &topic) != 0) {
            //  Tracked when the rule was put, so only a broken table gets here
            rule->failed++;
            self->rule_failures++;
            s_log (self, true, "rule %s: its topic is not in the table, no delivery", rule->name);
            continue;
        }
        size_t d = self->nrecords++;
        bool transformed = self->rule_off [i] != SIZE_MAX;
        self->seq++;
        topic->seq++;
        self->records [d] = (zb_record_t) {
            .seq = self->seq,
            .topic_seq = topic->seq,
            .arrival_ns = self->pass_ns,
            .topic = { topic->name, topic->len },
            .event = { NULL, transformed ? self->rule_len [i] : self->records [r].event.len },
            .id = { NULL, ZB_UUID_LEN },
            .idem_key = { NULL, 0 },
        };
        pass_record_t *prec = &self->precs [d];
        prec->topic = topic;
        prec->event_off = transformed ? base + self->rule_off [i] : self->precs [r].event_off;
        memcpy (prec->id, self->precs [r].id, sizeof prec->id);
        prec->derived = true;
        prec->request_start = false;
    }
}

//  The topic of an accepted entry, as zb_topics_track: a tracked topic stays
//  in the table for the broker's lifetime, so the last ones used are kept in
//  a small direct-mapped cache (one compare instead of SipHash and a probe).
static int
s_pass_topic (zb_broker_t *self, zb_str_t name, zb_topic_t **topic)
{
    size_t slot = (name.len + (uint8_t) name.ptr [0] + 7 * (uint8_t) name.ptr [name.len - 1]) & 15;
    zb_topic_t *cached = self->topic_cache [slot];
    if (cached && cached->len == name.len && memcmp (cached->name, name.ptr, name.len) == 0) {
        *topic = cached;
        return 0;
    }
    int rc = zb_topics_track (self->topics, name.ptr, name.len, topic);
    if (rc == 0)
        self->topic_cache [slot] = *topic;
    return rc;
}

//  The entry at [data, data+size) of the body (a validated msgpack value)
//  as a tree in the zone, the way the whole body used to be decoded (an
//  entry nests at most ZB_MAX_DEPTH levels; deeper containers are never
//  looked at). 0, or -1 when out of memory.
static int
s_entry_tree (zb_broker_t *self, const char *data, size_t size, msgpack_object *obj)
{
    char err [ZB_ERRLEN];
    return zb_msgpack_decode (data, size, ZB_MAX_DEPTH + 1, &self->zone, obj, err,
                              sizeof err) == 0 ? 0 : -1;
}

//  The slow path of s_pass_entry, for an entry zb_entry_parse_packed did not
//  accept: zb_entry_parse on the entry's tree gives the code and message
//  (or, when the fast path only lacked memory, accepts it; detail and
//  resources bytes are then found in the tree). *detail_type as
//  s_count_rejected takes it.
static zb_code_t
s_entry_parse_tree (zb_broker_t *self, const char *data, size_t size, zb_entry_t *entry,
                    const zb_str_t **detail_type, zb_str_t *dt_buf, char *err, size_t errlen)
{
    msgpack_object obj;
    *detail_type = NULL;
    if (s_entry_tree (self, data, size, &obj) == -1) {
        snprintf (err, errlen, "out of memory decoding the entry; retry");
        return ZB_E_INTERNAL;
    }
    *detail_type = s_tree_detail_type (&obj, dt_buf);
    zb_code_t code = zb_entry_parse (&obj, entry, err, errlen);
    if (code == ZB_OK) {
        entry->detail_bytes.ptr = zb_msgpack_value_bytes (entry->detail, data, size,
                                                          &entry->detail_bytes.len);
        if (entry->resources)
            entry->resources_bytes.ptr = zb_msgpack_value_bytes (entry->resources, data, size,
                                                                 &entry->resources_bytes.len);
    }
    return code;
}

//  Validate the entry that starts at body offset pos (fast: already read
//  by s_pass_fast, or NULL), then answer it as a duplicate or stamp, number
//  and pack it as the next record of the pass. Room for it was reserved.
//  Returns the offset after the entry.
static size_t
s_pass_entry (zb_broker_t *self, size_t pos, fast_entry_t *fast, result_t *result)
{
    char err [ZB_ERRLEN];
    err [0] = 0;                        //  not = "": that clears all 256 bytes per entry
    zb_entry_t local;
    zb_entry_t *entry = fast ? &fast->entry : &local;
    const char *data = self->body + pos;
    size_t used = fast ? fast->used : 0;
    zb_str_t dt_buf;
    const zb_str_t *dt = &entry->detail_type;      //  what a failure counts against
    zb_code_t code = ZB_OK;
    //  The fast path accepts (nearly) every entry zb_entry_parse accepts,
    //  and only those; the entry's tree is built for the others
    if (!fast && !zb_entry_parse_packed (data, self->body_size - pos, entry, &used)) {
        used = zb_msgpack_value_size (data, self->body_size - pos);
        code = s_entry_parse_tree (self, data, used, entry, &dt, &dt_buf, err, sizeof err);
    }
    if (code == ZB_OK)
        code = zb_auth_entry (&self->client, entry->source, entry->detail_type, err, sizeof err);
    if (code != ZB_OK) {
        s_entry_fail (self, result, dt, code, err);
        return pos + used;
    }
    zb_str_t when = entry->time_utc_len ? (zb_str_t) { entry->time_utc, entry->time_utc_len }
                                       : s_pass_now (self);
    //  A key accepted before (in this pass or within the dedup window): the
    //  answer is the original event, nothing is stored or published
    zb_str_t key = self->dedup ? entry->idem_key : (zb_str_t) { NULL, 0 };
    uint64_t hash = 0;
    size_t slot = 0;
    if (key.ptr) {
        //  One hash for the key, the journal's: this pass's slots, the
        //  journal's lookup and its append all use it
        hash = fast ? fast->key_hash : zb_journal_key_hash (self->journal, key);
        slot = s_keys_find (self, key, hash);
        if (self->keyslots [slot].gen == self->keygen) {
            result->kind = RESULT_DUPLICATE;
            result->record = self->keyslots [slot].record - 1;
            return pos + used;
        }
        zb_record_t found;
        int rc = zb_journal_dedup_get_hashed (self->journal, key, hash, self->pass_ns, &found);
        if (rc == 1) {
            if (found.id.ptr && found.id.len == ZB_UUID_LEN
            &&  s_text_add (self, found.id.ptr, ZB_UUID_LEN, &result->text_off)) {
                result->kind = RESULT_DUPLICATE;
                result->record = ZB_NO_RECORD;
                result->text_len = ZB_UUID_LEN;
                result->seq = found.seq;
                return pos + used;
            }
            s_entry_fail (self, result, dt, ZB_E_INTERNAL,
                          "idempotency-key: cannot answer the duplicate (out of memory); retry");
            return pos + used;
        }
        if (rc == -1) {
            snprintf (err, sizeof err, "idempotency-key: the journal lookup failed: %s; retry",
                      zb_journal_last_error (self->journal));
            s_entry_fail (self, result, dt, ZB_E_INTERNAL, err);
            return pos + used;
        }
    }
    //  Stamp it and pack it after the pass's other events: detail and
    //  resources are copied as the request holds them (validated above)
    size_t r = self->nrecords;
    pass_record_t *prec = &self->precs [r];
    zb_uuidgen_next (self->uuidgen, prec->id);
    zb_stamp_t stamp = {
        .id = { prec->id, ZB_UUID_LEN },
        .time = when,
        .account = { self->account, self->account_len },
        .region = { self->region, self->region_len },
    };
    size_t size = zb_event_size (entry, &stamp);
    if (size > self->max_event_size) {
        snprintf (err, sizeof err,
                  "the event would be %zu bytes packed, more than max-event-size (%" PRIu64 ")",
                  size, self->max_event_size);
        s_entry_fail (self, result, dt, ZB_E_ENTRY_TOO_LARGE, err);
        return pos + used;
    }
    if (s_event_buf_reserve (self, size) == -1) {
        s_entry_fail (self, result, dt, ZB_E_INTERNAL, "out of memory packing the event; retry");
        return pos + used;
    }
    size_t off = self->event_buf.size;
    zb_event_write (self->event_buf.data + off, entry, &stamp);
    self->event_buf.size += size;
    //  The rules it matches, each a record after it: room for them first
    int deliveries = s_rules_prepare (self, off, size);
    if (deliveries < 0 || s_records_reserve (self, 1 + (size_t) deliveries) == -1) {
        self->event_buf.size = off;
        s_entry_fail (self, result, dt, ZB_E_INTERNAL, "out of memory matching the rules; retry");
        return pos + used;
    }
    prec = &self->precs [r];                //  the array may have moved
    zb_topic_t *topic = NULL;
    int rc = s_pass_topic (self, entry->detail_type, &topic);
    if (rc != 0) {
        self->event_buf.size = off;
        if (rc == -1)
            snprintf (err, sizeof err,
                      "detail-type: the broker already tracks its maximum of %zu detail-types (max-topics)",
                      zb_topics_tracked (self->topics));
        else
            snprintf (err, sizeof err, "detail-type: out of memory adding the topic");
        s_entry_fail (self, result, dt, rc == -1 ? ZB_E_LIMIT_EXCEEDED : ZB_E_INTERNAL, err);
        return pos + used;
    }
    //  Numbered now; the numbers are used up only when the journal has it
    self->seq++;
    topic->seq++;
    self->records [r] = (zb_record_t) {
        .seq = self->seq,
        .topic_seq = topic->seq,
        .arrival_ns = self->pass_ns,
        .topic = { topic->name, topic->len },
        .event = { NULL, size },            //  the buffer may still move
        .id = { NULL, ZB_UUID_LEN },        //  in precs [r], which may move too
        .idem_key = key,                    //  points into the request frame
        .idem_hash = hash,
    };
    prec->topic = topic;
    prec->event_off = off;
    prec->derived = false;
    prec->request_start = false;
    if (key.ptr) {
        self->keyslots [slot] = (keyslot_t) { hash, (uint32_t) r + 1, self->keygen };
        self->nkeys++;
    }
    self->nrecords++;
    result->kind = RESULT_STORED;
    result->record = r;
    s_rules_append (self, r, (size_t) deliveries);
    return pos + used;
}

//  A request of the pass fails as a whole: its ERROR reply, sent at the end.
static void
s_pass_error (zb_broker_t *self, pass_req_t *pr, zmq_msg_t *corr, const char *code,
              const char *format, ...)
{
    char message [ZB_ERRLEN];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    pr->kind = PASS_ERROR;
    pr->corr = corr;
    pr->code = code;
    pr->text_len = 0;
    size_t len = strlen (message);
    if (s_text_add (self, message, len, &pr->text_off))
        pr->text_len = len;
}

//  The fast path of a PUT: when the body is an array of 1 to max-entries
//  entries that zb_entry_parse_packed all accepts and nothing follows the
//  array, reads them into self->fast and returns their count; else 0. The
//  reader checks the bounds of every item it passes and refuses 0xc1, so
//  such a body is valid msgpack: zb_msgpack_validate is not needed then.
static uint32_t
s_pass_fast (zb_broker_t *self, const char *data, size_t size)
{
    uint32_t count;
    size_t pos;
    if (!zb_entries_header_packed (data, size, &count, &pos) || count > self->max_entries)
        return 0;
    if (count > self->fast_cap) {
        size_t cap = self->fast_cap ? self->fast_cap : 256;
        while (cap < count)
            cap *= 2;
        fast_entry_t *fast = (fast_entry_t *) realloc (self->fast, cap * sizeof (*fast));
        if (!fast)
            return 0;
        self->fast = fast;
        self->fast_cap = cap;
    }
    for (uint32_t i = 0; i < count; i++) {
        fast_entry_t *entry = &self->fast [i];
        if (!zb_entry_parse_packed (data + pos, size - pos, &entry->entry, &entry->used))
            return 0;
        pos += entry->used;
        //  A new key misses the cache in a large dedup window: start loading
        //  its slot now, while the other entries are read
        zb_str_t key = entry->entry.idem_key;
        if (key.ptr && self->dedup) {
            entry->key_hash = zb_journal_key_hash (self->journal, key);
            zb_journal_key_prefetch (self->journal, entry->key_hash);
        }
    }
    return pos == size ? count : 0;
}

static void
s_pass_put (zb_broker_t *self, pass_req_t *pr, zmq_msg_t *corr, zmq_msg_t *body)
{
    char err [ZB_ERRLEN];
    //  Checked whole first (one bad byte fails the request), then each entry
    //  is read from the bytes where it lies: no tree for the body
    const char *data = (const char *) zmq_msg_data (body);
    size_t data_size = zmq_msg_size (body);
    uint32_t fast = s_pass_fast (self, data, data_size);
    if (!fast && zb_msgpack_validate (data, data_size, err, sizeof err) == -1) {
        s_pass_error (self, pr, corr, "MalformedRequest", "%s", err);
        goto done;
    }
    msgpack_object_type type;
    uint32_t count;
    size_t pos = zb_msgpack_peek (data, data_size, &type, &count);
    if (type != MSGPACK_OBJECT_ARRAY) {
        s_pass_error (self, pr, corr, "MalformedRequest",
                      "PUT body must be an array of entries, not %s",
                      zb_msgpack_type_name (type));
        goto done;
    }
    if (count == 0) {
        s_pass_error (self, pr, corr, "InvalidArgument", "PUT has no entries");
        goto done;
    }
    if (count > self->max_entries) {
        s_pass_error (self, pr, corr, "TooManyEntries",
                      "PUT has %" PRIu32 " entries, more than max-entries (%" PRIu64 ")",
                      count, self->max_entries);
        goto done;
    }
    if (s_pass_reserve (self, count) == -1) {
        s_pass_error (self, pr, corr, "InternalFailure",
                      "out of memory for %" PRIu32 " entries; retry", count);
        goto done;
    }
    pr->kind = PASS_PUT;
    pr->corr = corr;
    pr->first = self->nresults;
    pr->count = count;
    self->body = data;
    self->body_size = data_size;
    size_t first_record = self->nrecords;
    //  The rate limit: the entries beyond what the client may send now are
    //  throttled (not stored: it resends them, with their idempotency keys)
    size_t admitted = zb_auth_admit (self->auth, &self->client, count);
    for (uint32_t i = 0; i < count; i++) {
        result_t *result = &self->results [self->nresults++];
        if (i < admitted)
            pos = s_pass_entry (self, pos, fast ? &self->fast [i] : NULL, result);
        else {
            //  Counted against its detail-type: an accepted entry's, or the
            //  first "detail-type" string of its tree
            size_t size = fast ? self->fast [i].used
                               : zb_msgpack_value_size (data + pos, data_size - pos);
            msgpack_object obj;
            zb_str_t dt_buf;
            const zb_str_t *dt = fast ? &self->fast [i].entry.detail_type
                               : s_entry_tree (self, data + pos, size, &obj) == 0
                               ? s_tree_detail_type (&obj, &dt_buf) : NULL;
            snprintf (err, sizeof err, "rate limit of %" PRIu64 " entries/s exceeded; retry later",
                      zb_auth_rate_limit (self->auth));
            s_entry_fail (self, result, dt, ZB_E_THROTTLED, err);
            pos += size;
        }
    }
    if (self->nrecords > first_record)
        self->precs [first_record].request_start = true;
done:
    msgpack_zone_clear (&self->zone);
}

//  A new stamp for grouping the pass's records by topic (s_pass_group).
static uint32_t
s_pass_gen (zb_broker_t *self)
{
    if (++self->pass_gen == 0) {
        //  Wrapped after 4 billion stamps: clear the topics' once
        for (size_t i = 0; i < zb_topics_size (self->topics); i++)
            zb_topics_at (self->topics, i)->pass_gen = 0;
        self->pass_gen = 1;
    }
    return self->pass_gen;
}

//  Add record r to its topic's chain of this grouping (stamp gen); a topic's
//  first record goes to heads [(*nheads)++].
static void
s_pass_chain (zb_broker_t *self, uint32_t gen, uint32_t r, uint32_t *heads, size_t *nheads)
{
    zb_topic_t *topic = self->precs [r].topic;
    self->precs [r].next = UINT32_MAX;
    if (topic->pass_gen == gen)
        self->precs [topic->pass_last].next = r;
    else {
        topic->pass_gen = gen;
        heads [(*nheads)++] = r;
    }
    topic->pass_last = r;
}

//  Number the records of one PUT request, [first, end) of the pass, topic by
//  topic: the request's events of one topic get consecutive seqs (their
//  topic_seqs are consecutive already), topics in the order of their first
//  entry; then the rule deliveries, in the order of the events they come from
//  (each rule topic's topic_seqs renumbered to follow that order), so that a
//  delivery's seq is after its event's. Each topic's events then go out in one
//  message and still arrive in seq order, which is what a consumer of several
//  topics relies on (catchup.c). Appends the record indices in seq order to
//  self->order from *k, numbering from *seq.
static void
s_request_order (zb_broker_t *self, uint32_t first, uint32_t end, size_t *k, uint64_t *seq)
{
    //  jrecords' memory holds the heads meanwhile (4 bytes per record fit)
    uint32_t *heads = (uint32_t *) self->jrecords;
    size_t nheads = 0;
    bool derived = false;
    uint32_t gen = s_pass_gen (self);
    for (uint32_t r = first; r < end; r++) {
        if (self->precs [r].derived)
            derived = true;
        else
            s_pass_chain (self, gen, r, heads, &nheads);
    }
    size_t events_from = *k;
    for (size_t h = 0; h < nheads; h++)
        for (uint32_t r = heads [h]; r != UINT32_MAX; r = self->precs [r].next) {
            self->records [r].seq = (*seq)++;
            self->order [(*k)++] = r;
        }
    size_t events_end = *k;
    if (!derived)
        return;
    //  An event's deliveries are the records right after it
    nheads = 0;
    gen = s_pass_gen (self);
    for (size_t e = events_from; e < events_end; e++)
        for (uint32_t d = self->order [e] + 1; d < end && self->precs [d].derived; d++)
            s_pass_chain (self, gen, d, heads, &nheads);
    for (size_t h = 0; h < nheads; h++) {
        uint64_t topic_seq = UINT64_MAX;
        for (uint32_t r = heads [h]; r != UINT32_MAX; r = self->precs [r].next)
            if (self->records [r].topic_seq < topic_seq)
                topic_seq = self->records [r].topic_seq;
        for (uint32_t r = heads [h]; r != UINT32_MAX; r = self->precs [r].next) {
            self->records [r].seq = (*seq)++;
            self->records [r].topic_seq = topic_seq++;
            self->order [(*k)++] = r;
        }
    }
}

//  Number the pass's records request by request (s_request_order); fills
//  self->order with the record indices in seq order. True when that is not
//  the records' own order.
static bool
s_pass_order (zb_broker_t *self)
{
    uint32_t count = (uint32_t) self->nrecords;
    uint64_t seq = self->records [0].seq;
    size_t k = 0;
    uint32_t first = 0;
    while (first < count) {
        uint32_t end = first + 1;
        while (end < count && !self->precs [end].request_start)
            end++;
        s_request_order (self, first, end, &k, &seq);
        first = end;
    }
    assert (k == count);
    for (size_t i = 0; i < count; i++)
        if (self->order [i] != i)
            return true;
    return false;
}

//  Store the pass's events in one journal append, then publish them, each
//  topic's in messages of up to ZB_BATCH_EVENTS events / ZB_BATCH_BYTES; or,
//  when the journal refuses, give back their numbers.
static void
s_pass_commit (zb_broker_t *self)
{
    size_t count = self->nrecords;
    if (count == 0)
        return;
    uint64_t first_seq = self->records [0].seq;
    //  The buffers may have moved while the pass grew: point into them now
    for (size_t r = 0; r < count; r++) {
        self->records [r].event.ptr = self->event_buf.data + self->precs [r].event_off;
        self->records [r].id.ptr = self->precs [r].id;
    }
    bool moved = s_pass_order (self);
    const zb_record_t *stored = self->records;
    if (moved) {
        for (size_t k = 0; k < count; k++)
            self->jrecords [k] = self->records [self->order [k]];
        stored = self->jrecords;
    }
    char err [ZB_ERRLEN] = "";
    int64_t started = self->metrics ? zclock_usecs () : 0;
    int rc = zb_journal_append (self->journal, stored, count, err, sizeof err);
    if (self->metrics)
        zb_metrics_observe_commit (self->metrics, (uint64_t) (zclock_usecs () - started) * 1000);
    if (rc == 0) {
        for (size_t r = 0; r < count; r++) {
            zb_topic_t *topic = self->precs [r].topic;
            topic->in++;
            topic->bytes += self->records [r].event.len;
            if (!self->precs [r].derived)
                self->entries_in++;
        }
        //  Stored is what counts: an event that cannot be published (the
        //  context is ending) is still acknowledged, and replayable
        size_t k = 0;
        while (k < count) {
            zb_topic_t *topic = self->precs [self->order [k]].topic;
            size_t n = 1;
            size_t bytes = self->records [self->order [k]].event.len;
            while (k + n < count && n < ZB_BATCH_EVENTS
               &&  self->precs [self->order [k + n]].topic == topic
               &&  bytes + self->records [self->order [k + n]].event.len <= ZB_BATCH_BYTES) {
                bytes += self->records [self->order [k + n]].event.len;
                n++;
            }
            if (s_publish (self, self->order + k, n) == 0)
                topic->out += n;
            k += n;
        }
        return;
    }
    //  Nothing stored: no number used up, nothing published, every event of
    //  the pass (and every duplicate of one) answered InternalFailure
    self->pass_failed = true;
    snprintf (self->pass_error, sizeof self->pass_error, "journal write failed: %s; retry",
              err [0] ? err : "unknown error");
    self->seq = first_seq - 1;
    size_t entries = 0;
    //  Back to each topic's first topic_seq of the pass (first in seq order)
    for (size_t k = count; k-- > 0; ) {
        uint32_t r = self->order [k];
        self->precs [r].topic->seq = self->records [r].topic_seq - 1;
        if (!self->precs [r].derived) {
            self->precs [r].topic->rejected++;
            entries++;
        }
    }
    self->entries_rejected += entries;
    self->journal_failures++;
    s_log (self, true, "journal write failed, %zu events refused: %s", entries,
           err [0] ? err : "unknown error");
}

static void
s_pack_failure (msgpack_packer *pk, const char *code, const char *message, size_t len)
{
    msgpack_pack_map (pk, 2);
    zb_pack_cstr (pk, "code");
    zb_pack_cstr (pk, code);
    zb_pack_cstr (pk, "message");
    msgpack_pack_str_with_body (pk, message, len);
}

//  The id and seq of a stored or duplicate result: the reply says exactly
//  what the journal holds.
static void
s_pack_stored (msgpack_packer *pk, const char *id, uint64_t seq, bool duplicate)
{
    msgpack_pack_map (pk, duplicate ? 3 : 2);
    zb_pack_cstr (pk, "id");
    msgpack_pack_str_with_body (pk, id, ZB_UUID_LEN);
    zb_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, seq);
    if (duplicate) {
        zb_pack_cstr (pk, "duplicate");
        msgpack_pack_true (pk);
    }
}

//  The result of a stored entry, {"id": id, "seq": seq}, written directly into
//  the reply buffer: byte for byte what s_pack_stored packs (msgpack-c's
//  smallest encodings), without a packer callback per piece.
static void
s_put_stored (zb_broker_t *self, const char *id, uint64_t seq)
{
    msgpack_sbuffer *sb = &self->reply_buf;
    enum { MAX = 1 + 3 + 2 + ZB_UUID_LEN + 4 + 9 };
    if (sb->alloc - sb->size < MAX) {
        s_pack_stored (&self->reply_pk, id, seq, false);
        return;
    }
    uint8_t *p = (uint8_t *) sb->data + sb->size;
    memcpy (p, "\x82\xa2id\xd9\x24", 6);        //  {"id": str8 of 36 bytes
    memcpy (p + 6, id, ZB_UUID_LEN);
    p += 6 + ZB_UUID_LEN;
    memcpy (p, "\xa3seq", 4);
    p += 4;
    if (seq < 128)
        *p++ = (uint8_t) seq;
    else {
        int bytes = seq < 0x100 ? 1 : seq < 0x10000 ? 2 : seq < 0x100000000ULL ? 4 : 8;
        *p++ = (uint8_t) (bytes == 1 ? 0xcc : bytes == 2 ? 0xcd : bytes == 4 ? 0xce : 0xcf);
        for (int i = bytes - 1; i >= 0; i--)
            *p++ = (uint8_t) (seq >> (8 * i));
    }
    sb->size = (size_t) ((char *) p - sb->data);
}

//  Reply to a PUT of the pass: {"failed": N, "results": [...]}.
static void
s_pass_reply_put (zb_broker_t *self, pass_req_t *pr)
{
    const result_t *results = self->results + pr->first;
    uint32_t failed = 0;
    for (size_t i = 0; i < pr->count; i++)
        if (results [i].kind == RESULT_FAILED
        ||  (self->pass_failed && results [i].record != ZB_NO_RECORD))
            failed++;
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (pk, 2);
    zb_pack_cstr (pk, "failed");
    msgpack_pack_uint32 (pk, failed);
    zb_pack_cstr (pk, "results");
    msgpack_pack_array (pk, pr->count);
    for (size_t i = 0; i < pr->count; i++) {
        const result_t *res = &results [i];
        if (res->kind == RESULT_FAILED) {
            if (res->text_len)
                s_pack_failure (pk, zb_code_name (res->code), self->text + res->text_off,
                                res->text_len);
            else {
                const char *name = zb_code_name (res->code);
                s_pack_failure (pk, name, name, strlen (name));
            }
        }
        else
        if (res->record == ZB_NO_RECORD) {
            s_pack_stored (pk, self->text + res->text_off, res->seq, true);
            self->duplicates++;
        }
        else
        if (self->pass_failed) {
            s_pack_failure (pk, zb_code_name (ZB_E_INTERNAL), self->pass_error,
                            strlen (self->pass_error));
            if (res->kind == RESULT_DUPLICATE) {
                //  Its original was refused with the pass: it fails with it
                self->entries_rejected++;
                self->precs [res->record].topic->rejected++;
            }
        }
        else {
            bool duplicate = res->kind == RESULT_DUPLICATE;
            if (duplicate) {
                s_pack_stored (pk, self->precs [res->record].id, self->records [res->record].seq,
                               true);
                self->duplicates++;
            }
            else
                s_put_stored (self, self->precs [res->record].id, self->records [res->record].seq);
        }
    }
    s_reply (self, self->ingest_h, &pr->req, pr->delimiter, ZB_STATUS_OK, pr->corr,
             self->reply_buf.data, self->reply_buf.size);
    self->requests++;
}

//  --------------------------------------------------------------------------
//  PING, STATS

static void
s_ping (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr)
{
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (pk, 4);
    zb_pack_cstr (pk, "status");
    zb_pack_cstr (pk, "ok");
    zb_pack_cstr (pk, "version");
    zb_pack_cstr (pk, ZB_VERSION);
    zb_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    zb_pack_cstr (pk, "uptime_ms");
    msgpack_pack_uint64 (pk, s_uptime_ms (self));
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr,
             self->reply_buf.data, self->reply_buf.size);
}

//  The journal's topic heads, counted then packed as a map.
typedef struct {
    msgpack_packer *pk;
    size_t count;
} topic_heads_t;

static void
s_count_head (void *arg, zb_str_t topic, uint64_t topic_seq)
{
    (void) topic;
    (void) topic_seq;
    ((topic_heads_t *) arg)->count++;
}

static void
s_pack_head (void *arg, zb_str_t topic, uint64_t topic_seq)
{
    topic_heads_t *heads = (topic_heads_t *) arg;
    if (heads->count == 0)
        return;                 //  never more than the map header said
    heads->count--;
    msgpack_pack_str_with_body (heads->pk, topic.ptr, topic.len);
    msgpack_pack_uint64 (heads->pk, topic_seq);
}

//  The JOURNAL body (also STATS' "journal").
static void
s_pack_journal (zb_broker_t *self, msgpack_packer *pk)
{
    zb_journal_info_t info;
    zb_journal_info (self->journal, &info);
    msgpack_pack_map (pk, 10);
    zb_pack_cstr (pk, "backend");
    zb_pack_cstr (pk, info.backend ? info.backend : "");
    zb_pack_cstr (pk, "path");
    zb_pack_cstr (pk, info.path ? info.path : "");
    zb_pack_cstr (pk, "sync");
    zb_pack_cstr (pk, info.sync ? info.sync : "");
    zb_pack_cstr (pk, "head");
    msgpack_pack_uint64 (pk, info.head);
    zb_pack_cstr (pk, "oldest");
    msgpack_pack_uint64 (pk, info.oldest);
    zb_pack_cstr (pk, "events");
    msgpack_pack_uint64 (pk, info.events);
    zb_pack_cstr (pk, "bytes");
    msgpack_pack_uint64 (pk, info.bytes);
    zb_pack_cstr (pk, "retain_hours");
    msgpack_pack_uint64 (pk, self->retain_hours);
    zb_pack_cstr (pk, "retain_mb");
    msgpack_pack_uint64 (pk, self->retain_mb);
    zb_pack_cstr (pk, "topics");
    topic_heads_t heads = { pk, 0 };
    zb_journal_topics (self->journal, s_count_head, &heads);
    msgpack_pack_map (pk, heads.count);
    zb_journal_topics (self->journal, s_pack_head, &heads);
    assert (heads.count == 0);
}

static void
s_journal (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr)
{
    msgpack_sbuffer_clear (&self->reply_buf);
    s_pack_journal (self, &self->reply_pk);
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr,
             self->reply_buf.data, self->reply_buf.size);
}

//  STATS "replay_clients": one map per open replay session
#define ZB_STATS_SESSIONS   100

typedef struct {
    msgpack_packer *pk;
    uint64_t head;
} session_pack_t;

static void
s_pack_session (void *arg, const zb_replay_session_info_t *info)
{
    session_pack_t *sp = (session_pack_t *) arg;
    msgpack_packer *pk = sp->pk;
    char client [2 * 255 + 1];
    static const char hex [] = "0123456789abcdef";
    size_t len = info->identity_len < 255 ? info->identity_len : 255;
    for (size_t i = 0; i < len; i++) {
        client [2 * i] = hex [info->identity [i] >> 4];
        client [2 * i + 1] = hex [info->identity [i] & 15];
    }
    msgpack_pack_map (pk, 6);
    zb_pack_cstr (pk, "client");
    msgpack_pack_str_with_body (pk, client, 2 * len);
    zb_pack_cstr (pk, "next");
    msgpack_pack_uint64 (pk, info->next);
    zb_pack_cstr (pk, "to");
    msgpack_pack_uint64 (pk, info->to);
    zb_pack_cstr (pk, "sent");
    msgpack_pack_uint64 (pk, info->sent);
    zb_pack_cstr (pk, "credit");
    msgpack_pack_uint64 (pk, info->credit);
    //  How far behind the broker's head the session reads
    zb_pack_cstr (pk, "lag");
    msgpack_pack_uint64 (pk, sp->head >= info->next ? sp->head - info->next + 1 : 0);
}

static void
s_count_session (void *arg, const zb_replay_session_info_t *info)
{
    (void) info;
    (*(size_t *) arg)++;
}

//  The STATS keys about who is connected and catching up.
static void
s_pack_peers (zb_broker_t *self, msgpack_packer *pk)
{
    uint64_t subscriptions = 0;
    size_t size = zb_topics_size (self->topics);
    for (size_t i = 0; i < size; i++)
        subscriptions += zb_topics_at (self->topics, i)->subscribers;
    zb_pack_cstr (pk, "bytes_in");
    msgpack_pack_uint64 (pk, self->ingest_bytes);
    zb_pack_cstr (pk, "subscriptions");
    msgpack_pack_uint64 (pk, subscriptions);
    zb_pack_cstr (pk, "producers_active");
    msgpack_pack_uint64 (pk, zb_peers_active (self->peers, zclock_mono ()));
    zb_pack_cstr (pk, "connections");
    msgpack_pack_map (pk, 3);
    zb_pack_cstr (pk, "ingest");
    msgpack_pack_uint64 (pk, zb_peers_connections (self->peers, 0));
    zb_pack_cstr (pk, "publish");
    msgpack_pack_uint64 (pk, zb_peers_connections (self->peers, 1));
    zb_pack_cstr (pk, "control");
    msgpack_pack_uint64 (pk, zb_peers_connections (self->peers, 2));
    zb_pack_cstr (pk, "replay_requests");
    msgpack_pack_uint64 (pk, self->replay_requests);
    zb_pack_cstr (pk, "replay_events");
    msgpack_pack_uint64 (pk, zb_replay_events_sent (self->replay));
    zb_pack_cstr (pk, "replay_clients");
    size_t sessions = 0;
    zb_replay_each (self->replay, ZB_STATS_SESSIONS, s_count_session, &sessions);
    msgpack_pack_array (pk, sessions);
    session_pack_t sp = { pk, self->seq };
    zb_replay_each (self->replay, ZB_STATS_SESSIONS, s_pack_session, &sp);
}
#define ZB_STATS_PEER_KEYS  7

static void
s_stats (zb_broker_t *self, void *sock, request_t *req, bool delimiter, zmq_msg_t *corr)
{
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    msgpack_pack_map (pk, 14 + ZB_STATS_PEER_KEYS);
    s_pack_peers (self, pk);
    zb_pack_cstr (pk, "version");
    zb_pack_cstr (pk, ZB_VERSION);
    zb_pack_cstr (pk, "uptime_ms");
    msgpack_pack_uint64 (pk, s_uptime_ms (self));
    zb_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    zb_pack_cstr (pk, "requests");
    msgpack_pack_uint64 (pk, self->requests);
    zb_pack_cstr (pk, "requests_failed");
    msgpack_pack_uint64 (pk, self->requests_failed);
    zb_pack_cstr (pk, "entries_in");
    msgpack_pack_uint64 (pk, self->entries_in);
    zb_pack_cstr (pk, "entries_rejected");
    msgpack_pack_uint64 (pk, self->entries_rejected);
    zb_pack_cstr (pk, "prefix_subscriptions");
    msgpack_pack_uint64 (pk, self->prefix_subscriptions);
    zb_pack_cstr (pk, "duplicates");
    msgpack_pack_uint64 (pk, self->duplicates);
    zb_pack_cstr (pk, "journal_failures");
    msgpack_pack_uint64 (pk, self->journal_failures);
    zb_pack_cstr (pk, "replay_sessions");
    msgpack_pack_uint64 (pk, zb_replay_sessions (self->replay));
    zb_pack_cstr (pk, "journal");
    s_pack_journal (self, pk);
    zb_auth_stats_t auth;
    zb_auth_stats (self->auth, &auth);
    zb_pack_cstr (pk, "security");
    msgpack_pack_map (pk, 8);
    zb_pack_cstr (pk, "curve");
    if (zb_auth_curve (self->auth)) msgpack_pack_true (pk); else msgpack_pack_false (pk);
    zb_pack_cstr (pk, "keys");
    msgpack_pack_uint64 (pk, auth.keys);
    zb_pack_cstr (pk, "denied");
    msgpack_pack_uint64 (pk, auth.denied);
    zb_pack_cstr (pk, "throttled");
    msgpack_pack_uint64 (pk, auth.throttled);
    zb_pack_cstr (pk, "forbidden_subscriptions");
    msgpack_pack_uint64 (pk, auth.forbidden_subscriptions);
    zb_pack_cstr (pk, "reloads");
    msgpack_pack_uint64 (pk, auth.reloads);
    zb_pack_cstr (pk, "publish_rebuilds");
    msgpack_pack_uint64 (pk, self->publish_rebuilds);
    zb_pack_cstr (pk, "rate_limit");
    msgpack_pack_uint64 (pk, zb_auth_rate_limit (self->auth));
    zb_pack_cstr (pk, "topics");
    size_t size = zb_topics_size (self->topics);
    msgpack_pack_map (pk, size);
    for (size_t i = 0; i < size; i++) {
        zb_topic_t *topic = zb_topics_at (self->topics, i);
        msgpack_pack_str_with_body (pk, topic->name, topic->len);
        msgpack_pack_map (pk, 5);
        zb_pack_cstr (pk, "in");
        msgpack_pack_uint64 (pk, topic->in);
        zb_pack_cstr (pk, "out");
        msgpack_pack_uint64 (pk, topic->out);
        zb_pack_cstr (pk, "rejected");
        msgpack_pack_uint64 (pk, topic->rejected);
        zb_pack_cstr (pk, "subscribers");
        msgpack_pack_uint64 (pk, topic->subscribers);
        zb_pack_cstr (pk, "seq");
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

//  The frames of a request: [""]? command corr body. 0, or -1 with the
//  MalformedRequest message (its reply has an empty correlation frame).
static int
s_envelope (request_t *req, bool *delimiter, zmq_msg_t **command, zmq_msg_t **corr,
            zmq_msg_t **body, char *err, size_t errlen)
{
    //  A leading empty frame is the delimiter a REQ socket adds: echo it
    *delimiter = req->frames > 0 && zmq_msg_size (&req->part [0]) == 0;
    size_t first = *delimiter ? 1 : 0;
    size_t frames = req->frames - first;
    if (frames != 3) {
        snprintf (err, errlen, "expected 3 frames (command, correlation id, body)%s, got %zu",
                  *delimiter ? " after the empty delimiter" : "", frames);
        return -1;
    }
    *command = &req->part [first];
    *corr = &req->part [first + 1];
    *body = &req->part [first + 2];
    if (zmq_msg_size (*corr) > ZB_MAX_CORRELATION) {
        snprintf (err, errlen, "correlation id is %zu bytes, more than %d",
                  zmq_msg_size (*corr), ZB_MAX_CORRELATION);
        return -1;
    }
    return 0;
}

//  The body of PING, STATS and JOURNAL is ignored, but must be empty or msgpack.
static int
s_check_ignored_body (zmq_msg_t *body, char *err, size_t errlen)
{
    if (zmq_msg_size (body) == 0)
        return 0;
    return zb_msgpack_validate (zmq_msg_data (body), zmq_msg_size (body), err, errlen);
}

//  Classify one request of the ingest pass; a PUT has its entries processed.
static void
s_pass_request (zb_broker_t *self, pass_req_t *pr)
{
    request_t *req = &pr->req;
    pr->kind = PASS_NONE;
    pr->corr = NULL;
    pr->delimiter = false;
    if (req->frames == 0) {
        //  [identity] alone: a ROUTER never delivers this; nothing to answer
        s_log (self, true, "dropped a message without frames");
        return;
    }
    char err [ZB_ERRLEN];
    zmq_msg_t *command, *corr, *body;
    int envelope = s_envelope (req, &pr->delimiter, &command, &corr, &body, err, sizeof err);
    char denied [ZB_ERRLEN];
    if (zb_auth_client (self->auth, &req->identity, &req->part [0], &self->client,
                        denied, sizeof denied) == -1) {
        s_pass_error (self, pr, envelope == 0 ? corr : NULL, "AccessDenied", "%s", denied);
        return;
    }
    if (envelope == -1) {
        s_pass_error (self, pr, NULL, "MalformedRequest", "%s", err);
        return;
    }
    if (s_frame_is (command, ZB_CMD_PUT))
        s_pass_put (self, pr, corr, body);
    else
    if (s_frame_is (command, ZB_CMD_PING)) {
        if (s_check_ignored_body (body, err, sizeof err) == -1)
            s_pass_error (self, pr, corr, "MalformedRequest", "%s", err);
        else {
            pr->kind = PASS_PING;
            pr->corr = corr;
        }
    }
    else {
        char name [64];
        s_printable (zmq_msg_data (command), zmq_msg_size (command), name, sizeof name);
        s_pass_error (self, pr, corr, "UnknownCommand",
                      "unknown command '%s' (the ingest socket serves PUT and PING)", name);
    }
}

//  One ingest pass: drain and process, one journal append, publish, reply.
static int
s_on_ingest (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    s_pass_start (self);
    size_t count = 0;
    size_t bytes = 0;
    int64_t first_read = 0;             //  zclock_usecs, for the ack latency
    int64_t now_ms = zclock_mono ();
    while (count < ZB_DRAIN && bytes < ZB_PASS_BYTES && self->event_buf.size < ZB_PASS_BYTES) {
        pass_req_t *pr = &self->pass [count];
        if (!s_request_recv (self->ingest_h, &pr->req)) {
            s_request_close (&pr->req);
            break;
        }
        if (count == 0 && self->metrics)
            first_read = zclock_usecs ();
        zb_peers_seen (self->peers, zmq_msg_data (&pr->req.identity),
                       zmq_msg_size (&pr->req.identity), now_ms);
        count++;
        for (size_t i = 0; i < pr->req.frames && i < ZB_KEEP_FRAMES; i++)
            bytes += zmq_msg_size (&pr->req.part [i]);
        s_pass_request (self, pr);
    }
    self->ingest_bytes += bytes;
    s_pass_commit (self);
    for (size_t i = 0; i < count; i++) {
        pass_req_t *pr = &self->pass [i];
        if (pr->kind == PASS_PUT) {
            s_pass_reply_put (self, pr);
            if (self->metrics)
                zb_metrics_observe_ack (self->metrics,
                                        (uint64_t) (zclock_usecs () - first_read) * 1000);
        }
        else
        if (pr->kind == PASS_PING)
            s_ping (self, self->ingest_h, &pr->req, pr->delimiter, pr->corr);
        else
        if (pr->kind == PASS_ERROR) {
            const char *message = pr->text_len ? self->text + pr->text_off : pr->code;
            s_reply_error_text (self, self->ingest_h, &pr->req, pr->delimiter, pr->corr,
                                pr->code, message, pr->text_len ? pr->text_len : strlen (pr->code));
        }
        s_request_close (&pr->req);
    }
    s_pass_trim (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Replay sessions

static int s_on_replay (zloop_t *loop, int timer_id, void *arg);

//  Serve the replay sessions one turn; keep the 1 ms timer while they have
//  more to do, drop it when they wait for credit or requests.
static void
s_replay_turn (zb_broker_t *self)
{
    zb_replay_state_t state = zb_replay_serve (self->replay);
    if (state != ZB_REPLAY_IDLE && self->replay_timer == -1) {
        self->replay_timer = zloop_timer (self->loop, 1, 0, s_on_replay, self);
        if (self->replay_timer == -1)
            s_log (self, true, "cannot start the replay timer: replays wait for the next request");
    }
    else
    if (state == ZB_REPLAY_IDLE && self->replay_timer != -1) {
        zloop_timer_end (self->loop, self->replay_timer);
        self->replay_timer = -1;
    }
}

static int
s_on_replay (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_replay_turn ((zb_broker_t *) arg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Rules on the control socket: RULE-PUT, RULE-GET, RULE-LIST, RULE-DELETE

static void
s_pack_rule (zb_broker_t *self, msgpack_packer *pk, zb_rule_t *rule)
{
    zb_topic_t *topic = zb_topics_lookup (self->topics, rule->topic, rule->topic_len);
    msgpack_pack_map (pk, rule->transform ? 8 : 7);
    zb_pack_cstr (pk, "name");
    zb_pack_cstr (pk, rule->name);
    zb_pack_cstr (pk, "pattern");
    msgpack_pack_str_with_body (pk, rule->pattern, rule->pattern_len);
    if (rule->transform) {
        zb_pack_cstr (pk, "transform");
        msgpack_pack_str_with_body (pk, rule->transform, rule->transform_len);
    }
    zb_pack_cstr (pk, "topic");
    msgpack_pack_str_with_body (pk, rule->topic, rule->topic_len);
    zb_pack_cstr (pk, "matched");
    msgpack_pack_uint64 (pk, topic ? topic->in : 0);
    zb_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, topic ? topic->seq : 0);
    zb_pack_cstr (pk, "subscribers");
    msgpack_pack_uint64 (pk, topic ? topic->subscribers : 0);
    zb_pack_cstr (pk, "failed");
    msgpack_pack_uint64 (pk, rule->failed);
}

//  The string fields of a rule request body: only the allowed keys, each a
//  str. 0, or -1 with err.
static int
s_rule_fields (const msgpack_object *body, const char *const *keys, size_t nkeys,
               zb_str_t *values, char *err, size_t errlen)
{
    if (body->type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "body must be a map, not %s", zb_msgpack_type_name (body->type));
        return -1;
    }
    for (size_t k = 0; k < nkeys; k++)
        values [k] = (zb_str_t) { NULL, 0 };
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object *key = &body->via.map.ptr [i].key;
        const msgpack_object *val = &body->via.map.ptr [i].val;
        size_t k = 0;
        while (k < nkeys && !zb_str_eq (key, keys [k]))
            k++;
        if (k == nkeys) {
            char shown [64] = "?";
            if (key->type == MSGPACK_OBJECT_STR)
                s_printable (key->via.str.ptr, key->via.str.size, shown, sizeof shown);
            snprintf (err, errlen, "unknown key '%s'", shown);
            return -1;
        }
        if (values [k].ptr) {
            snprintf (err, errlen, "%s: given twice", keys [k]);
            return -1;
        }
        if (val->type != MSGPACK_OBJECT_STR || !zb_utf8_valid (val->via.str.ptr, val->via.str.size)) {
            snprintf (err, errlen, "%s: must be a UTF-8 string", keys [k]);
            return -1;
        }
        values [k] = (zb_str_t) { val->via.str.size ? val->via.str.ptr : "", val->via.str.size };
    }
    return 0;
}

static void
s_rule_command (zb_broker_t *self, request_t *req, bool delimiter, zmq_msg_t *command,
                zmq_msg_t *corr, zmq_msg_t *body)
{
    void *sock = self->control_h;
    char err [ZB_ERRLEN];
    const char *code;
    msgpack_object root;
    bool list = s_frame_is (command, ZB_CMD_RULE_LIST);
    if (list && zmq_msg_size (body) == 0)
        root.type = MSGPACK_OBJECT_NIL;
    else
    if (s_decode_body (self, body, &root, &code, err, sizeof err) == -1) {
        s_reply_error (self, sock, req, delimiter, corr, code, "%s", err);
        goto done;
    }
    msgpack_packer *pk = &self->reply_pk;
    msgpack_sbuffer_clear (&self->reply_buf);
    if (list) {
        static const char *const keys [] = { "prefix" };
        zb_str_t prefix = { "", 0 };
        if (root.type != MSGPACK_OBJECT_NIL
        &&  s_rule_fields (&root, keys, 1, &prefix, err, sizeof err) == -1) {
            s_reply_error (self, sock, req, delimiter, corr, "InvalidArgument", "RULE-LIST %s", err);
            goto done;
        }
        size_t count = 0;
        for (size_t i = 0; i < zb_rules_size (self->rules); i++)
            if (strncmp (zb_rules_at (self->rules, i)->name, prefix.ptr ? prefix.ptr : "", prefix.len) == 0)
                count++;
        msgpack_pack_map (pk, 2);
        zb_pack_cstr (pk, "where");
        zb_pack_cstr (pk, zb_rules_where (self->rules));
        zb_pack_cstr (pk, "rules");
        msgpack_pack_array (pk, count);
        for (size_t i = 0; i < zb_rules_size (self->rules); i++) {
            zb_rule_t *rule = zb_rules_at (self->rules, i);
            if (strncmp (rule->name, prefix.ptr ? prefix.ptr : "", prefix.len) == 0)
                s_pack_rule (self, pk, rule);
        }
    }
    else
    if (s_frame_is (command, ZB_CMD_RULE_PUT)) {
        static const char *const keys [] = { "name", "pattern", "transform" };
        zb_str_t v [3];
        if (s_rule_fields (&root, keys, 3, v, err, sizeof err) == -1
        ||  (!v [0].ptr && snprintf (err, sizeof err, "name is required") > 0)
        ||  (!v [1].ptr && snprintf (err, sizeof err, "pattern is required") > 0)) {
            s_reply_error (self, sock, req, delimiter, corr, "InvalidArgument", "RULE-PUT %s", err);
            goto done;
        }
        int rc = zb_rules_put (self->rules, v [0].ptr, v [0].len, v [1].ptr, v [1].len,
                               v [2].ptr, v [2].len, &code, err, sizeof err);
        if (rc < 0) {
            s_reply_error (self, sock, req, delimiter, corr, code, "%s", err);
            goto done;
        }
        zb_rule_t *rule = zb_rules_get (self->rules, v [0].ptr, v [0].len);
        //  Its topic now, so that every match can be delivered
        zb_topic_t *topic;
        if (zb_topics_track (self->topics, rule->topic, rule->topic_len, &topic) != 0) {
            zb_rules_delete (self->rules, v [0].ptr, v [0].len, err, sizeof err);
            s_reply_error (self, sock, req, delimiter, corr, "LimitExceeded",
                           "the broker already tracks its maximum of %zu topics (max-topics): "
                           "no room for the rule's topic", zb_topics_tracked (self->topics));
            goto done;
        }
        s_log (self, false, "rule %s %s (topic %s)", rule->name, rc == 1 ? "created" : "replaced",
               rule->topic);
        msgpack_pack_map (pk, 3);
        zb_pack_cstr (pk, "name");
        zb_pack_cstr (pk, rule->name);
        zb_pack_cstr (pk, "topic");
        zb_pack_cstr (pk, rule->topic);
        zb_pack_cstr (pk, "created");
        if (rc == 1)
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
    }
    else {
        bool get = s_frame_is (command, ZB_CMD_RULE_GET);
        static const char *const keys [] = { "name" };
        zb_str_t name;
        if (s_rule_fields (&root, keys, 1, &name, err, sizeof err) == -1
        ||  (!name.ptr && snprintf (err, sizeof err, "name is required") > 0)) {
            s_reply_error (self, sock, req, delimiter, corr, "InvalidArgument", "%s %s",
                           get ? ZB_CMD_RULE_GET : ZB_CMD_RULE_DELETE, err);
            goto done;
        }
        zb_rule_t *rule = zb_rules_get (self->rules, name.ptr, name.len);
        if (!rule) {
            char shown [ZB_RULE_NAME_MAX * 4 + 8];
            s_printable (name.ptr, name.len, shown, sizeof shown);
            s_reply_error (self, sock, req, delimiter, corr, "ResourceNotFound",
                           "no rule named '%s'", shown);
            goto done;
        }
        if (get)
            s_pack_rule (self, pk, rule);
        else {
            char name_copy [ZB_RULE_NAME_MAX + 1];
            snprintf (name_copy, sizeof name_copy, "%s", rule->name);
            if (zb_rules_delete (self->rules, name.ptr, name.len, err, sizeof err) != 0) {
                s_reply_error (self, sock, req, delimiter, corr, "InternalFailure",
                               "the rule was not deleted: %s", err);
                goto done;
            }
            s_log (self, false, "rule %s deleted", name_copy);
            msgpack_pack_map (pk, 2);
            zb_pack_cstr (pk, "name");
            zb_pack_cstr (pk, name_copy);
            zb_pack_cstr (pk, "deleted");
            msgpack_pack_true (pk);
        }
    }
    s_reply (self, sock, req, delimiter, ZB_STATUS_OK, corr, self->reply_buf.data, self->reply_buf.size);
done:
    msgpack_zone_clear (&self->zone);
}

//  --------------------------------------------------------------------------
//  The control socket

static void
s_handle_control (zb_broker_t *self, request_t *req)
{
    void *sock = self->control_h;
    char err [ZB_ERRLEN];
    bool delimiter;
    zmq_msg_t *command, *corr, *body;
    int envelope = s_envelope (req, &delimiter, &command, &corr, &body, err, sizeof err);
    char denied [ZB_ERRLEN];
    if (zb_auth_client (self->auth, &req->identity, &req->part [0], &self->client,
                        denied, sizeof denied) == -1) {
        s_reply_error (self, sock, req, delimiter, envelope == 0 ? corr : NULL, "AccessDenied",
                       "%s", denied);
        return;
    }
    if (envelope == -1) {
        s_reply_error (self, sock, req, delimiter, NULL, "MalformedRequest", "%s", err);
        return;
    }
    if (s_frame_is (command, ZB_CMD_REPLAY)) {
        const char *code;
        if (zb_auth_replay (self->auth, &self->client, body, err, sizeof err) == -1) {
            s_reply_error (self, sock, req, delimiter, corr, "NotAuthorizedForTopic", "%s", err);
            return;
        }
        zb_auth_remember_peer (self->auth, &self->client);
        if (zb_replay_open (self->replay, &req->identity, delimiter, corr, body, &code,
                            err, sizeof err) == -1)
            s_reply_error (self, sock, req, delimiter, corr, code, "%s", err);
        else
            self->replay_requests++;
        return;
    }
    if (s_frame_is (command, ZB_CMD_CREDIT)) {
        if (zb_replay_credit (self->replay, &req->identity, corr, body) == -1) {
            self->requests_failed++;
            s_log (self, true, "request failed: InvalidArgument: bad CREDIT body, replay session closed");
        }
        return;
    }
    if (s_frame_is (command, ZB_CMD_CANCEL)) {
        zb_replay_cancel (self->replay, &req->identity, corr);
        return;
    }
    if (s_frame_is (command, ZB_CMD_RULE_PUT) || s_frame_is (command, ZB_CMD_RULE_GET)
    ||  s_frame_is (command, ZB_CMD_RULE_LIST) || s_frame_is (command, ZB_CMD_RULE_DELETE)) {
        //  Anyone allowed in may read the rules; changing them takes "rules = true"
        if ((s_frame_is (command, ZB_CMD_RULE_PUT) || s_frame_is (command, ZB_CMD_RULE_DELETE))
        &&  zb_auth_rules (&self->client, err, sizeof err) == -1) {
            s_reply_error (self, sock, req, delimiter, corr, "AccessDenied", "%s", err);
            return;
        }
        s_rule_command (self, req, delimiter, command, corr, body);
        return;
    }
    bool ping = s_frame_is (command, ZB_CMD_PING);
    bool stats = s_frame_is (command, ZB_CMD_STATS);
    bool journal = s_frame_is (command, ZB_CMD_JOURNAL);
    if (!ping && !stats && !journal) {
        char name [64];
        s_printable (zmq_msg_data (command), zmq_msg_size (command), name, sizeof name);
        s_reply_error (self, sock, req, delimiter, corr, "UnknownCommand",
                       "unknown command '%s' (the control socket serves PING, STATS, JOURNAL, "
                       "REPLAY, CREDIT, CANCEL, RULE-PUT, RULE-GET, RULE-LIST and RULE-DELETE)", name);
        return;
    }
    if (s_check_ignored_body (body, err, sizeof err) == -1) {
        s_reply_error (self, sock, req, delimiter, corr, "MalformedRequest", "%s", err);
        return;
    }
    if (ping)
        s_ping (self, sock, req, delimiter, corr);
    else
    if (stats)
        s_stats (self, sock, req, delimiter, corr);
    else
        s_journal (self, sock, req, delimiter, corr);
}

static int
s_on_control (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    request_t req;
    for (int n = 0; n < ZB_DRAIN; n++) {
        if (!s_request_recv (self->control_h, &req)) {
            s_request_close (&req);
            break;
        }
        if (req.frames == 0)
            //  [identity] alone: a ROUTER never delivers this; nothing to answer
            s_log (self, true, "dropped a message without frames");
        else
            s_handle_control (self, &req);
        s_request_close (&req);
    }
    //  A new session or new credit: start sending at once
    s_replay_turn (self);
    return 0;
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
        if (len == sizeof ZB_HEARTBEAT_TOPIC - 1 && memcmp (topic, ZB_HEARTBEAT_TOPIC, len) == 0) {
            s_log (self, true, "%s %s (the bus's own topic, not counted)",
                   subscribe ? "subscribe" : "unsubscribe", ZB_HEARTBEAT_TOPIC);
            return;
        }
        bool rule_topic = len > sizeof ZB_RULE_TOPIC_PREFIX - 1
            && memcmp (topic, ZB_RULE_TOPIC_PREFIX, sizeof ZB_RULE_TOPIC_PREFIX - 1) == 0
            && zb_rule_name_ok (topic + sizeof ZB_RULE_TOPIC_PREFIX - 1,
                                   len - (sizeof ZB_RULE_TOPIC_PREFIX - 1));
        if (!rule_topic && !s_valid_detail_type (topic, len)) {
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

static void s_publish_rebuild (zb_broker_t *self, const char *why);
static zsock_t *s_socket (zb_auth_t *auth, int type, const char *name, const char *endpoint,
                          int64_t maxmsgsize, int sndhwm, char *ep, char *err, size_t errlen);

static int
s_on_publish (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    zb_broker_t *self = (zb_broker_t *) arg;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    bool forbidden = false;
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
        const char *key;
        if (!zb_auth_subscription (self->auth, &msg, &key)) {
            char text [64];
            s_printable ((const uint8_t *) zmq_msg_data (&msg) + 1, zmq_msg_size (&msg) - 1,
                         text, sizeof text);
            s_log (self, false, "client key %s subscribed to '%s', which it may not read: "
                   "cutting every publish connection", key ? key : "(none)", text);
            zb_auth_count_forbidden (self->auth);
            forbidden = true;
            continue;
        }
        s_on_subscription (self, (const uint8_t *) zmq_msg_data (&msg), zmq_msg_size (&msg));
    }
    zmq_msg_close (&msg);
    if (forbidden)
        s_publish_rebuild (self, "forbidden subscription");
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
//  Timer: heartbeats on the publish socket

static int
s_on_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zb_broker_t *self = (zb_broker_t *) arg;
    msgpack_packer *pk = &self->hb_pk;
    msgpack_sbuffer_clear (&self->hb_buf);
    msgpack_pack_map (pk, 4);
    zb_pack_cstr (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    zb_pack_cstr (pk, "oldest");
    msgpack_pack_uint64 (pk, zb_journal_oldest (self->journal));
    zb_pack_cstr (pk, "time");
    zb_str_t now = s_now (self);
    msgpack_pack_str_with_body (pk, now.ptr, now.len);
    zb_pack_cstr (pk, "topics");
    //  Every topic with events: its last topic_seq
    size_t size = zb_topics_size (self->topics);
    size_t heads = 0;
    for (size_t i = 0; i < size; i++)
        if (zb_topics_at (self->topics, i)->seq > 0)
            heads++;
    msgpack_pack_map (pk, heads);
    for (size_t i = 0; i < size; i++) {
        zb_topic_t *topic = zb_topics_at (self->topics, i);
        if (topic->seq > 0) {
            msgpack_pack_str_with_body (pk, topic->name, topic->len);
            msgpack_pack_uint64 (pk, topic->seq);
        }
    }
    uint8_t header [ZB_HEADER_SIZE];
    zb_header_encode (header, self->seq, 0);
    if (s_send (self->publish_h, ZB_HEARTBEAT_TOPIC, sizeof ZB_HEARTBEAT_TOPIC, ZMQ_SNDMORE) == -1
    ||  s_send (self->publish_h, header, sizeof header, ZMQ_SNDMORE) == -1
    ||  s_send (self->publish_h, self->hb_buf.data, self->hb_buf.size, 0) == -1)
        s_log (self, true, "cannot publish a heartbeat: %s", zmq_strerror (errno));
    if (self->hb_buf.alloc > 1024 * 1024) {
        msgpack_sbuffer_destroy (&self->hb_buf);
        msgpack_sbuffer_init (&self->hb_buf);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Timer: journal retention and idle replay sessions, every second

static int
s_on_maintenance (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zb_broker_t *self = (zb_broker_t *) arg;
    int64_t start = zclock_mono ();
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t now_ns = (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
    //  A bounded number of records per call, a bounded time per tick: a big
    //  backlog (retention just lowered) goes over several ticks, ingest waits
    //  at most ZB_PRUNE_MS
    uint64_t removed = 0;
    while (true) {
        int rc = zb_journal_prune (self->journal, now_ns, ZB_PRUNE_BATCH);
        if (rc < 0) {
            s_log (self, true, "journal prune failed: %s", zb_journal_last_error (self->journal));
            break;
        }
        removed += (uint64_t) rc;
        if ((size_t) rc < ZB_PRUNE_BATCH || zclock_mono () - start >= ZB_PRUNE_MS)
            break;
    }
    if (removed > 0 && self->verbose)
        s_log (self, false, "journal: pruned %" PRIu64 " records, oldest now %" PRIu64,
               removed, zb_journal_oldest (self->journal));
    if (++self->maintenance_ticks % 10 == 0)
        zb_peers_active (self->peers, zclock_mono ());      //  forget the idle ones
    size_t expired = zb_replay_expire (self->replay, zclock_mono ());
    if (expired > 0)
        s_log (self, true, "closed %zu idle replay session%s (ERROR Timeout)", expired,
               expired == 1 ? "" : "s");
    return 0;
}

//  --------------------------------------------------------------------------
//  Security: keys removed from the allow directory lose their connections

//  Every subscriber goes: the publish socket is closed and bound again on the
//  same endpoint. ZAP runs only at a handshake, and an XPUB cannot drop one
//  peer or refuse one subscription safely (docs/SECURITY.md), so this is how
//  a removed key (or one that subscribed to what it may not read) stops
//  receiving. The others reconnect by themselves, subscribe again, and the
//  journal fills what they missed meanwhile (heartbeats show the gap).
static void
s_publish_rebuild (zb_broker_t *self, const char *why)
{
    int zero = 0;
    zmq_setsockopt (self->publish_h, ZMQ_LINGER, &zero, sizeof zero);
    zloop_reader_end (self->loop, self->publish);
    zmq_unbind (self->publish_h, self->publish_ep);
    zsock_destroy (&self->publish);
    self->publish_h = NULL;
    char err [ZB_ERRLEN];
    self->publish = s_socket (self->auth, ZMQ_XPUB, "publish", self->publish_ep,
                              self->max_subscription, self->publish_hwm, self->publish_ep,
                              err, sizeof err);
    if (!self->publish) {
        //  Nothing can be published any more: stop rather than ack unpublished
        //  events silently (they are stored; a restart serves them)
        s_log (self, false, "cannot re-create the publish socket (%s): stopping", err);
        zsys_interrupted = 1;
        return;
    }
    self->publish_h = zsock_resolve (self->publish);
    if (zloop_reader (self->loop, self->publish, s_on_publish, self) == -1) {
        s_log (self, false, "cannot watch the new publish socket: stopping");
        zsys_interrupted = 1;
        return;
    }
    //  Every subscription went with the old socket
    for (size_t i = zb_topics_size (self->topics); i-- > 0; ) {
        zb_topic_t *topic = zb_topics_at (self->topics, i);
        char name [ZB_MAX_DETAIL_TYPE + 1];
        size_t len = topic->len;
        memcpy (name, topic->name, len);
        while (topic && topic->subscribers > 0) {
            zb_topics_unsubscribe (self->topics, name, len);
            topic = zb_topics_lookup (self->topics, name, len);
        }
    }
    self->prefix_subscriptions = 0;
    self->publish_rebuilds++;
    //  The connection monitor watched the old socket
    if (self->peers && zb_peers_rewatch (self->peers, 1, self->publish_h, err, sizeof err) != 0)
        s_log (self, false, "cannot watch the new publish socket's connections: %s", err);
    s_log (self, false, "publish socket re-created on %s (%s): subscribers reconnect",
           self->publish_ep, why);
}

static void
s_close_peer (void *arg, const void *identity, size_t len)
{
    zb_broker_t *self = (zb_broker_t *) arg;
    size_t closed = zb_replay_close_peer (self->replay, identity, len, "AccessDenied",
                                          "client key removed from the allow directory");
    if (closed)
        s_log (self, false, "closed %zu replay session%s of a removed key", closed,
               closed == 1 ? "" : "s");
}

static int
s_on_auth (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zb_broker_t *self = (zb_broker_t *) arg;
    if (zb_auth_tick (self->auth, s_close_peer, self) == 1)
        s_publish_rebuild (self, "a key was removed from the allow directory");
    return 0;
}

//  Metrics: a scrape waits for a snapshot (metrics.h)

static int
s_on_metrics (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    zb_broker_t *self = (zb_broker_t *) arg;
    if (!zb_metrics_pending (self->metrics))
        return 0;
    int64_t now = zclock_mono ();
    zb_metrics_source_t source = {
        .uptime_ms = s_uptime_ms (self),
        .seq = self->seq,
        .requests = self->requests,
        .requests_failed = self->requests_failed,
        .entries_in = self->entries_in,
        .entries_rejected = self->entries_rejected,
        .ingest_bytes = self->ingest_bytes,
        .duplicates = self->duplicates,
        .journal_failures = self->journal_failures,
        .prefix_subscriptions = self->prefix_subscriptions,
        .replay_requests = self->replay_requests,
        .replay_events = zb_replay_events_sent (self->replay),
        .replay_sessions = zb_replay_sessions (self->replay),
        .rule_failures = self->rule_failures,
        .producers_active = zb_peers_active (self->peers, now),
        .connections = { zb_peers_connections (self->peers, 0),
                         zb_peers_connections (self->peers, 1),
                         zb_peers_connections (self->peers, 2) },
        .topics = self->topics,
        .journal = self->journal,
        .rules = self->rules,
    };
    zb_metrics_update (self->metrics, &source);
    return 0;
}

//  --------------------------------------------------------------------------
//  SIGINT/SIGTERM: the wake pipe (wake.h) makes zmq_poll return however late
//  the signal lands; zloop then sees zsys_interrupted and stops. We run only
//  when the handler we chained to did not set it.

static int
s_on_wake (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    (void) arg;
    zb_wake_drain ();
    return zsys_interrupted ? -1 : 0;
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
        .journal = {
            .dir = ZB_DEFAULT_DATA_DIR,
            .sync = ZB_SYNC_COMMIT,
            .retain_hours = ZB_DEFAULT_RETAIN_HOURS,
            .retain_mb = ZB_DEFAULT_RETAIN_MB,
            .max_mb = 0,                    //  the journal: 2 x retain_mb, at least 64
            .memory_events = ZB_DEFAULT_MEMORY_EVENTS,
            .dedup_window_s = ZB_DEFAULT_DEDUP_WINDOW,
        },
        .heartbeat_ms = ZB_DEFAULT_HEARTBEAT_MS,
        .max_rules = 300,
        .max_pattern_size = 2048,
        .max_control_msg = ZB_DEFAULT_MAX_CONTROL_MSG,
        .max_subscription = ZB_DEFAULT_MAX_SUBSCRIPTION,
        .publish_hwm = ZB_DEFAULT_PUBLISH_HWM,
    };
}

//  Create a socket, set its options and bind it; the bound endpoint goes to ep.
static zsock_t *
s_socket (zb_auth_t *auth, int type, const char *name, const char *endpoint, int64_t maxmsgsize,
          int sndhwm, char *ep, char *err, size_t errlen)
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
    zb_auth_server_apply (auth, sock, name);
    //  A socket re-created on the same endpoint (s_publish_rebuild) may find
    //  it still held for a moment by the old one, closing in the I/O thread
    int rc, tries = 0;
    while ((rc = zmq_bind (handle, endpoint)) == -1 && zmq_errno () == EADDRINUSE
           && strstr (endpoint, ":*") == NULL && ++tries < 50 && ep [0])
        zclock_sleep (20);
    if (rc == -1) {
        snprintf (err, errlen, "cannot bind %s to %s: %s", name, endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    size_t size = ZB_ENDPOINT_MAX;
    if (zmq_getsockopt (handle, ZMQ_LAST_ENDPOINT, ep, &size) == -1)
        snprintf (ep, ZB_ENDPOINT_MAX, "%s", endpoint);
    return sock;
}

//  A topic recovered from the journal: tracked again, its topic_seq continued.
static void
s_restore_topic (void *arg, zb_str_t name, uint64_t topic_seq)
{
    zb_broker_t *self = (zb_broker_t *) arg;
    zb_topic_t *topic = NULL;
    if (name.len == 0 || name.len > ZB_MAX_DETAIL_TYPE
    ||  zb_topics_track (self->topics, name.ptr, name.len, &topic) != 0) {
        //  More topics than --max-topics: entries of this one get
        //  LimitExceeded, so its topic_seq is never reused
        self->restore_skipped++;
        return;
    }
    topic->seq = topic_seq;
}

//  Open the journal and continue its numbering. 0, or -1 with err.
static int
s_journal_open (zb_broker_t *self, const zb_broker_config_t *config, char *err, size_t errlen)
{
    char reason [ZB_ERRLEN] = "";
    self->journal = zb_journal_open (&config->journal, reason, sizeof reason);
    if (!self->journal) {
        if (config->journal.dir)
            snprintf (err, errlen, "cannot open the journal in %s: %s", config->journal.dir,
                      reason [0] ? reason : "unknown error");
        else
            snprintf (err, errlen, "cannot create the memory journal: %s",
                      reason [0] ? reason : "unknown error");
        return -1;
    }
    self->journal_where = strdup (config->journal.dir ? config->journal.dir : "memory");
    self->replay = zb_replay_new (self->control_h, self->journal, ZB_REPLAY_SESSIONS,
                                  ZB_REPLAY_IDLE_MS);
    self->pass = (pass_req_t *) calloc (ZB_DRAIN, sizeof (pass_req_t));
    if (!self->journal_where || !self->replay || !self->pass) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    self->retain_hours = config->journal.retain_hours;
    self->retain_mb = config->journal.retain_mb;
    self->dedup = config->journal.dedup_window_s > 0;
    self->seq = zb_journal_head (self->journal);
    zb_journal_topics (self->journal, s_restore_topic, self);
    zb_journal_info_t info;
    zb_journal_info (self->journal, &info);
    s_log (self, false, "journal %s (%s, sync %s): head %" PRIu64 ", oldest %" PRIu64
           ", %" PRIu64 " events, %zu topics", self->journal_where, info.backend, info.sync,
           info.head, info.oldest, info.events, zb_topics_tracked (self->topics));
    if (self->restore_skipped)
        s_log (self, false, "warning: %zu topics of the journal are beyond max-topics: "
               "their new entries get LimitExceeded", self->restore_skipped);
    return 0;
}

//  Load the rules kept in the data directory, put those of the config, and
//  track every rule's topic. 0, or -1 with err.
static int
s_rules_open (zb_broker_t *self, const zb_broker_config_t *config, char *err, size_t errlen)
{
    char path [4096];
    if (config->journal.dir)
        snprintf (path, sizeof path, "%s/%s", config->journal.dir, ZB_RULES_FILE);
    char reason [ZB_ERRLEN] = "";
    self->max_rules = config->max_rules ? (size_t) config->max_rules : ZB_DEFAULT_MAX_RULES;
    self->rules = zb_rules_new (config->journal.dir ? path : NULL, self->max_rules,
                                (size_t) config->max_pattern_size, self->account, self->region,
                                reason, sizeof reason);
    if (!self->rules) {
        snprintf (err, errlen, "cannot load the rules: %s", reason);
        return -1;
    }
    self->rule_zone_ready = msgpack_zone_init (&self->rule_zone, ZB_ZONE_CHUNK);
    msgpack_sbuffer_init (&self->rule_buf);
    msgpack_packer_init (&self->rule_pk, &self->rule_buf, msgpack_sbuffer_write);
    self->matched = (zb_rule_t **) calloc (self->max_rules, sizeof (zb_rule_t *));
    self->rule_off = (size_t *) calloc (self->max_rules, sizeof (size_t));
    self->rule_len = (size_t *) calloc (self->max_rules, sizeof (size_t));
    if (!self->rule_zone_ready || !self->matched || !self->rule_off || !self->rule_len) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < config->nrules; i++) {
        const zb_rule_spec_t *spec = &config->rules [i];
        const char *code;
        int rc = zb_rules_put (self->rules, spec->name, strlen (spec->name),
                               spec->pattern, strlen (spec->pattern),
                               spec->transform, spec->transform ? strlen (spec->transform) : 0,
                               &code, reason, sizeof reason);
        if (rc < 0) {
            snprintf (err, errlen, "rule %s of the config: %s: %s", spec->name, code, reason);
            return -1;
        }
    }
    for (size_t i = 0; i < zb_rules_size (self->rules); i++) {
        zb_rule_t *rule = zb_rules_at (self->rules, i);
        zb_topic_t *topic;
        if (zb_topics_track (self->topics, rule->topic, rule->topic_len, &topic) != 0) {
            snprintf (err, errlen, "rule %s: no room for its topic (max-topics %zu)",
                      rule->name, zb_topics_tracked (self->topics));
            return -1;
        }
    }
    s_log (self, false, "%zu rules (%s)", zb_rules_size (self->rules), zb_rules_where (self->rules));
    return 0;
}

zb_broker_t *
zb_broker_new (const zb_broker_config_t *config, char *err, size_t errlen)
{
    assert (config);
    assert (config->ingest && config->publish && config->control);
    assert (config->account && config->region);
    assert (config->max_entries > 0 && config->max_event_size > 0 && config->max_topics > 0);
    assert (config->heartbeat_ms > 0);
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
    self->replay_timer = -1;
    self->topics = zb_topics_new ((size_t) config->max_topics);
    self->uuidgen = zb_uuidgen_new ();
    self->zone_ready = msgpack_zone_init (&self->zone, ZB_ZONE_CHUNK);
    msgpack_sbuffer_init (&self->event_buf);
    msgpack_sbuffer_init (&self->reply_buf);
    msgpack_packer_init (&self->reply_pk, &self->reply_buf, msgpack_sbuffer_write);
    msgpack_sbuffer_init (&self->hb_buf);
    msgpack_packer_init (&self->hb_pk, &self->hb_buf, msgpack_sbuffer_write);
    if (!self->account || !self->region || !self->topics || !self->uuidgen || !self->zone_ready) {
        snprintf (err, errlen, "out of memory");
        zb_broker_destroy (&self);
        return NULL;
    }
    self->account_len = strlen (self->account);
    self->region_len = strlen (self->region);

    //  CURVE (and zauth) before any socket binds
    bool usage;                 //  main.c checked the settings: any failure here is 1
    self->auth = zb_auth_new (&config->auth, &usage, err, errlen);
    if (!self->auth) {
        zb_broker_destroy (&self);
        return NULL;
    }
    self->max_subscription = (int64_t) config->max_subscription;
    self->publish_hwm = config->publish_hwm ? (int) config->publish_hwm : ZB_DEFAULT_PUBLISH_HWM;
    int64_t ingest_max = (int64_t) (config->max_entries * config->max_event_size) + 65536;
    self->ingest = s_socket (self->auth, ZMQ_ROUTER, "ingest", config->ingest, ingest_max,
                             ZB_REPLY_HWM, self->ingest_ep, err, errlen);
    if (self->ingest)
        self->publish = s_socket (self->auth, ZMQ_XPUB, "publish", config->publish,
                                  self->max_subscription, self->publish_hwm,
                                  self->publish_ep, err, errlen);
    if (self->publish)
        self->control = s_socket (self->auth, ZMQ_ROUTER, "control", config->control,
                                  (int64_t) config->max_control_msg, ZB_CONTROL_HWM,
                                  self->control_ep, err, errlen);
    if (!self->control) {
        zb_broker_destroy (&self);
        return NULL;
    }
    self->ingest_h = zsock_resolve (self->ingest);
    self->publish_h = zsock_resolve (self->publish);
    self->control_h = zsock_resolve (self->control);
    //  Replays must not lose events silently: EAGAIN or EHOSTUNREACH instead
    int mandatory = 1;
    zmq_setsockopt (self->control_h, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);

    //  The metrics endpoint is bound like the sockets, before the journal
    if (config->metrics) {
        self->metrics = zb_metrics_new (config->metrics, err, errlen);
        if (!self->metrics) {
            zb_broker_destroy (&self);
            return NULL;
        }
    }

    //  The journal after the sockets: a broker that cannot bind leaves no
    //  data directory behind
    if (s_journal_open (self, config, err, errlen) == -1
    ||  s_rules_open (self, config, err, errlen) == -1) {
        zb_broker_destroy (&self);
        return NULL;
    }

    self->loop = zloop_new ();
    assert (self->loop);
    if (zb_edge_reader (&self->ingest_edge, self->loop, self->ingest, s_on_ingest, self) == -1
    ||  zloop_reader (self->loop, self->control, s_on_control, self) == -1
    ||  zloop_reader (self->loop, self->publish, s_on_publish, self) == -1
    ||  zloop_timer (self->loop, 1000, 0, s_on_timer, self) == -1
    ||  zloop_timer (self->loop, (size_t) config->heartbeat_ms, 0, s_on_heartbeat, self) == -1
    ||  zloop_timer (self->loop, 1000, 0, s_on_maintenance, self) == -1
    ||  zloop_timer (self->loop, ZB_AUTH_TICK_MS, 0, s_on_auth, self) == -1) {
        snprintf (err, errlen, "cannot set up the event loop");
        zb_broker_destroy (&self);
        return NULL;
    }
    void *watched [3] = { self->ingest_h, self->publish_h, self->control_h };
    self->peers = zb_peers_new (self->loop, watched, 3, err, errlen);
    if (!self->peers) {
        zb_broker_destroy (&self);
        return NULL;
    }
    if (self->metrics) {
        zmq_pollitem_t item = { NULL, zb_metrics_fd (self->metrics), ZMQ_POLLIN, 0 };
        if (zloop_poller (self->loop, &item, s_on_metrics, self) == -1) {
            snprintf (err, errlen, "cannot set up the event loop");
            zb_broker_destroy (&self);
            return NULL;
        }
    }
    //  After the sockets: zsys_init has installed CZMQ's handler to chain to.
    //  Without the wake pipe a signal can wait for the next timer.
    int wake_fd = zb_wake_install ();
    if (wake_fd != -1) {
        self->wake = true;
        zmq_pollitem_t item = { NULL, wake_fd, ZMQ_POLLIN, 0 };
        if (zloop_poller (self->loop, &item, s_on_wake, self) == -1) {
            snprintf (err, errlen, "cannot set up the event loop");
            zb_broker_destroy (&self);
            return NULL;
        }
    }
    else
    if (errno != ENOENT)            //  ENOENT: CZMQ's handler is off (ZSYS_SIGHANDLER)
        s_log (self, false, "cannot watch for signals (%s): stopping may take a second",
               strerror (errno));
    return self;
}

void
zb_broker_destroy (zb_broker_t **self_p)
{
    assert (self_p);
    zb_broker_t *self = *self_p;
    if (!self)
        return;
    //  The HTTP thread first: it may wait for the loop's snapshot
    zb_metrics_destroy (&self->metrics);
    zb_peers_destroy (&self->peers);
    zb_edge_reader_end (&self->ingest_edge);
    zloop_destroy (&self->loop);
    if (self->wake)
        zb_wake_uninstall ();
    zb_replay_destroy (&self->replay);
    zsock_destroy (&self->ingest);
    zsock_destroy (&self->publish);
    zsock_destroy (&self->control);
    zb_journal_destroy (&self->journal);
    zb_rules_destroy (&self->rules);
    if (self->rule_zone_ready)
        msgpack_zone_destroy (&self->rule_zone);
    msgpack_sbuffer_destroy (&self->rule_buf);
    free (self->matched);
    free (self->rule_off);
    free (self->rule_len);
    zb_auth_destroy (&self->auth);
    free (self->journal_where);
    free (self->pass);
    free (self->results);
    free (self->records);
    free (self->precs);
    free (self->order);
    free (self->jrecords);
    free (self->text);
    free (self->keyslots);
    free (self->fast);
    msgpack_sbuffer_destroy (&self->hb_buf);
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

const char *
zb_broker_metrics_url (zb_broker_t *self)
{
    assert (self);
    return self->metrics ? zb_metrics_url (self->metrics) : NULL;
}

const char *
zb_broker_journal_where (zb_broker_t *self)
{
    assert (self);
    return self->journal_where ? self->journal_where : "";
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
           " entries_in=%" PRIu64 " entries_rejected=%" PRIu64 " topics=%zu prefix_subscriptions=%" PRIu64
           " duplicates=%" PRIu64 " journal_failures=%" PRIu64 " replay_sessions=%zu)",
           self->seq, self->requests, self->requests_failed, self->entries_in,
           self->entries_rejected, zb_topics_size (self->topics), self->prefix_subscriptions,
           self->duplicates, self->journal_failures, self->replay ? zb_replay_sessions (self->replay) : 0);
    return result;
}
