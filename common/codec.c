/*  codec.c - JSON at the edges <-> msgpack, with json-c.

    json-c 0.16 is lenient in places even with JSON_TOKENER_STRICT, and some of
    that leniency silently changes data. zb_json_parse therefore runs json-c
    and then one linear pass of its own over the (json-c-accepted) text that
    rejects what json-c lets through:
      - integer literals outside int64/uint64 (json-c saturates them to
        INT64_MIN / UINT64_MAX), and numbers that overflow a double (1e400);
      - NaN, Infinity, -Infinity (json-c accepts them in strict mode);
      - leading zeros ("00", "-01") and a '.' without digits ("2.");
      - unescaped control characters (U+0000..U+001F) inside strings;
      - \u escapes that are lone surrogates (json-c turns them into U+FFFD);
      - "\u0000" inside an object key (json-c keys are C strings: it would
        cut the key short);
      - duplicate keys in an object (json-c keeps the last value silently).
    Duplicates are found by counting the members of each object in the text
    and comparing with json-c's object sizes, in document order; only on a
    mismatch is the object scanned again to name the key. The whole text must
    be valid UTF-8 (checked first, with the position of the first bad byte). */

#include "codec.h"
#include "event.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zb.h"

//  json-c's nesting limit for parsing text. Conversions to msgpack still stop
//  at ZB_MAX_DEPTH; this only bounds the parser (and our scanner's stack).
#define ZB_JSON_PARSE_DEPTH 64

#define ZB_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

//  --------------------------------------------------------------------------
//  Messages

static void
s_error (char *err, size_t errlen, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    zb_utf8_vformat (err, errlen, format, args);
    va_end (args);
}

//  The path of the value at the root, for messages
static const char *
s_path_name (const char *path)
{
    return path [0]? path: "value";
}

//  --------------------------------------------------------------------------
//  Doubles

//  Shortest of %.15g, %.16g, %.17g that reads back as the same double, with
//  ".0" appended when it would otherwise look like an integer.
static void
s_format_double (double value, char *out, size_t size)
{
    for (int precision = 15; precision <= 17; precision++) {
        snprintf (out, size, "%.*g", precision, value);
        if (strtod (out, NULL) == value)
            break;
    }
    if (!strpbrk (out, ".eE"))
        strncat (out, ".0", size - strlen (out) - 1);
}

//  Same for a msgpack float32: the shortest text that reads back as the same
//  float, so 0.1f prints as 0.1 and not as 0.10000000149011612.
static void
s_format_float (float value, char *out, size_t size)
{
    for (int precision = 6; precision <= 9; precision++) {
        snprintf (out, size, "%.*g", precision, (double) value);
        if (strtof (out, NULL) == value)
            break;
    }
    if (!strpbrk (out, ".eE"))
        strncat (out, ".0", size - strlen (out) - 1);
}

//  --------------------------------------------------------------------------
//  msgpack -> json-c

#define ZB_PATH_MAX 256

