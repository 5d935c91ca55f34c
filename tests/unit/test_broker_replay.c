/*  test_broker_replay.c - replay sessions (broker/replay.c) against a memory
    journal, over a real ROUTER (mandatory routing, as the broker sets it) and
    a DEALER client on inproc: credit is never exceeded, a session parks on
    the next wanted event and END needs no credit, filters, CREDIT/CANCEL,
    bad requests, the session limit, idle timeouts, a client whose queue is
    full (nothing lost, nothing repeated) and a client that went away. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>
#include <msgpack.h>

#include "../../broker/journal.h"
#include "../../broker/replay.h"
#include "wire.h"

#define NS_PER_S    1000000000ULL
#define T0          (1700000000ULL * NS_PER_S)      //  arrival of seq 1; seq n at T0 + n s
#define MAX_MSGS    4096

//  What the client received, in order
typedef struct {
    char status [8];
    char corr [32];
    uint64_t seq;                   //  EVENT: header seq
    uint64_t topic_seq;
    char topic [64];
    msgpack_unpacked body;          //  END, ERROR: the map (strings point into frame)
    zmq_msg_t frame;
    bool has_body;
} msg_t;

typedef struct {
    void *ctx;
    void *router;
    void *dealer;
    zb_journal_t *journal;
    zb_replay_t *replay;
    uint64_t seq;
    uint64_t topic_seq [2];
    msg_t msgs [MAX_MSGS];
    size_t nmsgs;
    char endpoint [64];
} fixture_t;

static const char *const s_topics [2] = { "a-events", "b-events" };

//  Append count records: odd seqs on a-events, even on b-events.
static void
s_append (fixture_t *fx, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t seq = ++fx->seq;
        int t = seq % 2 ? 0 : 1;
        char event [32], id [40];
        int len = snprintf (event, sizeof event, "event-%" PRIu64, seq);
        snprintf (id, sizeof id, "00000000-0000-4000-8000-%012" PRIu64, seq);
        zb_record_t record = {
            .seq = seq,
            .topic_seq = ++fx->topic_seq [t],
            .arrival_ns = T0 + seq * NS_PER_S,
            .topic = { s_topics [t], strlen (s_topics [t]) },
            .event = { event, (size_t) len },
            .id = { id, 36 },
            .idem_key = { NULL, 0 },
        };
        char err [256];
        assert_int_equal (zb_journal_append (fx->journal, &record, 1, err, sizeof err), 0);
    }
}

static void
s_connect_client (fixture_t *fx, int hwm)
{
    fx->dealer = zmq_socket (fx->ctx, ZMQ_DEALER);
    assert_non_null (fx->dealer);
    int linger = 0;
    zmq_setsockopt (fx->dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (hwm)
        zmq_setsockopt (fx->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (fx->dealer, ZMQ_ROUTING_ID, "client-1", 8);
    assert_int_equal (zmq_connect (fx->dealer, fx->endpoint), 0);
}

static int
s_setup_hwm (void **state, int hwm, size_t max_sessions, int64_t idle_ms)
{
    static int instance = 0;
    fixture_t *fx = (fixture_t *) calloc (1, sizeof (fixture_t));
    assert_non_null (fx);
    fx->ctx = zmq_ctx_new ();
    fx->router = zmq_socket (fx->ctx, ZMQ_ROUTER);
    int on = 1, linger = 0;
    zmq_setsockopt (fx->router, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    zmq_setsockopt (fx->router, ZMQ_LINGER, &linger, sizeof linger);
    if (hwm) {
        zmq_setsockopt (fx->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    snprintf (fx->endpoint, sizeof fx->endpoint, "inproc://replay-test-%d", instance++);
    assert_int_equal (zmq_bind (fx->router, fx->endpoint), 0);
    s_connect_client (fx, hwm);
    zb_journal_config_t config = {
        .dir = NULL, .sync = ZB_SYNC_OS, .memory_events = 100000, .dedup_window_s = 300,
    };
    char err [256];
    fx->journal = zb_journal_open (&config, err, sizeof err);
    assert_non_null (fx->journal);
    fx->replay = zb_replay_new (fx->router, fx->journal, max_sessions, idle_ms);
    assert_non_null (fx->replay);
    *state = fx;
    return 0;
}

static int s_setup (void **state) { return s_setup_hwm (state, 0, 1000, 60000); }
static int s_setup_small (void **state) { return s_setup_hwm (state, 0, 2, 5000); }
static int s_setup_full (void **state) { return s_setup_hwm (state, 4, 1000, 60000); }

static void
s_forget (fixture_t *fx)
{
    for (size_t i = 0; i < fx->nmsgs; i++)
        if (fx->msgs [i].has_body) {
            msgpack_unpacked_destroy (&fx->msgs [i].body);
            zmq_msg_close (&fx->msgs [i].frame);
        }
    fx->nmsgs = 0;
}

static int
s_teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_forget (fx);
    zb_replay_destroy (&fx->replay);
    assert_null (fx->replay);
    zb_journal_destroy (&fx->journal);
    if (fx->dealer)
        zmq_close (fx->dealer);
    zmq_close (fx->router);
    zmq_ctx_term (fx->ctx);
    free (fx);
    return 0;
}

//  --------------------------------------------------------------------------
//  Requests: the client sends them, the router receives them (so it knows
//  the client), the test hands them to replay.c as broker.c does.

typedef struct {
    int rc;
    const char *code;
    char err [256];
} outcome_t;

static outcome_t
s_request (fixture_t *fx, const char *command, const char *corr, const void *body, size_t len)
{
    assert_int_equal (zmq_send (fx->dealer, command, strlen (command), ZMQ_SNDMORE), (int) strlen (command));
    zmq_send (fx->dealer, corr, strlen (corr), ZMQ_SNDMORE);
    zmq_send (fx->dealer, body, len, 0);
    zmq_msg_t identity, cmd, c, b;
    zmq_msg_init (&identity);
    zmq_msg_init (&cmd);
    zmq_msg_init (&c);
    zmq_msg_init (&b);
    assert_true (zmq_msg_recv (&identity, fx->router, 0) >= 0);
    assert_true (zmq_msg_recv (&cmd, fx->router, 0) >= 0);
    assert_true (zmq_msg_recv (&c, fx->router, 0) >= 0);
    assert_true (zmq_msg_recv (&b, fx->router, 0) >= 0);
    assert_false (zmq_msg_more (&b));
    outcome_t out = { 0, NULL, "" };
    if (streq (command, "REPLAY"))
        out.rc = zb_replay_open (fx->replay, &identity, false, &c, &b, &out.code, out.err, sizeof out.err);
    else
    if (streq (command, "CREDIT"))
        out.rc = zb_replay_credit (fx->replay, &identity, &c, &b);
    else
        out.rc = zb_replay_cancel (fx->replay, &identity, &c);
    zmq_msg_close (&identity);
    zmq_msg_close (&cmd);
    zmq_msg_close (&c);
    zmq_msg_close (&b);
    return out;
}

//  REPLAY with a body: uint values (0: key left out), from-time, and
//  topics/prefixes as NULL-terminated lists (NULL: left out).
typedef struct {
    uint64_t from, to, credit;
    const char *from_time;
    const char *const *topics;
    const char *const *prefixes;
} replay_args_t;

#define NONE 0

static size_t
s_count (const char *const *list)
{
    size_t n = 0;
    while (list && list [n])
        n++;
    return n;
}

static void
s_pack_strings (msgpack_packer *pk, const char *key, const char *const *list)
{
    msgpack_pack_str_with_body (pk, key, strlen (key));
    msgpack_pack_array (pk, s_count (list));
    for (size_t i = 0; list [i]; i++)
        msgpack_pack_str_with_body (pk, list [i], strlen (list [i]));
}

static outcome_t
s_replay (fixture_t *fx, const char *corr, replay_args_t a)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    size_t n = (a.from != NONE) + (a.to != NONE) + (a.credit != NONE) + (a.from_time != NULL)
             + (a.topics != NULL) + (a.prefixes != NULL);
    msgpack_pack_map (&pk, n);
    if (a.from != NONE) {
        msgpack_pack_str_with_body (&pk, "from", 4);
        msgpack_pack_uint64 (&pk, a.from);
    }
    if (a.to != NONE) {
        msgpack_pack_str_with_body (&pk, "to", 2);
        msgpack_pack_uint64 (&pk, a.to);
    }
    if (a.credit != NONE) {
        msgpack_pack_str_with_body (&pk, "credit", 6);
        msgpack_pack_uint64 (&pk, a.credit);
    }
    if (a.from_time) {
        msgpack_pack_str_with_body (&pk, "from-time", 9);
        msgpack_pack_str_with_body (&pk, a.from_time, strlen (a.from_time));
    }
    if (a.topics)
        s_pack_strings (&pk, "topics", a.topics);
    if (a.prefixes)
        s_pack_strings (&pk, "prefixes", a.prefixes);
    outcome_t out = s_request (fx, "REPLAY", corr, buf.data, buf.size);
    msgpack_sbuffer_destroy (&buf);
    return out;
}

#define REPLAY(fx, corr, ...) s_replay ((fx), (corr), (replay_args_t) { __VA_ARGS__ })

static void
s_credit (fixture_t *fx, const char *corr, uint64_t credit)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "credit", 6);
    msgpack_pack_uint64 (&pk, credit);
    outcome_t out = s_request (fx, "CREDIT", corr, buf.data, buf.size);
    assert_int_equal (out.rc, 0);
    msgpack_sbuffer_destroy (&buf);
}

//  --------------------------------------------------------------------------
//  The client's side

//  Read one message if one comes within timeout_ms; false when none.
static bool
s_recv_one (fixture_t *fx, int timeout_ms)
{
    zmq_pollitem_t item = { fx->dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    assert_true (fx->nmsgs < MAX_MSGS);
    msg_t *m = &fx->msgs [fx->nmsgs++];
    memset (m, 0, sizeof *m);
    zmq_msg_t frames [6];
    size_t count = 0;
    do {
        assert_true (count < 6);
        zmq_msg_init (&frames [count]);
        assert_true (zmq_msg_recv (&frames [count], fx->dealer, 0) >= 0);
        count++;
    } while (zmq_msg_more (&frames [count - 1]));
    snprintf (m->status, sizeof m->status, "%.*s", (int) zmq_msg_size (&frames [0]),
              (char *) zmq_msg_data (&frames [0]));
    snprintf (m->corr, sizeof m->corr, "%.*s", (int) zmq_msg_size (&frames [1]),
              (char *) zmq_msg_data (&frames [1]));
    if (streq (m->status, "EVENT")) {
        assert_int_equal (count, 5);
        //  topic + NUL, header, the event exactly as stored
        size_t tlen = zmq_msg_size (&frames [2]);
        assert_true (tlen >= 2 && ((char *) zmq_msg_data (&frames [2])) [tlen - 1] == 0);
        snprintf (m->topic, sizeof m->topic, "%s", (char *) zmq_msg_data (&frames [2]));
        assert_int_equal (zb_header_decode (zmq_msg_data (&frames [3]), zmq_msg_size (&frames [3]),
                                            &m->seq, &m->topic_seq), 0);
        char expected [32];
        int len = snprintf (expected, sizeof expected, "event-%" PRIu64, m->seq);
        assert_int_equal (zmq_msg_size (&frames [4]), len);
        assert_memory_equal (zmq_msg_data (&frames [4]), expected, len);
    }
    else {
        assert_int_equal (count, 3);
        msgpack_unpacked_init (&m->body);
        m->has_body = true;
        zmq_msg_init (&m->frame);
        zmq_msg_move (&m->frame, &frames [2]);
        size_t off = 0;
        assert_int_equal (msgpack_unpack_next (&m->body, zmq_msg_data (&m->frame),
                                               zmq_msg_size (&m->frame), &off),
                          MSGPACK_UNPACK_SUCCESS);
        assert_int_equal (m->body.data.type, MSGPACK_OBJECT_MAP);
    }
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
    return true;
}

//  Serve until replay.c is idle (or blocked 200 turns in a row), reading
//  what arrives when read is set.
static zb_replay_state_t
s_run (fixture_t *fx, bool read)
{
    zb_replay_state_t state = ZB_REPLAY_IDLE;
    int blocked = 0;
    for (int turn = 0; turn < 100000; turn++) {
        state = zb_replay_serve (fx->replay);
        if (read)
            while (s_recv_one (fx, 0))
                ;
        if (state == ZB_REPLAY_IDLE)
            break;
        if (state == ZB_REPLAY_BLOCKED) {
            if (++blocked == 200)
                break;
            zclock_sleep (1);
        }
        else
            blocked = 0;
    }
    if (read)
        while (s_recv_one (fx, 20))
            ;
    return state;
}

static uint64_t
s_body_uint (const msg_t *m, const char *key)
{
    const msgpack_object *map = &m->body.data;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen (key)
        &&  memcmp (k->via.str.ptr, key, k->via.str.size) == 0) {
            assert_int_equal (map->via.map.ptr [i].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            return map->via.map.ptr [i].val.via.u64;
        }
    }
    fail_msg ("no key %s in the %s body", key, m->status);
    return 0;
}

static void
s_body_str (const msg_t *m, const char *key, char *out, size_t size)
{
    const msgpack_object *map = &m->body.data;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen (key)
        &&  memcmp (k->via.str.ptr, key, k->via.str.size) == 0) {
            const msgpack_object *v = &map->via.map.ptr [i].val;
            assert_int_equal (v->type, MSGPACK_OBJECT_STR);
            snprintf (out, size, "%.*s", (int) v->via.str.size, v->via.str.ptr);
            return;
        }
    }
    fail_msg ("no key %s in the %s body", key, m->status);
}

//  The EVENTs received (for corr), checked to be in increasing seq order
static size_t
s_events (fixture_t *fx, const char *corr, uint64_t *seqs, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->nmsgs; i++) {
        if (!streq (fx->msgs [i].status, "EVENT") || !streq (fx->msgs [i].corr, corr))
            continue;
        if (n > 0)
            assert_true (fx->msgs [i].seq > seqs [n - 1]);
        assert_true (n < max);
        seqs [n++] = fx->msgs [i].seq;
    }
    return n;
}

static const msg_t *
s_last (fixture_t *fx, const char *status, const char *corr)
{
    for (size_t i = fx->nmsgs; i-- > 0; )
        if (streq (fx->msgs [i].status, status) && streq (fx->msgs [i].corr, corr))
            return &fx->msgs [i];
    return NULL;
}

//  --------------------------------------------------------------------------

static void
test_credit_is_never_exceeded (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 100);
    outcome_t out = REPLAY (fx, "r1", .credit = 10);
    assert_int_equal (out.rc, 0);
    assert_int_equal (s_run (fx, true), ZB_REPLAY_IDLE);     //  parked, costs nothing
    uint64_t seqs [200];
    assert_int_equal (s_events (fx, "r1", seqs, 200), 10);
    assert_int_equal (seqs [0], 1);
    assert_int_equal (seqs [9], 10);
    assert_null (s_last (fx, "END", "r1"));
    assert_int_equal (zb_replay_sessions (fx->replay), 1);

    s_credit (fx, "r1", 1);
    s_run (fx, true);
    assert_int_equal (s_events (fx, "r1", seqs, 200), 11);
    assert_null (s_last (fx, "END", "r1"));

    //  Events appended after the REPLAY are not part of it (to = the head then)
    s_append (fx, 5);
    s_credit (fx, "r1", 1000);
    assert_int_equal (s_run (fx, true), ZB_REPLAY_IDLE);
    assert_int_equal (s_events (fx, "r1", seqs, 200), 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal (seqs [i], i + 1);
    const msg_t *end = s_last (fx, "END", "r1");
    assert_non_null (end);
    assert_int_equal (s_body_uint (end, "last"), 100);
    assert_int_equal (s_body_uint (end, "head"), 105);
    assert_int_equal (s_body_uint (end, "oldest"), 1);
    assert_int_equal (s_body_uint (end, "count"), 100);
    assert_int_equal (zb_replay_sessions (fx->replay), 0);
    assert_int_equal (zb_replay_events_sent (fx->replay), 100);

    //  CREDIT to a closed session: ignored, nothing sent
    s_credit (fx, "r1", 10);
    s_run (fx, true);
    assert_int_equal (s_events (fx, "r1", seqs, 200), 100);
}

static void
test_end_needs_no_credit (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 40);
    //  Exactly as much credit as events: END follows at once
    assert_int_equal (REPLAY (fx, "x", .from = 11, .to = 30, .credit = 20).rc, 0);
    s_run (fx, true);
    uint64_t seqs [64];
    assert_int_equal (s_events (fx, "x", seqs, 64), 20);
    assert_non_null (s_last (fx, "END", "x"));
    //  The last wanted event is not the last of the range: END all the same
    assert_int_equal (REPLAY (fx, "y", .credit = 5, .topics = (const char *const []) { "a-events", NULL },
                              .from = 31).rc, 0);
    s_run (fx, true);
    assert_int_equal (s_events (fx, "y", seqs, 64), 5);        //  31, 33, ... 39
    assert_int_equal (seqs [4], 39);
    const msg_t *end = s_last (fx, "END", "y");
    assert_non_null (end);
    assert_int_equal (s_body_uint (end, "last"), 40);
    assert_int_equal (s_body_uint (end, "count"), 5);
    //  An empty range (from beyond the head, to below from): END, count 0
    assert_int_equal (REPLAY (fx, "z", .from = 41, .credit = 1).rc, 0);
    assert_int_equal (REPLAY (fx, "w", .from = 10, .to = 5, .credit = 1).rc, 0);
    s_run (fx, true);
    assert_int_equal (s_body_uint (s_last (fx, "END", "z"), "count"), 0);
    assert_int_equal (s_body_uint (s_last (fx, "END", "z"), "last"), 40);
    assert_int_equal (s_body_uint (s_last (fx, "END", "w"), "count"), 0);
    assert_int_equal (s_body_uint (s_last (fx, "END", "w"), "last"), 5);
    //  to beyond the head is cut to the head
    assert_int_equal (REPLAY (fx, "v", .from = 39, .to = 1000, .credit = 10).rc, 0);
    s_run (fx, true);
    assert_int_equal (s_events (fx, "v", seqs, 64), 2);
    assert_int_equal (s_body_uint (s_last (fx, "END", "v"), "last"), 40);
    assert_int_equal (zb_replay_sessions (fx->replay), 0);
}

static void
test_filters (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 50);
    uint64_t seqs [64];
    assert_int_equal (REPLAY (fx, "t", .credit = 100, .topics = (const char *const []) { "b-events", NULL }).rc, 0);
    assert_int_equal (REPLAY (fx, "p", .credit = 100, .prefixes = (const char *const []) { "a-", NULL }).rc, 0);
    assert_int_equal (REPLAY (fx, "n", .credit = 100, .topics = (const char *const []) { "no-such", "a-event", NULL },
                              .prefixes = (const char *const []) { "c", "b-events-", NULL }).rc, 0);
    assert_int_equal (REPLAY (fx, "e", .credit = 100, .prefixes = (const char *const []) { "", NULL },
                              .from = 45).rc, 0);
    assert_int_equal (REPLAY (fx, "ab", .credit = 100, .topics = (const char *const []) { "b-events", "a-events", NULL },
                              .from = 48).rc, 0);
    s_run (fx, true);
    size_t n = s_events (fx, "t", seqs, 64);
    assert_int_equal (n, 25);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (seqs [i], 2 * (i + 1));
    n = s_events (fx, "p", seqs, 64);
    assert_int_equal (n, 25);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (seqs [i], 2 * i + 1);
    assert_int_equal (s_events (fx, "n", seqs, 64), 0);
    assert_int_equal (s_body_uint (s_last (fx, "END", "n"), "count"), 0);
    assert_int_equal (s_events (fx, "e", seqs, 64), 6);           //  the empty prefix: all
    assert_int_equal (s_events (fx, "ab", seqs, 64), 3);
    //  topic and topic_seq as stored
    for (size_t i = 0; i < fx->nmsgs; i++)
        if (streq (fx->msgs [i].status, "EVENT")) {
            uint64_t seq = fx->msgs [i].seq;
            assert_string_equal (fx->msgs [i].topic, s_topics [seq % 2 ? 0 : 1]);
            assert_int_equal (fx->msgs [i].topic_seq, (seq + 1) / 2);
        }
}

static void
test_from_time (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 20);
    //  seq n arrived at T0 + n s; T0 = 2023-11-14T22:13:20Z
    assert_int_equal (REPLAY (fx, "t", .credit = 100, .from_time = "2023-11-14T22:13:30Z").rc, 0);
    //  A fraction counts: 29.5 s is after seq 9's arrival, so the replay starts at 10 ...
    assert_int_equal (REPLAY (fx, "f", .credit = 100, .from_time = "2023-11-14T23:13:29.5+01:00").rc, 0);
    //  ... and long ago means everything, far ahead nothing
    assert_int_equal (REPLAY (fx, "o", .credit = 100, .from_time = "2000-01-01T00:00:00Z").rc, 0);
    assert_int_equal (REPLAY (fx, "l", .credit = 100, .from_time = "2999-01-01T00:00:00Z").rc, 0);
    s_run (fx, true);
    uint64_t seqs [64];
    assert_int_equal (s_events (fx, "t", seqs, 64), 11);
    assert_int_equal (seqs [0], 10);
    assert_int_equal (s_events (fx, "f", seqs, 64), 11);
    assert_int_equal (seqs [0], 10);
    assert_int_equal (s_events (fx, "o", seqs, 64), 20);
    assert_int_equal (s_events (fx, "l", seqs, 64), 0);
    assert_non_null (s_last (fx, "END", "l"));
}

static void
test_bad_requests (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 3);
    struct {
        const char *body;           //  msgpack bytes
        size_t len;
        const char *code;
        const char *message;        //  a part of it
    } cases [] = {
        { "\x81\xa4""from""\x01", 7, "InvalidArgument", "credit is required" },
        { "\x81\xa6""credit""\x00", 9, "InvalidArgument", "credit must be an integer from 1 to 100000" },
        { "\x81\xa6""credit""\xce\x00\x01\x86\xa1", 13, "InvalidArgument", "credit must be" },
        { "\x82\xa6""credit""\x01\xa4""from""\xa1""1", 16, "InvalidArgument", "from must be a sequence number" },
        { "\x82\xa6""credit""\x01\xa4""from""\xff", 15, "InvalidArgument", "from must be" },
        { "\x82\xa6""credit""\x01\xa2""to""\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 21, "InvalidArgument", "to must be" },
        { "\x82\xa6""credit""\x01\xa6""topics""\xa1""a", 18, "InvalidArgument", "topics must be an array" },
        { "\x82\xa6""credit""\x01\xa6""topics""\x91\x01", 18, "InvalidArgument", "topics[0] must be a string" },
        { "\x82\xa6""credit""\x01\xa6""topics""\x91\xa0", 18, "InvalidArgument", "topics[0]" },
        { "\x82\xa6""credit""\x01\xa8""prefixes""\x80", 19, "InvalidArgument", "prefixes must be an array" },
        { "\x82\xa6""credit""\x01\xa9""from-time""\xa3""now", 23, "InvalidArgument", "from-time: not an RFC 3339" },
        { "\x83\xa6""credit""\x01\xa9""from-time""\xb4""2026-01-01T00:00:00Z""\xa4""from""\x01", 46,
          "InvalidArgument", "from or from-time, not both" },
        { "\x82\xa6""credit""\x01\xa4""form""\x01", 15, "InvalidArgument", "unknown key 'form'" },
        { "\x82\xa6""credit""\x01\xa6""credit""\x01", 17, "InvalidArgument", "'credit' given more than once" },
        { "\x92\x01\x02", 3, "MalformedRequest", "REPLAY body must be a map" },
        { "\x81\xa6""credit", 8, "MalformedRequest", "" },        //  truncated
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        outcome_t out = s_request (fx, "REPLAY", "bad", cases [i].body, cases [i].len);
        if (out.rc != -1)
            fail_msg ("case %zu accepted", i);
        assert_string_equal (out.code, cases [i].code);
        if (!strstr (out.err, cases [i].message))
            fail_msg ("case %zu: '%s' lacks '%s'", i, out.err, cases [i].message);
    }
    outcome_t out = s_request (fx, "REPLAY", "", "\x81\xa6""credit""\x01", 9);
    assert_int_equal (out.rc, -1);
    assert_string_equal (out.code, "InvalidArgument");
    assert_non_null (strstr (out.err, "correlation id"));
    assert_int_equal (zb_replay_sessions (fx->replay), 0);

    //  One open session per (client, correlation)
    assert_int_equal (REPLAY (fx, "same", .credit = 1).rc, 0);
    out = REPLAY (fx, "same", .credit = 1);
    assert_int_equal (out.rc, -1);
    assert_string_equal (out.code, "InvalidArgument");
    assert_non_null (strstr (out.err, "open already"));
    //  A bad CREDIT closes the session with ERROR InvalidArgument
    outcome_t bad = s_request (fx, "CREDIT", "same", "\x81\xa6""credit""\xa1""x", 10);
    assert_int_equal (bad.rc, -1);
    s_run (fx, true);
    const msg_t *err = s_last (fx, "ERROR", "same");
    assert_non_null (err);
    char code [64];
    s_body_str (err, "code", code, sizeof code);
    assert_string_equal (code, "InvalidArgument");
    assert_int_equal (zb_replay_sessions (fx->replay), 0);
}

static void
test_limit_cancel_and_timeout (void **state)
{
    fixture_t *fx = (fixture_t *) *state;        //  2 sessions at most, 5 s idle
    s_append (fx, 10);
    assert_int_equal (REPLAY (fx, "a", .credit = 1).rc, 0);
    assert_int_equal (REPLAY (fx, "b", .credit = 1).rc, 0);
    outcome_t out = REPLAY (fx, "c", .credit = 1);
    assert_int_equal (out.rc, -1);
    assert_string_equal (out.code, "LimitExceeded");
    s_run (fx, true);
    uint64_t seqs [16];
    assert_int_equal (s_events (fx, "a", seqs, 16), 1);
    assert_int_equal (s_events (fx, "b", seqs, 16), 1);

    //  CANCEL: closed without a reply; the room is free again
    assert_int_equal (s_request (fx, "CANCEL", "a", "", 0).rc, 0);
    assert_int_equal (s_request (fx, "CANCEL", "a", "", 0).rc, -1);
    assert_int_equal (zb_replay_sessions (fx->replay), 1);
    assert_int_equal (REPLAY (fx, "c", .credit = 1, .from = 5).rc, 0);
    s_run (fx, true);
    assert_int_equal (s_events (fx, "c", seqs, 16), 1);
    assert_int_equal (seqs [0], 5);

    //  Without credit for the idle time: ERROR Timeout
    assert_int_equal (zb_replay_expire (fx->replay, zclock_mono ()), 0);
    assert_int_equal (zb_replay_expire (fx->replay, zclock_mono () + 5000), 2);
    assert_int_equal (zb_replay_sessions (fx->replay), 0);
    s_run (fx, true);
    char code [64];
    s_body_str (s_last (fx, "ERROR", "b"), "code", code, sizeof code);
    assert_string_equal (code, "Timeout");
    s_body_str (s_last (fx, "ERROR", "c"), "code", code, sizeof code);
    assert_string_equal (code, "Timeout");
    assert_null (s_last (fx, "ERROR", "a"));
}

static void
test_full_client_queue_loses_nothing (void **state)
{
    fixture_t *fx = (fixture_t *) *state;        //  HWM 4 on both sides
    s_append (fx, 300);
    assert_int_equal (REPLAY (fx, "q", .credit = 300).rc, 0);
    //  Nobody reads: the queue fills, the session waits (EAGAIN), keeps its place
    assert_int_equal (s_run (fx, false), ZB_REPLAY_BLOCKED);
    assert_int_equal (zb_replay_sessions (fx->replay), 1);
    uint64_t sent = zb_replay_events_sent (fx->replay);
    assert_true (sent > 0 && sent < 300);
    //  Reading and serving in turns: every event once, in order, then END
    assert_int_equal (s_run (fx, true), ZB_REPLAY_IDLE);
    uint64_t seqs [400];
    size_t n = s_events (fx, "q", seqs, 400);
    assert_int_equal (n, 300);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (seqs [i], i + 1);
    assert_int_equal (s_body_uint (s_last (fx, "END", "q"), "count"), 300);
}

static void
test_gone_client_closes_its_sessions (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_append (fx, 20000);
    assert_int_equal (REPLAY (fx, "g", .credit = 2).rc, 0);
    s_run (fx, true);
    assert_int_equal (zb_replay_sessions (fx->replay), 1);
    //  The client grants credit and goes: a send finds no route (EHOSTUNREACH)
    //  and the session closes long before its range is done
    s_credit (fx, "g", 19998);
    zmq_close (fx->dealer);
    fx->dealer = NULL;
    zclock_sleep (20);
    for (int i = 0; i < 500 && zb_replay_sessions (fx->replay) > 0; i++) {
        zb_replay_serve (fx->replay);
        zclock_sleep (2);
    }
    assert_int_equal (zb_replay_sessions (fx->replay), 0);
    assert_true (zb_replay_events_sent (fx->replay) < 20000);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_credit_is_never_exceeded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_end_needs_no_credit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_filters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_from_time, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_limit_cancel_and_timeout, s_setup_small, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_client_queue_loses_nothing, s_setup_full, s_teardown),
        cmocka_unit_test_setup_teardown (test_gone_client_closes_its_sessions, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
