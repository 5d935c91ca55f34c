/*  event.c - the EventBridge envelope: validate a PutEvents entry, pack the event.

    zb_entry_parse runs once per entry on the broker's hot path. It works on
    the msgpack-c object tree in place and allocates nothing per call: the
    detail tree is walked with an explicit stack bounded by ZB_MAX_DEPTH, and
    duplicate keys in a big map are found by sorting pointers to its keys in a
    per-thread scratch array that is reused from call to call.

    The broker calls zb_entry_parse_packed first: the same verdict decided on
    the entry's msgpack bytes (no tree, no message), and zb_entry_parse only
    for the entries it does not accept, for their code and message.
    tests/unit/test_entry_packed.c and tests/fuzz/fuzz_ingest.c hold the two
    to the same verdicts. */

#include "event.h"
#include "rfc3339.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
zb_code_name (zb_code_t code)
{
    switch (code) {
        case ZB_OK:                 return "OK";
        case ZB_E_INVALID_ARGUMENT: return "InvalidArgument";
        case ZB_E_MALFORMED_DETAIL: return "MalformedDetail";
        case ZB_E_ENTRY_TOO_LARGE:  return "EntryTooLarge";
        case ZB_E_LIMIT_EXCEEDED:   return "LimitExceeded";
        case ZB_E_INTERNAL:         return "InternalFailure";
        case ZB_E_NOT_AUTHORIZED_SOURCE:        return "NotAuthorizedForSource";
        case ZB_E_NOT_AUTHORIZED_DETAIL_TYPE:   return "NotAuthorizedForDetailType";
        case ZB_E_THROTTLED:        return "ThrottlingException";
    }
    return "InternalFailure";
}

//  --------------------------------------------------------------------------
//  UTF-8

size_t
zb_format_u64 (uint64_t value, char *out)
{
    char digits [20];
    size_t n = 0;
    do {
        digits [n++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t i = 0; i < n; i++)
        out [i] = digits [n - 1 - i];
    return n;
}

bool
zb_utf8_valid (const char *ptr, size_t len)
{
    return zb_utf8_prefix (ptr, len) == len;
}

size_t
zb_utf8_prefix (const char *ptr, size_t len)
{
    if (len == 0)
        return 0;           //  msgpack-c gives an empty string a NULL pointer
    const unsigned char *start = (const unsigned char *) ptr;
    const unsigned char *p = start;
    const unsigned char *end = p + len;
    while (p < end) {
        //  ASCII fast path: 32, then 8 bytes at a time while none has the high bit
        while (end - p >= 32) {
            uint64_t word [4];
            memcpy (word, p, 32);
            if ((word [0] | word [1] | word [2] | word [3]) & 0x8080808080808080ULL)
                break;
            p += 32;
        }
        while (end - p >= 8) {
            uint64_t word;
            memcpy (&word, p, 8);
            if (word & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        while (p < end && *p < 0x80)
            p++;
        if (p == end)
            break;
        unsigned char c = *p;
        //  Multibyte: lead byte decides the length and the range of the
        //  second byte (rules out overlongs, surrogates and > U+10FFFF)
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else
        if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else
            if (c == 0xED)
                hi = 0x9F;
        }
        else
        if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90;
            else
            if (c == 0xF4)
                hi = 0x8F;
        }
        else
            return (size_t) (p - start);
        if ((size_t) (end - p) < n)
            return (size_t) (p - start);
        if (p [1] < lo || p [1] > hi)
            return (size_t) (p - start);
        for (size_t i = 2; i < n; i++)
            if ((p [i] & 0xC0) != 0x80)
                return (size_t) (p - start);
        p += n;
    }
    return len;
}

bool
zb_utf8_has_control (const char *ptr, size_t len)
{
    const unsigned char *p = (const unsigned char *) ptr;
    //  Fast path: skip 8-byte words of printable ASCII (no byte < 0x20, no
    //  0x7F, no high bit); anything else is looked at byte by byte below
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    while (len - i >= 8) {
        uint64_t word, del;
        memcpy (&word, p + i, 8);
        del = word ^ (ones * 0x7F);
        if ((word & highs)
        ||  ((word - ones * 0x20) & ~word & highs)
        ||  ((del - ones) & ~del & highs))
            break;
        i += 8;
    }
    for (; i < len; i++) {
        unsigned char c = p [i];
        if (c < 0x20 || c == 0x7F)
            return true;
        //  U+0080..U+009F is C2 80..C2 9F; in valid UTF-8, C2 is always a lead byte
        if (c == 0xC2 && i + 1 < len && p [i + 1] <= 0x9F)
            return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Paths and messages

void
zb_utf8_trim (char *s)
{
    size_t len = strlen (s);
    size_t i = len;
    //  Find the start of the last sequence
    while (i > 0 && ((unsigned char) s [i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char) s [i - 1];
    size_t need = lead >= 0xF0? 4: lead >= 0xE0? 3: lead >= 0xC0? 2: 1;
    if (len - (i - 1) < need)
        s [i - 1] = 0;
}

void
zb_utf8_vformat (char *out, size_t size, const char *format, va_list args)
{
    if (!out || size == 0)
        return;
    int n = vsnprintf (out, size, format, args);
    if (n >= 0 && (size_t) n >= size)
        zb_utf8_trim (out);
}

//  Append formatted text to out (size bytes in all), truncating on a UTF-8
//  boundary. Returns the new length.
static size_t
s_append (char *out, size_t size, const char *format, ...)
{
    size_t len = strlen (out);
    if (len + 1 >= size)
        return len;
    va_list args;
    va_start (args, format);
    int n = vsnprintf (out + len, size - len, format, args);
    va_end (args);
    if (n >= 0 && (size_t) n >= size - len)
        zb_utf8_trim (out);
    return strlen (out);
}

static bool
s_plain_name (const char *key, size_t keylen)
{
    if (keylen == 0 || keylen > 64)
        return false;
    for (size_t i = 0; i < keylen; i++) {
        unsigned char c = (unsigned char) key [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        ||    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '$'
        ||    c == '@' || c == ':' || c == '/' || c == '+'))
            return false;
    }
    return true;
}

size_t
zb_path_key (char *out, size_t size, const char *key, size_t keylen)
{
    assert (out && size > 0);
    if (s_plain_name (key, keylen))
        return s_append (out, size, "%s%.*s", out [0]? ".": "", (int) keylen, key);

    //  ["..."]: quote, backslash, control bytes and (when the key is not
    //  UTF-8) high bytes escaped; long keys shortened to 40 bytes + "..."
    bool utf8 = zb_utf8_valid (key, keylen);
    char buf [200];
    size_t b = 0;
    size_t shown = keylen > 40? 40: keylen;
    if (utf8)   //  do not cut a character in two
        while (shown < keylen && ((unsigned char) key [shown] & 0xC0) == 0x80)
            shown--;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char) key [i];
        if (c == '"' || c == '\\') {
            buf [b++] = '\\';
            buf [b++] = (char) c;
        }
        else
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8))
            b += (size_t) snprintf (buf + b, sizeof (buf) - b, "\\x%02x", c);
        else
            buf [b++] = (char) c;
    }
    if (shown < keylen) {
        memcpy (buf + b, "...", 3);
        b += 3;
    }
    buf [b] = 0;
    return s_append (out, size, "[\"%s\"]", buf);
}

