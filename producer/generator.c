/*  generator.c - the store load generator.

    An entry looks like (JSON for reading; it is packed as msgpack):
        {"source": "zbridge.store-producer", "detail-type": "sales-events",
         "detail": {"request_id": "1b4e...", "name": "Elowen Ashgrove",
                    "category": "Books", "store_id": "store_3", "sales": 42.17,
                    "new_order": true}}
    A bad event has no store_id and carries "bad_msg": true instead.

    The draws happen in a fixed order for every event (detail-type, badness,
    request id, name, category, store, sales, order or return), whether or
    not the value is used, so each event consumes the same amount of the
    stream and a seed always gives the same events. */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "generator.h"
#include "uuid.h"

#define GENERATOR_SOURCE    "zbridge.store-producer"
#define GENERATOR_STORES    5

static const char *const s_names [] = {
    "Elowen Ashgrove", "Thalric Stormvale", "Maerwyn Duskbloom", "Corvin Emberfall",
    "Isolde Fairwind", "Brannoc Ironleaf", "Sylvara Moonbrook", "Dravik Thornhollow",
    "Ysolde Brightwater", "Kaelen Frostmantle", "Lirien Starweaver", "Orrin Goldbarrow",
    "Nimue Rivenshade", "Torvald Oakenshield", "Seraphine Willowmere", "Garrick Stonebrook",
    "Aerith Silverthorn", "Fenwick Mossbottom", "Rowena Nightbloom", "Eamon Hawksworth",
};
#define NAMES_COUNT (sizeof s_names / sizeof s_names [0])

static const char *const s_categories [] = {
    "Books", "Mobiles", "Groceries", "Shoes", "Laptops", "Tablets", "Notebooks",
    "Camera", "Printers", "Monitors", "Speakers", "Projectors", "Furniture",
};
#define CATEGORIES_COUNT (sizeof s_categories / sizeof s_categories [0])

struct zb_generator_t {
    uint64_t state [4];         //  xoshiro256** state
    double bad_ratio;
};

//  splitmix64: expands the one seed into the four state words
static uint64_t
s_splitmix64 (uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t
s_rotl (uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

//  xoshiro256** 1.0 (Blackman and Vigna, public domain)
static uint64_t
s_next (zb_generator_t *self)
{
    uint64_t *s = self->state;
    uint64_t result = s_rotl (s [1] * 5, 7) * 9;
    uint64_t t = s [1] << 17;
    s [2] ^= s [0];
    s [3] ^= s [1];
    s [1] ^= s [2];
    s [0] ^= s [3];
    s [2] ^= t;
    s [3] = s_rotl (s [3], 45);
    return result;
}

//  Uniform in [0, n), by multiply-shift on the top 32 bits (n is tiny here)
static uint32_t
s_below (zb_generator_t *self, uint32_t n)
{
    return (uint32_t) (((s_next (self) >> 32) * n) >> 32);
}

//  Uniform in [0, 1) with 53 random bits
static double
s_unit (zb_generator_t *self)
{
    return (double) (s_next (self) >> 11) * 0x1.0p-53;
}

zb_generator_t *
zb_generator_new (uint64_t seed, double bad_ratio)
{
    assert (bad_ratio >= 0 && bad_ratio <= 1);
    zb_generator_t *self = (zb_generator_t *) calloc (1, sizeof (zb_generator_t));
    if (!self)
        return NULL;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        self->state [i] = s_splitmix64 (&x);
    self->bad_ratio = bad_ratio;
    return self;
}

void
zb_generator_destroy (zb_generator_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static void
s_pack (zb_generator_t *self, msgpack_packer *pk, const char *key, size_t keylen,
        zb_generated_t *info)
{
    assert (self);
    assert (pk);
    bool sale = (s_next (self) >> 63) != 0;
    //  "< ratio" draws: ratio 0 never, ratio 1 always ([0, 1) < 1)
    bool bad = s_unit (self) < self->bad_ratio;
    uint8_t bytes [16];
    uint64_t hi = s_next (self), lo = s_next (self);
    for (int i = 0; i < 8; i++) {
        bytes [i] = (uint8_t) (hi >> (56 - 8 * i));
        bytes [8 + i] = (uint8_t) (lo >> (56 - 8 * i));
    }
    char request_id [ZB_UUID_LEN + 1];
    zb_uuid_format_v4 (bytes, request_id);
    const char *name = s_names [s_below (self, NAMES_COUNT)];
    const char *category = s_categories [s_below (self, CATEGORIES_COUNT)];
    char store_id [] = "store_N";
    store_id [6] = (char) ('1' + s_below (self, GENERATOR_STORES));
    uint32_t cents = (uint32_t) (s_next (self) % 10001);     //  0.00 .. 100.00
    bool order = (s_next (self) >> 63) != 0;

    msgpack_pack_map (pk, key? 4: 3);
    if (key) {
        ZB_PACK_LIT (pk, "idempotency-key");
        msgpack_pack_str_with_body (pk, key, keylen);
    }
    ZB_PACK_LIT (pk, "source");
    ZB_PACK_LIT (pk, GENERATOR_SOURCE);
    ZB_PACK_LIT (pk, "detail-type");
    if (sale)
        ZB_PACK_LIT (pk, "sales-events");
    else
        ZB_PACK_LIT (pk, "inventory-events");
    ZB_PACK_LIT (pk, "detail");
    msgpack_pack_map (pk, 6);
    ZB_PACK_LIT (pk, "request_id");
    msgpack_pack_str_with_body (pk, request_id, ZB_UUID_LEN);
    ZB_PACK_LIT (pk, "name");
    zb_pack_cstr (pk, name);
    ZB_PACK_LIT (pk, "category");
    zb_pack_cstr (pk, category);
    if (!bad) {
        ZB_PACK_LIT (pk, "store_id");
        ZB_PACK_LIT (pk, store_id);
    }
    ZB_PACK_LIT (pk, "sales");
    msgpack_pack_double (pk, (double) cents / 100.0);
    if (order)
        ZB_PACK_LIT (pk, "new_order");
    else
        ZB_PACK_LIT (pk, "is_return");
    msgpack_pack_true (pk);
    if (bad) {
        ZB_PACK_LIT (pk, "bad_msg");
        msgpack_pack_true (pk);
    }
    if (info) {
        info->sale = sale;
        info->bad = bad;
    }
}

void
zb_generator_pack (zb_generator_t *self, msgpack_packer *pk, zb_generated_t *info)
{
    s_pack (self, pk, NULL, 0, info);
}

void
zb_generator_pack_keyed (zb_generator_t *self, msgpack_packer *pk,
                         const char *key, size_t keylen, zb_generated_t *info)
{
    assert (key && keylen > 0);
    s_pack (self, pk, key, keylen, info);
}
