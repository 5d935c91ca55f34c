/*  test_counts.c - counters by name and their JSON summary. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "counts.h"

static void
test_counts_in_name_order (void **state)
{
    (void) state;
    zb_counts_t *counts = zb_counts_new ();
    assert_non_null (counts);
    json_object *empty = zb_counts_json (counts);
    assert_string_equal (json_object_to_json_string_ext (empty, JSON_C_TO_STRING_PLAIN), "{}");
    json_object_put (empty);

    assert_true (zb_counts_add (counts, "store_2", 7));
    assert_true (zb_counts_add (counts, "store_10", 8));
    assert_true (zb_counts_add (counts, "store_2", 7));
    //  A view into a longer buffer: only len bytes are the name
    assert_true (zb_counts_add (counts, "store_1xyz", 7));
    json_object *json = zb_counts_json (counts);
    assert_string_equal (json_object_to_json_string_ext (json, JSON_C_TO_STRING_PLAIN),
                         "{\"store_1\":1,\"store_10\":1,\"store_2\":2}");
    json_object_put (json);
    zb_counts_destroy (&counts);
    assert_null (counts);
    zb_counts_destroy (&counts);            //  twice is harmless
}

static void
test_long_names_are_counted_whole (void **state)
{
    (void) state;
    zb_counts_t *counts = zb_counts_new ();
    char name [1000];
    memset (name, 'a', sizeof name);
    assert_true (zb_counts_add (counts, name, sizeof name));
    assert_true (zb_counts_add (counts, name, sizeof name));
    assert_true (zb_counts_add (counts, name, sizeof name - 1));
    json_object *json = zb_counts_json (counts);
    assert_int_equal (json_object_object_length (json), 2);
    char key [sizeof name + 1];
    memcpy (key, name, sizeof name);
    key [sizeof name] = '\0';
    json_object *n;
    assert_true (json_object_object_get_ex (json, key, &n));
    assert_int_equal (json_object_get_uint64 (n), 2);
    json_object_put (json);
    zb_counts_destroy (&counts);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_counts_in_name_order),
        cmocka_unit_test (test_long_names_are_counted_whole),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