size_t
zb_path_index (char *out, size_t size, size_t index)
{
    assert (out && size > 0);
    return s_append (out, size, "[%zu]", index);
}

//  Write a one-line error message: "<format>" into err.
static zb_code_t
s_fail (zb_code_t code, char *err, size_t errlen, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    zb_utf8_vformat (err, errlen, format, args);
    va_end (args);
    return code;
}

//  --------------------------------------------------------------------------
//  Map helpers

const msgpack_object *
zb_map_get (const msgpack_object *obj, const char *key)
{
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < obj->via.map.size; i++)
        if (zb_str_eq (&obj->via.map.ptr [i].key, key))
            return &obj->via.map.ptr [i].val;
    return NULL;
}

bool
zb_str_eq (const msgpack_object *obj, const char *s)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR || !s)
        return false;
    size_t len = strlen (s);
    return obj->via.str.size == len && memcmp (obj->via.str.ptr, s, len) == 0;
}

//  --------------------------------------------------------------------------
//  Duplicate keys

//  Maps up to this size are checked pair by pair (no sorting overhead)
#define ZB_DUP_PAIRWISE 16

//  Per-thread scratch for sorting keys of big maps; grows, never shrinks.
static _Thread_local const msgpack_object **s_scratch;
static _Thread_local size_t s_scratch_cap;

static int
s_key_compare (const void *a, const void *b)
{
    const msgpack_object *ka = *(const msgpack_object * const *) a;
    const msgpack_object *kb = *(const msgpack_object * const *) b;
    if (ka->via.str.size != kb->via.str.size)
        return ka->via.str.size < kb->via.str.size? -1: 1;
    if (ka->via.str.size == 0)
        return 0;
    return memcmp (ka->via.str.ptr, kb->via.str.ptr, ka->via.str.size);
}

static bool
s_key_equal (const msgpack_object *a, const msgpack_object *b)
{
    return a->via.str.size == b->via.str.size
        && (a->via.str.size == 0
            || memcmp (a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
}

//  Finds a duplicate among the keys of map (all strings). Returns 0 and sets
//  *dup (NULL when none), or -1 when scratch memory could not be had.
static int
s_find_duplicate (const msgpack_object *map, const msgpack_object **dup)
{
    uint32_t n = map->via.map.size;
    const msgpack_object_kv *kv = map->via.map.ptr;
    *dup = NULL;
    if (n <= ZB_DUP_PAIRWISE) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (s_key_equal (&kv [i].key, &kv [j].key)) {
                    *dup = &kv [i].key;
                    return 0;
                }
        return 0;
    }
    if (s_scratch_cap < n) {
        size_t cap = s_scratch_cap? s_scratch_cap: 256;
        while (cap < n)
            cap *= 2;
        const msgpack_object **grown = (const msgpack_object **)
            realloc ((void *) s_scratch, cap * sizeof (*grown));
        if (!grown)
            return -1;
        s_scratch = grown;
        s_scratch_cap = cap;
    }
    for (uint32_t i = 0; i < n; i++)
        s_scratch [i] = &kv [i].key;
    qsort ((void *) s_scratch, n, sizeof (*s_scratch), s_key_compare);
    for (uint32_t i = 1; i < n; i++)
        if (s_key_equal (s_scratch [i], s_scratch [i - 1])) {
            *dup = s_scratch [i];
            return 0;
        }
    return 0;
}

//  --------------------------------------------------------------------------
//  Detail tree

typedef struct {
    const msgpack_object *obj;      //  a map or an array
    uint32_t index;                 //  the element being checked
} s_frame_t;

//  Build the path of the element each frame is at, below "detail".
static void
s_frame_path (const s_frame_t *stack, size_t top, char *path, size_t size)
{
    snprintf (path, size, "detail");
    for (size_t k = 0; k < top; k++) {
        const msgpack_object *o = stack [k].obj;
        if (o->type == MSGPACK_OBJECT_MAP) {
            const msgpack_object *key = &o->via.map.ptr [stack [k].index].key;
            zb_path_key (path, size, key->via.str.ptr, key->via.str.size);
        }
        else
            zb_path_index (path, size, stack [k].index);
    }
}

static const char *
s_type_name (msgpack_object_type type)
{
    switch (type) {
        case MSGPACK_OBJECT_NIL:                return "nil";
        case MSGPACK_OBJECT_BOOLEAN:            return "boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:   return "integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:            return "float";
        case MSGPACK_OBJECT_STR:                return "string";
        case MSGPACK_OBJECT_ARRAY:              return "array";
        case MSGPACK_OBJECT_MAP:                return "map";
        case MSGPACK_OBJECT_BIN:                return "binary";
        case MSGPACK_OBJECT_EXT:                return "extension";
    }
    return "unknown";
}

//  Checks the keys of a map about to be entered (path names the map).
static zb_code_t
s_check_keys (const msgpack_object *map, const s_frame_t *stack, size_t top,
              char *err, size_t errlen)
{
    char path [256];
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr [i].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_frame_path (stack, top, path, sizeof (path));
            return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen,
                           "%s: map key is not a string (%s)", path,
                           s_type_name (key->type));
        }
        if (!zb_utf8_valid (key->via.str.ptr, key->via.str.size)) {
            s_frame_path (stack, top, path, sizeof (path));
            zb_path_key (path, sizeof (path), key->via.str.ptr, key->via.str.size);
            return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen,
                           "%s: map key is not valid UTF-8", path);
        }
        //  JSON could escape it, but JSON libraries (json-c among them) keep
        //  keys as C strings: a NUL would cut the key at the edges
        if (key->via.str.size && memchr (key->via.str.ptr, 0, key->via.str.size)) {
            s_frame_path (stack, top, path, sizeof (path));
            zb_path_key (path, sizeof (path), key->via.str.ptr, key->via.str.size);
            return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen,
                           "%s: map key contains a NUL character", path);
        }
    }
    const msgpack_object *dup;
    if (s_find_duplicate (map, &dup))
        return s_fail (ZB_E_INTERNAL, err, errlen,
                       "out of memory checking detail for duplicate keys");
    if (dup) {
        s_frame_path (stack, top, path, sizeof (path));
        zb_path_key (path, sizeof (path), dup->via.str.ptr, dup->via.str.size);
        return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen, "%s: duplicate key", path);
    }
    return ZB_OK;
}

