/*  test_entry_packed.c - zb_entry_parse_packed (common/event.c), the
    broker's fast path, against the reference it replaces: the entry decoded
    into a tree (broker/decode.c zb_msgpack_decode, with the broker's keep
    depth) and checked by zb_entry_parse, detail and resources bytes found
    by zb_msgpack_value_bytes.

    Differential over many generated entries (valid ones, and ones breaking
    each rule: types, lengths, UTF-8, control characters, '$', times,
    resources, idempotency keys, detail keys, duplicates in small and big
    maps, NUL in keys, NaN and Infinity, bin and ext, depth around the
    limit, every str/int/float/container encoding) and byte-level mutations
    of them:
    - the fast path accepts exactly when the reference accepts;
    - then it fills the same fields (same pointers into the bytes, same
      normalized time), finds the same detail and resources bytes, and the
      event zb_event_write writes from it is the same, byte for byte;
    - on bytes that are not one valid value, an accepted entry is a valid
      prefix that the reference accepts alike.
    The broker asks the reference (zb_entry_parse) for every code and message,
    so those are tested where they always were (test_event, tests/system). */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msgpack.h>
#include "event.h"
#include "zb.h"
#include "../../broker/decode.h"

//  --------------------------------------------------------------------------
//  A tiny PRNG and a raw msgpack writer (every encoding, not only the
//  shortest, so that the fast path's reader meets them all)

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static size_t
s_below (size_t n)
{
    return n ? (size_t) (s_rand () % n) : 0;
}

typedef struct {
    uint8_t *data;
    size_t size;
    size_t cap;
} buf_t;

static void
s_put (buf_t *b, const void *data, size_t len)
{
    if (b->size + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->size + len)
            cap *= 2;
        b->data = (uint8_t *) realloc (b->data, cap);
        assert_non_null (b->data);
        b->cap = cap;
    }
    if (len)
        memcpy (b->data + b->size, data, len);
    b->size += len;
}

static void
s_byte (buf_t *b, uint8_t c)
{
    s_put (b, &c, 1);
}

static void
s_be (buf_t *b, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--)
        s_byte (b, (uint8_t) (v >> (8 * (i - 1))));
}

//  A header of a str, array or map of n, in the shortest encoding or (now
//  and then) a longer one that is still valid.
static void
s_header (buf_t *b, char kind, size_t n)
{
    size_t pick = s_below (8);
    if (kind == 's') {
        if (n < 32 && pick < 5)
            s_byte (b, (uint8_t) (0xa0 | n));
        else
        if (n < 256 && pick < 7) {
            s_byte (b, 0xd9);
            s_be (b, n, 1);
        }
        else
        if (n < 65536 && pick < 8) {
            s_byte (b, 0xda);
            s_be (b, n, 2);
        }
        else {
            s_byte (b, 0xdb);
            s_be (b, n, 4);
        }
        return;
    }
    uint8_t fix = kind == 'm' ? 0x80 : 0x90;
    uint8_t w16 = kind == 'm' ? 0xde : 0xdc;
    if (n < 16 && pick < 6)
        s_byte (b, (uint8_t) (fix | n));
    else
    if (n < 65536 && pick < 7) {
        s_byte (b, w16);
        s_be (b, n, 2);
    }
    else {
        s_byte (b, (uint8_t) (w16 + 1));
        s_be (b, n, 4);
    }
}

static void
s_str (buf_t *b, const char *s, size_t len)
{
    s_header (b, 's', len);
    s_put (b, s, len);
}

static void
s_cstr (buf_t *b, const char *s)
{
    s_str (b, s, strlen (s));
}

