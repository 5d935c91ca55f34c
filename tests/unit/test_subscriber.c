/*  test_subscriber.c - the consumer side of the publish socket: exact and
    prefix subscriptions, frame checks, gap and restart detection.

    An XPUB on inproc plays the broker: receiving the subscription message on
    it proves the subscription arrived before anything is published. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>

#include "subscriber.h"
#include "wire.h"
#include "event.h"

typedef struct {
    zsock_t *pub;
    zb_subscriber_t *sub;
    char endpoint [64];
    bool lazy;                      //  zb_subscriber_set_lazy: every test again
} fixture_t;

static int
s_setup (void **state)
{
    static int counter = 0;
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    snprintf (f->endpoint, sizeof f->endpoint, "inproc://test-subscriber-%d", ++counter);
    f->pub = zsock_new (ZMQ_XPUB);
    assert_non_null (f->pub);
    assert_int_equal (zsock_bind (f->pub, "%s", f->endpoint), 0);
    char err [256];
    f->sub = zb_subscriber_new (f->endpoint, err, sizeof err);
    assert_non_null (f->sub);
    *state = f;
    return 0;
}

static int
s_setup_lazy (void **state)
{
    s_setup (state);
    fixture_t *f = (fixture_t *) *state;
    f->lazy = true;
    zb_subscriber_set_lazy (f->sub, true);
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zb_subscriber_destroy (&f->sub);
    assert_null (f->sub);
    zsock_destroy (&f->pub);
    free (f);
    return 0;
}

//  Wait for one subscription message on the XPUB; checks its bytes.
static void
s_expect_subscription (fixture_t *f, const char *bytes, size_t len)
{
    zsock_set_rcvtimeo (f->pub, 2000);
    zframe_t *frame = zframe_recv (f->pub);
    assert_non_null (frame);
    assert_int_equal (zframe_size (frame), len + 1);
    assert_int_equal (zframe_data (frame) [0], 1);
    assert_memory_equal (zframe_data (frame) + 1, bytes, len);
    zframe_destroy (&frame);
}

//  The packed envelope of a small event
static void
s_pack_event (msgpack_sbuffer *buf, const char *detail_type, int n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (buf);
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    msgpack_pack_str_with_body (&pk, "version", 7);
    msgpack_pack_str_with_body (&pk, "0", 1);
    msgpack_pack_str_with_body (&pk, "detail-type", 11);
    msgpack_pack_str_with_body (&pk, detail_type, strlen (detail_type));
    msgpack_pack_str_with_body (&pk, "detail", 6);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "n", 1);
    msgpack_pack_int (&pk, n);
}

//  Publish raw frames (NULL-terminated list of (data, size) pairs)
static void
s_send_frames (fixture_t *f, int count, ...)
{
    va_list args;
    va_start (args, count);
    void *sock = zsock_resolve (f->pub);
    for (int i = 0; i < count; i++) {
        const void *data = va_arg (args, const void *);
        size_t size = va_arg (args, size_t);
        assert_true (zmq_send (sock, data, size, i < count - 1? ZMQ_SNDMORE: 0) >= 0);
    }
    va_end (args);
}

//  Publish one well-formed event
static void
s_publish (fixture_t *f, const char *detail_type, uint64_t seq, uint64_t topic_seq)
{
    char topic [256];
    size_t topic_len = zb_topic_encode (detail_type, strlen (detail_type), topic, sizeof topic);
    uint8_t header [ZB_HEADER_SIZE];
    zb_header_encode (header, seq, topic_seq);
    msgpack_sbuffer body;
    s_pack_event (&body, detail_type, (int) seq);
    s_send_frames (f, 3, topic, topic_len, header, sizeof header, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
}

static void
s_expect (fixture_t *f, const char *detail_type, uint64_t seq, uint64_t topic_seq,
          uint64_t missed)
{
    zb_delivery_t d;
    char err [256] = "";
    int rc = zb_subscriber_recv (f->sub, &d, 2000, err, sizeof err);
    if (rc != 1)
        fail_msg ("expected %s seq %" PRIu64 ", got rc %d (%s)", detail_type, seq, rc, err);
    assert_int_equal (d.topic.len, strlen (detail_type));
    assert_memory_equal (d.topic.ptr, detail_type, d.topic.len);
    assert_int_equal (d.seq, seq);
    assert_int_equal (d.topic_seq, topic_seq);
    assert_int_equal (d.missed, missed);
    //  lazy: no objects, the caller unpacks the raw bytes
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    const msgpack_object *event = d.event;
    if (f->lazy) {
        assert_null (d.event);
        size_t off = 0;
        assert_int_equal (msgpack_unpack_next (&up, d.raw.ptr, d.raw.len, &off),
                          MSGPACK_UNPACK_SUCCESS);
        event = &up.data;
    }
    assert_int_equal (event->type, MSGPACK_OBJECT_MAP);
    assert_true (zb_str_eq (zb_map_get (event, "detail-type"), detail_type));
    const msgpack_object *n = zb_map_get (zb_map_get (event, "detail"), "n");
    assert_non_null (n);
    assert_int_equal (n->via.u64, seq);
    msgpack_unpacked_destroy (&up);
    //  raw is exactly the packed envelope
    msgpack_sbuffer body;
    s_pack_event (&body, detail_type, (int) seq);
    assert_int_equal (d.raw.len, body.size);
    assert_memory_equal (d.raw.ptr, body.data, body.size);
    msgpack_sbuffer_destroy (&body);
}

static void
s_expect_malformed (fixture_t *f, const char *reason)
{
    zb_delivery_t d;
    char err [256] = "";
    int rc = zb_subscriber_recv (f->sub, &d, 2000, err, sizeof err);
    assert_int_equal (rc, -1);
    if (!strstr (err, reason))
        fail_msg ("error '%s' does not mention '%s'", err, reason);
}

static void
test_exact_subscription_is_exact (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe (f->sub, "sales-events"), 0);
    s_expect_subscription (f, "sales-events\0", 13);
    s_publish (f, "sales-events-v2", 1, 1);     //  a longer topic: not ours
    s_publish (f, "sales", 2, 1);               //  a shorter one: not ours
    s_publish (f, "sales-events", 3, 1);
    s_expect (f, "sales-events", 3, 1, 0);
    zb_delivery_t d;
    char err [256];
    assert_int_equal (zb_subscriber_recv (f->sub, &d, 50, err, sizeof err), 0);
}

static void
test_prefix_subscription_gets_every_matching_topic (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe_prefix (f->sub, "sales-"), 0);
    s_expect_subscription (f, "sales-", 6);
    s_publish (f, "sales-events", 1, 1);
    s_publish (f, "inventory-events", 2, 1);
    s_publish (f, "sales-events-v2", 3, 1);
    s_expect (f, "sales-events", 1, 1, 0);
    s_expect (f, "sales-events-v2", 3, 1, 0);
}

static void
test_gaps_are_counted_per_topic (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe_prefix (f->sub, ""), 0);
    s_expect_subscription (f, "", 0);
    //  The first event of a topic is the baseline, whatever its topic_seq
    s_publish (f, "a", 10, 7);
    s_publish (f, "b", 11, 1);
    s_publish (f, "a", 12, 8);
    s_publish (f, "a", 15, 11);                 //  9 and 10 missing
    s_publish (f, "b", 16, 2);
    s_publish (f, "b", 20, 5);                  //  3 and 4 missing
    s_expect (f, "a", 10, 7, 0);
    s_expect (f, "b", 11, 1, 0);
    s_expect (f, "a", 12, 8, 0);
    s_expect (f, "a", 15, 11, 2);
    s_expect (f, "b", 16, 2, 0);
    s_expect (f, "b", 20, 5, 2);
    assert_int_equal (zb_subscriber_missed (f->sub), 4);
}

static void
test_broker_restart_resets_without_a_gap (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe (f->sub, "t"), 0);
    s_expect_subscription (f, "t\0", 2);
    s_publish (f, "t", 5, 5);
    s_publish (f, "t", 1, 1);                   //  restarted: sequences from 1 again
    s_publish (f, "t", 2, 2);
    s_publish (f, "t", 4, 4);
    s_expect (f, "t", 5, 5, 0);
    s_expect (f, "t", 1, 1, 0);
    s_expect (f, "t", 2, 2, 0);
    s_expect (f, "t", 4, 4, 1);
    assert_int_equal (zb_subscriber_missed (f->sub), 1);
}

static void
test_malformed_messages_are_dropped_whole (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe_prefix (f->sub, ""), 0);
    s_expect_subscription (f, "", 0);
    uint8_t header [ZB_BATCH_HEADER_SIZE + 4] = { 0 };
    zb_header_encode_batch (header, 9, 9, 1);
    msgpack_sbuffer body;
    s_pack_event (&body, "t", 9);
    const uint8_t bad_msgpack [] = { 0xc1 };
    const uint8_t array [] = { 0x92, 0x01, 0x02 };
    char trailing [512];
    memcpy (trailing, body.data, body.size);
    trailing [body.size] = 0x00;

    s_send_frames (f, 2, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE);
    s_send_frames (f, 4, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE,
                   body.data, body.size, "x", (size_t) 1);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) 15, body.data, body.size);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE,
                   bad_msgpack, sizeof bad_msgpack);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE,
                   body.data, body.size - 1);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE,
                   trailing, body.size + 1);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE,
                   array, sizeof array);
    s_send_frames (f, 3, "t", (size_t) 1, header, (size_t) ZB_HEADER_SIZE,
                   body.data, body.size);
    s_send_frames (f, 3, "t\0u\0", (size_t) 4, header, (size_t) ZB_HEADER_SIZE,
                   body.data, body.size);
    s_send_frames (f, 3, "\0", (size_t) 1, header, (size_t) ZB_HEADER_SIZE,
                   body.data, body.size);
    //  The bus's own topics are skipped silently, whatever their shape
    s_send_frames (f, 1, "$heartbeat", (size_t) 10);
    //  A longer header is fine: the bytes after the count are ignored
    header [ZB_BATCH_HEADER_SIZE - 1] = 1;
    s_send_frames (f, 3, "t\0", (size_t) 2, header, sizeof header, body.data, body.size);
    msgpack_sbuffer_destroy (&body);

    s_expect_malformed (f, "2 frames");
    s_expect_malformed (f, "4 frames");
    s_expect_malformed (f, "header frame");
    s_expect_malformed (f, "invalid msgpack");
    s_expect_malformed (f, "truncated");
    s_expect_malformed (f, "trailing bytes");
    s_expect_malformed (f, "not a msgpack map");
    s_expect_malformed (f, "NUL");
    s_expect_malformed (f, "NUL byte before its end");
    s_expect_malformed (f, "NUL");
    s_expect (f, "t", 9, 9, 0);
    assert_int_equal (zb_subscriber_missed (f->sub), 0);
}

//  Publish one message of protocol version 2: count events of detail_type,
//  seq and topic_seq from the given ones, detail {"n": seq}; the events' bytes
//  followed by `extra` bytes, and the header saying `say` events.
static void
s_publish_batch (fixture_t *f, const char *detail_type, uint64_t seq, uint64_t topic_seq,
                 uint32_t count, uint32_t say, const void *extra, size_t extra_len)
{
    char topic [256];
    size_t topic_len = zb_topic_encode (detail_type, strlen (detail_type), topic, sizeof topic);
    uint8_t header [ZB_BATCH_HEADER_SIZE];
    zb_header_encode (header, seq, topic_seq);
    header [16] = (uint8_t) (say >> 24);
    header [17] = (uint8_t) (say >> 16);
    header [18] = (uint8_t) (say >> 8);
    header [19] = (uint8_t) say;
    msgpack_sbuffer all;
    msgpack_sbuffer_init (&all);
    for (uint32_t i = 0; i < count; i++) {
        msgpack_sbuffer body;
        s_pack_event (&body, detail_type, (int) (seq + i));
        msgpack_sbuffer_write (&all, body.data, body.size);
        msgpack_sbuffer_destroy (&body);
    }
    if (extra_len)
        msgpack_sbuffer_write (&all, extra, extra_len);
    s_send_frames (f, 3, topic, topic_len, header, sizeof header, all.data, all.size);
    msgpack_sbuffer_destroy (&all);
}

static void
test_batches_are_handed_out_one_by_one (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe_prefix (f->sub, ""), 0);
    s_expect_subscription (f, "", 0);
    uint8_t header [ZB_BATCH_HEADER_SIZE];
    assert_int_equal (zb_header_encode_batch (header, 1, 1, 1), ZB_HEADER_SIZE);
    assert_int_equal (zb_header_encode_batch (header, 1, 1, 2), ZB_BATCH_HEADER_SIZE);
    s_publish_batch (f, "a", 1, 1, 3, 3, NULL, 0);
    s_publish (f, "b", 4, 1);
    s_publish_batch (f, "a", 5, 4, 2, 2, NULL, 0);
    s_publish_batch (f, "a", 9, 8, 1, 1, NULL, 0);     //  topic_seq 6 and 7 missing
    s_expect (f, "a", 1, 1, 0);
    s_expect (f, "a", 2, 2, 0);
    s_expect (f, "a", 3, 3, 0);
    s_expect (f, "b", 4, 1, 0);
    s_expect (f, "a", 5, 4, 0);
    s_expect (f, "a", 6, 5, 0);
    s_expect (f, "a", 9, 8, 2);
    assert_int_equal (zb_subscriber_missed (f->sub), 2);
}

static void
test_malformed_batches_keep_their_good_events (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zb_subscriber_subscribe (f->sub, "t"), 0);
    s_expect_subscription (f, "t\0", 2);
    msgpack_sbuffer body;
    s_pack_event (&body, "t", 1);
    uint8_t header [ZB_BATCH_HEADER_SIZE] = { 0 };
    zb_header_encode (header, 1, 1);
    const uint8_t bad [] = { 0xc1 };
    //  A header of 17 to 19 bytes, a count of 0
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) 18, body.data, body.size);
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_BATCH_HEADER_SIZE,
                   body.data, body.size);
    //  Fewer events than the header says: the ones there are delivered
    s_publish_batch (f, "t", 1, 1, 2, 3, NULL, 0);
    //  More bytes than the events the header says
    s_publish_batch (f, "t", 4, 4, 2, 2, bad, sizeof bad);
    //  Invalid msgpack after the first event
    s_publish_batch (f, "t", 6, 6, 1, 3, bad, sizeof bad);
    //  An empty event frame
    s_send_frames (f, 3, "t\0", (size_t) 2, header, (size_t) ZB_HEADER_SIZE, "", (size_t) 0);
    //  Still fine afterwards
    s_publish_batch (f, "t", 9, 9, 2, 2, NULL, 0);
    msgpack_sbuffer_destroy (&body);

    s_expect_malformed (f, "header frame");
    s_expect_malformed (f, "header frame");
    s_expect (f, "t", 1, 1, 0);
    s_expect (f, "t", 2, 2, 0);
    s_expect_malformed (f, "holds 2 events, its header says 3");
    s_expect (f, "t", 4, 4, 1);                 //  3 never came
    s_expect_malformed (f, "trailing bytes");   //  5, with bytes after it, is dropped
    s_expect (f, "t", 6, 6, 1);
    s_expect_malformed (f, "invalid msgpack");
    s_expect_malformed (f, "truncated or empty");
    s_expect (f, "t", 9, 9, 2);                 //  7 and 8 were in broken messages
    s_expect (f, "t", 10, 10, 0);
}

static void
test_timeout_and_handle (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_non_null (zb_subscriber_handle (f->sub));
    zb_delivery_t d;
    char err [256];
    int64_t start = zclock_mono ();
    assert_int_equal (zb_subscriber_recv (f->sub, &d, 100, err, sizeof err), 0);
    int64_t took = zclock_mono () - start;
    assert_true (took >= 90 && took < 2000);
    assert_int_equal (zb_subscriber_recv (f->sub, &d, 0, err, sizeof err), 0);
}

static void
test_bad_endpoint (void **state)
{
    (void) state;
    char err [256] = "";
    zb_subscriber_t *sub = zb_subscriber_new ("nonsense://x", err, sizeof err);
    assert_null (sub);
    assert_non_null (strstr (err, "nonsense://x"));
}

int
main (void)
{
    //  Every test with the subscriber unpacking events, then lazy (checked,
    //  handed out as raw bytes: the same events, the same errors)
#define BOTH(test) \
        cmocka_unit_test_setup_teardown (test, s_setup, s_teardown), \
        cmocka_unit_test_setup_teardown (test, s_setup_lazy, s_teardown)
    const struct CMUnitTest tests [] = {
        BOTH (test_exact_subscription_is_exact),
        BOTH (test_prefix_subscription_gets_every_matching_topic),
        BOTH (test_gaps_are_counted_per_topic),
        BOTH (test_broker_restart_resets_without_a_gap),
        BOTH (test_malformed_messages_are_dropped_whole),
        BOTH (test_batches_are_handed_out_one_by_one),
        BOTH (test_malformed_batches_keep_their_good_events),
        BOTH (test_timeout_and_handle),
        cmocka_unit_test (test_bad_endpoint),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
