/*  mpread-test - common/mpread.h against msgpack-c's unpacker.

        mpread-test [ITERATIONS]

    1. Events of the broker's shape, with sent_ns in every integer encoding
       (and missing, negative, not an integer, detail not a map, keys that are
       not strings, values of every msgpack type): each event's end and
       detail.sent_ns as expected, and the end where msgpack_unpack_next ends.
    2. Every cut of a batch of such events, copied into a buffer of exactly the
       cut's size (valgrind or ASan catch a read beyond it): the walk decodes
       exactly the events that are whole and stops at the first cut one.
    3. ITERATIONS (default 20000) random corruptions of a batch: at every event
       boundary mpr_skip succeeds exactly when msgpack_unpack_next does, ends
       where it ends, and mpr_event_sent_ns agrees on where a map ends.
    4. Nesting 100,000 deep is skipped without recursion; every non-negative
       integer encoding is read, negative ones are not.

    Exit status 0 when every check passed. Run by `meson test zb_busbench_mpread`. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>
#include "../common/mpread.h"

static int failures = 0;

#define CHECK(cond, ...) do { \
    if (!(cond)) { \
        failures++; \
        fprintf (stderr, "mpread-test:%d: %s: ", __LINE__, #cond); \
        fprintf (stderr, __VA_ARGS__); \
        fputc ('\n', stderr); \
    } \
} while (0)

static void
pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  Event variant v: returns the sent_ns the reader must find (0: none).
static uint64_t
pack_event (msgpack_packer *pk, int v, uint64_t seed)
{
    uint64_t values [] = {0x7f, 0xff, 0xffff, 0xffffffffull, seed | 1ull << 62, 5};
    int nv = (int) (sizeof values / sizeof values [0]);
    bool extra = v % 3 == 1;
    msgpack_pack_map (pk, extra ? 11 : 9);
    pack_str (pk, "version"); pack_str (pk, "0");
    pack_str (pk, "id"); pack_str (pk, "5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21");
    pack_str (pk, "detail-type"); pack_str (pk, v % 2 ? "inventory-events" : "sales-events");
    pack_str (pk, "source"); pack_str (pk, "zbridge.bench");
    pack_str (pk, "account"); pack_str (pk, "000000000000");
    pack_str (pk, "time"); pack_str (pk, "2026-11-26T17:15:01Z");
    pack_str (pk, "region"); pack_str (pk, "local");
    pack_str (pk, "resources");
    msgpack_pack_array (pk, 2); pack_str (pk, "arn:a"); pack_str (pk, "arn:b");
    if (extra) {
        //  keys and values of every other kind before the detail
        msgpack_pack_uint32 (pk, 7);                        //  a key that is not a string
        msgpack_pack_array (pk, 4);
        msgpack_pack_nil (pk); msgpack_pack_true (pk); msgpack_pack_double (pk, 1.5);
        msgpack_pack_float (pk, 2.5f);
        pack_str (pk, "blob");
        msgpack_pack_map (pk, 3);
        static char bin [300];
        memset (bin, 0xc1, sizeof bin);         //  bytes that are never msgpack
        pack_str (pk, "bin"); msgpack_pack_bin (pk, sizeof bin);
        msgpack_pack_bin_body (pk, bin, sizeof bin);
        pack_str (pk, "ext"); msgpack_pack_ext (pk, 4, 9); msgpack_pack_ext_body (pk, "\xdf\xdf\xdf\xdf", 4);
        pack_str (pk, "deep");
        for (int i = 0; i < 20; i++)
            msgpack_pack_array (pk, 1);
        msgpack_pack_int64 (pk, -1234567890123ll);
    }
    pack_str (pk, "detail");
    int shape = v % 8;
    uint64_t want = 0;
    if (shape == 7) {                       //  detail not a map
        pack_str (pk, "not a map");
        return 0;
    }
    msgpack_pack_map (pk, 3);
    pack_str (pk, "order");
    msgpack_pack_map (pk, 1); pack_str (pk, "sent_ns"); msgpack_pack_uint64 (pk, 99);  //  nested: not it
    switch (shape) {
        case 5:                             //  no sent_ns
            pack_str (pk, "sent_nsx"); msgpack_pack_uint64 (pk, 42);
            break;
        case 6:                             //  negative: no value
            pack_str (pk, "sent_ns"); msgpack_pack_int64 (pk, -5);
            break;
        default:
            want = values [(v / 8) % nv];
            pack_str (pk, "sent_ns");
            msgpack_pack_uint64 (pk, want);         //  the smallest encoding
            break;
    }
    pack_str (pk, "pad");
    size_t padlen = (size_t) (v * 37) % 400;
    char pad [400];
    memset (pad, 'x', sizeof pad);
    msgpack_pack_str (pk, padlen);
    msgpack_pack_str_body (pk, pad, padlen);
    return want;
}

//  How many containers are open when the deepest container of the value at p
//  starts: msgpack-c refuses 32 or more (its parse stack); mpread.h has no limit.
static int
open_depth (const uint8_t *p, const uint8_t *end)
{
    uint64_t stack [64];
    int top = 0, deepest = 0;
    do {
        uint8_t b = *p;
        bool container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
        uint64_t values;
        if (!mpr_item (&p, end, &values))
            return deepest;
        if (container && top > deepest)
            deepest = top;
        if (values) {
            if (top == 64)
                return 64;
            stack [top++] = values;
            continue;
        }
        while (top > 0 && --stack [top - 1] == 0)
            top--;
    } while (top > 0);
    return deepest;
}

//  mpr_fields against msgpack-c's object (the map up holds, read from p): for
//  each key, the same value found first, or none.
static long
check_fields (msgpack_unpacked *up, const uint8_t *p, const uint8_t *end, const char *where)
{
    static const char *const keys [] = { "detail", "id", "blob", "version", "sent_ns" };
    enum { NKEYS = sizeof keys / sizeof keys [0] };
    const uint8_t *values [NKEYS];
    const msgpack_object *map = &up->data;
    bool ok = mpr_fields (p, end, keys, NKEYS, values);
    CHECK (ok == (map->type == MSGPACK_OBJECT_MAP), "%s: mpr_fields %d on a %s", where, ok,
           map->type == MSGPACK_OBJECT_MAP ? "map" : "non-map");
    if (!ok || map->type != MSGPACK_OBJECT_MAP)
        return 0;
    long compared = 0;
    for (size_t k = 0; k < NKEYS; k++) {
        const msgpack_object *want = NULL;
        for (uint32_t i = 0; i < map->via.map.size && !want; i++) {
            const msgpack_object *key = &map->via.map.ptr [i].key;
            if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen (keys [k])
            &&  memcmp (key->via.str.ptr, keys [k], key->via.str.size) == 0)
                want = &map->via.map.ptr [i].val;
        }
        CHECK ((want != NULL) == (values [k] != NULL), "%s: key %s found %d by mpr_fields",
               where, keys [k], values [k] != NULL);
        if (want && values [k]) {
            msgpack_unpacked got;
            msgpack_unpacked_init (&got);
            size_t off = 0;
            CHECK (msgpack_unpack_next (&got, (const char *) values [k],
                                        (size_t) (end - values [k]), &off)
                   == MSGPACK_UNPACK_SUCCESS && msgpack_object_equal (got.data, *want),
                   "%s: key %s: another value", where, keys [k]);
            msgpack_unpacked_destroy (&got);
            compared++;
        }
    }
    return compared;
}

//  msgpack-c: the end of the value at off, or 0 when it is not a whole value.
static size_t
unpack_end (msgpack_unpacked *up, const uint8_t *data, size_t size, size_t off)
{
    size_t o = off;
    if (msgpack_unpack_next (up, (const char *) data, size, &o) != MSGPACK_UNPACK_SUCCESS)
        return 0;
    return o;
}

int
main (int argc, char **argv)
{
    long iterations = argc > 1 ? atol (argv [1]) : 20000;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);

    //  1. one batch of every variant; ends and sent_ns
    enum { NEV = 96 };
    uint64_t want [NEV];
    size_t ends [NEV];
    for (int v = 0; v < NEV; v++) {
        want [v] = pack_event (&pk, v, (uint64_t) v * 0x9e3779b97f4a7c15ull);
        ends [v] = sb.size;
    }
    const uint8_t *batch = (const uint8_t *) sb.data;
    size_t size = sb.size;
    const uint8_t *p = batch, *end = batch + size;
    for (int v = 0; v < NEV; v++) {
        uint64_t sent = 12345;
        const uint8_t *q = p;
        CHECK (mpr_event_sent_ns (&p, end, &sent), "event %d", v);
        CHECK (sent == want [v], "event %d: sent_ns %" PRIu64 ", want %" PRIu64, v, sent, want [v]);
        CHECK ((size_t) (p - batch) == ends [v], "event %d ends at %zu, want %zu", v,
               (size_t) (p - batch), ends [v]);
        CHECK (unpack_end (&up, batch, size, (size_t) (q - batch)) == ends [v],
               "event %d: msgpack-c disagrees", v);
        const uint8_t *s = q;
        CHECK (mpr_skip (&s, end) && s == p, "event %d: mpr_skip ends elsewhere", v);
        CHECK (check_fields (&up, q, p, "batch") >= 2, "event %d: fields", v);
    }
    CHECK (p == end, "batch not read to its end");

    //  2. every cut, in a buffer of exactly its size
    for (size_t cut = 0; cut <= size; cut++) {
        uint8_t *buf = malloc (cut ? cut : 1);
        memcpy (buf, batch, cut);
        const uint8_t *c = buf, *cend = buf + cut;
        int got = 0;
        uint64_t sent;
        while (got < NEV && mpr_event_sent_ns (&c, cend, &sent))
            got++;
        int whole = 0;
        while (whole < NEV && ends [whole] <= cut)
            whole++;
        CHECK (got == whole, "cut at %zu: %d events read, %d whole", cut, got, whole);
        CHECK ((size_t) (c - buf) == (whole ? ends [whole - 1] : 0), "cut at %zu: cursor moved", cut);
        free (buf);
    }

    //  3. random corruptions against msgpack-c
    uint64_t rng = 0x2545f4914f6cdd1dull;
    uint8_t *buf = malloc (size);
    long compared = 0, deep_skipped = 0, fields = 0, values_checked = 0;
    for (long it = 0; it < iterations; it++) {
        memcpy (buf, batch, size);
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        int flips = 1 + (int) (rng % 4);
        for (int f = 0; f < flips; f++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t at = (size_t) (rng >> 16) % size;
            uint8_t interesting [] = {0xc1, 0xdc, 0xdd, 0xde, 0xdf, 0xdb, 0xc6, 0xc9, 0x9f, 0x8f,
                                      0xd9, 0xff, 0x00, 0xbf};
            buf [at] = rng & 1 ? (uint8_t) (rng >> 8)
                                : interesting [(rng >> 8) % sizeof interesting];
        }
        //  a random cut too, now and then
        size_t len = it % 4 == 0 ? (size_t) (rng >> 24) % (size + 1) : size;
        uint8_t *cbuf = malloc (len ? len : 1);
        memcpy (cbuf, buf, len);
        const uint8_t *c = cbuf, *cend = cbuf + len;
        while (c < cend) {
            size_t off = (size_t) (c - cbuf);
            size_t mc = unpack_end (&up, cbuf, len, off);
            const uint8_t *s = c, *e = c, *v = c;
            bool skipped = mpr_skip (&s, cend);
            //  mpr_value reads what msgpack-c reads, the deepest values included
            bool valued = mpr_value (&v, cend);
            values_checked++;
            CHECK (valued == (mc != 0), "iteration %ld, offset %zu: mpr_value %d, msgpack-c %d",
                   it, off, valued, mc != 0);
            if (valued && mc)
                CHECK ((size_t) (v - cbuf) == mc, "iteration %ld, offset %zu: mpr_value ends "
                       "elsewhere", it, off);
            uint64_t sent;
            bool walked = mpr_event_sent_ns (&e, cend, &sent);
            if (skipped && !mc && open_depth (c, cend) >= 32) {
                deep_skipped++;             //  beyond msgpack-c's parse stack: not compared
                break;
            }
            compared++;
            CHECK (skipped == (mc != 0), "iteration %ld, offset %zu: mpr_skip %d, msgpack-c %d",
                   it, off, skipped, mc != 0);
            if (mc && it % 16 == 0)     //  up holds what msgpack-c read at off
                fields += check_fields (&up, c, cbuf + mc, "corrupted batch");
            if (skipped && mc)
                CHECK ((size_t) (s - cbuf) == mc, "iteration %ld, offset %zu: ends differ", it, off);
            if (walked)
                CHECK (skipped && s == e, "iteration %ld, offset %zu: walk and skip differ", it, off);
            bool map = (*c & 0xf0) == 0x80 || *c == 0xde || *c == 0xdf;
            if (skipped && map)
                CHECK (walked, "iteration %ld, offset %zu: a whole map not walked", it, off);
            if (!walked)
                break;
            c = e;
        }
        free (cbuf);
    }
    free (buf);

    //  4. deep nesting; integers
    enum { DEEP = 100000 };
    uint8_t *deep = malloc (DEEP + 1);
    memset (deep, 0x91, DEEP);
    deep [DEEP] = 0xc0;
    const uint8_t *d = deep;
    CHECK (mpr_skip (&d, deep + DEEP + 1) && d == deep + DEEP + 1, "deep nesting");
    d = deep;
    CHECK (!mpr_skip (&d, deep + DEEP) && d == deep, "deep nesting, cut");
    free (deep);
    struct { const char *bytes; size_t len; bool ok; uint64_t v; } ints [] = {
        {"\x00", 1, true, 0}, {"\x7f", 1, true, 127}, {"\xcc\xff", 2, true, 255},
        {"\xcd\x01\x02", 3, true, 0x102}, {"\xce\x01\x02\x03\x04", 5, true, 0x01020304},
        {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, true, UINT64_MAX},
        {"\xd0\x7f", 2, true, 127}, {"\xd1\x7f\xff", 3, true, 0x7fff},
        {"\xd2\x00\x00\x00\x01", 5, true, 1}, {"\xd3\x7f\x00\x00\x00\x00\x00\x00\x01", 9, true,
                                               0x7f00000000000001ull},
        {"\xd0\x80", 2, false, 0}, {"\xd3\xff\xff\xff\xff\xff\xff\xff\xff", 9, false, 0},
        {"\xff", 1, false, 0}, {"\xcf\x01", 2, false, 0}, {"\xca\x00\x00\x00\x00", 5, false, 0},
        {"\xa1x", 2, false, 0}
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints [0]; i++) {
        const uint8_t *q = (const uint8_t *) ints [i].bytes;
        uint64_t v = 777;
        bool ok = mpr_uint (&q, q + ints [i].len, &v);
        CHECK (ok == ints [i].ok, "integer %zu", i);
        CHECK (ok ? v == ints [i].v && q == (const uint8_t *) ints [i].bytes + ints [i].len
                  : v == 777 && q == (const uint8_t *) ints [i].bytes, "integer %zu: value", i);
    }
    struct { const char *bytes; bool ok; bool v; } bools [] = {
        {"\xc3", true, true}, {"\xc2", true, false}, {"\xc0", false, false},
        {"\x01", false, false}, {"\xa4true", false, false}
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools [0]; i++) {
        const uint8_t *q = (const uint8_t *) bools [i].bytes;
        bool v = !bools [i].v;
        bool ok = mpr_bool (&q, q + strlen (bools [i].bytes), &v);
        CHECK (ok == bools [i].ok, "boolean %zu", i);
        CHECK (ok ? v == bools [i].v && q == (const uint8_t *) bools [i].bytes + 1
                  : q == (const uint8_t *) bools [i].bytes, "boolean %zu: value", i);
    }
    const uint8_t *q = (const uint8_t *) "\xc3";
    bool v;
    CHECK (!mpr_bool (&q, q, &v), "boolean at the end");
    CHECK (fields > 10000, "only %ld fields compared", fields);
    msgpack_sbuffer_destroy (&sb);
    msgpack_unpacked_destroy (&up);
    //  mpr_value at msgpack-c's limit: 32 containers open, then one more
    for (int n = 30; n <= 34; n++) {
        uint8_t nest [40];
        memset (nest, 0x91, (size_t) n);            //  n arrays of one element
        nest [n] = 0x90;                            //  and an empty one inside
        const uint8_t *v = nest;
        size_t off = 0;
        msgpack_unpacked one;
        msgpack_unpacked_init (&one);
        bool mc = msgpack_unpack_next (&one, (const char *) nest, (size_t) n + 1, &off)
                  == MSGPACK_UNPACK_SUCCESS;
        msgpack_unpacked_destroy (&one);
        CHECK (mpr_value (&v, nest + n + 1) == mc, "%d nested arrays", n + 1);
        CHECK (mc == (n + 1 <= 32), "msgpack-c's limit is not 32 containers (%d)", n + 1);
    }
    printf ("mpread-test: %d events, %zu cuts, %ld values and %ld map fields compared with "
            "msgpack-c (mpr_skip: %ld nested beyond its limit of 32 not compared; mpr_value: "
            "%ld, all compared): %s\n",
            NEV, size + 1, compared, fields, deep_skipped, values_checked,
            failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