//  Walks the detail map without recursion. Level 1 is the entry, so detail
//  is level 2 and stack [k] holds the container at level k + 2.
static zb_code_t
s_check_detail (const msgpack_object *detail, char *err, size_t errlen)
{
    s_frame_t stack [ZB_MAX_DEPTH];
    size_t top = 0;
    char path [256];

    zb_code_t rc = s_check_keys (detail, NULL, 0, err, errlen);
    if (rc)
        return rc;
    stack [top++] = (s_frame_t) { detail, 0 };

    while (top > 0) {
        s_frame_t *frame = &stack [top - 1];
        const msgpack_object *o = frame->obj;
        uint32_t size = o->type == MSGPACK_OBJECT_MAP? o->via.map.size: o->via.array.size;
        if (frame->index >= size) {
            top--;
            if (top > 0)
                stack [top - 1].index++;
            continue;
        }
        const msgpack_object *v = o->type == MSGPACK_OBJECT_MAP
                                ? &o->via.map.ptr [frame->index].val
                                : &o->via.array.ptr [frame->index];
        const char *problem = NULL;
        switch (v->type) {
            case MSGPACK_OBJECT_NIL:
            case MSGPACK_OBJECT_BOOLEAN:
            case MSGPACK_OBJECT_POSITIVE_INTEGER:
            case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                break;
            case MSGPACK_OBJECT_FLOAT32:
            case MSGPACK_OBJECT_FLOAT64:
                if (isnan (v->via.f64))
                    problem = "NaN is not allowed";
                else
                if (isinf (v->via.f64))
                    problem = "Infinity is not allowed";
                break;
            case MSGPACK_OBJECT_STR:
                if (!zb_utf8_valid (v->via.str.ptr, v->via.str.size))
                    problem = "string is not valid UTF-8";
                break;
            case MSGPACK_OBJECT_BIN:
                problem = "binary values are not allowed";
                break;
            case MSGPACK_OBJECT_EXT:
                problem = "extension values are not allowed";
                break;
            case MSGPACK_OBJECT_ARRAY:
            case MSGPACK_OBJECT_MAP:
                //  This container would be at level top + 2
                if (top + 2 > ZB_MAX_DEPTH) {
                    s_frame_path (stack, top, path, sizeof (path));
                    return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen,
                                   "%s: nesting deeper than %d levels", path, ZB_MAX_DEPTH);
                }
                if (v->type == MSGPACK_OBJECT_MAP) {
                    rc = s_check_keys (v, stack, top, err, errlen);
                    if (rc)
                        return rc;
                }
                stack [top++] = (s_frame_t) { v, 0 };
                continue;       //  its parent's index moves on when it is done
            default:
                problem = "value of unknown type";
                break;
        }
        if (problem) {
            s_frame_path (stack, top, path, sizeof (path));
            return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen, "%s: %s", path, problem);
        }
        frame->index++;
    }
    return ZB_OK;
}

//  --------------------------------------------------------------------------
//  Entry

//  Checks source or detail-type (name) against the shared rules.
static zb_code_t
s_check_name (const msgpack_object *value, const char *name, size_t max,
              char *err, size_t errlen)
{
    if (!value)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "%s is required", name);
    if (value->type != MSGPACK_OBJECT_STR)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "%s is not a string (%s)",
                       name, s_type_name (value->type));
    if (value->via.str.size == 0)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "%s is empty", name);
    if (value->via.str.size > max)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "%s is longer than %zu bytes",
                       name, max);
    if (!zb_utf8_valid (value->via.str.ptr, value->via.str.size))
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "%s is not valid UTF-8", name);
    if (zb_utf8_has_control (value->via.str.ptr, value->via.str.size))
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                       "%s contains a control character", name);
    return ZB_OK;
}