//  A string for a name, a key or a value: ASCII of various lengths, or with
//  something for one of the rules in it.
static size_t
s_text (char *out, size_t max_len)
{
    static const char *const pieces [] = {
        "a", "sales-events", "zbridge.bench", "x y", "A-Z_09", "$", "\"", "\\",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",             //  valid multibyte
        "\x01", "\x1f", "\x7f", "\t", "\xc2\x80", "\xc2\x9f", "\xc2\xa0",   //  controls, C1, NBSP
        "\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80", //  invalid
    };
    size_t n = 0;
    size_t shape = s_below (10);
    size_t target;
    if (shape < 2)
        target = s_below (8);
    else
    if (shape < 5)
        target = s_below (40);
    else
    if (shape < 7)
        target = 120 + s_below (20);
    else
    if (shape < 8)
        target = 250 + s_below (12);
    else
        target = s_below (400);
    if (target > max_len)
        target = max_len;
    bool plain = s_below (6) > 0;        //  mostly printable ASCII
    while (n < target) {
        if (plain || s_below (6)) {
            out [n++] = (char) ('a' + s_below (26));
            continue;
        }
        if (s_below (30) == 0) {
            out [n++] = 0;               //  NUL
            continue;
        }
        const char *p = pieces [s_below (sizeof pieces / sizeof pieces [0])];
        size_t len = strlen (p);
        if (n + len > max_len)
            break;
        memcpy (out + n, p, len);
        n += len;
    }
    //  Sometimes the '$' prefix, or a single special byte at the end
    if (n > 0 && s_below (20) == 0)
        out [0] = '$';
    return n;
}

static void
s_random_str (buf_t *b)
{
    char text [600];
    size_t len = s_text (text, sizeof text);
    s_str (b, text, len);
}

static void
s_float (buf_t *b)
{
    static const double specials [] = { 0.0, -0.0, 1.5, -2.25, 1e300, 3.4e38 };
    size_t pick = s_below (10);
    double d = pick < 6 ? specials [pick] : pick == 6 ? NAN : pick == 7 ? INFINITY
             : pick == 8 ? -INFINITY : (double) (int64_t) s_rand () / 7.0;
    if (s_below (2)) {
        float f = (float) d;
        uint32_t raw;
        memcpy (&raw, &f, 4);
        if (s_below (8) == 0)
            raw = 0x7f800001u | (uint32_t) s_below (1u << 22);  //  a NaN payload
        s_byte (b, 0xca);
        s_be (b, raw, 4);
    }
    else {
        uint64_t raw;
        memcpy (&raw, &d, 8);
        if (s_below (8) == 0)
            raw = 0x7ff0000000000001ULL | s_rand () >> 13;     //  a NaN payload
        s_byte (b, 0xcb);
        s_be (b, raw, 8);
    }
}

static void
s_int (buf_t *b)
{
    switch (s_below (10)) {
        case 0: s_byte (b, (uint8_t) s_below (128)); break;
        case 1: s_byte (b, (uint8_t) (0xe0 | s_below (32))); break;
        case 2: s_byte (b, 0xcc); s_be (b, s_rand (), 1); break;
        case 3: s_byte (b, 0xcd); s_be (b, s_rand (), 2); break;
        case 4: s_byte (b, 0xce); s_be (b, s_rand (), 4); break;
        case 5: s_byte (b, 0xcf); s_be (b, s_rand (), 8); break;
        case 6: s_byte (b, 0xd0); s_be (b, s_rand (), 1); break;
        case 7: s_byte (b, 0xd1); s_be (b, s_rand (), 2); break;
        case 8: s_byte (b, 0xd2); s_be (b, s_rand (), 4); break;
        default: s_byte (b, 0xd3); s_be (b, s_rand (), 8); break;
    }
}

static void s_value (buf_t *b, int depth, int max_depth);

//  Values an entry may still have: bounds the size of what is generated
static size_t s_budget;

//  A map in detail: keys mostly distinct short names, now and then a
//  duplicate, an odd key or a key that is not a string.
static void
s_map (buf_t *b, int depth, int max_depth, size_t n)
{
    s_header (b, 'm', n);
    char keys [64][16];
    size_t lens [64];
    bool dup = s_below (6) == 0;
    for (size_t i = 0; i < n; i++) {
        size_t pick = s_below (40);
        if (pick == 0) {
            s_int (b);                          //  not a string
            lens [i % 64] = 0;
        }
        else
        if (pick == 1) {
            char text [600];
            size_t len = s_text (text, sizeof text);
            s_str (b, text, len);
            lens [i % 64] = 0;
        }
        else
        if (dup && i > 0 && s_below (n) == 0) {
            size_t j = s_below (i < 64 ? i : 64);
            s_str (b, keys [j], lens [j]);
            memcpy (keys [i % 64], keys [j], 16);
            lens [i % 64] = lens [j];
        }
        else {
            size_t len = (size_t) snprintf (keys [i % 64], 16, "%s%zu",
                                            s_below (3) ? "k" : "sent_ns_", i);
            lens [i % 64] = len;
            s_str (b, keys [i % 64], len);
        }
        s_value (b, depth + 1, max_depth);
    }
}