static json_object *
s_from_msgpack (const msgpack_object *obj, int depth, char *path, char *err, size_t errlen)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            //  json-c's null is the NULL pointer; callers tell it from an
            //  error because err is only written on error
            return NULL;
        case MSGPACK_OBJECT_BOOLEAN:
            return json_object_new_boolean (obj->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (obj->via.u64 <= (uint64_t) INT64_MAX)
                return json_object_new_int64 ((int64_t) obj->via.u64);
            return json_object_new_uint64 (obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_object_new_int64 (obj->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: {
            double d = obj->via.f64;
            if (isnan (d)) {
                s_error (err, errlen, "%s: NaN is not allowed", s_path_name (path));
                return NULL;
            }
            if (isinf (d)) {
                s_error (err, errlen, "%s: Infinity is not allowed", s_path_name (path));
                return NULL;
            }
            char text [40];
            if (obj->type == MSGPACK_OBJECT_FLOAT32)
                s_format_float ((float) d, text, sizeof (text));
            else
                s_format_double (d, text, sizeof (text));
            return json_object_new_double_s (strtod (text, NULL), text);
        }
        case MSGPACK_OBJECT_STR:
            if (!zb_utf8_valid (obj->via.str.ptr, obj->via.str.size)) {
                s_error (err, errlen, "%s: string is not valid UTF-8", s_path_name (path));
                return NULL;
            }
            if (obj->via.str.size > (uint32_t) INT_MAX) {
                s_error (err, errlen, "%s: string too long for JSON", s_path_name (path));
                return NULL;
            }
            return json_object_new_string_len (obj->via.str.size? obj->via.str.ptr: "",
                                               (int) obj->via.str.size);
        case MSGPACK_OBJECT_BIN:
            s_error (err, errlen, "%s: binary values are not allowed", s_path_name (path));
            return NULL;
        case MSGPACK_OBJECT_EXT:
            s_error (err, errlen, "%s: extension values are not allowed", s_path_name (path));
            return NULL;
        case MSGPACK_OBJECT_ARRAY:
        case MSGPACK_OBJECT_MAP:
            break;
        default:
            s_error (err, errlen, "%s: value of unknown type", s_path_name (path));
            return NULL;
    }
    if (depth > ZB_MAX_DEPTH) {
        s_error (err, errlen, "%s: nesting deeper than %d levels",
                 s_path_name (path), ZB_MAX_DEPTH);
        return NULL;
    }
    size_t pathlen = strlen (path);
    if (obj->type == MSGPACK_OBJECT_ARRAY) {
        json_object *array = json_object_new_array_ext ((int) obj->via.array.size);
        if (!array) {
            s_error (err, errlen, "%s: out of memory", s_path_name (path));
            return NULL;
        }
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            zb_path_index (path, ZB_PATH_MAX, i);
            json_object *item = s_from_msgpack (&obj->via.array.ptr [i], depth + 1,
                                                path, err, errlen);
            path [pathlen] = 0;
            if (!item && obj->via.array.ptr [i].type != MSGPACK_OBJECT_NIL) {
                json_object_put (array);
                return NULL;
            }
            if (json_object_array_add (array, item)) {
                json_object_put (item);
                json_object_put (array);
                s_error (err, errlen, "%s: out of memory", s_path_name (path));
                return NULL;
            }
        }
        return array;
    }
    json_object *map = json_object_new_object ();
    if (!map) {
        s_error (err, errlen, "%s: out of memory", s_path_name (path));
        return NULL;
    }
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_error (err, errlen, "%s: map key is not a string", s_path_name (path));
            json_object_put (map);
            return NULL;
        }
        zb_path_key (path, ZB_PATH_MAX, key->via.str.ptr, key->via.str.size);
        const char *problem = NULL;
        if (!zb_utf8_valid (key->via.str.ptr, key->via.str.size))
            problem = "map key is not valid UTF-8";
        else
        if (key->via.str.size > 0 && memchr (key->via.str.ptr, 0, key->via.str.size))
            problem = "map key contains a NUL character (not supported)";
        if (problem) {
            s_error (err, errlen, "%s: %s", path, problem);
            json_object_put (map);
            return NULL;
        }
        //  json-c keys are C strings: copy (small keys on the stack)
        char small [128];
        char *name = key->via.str.size < sizeof (small)
                   ? small: (char *) malloc (key->via.str.size + 1);
        if (!name) {
            s_error (err, errlen, "%s: out of memory", path);
            json_object_put (map);
            return NULL;
        }
        if (key->via.str.size)
            memcpy (name, key->via.str.ptr, key->via.str.size);
        name [key->via.str.size] = 0;
        json_object *item = NULL;
        bool ok = true;
        if (json_object_object_get_ex (map, name, NULL)) {
            s_error (err, errlen, "%s: duplicate key", path);
            ok = false;
        }
        else {
            item = s_from_msgpack (val, depth + 1, path, err, errlen);
            if (!item && val->type != MSGPACK_OBJECT_NIL)
                ok = false;
            else
            if (json_object_object_add (map, name, item)) {
                json_object_put (item);
                s_error (err, errlen, "%s: out of memory", path);
                ok = false;
            }
        }
        if (name != small)
            free (name);
        path [pathlen] = 0;
        if (!ok) {
            json_object_put (map);
            return NULL;
        }
    }
    return map;
}