//  The index of an entry key in zb_entry_parse's known [], or 6 when it is
//  none of them: by length first, so most keys take one compare.
static inline size_t
s_known_key (const char *key, size_t len)
{
    switch (len) {
        case 4:  return memcmp (key, "time", 4) == 0 ? 4 : 6;
        case 6:  return memcmp (key, "source", 6) == 0 ? 0
                      : memcmp (key, "detail", 6) == 0 ? 2 : 6;
        case 9:  return memcmp (key, "resources", 9) == 0 ? 3 : 6;
        case 11: return memcmp (key, "detail-type", 11) == 0 ? 1 : 6;
        case 15: return memcmp (key, "idempotency-key", 15) == 0 ? 5 : 6;
    }
    return 6;
}

zb_code_t
zb_entry_parse (const msgpack_object *obj, zb_entry_t *entry, char *err, size_t errlen)
{
    assert (entry);
    if (err && errlen > 0)
        err [0] = 0;
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "entry is not a map (%s)",
                       obj? s_type_name (obj->type): "nothing");

    static const char *const known [] = { "source", "detail-type", "detail", "resources", "time",
                                          "idempotency-key" };
    static const char *const stamped [] = { "id", "version", "account", "region" };
    const msgpack_object *field [6] = { NULL, NULL, NULL, NULL, NULL, NULL };

    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        if (key->type != MSGPACK_OBJECT_STR)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "entry has a key that is not a string (%s)",
                           s_type_name (key->type));
        size_t k = s_known_key (key->via.str.ptr, key->via.str.size);
        if (k < 6) {
            if (field [k])
                return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                               "entry has '%s' more than once", known [k]);
            field [k] = &obj->via.map.ptr [i].val;
            continue;
        }
        for (k = 0; k < 4; k++)
            if (zb_str_eq (key, stamped [k]))
                return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                               "'%s' is set by the broker", stamped [k]);
        char name [256] = "";
        zb_path_key (name, sizeof (name), key->via.str.ptr, key->via.str.size);
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                       "unknown key '%s' (allowed: source, detail-type, detail, "
                       "resources, time, idempotency-key)", name);
    }
    const msgpack_object *source = field [0], *detail_type = field [1],
                         *detail = field [2], *resources = field [3], *time = field [4],
                         *idem_key = field [5];

    zb_code_t rc = s_check_name (source, "source", ZB_MAX_SOURCE, err, errlen);
    if (rc)
        return rc;
    rc = s_check_name (detail_type, "detail-type", ZB_MAX_DETAIL_TYPE, err, errlen);
    if (rc)
        return rc;
    if (detail_type->via.str.ptr [0] == ZB_RESERVED_PREFIX)
        return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                       "detail-type must not start with '%c' (reserved for the bus)",
                       ZB_RESERVED_PREFIX);
    entry->time_utc_len = 0;
    if (time) {
        if (time->type != MSGPACK_OBJECT_STR)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen, "time is not a string (%s)",
                           s_type_name (time->type));
        int len = zb_time_normalize (time->via.str.ptr, time->via.str.size, entry->time_utc);
        if (len < 0)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "time: not an RFC 3339 date-time");
        entry->time_utc_len = (size_t) len;
    }
    if (resources) {
        if (resources->type != MSGPACK_OBJECT_ARRAY)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "resources is not an array (%s)", s_type_name (resources->type));
        for (uint32_t i = 0; i < resources->via.array.size; i++) {
            const msgpack_object *r = &resources->via.array.ptr [i];
            if (r->type != MSGPACK_OBJECT_STR)
                return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                               "resources[%u] is not a string (%s)", i, s_type_name (r->type));
            if (!zb_utf8_valid (r->via.str.ptr, r->via.str.size))
                return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                               "resources[%u] is not valid UTF-8", i);
        }
    }
    if (idem_key) {
        if (idem_key->type != MSGPACK_OBJECT_STR)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "idempotency-key is not a string (%s)", s_type_name (idem_key->type));
        if (idem_key->via.str.size == 0 || idem_key->via.str.size > ZB_MAX_IDEM_KEY)
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "idempotency-key must be 1 to %d bytes, not %u",
                           ZB_MAX_IDEM_KEY, (unsigned) idem_key->via.str.size);
        if (!zb_utf8_valid (idem_key->via.str.ptr, idem_key->via.str.size))
            return s_fail (ZB_E_INVALID_ARGUMENT, err, errlen,
                           "idempotency-key is not valid UTF-8");
    }
    if (!detail)
        return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen, "detail is required");
    if (detail->type != MSGPACK_OBJECT_MAP)
        return s_fail (ZB_E_MALFORMED_DETAIL, err, errlen, "detail is not a map (%s)",
                       s_type_name (detail->type));
    rc = s_check_detail (detail, err, errlen);
    if (rc)
        return rc;

    entry->source = (zb_str_t) { source->via.str.ptr, source->via.str.size };
    entry->detail_type = (zb_str_t) { detail_type->via.str.ptr, detail_type->via.str.size };
    entry->time = time? (zb_str_t) { time->via.str.ptr, time->via.str.size }
                      : (zb_str_t) { NULL, 0 };
    entry->detail = detail;
    entry->resources = resources;
    entry->idem_key = idem_key? (zb_str_t) { idem_key->via.str.ptr, idem_key->via.str.size }
                              : (zb_str_t) { NULL, 0 };
    entry->detail_bytes = (zb_str_t) { NULL, 0 };
    entry->resources_bytes = (zb_str_t) { NULL, 0 };
    return ZB_OK;
}

//  --------------------------------------------------------------------------
//  Entry from its packed bytes (the broker's fast path)
//
//  The same rules as zb_entry_parse, decided on the msgpack bytes in one
//  walk, without an object tree and without messages: it only has to say
//  "accepted" exactly when zb_entry_parse would. Every other verdict (and
//  every message) comes from zb_entry_parse itself, which the caller runs on
//  the entry's tree when this says no. Common cases take fast paths: ASCII
//  strings are checked a word at a time, once for UTF-8 and control
//  characters together; a small map's keys are compared pairwise.

typedef enum { PK_BAD, PK_SCALAR, PK_STR, PK_ARRAY, PK_MAP } pk_kind_t;

