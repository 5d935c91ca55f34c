/*  test_generator.c - the producer's store event generator: reproducible,
    shaped as the brief says, and always a valid PutEvents entry. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../producer/generator.h"
#include "event.h"

//  Pack n entries of a generator into buf (as one msgpack stream)
static void
s_generate (uint64_t seed, double bad_ratio, size_t n, msgpack_sbuffer *buf,
            size_t *sales, size_t *bad)
{
    zb_generator_t *gen = zb_generator_new (seed, bad_ratio);
    assert_non_null (gen);
    msgpack_sbuffer_init (buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    *sales = *bad = 0;
    for (size_t i = 0; i < n; i++) {
        zb_generated_t info;
        zb_generator_pack (gen, &pk, &info);
        *sales += info.sale;
        *bad += info.bad;
    }
    zb_generator_destroy (&gen);
    assert_null (gen);
}

static void
test_same_seed_same_events (void **state)
{
    (void) state;
    msgpack_sbuffer a, b, c;
    size_t sa, ba, sb, bb, sc, bc;
    s_generate (42, 0.1, 1000, &a, &sa, &ba);
    s_generate (42, 0.1, 1000, &b, &sb, &bb);
    s_generate (43, 0.1, 1000, &c, &sc, &bc);
    assert_int_equal (a.size, b.size);
    assert_memory_equal (a.data, b.data, a.size);
    assert_int_equal (sa, sb);
    assert_int_equal (ba, bb);
    assert_true (a.size != c.size || memcmp (a.data, c.data, a.size) != 0);
    msgpack_sbuffer_destroy (&a);
    msgpack_sbuffer_destroy (&b);
    msgpack_sbuffer_destroy (&c);
}

static bool
s_is_uuid_v4 (const msgpack_object *obj)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR || obj->via.str.size != 36)
        return false;
    const char *s = obj->via.str.ptr;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s [i] != '-')
                return false;
        }
        else
        if (!strchr ("0123456789abcdef", s [i]))
            return false;
    }
    return s [14] == '4' && strchr ("89ab", s [19]);
}

static const char *s_categories [] = {
    "Books", "Mobiles", "Groceries", "Shoes", "Laptops", "Tablets", "Notebooks",
    "Camera", "Printers", "Monitors", "Speakers", "Projectors", "Furniture", NULL
};

static bool
s_is_category (const msgpack_object *obj)
{
    for (const char **c = s_categories; *c; c++)
        if (zb_str_eq (obj, *c))
            return true;
    return false;
}

static void
test_every_event_is_a_valid_store_event (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    size_t sales, bad;
    const size_t n = 5000;
    s_generate (7, 0.1, n, &buf, &sales, &bad);

    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    size_t offset = 0, seen_sales = 0, seen_bad = 0, orders = 0, returns = 0;
    for (size_t i = 0; i < n; i++) {
        msgpack_object entry;
        msgpack_zone_clear (&zone);
        msgpack_unpack_return rc = msgpack_unpack (buf.data, buf.size, &offset, &zone, &entry);
        assert_true (rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES);

        //  What the broker will check
        zb_entry_t parsed;
        char err [256];
        if (zb_entry_parse (&entry, &parsed, err, sizeof err) != ZB_OK)
            fail_msg ("event %zu is not a valid entry: %s", i, err);

        assert_true (zb_str_eq (zb_map_get (&entry, "source"), "zbridge.store-producer"));
        const msgpack_object *type = zb_map_get (&entry, "detail-type");
        bool sale = zb_str_eq (type, "sales-events");
        assert_true (sale || zb_str_eq (type, "inventory-events"));
        seen_sales += sale;

        const msgpack_object *detail = zb_map_get (&entry, "detail");
        assert_true (s_is_uuid_v4 (zb_map_get (detail, "request_id")));
        const msgpack_object *name = zb_map_get (detail, "name");
        assert_true (name && name->type == MSGPACK_OBJECT_STR && name->via.str.size > 0);
        assert_true (s_is_category (zb_map_get (detail, "category")));
        const msgpack_object *amount = zb_map_get (detail, "sales");
        assert_non_null (amount);
        assert_int_equal (amount->type, MSGPACK_OBJECT_FLOAT64);
        assert_true (amount->via.f64 >= 0 && amount->via.f64 <= 100);
        double cents = amount->via.f64 * 100;
        double off = cents - (double) (long) (cents + 0.5);
        assert_true (off < 1e-6 && off > -1e-6);          //  two decimals

        const msgpack_object *order = zb_map_get (detail, "new_order");
        const msgpack_object *ret = zb_map_get (detail, "is_return");
        assert_true ((order != NULL) != (ret != NULL));
        const msgpack_object *flag = order? order: ret;
        assert_int_equal (flag->type, MSGPACK_OBJECT_BOOLEAN);
        assert_true (flag->via.boolean);
        orders += order != NULL;
        returns += ret != NULL;

        const msgpack_object *store = zb_map_get (detail, "store_id");
        const msgpack_object *bad_msg = zb_map_get (detail, "bad_msg");
        if (bad_msg) {
            assert_int_equal (bad_msg->type, MSGPACK_OBJECT_BOOLEAN);
            assert_true (bad_msg->via.boolean);
            assert_null (store);
            seen_bad++;
        }
        else {
            assert_non_null (store);
            assert_int_equal (store->via.str.size, 7);
            assert_memory_equal (store->via.str.ptr, "store_", 6);
            assert_true (store->via.str.ptr [6] >= '1' && store->via.str.ptr [6] <= '5');
        }
    }
    assert_int_equal (offset, buf.size);
    assert_int_equal (seen_sales, sales);
    assert_int_equal (seen_bad, bad);
    //  A fair mix (fixed seed: these are exact facts of this run, with a wide margin)
    assert_true (sales > n * 4 / 10 && sales < n * 6 / 10);
    assert_true (orders > n * 4 / 10 && returns > n * 4 / 10);
    assert_true (bad > n * 7 / 100 && bad < n * 13 / 100);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&buf);
}

static void
test_bad_ratio_bounds (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    size_t sales, bad;
    s_generate (1, 0.0, 2000, &buf, &sales, &bad);
    assert_int_equal (bad, 0);
    msgpack_sbuffer_destroy (&buf);
    s_generate (1, 1.0, 2000, &buf, &sales, &bad);
    assert_int_equal (bad, 2000);
    msgpack_sbuffer_destroy (&buf);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_same_seed_same_events),
        cmocka_unit_test (test_every_event_is_a_valid_store_event),
        cmocka_unit_test (test_bad_ratio_bounds),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