json_object *
zb_json_from_msgpack (const msgpack_object *obj, char *err, size_t errlen)
{
    assert (obj);
    char path [ZB_PATH_MAX] = "";
    if (err && errlen)
        err [0] = 0;
    return s_from_msgpack (obj, 1, path, err, errlen);
}

//  --------------------------------------------------------------------------
//  json-c -> msgpack

//  First pass: everything that could fail, so that nothing is packed on error.
static int
s_check_json (json_object *json, int depth, char *path, char *err, size_t errlen)
{
    switch (json_object_get_type (json)) {
        case json_type_null:
        case json_type_boolean:
        case json_type_int:
            return 0;
        case json_type_double: {
            double d = json_object_get_double (json);
            if (isnan (d) || isinf (d)) {
                s_error (err, errlen, "%s: %s is not allowed", s_path_name (path),
                         isnan (d)? "NaN": "Infinity");
                return -1;
            }
            return 0;
        }
        case json_type_string:
            if (!zb_utf8_valid (json_object_get_string (json),
                                (size_t) json_object_get_string_len (json))) {
                s_error (err, errlen, "%s: string is not valid UTF-8", s_path_name (path));
                return -1;
            }
            return 0;
        case json_type_array:
        case json_type_object:
            break;
    }
    if (depth > ZB_MAX_DEPTH) {
        s_error (err, errlen, "%s: nesting deeper than %d levels",
                 s_path_name (path), ZB_MAX_DEPTH);
        return -1;
    }
    size_t pathlen = strlen (path);
    if (json_object_is_type (json, json_type_array)) {
        size_t n = json_object_array_length (json);
        for (size_t i = 0; i < n; i++) {
            zb_path_index (path, ZB_PATH_MAX, i);
            int rc = s_check_json (json_object_array_get_idx (json, i), depth + 1,
                                   path, err, errlen);
            path [pathlen] = 0;
            if (rc)
                return rc;
        }
        return 0;
    }
    json_object_object_foreach (json, key, val) {
        size_t keylen = strlen (key);
        zb_path_key (path, ZB_PATH_MAX, key, keylen);
        int rc = 0;
        if (!zb_utf8_valid (key, keylen)) {
            s_error (err, errlen, "%s: map key is not valid UTF-8", path);
            rc = -1;
        }
        else
            rc = s_check_json (val, depth + 1, path, err, errlen);
        path [pathlen] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

static void
s_pack_json (json_object *json, msgpack_packer *pk)
{
    switch (json_object_get_type (json)) {
        case json_type_null:
            msgpack_pack_nil (pk);
            break;
        case json_type_boolean:
            if (json_object_get_boolean (json))
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
            break;
        case json_type_int: {
            //  json-c keeps int64 or uint64 inside; get_int64 saturates a
            //  uint64 above INT64_MAX, so ask for the uint64 in that case
            int64_t i = json_object_get_int64 (json);
            if (i == INT64_MAX)
                msgpack_pack_uint64 (pk, json_object_get_uint64 (json));
            else
                msgpack_pack_int64 (pk, i);
            break;
        }
        case json_type_double:
            msgpack_pack_double (pk, json_object_get_double (json));
            break;
        case json_type_string: {
            size_t len = (size_t) json_object_get_string_len (json);
            msgpack_pack_str (pk, len);
            msgpack_pack_str_body (pk, json_object_get_string (json), len);
            break;
        }
        case json_type_array: {
            size_t n = json_object_array_length (json);
            msgpack_pack_array (pk, n);
            for (size_t i = 0; i < n; i++)
                s_pack_json (json_object_array_get_idx (json, i), pk);
            break;
        }
        case json_type_object: {
            msgpack_pack_map (pk, (size_t) json_object_object_length (json));
            json_object_object_foreach (json, key, val) {
                size_t keylen = strlen (key);
                msgpack_pack_str (pk, keylen);
                msgpack_pack_str_body (pk, key, keylen);
                s_pack_json (val, pk);
            }
            break;
        }
    }
}

int
zb_json_to_msgpack (json_object *json, msgpack_packer *pk, char *err, size_t errlen)
{
    assert (pk);
    char path [ZB_PATH_MAX] = "";
    if (err && errlen)
        err [0] = 0;
    if (s_check_json (json, 1, path, err, errlen))
        return -1;
    s_pack_json (json, pk);
    return 0;
}

//  --------------------------------------------------------------------------
//  Text

char *
zb_json_text (json_object *json)
{
    return strdup (json_object_to_json_string_ext (json, ZB_JSON_FLAGS));
}

char *
zb_json_text_from_msgpack (const msgpack_object *obj, char *err, size_t errlen)
{
    assert (obj);
    if (err && errlen)
        err [0] = 0;
    json_object *json = zb_json_from_msgpack (obj, err, errlen);
    if (!json && obj->type != MSGPACK_OBJECT_NIL)
        return NULL;
    char *text = zb_json_text (json);
    json_object_put (json);
    if (!text)
        s_error (err, errlen, "out of memory");
    return text;
}

//  --------------------------------------------------------------------------
//  Parsing

//  Line and column (1-based; columns count characters) of a byte offset.
static void
s_position (const char *text, size_t offset, size_t *line, size_t *column)
{
    *line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; i++)
        if (text [i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    *column = 1;
    for (size_t i = line_start; i < offset; i++)
        if (((unsigned char) text [i] & 0xC0) != 0x80)
            (*column)++;
}

static void
s_parse_error (char *err, size_t errlen, const char *text, size_t offset,
               const char *format, ...)
{
    if (!err || errlen == 0)
        return;
    size_t line, column;
    s_position (text, offset, &line, &column);
    int n = snprintf (err, errlen, "line %zu column %zu: ", line, column);
    if (n < 0 || (size_t) n >= errlen) {
        zb_utf8_trim (err);
        return;
    }
    //  The position is ASCII: cutting the rest alone is cutting the whole
    va_list args;
    va_start (args, format);
    zb_utf8_vformat (err + n, errlen - (size_t) n, format, args);
    va_end (args);
}

//  The scanner: one pass over text that json-c accepted.
typedef struct {
    const char *text;
    size_t len;
    uint32_t *counts;       //  members per object, by object ordinal (document order)
    size_t *starts;         //  offset of each object's '{'
    size_t objects;         //  objects seen
    size_t capacity;
    //  Second pass: report each key of object `target` to on_key
    size_t target;
    int (*on_key) (void *ctx, size_t start, size_t end);
    void *ctx;
    //  Error
    size_t err_offset;
    const char *err_reason;
} s_scanner_t;

static int
s_hex4 (const char *p, unsigned *value)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p [i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned) (c - '0');
        else
        if (c >= 'a' && c <= 'f')
            v |= (unsigned) (c - 'a' + 10);
        else
        if (c >= 'A' && c <= 'F')
            v |= (unsigned) (c - 'A' + 10);
        else
            return -1;
    }
    *value = v;
    return 0;
}

static int
s_scan_fail (s_scanner_t *self, size_t offset, const char *reason)
{
    self->err_offset = offset;
    self->err_reason = reason;
    return -1;
}

//  Scans the string starting at the opening quote at *pos; leaves *pos after
//  the closing quote.
static int
s_scan_string (s_scanner_t *self, size_t *pos, bool is_key)
{
    const char *t = self->text;
    size_t i = *pos + 1;
    while (i < self->len && t [i] != '"') {
        unsigned char c = (unsigned char) t [i];
        if (c < 0x20)
            return s_scan_fail (self, i, "control character in string (must be escaped)");
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= self->len)
            return s_scan_fail (self, i, "unexpected end of input");
        if (t [i + 1] != 'u') {
            i += 2;
            continue;
        }
        unsigned cp;
        if (i + 6 > self->len || s_hex4 (t + i + 2, &cp))
            return s_scan_fail (self, i, "invalid \\u escape");
        if (cp == 0 && is_key)
            return s_scan_fail (self, i, "object key contains \\u0000 (not supported)");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return s_scan_fail (self, i, "\\u escape is a lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low;
            if (i + 12 > self->len || t [i + 6] != '\\' || t [i + 7] != 'u'
            ||  s_hex4 (t + i + 8, &low) || low < 0xDC00 || low > 0xDFFF)
                return s_scan_fail (self, i, "\\u escape is a lone high surrogate");
            i += 12;
        }
        else
            i += 6;
    }
    if (i >= self->len)
        return s_scan_fail (self, i, "unexpected end of input");
    *pos = i + 1;
    return 0;
}

