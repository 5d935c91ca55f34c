/*  fuzz_replay_request.c - REPLAY and CREDIT bodies on the control socket
    (broker/replay.c), through the public entry points broker.c calls:
    zb_replay_open, then zb_replay_serve until the session is done (so the
    filters and range the body set are used), zb_replay_credit,
    zb_replay_cancel. The request parser itself (s_parse_request) is static.

    Set up once: a memory journal with 64 events on a few detail-types
    (arrival 1 s apart from 2023-11-14T22:13:20Z), the control ROUTER with
    ZMQ_ROUTER_MANDATORY as the broker sets it, and a DEALER client on
    inproc that the ROUTER already knows. Each input is used twice:
    1. as a REPLAY body: a refusal needs a known code and a one-line UTF-8
       message; an opened session is served until idle, then cancelled;
    2. as the CREDIT body of a session opened with {"credit": 1}.
    Invariants: an accepted body has a credit of 1..100000; the client never
    receives more EVENTs than the credit it granted; every event's seq is in
    1..64 and rises; a session ends with at most one END or ERROR; a refused
    CREDIT sends one ERROR; no session is left open after each input (so
    nothing leaks from one input to the next). */

#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>

#include "../../broker/decode.h"
#include "fuzz.h"
#include "../../broker/journal.h"
#include "../../broker/replay.h"
#include "wire.h"
#include "zb.h"

#define EVENTS  64
#define T0_NS   (1700000000ULL * 1000000000ULL)

static void *s_ctx;
static void *s_router;
static void *s_dealer;
static zb_journal_t *s_journal;
static zb_replay_t *s_replay;

static const char *const s_topics [] = {
    "sales-events", "sales-events-v2", "inventory-events", "a", "\xc3\xa9v\xc3\xa9nements"
};

static void
s_fill_journal (void)
{
    uint64_t topic_seq [5] = { 0 };
    for (uint64_t seq = 1; seq <= EVENTS; seq++) {
        size_t t = (size_t) (seq * 7 % 5);
        char event [32], id [40];
        int len = snprintf (event, sizeof event, "event-%" PRIu64, seq);
        snprintf (id, sizeof id, "00000000-0000-4000-8000-%012" PRIu64, seq);
        zb_record_t record = {
            .seq = seq,
            .topic_seq = ++topic_seq [t],
            .arrival_ns = T0_NS + seq * 1000000000ULL,
            .topic = { s_topics [t], strlen (s_topics [t]) },
            .event = { event, (size_t) len },
            .id = { id, 36 },
        };
        char err [256];
        if (zb_journal_append (s_journal, &record, 1, err, sizeof err) != 0) {
            fprintf (stderr, "fuzz_replay_request: journal append: %s\n", err);
            abort ();
        }
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_ctx = zmq_ctx_new ();
    s_router = zmq_socket (s_ctx, ZMQ_ROUTER);
    s_dealer = zmq_socket (s_ctx, ZMQ_DEALER);
    int on = 1, linger = 0, hwm = 0;
    zmq_setsockopt (s_router, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    zmq_setsockopt (s_router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s_router, ZMQ_SNDHWM, &hwm, sizeof hwm);      //  no limit: 64 events at most
    zmq_setsockopt (s_dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s_dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (s_dealer, ZMQ_ROUTING_ID, "client-1", 8);
    if (zmq_bind (s_router, "inproc://fuzz-replay") != 0
    ||  zmq_connect (s_dealer, "inproc://fuzz-replay") != 0)
        abort ();
    //  One message through, so the ROUTER knows the client
    zmq_send (s_dealer, "PING", 4, 0);
    char buf [16];
    zmq_recv (s_router, buf, sizeof buf, 0);
    zmq_recv (s_router, buf, sizeof buf, 0);

    zb_journal_config_t config = {
        .dir = NULL, .sync = ZB_SYNC_OS, .memory_events = 1000, .dedup_window_s = 300,
    };
    char err [256];
    s_journal = zb_journal_open (&config, err, sizeof err);
    if (!s_journal) {
        fprintf (stderr, "fuzz_replay_request: journal: %s\n", err);
        abort ();
    }
    s_fill_journal ();
    s_replay = zb_replay_new (s_router, s_journal, 1000, 60000);
    if (!s_replay)
        abort ();
    return 0;
}

static void
s_msg (zmq_msg_t *msg, const void *data, size_t size)
{
    zmq_msg_init_size (msg, size);
    if (size)
        memcpy (zmq_msg_data (msg), data, size);
}

//  Read what the client received: EVENTs counted, seqs checked.
typedef struct {
    size_t events;
    size_t ends;
    size_t errors;
    uint64_t last_seq;
} seen_t;

static void
s_drain (seen_t *seen)
{
    while (true) {
        zmq_msg_t frames [5];
        int count = 0;
        bool more = true;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, s_dealer, count ? 0 : ZMQ_DONTWAIT) == -1) {
                zmq_msg_close (&frame);
                FUZZ_CHECK (count == 0, "a message broke off after %d frames", count);
                return;
            }
            more = zmq_msg_more (&frame);
            if (count < 5)
                frames [count++] = frame;
            else {
                zmq_msg_close (&frame);
                FUZZ_CHECK (false, "a replay message of more than 5 frames");
            }
        }
        size_t status_len = zmq_msg_size (&frames [0]);
        const char *status = (const char *) zmq_msg_data (&frames [0]);
        if (status_len == 5 && memcmp (status, "EVENT", 5) == 0) {
            FUZZ_CHECK (count == 5 && zmq_msg_size (&frames [3]) == ZB_HEADER_SIZE,
                        "EVENT of %d frames", count);
            uint64_t seq, topic_seq;
            FUZZ_CHECK (zb_header_decode (zmq_msg_data (&frames [3]), ZB_HEADER_SIZE,
                                          &seq, &topic_seq) == 0, "bad EVENT header");
            FUZZ_CHECK (seq >= 1 && seq <= EVENTS && seq > seen->last_seq,
                        "EVENT seq %" PRIu64 " after %" PRIu64, seq, seen->last_seq);
            seen->last_seq = seq;
            seen->events++;
        }
        else
        if (status_len == 3 && memcmp (status, "END", 3) == 0)
            seen->ends++;
        else
        if (status_len == 5 && memcmp (status, "ERROR", 5) == 0)
            seen->errors++;
        else
            FUZZ_CHECK (false, "unknown status of %zu bytes", status_len);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
    }
}