//  A value at nesting level depth (detail is level 2).
static void
s_value (buf_t *b, int depth, int max_depth)
{
    size_t pick = s_below (depth < max_depth && s_budget > 0 ? 20 : 14);
    if (s_budget > 0)
        s_budget--;
    switch (pick) {
        case 0: s_byte (b, 0xc0); break;
        case 1: s_byte (b, s_below (2) ? 0xc2 : 0xc3); break;
        case 2: case 3: s_int (b); break;
        case 4: s_float (b); break;
        case 5: case 6: case 7: case 8: s_random_str (b); break;
        case 9: {
            char text [8] = "payload";
            s_cstr (b, text);
            break;
        }
        case 10:
            if (s_below (8) == 0) {                 //  bin
                s_byte (b, 0xc4);
                s_byte (b, 2);
                s_put (b, "ab", 2);
                break;
            }
            s_random_str (b);
            break;
        case 11:
            if (s_below (8) == 0) {                 //  ext
                if (s_below (2)) {
                    s_byte (b, 0xd4);
                    s_byte (b, 1);
                    s_byte (b, 0);
                }
                else {
                    s_byte (b, 0xc7);
                    s_byte (b, 1);
                    s_byte (b, 5);
                    s_byte (b, 0);
                }
                break;
            }
            s_int (b);
            break;
        case 12: case 13:
            s_random_str (b);
            break;
        case 14: case 15: case 16: {
            size_t n = s_below (4);
            s_header (b, 'a', n);
            for (size_t i = 0; i < n; i++)
                s_value (b, depth + 1, max_depth);
            break;
        }
        default: {
            size_t n = s_below (10) == 0 && s_budget > 50 ? 14 + s_below (30) : s_below (5);
            s_map (b, depth, max_depth, n);
            break;
        }
    }
}

//  A detail value: nearly always a map, sometimes nested to around the limit.
static void
s_detail (buf_t *b)
{
    size_t pick = s_below (30);
    if (pick == 0) {
        s_value (b, 2, 4);                      //  maybe not a map
        return;
    }
    if (pick < 4) {
        //  A chain of containers around ZB_MAX_DEPTH (detail is level 2)
        int levels = ZB_MAX_DEPTH - 3 + (int) s_below (5);
        s_header (b, 'm', 1);
        s_cstr (b, "deep");
        for (int i = 3; i <= levels; i++) {
            if (s_below (2)) {
                s_header (b, 'a', 1);
            }
            else {
                s_header (b, 'm', 1);
                s_cstr (b, "k");
            }
        }
        s_byte (b, 0x01);
        return;
    }
    if (pick < 6) {
        //  A big map, with or without a duplicate key
        size_t n = 17 + s_below (60);
        bool dup = s_below (2);
        s_header (b, 'm', n);
        for (size_t i = 0; i < n; i++) {
            char key [24];
            size_t len = (size_t) snprintf (key, sizeof key, "key-%zu",
                                            dup && i == n - 1 ? s_below (n - 1) : i);
            s_str (b, key, len);
            s_value (b, 3, 4);
        }
        return;
    }
    s_map (b, 1, 2 + (int) s_below (5), s_below (6));
}

static void
s_time (buf_t *b)
{
    static const char *const times [] = {
        "2026-11-26T17:15:01Z", "2026-11-26T17:15:01.123456Z", "2026-11-26T18:15:01+01:00",
        "2026-02-30T00:00:00Z", "2026-11-26 17:15:01Z", "", "yesterday", "2026-11-26T17:15:01",
        "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59",
    };
    if (s_below (15) == 0) {
        s_int (b);
        return;
    }
    s_cstr (b, times [s_below (3) ? s_below (3) : s_below (sizeof times / sizeof times [0])]);
}

static void
s_resources (buf_t *b)
{
    if (s_below (15) == 0) {
        s_random_str (b);                       //  not an array
        return;
    }
    size_t n = s_below (4);
    s_header (b, 'a', n);
    for (size_t i = 0; i < n; i++) {
        if (s_below (20) == 0)
            s_int (b);
        else
            s_random_str (b);
    }
}

