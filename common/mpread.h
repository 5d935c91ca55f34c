/*  mpread.h - an allocation-free reader of packed msgpack, for zb-busbench
    and the consumer programs.

    zb-busbench's zbridge consumer needs two things of each published event:
    where it ends (the events of a message are back to back) and its
    detail.sent_ns; zb-dispatch and zb-warehouse need a few detail fields.
    Unpacking each event into a msgpack zone (objects, malloc, free) only to
    read a field or two weighs on every event; these few functions read the
    packed bytes in place instead.

    Every function takes a cursor (*p) and the end of the buffer, never reads
    at or beyond end, and returns false when what is there is truncated or is
    not msgpack (the byte 0xc1, a length beyond the end, a container claiming
    more values than there are bytes left); on success the cursor moves past
    what was read, on failure it is left where it was. Every msgpack type is
    understood, so any well-formed value can be skipped; containers are walked
    with a count of pending values, not recursion, so nesting costs no stack.

    bench/mpread-test checks it against msgpack-c's unpacker (every cut of a
    batch, random corruptions). Header-only: static inline functions. */

#ifndef ZB_MPREAD_H
#define ZB_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

//  A big-endian unsigned integer of size bytes (1, 2, 4 or 8) at p.
static inline uint64_t
mpr_be (const uint8_t *p, size_t size)
{
    switch (size) {
        case 1:
            return p [0];
        case 2:
            return (uint64_t) p [0] << 8 | p [1];
        case 4:
            return (uint64_t) p [0] << 24 | (uint64_t) p [1] << 16 | (uint64_t) p [2] << 8 | p [3];
        default:
            return mpr_be (p, 4) << 32 | mpr_be (p + 4, 4);
    }
}

//  One item at *p: moves *p past its header and the bytes it holds (a
//  string's, a number's, an extension's), and sets *values to how many values
//  follow as its contents (array: n, map: 2n, anything else: 0).
static inline bool
mpr_item (const uint8_t **p, const uint8_t *end, uint64_t *values)
{
    const uint8_t *q = *p;
    if (q >= end)
        return false;
    uint8_t b = *q++;
    size_t lensize = 0;         //  bytes of a length or count after b
    uint64_t body = 0;          //  bytes after that (and the length's value)
    bool map = false, array = false;
    *values = 0;
    if (b <= 0x7f || b >= 0xe0)
        ;                                       //  fixint
    else
    if (b <= 0x8f)
        *values = 2 * (uint64_t) (b & 0x0f);    //  fixmap
    else
    if (b <= 0x9f)
        *values = b & 0x0f;                     //  fixarray
    else
    if (b <= 0xbf)
        body = b & 0x1f;                        //  fixstr
    else
        switch (b) {
            case 0xc0: case 0xc2: case 0xc3: break;         //  nil, false, true
            case 0xc4: case 0xd9: lensize = 1; break;       //  bin 8, str 8
            case 0xc5: case 0xda: lensize = 2; break;       //  bin 16, str 16
            case 0xc6: case 0xdb: lensize = 4; break;       //  bin 32, str 32
            case 0xc7: lensize = 1; body = 1; break;        //  ext 8 (+ type)
            case 0xc8: lensize = 2; body = 1; break;        //  ext 16
            case 0xc9: lensize = 4; body = 1; break;        //  ext 32
            case 0xca: body = 4; break;                     //  float 32
            case 0xcb: body = 8; break;                     //  float 64
            case 0xcc: case 0xd0: body = 1; break;          //  uint 8, int 8
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;                     //  fixext 1 (+ type)
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;                    //  fixext 16
            case 0xdc: lensize = 2; array = true; break;    //  array 16
            case 0xdd: lensize = 4; array = true; break;    //  array 32
            case 0xde: lensize = 2; map = true; break;      //  map 16
            case 0xdf: lensize = 4; map = true; break;      //  map 32
            default: return false;                          //  0xc1: never used
        }
    if (lensize) {
        if ((size_t) (end - q) < lensize)
            return false;
        uint64_t n = mpr_be (q, lensize);
        q += lensize;
        if (map)
            *values = 2 * n;
        else
        if (array)
            *values = n;
        else
            body += n;
    }
    if (body > (uint64_t) (end - q))
        return false;
    *p = q + body;
    return true;
}

