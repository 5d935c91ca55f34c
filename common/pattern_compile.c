/*  pattern_compile.c - one event pattern, JSON text -> program.

    Validates the whole pattern (every error names its place, as a path into
    the pattern: "detail.sales[0].numeric[2]"), then turns it into a flat
    list of fields (one per leaf array: the path from the event root and the
    alternatives listed) and a list of branches: $or alternatives multiplied
    out, each branch a set of fields that must all match. An object nested in
    a pattern only ANDs more fields, so it needs no node of its own; only $or
    makes the tree, and the tree is counted before it is expanded so that a
    pattern with millions of combinations is refused without being built.

    Also here: canonical numbers and wildcards, which pattern.c uses too. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "codec.h"
#include "event.h"
#include "pattern.h"
#include "pattern_internal.h"

//  --------------------------------------------------------------------------
//  Numbers

zb_num_t
zb_num_from_int (int64_t value)
{
    zb_num_t num = { .kind = ZB_NUM_INT };
    num.v.i = value;
    return num;
}

zb_num_t
zb_num_from_uint (uint64_t value)
{
    if (value <= (uint64_t) INT64_MAX)
        return zb_num_from_int ((int64_t) value);
    zb_num_t num = { .kind = ZB_NUM_UINT };
    num.v.u = value;
    return num;
}

#define S_TWO_63 9223372036854775808.0          //  2^63, exact as a double
#define S_TWO_64 18446744073709551616.0         //  2^64

zb_num_t
zb_num_from_double (double value)
{
    assert (value == value);
    //  (No libm: the casts below are exact for values in their range)
    if (value >= -S_TWO_63 && value < S_TWO_63) {
        int64_t i = (int64_t) value;
        if ((double) i == value)
            return zb_num_from_int (i);                 //  -0.0 becomes 0
    }
    else
    if (value >= S_TWO_63 && value < S_TWO_64)          //  all integers there
        return zb_num_from_uint ((uint64_t) value);
    zb_num_t num = { .kind = ZB_NUM_DOUBLE };
    num.v.d = value;
    return num;
}

//  A double (canonical: not an integer inside the int64/uint64 range)
//  against an integer, exactly.
static int
s_cmp_double_int (double d, int64_t i)
{
    if (d < -S_TWO_63)
        return -1;
    if (d >= S_TWO_63)
        return 1;
    int64_t t = (int64_t) d;        //  toward zero; exact in this range
    bool frac = (double) t != d;
    if (frac && d < 0)
        t--;                        //  floor (d)
    if (t < i)
        return -1;                  //  d < t + 1 <= i
    if (t > i)
        return 1;
    return frac? 1: 0;
}

static int
s_cmp_double_uint (double d, uint64_t u)
{
    if (d < S_TWO_63)
        return -1;                  //  u > INT64_MAX
    if (d >= S_TWO_64)
        return 1;
    uint64_t t = (uint64_t) d;      //  doubles this large are integers
    return (t > u) - (t < u);
}

//  Kinds differ (zb_num_cmp handles equal kinds inline)
int
zb_num_cmp_mixed (const zb_num_t *a, const zb_num_t *b)
{
    if (a->kind == ZB_NUM_INT && b->kind == ZB_NUM_UINT)
        return -1;
    if (a->kind == ZB_NUM_UINT && b->kind == ZB_NUM_INT)
        return 1;
    if (a->kind == ZB_NUM_DOUBLE)
        return b->kind == ZB_NUM_INT? s_cmp_double_int (a->v.d, b->v.i)
                                    : s_cmp_double_uint (a->v.d, b->v.u);
    return -zb_num_cmp_mixed (b, a);
}

void
zb_num_key (const zb_num_t *num, uint8_t key [ZB_NUM_KEY_SIZE])
{
    uint64_t bits;
    if (num->kind == ZB_NUM_INT)
        bits = (uint64_t) num->v.i;
    else
    if (num->kind == ZB_NUM_UINT)
        bits = num->v.u;
    else
        memcpy (&bits, &num->v.d, 8);
    key [0] = num->kind;
    for (int i = 0; i < 8; i++)
        key [1 + i] = (uint8_t) (bits >> (8 * i));
}

void
zb_num_text (const zb_num_t *num, char *out, size_t size)
{
    if (num->kind == ZB_NUM_INT)
        snprintf (out, size, "%lld", (long long) num->v.i);
    else
    if (num->kind == ZB_NUM_UINT)
        snprintf (out, size, "%llu", (unsigned long long) num->v.u);
    else
        snprintf (out, size, "%.17g", num->v.d);
}

//  --------------------------------------------------------------------------
//  Wildcards

bool
zb_wild_match (const zb_wild_t *wild, const char *s, size_t len)
{
    const char *text = wild->text;
    const uint32_t *off = wild->seg_off;
    uint32_t n = wild->n_segs;
    size_t first = off [1] - off [0];
    if (n == 1)
        return len == first && (len == 0 || memcmp (s, text, len) == 0);
    if (len == 0)
        return off [n] == 0;        //  only stars: matches the empty string
    size_t last = off [n] - off [n - 1];
    if (len < first + last
    ||  memcmp (s, text, first) != 0
    ||  memcmp (s + len - last, text + off [n - 1], last) != 0)
        return false;
    //  Middle segments, leftmost first: for '*' alone that is always right
    size_t pos = first, end = len - last;
    for (uint32_t k = 1; k + 1 < n; k++) {
        size_t seg = off [k + 1] - off [k];
        const char *hit = memmem (s + pos, end - pos, text + off [k], seg);
        if (!hit)
            return false;
        pos = (size_t) (hit - s) + seg;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Arena: everything of one program, freed at once

typedef struct s_block_t {
    struct s_block_t *next;
    size_t used, size;
    max_align_t data [];
} s_block_t;

struct zb_arena_t {
    s_block_t *head;
};

static void *
s_alloc (zb_arena_t *arena, size_t size)
{
    size = (size + 15) & ~(size_t) 15;
    s_block_t *block = arena->head;
    if (!block || block->size - block->used < size) {
        size_t cap = size > 4000? size: 4000;
        block = malloc (sizeof (s_block_t) + cap);
        if (!block)
            return NULL;
        block->next = arena->head;
        block->used = 0;
        block->size = cap;
        arena->head = block;
    }
    void *ptr = (char *) block->data + block->used;
    block->used += size;
    return ptr;
}

static void *
s_calloc (zb_arena_t *arena, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *ptr = s_alloc (arena, n * size);
    if (ptr)
        memset (ptr, 0, n * size);
    return ptr;
}

static char *
s_strndup (zb_arena_t *arena, const char *s, size_t len)
{
    char *copy = s_alloc (arena, len + 1);
    if (copy) {
        memcpy (copy, s, len);
        copy [len] = 0;
    }
    return copy;
}

static void
s_arena_free (zb_arena_t *arena)
{
    while (arena->head) {
        s_block_t *next = arena->head->next;
        free (arena->head);
        arena->head = next;
    }
}

//  --------------------------------------------------------------------------
//  The compiler

#define S_MAX_DEPTH 64                  //  json-c's own nesting limit

//  A pattern object with its $or groups: its own fields (those of nested
//  objects included) AND each group, a group being the OR of its objects.
typedef struct s_node_t s_node_t;
typedef struct {
    s_node_t **alts;
    size_t n_alts;
} s_or_t;

struct s_node_t {
    uint32_t *fields;
    size_t n_fields, cap_fields;
    s_or_t *ors;
    size_t n_ors, cap_ors;
};

typedef struct {
    zb_arena_t *arena;          //  the program's
    zb_arena_t scratch;         //  nodes and branch lists while compiling
    char *err;
    size_t errlen;
    char path [512];            //  where we are in the pattern, for messages
    const char *keys [S_MAX_DEPTH];     //  where we are in the event
    size_t key_lens [S_MAX_DEPTH];
    size_t depth;
    zb_field_t *fields;
    size_t n_fields, cap_fields;
    bool oom;
} s_ctx_t;

//  Text from a pattern shown inside an error message: control characters as
//  \u00XX (one message, one line), '"' and '\\' escaped, cut to fit on a
//  character boundary. The input is valid UTF-8 (zb_json_parse checked it).
#define ZB_QUOTE_MAX 96

static void
s_quote (const char *in, size_t len, char *out, size_t outsize)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) in [i];
        char piece [8];
        size_t n;
        if (c < 0x20 || c == 0x7F)
            n = (size_t) snprintf (piece, sizeof piece, "\\u%04x", c);
        else
        if (c == '"' || c == '\\') {
            piece [0] = '\\';
            piece [1] = (char) c;
            n = 2;
        }
        else {
            piece [0] = (char) c;
            n = 1;
        }
        if (o + n + 1 > outsize)
            break;
        memcpy (out + o, piece, n);
        o += n;
    }
    out [o] = 0;
    zb_utf8_trim (out);
}

static int
s_fail (s_ctx_t *ctx, const char *format, ...)
{
    if (!ctx->err || !ctx->errlen)
        return -1;
    //  Format first, then copy with every control character (which the
    //  pattern's strings and keys may hold) written as \u00XX: a message is
    //  always one line
    char raw [1024];
    int n = snprintf (raw, sizeof raw, "%s: ", ctx->path [0]? ctx->path: "pattern");
    if (n >= 0 && (size_t) n < sizeof raw) {
        va_list args;
        va_start (args, format);
        vsnprintf (raw + n, sizeof raw - (size_t) n, format, args);
        va_end (args);
    }
    size_t o = 0;
    for (const char *p = raw; *p; p++) {
        unsigned char c = (unsigned char) *p;
        char piece [8];
        size_t len = 1;
        if (c < 0x20 || c == 0x7F)
            len = (size_t) snprintf (piece, sizeof piece, "\\u%04x", c);
        else
            piece [0] = (char) c;
        if (o + len + 1 > ctx->errlen)
            break;
        memcpy (ctx->err + o, piece, len);
        o += len;
    }
    ctx->err [o] = 0;
    zb_utf8_trim (ctx->err);
    return -1;
}

static int
s_oom (s_ctx_t *ctx)
{
    ctx->oom = true;
    if (ctx->err && ctx->errlen)
        snprintf (ctx->err, ctx->errlen, "out of memory");
    return -1;
}

static size_t
s_push_key (s_ctx_t *ctx, const char *key, size_t len)
{
    size_t saved = strlen (ctx->path);
    zb_path_key (ctx->path, sizeof (ctx->path), key, len);
    return saved;
}

static size_t
s_push_index (s_ctx_t *ctx, size_t index)
{
    size_t saved = strlen (ctx->path);
    zb_path_index (ctx->path, sizeof (ctx->path), index);
    return saved;
}

static void
s_pop (s_ctx_t *ctx, size_t saved)
{
    ctx->path [saved] = 0;
}

static const char *
s_json_type (json_object *json)
{
    switch (json_object_get_type (json)) {
        case json_type_null:    return "null";
        case json_type_boolean: return "a boolean";
        case json_type_double:
        case json_type_int:     return "a number";
        case json_type_object:  return "an object";
        case json_type_array:   return "an array";
        case json_type_string:  return "a string";
    }
    return "?";
}

static bool
s_is_number (json_object *json)
{
    json_type type = json_object_get_type (json);
    return type == json_type_int || type == json_type_double;
}

static zb_num_t
s_json_num (json_object *json)
{
    if (json_object_get_type (json) == json_type_double)
        return zb_num_from_double (json_object_get_double (json));
    //  json-c keeps an int64 or a uint64; get_int64 saturates the latter
    int64_t i = json_object_get_int64 (json);
    if (i == INT64_MAX)
        return zb_num_from_uint (json_object_get_uint64 (json));
    return zb_num_from_int (i);
}

static const char *
s_json_str (json_object *json, size_t *len)
{
    *len = (size_t) json_object_get_string_len (json);
    return json_object_get_string (json);
}

//  Key bytes of an exact value; false when json is not a scalar.
static bool
s_exact_key (s_ctx_t *ctx, json_object *json, uint8_t *vkind, const char **key, size_t *key_len)
{
    switch (json_object_get_type (json)) {
        case json_type_string: {
            size_t len;
            const char *s = s_json_str (json, &len);
            *vkind = ZB_VAL_STR;
            *key = s_strndup (ctx->arena, s, len);
            *key_len = len;
            break;
        }
        case json_type_int:
        case json_type_double: {
            zb_num_t num = s_json_num (json);
            uint8_t *bytes = s_alloc (ctx->arena, ZB_NUM_KEY_SIZE);
            if (bytes)
                zb_num_key (&num, bytes);
            *vkind = ZB_VAL_NUM;
            *key = (const char *) bytes;
            *key_len = ZB_NUM_KEY_SIZE;
            break;
        }
        case json_type_boolean:
            *vkind = ZB_VAL_LIT;
            *key = json_object_get_boolean (json)? "t": "f";
            *key_len = 1;
            break;
        case json_type_null:
            *vkind = ZB_VAL_LIT;
            *key = "n";
            *key_len = 1;
            break;
        default:
            return false;
    }
    return true;
}

static char *
s_folded (s_ctx_t *ctx, const char *s, size_t len, size_t *out_len)
{
    char *folded = s_alloc (ctx->arena, ZB_FOLD_MAX (len) + 1);
    if (!folded)
        return NULL;
    *out_len = zb_fold_utf8 (s, len, folded);
    folded [*out_len] = 0;
    return folded;
}

//  The wildcard operand at the current path (a JSON string).
static zb_wild_t *
s_wildcard (s_ctx_t *ctx, json_object *json)
{
    if (!json_object_is_type (json, json_type_string)) {
        s_fail (ctx, "must be a string (got %s)", s_json_type (json));
        return NULL;
    }
    size_t len;
    const char *s = s_json_str (json, &len);
    size_t stars = 0;
    for (size_t i = 0; i < len; i++) {
        if (s [i] == '\\') {
            if (i + 1 == len) {
                s_fail (ctx, "\"\\\" at the end: escape a backslash as \"\\\\\"");
                return NULL;
            }
            if (s [i + 1] != '*' && s [i + 1] != '\\') {
                //  Quote the whole character after the backslash (the text is
                //  valid UTF-8), never half of one, and no raw control bytes
                char shown [ZB_QUOTE_MAX];
                unsigned char lead = (unsigned char) s [i + 1];
                size_t clen = lead < 0x80? 1: lead >= 0xF0? 4: lead >= 0xE0? 3: 2;
                if (clen > len - i - 1)
                    clen = len - i - 1;
                s_quote (s + i + 1, clen, shown, sizeof shown);
                s_fail (ctx, "invalid escape \"\\%s\": only \"\\*\" and \"\\\\\" are allowed",
                        shown);
                return NULL;
            }
            i++;
        }
        else
        if (s [i] == '*') {
            if (i + 1 < len && s [i + 1] == '*') {
                s_fail (ctx, "consecutive wildcard characters (\"**\") are not allowed");
                return NULL;
            }
            stars++;
        }
    }
    zb_wild_t *wild = s_alloc (ctx->arena, sizeof (zb_wild_t));
    char *text = s_alloc (ctx->arena, len + 1);
    uint32_t *off = s_alloc (ctx->arena, (stars + 2) * sizeof (uint32_t));
    if (!wild || !text || !off) {
        s_oom (ctx);
        return NULL;
    }
    size_t t = 0, seg = 0;
    off [0] = 0;
    for (size_t i = 0; i < len; i++) {
        if (s [i] == '\\')
            text [t++] = s [++i];
        else
        if (s [i] == '*')
            off [++seg] = (uint32_t) t;
        else
            text [t++] = s [i];
    }
    off [++seg] = (uint32_t) t;
    text [t] = 0;
    wild->text = text;
    wild->seg_off = off;
    wild->n_segs = (uint32_t) stars + 1;
    return wild;
}

//  "cidr": "address/length"
static int
s_cidr (s_ctx_t *ctx, json_object *json, zb_alt_t *alt)
{
    if (!json_object_is_type (json, json_type_string))
        return s_fail (ctx, "must be a string such as \"10.0.0.0/24\" (got %s)", s_json_type (json));
    size_t len;
    const char *s = s_json_str (json, &len);
    const char *slash = memchr (s, '/', len);
    if (!slash || slash == s || len - (size_t) (slash - s) < 2 || (size_t) (slash - s) > 45)
        return s_fail (ctx, "\"%s\" is not a CIDR block (address/prefix-length, such as \"10.0.0.0/24\")", s);
    char addr_text [48];
    memcpy (addr_text, s, (size_t) (slash - s));
    addr_text [slash - s] = 0;
    uint8_t addr [16];
    int family;
    if (inet_pton (AF_INET, addr_text, addr) == 1)
        family = 4;
    else
    if (inet_pton (AF_INET6, addr_text, addr) == 1)
        family = 6;
    else
        return s_fail (ctx, "\"%s\" is not an IPv4 or IPv6 address", addr_text);
    const char *digits = slash + 1;
    size_t n_digits = len - (size_t) (digits - s);
    unsigned plen = 0;
    for (size_t i = 0; i < n_digits; i++) {
        if (digits [i] < '0' || digits [i] > '9' || n_digits > 3 || (i == 0 && digits [0] == '0' && n_digits > 1))
            return s_fail (ctx, "\"%s\": the prefix length must be a decimal number", s);
        plen = plen * 10 + (unsigned) (digits [i] - '0');
    }
    unsigned max = family == 4? 32: 128;
    if (plen > max)
        return s_fail (ctx, "\"%s\": the prefix length must be 0 to %u", s, max);
    size_t n = family == 4? 4: 16;
    for (size_t i = 0; i < n; i++) {          //  host bits off
        unsigned bits = plen > 8 * i? plen - 8 * (unsigned) i: 0;
        if (bits < 8)
            addr [i] &= (uint8_t) (0xFF00u >> bits);
    }
    uint8_t *key = s_alloc (ctx->arena, 1 + n);
    if (!key)
        return s_oom (ctx);
    key [0] = (uint8_t) plen;
    memcpy (key + 1, addr, n);
    alt->op = ZB_OP_CIDR;
    alt->family = (uint8_t) family;
    alt->key = (const char *) key;
    alt->key_len = 1 + n;
    return 0;
}

//  "numeric": [op, n] or [">"/">=", lo, "<"/"<=", hi]
static int
s_numeric (s_ctx_t *ctx, json_object *json, zb_alt_t *alt)
{
    static const char *usage = "must be [op, number] (op one of =, <, <=, >, >=) or a range "
                               "[\">\" or \">=\", number, \"<\" or \"<=\", number]";
    if (!json_object_is_type (json, json_type_array))
        return s_fail (ctx, "%s (got %s)", usage, s_json_type (json));
    size_t n = json_object_array_length (json);
    if (n != 2 && n != 4)
        return s_fail (ctx, "%s (got an array of %zu)", usage, n);
    const char *ops [2] = { NULL, NULL };
    zb_num_t nums [2];
    for (size_t i = 0; i < n; i += 2) {
        json_object *op = json_object_array_get_idx (json, i);
        json_object *num = json_object_array_get_idx (json, i + 1);
        size_t saved = s_push_index (ctx, i);
        if (!json_object_is_type (op, json_type_string)) {
            s_fail (ctx, "must be a comparison operator: \"=\", \"<\", \"<=\", \">\" or \">=\" (got %s)",
                    s_json_type (op));
            return -1;
        }
        const char *o = json_object_get_string (op);
        if (strcmp (o, "=") && strcmp (o, "<") && strcmp (o, "<=") && strcmp (o, ">") && strcmp (o, ">="))
            return s_fail (ctx, "unknown comparison operator \"%s\" (use =, <, <=, >, >=)", o);
        s_pop (ctx, saved);
        saved = s_push_index (ctx, i + 1);
        if (!s_is_number (num))
            return s_fail (ctx, "must be a number (got %s)", s_json_type (num));
        s_pop (ctx, saved);
        ops [i / 2] = o;
        nums [i / 2] = s_json_num (num);
    }
    alt->op = ZB_OP_NUMERIC;
    const char *o = ops [0];
    if (n == 2) {
        if (o [0] == '=') {
            alt->has_lo = alt->has_hi = alt->lo_incl = alt->hi_incl = true;
            alt->lo = alt->hi = nums [0];
        }
        else
        if (o [0] == '<') {
            alt->has_hi = true;
            alt->hi_incl = o [1] == '=';
            alt->hi = nums [0];
        }
        else {
            alt->has_lo = true;
            alt->lo_incl = o [1] == '=';
            alt->lo = nums [0];
        }
        return 0;
    }
    if (o [0] != '>') {
        size_t saved = s_push_index (ctx, 0);
        s_fail (ctx, "a range starts with its lower bound: \">\" or \">=\" (got \"%s\")", o);
        s_pop (ctx, saved);
        return -1;
    }
    if (ops [1][0] != '<') {
        size_t saved = s_push_index (ctx, 2);
        s_fail (ctx, "the second bound of a range is the upper one: \"<\" or \"<=\" (got \"%s\")", ops [1]);
        s_pop (ctx, saved);
        return -1;
    }
    if (zb_num_cmp (&nums [0], &nums [1]) >= 0) {
        char lo [40], hi [40];
        zb_num_text (&nums [0], lo, sizeof (lo));
        zb_num_text (&nums [1], hi, sizeof (hi));
        return s_fail (ctx, "the lower bound %s must be less than the upper bound %s", lo, hi);
    }
    alt->has_lo = alt->has_hi = true;
    alt->lo_incl = o [1] == '=';
    alt->hi_incl = ops [1][1] == '=';
    alt->lo = nums [0];
    alt->hi = nums [1];
    return 0;
}

//  "prefix" / "suffix": a string, or {"equals-ignore-case": string}
static int
s_affix (s_ctx_t *ctx, json_object *json, zb_alt_t *alt, bool prefix)
{
    const char *usage = "must be a string or {\"equals-ignore-case\": string}";
    size_t len;
    if (json_object_is_type (json, json_type_string)) {
        const char *s = s_json_str (json, &len);
        alt->op = prefix? ZB_OP_PREFIX: ZB_OP_SUFFIX;
        alt->key = s_strndup (ctx->arena, s, len);
        alt->key_len = len;
        return alt->key? 0: s_oom (ctx);
    }
    if (!json_object_is_type (json, json_type_object))
        return s_fail (ctx, "%s (got %s)", usage, s_json_type (json));
    if (json_object_object_length (json) != 1)
        return s_fail (ctx, "%s (got an object with %d keys)", usage, json_object_object_length (json));
    json_object_object_foreach (json, key, value) {
        if (strcmp (key, "equals-ignore-case"))
            return s_fail (ctx, "%s (got key \"%s\")", usage, key);
        size_t saved = s_push_key (ctx, key, strlen (key));
        if (!json_object_is_type (value, json_type_string))
            return s_fail (ctx, "must be a string (got %s)", s_json_type (value));
        s_pop (ctx, saved);
        const char *s = s_json_str (value, &len);
        alt->op = prefix? ZB_OP_PREFIX_CI: ZB_OP_SUFFIX_CI;
        alt->key = s_folded (ctx, s, len, &alt->key_len);
        if (!alt->key)
            return s_oom (ctx);
    }
    return 0;
}

//  One exclusion of anything-but's object form from a JSON string.
static int
s_exclusion (s_ctx_t *ctx, const char *op, json_object *json, zb_excl_t *excl)
{
    if (!strcmp (op, "wildcard")) {
        excl->kind = ZB_EXCL_WILDCARD;
        excl->wild = s_wildcard (ctx, json);
        return excl->wild? 0: -1;
    }
    size_t len;
    const char *s = s_json_str (json, &len);
    if (!strcmp (op, "equals-ignore-case")) {
        excl->kind = ZB_EXCL_EQUALS_CI;
        excl->key = s_folded (ctx, s, len, &excl->key_len);
    }
    else {
        excl->kind = !strcmp (op, "prefix")? ZB_EXCL_PREFIX: ZB_EXCL_SUFFIX;
        excl->key = s_strndup (ctx->arena, s, len);
        excl->key_len = len;
    }
    return excl->key? 0: s_oom (ctx);
}

static int
s_anything_but (s_ctx_t *ctx, json_object *json, zb_alt_t *alt)
{
    const char *usage = "must be a string, a number, a list of strings or of numbers, "
                        "or an object with one of prefix, suffix, equals-ignore-case, wildcard";
    alt->op = ZB_OP_ANYTHING_BUT;
    json_type type = json_object_get_type (json);
    if (type == json_type_string || type == json_type_int || type == json_type_double) {
        alt->excl = s_calloc (ctx->arena, 1, sizeof (zb_excl_t));
        if (!alt->excl)
            return s_oom (ctx);
        alt->n_excl = 1;
        alt->excl->kind = ZB_EXCL_VALUE;
        s_exact_key (ctx, json, &alt->excl->vkind, &alt->excl->key, &alt->excl->key_len);
        return alt->excl->key? 0: s_oom (ctx);
    }
    if (type == json_type_array) {
        size_t n = json_object_array_length (json);
        if (n == 0)
            return s_fail (ctx, "empty list: name at least one value");
        alt->excl = s_calloc (ctx->arena, n, sizeof (zb_excl_t));
        if (!alt->excl)
            return s_oom (ctx);
        alt->n_excl = n;
        bool strings = json_object_is_type (json_object_array_get_idx (json, 0), json_type_string);
        for (size_t i = 0; i < n; i++) {
            json_object *value = json_object_array_get_idx (json, i);
            if (strings? !json_object_is_type (value, json_type_string): !s_is_number (value)) {
                size_t saved = s_push_index (ctx, i);
                s_fail (ctx, "an anything-but list holds only strings or only numbers (got %s)",
                        s_json_type (value));
                s_pop (ctx, saved);
                return -1;
            }
            alt->excl [i].kind = ZB_EXCL_VALUE;
            s_exact_key (ctx, value, &alt->excl [i].vkind, &alt->excl [i].key, &alt->excl [i].key_len);
            if (!alt->excl [i].key)
                return s_oom (ctx);
        }
        return 0;
    }
    if (type != json_type_object)
        return s_fail (ctx, "%s (got %s)", usage, s_json_type (json));
    if (json_object_object_length (json) != 1)
        return s_fail (ctx, "%s (got an object with %d keys)", usage, json_object_object_length (json));
    json_object_object_foreach (json, op, value) {
        if (strcmp (op, "prefix") && strcmp (op, "suffix") && strcmp (op, "equals-ignore-case")
        &&  strcmp (op, "wildcard"))
            return s_fail (ctx, "unknown anything-but operator \"%s\" (use prefix, suffix, "
                                "equals-ignore-case or wildcard)", op);
        size_t saved = s_push_key (ctx, op, strlen (op));
        if (json_object_is_type (value, json_type_string)) {
            alt->excl = s_calloc (ctx->arena, 1, sizeof (zb_excl_t));
            if (!alt->excl)
                return s_oom (ctx);
            alt->n_excl = 1;
            if (s_exclusion (ctx, op, value, alt->excl))
                return -1;
        }
        else
        if (json_object_is_type (value, json_type_array)) {
            size_t n = json_object_array_length (value);
            if (n == 0)
                return s_fail (ctx, "empty list: name at least one string");
            alt->excl = s_calloc (ctx->arena, n, sizeof (zb_excl_t));
            if (!alt->excl)
                return s_oom (ctx);
            alt->n_excl = n;
            for (size_t i = 0; i < n; i++) {
                json_object *item = json_object_array_get_idx (value, i);
                size_t saved_i = s_push_index (ctx, i);
                if (!json_object_is_type (item, json_type_string))
                    return s_fail (ctx, "must be a string (got %s)", s_json_type (item));
                if (s_exclusion (ctx, op, item, &alt->excl [i]))
                    return -1;
                s_pop (ctx, saved_i);
            }
        }
        else
            return s_fail (ctx, "must be a string or a list of strings (got %s)", s_json_type (value));
        s_pop (ctx, saved);
    }
    return 0;
}

//  One element of a leaf array (the path names it).
static int
s_alternative (s_ctx_t *ctx, json_object *json, zb_alt_t *alt)
{
    json_type type = json_object_get_type (json);
    if (type == json_type_array)
        return s_fail (ctx, "a match value cannot be an array");
    if (type != json_type_object) {
        alt->op = ZB_OP_EXACT;
        s_exact_key (ctx, json, &alt->vkind, &alt->key, &alt->key_len);
        return alt->key? 0: s_oom (ctx);
    }
    int n = json_object_object_length (json);
    if (n != 1)
        return s_fail (ctx, "a match object has exactly one operator (got %d keys)", n);
    int rc = 0;
    json_object_object_foreach (json, op, value) {
        size_t saved = s_push_key (ctx, op, strlen (op));
        if (!strcmp (op, "prefix"))
            rc = s_affix (ctx, value, alt, true);
        else
        if (!strcmp (op, "suffix"))
            rc = s_affix (ctx, value, alt, false);
        else
        if (!strcmp (op, "equals-ignore-case")) {
            if (!json_object_is_type (value, json_type_string))
                return s_fail (ctx, "must be a string (got %s)", s_json_type (value));
            size_t len;
            const char *s = s_json_str (value, &len);
            alt->op = ZB_OP_EQUALS_CI;
            alt->key = s_folded (ctx, s, len, &alt->key_len);
            rc = alt->key? 0: s_oom (ctx);
        }
        else
        if (!strcmp (op, "wildcard")) {
            alt->op = ZB_OP_WILDCARD;
            alt->wild = s_wildcard (ctx, value);
            rc = alt->wild? 0: -1;
        }
        else
        if (!strcmp (op, "anything-but"))
            rc = s_anything_but (ctx, value, alt);
        else
        if (!strcmp (op, "numeric"))
            rc = s_numeric (ctx, value, alt);
        else
        if (!strcmp (op, "cidr"))
            rc = s_cidr (ctx, value, alt);
        else
        if (!strcmp (op, "exists")) {
            if (!json_object_is_type (value, json_type_boolean))
                return s_fail (ctx, "must be true or false (got %s)", s_json_type (value));
            alt->op = json_object_get_boolean (value)? ZB_OP_EXISTS: ZB_OP_ABSENT;
        }
        else {
            s_pop (ctx, saved);
            char shown [ZB_QUOTE_MAX];
            s_quote (op, strlen (op), shown, sizeof shown);
            return s_fail (ctx, "unknown operator \"%s\" (known: prefix, suffix, equals-ignore-case, "
                                "wildcard, anything-but, numeric, cidr, exists)", shown);
        }
        if (rc == 0)
            s_pop (ctx, saved);
    }
    return rc;
}

//  A leaf array at the current path: one field.
static int
s_field (s_ctx_t *ctx, json_object *json, s_node_t *node)
{
    size_t n = json_object_array_length (json);
    if (n == 0)
        return s_fail (ctx, "empty array: list at least one value to match");
    if (ctx->n_fields == ctx->cap_fields) {
        size_t cap = ctx->cap_fields? 2 * ctx->cap_fields: 8;
        zb_field_t *fields = realloc (ctx->fields, cap * sizeof (zb_field_t));
        if (!fields)
            return s_oom (ctx);
        ctx->fields = fields;
        ctx->cap_fields = cap;
    }
    if (node->n_fields == node->cap_fields) {
        size_t cap = node->cap_fields? 2 * node->cap_fields: 8;
        uint32_t *list = s_alloc (&ctx->scratch, cap * sizeof (uint32_t));
        if (!list)
            return s_oom (ctx);
        if (node->n_fields)
            memcpy (list, node->fields, node->n_fields * sizeof (uint32_t));
        node->fields = list;
        node->cap_fields = cap;
    }
    zb_field_t *field = &ctx->fields [ctx->n_fields];
    memset (field, 0, sizeof (*field));
    field->depth = ctx->depth;
    field->keys = s_alloc (ctx->arena, ctx->depth * sizeof (char *));
    field->key_lens = s_alloc (ctx->arena, ctx->depth * sizeof (size_t));
    field->alts = s_calloc (ctx->arena, n, sizeof (zb_alt_t));
    if (!field->keys || !field->key_lens || !field->alts)
        return s_oom (ctx);
    for (size_t d = 0; d < ctx->depth; d++) {
        field->keys [d] = s_strndup (ctx->arena, ctx->keys [d], ctx->key_lens [d]);
        field->key_lens [d] = ctx->key_lens [d];
        if (!field->keys [d])
            return s_oom (ctx);
    }
    field->n_alts = n;
    for (size_t i = 0; i < n; i++) {
        size_t saved = s_push_index (ctx, i);
        if (s_alternative (ctx, json_object_array_get_idx (json, i), &field->alts [i]))
            return -1;
        s_pop (ctx, saved);
        if (field->alts [i].op == ZB_OP_ABSENT)
            field->can_absent = true;
    }
    node->fields [node->n_fields++] = (uint32_t) ctx->n_fields++;
    return 0;
}

static int s_object (s_ctx_t *ctx, json_object *json, s_node_t *node);

static int
s_or (s_ctx_t *ctx, json_object *json, s_node_t *node)
{
    const char *usage = "must be an array of at least two objects";
    if (!json_object_is_type (json, json_type_array))
        return s_fail (ctx, "%s (got %s)", usage, s_json_type (json));
    size_t n = json_object_array_length (json);
    if (n < 2)
        return s_fail (ctx, "%s (got an array of %zu)", usage, n);
    if (node->n_ors == node->cap_ors) {
        size_t cap = node->cap_ors? 2 * node->cap_ors: 4;
        s_or_t *ors = s_alloc (&ctx->scratch, cap * sizeof (s_or_t));
        if (!ors)
            return s_oom (ctx);
        if (node->n_ors)
            memcpy (ors, node->ors, node->n_ors * sizeof (s_or_t));
        node->ors = ors;
        node->cap_ors = cap;
    }
    s_or_t *group = &node->ors [node->n_ors++];
    group->n_alts = n;
    group->alts = s_calloc (&ctx->scratch, n, sizeof (s_node_t *));
    if (!group->alts)
        return s_oom (ctx);
    for (size_t i = 0; i < n; i++) {
        json_object *alt = json_object_array_get_idx (json, i);
        size_t saved = s_push_index (ctx, i);
        if (!json_object_is_type (alt, json_type_object))
            return s_fail (ctx, "each \"$or\" alternative must be an object (got %s)", s_json_type (alt));
        group->alts [i] = s_calloc (&ctx->scratch, 1, sizeof (s_node_t));
        if (!group->alts [i])
            return s_oom (ctx);
        if (s_object (ctx, alt, group->alts [i]))
            return -1;
        s_pop (ctx, saved);
    }
    return 0;
}

//  A pattern object at the current path: its fields go into node.
static int
s_object (s_ctx_t *ctx, json_object *json, s_node_t *node)
{
    if (json_object_object_length (json) == 0)
        return s_fail (ctx, "empty object: name at least one field");
    json_object_object_foreach (json, key, value) {
        size_t key_len = strlen (key);
        size_t saved = s_push_key (ctx, key, key_len);
        if (!strcmp (key, "$or")) {
            if (s_or (ctx, value, node))
                return -1;
        }
        else
        if (json_object_is_type (value, json_type_array)
        ||  json_object_is_type (value, json_type_object)) {
            if (ctx->depth == S_MAX_DEPTH)
                return s_fail (ctx, "nested too deep");
            ctx->keys [ctx->depth] = key;
            ctx->key_lens [ctx->depth] = key_len;
            ctx->depth++;
            int rc = json_object_is_type (value, json_type_array)? s_field (ctx, value, node)
                                                                   : s_object (ctx, value, node);
            ctx->depth--;
            if (rc)
                return -1;
        }
        else
            return s_fail (ctx, "must be an array of values to match or an object of fields (got %s)",
                           s_json_type (value));
        s_pop (ctx, saved);
    }
    return 0;
}

//  Number of branches node expands to, saturating above the limit.
static size_t
s_count (const s_node_t *node)
{
    size_t total = 1;
    for (size_t g = 0; g < node->n_ors; g++) {
        size_t sum = 0;
        for (size_t a = 0; a < node->ors [g].n_alts && sum <= ZB_PATTERN_MAX_COMBINATIONS; a++)
            sum += s_count (node->ors [g].alts [a]);
        total *= sum;
        if (total > ZB_PATTERN_MAX_COMBINATIONS)
            return ZB_PATTERN_MAX_COMBINATIONS + 1;
    }
    return total;
}

//  A list of branches, each a list of field indexes (in the scratch arena).
typedef struct {
    uint32_t **fields;
    size_t *n_fields;
    size_t n;
} s_branches_t;

static int
s_expand (s_ctx_t *ctx, const s_node_t *node, s_branches_t *out)
{
    size_t count = s_count (node);
    out->fields = s_alloc (&ctx->scratch, count * sizeof (uint32_t *));
    out->n_fields = s_alloc (&ctx->scratch, count * sizeof (size_t));
    if (!out->fields || !out->n_fields)
        return s_oom (ctx);
    out->n = 1;
    out->fields [0] = node->fields;
    out->n_fields [0] = node->n_fields;
    for (size_t g = 0; g < node->n_ors; g++) {
        //  All the alternatives of the group, then the product with out
        s_branches_t alts = { NULL, NULL, 0 };
        size_t cap = 0;
        for (size_t a = 0; a < node->ors [g].n_alts; a++)
            cap += s_count (node->ors [g].alts [a]);
        alts.fields = s_alloc (&ctx->scratch, cap * sizeof (uint32_t *));
        alts.n_fields = s_alloc (&ctx->scratch, cap * sizeof (size_t));
        if (!alts.fields || !alts.n_fields)
            return s_oom (ctx);
        for (size_t a = 0; a < node->ors [g].n_alts; a++) {
            s_branches_t sub;
            if (s_expand (ctx, node->ors [g].alts [a], &sub))
                return -1;
            memcpy (alts.fields + alts.n, sub.fields, sub.n * sizeof (uint32_t *));
            memcpy (alts.n_fields + alts.n, sub.n_fields, sub.n * sizeof (size_t));
            alts.n += sub.n;
        }
        s_branches_t product = { NULL, NULL, 0 };
        product.fields = s_alloc (&ctx->scratch, out->n * alts.n * sizeof (uint32_t *));
        product.n_fields = s_alloc (&ctx->scratch, out->n * alts.n * sizeof (size_t));
        if (!product.fields || !product.n_fields)
            return s_oom (ctx);
        for (size_t i = 0; i < out->n; i++)
            for (size_t j = 0; j < alts.n; j++) {
                size_t n = out->n_fields [i] + alts.n_fields [j];
                uint32_t *list = s_alloc (&ctx->scratch, (n? n: 1) * sizeof (uint32_t));
                if (!list)
                    return s_oom (ctx);
                if (out->n_fields [i])
                    memcpy (list, out->fields [i], out->n_fields [i] * sizeof (uint32_t));
                if (alts.n_fields [j])
                    memcpy (list + out->n_fields [i], alts.fields [j], alts.n_fields [j] * sizeof (uint32_t));
                product.fields [product.n] = list;
                product.n_fields [product.n++] = n;
            }
        *out = product;
    }
    return 0;
}

zb_program_t *
zb_program_compile (const char *name, const char *text, size_t len, size_t max_size,
                    char *err, size_t errlen)
{
    if (err && errlen)
        err [0] = 0;
    if (max_size && len > max_size) {
        if (err && errlen)
            snprintf (err, errlen, "pattern: %zu bytes, more than the maximum of %zu", len, max_size);
        return NULL;
    }
    char json_err [200];
    json_object *json = zb_json_parse (text, len, json_err, sizeof (json_err));
    if (!json) {
        if (err && errlen)
            snprintf (err, errlen, "pattern: invalid JSON: %s", json_err);
        return NULL;
    }
    zb_arena_t *arena = calloc (1, sizeof (zb_arena_t));
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    zb_program_t *self = NULL;
    if (!arena || !ctx) {
        if (err && errlen)
            snprintf (err, errlen, "out of memory");
        goto done;
    }
    ctx->arena = arena;
    ctx->err = err;
    ctx->errlen = errlen;
    if (!json_object_is_type (json, json_type_object)) {
        s_fail (ctx, "must be a JSON object (got %s)", s_json_type (json));
        goto done;
    }
    s_node_t root;
    memset (&root, 0, sizeof (root));
    if (s_object (ctx, json, &root))
        goto done;
    if (s_count (&root) > ZB_PATTERN_MAX_COMBINATIONS) {
        s_fail (ctx, "more than %d combinations of \"$or\" alternatives", ZB_PATTERN_MAX_COMBINATIONS);
        goto done;
    }
    s_branches_t branches;
    if (s_expand (ctx, &root, &branches))
        goto done;

    self = s_calloc (arena, 1, sizeof (zb_program_t));
    if (!self) {
        s_oom (ctx);
        goto done;
    }
    self->arena = arena;
    self->name = s_strndup (arena, name, strlen (name));
    self->fields = s_calloc (arena, ctx->n_fields, sizeof (zb_field_t));
    self->n_fields = ctx->n_fields;
    self->n_branches = branches.n;
    self->branch_off = s_calloc (arena, branches.n + 1, sizeof (uint32_t));
    size_t total = 0;
    for (size_t b = 0; b < branches.n; b++)
        total += branches.n_fields [b];
    self->branch_fields = s_calloc (arena, total? total: 1, sizeof (uint32_t));
    if (!self->name || !self->fields || !self->branch_off || !self->branch_fields) {
        s_oom (ctx);
        self = NULL;
        goto done;
    }
    memcpy (self->fields, ctx->fields, ctx->n_fields * sizeof (zb_field_t));
    total = 0;
    for (size_t b = 0; b < branches.n; b++) {
        self->branch_off [b] = (uint32_t) total;
        if (branches.n_fields [b])
            memcpy (self->branch_fields + total, branches.fields [b], branches.n_fields [b] * sizeof (uint32_t));
        total += branches.n_fields [b];
    }
    self->branch_off [branches.n] = (uint32_t) total;
    arena = NULL;               //  the program has it

done:
    if (ctx) {
        s_arena_free (&ctx->scratch);
        free (ctx->fields);
        free (ctx);
    }
    if (arena) {
        s_arena_free (arena);
        free (arena);
    }
    json_object_put (json);
    return self;
}

void
zb_program_destroy (zb_program_t **self_p)
{
    assert (self_p);
    zb_program_t *self = *self_p;
    if (self) {
        zb_arena_t *arena = self->arena;
        s_arena_free (arena);
        free (arena);
        *self_p = NULL;
    }
}