//  A name (source or detail-type): mostly good, sometimes not a string.
static void
s_name (buf_t *b, bool is_type)
{
    if (s_below (25) == 0) {
        s_value (b, 3, 4);
        return;
    }
    if (s_below (4)) {
        s_cstr (b, is_type ? (s_below (2) ? "sales-events" : "inventory-events")
                           : "zbridge.bench");
        return;
    }
    s_random_str (b);
}

//  One entry: the usual keys in some order, now and then one missing,
//  repeated, unknown or set by the broker, or the entry not a map.
static void
s_entry (buf_t *b)
{
    s_budget = 200;
    if (s_below (60) == 0) {
        s_value (b, 2, 3);
        return;
    }
    const char *keys [10];
    size_t n = 0;
    keys [n++] = "source";
    keys [n++] = "detail-type";
    keys [n++] = "detail";
    if (s_below (3) == 0)
        keys [n++] = "time";
    if (s_below (3) == 0)
        keys [n++] = "resources";
    if (s_below (3) == 0)
        keys [n++] = "idempotency-key";
    if (s_below (20) == 0) {
        keys [n] = keys [s_below (n)];              //  twice
        n++;
    }
    if (s_below (25) == 0) {
        static const char *const odd [] = { "id", "version", "account", "region", "Source",
                                             "detail-typ", "", "\xff", "resources\x00" };
        keys [n++] = odd [s_below (sizeof odd / sizeof odd [0])];
    }
    if (s_below (25) == 0)
        keys [s_below (n)] = keys [n - 1];      //  one missing, one twice
    //  Shuffle
    for (size_t i = n; i > 1; i--) {
        size_t j = s_below (i);
        const char *t = keys [i - 1];
        keys [i - 1] = keys [j];
        keys [j] = t;
    }
    s_header (b, 'm', n);
    for (size_t i = 0; i < n; i++) {
        if (s_below (200) == 0) {
            s_int (b);                              //  a key that is not a string
            s_int (b);
            continue;
        }
        s_cstr (b, keys [i]);
        if (strcmp (keys [i], "source") == 0)
            s_name (b, false);
        else
        if (strcmp (keys [i], "detail-type") == 0)
            s_name (b, true);
        else
        if (strcmp (keys [i], "detail") == 0)
            s_detail (b);
        else
        if (strcmp (keys [i], "time") == 0)
            s_time (b);
        else
        if (strcmp (keys [i], "resources") == 0)
            s_resources (b);
        else
        if (strcmp (keys [i], "idempotency-key") == 0) {
            if (s_below (10) == 0)
                s_int (b);
            else
            if (s_below (2)) {
                char key [32];
                s_str (b, key, (size_t) snprintf (key, sizeof key, "key-%zu", s_below (1000)));
            }
            else
                s_random_str (b);
        }
        else
            s_random_str (b);
    }
}

//  --------------------------------------------------------------------------
//  The comparison

static msgpack_zone s_zone;
static size_t s_accepted, s_rejected, s_mutated_accepted;

static bool
s_same_str (zb_str_t a, zb_str_t b)
{
    return a.ptr == b.ptr && a.len == b.len;
}

//  The reference verdict on [data, data+len), one whole value: ZB_OK and
//  *entry with its bytes found, or the code; -1 when the bytes are not one
//  valid msgpack value.
static int
s_reference (const uint8_t *data, size_t len, zb_entry_t *entry)
{
    msgpack_object obj;
    char err [256];
    msgpack_zone_clear (&s_zone);
    //  As the broker decodes an entry (an entry nests ZB_MAX_DEPTH levels)
    if (zb_msgpack_decode (data, len, ZB_MAX_DEPTH + 1, &s_zone, &obj, err, sizeof err) != 0)
        return -1;
    zb_code_t code = zb_entry_parse (&obj, entry, err, sizeof err);
    if (code == ZB_OK) {
        entry->detail_bytes.ptr = zb_msgpack_value_bytes (entry->detail, data, len,
                                                          &entry->detail_bytes.len);
        if (entry->resources)
            entry->resources_bytes.ptr = zb_msgpack_value_bytes (entry->resources, data, len,
                                                                 &entry->resources_bytes.len);
    }
    return (int) code;
}