static inline uint32_t
s_pk_be16 (const uint8_t *p)
{
    return ((uint32_t) p [0] << 8) | p [1];
}

static inline uint32_t
s_pk_be32 (const uint8_t *p)
{
    return ((uint32_t) p [0] << 24) | ((uint32_t) p [1] << 16) | ((uint32_t) p [2] << 8) | p [3];
}

//  Reads the item at *pp: a str (s set), an array or a map (*count set: its
//  elements, pairs for a map), a scalar zb_entry_parse accepts in detail
//  (nil, boolean, integer, finite float), or PK_BAD for anything else (bin,
//  ext, NaN, Infinity, 0xc1, bytes missing). Moves *pp past the item (past
//  the header only, for a container).
static inline __attribute__ ((always_inline)) pk_kind_t
s_pk_item (const uint8_t **pp, const uint8_t *end, zb_str_t *s, uint32_t *count)
{
    const uint8_t *p = *pp;
    size_t avail = (size_t) (end - p);
    if (avail == 0)
        return PK_BAD;
    uint8_t b = p [0];
    size_t head, size;
    if (b <= 0x7f || b >= 0xe0) {
        *pp = p + 1;
        return PK_SCALAR;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        head = 1;
        size = b & 0x1f;
        goto str;
    }
    if (b <= 0x9f) {
        *count = b & 0x0f;
        *pp = p + 1;
        return b <= 0x8f ? PK_MAP : PK_ARRAY;
    }
    switch (b) {
        case 0xc0: case 0xc2: case 0xc3:
            size = 1;
            break;
        case 0xcc: case 0xd0:
            size = 2;
            break;
        case 0xcd: case 0xd1:
            size = 3;
            break;
        case 0xce: case 0xd2:
            size = 5;
            break;
        case 0xcf: case 0xd3:
            size = 9;
            break;
        case 0xca:
            //  NaN and Infinity: all exponent bits set
            if (avail < 5 || ((s_pk_be32 (p + 1) >> 23) & 0xff) == 0xff)
                return PK_BAD;
            size = 5;
            break;
        case 0xcb:
            if (avail < 9 || ((s_pk_be32 (p + 1) >> 20) & 0x7ff) == 0x7ff)
                return PK_BAD;
            size = 9;
            break;
        case 0xd9:
            if (avail < 2)
                return PK_BAD;
            head = 2;
            size = p [1];
            goto str;
        case 0xda:
            if (avail < 3)
                return PK_BAD;
            head = 3;
            size = s_pk_be16 (p + 1);
            goto str;
        case 0xdb:
            if (avail < 5)
                return PK_BAD;
            head = 5;
            size = s_pk_be32 (p + 1);
            goto str;
        case 0xdc: case 0xde:
            if (avail < 3)
                return PK_BAD;
            *count = s_pk_be16 (p + 1);
            *pp = p + 3;
            return b == 0xde ? PK_MAP : PK_ARRAY;
        case 0xdd: case 0xdf:
            if (avail < 5)
                return PK_BAD;
            *count = s_pk_be32 (p + 1);
            *pp = p + 5;
            return b == 0xdf ? PK_MAP : PK_ARRAY;
        default:
            return PK_BAD;          //  bin, ext, 0xc1
    }
    if (avail < size)
        return PK_BAD;
    *pp = p + size;
    return PK_SCALAR;
str:
    if (avail - head < size)
        return PK_BAD;
    s->ptr = (const char *) p + head;
    s->len = size;
    *pp = p + head + size;
    return PK_STR;
}

#define S_ONES  0x0101010101010101ULL
#define S_HIGHS 0x8080808080808080ULL

static inline uint64_t
s_pk_load64 (const uint8_t *p)
{
    uint64_t word;
    memcpy (&word, p, 8);
    return word;
}

static inline uint64_t
s_pk_load32 (const uint8_t *p)
{
    uint32_t word;
    memcpy (&word, p, 4);
    return word;
}

//  What s_pk_scan checks every byte for
#define S_PK_ASCII  0           //  < 0x80
#define S_PK_KEY    1           //  0x01..0x7f: ASCII without NUL
#define S_PK_NAME   2           //  0x20..0x7e: printable ASCII

static inline __attribute__ ((always_inline)) bool
s_pk_word_ok (uint64_t w, int what)
{
    if (what == S_PK_ASCII)
        return (w & S_HIGHS) == 0;
    if (what == S_PK_KEY)
        return ((w | ((w - S_ONES) & ~w)) & S_HIGHS) == 0;
    uint64_t del = w ^ (S_ONES * 0x7F);
    return ((w | ((w - S_ONES * 0x20) & ~w) | ((del - S_ONES) & ~del)) & S_HIGHS) == 0;
}

//  True when every byte of [p, p+len) passes what. Words, read only inside
//  the string: overlapping loads for the tail and for short strings (a
//  byte counted twice changes nothing).
static inline __attribute__ ((always_inline)) bool
s_pk_scan (const uint8_t *p, size_t len, int what)
{
    if (len >= 8) {
        size_t i = 0;
        if (what == S_PK_ASCII) {
            //  Long strings: 32 bytes a step, one test
            for (; i + 32 <= len; i += 32)
                if ((s_pk_load64 (p + i) | s_pk_load64 (p + i + 8) | s_pk_load64 (p + i + 16)
                     | s_pk_load64 (p + i + 24)) & S_HIGHS)
                    return false;
        }
        for (; i + 8 < len; i += 8)
            if (!s_pk_word_ok (s_pk_load64 (p + i), what))
                return false;
        return s_pk_word_ok (s_pk_load64 (p + len - 8), what);
    }
    if (len >= 4)
        return s_pk_word_ok (s_pk_load32 (p) | s_pk_load32 (p + len - 4) << 32, what);
    if (len == 0)
        return true;
    uint64_t x = (uint64_t) p [0] | (uint64_t) p [len >> 1] << 8 | (uint64_t) p [len - 1] << 16;
    return s_pk_word_ok (x | x << 24 | x << 48, what);
}