//  Skips one value, whatever it holds: the general case of mpr_skip.
static inline bool
mpr_skip_any (const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;
    uint64_t pending = 1;
    while (pending) {
        uint64_t values;
        if (!mpr_item (&q, end, &values))
            return false;
        pending = pending - 1 + values;
        //  every value takes a byte at least: a container announcing more
        //  values than there are bytes left is truncated (or lies)
        if (pending > (uint64_t) (end - q))
            return false;
    }
    *p = q;
    return true;
}

//  Skips one value the way msgpack-c's unpacker reads it: mpr_skip_any,
//  and like msgpack-c it refuses a container (empty or not) that would open
//  while MPR_MSGPACK_C_DEPTH containers are open. So a value passes exactly
//  when msgpack_unpack reads it (bench/mpread-test), without building its
//  objects: a check of an event whose objects may never be needed.
#define MPR_MSGPACK_C_DEPTH 32

static inline bool
mpr_value (const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;
    uint64_t left [MPR_MSGPACK_C_DEPTH + 1];    //  values to read per open level
    size_t depth = 0;
    left [0] = 1;
    while (true) {
        while (left [depth] == 0) {
            if (depth == 0) {
                *p = q;
                return true;
            }
            depth--;
        }
        if (q >= end)
            return false;
        uint8_t b = *q;
        bool container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
        uint64_t values;
        if (!mpr_item (&q, end, &values) || values > (uint64_t) (end - q))
            return false;
        left [depth]--;
        if (container) {
            if (depth == MPR_MSGPACK_C_DEPTH)
                return false;
            if (values)
                left [++depth] = values;
        }
    }
}

//  Skips one value, whatever it holds; what an event holds most (fixint,
//  fixstr, str 8) in line, anything else in mpr_skip_any.
static inline bool
mpr_skip (const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;
    if (q >= end)
        return false;
    uint8_t b = *q;
    if (b <= 0x7f || b >= 0xe0) {
        *p = q + 1;
        return true;
    }
    if ((b & 0xe0) == 0xa0 || (b == 0xd9 && end - q >= 2)) {
        size_t head = b == 0xd9 ? 2 : 1;
        size_t len = b == 0xd9 ? q [1] : b & 0x1fu;
        if (len > (size_t) (end - q) - head)
            return false;
        *p = q + head + len;
        return true;
    }
    return mpr_skip_any (p, end);
}

//  A map header: its count of key-value pairs.
static inline bool
mpr_map (const uint8_t **p, const uint8_t *end, uint32_t *pairs)
{
    const uint8_t *q = *p;
    if (q >= end)
        return false;
    uint8_t b = *q++;
    size_t lensize = b == 0xde ? 2 : b == 0xdf ? 4 : 0;
    if (lensize) {
        if ((size_t) (end - q) < lensize)
            return false;
        *pairs = (uint32_t) mpr_be (q, lensize);
        q += lensize;
    }
    else
    if ((b & 0xf0) == 0x80)
        *pairs = b & 0x0f;
    else
        return false;
    //  a key and a value take two bytes at least
    if ((uint64_t) *pairs * 2 > (uint64_t) (end - q))
        return false;
    *p = q;
    return true;
}

//  A string: its bytes (in the buffer) and length.
static inline bool
mpr_str (const uint8_t **p, const uint8_t *end, const uint8_t **str, uint32_t *len)
{
    const uint8_t *q = *p;
    if (q >= end)
        return false;
    uint8_t b = *q++;
    size_t lensize = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
    if (lensize) {
        if ((size_t) (end - q) < lensize)
            return false;
        *len = (uint32_t) mpr_be (q, lensize);
        q += lensize;
    }
    else
    if ((b & 0xe0) == 0xa0)
        *len = b & 0x1f;
    else
        return false;
    if (*len > (size_t) (end - q))
        return false;
    *str = q;
    *p = q + *len;
    return true;
}

//  A map key: *match says whether it is the string key (of len bytes). A key
//  that is not a string is skipped (and does not match).
static inline bool
mpr_key (const uint8_t **p, const uint8_t *end, const char *key, size_t len, bool *match)
{
    const uint8_t *str;
    uint32_t slen;
    *match = false;
    //  a fixstr key, in line (every key of an event)
    const uint8_t *q = *p;
    if (q < end && (*q & 0xe0) == 0xa0) {
        slen = *q & 0x1fu;
        if (slen > (size_t) (end - q) - 1)
            return false;
        *match = slen == len && memcmp (q + 1, key, len) == 0;
        *p = q + 1 + slen;
        return true;
    }
    if (mpr_str (p, end, &str, &slen)) {
        *match = slen == len && memcmp (str, key, len) == 0;
        return true;
    }
    return mpr_skip (p, end);
}