static void
s_same_event (const zb_entry_t *a, const zb_entry_t *b)
{
    zb_str_t when = a->time_utc_len ? (zb_str_t) { a->time_utc, a->time_utc_len }
                                    : ZB_STR ("2026-11-26T17:15:01Z");
    zb_stamp_t stamp = {
        .id = ZB_STR ("5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21"),
        .time = when,
        .account = ZB_STR ("000000000000"),
        .region = ZB_STR ("local"),
    };
    size_t size_a = zb_event_size (a, &stamp);
    size_t size_b = zb_event_size (b, &stamp);
    assert_int_equal (size_a, size_b);
    char *ea = (char *) malloc (size_a), *eb = (char *) malloc (size_b);
    assert_non_null (ea);
    assert_non_null (eb);
    zb_event_write (ea, a, &stamp);
    zb_event_write (eb, b, &stamp);
    assert_memory_equal (ea, eb, size_a);
    free (ea);
    free (eb);
}

static void
s_same_entry (const zb_entry_t *ref, const zb_entry_t *fast)
{
    assert_true (s_same_str (ref->source, fast->source));
    assert_true (s_same_str (ref->detail_type, fast->detail_type));
    assert_true (s_same_str (ref->time, fast->time));
    assert_true (s_same_str (ref->idem_key, fast->idem_key));
    assert_int_equal (ref->time_utc_len, fast->time_utc_len);
    assert_memory_equal (ref->time_utc, fast->time_utc, ref->time_utc_len);
    assert_true (s_same_str (ref->detail_bytes, fast->detail_bytes));
    assert_true (s_same_str (ref->resources_bytes, fast->resources_bytes));
    assert_null (fast->detail);
    assert_null (fast->resources);
    s_same_event (ref, fast);
}

//  [data, data+len) is one whole entry value, or any bytes at all (mutated).
static void
s_compare (const uint8_t *data, size_t len, bool whole)
{
    zb_entry_t ref, fast;
    memset (&fast, 0x5a, sizeof fast);
    size_t used = 0;
    bool ok = zb_entry_parse_packed ((const char *) data, len, &fast, &used);
    if (ok) {
        //  A valid prefix the reference accepts alike
        assert_true (used > 0 && used <= len);
        if (whole)
            assert_int_equal (used, len);
        char err [256];
        assert_int_equal (zb_msgpack_validate (data, used, err, sizeof err), 0);
        int rc = s_reference (data, used, &ref);
        if (rc != ZB_OK)
            fail_msg ("the fast path accepts an entry zb_entry_parse rejects (%d)", rc);
        s_same_entry (&ref, &fast);
    }
    else
    if (whole) {
        int rc = s_reference (data, len, &ref);
        assert_int_not_equal (rc, -1);      //  the generator writes valid msgpack
        if (rc == ZB_OK)
            fail_msg ("the fast path refuses an entry zb_entry_parse accepts");
    }
    else {
        //  Not refused for want of memory: then a valid value the reference rejects
        char err [256];
        size_t size = 0;
        if (len > 0 && zb_msgpack_validate (data, len, err, sizeof err) == 0) {
            size = zb_msgpack_value_size (data, len);
            assert_int_not_equal (s_reference (data, size, &ref), ZB_OK);
        }
    }
}

static void
test_differential_generated (void **state)
{
    (void) state;
    assert_true (msgpack_zone_init (&s_zone, 4096));
    buf_t b = { NULL, 0, 0 };
    for (int i = 0; i < 60000; i++) {
        b.size = 0;
        s_entry (&b);
        zb_entry_t ref;
        int rc = s_reference (b.data, b.size, &ref);
        if (rc == ZB_OK)
            s_accepted++;
        else
            s_rejected++;
        s_compare (b.data, b.size, true);
        //  The same entry with bytes after it (the rest of a body)
        size_t whole = b.size;
        s_put (&b, "\x93\xa1x", 3);
        zb_entry_t fast;
        size_t used = 0;
        bool ok = zb_entry_parse_packed ((const char *) b.data, b.size, &fast, &used);
        assert_int_equal (ok, rc == ZB_OK);
        if (ok)
            assert_int_equal (used, whole);
    }
    //  Both verdicts must be common, or the generator tests little
    print_message ("generated: %zu accepted, %zu rejected\n", s_accepted, s_rejected);
    assert_true (s_accepted > 15000);
    assert_true (s_rejected > 15000);
    free (b.data);
    msgpack_zone_destroy (&s_zone);
}