//  Serve until there is nothing to do at once (bounded: 64 events, 1000 a turn).
static void
s_serve (seen_t *seen)
{
    for (int turn = 0; turn < 16; turn++) {
        zb_replay_state_t state = zb_replay_serve (s_replay);
        s_drain (seen);
        if (state != ZB_REPLAY_BUSY)
            return;
    }
    FUZZ_CHECK (false, "replay still busy after 16 turns for 64 events");
}

static int
s_open (const void *body, size_t size, const char *corr, const char **code,
        char *err, size_t errlen)
{
    zmq_msg_t identity, c, b;
    s_msg (&identity, "client-1", 8);
    s_msg (&c, corr, strlen (corr));
    s_msg (&b, body, size);
    int rc = zb_replay_open (s_replay, &identity, false, &c, &b, code, err, errlen);
    zmq_msg_close (&identity);
    zmq_msg_close (&c);
    zmq_msg_close (&b);
    return rc;
}

//  The "credit" of a body zb_replay_open or zb_replay_credit accepted.
static uint64_t
s_credit_of (const uint8_t *data, size_t size)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object root;
    char err [256];
    uint64_t credit = 0;
    if (zb_msgpack_decode (data, size, 3, &zone, &root, err, sizeof err) == 0) {
        const msgpack_object *value = zb_map_get (&root, "credit");
        if (value && value->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            credit = value->via.u64;
    }
    msgpack_zone_destroy (&zone);
    return credit;
}

static void
s_cancel (const char *corr)
{
    zmq_msg_t identity, c;
    s_msg (&identity, "client-1", 8);
    s_msg (&c, corr, strlen (corr));
    zb_replay_cancel (s_replay, &identity, &c);
    zmq_msg_close (&identity);
    zmq_msg_close (&c);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  1. The input as a REPLAY body
    const char *code = NULL;
    char err [256] = "";                //  the broker's ZB_ERRLEN
    seen_t seen = { 0 };
    int rc = s_open (data, size, "r1", &code, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK (rc == -1, "zb_replay_open returned %d", rc);
        FUZZ_CHECK (code && (streq (code, "InvalidArgument") || streq (code, "MalformedRequest")
                             || streq (code, "LimitExceeded") || streq (code, "InternalFailure")),
                    "unknown error code %s", code ? code : "(null)");
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "REPLAY error is not one line of UTF-8");
    }
    else {
        s_serve (&seen);
        uint64_t credit = s_credit_of (data, size);
        FUZZ_CHECK (credit >= 1 && credit <= ZB_REPLAY_MAX_CREDIT,
                    "a session opened with credit %" PRIu64, credit);
        FUZZ_CHECK (seen.events <= credit, "%zu events sent for a credit of %" PRIu64,
                    seen.events, credit);
        FUZZ_CHECK (seen.ends + seen.errors <= 1, "%zu END and %zu ERROR for one session",
                    seen.ends, seen.errors);
        s_cancel ("r1");
    }
    FUZZ_CHECK (zb_replay_sessions (s_replay) == 0, "%zu sessions left open",
                zb_replay_sessions (s_replay));

    //  2. The input as a CREDIT body, on a session that used its credit of 1
    static const uint8_t one [] = { 0x81, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 0x01 };
    seen = (seen_t) { 0 };
    rc = s_open (one, sizeof one, "c1", &code, err, sizeof err);
    FUZZ_CHECK (rc == 0, "REPLAY {credit: 1} refused: %s", err);
    s_serve (&seen);
    FUZZ_CHECK (seen.events == 1 && seen.ends == 0, "credit 1 gave %zu events", seen.events);
    zmq_msg_t identity, c, b;
    s_msg (&identity, "client-1", 8);
    s_msg (&c, "c1", 2);
    s_msg (&b, data, size);
    rc = zb_replay_credit (s_replay, &identity, &c, &b);
    zmq_msg_close (&identity);
    zmq_msg_close (&c);
    zmq_msg_close (&b);
    if (rc == 0)
        s_serve (&seen);
    else
        s_drain (&seen);
    FUZZ_CHECK (rc == 0 || seen.errors == 1, "a refused CREDIT sent %zu ERRORs", seen.errors);
    if (rc == 0) {
        uint64_t credit = s_credit_of (data, size);
        FUZZ_CHECK (credit >= 1 && credit <= ZB_REPLAY_MAX_CREDIT,
                    "a CREDIT of %" PRIu64 " accepted", credit);
        FUZZ_CHECK (seen.events <= 1 + credit, "%zu events sent for a credit of 1 + %" PRIu64,
                    seen.events, credit);
    }
    s_cancel ("c1");
    FUZZ_CHECK (zb_replay_sessions (s_replay) == 0, "%zu sessions left open after CREDIT",
                zb_replay_sessions (s_replay));
    return 0;
}