static bool
s_is_digit (char c)
{
    return c >= '0' && c <= '9';
}

static int
s_scan_number (s_scanner_t *self, size_t *pos)
{
    const char *t = self->text;
    size_t start = *pos, i = start;
    bool negative = t [i] == '-';
    if (negative)
        i++;
    if (i < self->len && (t [i] == 'I' || t [i] == 'N'))
        return s_scan_fail (self, start, "NaN and Infinity are not JSON numbers");
    size_t int_start = i;
    while (i < self->len && s_is_digit (t [i]))
        i++;
    if (i == int_start)
        return s_scan_fail (self, start, "number expected");
    if (t [int_start] == '0' && i - int_start > 1)
        return s_scan_fail (self, start, "leading zeros are not allowed");
    bool is_integer = true;
    if (i < self->len && t [i] == '.') {
        is_integer = false;
        size_t frac = ++i;
        while (i < self->len && s_is_digit (t [i]))
            i++;
        if (i == frac)
            return s_scan_fail (self, start, "digits expected after '.'");
    }
    if (i < self->len && (t [i] == 'e' || t [i] == 'E')) {
        is_integer = false;
        i++;
        if (i < self->len && (t [i] == '+' || t [i] == '-'))
            i++;
        size_t exp = i;
        while (i < self->len && s_is_digit (t [i]))
            i++;
        if (i == exp)
            return s_scan_fail (self, start, "digits expected in exponent");
    }
    //  strtoX need a NUL-terminated copy; numbers longer than this are out
    //  of range anyway (or are doubles, checked from the copy's prefix)
    char number [400];
    size_t n = i - start;
    if (n >= sizeof (number)) {
        if (is_integer)
            return s_scan_fail (self, start, "integer out of range");
        //  A double this long: let strtod see all of it
        char *copy = strndup (t + start, n);
        if (!copy)
            return s_scan_fail (self, start, "out of memory");
        double d = strtod (copy, NULL);
        free (copy);
        if (isinf (d))
            return s_scan_fail (self, start, "number out of range for a double");
        *pos = i;
        return 0;
    }
    memcpy (number, t + start, n);
    number [n] = 0;
    errno = 0;
    if (is_integer) {
        if (negative)
            (void) strtoll (number, NULL, 10);
        else
            (void) strtoull (number, NULL, 10);
        if (errno == ERANGE)
            return s_scan_fail (self, start, negative
                ? "integer out of range (below -9223372036854775808)"
                : "integer out of range (above 18446744073709551615)");
    }
    else
    if (isinf (strtod (number, NULL)))
        return s_scan_fail (self, start, "number out of range for a double");
    *pos = i;
    return 0;
}

