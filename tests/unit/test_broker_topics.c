/*  test_broker_topics.c - the broker's topic table (broker/topics.c): tracking
    and its limit, subscription-only topics, removal, growth, iteration. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../broker/topics.h"

static void
test_track_creates_once (void **state)
{
    (void) state;
    zb_topics_t *topics = zb_topics_new (10);
    zb_topic_t *a = NULL, *b = NULL;
    assert_int_equal (zb_topics_track (topics, "sales-events", 12, &a), 0);
    assert_non_null (a);
    assert_true (a->tracked);
    assert_int_equal (a->len, 12);
    assert_memory_equal (a->name, "sales-events\0", 13);    //  the topic frame
    assert_int_equal (zb_topics_track (topics, "sales-events", 12, &b), 0);
    assert_ptr_equal (a, b);
    assert_ptr_equal (zb_topics_lookup (topics, "sales-events", 12), a);
    //  Names are bytes: a prefix or a longer name is another topic
    assert_null (zb_topics_lookup (topics, "sales-event", 11));
    assert_null (zb_topics_lookup (topics, "sales-events-v2", 15));
    assert_int_equal (zb_topics_size (topics), 1);
    assert_int_equal (zb_topics_tracked (topics), 1);
    zb_topics_destroy (&topics);
    assert_null (topics);
}

static void
test_track_limit (void **state)
{
    (void) state;
    zb_topics_t *topics = zb_topics_new (3);
    zb_topic_t *topic;
    assert_int_equal (zb_topics_track (topics, "a", 1, &topic), 0);
    assert_int_equal (zb_topics_track (topics, "b", 1, &topic), 0);
    assert_int_equal (zb_topics_track (topics, "c", 1, &topic), 0);
    assert_int_equal (zb_topics_track (topics, "d", 1, &topic), -1);
    assert_null (topic);
    //  Known topics still work at the limit
    assert_int_equal (zb_topics_track (topics, "b", 1, &topic), 0);
    assert_non_null (topic);
    //  A subscription-only topic does not count, but cannot be promoted past the limit
    assert_int_equal (zb_topics_subscribe (topics, "e", 1), 1);
    assert_int_equal (zb_topics_size (topics), 4);
    assert_int_equal (zb_topics_track (topics, "e", 1, &topic), -1);
    assert_int_equal (zb_topics_tracked (topics), 3);
    zb_topics_destroy (&topics);
}

static void
test_subscriptions_count_and_clamp (void **state)
{
    (void) state;
    zb_topics_t *topics = zb_topics_new (10);
    zb_topic_t *topic;
    assert_int_equal (zb_topics_track (topics, "sales-events", 12, &topic), 0);
    assert_int_equal (zb_topics_subscribe (topics, "sales-events", 12), 1);
    assert_int_equal (zb_topics_subscribe (topics, "sales-events", 12), 2);
    assert_int_equal (topic->subscribers, 2);
    assert_int_equal (zb_topics_unsubscribe (topics, "sales-events", 12), 1);
    assert_int_equal (zb_topics_unsubscribe (topics, "sales-events", 12), 0);
    //  Never below zero; a tracked topic stays with its counters
    assert_int_equal (zb_topics_unsubscribe (topics, "sales-events", 12), 0);
    assert_ptr_equal (zb_topics_lookup (topics, "sales-events", 12), topic);
    //  Unknown topic, bad lengths
    assert_int_equal (zb_topics_unsubscribe (topics, "nothing", 7), -1);
    assert_int_equal (zb_topics_subscribe (topics, "", 0), -1);
    char long_name [ZB_MAX_DETAIL_TYPE + 1];
    memset (long_name, 'x', sizeof long_name);
    assert_int_equal (zb_topics_subscribe (topics, long_name, sizeof long_name), -1);
    assert_int_equal (zb_topics_subscribe (topics, long_name, ZB_MAX_DETAIL_TYPE), 1);
    zb_topics_destroy (&topics);
}

static void
test_subscription_only_topic_comes_and_goes (void **state)
{
    (void) state;
    zb_topics_t *topics = zb_topics_new (10);
    assert_int_equal (zb_topics_subscribe (topics, "ghost", 5), 1);
    zb_topic_t *ghost = zb_topics_lookup (topics, "ghost", 5);
    assert_non_null (ghost);
    assert_false (ghost->tracked);
    assert_int_equal (zb_topics_tracked (topics), 0);
    assert_int_equal (zb_topics_unsubscribe (topics, "ghost", 5), 0);
    assert_null (zb_topics_lookup (topics, "ghost", 5));
    assert_int_equal (zb_topics_size (topics), 0);

    //  Subscribed first, then events: the subscriber count carries over
    assert_int_equal (zb_topics_subscribe (topics, "early", 5), 1);
    zb_topic_t *early;
    assert_int_equal (zb_topics_track (topics, "early", 5, &early), 0);
    assert_true (early->tracked);
    assert_int_equal (early->subscribers, 1);
    assert_int_equal (zb_topics_unsubscribe (topics, "early", 5), 0);
    assert_ptr_equal (zb_topics_lookup (topics, "early", 5), early);
    zb_topics_destroy (&topics);
}

static void
test_subscription_only_limit (void **state)
{
    (void) state;
    zb_topics_t *topics = zb_topics_new (2);
    assert_int_equal (zb_topics_subscribe (topics, "a", 1), 1);
    assert_int_equal (zb_topics_subscribe (topics, "b", 1), 1);
    assert_int_equal (zb_topics_subscribe (topics, "c", 1), -1);
    assert_int_equal (zb_topics_subscribe (topics, "a", 1), 2);   //  existing: fine
    zb_topics_destroy (&topics);
}

//  Many topics, removed in an interleaved order: every remaining one is still
//  found (exercises growth, backward-shift deletion and the dense array).
static void
test_many_topics_add_remove (void **state)
{
    (void) state;
    const int count = 5000;
    zb_topics_t *topics = zb_topics_new ((size_t) count);
    char name [32];
    for (int i = 0; i < count; i++) {
        int len = snprintf (name, sizeof name, "topic-%d", i);
        assert_int_equal (zb_topics_subscribe (topics, name, (size_t) len), 1);
    }
    assert_int_equal (zb_topics_size (topics), count);
    //  Track every third one: those survive their unsubscription
    for (int i = 0; i < count; i += 3) {
        int len = snprintf (name, sizeof name, "topic-%d", i);
        zb_topic_t *topic;
        assert_int_equal (zb_topics_track (topics, name, (size_t) len, &topic), 0);
        topic->in = (uint64_t) i;
    }
    for (int i = 0; i < count; i += 2) {
        int len = snprintf (name, sizeof name, "topic-%d", i);
        assert_int_equal (zb_topics_unsubscribe (topics, name, (size_t) len), 0);
    }
    size_t expected = 0;
    for (int i = 0; i < count; i++) {
        int len = snprintf (name, sizeof name, "topic-%d", i);
        zb_topic_t *topic = zb_topics_lookup (topics, name, (size_t) len);
        bool present = i % 3 == 0 || i % 2 == 1;
        if (present) {
            expected++;
            assert_non_null (topic);
            assert_int_equal (topic->len, len);
            assert_memory_equal (topic->name, name, (size_t) len + 1);
            if (i % 3 == 0)
                assert_int_equal (topic->in, i);
        }
        else
            assert_null (topic);
    }
    assert_int_equal (zb_topics_size (topics), expected);
    //  Iteration visits each topic exactly once
    size_t seen = 0;
    for (size_t i = 0; i < zb_topics_size (topics); i++) {
        zb_topic_t *topic = zb_topics_at (topics, i);
        assert_non_null (topic);
        assert_ptr_equal (zb_topics_lookup (topics, topic->name, topic->len), topic);
        seen++;
    }
    assert_int_equal (seen, expected);
    assert_null (zb_topics_at (topics, expected));
    zb_topics_destroy (&topics);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_track_creates_once),
        cmocka_unit_test (test_track_limit),
        cmocka_unit_test (test_subscriptions_count_and_clamp),
        cmocka_unit_test (test_subscription_only_topic_comes_and_goes),
        cmocka_unit_test (test_subscription_only_limit),
        cmocka_unit_test (test_many_topics_add_remove),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
