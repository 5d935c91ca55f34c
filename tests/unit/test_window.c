/*  test_window.c - the producer's requests in flight: correlation ids and
    matching replies in any order. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "window.h"

static void
test_ids_count_from_one_big_endian (void **state)
{
    (void) state;
    zb_window_t *w = zb_window_new (4, 10);
    assert_non_null (w);
    uint8_t corr [ZB_CORRELATION_SIZE];
    assert_int_equal (zb_window_open (w, 3, NULL, corr), 1);
    const uint8_t one [8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    assert_memory_equal (corr, one, 8);
    assert_int_equal (zb_window_open (w, 10, NULL, corr), 2);
    const uint8_t two [8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
    assert_memory_equal (corr, two, 8);
    uint64_t id;
    assert_true (zb_window_decode (corr, 8, &id));
    assert_int_equal (id, 2);
    assert_false (zb_window_decode (corr, 7, &id));
    assert_int_equal (zb_window_requests (w), 2);
    assert_int_equal (zb_window_entries (w), 13);
    zb_window_destroy (&w);
    assert_null (w);
}

static void
test_replies_in_any_order (void **state)
{
    (void) state;
    zb_window_t *w = zb_window_new (3, 4);
    uint8_t corr [3][ZB_CORRELATION_SIZE];
    const size_t lines_a [] = { 1, 2 };
    const size_t lines_c [] = { 7, 9, 11, 12 };
    zb_window_open (w, 2, lines_a, corr [0]);
    zb_window_open (w, 1, NULL, corr [1]);
    zb_window_open (w, 4, lines_c, corr [2]);
    assert_true (zb_window_full (w));

    uint64_t id;
    size_t entries;
    const size_t *lines;
    assert_true (zb_window_close (w, corr [2], 8, &id, &entries, &lines));
    assert_int_equal (id, 3);
    assert_int_equal (entries, 4);
    assert_memory_equal (lines, lines_c, sizeof lines_c);
    assert_false (zb_window_full (w));
    //  The same reply twice, or a stranger's: not ours
    assert_false (zb_window_close (w, corr [2], 8, &id, &entries, &lines));
    const uint8_t stranger [8] = { 0, 0, 0, 0, 0, 0, 0, 99 };
    assert_false (zb_window_close (w, stranger, 8, &id, &entries, &lines));
    assert_false (zb_window_close (w, corr [0], 4, &id, &entries, &lines));
    assert_false (zb_window_close (w, "", 0, &id, &entries, &lines));

    //  The freed slot is reused by the next request
    uint8_t next [ZB_CORRELATION_SIZE];
    assert_int_equal (zb_window_open (w, 1, NULL, next), 4);
    assert_true (zb_window_close (w, corr [0], 8, &id, &entries, &lines));
    assert_int_equal (id, 1);
    assert_int_equal (entries, 2);
    assert_memory_equal (lines, lines_a, sizeof lines_a);
    assert_true (zb_window_close (w, corr [1], 8, &id, &entries, &lines));
    assert_int_equal (entries, 1);
    assert_null (lines);
    assert_int_equal (zb_window_requests (w), 1);
    assert_int_equal (zb_window_entries (w), 1);
    zb_window_cancel (w, 4);
    assert_int_equal (zb_window_requests (w), 0);
    assert_int_equal (zb_window_entries (w), 0);
    zb_window_destroy (&w);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ids_count_from_one_big_endian),
        cmocka_unit_test (test_replies_in_any_order),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