typedef struct {
    bool is_object;
    bool expect_key;
    size_t ordinal;
} s_level_t;

static int
s_scan (s_scanner_t *self)
{
    const char *t = self->text;
    s_level_t stack [ZB_JSON_PARSE_DEPTH + 1];
    size_t top = 0;
    size_t i = 0;
    while (i < self->len) {
        char c = t [i];
        s_level_t *level = top? &stack [top - 1]: NULL;
        switch (c) {
            case ' ': case '\t': case '\n': case '\r':
                i++;
                break;
            case '{':
            case '[':
                if (top > ZB_JSON_PARSE_DEPTH)
                    return s_scan_fail (self, i, "nesting too deep");
                stack [top] = (s_level_t) { c == '{', c == '{', 0 };
                if (c == '{') {
                    if (self->objects == self->capacity) {
                        size_t cap = self->capacity? self->capacity * 2: 64;
                        uint32_t *counts = realloc (self->counts, cap * sizeof (*counts));
                        if (counts)
                            self->counts = counts;
                        size_t *starts = realloc (self->starts, cap * sizeof (*starts));
                        if (starts)
                            self->starts = starts;
                        if (!counts || !starts)
                            return s_scan_fail (self, i, "out of memory");
                        self->capacity = cap;
                    }
                    stack [top].ordinal = self->objects;
                    self->counts [self->objects] = 0;
                    self->starts [self->objects] = i;
                    self->objects++;
                }
                top++;
                i++;
                break;
            case '}':
            case ']':
                if (top == 0)
                    return s_scan_fail (self, i, "unexpected character");
                top--;
                i++;
                break;
            case ',':
                if (level && level->is_object)
                    level->expect_key = true;
                i++;
                break;
            case ':':
                if (level && level->is_object)
                    level->expect_key = false;
                i++;
                break;
            case '"': {
                bool is_key = level && level->is_object && level->expect_key;
                size_t start = i;
                if (s_scan_string (self, &i, is_key))
                    return -1;
                if (is_key) {
                    self->counts [level->ordinal]++;
                    if (self->on_key && level->ordinal == self->target
                    &&  self->on_key (self->ctx, start, i))
                        return -1;
                }
                break;
            }
            case 't': case 'f': case 'n':
                while (i < self->len && t [i] >= 'a' && t [i] <= 'z')
                    i++;
                break;
            case 'N': case 'I':
                return s_scan_fail (self, i, "NaN and Infinity are not JSON numbers");
            default:
                if (c == '-' || s_is_digit (c)) {
                    if (s_scan_number (self, &i))
                        return -1;
                }
                else
                    return s_scan_fail (self, i, "unexpected character");
                break;
        }
    }
    return 0;
}