static void
test_differential_mutated (void **state)
{
    (void) state;
    assert_true (msgpack_zone_init (&s_zone, 4096));
    buf_t b = { NULL, 0, 0 };
    for (int i = 0; i < 60000; i++) {
        b.size = 0;
        s_entry (&b);
        size_t edits = 1 + s_below (3);
        for (size_t e = 0; e < edits && b.size > 0; e++) {
            size_t at = s_below (b.size);
            switch (s_below (5)) {
                case 0:                                 //  flip a bit
                    b.data [at] ^= (uint8_t) (1u << s_below (8));
                    break;
                case 1:                                 //  any byte
                    b.data [at] = (uint8_t) s_rand ();
                    break;
                case 2:                                 //  cut short
                    b.size = at;
                    break;
                case 3:                                 //  interesting byte
                    {
                        static const uint8_t bytes [] = {
                            0xc1, 0xc0, 0x00, 0x7f, 0x80, 0x90, 0xa0, 0xff, 0xca, 0xcb,
                            0xd9, 0xdc, 0xde, 0xdf, 0xdb, '$', 0xc2, 0xed };
                        b.data [at] = bytes [s_below (sizeof bytes)];
                    }
                    break;
                default:                                //  drop a byte
                    memmove (b.data + at, b.data + at + 1, b.size - at - 1);
                    b.size--;
                    break;
            }
        }
        size_t before = s_mutated_accepted;
        zb_entry_t fast;
        size_t used;
        if (zb_entry_parse_packed ((const char *) b.data, b.size, &fast, &used))
            s_mutated_accepted = before + 1;
        s_compare (b.data, b.size, false);
    }
    print_message ("mutated: %zu accepted\n", s_mutated_accepted);
    assert_true (s_mutated_accepted > 1000);
    free (b.data);
    msgpack_zone_destroy (&s_zone);
}

//  As broker.c s_pass_fast: an array of entries all accepted by the fast
//  path, ending the body (then the broker skips zb_msgpack_validate).
static bool
s_fast_body (const uint8_t *data, size_t size)
{
    uint32_t count;
    size_t pos;
    if (!zb_entries_header_packed ((const char *) data, size, &count, &pos))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        zb_entry_t entry;
        size_t used;
        if (!zb_entry_parse_packed ((const char *) data + pos, size - pos, &entry, &used))
            return false;
        pos += used;
    }
    return pos == size;
}

//  Bodies of a few entries, whole and mutated: whenever the fast path reads
//  the whole body, zb_msgpack_validate passes it; on a valid body of valid
//  entries it always does.
static void
test_fast_body (void **state)
{
    (void) state;
    buf_t b = { NULL, 0, 0 };
    size_t fast = 0;
    for (int i = 0; i < 20000; i++) {
        b.size = 0;
        size_t n = 1 + s_below (4);
        s_header (&b, 'a', n);
        for (size_t k = 0; k < n; k++) {
            s_header (&b, 'm', 3);
            s_cstr (&b, "source");
            s_cstr (&b, "zbridge.bench");
            s_cstr (&b, "detail-type");
            s_cstr (&b, "sales-events");
            s_cstr (&b, "detail");
            s_map (&b, 1, 3, s_below (4));
        }
        if (i % 2) {
            size_t at = s_below (b.size);
            switch (s_below (4)) {
                case 0: b.data [at] ^= (uint8_t) (1u << s_below (8)); break;
                case 1: b.size = at; break;
                case 2: s_put (&b, "\xc0", 1); break;
                default: b.data [at] = 0xc1; break;
            }
        }
        char err [256];
        bool valid = b.size > 0 && zb_msgpack_validate (b.data, b.size, err, sizeof err) == 0;
        if (s_fast_body (b.data, b.size)) {
            fast++;
            assert_true (valid);
        }
    }
    print_message ("bodies read by the fast path: %zu\n", fast);
    assert_true (fast > 5000);
    free (b.data);
}