//  A boolean. False (the cursor where it was) for anything else.
static inline bool
mpr_bool (const uint8_t **p, const uint8_t *end, bool *value)
{
    if (*p >= end || (**p != 0xc2 && **p != 0xc3))
        return false;
    *value = **p == 0xc3;
    (*p)++;
    return true;
}

//  The map at p: for each of its string keys named in keys [0, n) (n <= 8;
//  first occurrence only), values [i] points at that key's value; NULL for a
//  key the map lacks. Stops reading once every key was found. False when p
//  is not a map, or it is truncated or malformed before that point.
static inline bool
mpr_fields (const uint8_t *p, const uint8_t *end, const char *const *keys, size_t n,
            const uint8_t **values)
{
    uint32_t pairs;
    size_t lens [8], missing = n;
    if (n > 8)
        return false;
    for (size_t k = 0; k < n; k++) {
        values [k] = NULL;
        lens [k] = strlen (keys [k]);
    }
    if (!mpr_map (&p, end, &pairs))
        return false;
    for (uint32_t i = 0; i < pairs && missing; i++) {
        const uint8_t *str;
        uint32_t len;
        size_t k = n;
        if (p < end && (*p & 0xe0) == 0xa0) {
            //  a fixstr key, in line (every key of an event)
            len = *p & 0x1fu;
            if (len > (size_t) (end - p) - 1)
                return false;
            str = p + 1;
            p = str + len;
        }
        else {
            const uint8_t *key = p;
            if (!mpr_skip (&p, end))
                return false;
            if (!mpr_str (&key, end, &str, &len))
                len = UINT32_MAX;               //  not a string: matches no key
        }
        for (size_t j = 0; j < n && len != UINT32_MAX; j++)
            if (lens [j] == len && !values [j] && str [0] == (uint8_t) keys [j][0]
            &&  memcmp (str, keys [j], len) == 0) {
                k = j;
                break;
            }
        if (k < n) {
            values [k] = p;
            missing--;
        }
        if (!mpr_skip (&p, end))
            return false;
    }
    return true;
}

//  A non-negative integer, in any of msgpack's integer encodings. False (the
//  cursor where it was) for anything else, a negative integer included.
static inline bool
mpr_uint (const uint8_t **p, const uint8_t *end, uint64_t *value)
{
    const uint8_t *q = *p;
    if (q >= end)
        return false;
    uint8_t b = *q++;
    if (b <= 0x7f) {
        *value = b;
        *p = q;
        return true;
    }
    size_t size;
    bool is_signed = false;
    switch (b) {
        case 0xcc: size = 1; break;
        case 0xcd: size = 2; break;
        case 0xce: size = 4; break;
        case 0xcf: size = 8; break;
        case 0xd0: size = 1; is_signed = true; break;
        case 0xd1: size = 2; is_signed = true; break;
        case 0xd2: size = 4; is_signed = true; break;
        case 0xd3: size = 8; is_signed = true; break;
        default: return false;
    }
    if ((size_t) (end - q) < size || (is_signed && (q [0] & 0x80)))
        return false;
    *value = mpr_be (q, size);
    *p = q + size;
    return true;
}

//  One published event (a map, docs/PROTOCOL.md) at *p: moves *p to its end
//  and sets *sent_ns to its detail.sent_ns, 0 when the event has none (no
//  "detail" map, no "sent_ns" in it, or not an unsigned integer). False when
//  the event is not a map or is truncated or malformed anywhere in it.
static inline bool
mpr_event_sent_ns (const uint8_t **p, const uint8_t *end, uint64_t *sent_ns)
{
    const uint8_t *q = *p;
    uint32_t pairs;
    bool match;
    *sent_ns = 0;
    if (!mpr_map (&q, end, &pairs))
        return false;
    for (uint32_t i = 0; i < pairs; i++) {
        if (!mpr_key (&q, end, "detail", 6, &match))
            return false;
        uint32_t dpairs;
        const uint8_t *d = q;
        if (!match || !mpr_map (&d, end, &dpairs)) {
            if (!mpr_skip (&q, end))
                return false;
            continue;
        }
        q = d;
        for (uint32_t j = 0; j < dpairs; j++) {
            if (!mpr_key (&q, end, "sent_ns", 7, &match))
                return false;
            if (!(match && mpr_uint (&q, end, sent_ns)) && !mpr_skip (&q, end))
                return false;
        }
    }
    *p = q;
    return true;
}

#endif