//  Compares json-c's object sizes with the member counts from the text, in
//  document order. Returns the ordinal of the first object that lost members
//  (a duplicate key), or SIZE_MAX.
static size_t
s_first_shrunk (json_object *json, const s_scanner_t *scan, size_t *next)
{
    if (json_object_is_type (json, json_type_object)) {
        size_t ordinal = (*next)++;
        if (ordinal >= scan->objects
        ||  (size_t) json_object_object_length (json) != scan->counts [ordinal])
            return ordinal;
        json_object_object_foreach (json, key, val) {
            (void) key;
            size_t found = s_first_shrunk (val, scan, next);
            if (found != SIZE_MAX)
                return found;
        }
    }
    else
    if (json_object_is_type (json, json_type_array)) {
        size_t n = json_object_array_length (json);
        for (size_t i = 0; i < n; i++) {
            size_t found = s_first_shrunk (json_object_array_get_idx (json, i), scan, next);
            if (found != SIZE_MAX)
                return found;
        }
    }
    return SIZE_MAX;
}

//  Second pass over one object: finds the first key that repeats an earlier one.
typedef struct {
    const char *text;
    json_object *seen;          //  the keys so far, as a json-c object (a hash set)
    size_t dup_offset;
    char *dup_key;              //  JSON text of the key, quoted
} s_dup_ctx_t;