//  A str value in detail or resources: valid UTF-8.
static inline bool
s_pk_text_ok (zb_str_t s)
{
    return s_pk_scan ((const uint8_t *) s.ptr, s.len, S_PK_ASCII)
        || zb_utf8_valid (s.ptr, s.len);
}

//  A map key in detail: valid UTF-8 without NUL (s_check_keys).
static inline bool
s_pk_key_ok (zb_str_t s)
{
    if (s_pk_scan ((const uint8_t *) s.ptr, s.len, S_PK_KEY))
        return true;
    return zb_utf8_valid (s.ptr, s.len) && !memchr (s.ptr, 0, s.len);
}

//  source or detail-type, length already checked: valid UTF-8 without
//  control characters (s_check_name). Printable ASCII passes at once.
static inline __attribute__ ((always_inline)) bool
s_pk_name_ok (zb_str_t s)
{
    if (s_pk_scan ((const uint8_t *) s.ptr, s.len, S_PK_NAME))
        return true;
    return zb_utf8_valid (s.ptr, s.len) && !zb_utf8_has_control (s.ptr, s.len);
}

//  Per-thread stack of the keys of the detail maps being walked; grows,
//  never shrinks.
static _Thread_local zb_str_t *s_pk_keys;
static _Thread_local size_t s_pk_keys_cap;

static int
s_pk_str_compare (const void *a, const void *b)
{
    const zb_str_t *ka = (const zb_str_t *) a, *kb = (const zb_str_t *) b;
    if (ka->len != kb->len)
        return ka->len < kb->len ? -1 : 1;
    return ka->len ? memcmp (ka->ptr, kb->ptr, ka->len) : 0;
}

//  True when the n keys hold no duplicate (they may be reordered).
static bool
s_pk_unique (zb_str_t *keys, size_t n)
{
    if (n <= ZB_DUP_PAIRWISE) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (keys [i].len == keys [j].len
                &&  (keys [i].len == 0 || memcmp (keys [i].ptr, keys [j].ptr, keys [i].len) == 0))
                    return false;
        return true;
    }
    qsort (keys, n, sizeof (*keys), s_pk_str_compare);
    for (size_t i = 1; i < n; i++)
        if (s_pk_str_compare (&keys [i], &keys [i - 1]) == 0)
            return false;
    return true;
}

typedef struct {
    uint32_t left;              //  elements still to read (pairs, for a map)
    bool map;
    size_t keys;                //  where its keys start in s_pk_keys
} pk_frame_t;

//  Reads a str at *pp (any of its encodings), fixstr first.
static inline __attribute__ ((always_inline)) bool
s_pk_str (const uint8_t **pp, const uint8_t *end, zb_str_t *s)
{
    const uint8_t *p = *pp;
    if (p < end && (*p & 0xe0) == 0xa0) {
        size_t size = *p & 0x1f;
        if ((size_t) (end - p) - 1 < size)
            return false;
        s->ptr = (const char *) p + 1;
        s->len = size;
        *pp = p + 1 + size;
        return true;
    }
    uint32_t count;
    return s_pk_item (pp, end, s, &count) == PK_STR;
}

//  Adds a key to s_pk_keys [*nkeys]; false when out of memory.
static inline bool
s_pk_key_push (size_t *nkeys, zb_str_t key)
{
    if (*nkeys == s_pk_keys_cap) {
        size_t cap = s_pk_keys_cap ? 2 * s_pk_keys_cap : 64;
        zb_str_t *grown = (zb_str_t *) realloc (s_pk_keys, cap * sizeof (*grown));
        if (!grown)
            return false;
        s_pk_keys = grown;
        s_pk_keys_cap = cap;
    }
    s_pk_keys [(*nkeys)++] = key;
    return true;
}

//  The detail value at *pp: true when s_check_detail would pass it (and it
//  is a map). Moves *pp past it. Each container's elements are read in one
//  loop until it ends or a container starts in it.
static bool
s_pk_detail (const uint8_t **pp, const uint8_t *end)
{
    pk_frame_t stack [ZB_MAX_DEPTH];
    size_t top = 0;
    size_t nkeys = 0;
    zb_str_t s = { NULL, 0 };
    uint32_t count = 0;
    if (s_pk_item (pp, end, &s, &count) != PK_MAP)
        return false;
    stack [top++] = (pk_frame_t) { count, true, 0 };
    while (top > 0) {
        pk_frame_t *frame = &stack [top - 1];
        while (frame->left > 0) {
            frame->left--;
            if (frame->map) {
                if (!s_pk_str (pp, end, &s) || !s_pk_key_ok (s) || !s_pk_key_push (&nkeys, s))
                    return false;
            }
            pk_kind_t kind = s_pk_item (pp, end, &s, &count);
            if (kind == PK_SCALAR)
                continue;
            if (kind == PK_STR) {
                if (!s_pk_text_ok (s))
                    return false;
                continue;
            }
            if (kind == PK_BAD)
                return false;
            //  A container, at level top + 2 (s_check_detail)
            if (top + 2 > ZB_MAX_DEPTH)
                return false;
            stack [top++] = (pk_frame_t) { count, kind == PK_MAP, nkeys };
            frame = &stack [top - 1];
        }
        if (frame->map && !s_pk_unique (s_pk_keys + frame->keys, nkeys - frame->keys))
            return false;
        nkeys = frame->keys;
        top--;
    }
    return true;
}

