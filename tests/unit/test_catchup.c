/*  test_catchup.c - the consumer's merge of live stream and journal, without
    sockets: every test feeds live events, heartbeats and replay messages in
    an order a real broker can produce, and checks what is delivered (in seq
    order, each at most once; late, in its topic's order, only after a drop
    noticed behind the position), the position and the safe position, the
    replay ranges (and topic) asked for, the missed counts and the log lines. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catchup.h"

#define MAX_LOG 64

typedef struct {
    zb_catchup_t *c;
    char log [MAX_LOG][512];
    size_t nlog;
    uint64_t delivered [1024];      //  seqs delivered, in order
    size_t ndelivered;
} fixture_t;

static void
s_log (void *arg, const char *line)
{
    fixture_t *f = (fixture_t *) arg;
    if (f->nlog < MAX_LOG)
        snprintf (f->log [f->nlog++], sizeof f->log [0], "%s", line);
}

static fixture_t *
s_new (const char *const *topics, size_t ntopics, const char *const *prefixes,
       size_t nprefixes, size_t buffer_max)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    zb_catchup_config_t config = {
        .topics = topics, .ntopics = ntopics, .prefixes = prefixes, .nprefixes = nprefixes,
        .buffer_max = buffer_max, .log = s_log, .log_arg = f,
    };
    f->c = zb_catchup_new (&config);
    assert_non_null (f->c);
    return f;
}

//  Topics "a" and "b", exact
static fixture_t *
s_new_ab (size_t buffer_max)
{
    static const char *const topics [] = { "a", "b" };
    return s_new (topics, 2, NULL, 0, buffer_max);
}

static void
s_free (fixture_t *f)
{
    zb_catchup_destroy (&f->c);
    assert_null (f->c);
    free (f);
}

static zb_catchup_event_t
s_event (const char *topic, uint64_t seq, uint64_t topic_seq)
{
    //  The raw bytes carry the seq, so a buffered copy can be checked
    static char raw [8][32];
    static int next = 0;
    char *buf = raw [next++ % 8];
    int len = snprintf (buf, 32, "event-%llu", (unsigned long long) seq);
    zb_catchup_event_t ev = {
        .topic = { topic, strlen (topic) }, .seq = seq, .topic_seq = topic_seq,
        .raw = { buf, (size_t) len },
    };
    return ev;
}

static zb_catchup_verdict_t
s_live (fixture_t *f, const char *topic, uint64_t seq, uint64_t topic_seq)
{
    zb_catchup_event_t ev = s_event (topic, seq, topic_seq);
    zb_catchup_verdict_t v = zb_catchup_live (f->c, &ev);
    if (v == ZB_CATCHUP_DELIVER)
        f->delivered [f->ndelivered++] = seq;
    return v;
}

static zb_catchup_verdict_t
s_replayed (fixture_t *f, const char *topic, uint64_t seq, uint64_t topic_seq)
{
    zb_catchup_event_t ev = s_event (topic, seq, topic_seq);
    zb_catchup_verdict_t v = zb_catchup_replayed (f->c, &ev);
    if (v == ZB_CATCHUP_DELIVER)
        f->delivered [f->ndelivered++] = seq;
    return v;
}

//  END, then everything the buffer lets go; returns how many were delivered
static size_t
s_end (fixture_t *f, uint64_t last, uint64_t head)
{
    zb_catchup_end (f->c, last, head);
    size_t n = 0;
    zb_catchup_event_t ev;
    zb_catchup_verdict_t v;
    while ((v = zb_catchup_next (f->c, &ev)) != ZB_CATCHUP_DROP) {
        if (v == ZB_CATCHUP_DELIVER) {
            char want [32];
            snprintf (want, sizeof want, "event-%llu", (unsigned long long) ev.seq);
            assert_int_equal (ev.raw.len, strlen (want));
            assert_memory_equal (ev.raw.ptr, want, ev.raw.len);
            f->delivered [f->ndelivered++] = ev.seq;
            n++;
        }
    }
    return n;
}

static void
s_heartbeat (fixture_t *f, uint64_t seq, const zb_catchup_head_t *heads, size_t nheads)
{
    zb_catchup_snapshot_t hb = { .seq = seq, .oldest = 1, .heads = heads, .nheads = nheads };
    zb_catchup_heartbeat (f->c, &hb);
}

#define HEAD(t, n) { { (t), sizeof (t) - 1 }, (n) }

static void
s_expect_range (fixture_t *f, uint64_t from, uint64_t to)
{
    assert_true (zb_catchup_replaying (f->c));
    assert_null (zb_catchup_replay_topic (f->c));       //  of all my topics
    uint64_t got_from, got_to;
    zb_catchup_replay_range (f->c, &got_from, &got_to);
    if (got_from != from || got_to != to)
        fail_msg ("replay range %llu..%llu, expected %llu..%llu",
                  (unsigned long long) got_from, (unsigned long long) got_to,
                  (unsigned long long) from, (unsigned long long) to);
}

//  A late replay: of one topic alone
static void
s_expect_late_range (fixture_t *f, const char *topic, uint64_t from, uint64_t to)
{
    assert_true (zb_catchup_replaying (f->c));
    const char *got = zb_catchup_replay_topic (f->c);
    if (!got || strcmp (got, topic) != 0)
        fail_msg ("replay of %s, expected of %s alone", got? got: "all topics", topic);
    uint64_t got_from, got_to;
    zb_catchup_replay_range (f->c, &got_from, &got_to);
    if (got_from != from || got_to != to)
        fail_msg ("replay range %llu..%llu of %s, expected %llu..%llu",
                  (unsigned long long) got_from, (unsigned long long) got_to, topic,
                  (unsigned long long) from, (unsigned long long) to);
}

static void
s_expect_delivered (fixture_t *f, const uint64_t *seqs, size_t n)
{
    if (f->ndelivered != n)
        fail_msg ("%zu delivered, expected %zu", f->ndelivered, n);
    for (size_t i = 0; i < n; i++)
        if (f->delivered [i] != seqs [i])
            fail_msg ("delivery %zu is seq %llu, expected %llu", i,
                      (unsigned long long) f->delivered [i], (unsigned long long) seqs [i]);
}

static bool
s_logged (fixture_t *f, const char *text)
{
    for (size_t i = 0; i < f->nlog; i++)
        if (strstr (f->log [i], text))
            return true;
    return false;
}

#define EXPECT_DELIVERED(f, ...) do { \
    const uint64_t want_ [] = { __VA_ARGS__ }; \
    s_expect_delivered ((f), want_, sizeof want_ / sizeof want_ [0]); \
} while (0)

//  ---------------------------------------------------------------------------

static void
test_topic_matching (void **state)
{
    (void) state;
    static const char *const topics [] = { "sales-events" };
    static const char *const prefixes [] = { "inv" };
    fixture_t *f = s_new (topics, 1, prefixes, 1, 0);
    assert_true (zb_catchup_matches (f->c, (zb_str_t) { "sales-events", 12 }));
    assert_false (zb_catchup_matches (f->c, (zb_str_t) { "sales-events-v2", 15 }));
    assert_false (zb_catchup_matches (f->c, (zb_str_t) { "sales", 5 }));
    assert_true (zb_catchup_matches (f->c, (zb_str_t) { "inventory-events", 16 }));
    assert_true (zb_catchup_matches (f->c, (zb_str_t) { "inv", 3 }));
    assert_false (zb_catchup_matches (f->c, (zb_str_t) { "in", 2 }));
    s_free (f);

    static const char *const everything [] = { "" };
    f = s_new (NULL, 0, everything, 1, 0);
    assert_true (zb_catchup_matches (f->c, (zb_str_t) { "x", 1 }));
    assert_false (zb_catchup_matches (f->c, (zb_str_t) { "$heartbeat", 10 }));
    s_free (f);
}

//  --from latest with a JOURNAL snapshot: events up to the snapshot are not
//  mine, the next ones are delivered once each
static void
test_latest_with_snapshot (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 3), HEAD ("c", 9) };
    zb_catchup_snapshot_t snap = { .seq = 10, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);
    assert_true (zb_catchup_anchored (f->c));
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_position (f->c), 10);

    assert_int_equal (s_live (f, "a", 11, 4), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "a", 11, 4), ZB_CATCHUP_DROP);     //  a duplicate
    assert_int_equal (s_live (f, "c", 12, 10), ZB_CATCHUP_DROP);    //  not mine
    assert_int_equal (s_live (f, "b", 13, 1), ZB_CATCHUP_DELIVER);  //  b had nothing yet
    assert_int_equal (s_live (f, "a", 14, 5), ZB_CATCHUP_DELIVER);
    EXPECT_DELIVERED (f, 11, 13, 14);
    assert_int_equal (zb_catchup_position (f->c), 14);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_replayed_count (f->c), 0);
    s_free (f);
}

//  --from latest: the snapshot is taken after the subscription, so events at
//  or below it can still arrive live; they are mine (published after I
//  subscribed), delivered once, in order, without disturbing the baselines
static void
test_latest_events_before_the_snapshot (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 4) };
    zb_catchup_snapshot_t snap = { .seq = 10, .oldest = 1, .heads = heads, .nheads = 1 };
    zb_catchup_start_at (f->c, &snap);
    assert_int_equal (s_live (f, "a", 8, 3), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "a", 8, 3), ZB_CATCHUP_DROP);
    assert_int_equal (s_live (f, "a", 10, 4), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_position (f->c), 10);
    assert_int_equal (s_live (f, "a", 11, 5), ZB_CATCHUP_DELIVER);
    //  Past the snapshot: nothing at or below it is taken any more
    assert_int_equal (s_live (f, "a", 9, 3), ZB_CATCHUP_DROP);
    EXPECT_DELIVERED (f, 8, 10, 11);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_false (zb_catchup_replaying (f->c));
    s_free (f);

    //  A heartbeat at or past the snapshot closes the window too
    f = s_new_ab (0);
    zb_catchup_start_at (f->c, &snap);
    s_heartbeat (f, 10, heads, 1);
    assert_int_equal (s_live (f, "a", 9, 3), ZB_CATCHUP_DROP);
    s_free (f);
}

//  A topic_seq jump: replay (position, seq-1], hold the live stream, then
//  deliver the replayed events and the held ones in seq order
static void
test_gap_is_filled_in_order (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 4), HEAD ("b", 0) };
    zb_catchup_snapshot_t snap = { .seq = 20, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);

    assert_int_equal (s_live (f, "a", 21, 5), ZB_CATCHUP_DELIVER);
    //  a 22 (topic_seq 6) and b 23 (1) were dropped on the way
    assert_int_equal (s_live (f, "a", 24, 7), ZB_CATCHUP_HELD);
    s_expect_range (f, 22, 23);
    assert_true (s_logged (f, "gap on a (topic_seq 6..6): replaying seq 22..23"));
    //  The live stream goes on meanwhile: held, in order
    assert_int_equal (s_live (f, "b", 25, 2), ZB_CATCHUP_HELD);
    assert_int_equal (s_live (f, "a", 24, 7), ZB_CATCHUP_HELD);     //  a duplicate, held too
    assert_int_equal (zb_catchup_buffered (f->c), 3);

    assert_int_equal (s_replayed (f, "a", 22, 6), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "b", 23, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "b", 23, 1), ZB_CATCHUP_DROP);  //  sent twice
    assert_int_equal (s_end (f, 23, 25), 2);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_buffered (f->c), 0);
    EXPECT_DELIVERED (f, 21, 22, 23, 24, 25);
    assert_int_equal (zb_catchup_position (f->c), 25);
    assert_int_equal (zb_catchup_replayed_count (f->c), 2);
    assert_int_equal (zb_catchup_missed (f->c), 0);

    //  Back to live delivery
    assert_int_equal (s_live (f, "b", 26, 3), ZB_CATCHUP_DELIVER);
    s_free (f);
}

//  A gap in one held event reveals another after the first replay ends
static void
test_gap_found_while_draining (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 1), HEAD ("b", 1) };
    zb_catchup_snapshot_t snap = { .seq = 2, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);
    assert_int_equal (s_live (f, "a", 5, 3), ZB_CATCHUP_HELD);       //  a 2 missing
    s_expect_range (f, 3, 4);
    assert_int_equal (s_live (f, "b", 9, 4), ZB_CATCHUP_HELD);       //  b 2..3 missing
    assert_int_equal (s_live (f, "a", 10, 4), ZB_CATCHUP_HELD);
    assert_int_equal (s_replayed (f, "a", 3, 2), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "b", 4, 2), ZB_CATCHUP_DELIVER);
    //  END: a 5 goes, then b 9 needs (5, 8]
    assert_int_equal (s_end (f, 4, 10), 1);
    s_expect_range (f, 6, 8);
    assert_int_equal (zb_catchup_buffered (f->c), 2);
    assert_int_equal (s_replayed (f, "b", 7, 3), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 8, 10), 2);
    EXPECT_DELIVERED (f, 3, 4, 5, 7, 9, 10);
    assert_int_equal (zb_catchup_position (f->c), 10);
    s_free (f);
}

//  A gap the journal cannot fill (pruned): counted as missed, said why, and
//  delivery goes on
static void
test_unfillable_gap_is_missed (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 1), HEAD ("b", 1) };
    zb_catchup_snapshot_t snap = { .seq = 2, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);
    //  b 3 got through, a 4 did not; then a 5 and b 6
    assert_int_equal (s_live (f, "b", 3, 2), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "a", 5, 3), ZB_CATCHUP_HELD);
    s_expect_range (f, 4, 4);
    //  The journal does not have a 4 any more (retention): END without it
    assert_int_equal (s_end (f, 4, 6), 1);
    assert_int_equal (zb_catchup_missed (f->c), 1);
    assert_true (s_logged (f, "missed 1 events on a (topic_seq 2..2): not in the journal any "
                           "more"));
    //  Adjacent to the position: nothing can be between, no replay
    assert_int_equal (s_live (f, "b", 6, 5), ZB_CATCHUP_DELIVER);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_missed (f->c), 3);
    EXPECT_DELIVERED (f, 3, 5, 6);
    s_free (f);
}

//  A heartbeat whose head is above what I have: replay to its seq; a
//  heartbeat that matches moves the position without a replay
static void
test_heartbeat_tail (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads0 [] = { HEAD ("a", 6) };
    zb_catchup_snapshot_t snap = { .seq = 30, .oldest = 1, .heads = heads0, .nheads = 1 };
    zb_catchup_start_at (f->c, &snap);

    //  Nothing new of mine: the position moves to the heartbeat
    zb_catchup_head_t hb1 [] = { HEAD ("a", 6), HEAD ("zzz", 40) };
    s_heartbeat (f, 35, hb1, 2);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_position (f->c), 35);

    //  The last two events of a were dropped: only the heartbeat shows it
    zb_catchup_head_t hb2 [] = { HEAD ("a", 8), HEAD ("zzz", 41) };
    s_heartbeat (f, 44, hb2, 2);
    s_expect_range (f, 36, 44);
    assert_true (s_logged (f, "heartbeat: a is at topic_seq 8, I have 6: replaying seq 36..44"));
    //  A newer heartbeat waits in the buffer (coalesced)
    zb_catchup_head_t hb3 [] = { HEAD ("a", 8), HEAD ("zzz", 42) };
    s_heartbeat (f, 45, hb3, 2);
    s_heartbeat (f, 46, hb3, 2);
    assert_int_equal (s_replayed (f, "a", 40, 7), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "a", 43, 8), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 44, 46), 0);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_position (f->c), 46);
    EXPECT_DELIVERED (f, 40, 43);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    s_free (f);
}

//  --from earliest over a journal whose beginning was pruned; live events
//  buffered during the catch-up; the snapshot gives the baselines at its seq
static void
test_earliest_catch_up (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 12), HEAD ("b", 3) };
    zb_catchup_snapshot_t snap = { .seq = 60, .oldest = 50, .heads = heads, .nheads = 2 };
    zb_catchup_start_replay (f->c, 0, 0, true, &snap);
    s_expect_range (f, 1, 60);
    assert_int_equal (s_live (f, "a", 61, 13), ZB_CATCHUP_HELD);
    assert_int_equal (s_replayed (f, "a", 50, 10), ZB_CATCHUP_DELIVER);    //  a 1..9 pruned
    assert_true (s_logged (f, "missed 9 events on a (topic_seq 1..9)"));
    assert_int_equal (s_replayed (f, "a", 55, 11), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "a", 60, 12), ZB_CATCHUP_DELIVER);
    //  b's events were all pruned: the snapshot's head says how many
    assert_int_equal (s_end (f, 60, 61), 1);
    assert_int_equal (zb_catchup_missed (f->c), 12);
    EXPECT_DELIVERED (f, 50, 55, 60, 61);
    assert_int_equal (zb_catchup_replayed_count (f->c), 3);
    //  b continues from its snapshot head
    assert_int_equal (s_live (f, "b", 62, 4), ZB_CATCHUP_DELIVER);
    s_free (f);
}

//  Resuming from a checkpoint without a snapshot: topics met later have no
//  baseline and are checked with a replay before their first event counts
static void
test_resume_without_snapshot (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_start_replay (f->c, 100, 0, false, NULL);
    s_expect_range (f, 101, 0);
    assert_int_equal (s_replayed (f, "a", 101, 40), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "a", 101, 40), ZB_CATCHUP_DROP);
    assert_int_equal (s_end (f, 103, 103), 0);
    assert_int_equal (zb_catchup_position (f->c), 103);
    //  b: no baseline, and events between: a quiet check first
    size_t logs = f->nlog;
    assert_int_equal (s_live (f, "b", 106, 7), ZB_CATCHUP_HELD);
    s_expect_range (f, 104, 105);
    assert_int_equal (f->nlog, logs);
    assert_int_equal (s_end (f, 105, 106), 1);
    EXPECT_DELIVERED (f, 101, 106);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    //  Adjacent: taken at once
    assert_int_equal (s_live (f, "a", 107, 41), ZB_CATCHUP_DELIVER);
    s_free (f);
}

//  A checkpoint ahead of the broker (it lost its journal): start over from 0
static void
test_checkpoint_beyond_the_broker (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 5) };
    zb_catchup_snapshot_t snap = { .seq = 5, .oldest = 1, .heads = heads, .nheads = 1 };
    zb_catchup_start_replay (f->c, 500, 0, false, &snap);
    assert_true (s_logged (f, "the broker lost its journal"));
    s_expect_range (f, 1, 5);
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal (s_replayed (f, "a", i, i), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 5, 5), 0);
    assert_int_equal (zb_catchup_position (f->c), 5);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    s_free (f);
}

//  A --memory broker restarts: heartbeats go back, sequences restart at 1
static void
test_broker_restart_without_journal (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_head_t heads [] = { HEAD ("a", 50) };
    zb_catchup_snapshot_t snap = { .seq = 90, .oldest = 1, .heads = heads, .nheads = 1 };
    zb_catchup_start_at (f->c, &snap);
    s_heartbeat (f, 90, heads, 1);
    //  Restarted: its first events are below my position
    assert_int_equal (s_live (f, "a", 1, 1), ZB_CATCHUP_DROP);
    assert_int_equal (s_live (f, "a", 2, 2), ZB_CATCHUP_DROP);
    zb_catchup_head_t heads2 [] = { HEAD ("a", 2) };
    s_heartbeat (f, 2, heads2, 1);
    assert_true (s_logged (f, "heartbeats went back to seq 2"));
    s_expect_range (f, 1, 2);
    assert_int_equal (s_replayed (f, "a", 1, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "a", 2, 2), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 2, 2), 0);
    assert_int_equal (s_live (f, "a", 3, 3), ZB_CATCHUP_DELIVER);
    EXPECT_DELIVERED (f, 1, 2, 3);

    //  A topic_seq going back with a higher seq is a restart too
    assert_int_equal (s_live (f, "a", 9, 1), ZB_CATCHUP_HELD);
    assert_true (s_logged (f, "topic_seq on a went back to 1 after 3"));
    s_expect_range (f, 1, 8);
    s_free (f);
}

//  A heartbeat older than a position the control socket gave (it waited in
//  the queue) is verified with a replay, not taken for a restart
static void
test_stale_heartbeat (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_start_replay (f->c, 0, 0, true, NULL);
    assert_int_equal (s_replayed (f, "a", 7, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 1000, 1000), 0);
    zb_catchup_head_t heads [] = { HEAD ("a", 1) };
    s_heartbeat (f, 500, heads, 1);
    assert_false (s_logged (f, "lost its journal"));
    s_expect_range (f, 1001, 0);
    assert_int_equal (s_end (f, 1000, 1000), 0);
    assert_int_equal (zb_catchup_position (f->c), 1000);
    //  ... but an END whose head is below the position is a lost journal
    s_heartbeat (f, 600, heads, 1);
    s_expect_range (f, 1001, 0);
    assert_int_equal (s_end (f, 12, 12), 0);
    assert_true (s_logged (f, "the broker's head is seq 12, below my position 1000"));
    s_expect_range (f, 1, 12);
    s_free (f);
}

//  The live buffer is bounded: beyond its size it is dropped and the replay
//  goes on to the head instead; nothing is lost or delivered twice
static void
test_buffer_overflow (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (4);
    zb_catchup_head_t heads [] = { HEAD ("a", 0) };
    zb_catchup_snapshot_t snap = { .seq = 10, .oldest = 1, .heads = heads, .nheads = 1 };
    zb_catchup_start_replay (f->c, 0, 0, true, &snap);
    s_expect_range (f, 1, 10);
    //  11..14 fill the buffer, 15 drops it and starts a new one
    for (uint64_t seq = 11; seq <= 16; seq++)
        assert_int_equal (s_live (f, "b", seq, seq - 10), ZB_CATCHUP_HELD);
    assert_true (s_logged (f, "more than 4 live events arrived during catch-up"));
    assert_int_equal (zb_catchup_buffered (f->c), 2);     //  15, 16
    //  The first replay ends: a second one to the head follows
    assert_int_equal (s_end (f, 10, 16), 0);
    s_expect_range (f, 11, 0);
    for (uint64_t seq = 11; seq <= 16; seq++)
        assert_int_equal (s_replayed (f, "b", seq, seq - 10), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 16, 17), 0);              //  15, 16 are dropped now
    assert_int_equal (s_live (f, "b", 17, 7), ZB_CATCHUP_DELIVER);
    EXPECT_DELIVERED (f, 11, 12, 13, 14, 15, 16, 17);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    s_free (f);
}

//  seq:N past the head: nothing to replay; events below N pass by
static void
test_floor (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_snapshot_t snap = { .seq = 10, .oldest = 1, .heads = NULL, .nheads = 0 };
    zb_catchup_start_replay (f->c, 10, 13, false, &snap);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (s_live (f, "a", 11, 1), ZB_CATCHUP_SKIP);
    assert_int_equal (s_live (f, "a", 12, 2), ZB_CATCHUP_SKIP);
    assert_int_equal (s_live (f, "a", 13, 3), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_position (f->c), 13);
    EXPECT_DELIVERED (f, 13);
    s_free (f);
}

//  Without a snapshot (control socket down): best effort, gaps reported as
//  missed exactly as the phase-1 consumer did; the first heartbeat anchors
static void
test_best_effort_then_anchored (void **state)
{
    (void) state;
    fixture_t *f = s_new_ab (0);
    zb_catchup_start_unanchored (f->c);
    assert_false (zb_catchup_anchored (f->c));
    assert_int_equal (s_live (f, "a", 1, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "a", 5, 4), ZB_CATCHUP_DELIVER);
    assert_true (s_logged (f, "missed 2 events on a (topic_seq 2..3)"));
    assert_string_equal (f->log [0], "missed 2 events on a (topic_seq 2..3)");
    assert_int_equal (zb_catchup_missed (f->c), 2);
    assert_false (zb_catchup_replaying (f->c));
    //  The first heartbeat shows b missed at the tail: a replay anchors us
    zb_catchup_head_t heads [] = { HEAD ("a", 4), HEAD ("b", 2) };
    s_heartbeat (f, 9, heads, 2);
    assert_true (zb_catchup_anchored (f->c));
    s_expect_range (f, 6, 9);
    assert_int_equal (s_replayed (f, "b", 7, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "b", 8, 2), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 9, 9), 0);
    assert_int_equal (s_live (f, "a", 10, 5), ZB_CATCHUP_DELIVER);
    EXPECT_DELIVERED (f, 1, 5, 7, 8, 10);
    s_free (f);

    //  Nothing delivered before the first heartbeat: it is the start
    f = s_new_ab (0);
    zb_catchup_start_unanchored (f->c);
    zb_catchup_head_t heads2 [] = { HEAD ("a", 40) };
    s_heartbeat (f, 77, heads2, 1);
    assert_false (zb_catchup_replaying (f->c));
    assert_int_equal (zb_catchup_position (f->c), 77);
    assert_int_equal (s_live (f, "a", 78, 41), ZB_CATCHUP_DELIVER);
    //  The heartbeat listed every topic: b had none, so its topic_seq 1 is its first
    assert_int_equal (s_live (f, "b", 80, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "b", 83, 3), ZB_CATCHUP_HELD);
    s_expect_range (f, 81, 82);
    s_free (f);
}

//  Prefix subscriptions: a new topic under the prefix starts at topic_seq 1
static void
test_prefix_new_topic (void **state)
{
    (void) state;
    static const char *const prefixes [] = { "sales-" };
    fixture_t *f = s_new (NULL, 0, prefixes, 1, 0);
    zb_catchup_head_t heads [] = { HEAD ("sales-a", 2), HEAD ("other", 7) };
    zb_catchup_snapshot_t snap = { .seq = 9, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);
    assert_int_equal (s_live (f, "sales-b", 11, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "sales-c", 13, 2), ZB_CATCHUP_HELD);    //  its 1st was lost
    //  Seq 10 was never seen: sales-c's first could be there, behind the
    //  position; a replay of sales-c alone looks there first (nothing)
    s_expect_late_range (f, "sales-c", 10, 11);
    assert_int_equal (zb_catchup_safe_position (f->c), 9);
    assert_int_equal (s_end (f, 11, 13), 0);
    s_expect_range (f, 12, 12);
    assert_int_equal (s_replayed (f, "sales-c", 12, 1), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 12, 13), 1);
    EXPECT_DELIVERED (f, 11, 12, 13);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_safe_position (f->c), 13);
    s_free (f);
}

//  ---------------------------------------------------------------------------
//  Drops noticed behind the position: late delivery in the topic's order

//  Topics "T" and "U"; started at seq 90 (T at topic_seq 5, U at 7); U@95 and
//  T@99 delivered (events of other topics between them)
static fixture_t *
s_new_tu (void)
{
    static const char *const topics [] = { "T", "U" };
    fixture_t *f = s_new (topics, 2, NULL, 0, 0);
    zb_catchup_head_t heads [] = { HEAD ("T", 5), HEAD ("U", 7) };
    zb_catchup_snapshot_t snap = { .seq = 90, .oldest = 1, .heads = heads, .nheads = 2 };
    zb_catchup_start_at (f->c, &snap);
    assert_int_equal (s_live (f, "U", 95, 8), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "T", 99, 6), ZB_CATCHUP_DELIVER);
    return f;
}

//  The broker's PUB drops U@100 under overload; T@101 has a contiguous
//  topic_seq and is delivered (position 101); U@102 (topic_seq jumps by 2)
//  shows the gap behind the position: a replay of U alone over (95, 101]
//  brings U@100, delivered late, then U@102; nothing missed, nothing twice
static void
test_late_gap_found_by_the_next_event (void **state)
{
    (void) state;
    fixture_t *f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_position (f->c), 101);
    assert_int_equal (zb_catchup_safe_position (f->c), 101);
    assert_int_equal (s_live (f, "U", 102, 10), ZB_CATCHUP_HELD);
    s_expect_late_range (f, "U", 96, 101);
    assert_true (s_logged (f, "gap on U (topic_seq 9..9) may lie behind my position 101"));
    assert_true (s_logged (f, "replaying seq 96..101 of U alone"));
    //  The checkpoint must not pass U's last delivered event while the gap waits
    assert_int_equal (zb_catchup_position (f->c), 101);
    assert_int_equal (zb_catchup_safe_position (f->c), 95);
    //  The live stream goes on meanwhile: held
    assert_int_equal (s_live (f, "T", 103, 8), ZB_CATCHUP_HELD);

    assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DROP);     //  sent twice
    assert_int_equal (s_replayed (f, "T", 101, 7), ZB_CATCHUP_DROP);     //  not asked for
    assert_int_equal (zb_catchup_position (f->c), 101);
    assert_int_equal (zb_catchup_safe_position (f->c), 100);
    //  END: U@102, then T@103
    assert_int_equal (s_end (f, 101, 103), 2);
    assert_false (zb_catchup_replaying (f->c));
    assert_true (s_logged (f, "1 events of U delivered late after a drop (seq 100..100, behind "
                           "my position 101)"));
    EXPECT_DELIVERED (f, 95, 99, 101, 100, 102, 103);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_replayed_count (f->c), 1);
    assert_int_equal (zb_catchup_position (f->c), 103);
    assert_int_equal (zb_catchup_safe_position (f->c), 103);
    //  Nothing twice: U@100 and U@102 again are dropped; U goes on live
    assert_int_equal (s_live (f, "U", 100, 9), ZB_CATCHUP_DROP);
    assert_int_equal (s_live (f, "U", 102, 10), ZB_CATCHUP_DROP);
    assert_int_equal (s_live (f, "U", 104, 11), ZB_CATCHUP_DELIVER);
    assert_false (zb_catchup_replaying (f->c));
    s_free (f);
}

//  U's tail is dropped (U@100, nothing of U after it), T@101 is delivered:
//  only a heartbeat shows U's head
static void
test_late_gap_found_by_a_heartbeat (void **state)
{
    (void) state;
    //  The heartbeat at the position (101)
    fixture_t *f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);
    zb_catchup_head_t heads [] = { HEAD ("T", 7), HEAD ("U", 9) };
    s_heartbeat (f, 101, heads, 2);
    s_expect_late_range (f, "U", 96, 101);
    assert_int_equal (zb_catchup_safe_position (f->c), 95);
    assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 101, 101), 0);
    assert_false (zb_catchup_replaying (f->c));
    assert_true (s_logged (f, "1 events of U delivered late after a drop"));
    EXPECT_DELIVERED (f, 95, 99, 101, 100);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_position (f->c), 101);
    assert_int_equal (zb_catchup_safe_position (f->c), 101);
    assert_int_equal (s_live (f, "U", 102, 10), ZB_CATCHUP_DELIVER);
    s_free (f);

    //  A heartbeat above the position (at 103; U@102 was dropped too): U's
    //  replay alone up to the position first, then the heartbeat again, whose
    //  replay (101, 103] brings U@102 in seq order
    f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);
    zb_catchup_head_t heads2 [] = { HEAD ("T", 7), HEAD ("U", 10), HEAD ("other", 4) };
    s_heartbeat (f, 103, heads2, 3);
    s_expect_late_range (f, "U", 96, 101);
    assert_true (s_logged (f, "gap on U (topic_seq 9..10) may lie behind my position 101"));
    assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 101, 103), 0);
    s_expect_range (f, 102, 103);
    assert_int_equal (zb_catchup_safe_position (f->c), 101);
    assert_int_equal (s_replayed (f, "U", 102, 10), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_end (f, 103, 103), 0);
    assert_false (zb_catchup_replaying (f->c));
    EXPECT_DELIVERED (f, 95, 99, 101, 100, 102);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_position (f->c), 103);
    s_free (f);
}

//  The late replay finds the journal pruned: what it cannot bring is missed
static void
test_late_gap_pruned (void **state)
{
    (void) state;
    //  U@100 is gone: END without it
    fixture_t *f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "U", 102, 10), ZB_CATCHUP_HELD);
    s_expect_late_range (f, "U", 96, 101);
    assert_int_equal (s_end (f, 101, 102), 1);
    assert_int_equal (zb_catchup_missed (f->c), 1);
    assert_true (s_logged (f, "missed 1 events on U (topic_seq 9..9): not in the journal any "
                           "more"));
    assert_false (s_logged (f, "delivered late"));
    EXPECT_DELIVERED (f, 95, 99, 101, 102);
    assert_int_equal (zb_catchup_safe_position (f->c), 102);
    assert_false (zb_catchup_replaying (f->c));
    s_free (f);

    //  Two dropped (U@97, U@100), only U@100 left: one missed, one late
    f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "U", 102, 11), ZB_CATCHUP_HELD);
    s_expect_late_range (f, "U", 96, 101);
    assert_int_equal (s_replayed (f, "U", 100, 10), ZB_CATCHUP_DELIVER);
    assert_true (s_logged (f, "missed 1 events on U (topic_seq 9..9): not in the journal any "
                           "more"));
    assert_int_equal (s_end (f, 101, 102), 1);
    assert_true (s_logged (f, "1 events of U delivered late after a drop"));
    EXPECT_DELIVERED (f, 95, 99, 101, 100, 102);
    assert_int_equal (zb_catchup_missed (f->c), 1);
    s_free (f);
}

//  The gap shows in a replay (of another gap) and may reach below it: U's
//  events are passed over by that replay and come from U's own replay after
//  it, late but in U's order; the safe position stays at U's last delivered
//  event meanwhile, although the position moves
static void
test_late_gap_found_in_a_replay (void **state)
{
    (void) state;
    fixture_t *f = s_new_tu ();
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);     //  U@100 dropped
    //  T@103 and U@102 dropped too: T@104 asks for (101, 103]
    assert_int_equal (s_live (f, "T", 104, 9), ZB_CATCHUP_HELD);
    s_expect_range (f, 102, 103);
    assert_int_equal (s_replayed (f, "U", 102, 10), ZB_CATCHUP_DROP);
    assert_true (s_logged (f, "gap on U (topic_seq 9..9) may lie behind my position 101"));
    assert_int_equal (s_replayed (f, "T", 103, 8), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_position (f->c), 103);
    assert_int_equal (zb_catchup_safe_position (f->c), 95);
    //  END: T@104 waits for U's replay, which reads up to the position now
    assert_int_equal (s_end (f, 103, 104), 0);
    s_expect_late_range (f, "U", 96, 103);
    assert_int_equal (zb_catchup_safe_position (f->c), 95);
    assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_safe_position (f->c), 100);
    //  The session fails here: asked again, it starts after U@100
    s_expect_late_range (f, "U", 101, 103);
    assert_int_equal (s_replayed (f, "U", 102, 10), ZB_CATCHUP_DELIVER);
    assert_int_equal (zb_catchup_safe_position (f->c), 102);
    assert_int_equal (s_end (f, 103, 104), 1);
    assert_true (s_logged (f, "2 events of U delivered late after a drop (seq 100..102, behind "
                           "my position 103)"));
    EXPECT_DELIVERED (f, 95, 99, 101, 103, 100, 102, 104);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_position (f->c), 104);
    assert_int_equal (zb_catchup_safe_position (f->c), 104);
    s_free (f);
}

//  Two topics late at once: the safe position is below both, each is
//  replayed alone, one after the other
static void
test_late_gaps_of_two_topics (void **state)
{
    (void) state;
    static const char *const topics [] = { "T", "U", "V" };
    fixture_t *f = s_new (topics, 3, NULL, 0, 0);
    zb_catchup_head_t heads [] = { HEAD ("T", 5), HEAD ("U", 7), HEAD ("V", 3) };
    zb_catchup_snapshot_t snap = { .seq = 90, .oldest = 1, .heads = heads, .nheads = 3 };
    zb_catchup_start_at (f->c, &snap);
    assert_int_equal (s_live (f, "U", 93, 8), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "V", 95, 4), ZB_CATCHUP_DELIVER);
    assert_int_equal (s_live (f, "T", 99, 6), ZB_CATCHUP_DELIVER);     //  V@97 dropped
    assert_int_equal (s_live (f, "T", 101, 7), ZB_CATCHUP_DELIVER);    //  U@100 dropped
    zb_catchup_head_t hb [] = { HEAD ("T", 7), HEAD ("U", 9), HEAD ("V", 5) };
    s_heartbeat (f, 101, hb, 3);
    assert_int_equal (zb_catchup_safe_position (f->c), 93);
    bool u_first = strcmp (zb_catchup_replay_topic (f->c), "U") == 0;
    for (int round = 0; round < 2; round++) {
        if (u_first == (round == 0)) {
            s_expect_late_range (f, "U", 94, 101);
            assert_int_equal (s_replayed (f, "U", 100, 9), ZB_CATCHUP_DELIVER);
        }
        else {
            s_expect_late_range (f, "V", 96, 101);
            assert_int_equal (s_replayed (f, "V", 97, 5), ZB_CATCHUP_DELIVER);
        }
        assert_int_equal (s_end (f, 101, 101), 0);
        if (round == 0)
            assert_int_equal (zb_catchup_safe_position (f->c), u_first? 95: 93);
    }
    assert_false (zb_catchup_replaying (f->c));
    if (u_first)
        EXPECT_DELIVERED (f, 93, 95, 99, 101, 100, 97);
    else
        EXPECT_DELIVERED (f, 93, 95, 99, 101, 97, 100);
    assert_int_equal (zb_catchup_missed (f->c), 0);
    assert_int_equal (zb_catchup_safe_position (f->c), 101);
    assert_true (s_logged (f, "1 events of U delivered late after a drop"));
    assert_true (s_logged (f, "1 events of V delivered late after a drop"));
    s_free (f);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_topic_matching),
        cmocka_unit_test (test_latest_with_snapshot),
        cmocka_unit_test (test_latest_events_before_the_snapshot),
        cmocka_unit_test (test_gap_is_filled_in_order),
        cmocka_unit_test (test_gap_found_while_draining),
        cmocka_unit_test (test_unfillable_gap_is_missed),
        cmocka_unit_test (test_heartbeat_tail),
        cmocka_unit_test (test_earliest_catch_up),
        cmocka_unit_test (test_resume_without_snapshot),
        cmocka_unit_test (test_checkpoint_beyond_the_broker),
        cmocka_unit_test (test_broker_restart_without_journal),
        cmocka_unit_test (test_stale_heartbeat),
        cmocka_unit_test (test_buffer_overflow),
        cmocka_unit_test (test_floor),
        cmocka_unit_test (test_best_effort_then_anchored),
        cmocka_unit_test (test_prefix_new_topic),
        cmocka_unit_test (test_late_gap_found_by_the_next_event),
        cmocka_unit_test (test_late_gap_found_by_a_heartbeat),
        cmocka_unit_test (test_late_gap_pruned),
        cmocka_unit_test (test_late_gap_found_in_a_replay),
        cmocka_unit_test (test_late_gaps_of_two_topics),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