static int
s_on_key (void *ctx_, size_t start, size_t end)
{
    s_dup_ctx_t *ctx = (s_dup_ctx_t *) ctx_;
    json_object *key = NULL;
    json_tokener *tok = json_tokener_new ();
    if (tok) {
        key = json_tokener_parse_ex (tok, ctx->text + start, (int) (end - start));
        json_tokener_free (tok);
    }
    const char *name = key? json_object_get_string (key): NULL;
    int rc = 0;
    if (name && json_object_object_get_ex (ctx->seen, name, NULL)) {
        ctx->dup_offset = start;
        ctx->dup_key = strdup (json_object_to_json_string_ext (key, ZB_JSON_FLAGS));
        rc = -1;
    }
    else
    if (name)
        json_object_object_add (ctx->seen, name, NULL);
    json_object_put (key);
    return rc;
}

json_object *
zb_json_parse (const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err [0] = 0;
    if (!text)
        text = "";
    if (len > (size_t) INT_MAX - 1) {
        s_error (err, errlen, "JSON text too long (%zu bytes)", len);
        return NULL;
    }
    //  Whole text: UTF-8, no NUL bytes
    size_t valid = zb_utf8_prefix (text, len);
    if (valid < len) {
        s_parse_error (err, errlen, text, valid, "invalid UTF-8");
        return NULL;
    }
    const char *nul = memchr (text, 0, len);
    if (nul) {
        s_parse_error (err, errlen, text, (size_t) (nul - text), "NUL byte in JSON text");
        return NULL;
    }

    //  json-c
    json_tokener *tok = json_tokener_new_ex (ZB_JSON_PARSE_DEPTH);
    if (!tok) {
        s_error (err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *json = json_tokener_parse_ex (tok, text, (int) len);
    enum json_tokener_error jerr = json_tokener_get_error (tok);
    size_t offset = json_tokener_get_parse_end (tok);
    if (jerr == json_tokener_continue) {
        //  A number (or nothing) at the very end: one space ends it
        json = json_tokener_parse_ex (tok, " ", 1);
        jerr = json_tokener_get_error (tok);
        offset = len;
    }
    if (jerr != json_tokener_success) {
        const char *reason = jerr == json_tokener_continue
                           ? "unexpected end of input": json_tokener_error_desc (jerr);
        s_parse_error (err, errlen, text, offset, "%s", reason);
        json_tokener_free (tok);
        json_object_put (json);
        return NULL;
    }
    json_tokener_free (tok);

    //  What json-c let through
    s_scanner_t scan = { .text = text, .len = len, .target = SIZE_MAX };
    if (s_scan (&scan)) {
        s_parse_error (err, errlen, text, scan.err_offset, "%s", scan.err_reason);
        json_object_put (json);
        json = NULL;
    }
    else {
        size_t next = 0;
        size_t shrunk = s_first_shrunk (json, &scan, &next);
        if (shrunk != SIZE_MAX && shrunk < scan.objects) {
            s_dup_ctx_t ctx = { .text = text, .seen = json_object_new_object () };
            s_scanner_t again = { .text = text, .len = len, .target = shrunk,
                                  .on_key = s_on_key, .ctx = &ctx };
            if (ctx.seen)
                s_scan (&again);
            if (ctx.dup_key) {
                //  Long keys are shortened in the message
                if (strlen (ctx.dup_key) > 64) {
                    size_t cut = 60;
                    while (cut > 0 && ((unsigned char) ctx.dup_key [cut] & 0xC0) == 0x80)
                        cut--;
                    strcpy (ctx.dup_key + cut, "...\"");
                }
                s_parse_error (err, errlen, text, ctx.dup_offset, "duplicate key %s",
                               ctx.dup_key);
            }
            else
                s_parse_error (err, errlen, text, scan.starts [shrunk],
                               "object has duplicate keys");
            free (ctx.dup_key);
            free (again.counts);
            free (again.starts);
            json_object_put (ctx.seen);
            json_object_put (json);
            json = NULL;
        }
        else
        if (!json) {
            //  The text is a bare null: json-c's null is NULL, which this
            //  API uses for errors
            s_parse_error (err, errlen, text, 0, "null is not accepted as the whole JSON text");
        }
    }
    free (scan.counts);
    free (scan.starts);
    return json;
}