bool
zb_entries_header_packed (const char *data, size_t len, uint32_t *count, size_t *pos)
{
    const uint8_t *in = (const uint8_t *) data;
    if (len == 0)
        return false;
    if (in [0] >= 0x90 && in [0] <= 0x9f) {
        *count = in [0] & 0x0f;
        *pos = 1;
    }
    else
    if (in [0] == 0xdc && len >= 3) {
        *count = (uint32_t) in [1] << 8 | in [2];
        *pos = 3;
    }
    else
    if (in [0] == 0xdd && len >= 5) {
        *count = (uint32_t) in [1] << 24 | (uint32_t) in [2] << 16
               | (uint32_t) in [3] << 8 | in [4];
        *pos = 5;
    }
    else
        return false;
    return *count > 0 && *count <= len - *pos;
}

bool
zb_entry_parse_packed (const char *data, size_t len, zb_entry_t *entry, size_t *used)
{
    assert (data && entry && used);
    const uint8_t *p = (const uint8_t *) data;
    const uint8_t *end = p + len;
    zb_str_t s = { NULL, 0 };
    uint32_t count = 0;
    if (s_pk_item (&p, end, &s, &count) != PK_MAP)
        return false;
    //  source, detail-type, detail, resources, time, idempotency-key
    zb_str_t field [6];
    bool seen [6] = { false, false, false, false, false, false };
    for (uint32_t i = 0; i < count; i++) {
        zb_str_t key;
        if (!s_pk_str (&p, end, &key))
            return false;
        size_t k = s_known_key (key.ptr, key.len);
        if (k == 6 || seen [k])
            return false;
        seen [k] = true;
        const uint8_t *start = p;
        if (k == 2) {
            if (!s_pk_detail (&p, end))
                return false;
        }
        else
        if (k == 3) {
            uint32_t elements = 0;
            if (s_pk_item (&p, end, &s, &elements) != PK_ARRAY)
                return false;
            for (uint32_t j = 0; j < elements; j++)
                if (!s_pk_str (&p, end, &s) || !s_pk_text_ok (s))
                    return false;
        }
        else
        if (!s_pk_str (&p, end, &s))
            return false;
        field [k] = k == 2 || k == 3 ? (zb_str_t) { (const char *) start, (size_t) (p - start) }
                                     : s;
    }
    //  The checks of zb_entry_parse that are not about types
    if (!seen [0] || field [0].len == 0 || field [0].len > ZB_MAX_SOURCE
    ||  !s_pk_name_ok (field [0]))
        return false;
    if (!seen [1] || field [1].len == 0 || field [1].len > ZB_MAX_DETAIL_TYPE
    ||  !s_pk_name_ok (field [1]) || field [1].ptr [0] == ZB_RESERVED_PREFIX)
        return false;
    if (!seen [2])
        return false;
    if (seen [5] && (field [5].len == 0 || field [5].len > ZB_MAX_IDEM_KEY
                     || !zb_utf8_valid (field [5].ptr, field [5].len)))
        return false;
    entry->time_utc_len = 0;
    if (seen [4]) {
        int n = zb_time_normalize (field [4].ptr, field [4].len, entry->time_utc);
        if (n < 0)
            return false;
        entry->time_utc_len = (size_t) n;
    }
    entry->source = field [0];
    entry->detail_type = field [1];
    entry->time = seen [4] ? field [4] : (zb_str_t) { NULL, 0 };
    entry->detail = NULL;
    entry->resources = NULL;
    entry->idem_key = seen [5] ? field [5] : (zb_str_t) { NULL, 0 };
    entry->detail_bytes = field [2];
    entry->resources_bytes = seen [3] ? field [3] : (zb_str_t) { NULL, 0 };
    *used = (size_t) (p - (const uint8_t *) data);
    return true;
}

//  --------------------------------------------------------------------------
//  Packing

void
zb_event_pack (msgpack_packer *pk, const zb_entry_t *entry, const zb_stamp_t *stamp)
{
    assert (pk && entry && stamp && entry->detail);
    msgpack_pack_map (pk, 9);
    ZB_PACK_LIT (pk, "version");
    ZB_PACK_LIT (pk, "0");
    ZB_PACK_LIT (pk, "id");
    msgpack_pack_str_with_body (pk, stamp->id.ptr, stamp->id.len);
    ZB_PACK_LIT (pk, "detail-type");
    msgpack_pack_str_with_body (pk, entry->detail_type.ptr, entry->detail_type.len);
    ZB_PACK_LIT (pk, "source");
    msgpack_pack_str_with_body (pk, entry->source.ptr, entry->source.len);
    ZB_PACK_LIT (pk, "account");
    msgpack_pack_str_with_body (pk, stamp->account.ptr, stamp->account.len);
    ZB_PACK_LIT (pk, "time");
    msgpack_pack_str_with_body (pk, stamp->time.ptr, stamp->time.len);
    ZB_PACK_LIT (pk, "region");
    msgpack_pack_str_with_body (pk, stamp->region.ptr, stamp->region.len);
    ZB_PACK_LIT (pk, "resources");
    if (entry->resources && entry->resources_bytes.ptr)
        pk->callback (pk->data, entry->resources_bytes.ptr, entry->resources_bytes.len);
    else
    if (entry->resources)
        msgpack_pack_object (pk, *entry->resources);
    else
        msgpack_pack_array (pk, 0);
    ZB_PACK_LIT (pk, "detail");
    if (entry->detail_bytes.ptr)
        pk->callback (pk->data, entry->detail_bytes.ptr, entry->detail_bytes.len);
    else
        msgpack_pack_object (pk, *entry->detail);
}

//  The envelope's constant pieces, headers included: map of 9, then each key
//  as msgpack-c packs it (fixstr), "version" with its value "0".
#define ZB_EV_HEAD      "\x89\xa7version\xa1" "0" "\xa2id"
#define ZB_EV_TYPE      "\xab" "detail-type"
#define ZB_EV_SOURCE    "\xa6source"
#define ZB_EV_ACCOUNT   "\xa7" "account"
#define ZB_EV_TIME      "\xa4time"
#define ZB_EV_REGION    "\xa6region"
#define ZB_EV_RESOURCES "\xa9resources"
#define ZB_EV_DETAIL    "\xa6" "detail"
#define ZB_LIT_LEN(lit) (sizeof (lit) - 1)

