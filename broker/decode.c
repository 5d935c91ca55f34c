/*  decode.c - check and decode request bodies; see decode.h.

    Both passes read the same item headers (s_item). The check keeps a single
    number, the elements still expected, so it needs no stack at any depth,
    and it fails as soon as more elements are expected than bytes remain (each
    element takes at least one byte): after it, every count in the body is
    backed by data. The decoder makes the same checks in the same order as it
    builds (one pass over the body, not two), recurses at most keep_depth
    deep and skips deeper containers with the same counting trick. */

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "decode.h"

typedef enum {
    K_NIL, K_BOOL, K_UINT, K_INT, K_F32, K_F64, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP
} kind_t;

typedef struct {
    kind_t kind;
    bool boolean;
    uint64_t u64;
    int64_t i64;
    double f64;
    int8_t ext_type;
    uint32_t size;              //  payload bytes (str, bin, ext) or elements (array, map)
    const char *payload;
} item_t;

static uint64_t
s_be (const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

//  Read the item at pos: its header and, for str/bin/ext, its payload.
//  Returns the position after it (after the header only, for a container),
//  0 when the buffer ends inside it, or (size_t) -1 for an invalid byte.
//  s_item takes the commonest items (fixstr, str8, small integers, fixmap,
//  fixarray) inline and leaves the others to s_item_other.
static size_t
s_item_other (const uint8_t *in, size_t len, size_t pos, item_t *it);

static inline size_t
s_item (const uint8_t *in, size_t len, size_t pos, item_t *it)
{
    uint8_t b = in [pos];
    it->kind = K_NIL;                   //  what a caller sees when we return 0
    if (b >= 0xa0 && b <= 0xbf) {
        size_t size = b & 0x1f;
        if (len - pos - 1 < size)
            return 0;
        it->kind = K_STR;
        it->size = (uint32_t) size;
        it->payload = (const char *) in + pos + 1;
        return pos + 1 + size;
    }
    if (b <= 0x7f) {
        it->kind = K_UINT;
        it->u64 = b;
        return pos + 1;
    }
    if (b <= 0x9f) {
        it->kind = b <= 0x8f ? K_MAP : K_ARRAY;
        it->size = b & 0x0f;
        return pos + 1;
    }
    if (b >= 0xcc && b <= 0xcf) {
        size_t fixed = (size_t) 1 << (b - 0xcc);
        if (len - pos - 1 < fixed)
            return 0;
        it->kind = K_UINT;
        it->u64 = s_be (in + pos + 1, fixed);
        return pos + 1 + fixed;
    }
    if (b == 0xd9 && len - pos >= 2) {
        size_t size = in [pos + 1];
        if (len - pos - 2 < size)
            return 0;
        it->kind = K_STR;
        it->size = (uint32_t) size;
        it->payload = (const char *) in + pos + 2;
        return pos + 2 + size;
    }
    return s_item_other (in, len, pos, it);
}

static size_t
s_item_other (const uint8_t *in, size_t len, size_t pos, item_t *it)
{
    assert (pos < len);
    uint8_t b = in [pos++];
    size_t need = 0;            //  bytes of the length field
    size_t fixed = 0;           //  bytes of a fixed-size value or payload
    it->size = 0;
    if (b <= 0x7f) {
        it->kind = K_UINT;
        it->u64 = b;
        return pos;
    }
    if (b >= 0xe0) {
        it->kind = K_INT;
        it->i64 = (int8_t) b;
        return pos;
    }
    if (b <= 0x8f) {
        it->kind = K_MAP;
        it->size = b & 0x0f;
        return pos;
    }
    if (b <= 0x9f) {
        it->kind = K_ARRAY;
        it->size = b & 0x0f;
        return pos;
    }
    if (b <= 0xbf) {
        it->kind = K_STR;
        fixed = b & 0x1f;
    }
    else {
        switch (b) {
            case 0xc0: it->kind = K_NIL; return pos;
            case 0xc2: it->kind = K_BOOL; it->boolean = false; return pos;
            case 0xc3: it->kind = K_BOOL; it->boolean = true; return pos;
            case 0xc4: it->kind = K_BIN; need = 1; break;
            case 0xc5: it->kind = K_BIN; need = 2; break;
            case 0xc6: it->kind = K_BIN; need = 4; break;
            case 0xc7: it->kind = K_EXT; need = 1; break;
            case 0xc8: it->kind = K_EXT; need = 2; break;
            case 0xc9: it->kind = K_EXT; need = 4; break;
            case 0xca: it->kind = K_F32; fixed = 4; break;
            case 0xcb: it->kind = K_F64; fixed = 8; break;
            case 0xcc: it->kind = K_UINT; fixed = 1; break;
            case 0xcd: it->kind = K_UINT; fixed = 2; break;
            case 0xce: it->kind = K_UINT; fixed = 4; break;
            case 0xcf: it->kind = K_UINT; fixed = 8; break;
            case 0xd0: it->kind = K_INT; fixed = 1; break;
            case 0xd1: it->kind = K_INT; fixed = 2; break;
            case 0xd2: it->kind = K_INT; fixed = 4; break;
            case 0xd3: it->kind = K_INT; fixed = 8; break;
            case 0xd4: it->kind = K_EXT; fixed = 1; break;
            case 0xd5: it->kind = K_EXT; fixed = 2; break;
            case 0xd6: it->kind = K_EXT; fixed = 4; break;
            case 0xd7: it->kind = K_EXT; fixed = 8; break;
            case 0xd8: it->kind = K_EXT; fixed = 16; break;
            case 0xd9: it->kind = K_STR; need = 1; break;
            case 0xda: it->kind = K_STR; need = 2; break;
            case 0xdb: it->kind = K_STR; need = 4; break;
            case 0xdc: it->kind = K_ARRAY; need = 2; break;
            case 0xdd: it->kind = K_ARRAY; need = 4; break;
            case 0xde: it->kind = K_MAP; need = 2; break;
            case 0xdf: it->kind = K_MAP; need = 4; break;
            default:   return (size_t) -1;     //  0xc1, never used
        }
    }
    if (need) {
        if (len - pos < need)
            return 0;
        uint64_t n = s_be (in + pos, need);
        pos += need;
        if (it->kind == K_ARRAY || it->kind == K_MAP) {
            it->size = (uint32_t) n;
            return pos;
        }
        fixed = (size_t) n;
    }
    if (it->kind == K_EXT) {
        //  The type byte comes before the data
        if (len - pos < 1)
            return 0;
        it->ext_type = (int8_t) in [pos++];
    }
    if (len - pos < fixed)
        return 0;
    switch (it->kind) {
        case K_UINT:
            it->u64 = s_be (in + pos, fixed);
            break;
        case K_INT: {
            uint64_t raw = s_be (in + pos, fixed);
            //  Sign-extend from fixed bytes
            unsigned shift = (unsigned) (64 - 8 * fixed);
            it->i64 = shift ? (int64_t) (raw << shift) >> shift : (int64_t) raw;
            break;
        }
        case K_F32: {
            uint32_t raw = (uint32_t) s_be (in + pos, 4);
            float f;
            memcpy (&f, &raw, sizeof f);
            it->f64 = f;
            break;
        }
        case K_F64: {
            uint64_t raw = s_be (in + pos, 8);
            memcpy (&it->f64, &raw, sizeof it->f64);
            break;
        }
        default:
            it->size = (uint32_t) fixed;
            it->payload = (const char *) in + pos;
            break;
    }
    return pos + fixed;
}

//  Elements a container item holds (a map's keys and values both count).
static uint64_t
s_elements (const item_t *it)
{
    return it->kind == K_MAP ? 2 * (uint64_t) it->size
         : it->kind == K_ARRAY ? it->size : 0;
}

int
zb_msgpack_validate (const void *data, size_t len, char *err, size_t errlen)
{
    assert (data || len == 0);
    assert (err && errlen > 0);
    const uint8_t *in = (const uint8_t *) data;
    if (len == 0) {
        snprintf (err, errlen, "body is empty");
        return -1;
    }
    uint64_t pending = 1;       //  values still expected
    size_t pos = 0;
    while (pending) {
        //  Every expected value takes at least one byte
        if (pending > len - pos) {
            snprintf (err, errlen, "body is not valid msgpack: it ends in the middle of a value");
            return -1;
        }
        item_t it;
        size_t next = s_item (in, len, pos, &it);
        if (next == 0) {
            snprintf (err, errlen, "body is not valid msgpack: it ends in the middle of a value");
            return -1;
        }
        if (next == (size_t) -1) {
            snprintf (err, errlen,
                      "body is not valid msgpack: byte 0x%02x at offset %zu is not a msgpack type",
                      in [pos], pos);
            return -1;
        }
        pending += s_elements (&it) - 1;
        pos = next;
    }
    if (pos != len) {
        snprintf (err, errlen, "body is not exactly one msgpack value: %zu more bytes follow the first",
                  len - pos);
        return -1;
    }
    return 0;
}

//  Skip count values from *pos (already validated).
static void
s_skip (const uint8_t *in, size_t len, size_t *pos, uint64_t count)
{
    while (count) {
        item_t it;
        *pos = s_item (in, len, *pos, &it);
        count += s_elements (&it) - 1;
    }
}

//  The decoder checks as it builds, in one pass, exactly as
//  zb_msgpack_validate does: the same count of values still expected, the
//  same checks in the same order, so the same verdict and the same message.
//  A container's storage is allocated only after the check that its elements
//  are backed by bytes (with every other value still expected), so memory
//  stays at most one msgpack_object per byte of the body.
typedef struct {
    const uint8_t *in;
    size_t len;
    uint64_t pending;           //  values still expected, as in validate
    size_t bad_pos;             //  where it failed
    int failure;                //  0, or what went wrong (below)
} s_decoder_t;

#define S_TRUNCATED 1
#define S_BAD_BYTE  2

//  Read the item at *pos with validate's checks; false when the body is
//  invalid (failure set).
static inline bool
s_next (s_decoder_t *d, size_t *pos, item_t *it)
{
    size_t next = s_item (d->in, d->len, *pos, it);
    if (next == 0 || next == (size_t) -1) {
        d->failure = next == 0 ? S_TRUNCATED : S_BAD_BYTE;
        d->bad_pos = *pos;
        return false;
    }
    d->pending += s_elements (it) - 1;
    *pos = next;
    //  Every value still expected takes at least one byte
    if (d->pending > d->len - next) {
        d->failure = S_TRUNCATED;
        return false;
    }
    return true;
}

//  Skip count values from *pos, checking them.
static bool
s_skip_checked (s_decoder_t *d, size_t *pos, uint64_t count)
{
    while (count) {
        item_t it;
        if (!s_next (d, pos, &it))
            return false;
        count += s_elements (&it) - 1;
    }
    return true;
}

//  Decode the value at *pos into out; depth is out's depth (top value: 1).
//  0, -1 when the body is invalid (d->failure says why), -2 out of memory.
static int
s_build (s_decoder_t *d, size_t *pos, size_t depth, size_t keep_depth,
         msgpack_zone *zone, msgpack_object *out)
{
    item_t it;
    if (!s_next (d, pos, &it))
        return -1;
    switch (it.kind) {
        case K_NIL:
            out->type = MSGPACK_OBJECT_NIL;
            return 0;
        case K_BOOL:
            out->type = MSGPACK_OBJECT_BOOLEAN;
            out->via.boolean = it.boolean;
            return 0;
        case K_UINT:
            out->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            out->via.u64 = it.u64;
            return 0;
        case K_INT:
            //  As msgpack-c: a signed encoding of a value >= 0 is a positive integer
            if (it.i64 >= 0) {
                out->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                out->via.u64 = (uint64_t) it.i64;
            }
            else {
                out->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                out->via.i64 = it.i64;
            }
            return 0;
        case K_F32:
            out->type = MSGPACK_OBJECT_FLOAT32;
            out->via.f64 = it.f64;
            return 0;
        case K_F64:
            out->type = MSGPACK_OBJECT_FLOAT64;
            out->via.f64 = it.f64;
            return 0;
        case K_STR:
            out->type = MSGPACK_OBJECT_STR;
            out->via.str.size = it.size;
            out->via.str.ptr = it.payload;
            return 0;
        case K_BIN:
            out->type = MSGPACK_OBJECT_BIN;
            out->via.bin.size = it.size;
            out->via.bin.ptr = it.payload;
            return 0;
        case K_EXT:
            out->type = MSGPACK_OBJECT_EXT;
            out->via.ext.type = it.ext_type;
            out->via.ext.size = it.size;
            out->via.ext.ptr = it.payload;
            return 0;
        case K_ARRAY:
        case K_MAP:
            break;
    }
    if (depth > keep_depth) {
        //  Too deep for anyone to look at: stands in as an empty array
        out->type = MSGPACK_OBJECT_ARRAY;
        out->via.array.size = 0;
        out->via.array.ptr = NULL;
        return s_skip_checked (d, pos, s_elements (&it)) ? 0 : -1;
    }
    if (it.kind == K_ARRAY) {
        out->type = MSGPACK_OBJECT_ARRAY;
        out->via.array.size = 0;
        out->via.array.ptr = NULL;
        if (it.size == 0)
            return 0;
        msgpack_object *items = (msgpack_object *)
            msgpack_zone_malloc (zone, (size_t) it.size * sizeof (msgpack_object));
        if (!items)
            return -2;
        out->via.array.ptr = items;
        for (uint32_t i = 0; i < it.size; i++) {
            int rc = s_build (d, pos, depth + 1, keep_depth, zone, &items [i]);
            if (rc)
                return rc;
            out->via.array.size = i + 1;
        }
    }
    else {
        out->type = MSGPACK_OBJECT_MAP;
        out->via.map.size = 0;
        out->via.map.ptr = NULL;
        if (it.size == 0)
            return 0;
        msgpack_object_kv *pairs = (msgpack_object_kv *)
            msgpack_zone_malloc (zone, (size_t) it.size * sizeof (msgpack_object_kv));
        if (!pairs)
            return -2;
        out->via.map.ptr = pairs;
        for (uint32_t i = 0; i < it.size; i++) {
            int rc = s_build (d, pos, depth + 1, keep_depth, zone, &pairs [i].key);
            if (rc == 0)
                rc = s_build (d, pos, depth + 1, keep_depth, zone, &pairs [i].val);
            if (rc)
                return rc;
            out->via.map.size = i + 1;
        }
    }
    return 0;
}

int
zb_msgpack_decode (const void *data, size_t len, size_t keep_depth,
                   msgpack_zone *zone, msgpack_object *obj, char *err, size_t errlen)
{
    assert (zone);
    assert (obj);
    assert (keep_depth > 0);
    assert (data || len == 0);
    assert (err && errlen > 0);
    if (len == 0) {
        snprintf (err, errlen, "body is empty");
        return -1;
    }
    s_decoder_t d = { (const uint8_t *) data, len, 1, 0, 0 };
    size_t pos = 0;
    int rc = s_build (&d, &pos, 1, keep_depth, zone, obj);
    if (rc == -2) {
        snprintf (err, errlen, "out of memory decoding the body");
        return -2;
    }
    if (rc == -1) {
        if (d.failure == S_BAD_BYTE)
            snprintf (err, errlen,
                      "body is not valid msgpack: byte 0x%02x at offset %zu is not a msgpack type",
                      d.in [d.bad_pos], d.bad_pos);
        else
            snprintf (err, errlen, "body is not valid msgpack: it ends in the middle of a value");
        return -1;
    }
    assert (d.pending == 0);
    if (pos != len) {
        snprintf (err, errlen, "body is not exactly one msgpack value: %zu more bytes follow the first",
                  len - pos);
        return -1;
    }
    return 0;
}

const char *
zb_msgpack_value_bytes (const msgpack_object *val, const void *data, size_t len, size_t *size)
{
    assert (val && data && size);
    const msgpack_object_kv *pair = (const msgpack_object_kv *)
        ((const char *) val - offsetof (msgpack_object_kv, val));
    assert (pair->key.type == MSGPACK_OBJECT_STR);
    const uint8_t *in = (const uint8_t *) data;
    const uint8_t *start = (const uint8_t *) pair->key.via.str.ptr + pair->key.via.str.size;
    assert (start > in && start < in + len);
    size_t pos = (size_t) (start - in);
    s_skip (in, len, &pos, 1);
    *size = pos - (size_t) (start - in);
    return (const char *) start;
}

size_t
zb_msgpack_peek (const void *data, size_t len, msgpack_object_type *type, uint32_t *count)
{
    assert (data && len > 0 && type && count);
    const uint8_t *in = (const uint8_t *) data;
    item_t it;
    size_t next = s_item (in, len, 0, &it);
    assert (next != 0 && next != (size_t) -1);
    *count = 0;
    switch (it.kind) {
        case K_NIL:   *type = MSGPACK_OBJECT_NIL; break;
        case K_BOOL:  *type = MSGPACK_OBJECT_BOOLEAN; break;
        case K_UINT:  *type = MSGPACK_OBJECT_POSITIVE_INTEGER; break;
        case K_INT:   *type = it.i64 >= 0 ? MSGPACK_OBJECT_POSITIVE_INTEGER
                                          : MSGPACK_OBJECT_NEGATIVE_INTEGER; break;
        case K_F32:   *type = MSGPACK_OBJECT_FLOAT32; break;
        case K_F64:   *type = MSGPACK_OBJECT_FLOAT64; break;
        case K_STR:   *type = MSGPACK_OBJECT_STR; break;
        case K_BIN:   *type = MSGPACK_OBJECT_BIN; break;
        case K_EXT:   *type = MSGPACK_OBJECT_EXT; break;
        case K_ARRAY: *type = MSGPACK_OBJECT_ARRAY; *count = it.size; break;
        case K_MAP:   *type = MSGPACK_OBJECT_MAP; *count = it.size; break;
    }
    return next;
}

size_t
zb_msgpack_value_size (const void *data, size_t len)
{
    assert (data && len > 0);
    size_t pos = 0;
    s_skip ((const uint8_t *) data, len, &pos, 1);
    return pos;
}

const char *
zb_msgpack_type_name (msgpack_object_type type)
{
    switch (type) {
        case MSGPACK_OBJECT_NIL: return "nil";
        case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return "an integer";
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return "a float";
        case MSGPACK_OBJECT_STR: return "a string";
        case MSGPACK_OBJECT_BIN: return "binary";
        case MSGPACK_OBJECT_EXT: return "an extension type";
        case MSGPACK_OBJECT_ARRAY: return "an array";
        case MSGPACK_OBJECT_MAP: return "a map";
    }
    return "unknown";
}
