/*  test_resend.c - what zb-producer's resends rest on: a request keeps its
    window slot under a new correlation id (a late reply to the old id matches
    nothing), a partial resend keeps the chosen entries' line numbers, and a
    keyed generated entry is the unkeyed one plus its idempotency key (the key
    draws nothing from the seeded stream). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "../../producer/generator.h"
#include "window.h"
#include "event.h"

static void
test_reissue_keeps_the_slot (void **state)
{
    (void) state;
    zb_window_t *w = zb_window_new (2, 4);
    uint8_t corr [ZB_CORRELATION_SIZE], next [ZB_CORRELATION_SIZE];
    size_t lines [] = { 10, 11, 12, 13 };
    uint64_t id = zb_window_open (w, 4, lines, corr);
    int slot = zb_window_slot (w, id);
    assert_true (slot == 0 || slot == 1);

    uint64_t found_id;
    size_t entries;
    const size_t *found_lines;
    assert_int_equal (zb_window_find (w, corr, sizeof corr, &found_id, &entries, &found_lines),
                      slot);
    assert_true (found_id == id);
    assert_int_equal (entries, 4);
    assert_int_equal (found_lines [3], 13);
    //  find does not close: it is still there
    assert_int_equal (zb_window_requests (w), 1);

    //  A resend of entries 1 and 3: new id, same slot, their lines
    size_t keep [] = { 11, 13 };
    uint64_t id2 = zb_window_reissue (w, id, 2, keep, next);
    assert_true (id2 > id);
    assert_int_equal (zb_window_slot (w, id2), slot);
    assert_int_equal (zb_window_slot (w, id), -1);
    assert_int_equal (zb_window_entries (w), 2);
    assert_int_equal (zb_window_requests (w), 1);
    //  The late reply to the old id matches nothing
    assert_int_equal (zb_window_find (w, corr, sizeof corr, &found_id, &entries, &found_lines),
                      -1);
    assert_false (zb_window_close (w, corr, sizeof corr, &found_id, &entries, &found_lines));
    assert_int_equal (zb_window_find (w, next, sizeof next, &found_id, &entries, &found_lines),
                      slot);
    assert_int_equal (entries, 2);
    assert_int_equal (found_lines [0], 11);
    assert_int_equal (found_lines [1], 13);

    //  A whole resend (NULL lines: keep them)
    uint8_t third [ZB_CORRELATION_SIZE];
    uint64_t id3 = zb_window_reissue (w, id2, 2, NULL, third);
    assert_true (zb_window_close (w, third, sizeof third, &found_id, &entries, &found_lines));
    assert_true (found_id == id3);
    assert_int_equal (found_lines [1], 13);
    assert_int_equal (zb_window_requests (w), 0);
    assert_int_equal (zb_window_entries (w), 0);
    zb_window_destroy (&w);
}

static void
test_keyed_entry_is_the_same_event (void **state)
{
    (void) state;
    zb_generator_t *plain = zb_generator_new (42, 0.5);
    zb_generator_t *keyed = zb_generator_new (42, 0.5);
    for (int i = 0; i < 50; i++) {
        msgpack_sbuffer a, b;
        msgpack_sbuffer_init (&a);
        msgpack_sbuffer_init (&b);
        msgpack_packer pa, pb;
        msgpack_packer_init (&pa, &a, msgpack_sbuffer_write);
        msgpack_packer_init (&pb, &b, msgpack_sbuffer_write);
        zb_generated_t ia, ib;
        char key [32];
        int len = snprintf (key, sizeof key, "run-%d", i + 1);
        zb_generator_pack (plain, &pa, &ia);
        zb_generator_pack_keyed (keyed, &pb, key, (size_t) len, &ib);
        assert_int_equal (ia.sale, ib.sale);
        assert_int_equal (ia.bad, ib.bad);

        msgpack_unpacked ua, ub;
        msgpack_unpacked_init (&ua);
        msgpack_unpacked_init (&ub);
        assert_int_equal (msgpack_unpack_next (&ua, a.data, a.size, NULL), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal (msgpack_unpack_next (&ub, b.data, b.size, NULL), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal (ua.data.via.map.size, 3);
        assert_int_equal (ub.data.via.map.size, 4);
        assert_true (zb_str_eq (zb_map_get (&ub.data, "idempotency-key"), key));
        const char *fields [] = { "source", "detail-type", "detail" };
        for (int f = 0; f < 3; f++)
            assert_true (msgpack_object_equal (*zb_map_get (&ua.data, fields [f]),
                                               *zb_map_get (&ub.data, fields [f])));
        msgpack_unpacked_destroy (&ua);
        msgpack_unpacked_destroy (&ub);
        msgpack_sbuffer_destroy (&a);
        msgpack_sbuffer_destroy (&b);
    }
    zb_generator_destroy (&plain);
    zb_generator_destroy (&keyed);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reissue_keeps_the_slot),
        cmocka_unit_test (test_keyed_entry_is_the_same_event),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
