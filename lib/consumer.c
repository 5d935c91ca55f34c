/*  consumer.c - libzbridge's consumer: subscriptions, catch-up from the
    journal, checkpoint, and the receive loop, behind the public API of
    zbridge.h. This is the engine zb-dispatch, zb-warehouse and zb-consumer
    run on (it was common/consumer_main.c's); the programs keep their flags,
    printing and summary.

    Reliability (the Clone pattern, docs/PROTOCOL.md "Reliability"): the SUB
    socket subscribes first (my topics and "$heartbeat"), then the consumer
    takes a snapshot of the journal (JOURNAL) and, unless it starts at
    "latest" without a checkpoint, replays from its start position on a DEALER
    to the control socket while it buffers the live events. catchup.c decides
    what is delivered when; this file moves the bytes: one thread, zmq_poll
    over the SUB and the DEALER. A replay that gets no answer is sent again
    after a growing wait (2 s, 4 s, ... 30 s), logged each time; live events
    are buffered meanwhile (bounded: see catchup.h).

    Content filter (options.pattern): an EventBridge event pattern (pattern.h)
    compiled once; the SUB socket takes only the detail-types the pattern pins
    down (see s_pattern_topics), and events that do not match are dropped at
    the delivery step, after catchup.c has taken them: they move the position
    (and the checkpoint) like any other event, are counted as "filtered", and
    are never delivered.

    Delivery: to options.on_event from zbridge_consumer_run, or one event per
    zbridge_consumer_recv: then the loop stops as soon as one event is
    delivered, and the next call goes on (buffered events first).

    Checkpoint (options.state_dir): the position is saved at most every 100 ms
    when it moved, and at the end, after the flush callback: a saved position
    is never ahead of what the application wrote out. In recv mode an event
    counts as processed when the next call comes. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "catchup.h"
#include "checkpoint.h"
#include "cli.h"
#include "codec.h"
#include "curve.h"
#include "event.h"
#include "lib.h"
#include "pattern.h"
#include "replay_client.h"
#include "rfc3339.h"
#include "subscriber.h"
#include "wire.h"

//  Longest wait in one poll: bounds the time between a signal that lands just
//  before the poll and the loop noticing zsys_interrupted.
#define CONSUMER_WAIT_MS        250
//  Malformed messages logged one by one before we only count them
#define CONSUMER_LOG_MALFORMED  10
//  Live messages read in one go before the control socket gets its turn
#define CONSUMER_BATCH          256
//  Checkpoint: at most this often
#define CONSUMER_CHECKPOINT_MS  100
//  A replay session silent this long is sent again; doubled per attempt
#define CONSUMER_REPLAY_WAIT_MS     2000
#define CONSUMER_REPLAY_WAIT_MAX_MS 30000
//  After an ERROR answer: wait this long before the next attempt; doubled
#define CONSUMER_RETRY_MS       250
#define CONSUMER_RETRY_MAX_MS   10000
//  Default replay credit window, and PING/JOURNAL wait at start-up
#define CONSUMER_CREDIT         1000
#define CONSUMER_PING_MS        1000

typedef enum { FROM_LATEST, FROM_EARLIEST, FROM_SEQ, FROM_TIME } from_mode_t;

typedef struct zbridge_consumer_t consumer_t;

struct zbridge_consumer_t {
    zbridge_consumer_options_t options;
    const char *connect;            //  options.publish
    const char *control;
    const char **topics;            //  exact subscriptions (topics, rules, pattern's)
    size_t ntopics;
    char **owned;                   //  topics [] entries we allocated
    size_t nowned;
    const char **prefixes;          //  prefix subscriptions
    size_t nprefixes;
    size_t nrules;
    from_mode_t from;
    uint64_t from_seq;              //  FROM_SEQ: N
    char from_time [ZB_TIME_MAX];   //  FROM_TIME: normalized
    zb_patterns_t *pattern;         //  compiled options.pattern, or NULL

    zb_subscriber_t *sub;
    zb_catchup_t *catchup;
    zb_replay_client_t *replay;
    zb_checkpoint_t *checkpoint;
    uint64_t delivered;
    uint64_t filtered;              //  taken but not matching the pattern
    uint64_t malformed;
    bool output_failed;             //  the flush callback failed
    bool pending_output;            //  delivered since the last flush
    bool stopped;                   //  zbridge_consumer_stop, on_event's non-zero
    bool recv_mode;                 //  zbridge_consumer_recv: stop at one event
    bool ready;                     //  recv: self->event holds the next event
    zbridge_event_t event;

    //  Replay sessions
    bool time_pending;              //  the first replay starts at from_time
    bool initial;                   //  the start-up catch-up is running
    unsigned attempts;              //  failed attempts of the current replay
    int64_t retry_at;               //  monotonic ms: no session before this
    msgpack_zone zone;              //  an event unpacked for the pattern
    msgpack_object drained;         //  that event's objects
    zb_catchup_head_t *heads;       //  snapshot scratch (heartbeats, JOURNAL)
    size_t heads_size;

    //  Checkpoint
    uint64_t saved;                 //  position in the file
    int64_t saved_at;               //  monotonic ms
    int64_t save_error_at;          //  last save error logged

    char error [512];
};

//  Through the user's log callback, and into the object's error buffer (lib.h)
#define s_log(self, ...) zb_lib_log ((self)->options.log, (self)->options.arg, __VA_ARGS__)
#define s_error(self, code, ...) zb_lib_fail ((self)->error, sizeof (self)->error, (code), __VA_ARGS__)

//  The flush callback, when something was delivered since the last one
static void
s_flush (consumer_t *self)
{
    if (!self->pending_output)
        return;
    self->pending_output = false;
    if (self->options.flush && self->options.flush (self->options.arg) != 0)
        self->output_failed = true;
}

//  --from latest|earliest|seq:N|time:RFC3339; false when not valid.
static bool
s_parse_from (consumer_t *self, const char *text)
{
    if (streq (text, "latest"))
        self->from = FROM_LATEST;
    else
    if (streq (text, "earliest"))
        self->from = FROM_EARLIEST;
    else
    if (strncmp (text, "seq:", 4) == 0) {
        if (!zb_cli_parse_u64 (text + 4, &self->from_seq) || self->from_seq == 0)
            return false;
        self->from = FROM_SEQ;
    }
    else
    if (strncmp (text, "time:", 5) == 0) {
        if (zb_time_normalize (text + 5, strlen (text + 5), self->from_time) < 0)
            return false;
        self->from = FROM_TIME;
    }
    else
        return false;
    return true;
}

//  The detail-types a pattern pins down: the elements of its top-level
//  "detail-type" leaf when that is an array of plain strings (each a valid
//  topic). Writes up to max views into pattern (NULL on anything else, which
//  means "every detail-type may match"); returns how many, 0 for none. A
//  "$or" beside such a leaf does not change it: the fields of an object are
//  AND'ed, so every match has one of these detail-types whatever the $or says.
static size_t
s_pattern_topics (json_object *pattern, const char **out, size_t max)
{
    json_object *leaf;
    if (!json_object_is_type (pattern, json_type_object)
    ||  !json_object_object_get_ex (pattern, "detail-type", &leaf)
    ||  !json_object_is_type (leaf, json_type_array))
        return 0;
    size_t n = json_object_array_length (leaf);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_object *element = json_object_array_get_idx (leaf, i);
        if (!json_object_is_type (element, json_type_string))
            return 0;               //  an operator, a number, null: not a plain name
        const char *name = json_object_get_string (element);
        size_t len = (size_t) json_object_get_string_len (element);
        if (len == 0 || len > ZB_MAX_DETAIL_TYPE || strlen (name) != len)
            return 0;               //  not a topic an event can have: play safe
        out [i] = name;
    }
    return n;
}

//  "sales-events, inventory-events, sales-*"
static void
s_describe_subscriptions (const consumer_t *self, char *out, size_t size)
{
    size_t used = 0;
    out [0] = '\0';
    for (size_t i = 0; i < self->ntopics + self->nprefixes && used < size; i++) {
        bool exact = i < self->ntopics;
        const char *name = exact? self->topics [i]: self->prefixes [i - self->ntopics];
        int n = snprintf (out + used, size - used, "%s%s%s", i? ", ": "", name, exact? "": "*");
        if (n < 0)
            break;
        used += (size_t) n;
    }
}

static int
s_subscribe (consumer_t *self)
{
    char err [256];
    self->sub = zb_subscriber_new (self->connect, err, sizeof err);
    if (!self->sub)
        return s_error (self, ZBRIDGE_EENDPOINT, "%s", err);
    zb_subscriber_set_lazy (self->sub, true);       //  see s_deliver
    for (size_t i = 0; i < self->ntopics; i++)
        if (zb_subscriber_subscribe (self->sub, self->topics [i]) != 0)
            return s_error (self, ZBRIDGE_EINVAL, "cannot subscribe to '%s': %s",
                            self->topics [i], zmq_strerror (zmq_errno ()));
    for (size_t i = 0; i < self->nprefixes; i++)
        if (zb_subscriber_subscribe_prefix (self->sub, self->prefixes [i]) != 0)
            return s_error (self, ZBRIDGE_EINVAL, "cannot subscribe to prefix '%s': %s",
                            self->prefixes [i], zmq_strerror (zmq_errno ()));
    if (zb_subscriber_subscribe_heartbeats (self->sub) != 0)
        return s_error (self, ZBRIDGE_EINVAL, "cannot subscribe to heartbeats: %s",
                        zmq_strerror (zmq_errno ()));
    char topics [1024];
    s_describe_subscriptions (self, topics, sizeof topics);
    s_log (self, "subscribed to %s at %s", topics, self->connect);
    return ZBRIDGE_OK;
}

//  PING the control socket: true when the broker answered
static bool
s_ping (consumer_t *self)
{
    msgpack_unpacked reply;
    msgpack_unpacked_init (&reply);
    char err [256];
    int rc = zb_wire_call (self->control, ZB_CMD_PING, NULL, 0, self->options.start_timeout_ms,
                           &reply, err, sizeof err);
    if (rc == 0) {
        const msgpack_object *seq = zb_map_get (&reply.data, "seq");
        if (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            s_log (self, "broker up, seq %" PRIu64, seq->via.u64);
        else
            s_log (self, "broker up at %s (its PING reply has no seq)", self->control);
    }
    else
    if (self->options.require_broker)
        s_error (self, ZBRIDGE_EUNREACHABLE, "broker not answering on %s (%s)", self->control,
                 err);
    else
    if (!zsys_interrupted)
        s_log (self, "warning: broker not answering on %s (%s); waiting for events anyway",
               self->control, err);
    msgpack_unpacked_destroy (&reply);
    return rc == 0;
}

//  Room for n heads in the snapshot scratch
static void
s_heads_reserve (consumer_t *self, size_t n)
{
    if (n <= self->heads_size)
        return;
    zb_catchup_head_t *heads = (zb_catchup_head_t *) realloc (self->heads, n * sizeof *heads);
    assert (heads);
    self->heads = heads;
    self->heads_size = n;
}

//  Fill a snapshot from a map with a head ("seq" or "head") and "topics":
//  {detail-type: topic_seq}. Views into map. false when it has no head.
static bool
s_snapshot (consumer_t *self, const msgpack_object *map, const char *head_key,
            zb_catchup_snapshot_t *snapshot)
{
    const msgpack_object *head = zb_map_get (map, head_key);
    if (!head || head->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    snapshot->seq = head->via.u64;
    const msgpack_object *oldest = zb_map_get (map, "oldest");
    snapshot->oldest = oldest && oldest->type == MSGPACK_OBJECT_POSITIVE_INTEGER?
                       oldest->via.u64: 0;
    snapshot->nheads = 0;
    const msgpack_object *topics = zb_map_get (map, "topics");
    if (topics && topics->type == MSGPACK_OBJECT_MAP) {
        s_heads_reserve (self, topics->via.map.size);
        for (uint32_t i = 0; i < topics->via.map.size; i++) {
            const msgpack_object_kv *kv = &topics->via.map.ptr [i];
            if (kv->key.type != MSGPACK_OBJECT_STR
            ||  kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER
            ||  memchr (kv->key.via.str.ptr, '\0', kv->key.via.str.size))
                continue;
            zb_catchup_head_t *h = &self->heads [snapshot->nheads++];
            h->topic.ptr = kv->key.via.str.ptr;
            h->topic.len = kv->key.via.str.size;
            h->head = kv->val.via.u64;
        }
    }
    snapshot->heads = self->heads;
    return true;
}

//  JOURNAL: the broker's head and the heads of all its topics, the snapshot
//  the consumer starts from. 1 with *reply holding it, 0 when the broker has
//  no journal or does not answer (logged).
static int
s_journal (consumer_t *self, msgpack_unpacked *reply)
{
    char err [256];
    int rc = zb_wire_call (self->control, ZB_CMD_JOURNAL, NULL, 0,
                           self->options.start_timeout_ms,
                           reply, err, sizeof err);
    if (rc == 0 && reply->data.type == MSGPACK_OBJECT_MAP
    &&  zb_map_get (&reply->data, "head"))
        return 1;
    if (rc == 0) {
        msgpack_unpacked_destroy (reply);
        snprintf (err, sizeof err, "its JOURNAL reply has no head");
    }
    if (!zsys_interrupted)
        s_log (self, "warning: no journal snapshot from %s (%s)", self->control, err);
    return 0;
}

static void
s_malformed (consumer_t *self, const char *what, const char *err)
{
    self->malformed++;
    if (self->malformed <= CONSUMER_LOG_MALFORMED)
        s_log (self, "%s: %s", what, err);
    if (self->malformed == CONSUMER_LOG_MALFORMED)
        s_log (self, "further malformed messages are counted, not logged");
}

static bool
s_done (consumer_t *self)
{
    return zsys_interrupted || self->output_failed || self->stopped || self->ready;
}

//  Deliver one event: to on_event, or (recv) keep it for the caller.
static void
s_deliver (consumer_t *self, const zb_delivery_t *d)
{
    //  Events come checked, not unpacked (the subscriber and the replay client
    //  are lazy): the objects are made here only for a pattern, and by
    //  zbridge_event_json when the caller asks for JSON
    const msgpack_object *event = d->event;
    if (self->pattern) {
        if (!event) {
            size_t offset = 0;
            msgpack_zone_clear (&self->zone);
            if (msgpack_unpack (d->raw.ptr, d->raw.len, &offset, &self->zone, &self->drained)
                != MSGPACK_UNPACK_SUCCESS) {
                s_malformed (self, "event could not be unpacked", "out of memory");
                return;
            }
            event = &self->drained;
        }
        const char *name;
        if (zb_patterns_match (self->pattern, event, &name, 1) == 0) {
            self->filtered++;
            return;
        }
    }
    self->delivered++;
    zb_lib_event_set (&self->event, d->topic, d->seq, d->topic_seq, event, d->raw);
    if (self->recv_mode) {
        self->ready = true;
        return;
    }
    self->pending_output = true;
    if (self->options.on_event (self->options.arg, &self->event) != 0)
        self->stopped = true;
    zb_lib_event_clear (&self->event);
}

//  Deliver the buffered live events that may go now (after a replay ended)
static void
s_drain (consumer_t *self)
{
    while (!s_done (self)) {
        zb_catchup_event_t ev;
        zb_catchup_verdict_t verdict = zb_catchup_next (self->catchup, &ev);
        if (verdict == ZB_CATCHUP_DROP)
            break;
        if (verdict != ZB_CATCHUP_DELIVER)
            continue;
        zb_delivery_t d = {
            .topic = ev.topic, .seq = ev.seq, .topic_seq = ev.topic_seq,
            .missed = 0, .event = NULL, .raw = ev.raw
        };
        s_deliver (self, &d);
    }
}

//  One message from the publish socket: 1 handled, 0 nothing waiting
static int
s_read_live (consumer_t *self)
{
    zb_delivery_t d;
    char err [256];
    int rc = zb_subscriber_recv (self->sub, &d, 0, err, sizeof err);
    if (rc == 0)
        return 0;
    if (rc < 0)
        s_malformed (self, "malformed message dropped", err);
    else
    if (rc == 2) {
        zb_catchup_snapshot_t heartbeat;
        if (s_snapshot (self, d.event, "seq", &heartbeat))
            zb_catchup_heartbeat (self->catchup, &heartbeat);
        else
            s_malformed (self, "malformed heartbeat dropped", "no seq in its body");
    }
    else {
        zb_catchup_event_t ev = {
            .topic = d.topic, .seq = d.seq, .topic_seq = d.topic_seq, .raw = d.raw
        };
        if (zb_catchup_live (self->catchup, &ev) == ZB_CATCHUP_DELIVER)
            s_deliver (self, &d);
    }
    s_drain (self);
    return 1;
}

static int64_t
s_replay_wait_ms (consumer_t *self)
{
    int64_t wait = CONSUMER_REPLAY_WAIT_MS;
    for (unsigned i = 0; i < self->attempts && wait < CONSUMER_REPLAY_WAIT_MAX_MS; i++)
        wait *= 2;
    return wait < CONSUMER_REPLAY_WAIT_MAX_MS? wait: CONSUMER_REPLAY_WAIT_MAX_MS;
}

static int64_t
s_retry_ms (consumer_t *self)
{
    int64_t wait = CONSUMER_RETRY_MS;
    for (unsigned i = 1; i < self->attempts && wait < CONSUMER_RETRY_MAX_MS; i++)
        wait *= 2;
    return wait < CONSUMER_RETRY_MAX_MS? wait: CONSUMER_RETRY_MAX_MS;
}

//  Open a replay session when catchup wants one and none is open
static void
s_replay_open (consumer_t *self)
{
    if (!zb_catchup_replaying (self->catchup) || zb_replay_client_active (self->replay)
    ||  zclock_mono () < self->retry_at)
        return;
    zb_replay_client_request_t request = {
        .topics = self->topics, .ntopics = self->ntopics,
        .prefixes = self->prefixes, .nprefixes = self->nprefixes,
    };
    zb_catchup_replay_range (self->catchup, &request.from, &request.to);
    const char *late = zb_catchup_replay_topic (self->catchup);
    if (late) {
        //  A late replay: of that one topic alone
        request.topics = &late;
        request.ntopics = 1;
        request.prefixes = NULL;
        request.nprefixes = 0;
    }
    else
    if (self->time_pending && zb_catchup_position (self->catchup) == 0)
        request.from_time = self->from_time;
    char err [256];
    if (zb_replay_client_open (self->replay, &request, err, sizeof err) != 0) {
        self->attempts++;
        self->retry_at = zclock_mono () + s_retry_ms (self);
        s_log (self, "%s; retrying in %" PRId64 " ms", err, s_retry_ms (self));
    }
}

static void
s_replay_failed (consumer_t *self, const char *why)
{
    self->attempts++;
    int64_t wait = s_retry_ms (self);
    self->retry_at = zclock_mono () + wait;
    s_log (self, "replay from %s failed (%s); retrying in %" PRId64 " ms (attempt %u)",
           self->control, why, wait, self->attempts + 1);
}

//  One message from the control socket: 1 handled, 0 nothing waiting
static int
s_read_replay (consumer_t *self)
{
    zb_replay_client_msg_t msg;
    zb_replay_client_kind_t kind = zb_replay_client_recv (self->replay, &msg);
    switch (kind) {
        case ZB_REPLAY_CLIENT_NONE:
            return 0;
        case ZB_REPLAY_CLIENT_STRAY:
            break;
        case ZB_REPLAY_CLIENT_MALFORMED:
            s_malformed (self, "malformed replay message dropped", msg.text);
            break;
        case ZB_REPLAY_CLIENT_EVENT: {
            self->attempts = 0;
            zb_catchup_event_t ev = {
                .topic = msg.event.topic, .seq = msg.event.seq,
                .topic_seq = msg.event.topic_seq, .raw = msg.event.raw
            };
            if (zb_catchup_replayed (self->catchup, &ev) == ZB_CATCHUP_DELIVER)
                s_deliver (self, &msg.event);
            break;
        }
        case ZB_REPLAY_CLIENT_END:
            self->attempts = 0;
            self->time_pending = false;
            zb_catchup_end (self->catchup, msg.last, msg.head);
            if (self->initial && !zb_catchup_replaying (self->catchup)) {
                self->initial = false;
                s_log (self, "caught up at seq %" PRIu64 " (%" PRIu64 " events replayed, "
                       "broker head %" PRIu64 ")", zb_catchup_position (self->catchup),
                       zb_catchup_replayed_count (self->catchup), msg.head);
            }
            s_drain (self);
            break;
        case ZB_REPLAY_CLIENT_ERROR:
            s_replay_failed (self, msg.text);
            break;
    }
    return 1;
}

//  Save the position when it moved (at most every CONSUMER_CHECKPOINT_MS
//  unless forced), after flushing what was printed.
static int
s_checkpoint (consumer_t *self, bool force)
{
    if (!self->checkpoint)
        return ZBRIDGE_OK;
    //  Never past an event known missing that waits for its late replay
    uint64_t position = zb_catchup_safe_position (self->catchup);
    int64_t now = zclock_mono ();
    if (position == self->saved || (!force && now - self->saved_at < CONSUMER_CHECKPOINT_MS))
        return ZBRIDGE_OK;
    s_flush (self);
    if (self->output_failed)
        return ZBRIDGE_EOUTPUT;     //  never record events as done that were not written
    char err [512];
    if (zb_checkpoint_save (self->checkpoint, position, err, sizeof err) == 0) {
        self->saved = position;
        self->saved_at = now;
        return ZBRIDGE_OK;
    }
    if (force || now - self->save_error_at >= 10000) {
        s_log (self, "%s", err);
        self->save_error_at = now;
    }
    s_error (self, ZBRIDGE_ECHECKPOINT, "%s", err);
    self->saved_at = now;           //  do not retry on every event
    return ZBRIDGE_ECHECKPOINT;
}

//  Run until s_done, or until deadline (monotonic ms; -1: none) passed.
static void
s_loop (consumer_t *self, int64_t deadline)
{
    void *live = zb_subscriber_handle (self->sub);
    void *control = zb_replay_client_handle (self->replay);
    while (!s_done (self)) {
        if (deadline >= 0 && zclock_mono () >= deadline)
            break;
        s_replay_open (self);

        //  Wait for input, a retry, a session timeout, or a checkpoint due
        int64_t now = zclock_mono ();
        long wait = CONSUMER_WAIT_MS;
        if (self->pending_output)
            wait = 0;
        if (zb_catchup_replaying (self->catchup)) {
            int64_t until = zb_replay_client_active (self->replay)
                          ? s_replay_wait_ms (self) - zb_replay_client_idle_ms (self->replay)
                          : self->retry_at - now;
            if (until < wait)
                wait = until < 0? 0: (long) until;
        }
        if (self->checkpoint && zb_catchup_safe_position (self->catchup) != self->saved) {
            int64_t until = self->saved_at + CONSUMER_CHECKPOINT_MS - now;
            if (until < wait)
                wait = until < 0? 0: (long) until;
        }
        if (deadline >= 0 && deadline - now < wait)
            wait = deadline - now < 0? 0: (long) (deadline - now);
        zmq_pollitem_t items [] = {
            { live, 0, ZMQ_POLLIN, 0 },
            { control, 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll (items, 2, wait);
        if (rc == -1)
            continue;               //  EINTR: the loop checks zsys_interrupted
        if (rc == 0)
            s_flush (self);
        //  Replay messages first: they grant credit and end catch-up
        for (int i = 0; i < CONSUMER_BATCH && !s_done (self) && s_read_replay (self); i++)
            ;
        for (int i = 0; i < CONSUMER_BATCH && !s_done (self) && s_read_live (self); i++)
            ;
        if (self->ready)
            return;                 //  recv: the event goes out before anything else
        if (zb_replay_client_active (self->replay)
        &&  zb_replay_client_idle_ms (self->replay) >= s_replay_wait_ms (self)) {
            int64_t waited = zb_replay_client_idle_ms (self->replay);
            zb_replay_client_cancel (self->replay);
            self->attempts++;
            s_log (self, "no answer to REPLAY from %s within %" PRId64 " ms; sending it again "
                   "(attempt %u)", self->control, waited, self->attempts + 1);
        }
        s_checkpoint (self, false);
    }
}

//  Where to start: the checkpoint, else --from; with the journal's snapshot
//  when the broker gave one. ZBRIDGE_OK, or ZBRIDGE_ECHECKPOINT.
static int
s_start (consumer_t *self, bool broker_up)
{
    uint64_t position = 0;
    bool resume = false;
    if (self->checkpoint) {
        char err [512];
        int rc = zb_checkpoint_load (self->checkpoint, &position, err, sizeof err);
        if (rc < 0)
            return s_error (self, ZBRIDGE_ECHECKPOINT, "%s", err);
        resume = rc == 1;
        self->saved = position;
        self->saved_at = zclock_mono ();
    }
    msgpack_unpacked journal;
    msgpack_unpacked_init (&journal);
    zb_catchup_snapshot_t snapshot;
    bool have = broker_up && s_journal (self, &journal)
             && s_snapshot (self, &journal.data, "head", &snapshot);
    const zb_catchup_snapshot_t *snap = have? &snapshot: NULL;
    if (have)
        s_log (self, "journal at seq %" PRIu64 " (oldest %" PRIu64 ")", snapshot.seq,
               snapshot.oldest);

    if (resume) {
        s_log (self, "resuming after seq %" PRIu64 " (checkpoint %s)", position,
               zb_checkpoint_path (self->checkpoint));
        zb_catchup_start_replay (self->catchup, position, 0, position == 0, snap);
    }
    else
    if (self->from == FROM_LATEST) {
        if (snap)
            zb_catchup_start_at (self->catchup, snap);
        else {
            s_log (self, "starting without a snapshot: events are delivered as they come "
                   "until the broker's first heartbeat");
            zb_catchup_start_unanchored (self->catchup);
        }
    }
    else
    if (self->from == FROM_EARLIEST)
        zb_catchup_start_replay (self->catchup, 0, 0, true, snap);
    else
    if (self->from == FROM_SEQ) {
        position = self->from_seq - 1;
        //  Past the head: wait for seq N from the head on
        if (snap && position > snap->seq)
            position = snap->seq;
        zb_catchup_start_replay (self->catchup, position, self->from_seq, position == 0, snap);
    }
    else {
        self->time_pending = true;
        zb_catchup_start_replay (self->catchup, 0, 0, false, snap);
    }
    self->initial = zb_catchup_replaying (self->catchup);
    if (self->initial) {
        uint64_t from, to;
        zb_catchup_replay_range (self->catchup, &from, &to);
        char range [64];
        if (to)
            snprintf (range, sizeof range, "%" PRIu64 "..%" PRIu64, from, to);
        else
            snprintf (range, sizeof range, "%" PRIu64 "..head", from);
        if (self->time_pending && from == 1)
            s_log (self, "catching up: replaying from %s", self->from_time);
        else
            s_log (self, "catching up: replaying seq %s", range);
    }
    else
    if (zb_catchup_anchored (self->catchup)) {
        if (self->from == FROM_SEQ && !resume
        &&  self->from_seq > zb_catchup_position (self->catchup) + 1)
            s_log (self, "starting after seq %" PRIu64 ", delivering from seq %" PRIu64,
                   zb_catchup_position (self->catchup), self->from_seq);
        else
            s_log (self, "starting after seq %" PRIu64, zb_catchup_position (self->catchup));
    }
    msgpack_unpacked_destroy (&journal);
    return ZBRIDGE_OK;
}

static void
s_catchup_log (void *arg, const char *line)
{
    s_log ((const consumer_t *) arg, "%s", line);
}

//  ---------------------------------------------------------------------------
//  Set-up

void
zbridge_consumer_options_init_sized (zbridge_consumer_options_t *options, size_t size)
{
    if (!options)
        return;
    zbridge_consumer_options_t defaults = {
        .size = size < sizeof defaults? size: sizeof defaults,
        .publish = ZB_DEFAULT_PUBLISH,
        .control = ZB_DEFAULT_CONTROL,
        .credit = CONSUMER_CREDIT,
        .start_timeout_ms = CONSUMER_PING_MS,
    };
    memcpy (options, &defaults, defaults.size);
}

//  Add topic to the exact subscriptions unless it is there; copy: keep it.
static int
s_add_topic (consumer_t *self, const char *topic, bool copy)
{
    for (size_t i = 0; i < self->ntopics; i++)
        if (streq (self->topics [i], topic))
            return ZBRIDGE_OK;
    const char **topics = (const char **) realloc (self->topics,
                                                  (self->ntopics + 2) * sizeof (char *));
    if (!topics)
        return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
    self->topics = topics;
    if (copy) {
        char **owned = (char **) realloc (self->owned, (self->nowned + 1) * sizeof (char *));
        if (!owned)
            return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
        self->owned = owned;
        char *dup = strdup (topic);
        if (!dup)
            return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
        self->owned [self->nowned++] = dup;
        topic = dup;
    }
    self->topics [self->ntopics++] = topic;
    self->topics [self->ntopics] = NULL;
    return ZBRIDGE_OK;
}

static int
s_add_prefix (consumer_t *self, const char *prefix)
{
    const char **prefixes = (const char **) realloc (self->prefixes,
                                                    (self->nprefixes + 2) * sizeof (char *));
    if (!prefixes)
        return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
    self->prefixes = prefixes;
    self->prefixes [self->nprefixes++] = prefix;
    self->prefixes [self->nprefixes] = NULL;
    return ZBRIDGE_OK;
}

//  Topics, prefixes, rules and the pattern: what to subscribe to.
static int
s_setup_subscriptions (consumer_t *self)
{
    const zbridge_consumer_options_t *o = &self->options;
    int rc = ZBRIDGE_OK;
    for (const char *const *t = o->topics; t && *t && rc == ZBRIDGE_OK; t++) {
        size_t len = strlen (*t);
        if (len == 0 || len > ZB_MAX_DETAIL_TYPE)
            return s_error (self, ZBRIDGE_EINVAL, "topic '%.40s' is not a detail-type (1 to "
                            "%d bytes)", *t, ZB_MAX_DETAIL_TYPE);
        rc = s_add_topic (self, *t, true);
        //  "$rule/NAME" given as a topic is a rule too
        if (strncmp (*t, ZB_RULE_TOPIC_PREFIX, strlen (ZB_RULE_TOPIC_PREFIX)) == 0)
            self->nrules++;
    }
    for (const char *const *r = o->rules; r && *r && rc == ZBRIDGE_OK; r++) {
        if (!zb_rule_name_ok (*r, strlen (*r)))
            return s_error (self, ZBRIDGE_EINVAL, "rule '%.80s' is not a rule name (1 to %d "
                            "characters of A-Z a-z 0-9 . - _)", *r, ZB_RULE_NAME_MAX);
        char topic [ZB_LIB_TOPIC_MAX + 1];
        snprintf (topic, sizeof topic, ZB_RULE_TOPIC_PREFIX "%s", *r);
        rc = s_add_topic (self, topic, true);
        self->nrules++;
    }
    for (const char *const *p = o->prefixes; p && *p && rc == ZBRIDGE_OK; p++) {
        if (strlen (*p) > ZB_MAX_DETAIL_TYPE)
            return s_error (self, ZBRIDGE_EINVAL, "prefix '%.40s...' is longer than %d bytes",
                            *p, ZB_MAX_DETAIL_TYPE);
        rc = s_add_prefix (self, *p);
    }
    if (rc != ZBRIDGE_OK || !o->pattern)
        return rc;

    char err [512];
    self->pattern = zb_patterns_new ();
    if (!self->pattern)
        return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
    if (zb_patterns_add (self->pattern, "pattern", o->pattern, strlen (o->pattern),
                         err, sizeof err) != 0)
        return s_error (self, ZBRIDGE_EPATTERN, "not a valid event pattern: %s", err);
    //  With rules alone, the pattern filters the rules' deliveries: nothing
    //  more to subscribe to
    if (self->nrules > 0 && self->ntopics == self->nrules && self->nprefixes == 0)
        return ZBRIDGE_OK;
    //  It compiled, so it parses; the parse only serves to find detail-types
    json_object *json = zb_json_parse (o->pattern, strlen (o->pattern), err, sizeof err);
    //  The pattern's size limit keeps this small
    size_t room = ZB_PATTERN_DEFAULT_MAX_SIZE;
    const char **names = (const char **) calloc (room, sizeof (char *));
    if (!names) {
        json_object_put (json);
        return s_error (self, ZBRIDGE_ENOMEM, "out of memory");
    }
    size_t n = json? s_pattern_topics (json, names, room): 0;
    if (n == 0) {
        bool all = false;
        for (size_t i = 0; i < self->nprefixes; i++)
            all = all || !*self->prefixes [i];
        if (!all)
            rc = s_add_prefix (self, "");
    }
    for (size_t i = 0; i < n && rc == ZBRIDGE_OK; i++)
        rc = s_add_topic (self, names [i], true);
    free (names);
    json_object_put (json);
    return rc;
}

//  --from latest|earliest|seq:N|time:RFC3339
static int
s_setup_from (consumer_t *self)
{
    self->from = FROM_LATEST;
    if (self->options.from && !s_parse_from (self, self->options.from))
        return s_error (self, ZBRIDGE_EINVAL, "from wants latest, earliest, seq:N (N >= 1) or "
                        "time:RFC3339 (e.g. time:2026-11-26T17:15:01Z), not '%.80s'",
                        self->options.from);
    return ZBRIDGE_OK;
}

static int
s_check_options (const zbridge_consumer_options_t *o, zbridge_error_t *error)
{
    if (!o)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "options is NULL");
    if (o->size < offsetof (zbridge_consumer_options_t, max_msg_size) + sizeof (o->max_msg_size)
    ||  o->size > sizeof *o)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "options were not set up with "
                             "zbridge_consumer_options_init");
    if (!o->publish || !*o->publish)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "publish endpoint is empty");
    if (!o->control || !*o->control)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "control endpoint is empty");
    bool any = (o->topics && *o->topics) || (o->prefixes && *o->prefixes)
            || (o->rules && *o->rules) || o->pattern;
    if (!any)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "give at least one topic, prefix, rule "
                             "or a pattern");
    if (o->credit < 1 || o->credit > ZB_MAX_CREDIT)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "credit must be 1 to %d, not %" PRIu32,
                             ZB_MAX_CREDIT, o->credit);
    if (o->start_timeout_ms < 0)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "start_timeout_ms must be >= 0, not %d",
                             o->start_timeout_ms);
    if (o->state_dir && !*o->state_dir)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "state_dir is empty");
    if (o->state_dir && !o->name)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "state_dir needs a name (the checkpoint's "
                             "name)");
    if (o->name && !zb_checkpoint_name_valid (o->name))
        return zb_lib_error (error, ZBRIDGE_EINVAL, "name wants 1 to %d characters of A-Z a-z "
                             "0-9 . _ - (not starting with '.'), not '%.120s'",
                             ZB_CHECKPOINT_NAME_MAX, o->name);
    //  The certificates and the frame size, for every socket made from now on
    //  (common/curve.h: process-wide)
    char reason [512];
    if (zb_curve_client_configure (o->curve_server, o->curve_cert, o->max_msg_size,
                                   reason, sizeof reason) != 0)
        return zb_lib_error (error, ZBRIDGE_EINVAL, "%s", reason);
    return ZBRIDGE_OK;
}

zbridge_consumer_t *
zbridge_consumer_new (const zbridge_consumer_options_t *options, zbridge_error_t *error)
{
    zb_lib_error (error, ZBRIDGE_OK, "%s", "");
    if (s_check_options (options, error) != ZBRIDGE_OK)
        return NULL;
    consumer_t *self = (consumer_t *) calloc (1, sizeof (consumer_t));
    if (!self) {
        zb_lib_error (error, ZBRIDGE_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy (&self->options, options, options->size);
    self->connect = self->options.publish;
    self->control = self->options.control;
    msgpack_zone_init (&self->zone, 16 * 1024);

    int rc = s_setup_from (self);
    if (rc == ZBRIDGE_OK)
        rc = s_setup_subscriptions (self);
    if (rc == ZBRIDGE_OK) {
        zb_catchup_config_t config = {
            .topics = self->topics, .ntopics = self->ntopics,
            .prefixes = self->prefixes, .nprefixes = self->nprefixes,
            .log = s_catchup_log, .log_arg = self,
        };
        self->catchup = zb_catchup_new (&config);
        if (!self->catchup)
            rc = s_error (self, ZBRIDGE_ENOMEM, "out of memory");
    }
    char err [512];
    if (rc == ZBRIDGE_OK && self->options.state_dir) {
        self->checkpoint = zb_checkpoint_open (self->options.state_dir, self->options.name,
                                               err, sizeof err);
        if (!self->checkpoint)
            rc = s_error (self, ZBRIDGE_ECHECKPOINT, "%s", err);
    }
    if (rc == ZBRIDGE_OK) {
        self->replay = zb_replay_client_new (self->control, self->options.credit,
                                             err, sizeof err);
        if (!self->replay)
            rc = s_error (self, ZBRIDGE_EENDPOINT, "%s", err);
        else
            zb_replay_client_set_lazy (self->replay, true);     //  see s_deliver
    }
    if (rc == ZBRIDGE_OK)
        rc = s_subscribe (self);
    if (rc == ZBRIDGE_OK) {
        bool up = s_ping (self);
        if (!up && self->options.require_broker)
            rc = ZBRIDGE_EUNREACHABLE;
        else
            rc = s_start (self, up);
    }
    if (rc != ZBRIDGE_OK) {
        zb_lib_error (error, rc, "%s", self->error);
        zbridge_consumer_destroy (&self);
    }
    return self;
}

void
zbridge_consumer_destroy (zbridge_consumer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    consumer_t *self = *self_p;
    if (self->catchup && self->checkpoint) {
        s_flush (self);
        s_checkpoint (self, true);
    }
    zb_lib_event_clear (&self->event);
    zb_replay_client_destroy (&self->replay);
    zb_subscriber_destroy (&self->sub);
    zb_checkpoint_destroy (&self->checkpoint);
    zb_catchup_destroy (&self->catchup);
    msgpack_zone_destroy (&self->zone);
    free (self->heads);
    for (size_t i = 0; i < self->nowned; i++)
        free (self->owned [i]);
    free (self->owned);
    free (self->topics);
    free (self->prefixes);
    zb_patterns_destroy (&self->pattern);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Delivery

int
zbridge_consumer_run (zbridge_consumer_t *self)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!self->options.on_event)
        return s_error (self, ZBRIDGE_EINVAL, "run needs options.on_event (else use recv)");
    self->recv_mode = false;
    self->ready = false;
    self->stopped = false;
    s_drain (self);
    s_loop (self, -1);
    self->pending_output = true;
    s_flush (self);
    s_checkpoint (self, true);
    if (self->output_failed)
        return s_error (self, ZBRIDGE_EOUTPUT, "the flush callback failed");
    if (self->stopped)
        return ZBRIDGE_OK;
    return s_error (self, ZBRIDGE_EINTR, "interrupted");
}

void
zbridge_consumer_stop (zbridge_consumer_t *self)
{
    if (self)
        self->stopped = true;
}

int
zbridge_consumer_recv (zbridge_consumer_t *self, zbridge_event_t **event, int timeout_ms)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    if (!event)
        return s_error (self, ZBRIDGE_EINVAL, "event is NULL");
    *event = NULL;
    zb_lib_event_clear (&self->event);
    self->recv_mode = true;
    self->ready = false;
    self->stopped = false;
    //  The event handed out before is processed: the checkpoint may pass it
    s_checkpoint (self, false);
    int64_t deadline = timeout_ms < 0? -1: zclock_mono () + timeout_ms;
    s_drain (self);
    if (!self->ready)
        s_loop (self, deadline);
    if (self->ready) {
        *event = &self->event;
        return ZBRIDGE_OK;
    }
    if (zsys_interrupted)
        return s_error (self, ZBRIDGE_EINTR, "interrupted");
    if (self->output_failed)
        return s_error (self, ZBRIDGE_EOUTPUT, "the flush callback failed");
    return s_error (self, ZBRIDGE_ETIMEOUT, "no event within %d ms", timeout_ms);
}

int
zbridge_consumer_checkpoint (zbridge_consumer_t *self)
{
    if (!self)
        return ZBRIDGE_EINVAL;
    return s_checkpoint (self, true);
}

int
zbridge_consumer_stats (zbridge_consumer_t *self, zbridge_consumer_stats_t *stats)
{
    if (!self || !stats)
        return ZBRIDGE_EINVAL;
    stats->delivered = self->delivered;
    stats->filtered = self->filtered;
    stats->malformed = self->malformed;
    stats->missed = zb_catchup_missed (self->catchup);
    stats->replayed = zb_catchup_replayed_count (self->catchup);
    stats->position = zb_catchup_position (self->catchup);
    return ZBRIDGE_OK;
}

const char *
zbridge_consumer_error (zbridge_consumer_t *self)
{
    return self? self->error: "self is NULL";
}