//  Hand-picked cases at the edges of each rule.
static void
test_edges (void **state)
{
    (void) state;
    assert_true (msgpack_zone_init (&s_zone, 4096));
    buf_t b = { NULL, 0, 0 };
    //  Names at their limits: 256 and 257 bytes of source, 128 and 129 of detail-type
    for (size_t extra = 0; extra < 2; extra++) {
        char name [300];
        for (int which = 0; which < 2; which++) {
            size_t len = (which ? ZB_MAX_DETAIL_TYPE : ZB_MAX_SOURCE) + extra;
            memset (name, 'n', len);
            b.size = 0;
            s_byte (&b, 0x83);
            s_cstr (&b, "source");
            s_str (&b, name, which ? 3 : len);
            s_cstr (&b, "detail-type");
            s_str (&b, name, which ? len : 3);
            s_cstr (&b, "detail");
            s_byte (&b, 0x80);
            s_compare (b.data, b.size, true);
            zb_entry_t e;
            size_t used;
            assert_int_equal (zb_entry_parse_packed ((const char *) b.data, b.size, &e, &used),
                              extra == 0);
        }
    }
    //  Every byte value alone in a source and in a detail key and value
    for (int c = 0; c < 256; c++) {
        for (int where = 0; where < 3; where++) {
            char one [9] = "abcdefgh";
            one [where == 0 ? 0 : 7] = (char) c;
            b.size = 0;
            s_byte (&b, 0x83);
            s_cstr (&b, "source");
            s_str (&b, one, where == 0 ? 1 + (size_t) c % 8 : 3);
            s_cstr (&b, "detail-type");
            s_cstr (&b, "t");
            s_cstr (&b, "detail");
            s_byte (&b, 0x81);
            s_str (&b, one, where == 1 ? 8 : 2);
            s_str (&b, one, where == 2 ? 8 : 2);
            s_compare (b.data, b.size, true);
        }
    }
    //  Floats: every exponent edge, f32 and f64
    static const uint64_t raws [] = { 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
                                      0x7ff8000000000000ULL, 0x7fefffffffffffffULL, 0 };
    static const uint32_t raws32 [] = { 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f7fffffu, 0 };
    for (size_t i = 0; i < 5; i++) {
        for (int wide = 0; wide < 2; wide++) {
            b.size = 0;
            s_byte (&b, 0x83);
            s_cstr (&b, "source");
            s_cstr (&b, "s");
            s_cstr (&b, "detail-type");
            s_cstr (&b, "t");
            s_cstr (&b, "detail");
            s_byte (&b, 0x81);
            s_cstr (&b, "f");
            if (wide) {
                s_byte (&b, 0xcb);
                s_be (&b, raws [i], 8);
            }
            else {
                s_byte (&b, 0xca);
                s_be (&b, raws32 [i], 4);
            }
            s_compare (b.data, b.size, true);
        }
    }
    free (b.data);
    msgpack_zone_destroy (&s_zone);
}

//  The body header: arrays of 1..n elements backed by at least that many
//  bytes; everything else (empty, truncated, count 0, too large, not an
//  array) is refused.
static void
test_entries_header (void **state)
{
    (void) state;
    uint32_t count = 7;
    size_t pos = 7;
    assert_true (zb_entries_header_packed ("\x91\x80", 2, &count, &pos));
    assert_int_equal (count, 1);
    assert_int_equal (pos, 1);
    assert_true (zb_entries_header_packed ("\xdc\x00\x02\x80\x80", 5, &count, &pos));
    assert_int_equal (count, 2);
    assert_int_equal (pos, 3);
    assert_true (zb_entries_header_packed ("\xdd\x00\x00\x00\x01\x80", 6, &count, &pos));
    assert_int_equal (count, 1);
    assert_int_equal (pos, 5);
    assert_false (zb_entries_header_packed ("", 0, &count, &pos));
    assert_false (zb_entries_header_packed ("\x90", 1, &count, &pos));            //  no entries
    assert_false (zb_entries_header_packed ("\x92\x80", 2, &count, &pos));        //  2 > 1 byte
    assert_false (zb_entries_header_packed ("\xdc\x00", 2, &count, &pos));        //  cut header
    assert_false (zb_entries_header_packed ("\xdd\x00\x00\x01", 4, &count, &pos));
    assert_false (zb_entries_header_packed ("\xdd\xff\xff\xff\xff\x80", 6, &count, &pos));
    assert_false (zb_entries_header_packed ("\x81\xa1x\x01", 4, &count, &pos));  //  a map
    assert_false (zb_entries_header_packed ("\xc1", 1, &count, &pos));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_edges),
        cmocka_unit_test (test_differential_generated),
        cmocka_unit_test (test_differential_mutated),
        cmocka_unit_test (test_fast_body),
        cmocka_unit_test (test_entries_header),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