//  Bytes of the header msgpack-c gives a str of len bytes.
static inline size_t
s_str_header_size (size_t len)
{
    return len < 32 ? 1 : len < 256 ? 2 : len < 65536 ? 3 : 5;
}

static inline char *
s_put (char *out, const char *data, size_t len)
{
    memcpy (out, data, len);
    return out + len;
}

//  s_put for the short strings of the envelope (names, id, time): up to 64
//  bytes in overlapping 4-, 8- or 16-byte moves, no call; longer ones by
//  memcpy.
static inline char *
s_put_short (char *out, const char *data, size_t len)
{
    if (len >= 8 && len <= 16) {
        uint64_t a, b;
        memcpy (&a, data, 8);
        memcpy (&b, data + len - 8, 8);
        memcpy (out, &a, 8);
        memcpy (out + len - 8, &b, 8);
    }
    else
    if (len >= 4 && len < 8) {
        uint32_t a, b;
        memcpy (&a, data, 4);
        memcpy (&b, data + len - 4, 4);
        memcpy (out, &a, 4);
        memcpy (out + len - 4, &b, 4);
    }
    else
    if (len > 16 && len <= 64) {
        //  16 bytes a move, the last one overlapping
        for (size_t i = 0; i + 16 < len; i += 16)
            memcpy (out + i, data + i, 16);
        memcpy (out + len - 16, data + len - 16, 16);
    }
    else
    if (len > 64)
        memcpy (out, data, len);
    else
        for (size_t i = 0; i < len; i++)
            out [i] = data [i];
    return out + len;
}

//  A str as msgpack-c's msgpack_pack_str_with_body writes it.
static inline char *
s_put_str (char *out, const char *data, size_t len)
{
    uint8_t *p = (uint8_t *) out;
    if (len < 32)
        *p++ = (uint8_t) (0xa0 | len);
    else
    if (len < 256) {
        *p++ = 0xd9;
        *p++ = (uint8_t) len;
    }
    else
    if (len < 65536) {
        *p++ = 0xda;
        *p++ = (uint8_t) (len >> 8);
        *p++ = (uint8_t) len;
    }
    else {
        *p++ = 0xdb;
        *p++ = (uint8_t) (len >> 24);
        *p++ = (uint8_t) (len >> 16);
        *p++ = (uint8_t) (len >> 8);
        *p++ = (uint8_t) len;
    }
    return s_put_short ((char *) p, data, len);
}

size_t
zb_event_size (const zb_entry_t *entry, const zb_stamp_t *stamp)
{
    assert (entry && stamp && entry->detail_bytes.ptr);
    assert (!entry->resources || entry->resources_bytes.ptr);
    size_t size = ZB_LIT_LEN (ZB_EV_HEAD) + ZB_LIT_LEN (ZB_EV_TYPE) + ZB_LIT_LEN (ZB_EV_SOURCE)
                + ZB_LIT_LEN (ZB_EV_ACCOUNT) + ZB_LIT_LEN (ZB_EV_TIME) + ZB_LIT_LEN (ZB_EV_REGION)
                + ZB_LIT_LEN (ZB_EV_RESOURCES) + ZB_LIT_LEN (ZB_EV_DETAIL);
    size += s_str_header_size (stamp->id.len) + stamp->id.len
          + s_str_header_size (entry->detail_type.len) + entry->detail_type.len
          + s_str_header_size (entry->source.len) + entry->source.len
          + s_str_header_size (stamp->account.len) + stamp->account.len
          + s_str_header_size (stamp->time.len) + stamp->time.len
          + s_str_header_size (stamp->region.len) + stamp->region.len;
    size += entry->resources_bytes.ptr ? entry->resources_bytes.len : 1;
    return size + entry->detail_bytes.len;
}

void
zb_event_write (char *out, const zb_entry_t *entry, const zb_stamp_t *stamp)
{
    assert (out && entry && stamp && entry->detail_bytes.ptr);
    assert (!entry->resources || entry->resources_bytes.ptr);
    char *p = out;
    p = s_put (p, ZB_EV_HEAD, ZB_LIT_LEN (ZB_EV_HEAD));
    p = s_put_str (p, stamp->id.ptr, stamp->id.len);
    p = s_put (p, ZB_EV_TYPE, ZB_LIT_LEN (ZB_EV_TYPE));
    p = s_put_str (p, entry->detail_type.ptr, entry->detail_type.len);
    p = s_put (p, ZB_EV_SOURCE, ZB_LIT_LEN (ZB_EV_SOURCE));
    p = s_put_str (p, entry->source.ptr, entry->source.len);
    p = s_put (p, ZB_EV_ACCOUNT, ZB_LIT_LEN (ZB_EV_ACCOUNT));
    p = s_put_str (p, stamp->account.ptr, stamp->account.len);
    p = s_put (p, ZB_EV_TIME, ZB_LIT_LEN (ZB_EV_TIME));
    p = s_put_str (p, stamp->time.ptr, stamp->time.len);
    p = s_put (p, ZB_EV_REGION, ZB_LIT_LEN (ZB_EV_REGION));
    p = s_put_str (p, stamp->region.ptr, stamp->region.len);
    p = s_put (p, ZB_EV_RESOURCES, ZB_LIT_LEN (ZB_EV_RESOURCES));
    if (entry->resources_bytes.ptr)
        p = s_put (p, entry->resources_bytes.ptr, entry->resources_bytes.len);
    else
        *p++ = (char) 0x90;             //  []
    p = s_put (p, ZB_EV_DETAIL, ZB_LIT_LEN (ZB_EV_DETAIL));
    s_put (p, entry->detail_bytes.ptr, entry->detail_bytes.len);
}

bool
zb_rule_name_ok (const char *name, size_t len)
{
    if (!name || len == 0 || len > ZB_RULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}
