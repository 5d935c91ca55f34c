/*  pattern_internal.h - what pattern_compile.c (JSON text -> one pattern's
    program), pattern.c (the index of all programs, matching) and
    pattern_fold.c (case folding) share. Not part of the public API. */
#ifndef ZB_PATTERN_INTERNAL_H_INCLUDED
#define ZB_PATTERN_INTERNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  --------------------------------------------------------------------------
//  Numbers, canonical: one representation per value, so that equal values
//  have equal keys (300, 300.0 and 3.0e2 are all INT 300). Integral doubles
//  in the int64 or uint64 range become INT/UINT; UINT only above INT64_MAX.

typedef enum { ZB_NUM_INT, ZB_NUM_UINT, ZB_NUM_DOUBLE } zb_num_kind_t;

typedef struct {
    uint8_t kind;               //  zb_num_kind_t
    union {
        int64_t i;
        uint64_t u;
        double d;
    } v;
} zb_num_t;

zb_num_t zb_num_from_int (int64_t value);
zb_num_t zb_num_from_uint (uint64_t value);
zb_num_t zb_num_from_double (double value);     //  value must not be NaN

//  Exact comparison by value: -1, 0, 1.
int zb_num_cmp_mixed (const zb_num_t *a, const zb_num_t *b);

static inline int
zb_num_cmp (const zb_num_t *a, const zb_num_t *b)
{
    if (a->kind == b->kind) {
        if (a->kind == ZB_NUM_DOUBLE)
            return (a->v.d > b->v.d) - (a->v.d < b->v.d);
        if (a->kind == ZB_NUM_INT)
            return (a->v.i > b->v.i) - (a->v.i < b->v.i);
        return (a->v.u > b->v.u) - (a->v.u < b->v.u);
    }
    return zb_num_cmp_mixed (a, b);
}

#define ZB_NUM_KEY_SIZE 9
//  The 9-byte hash key of a canonical number.
void zb_num_key (const zb_num_t *num, uint8_t key [ZB_NUM_KEY_SIZE]);

//  The number as text, for error messages.
void zb_num_text (const zb_num_t *num, char *out, size_t size);

//  --------------------------------------------------------------------------
//  Case folding (pattern_fold.c): Unicode simple case folding of UTF-8.
//  Bytes that are not valid UTF-8 are copied unchanged. The result can be
//  longer than the input (U+023A, 2 bytes, folds to U+2C65, 3 bytes): dst
//  needs ZB_FOLD_MAX (len) bytes. Returns the length written.

#define ZB_FOLD_MAX(len) ((len) * 3 / 2 + 4)
size_t zb_fold_utf8 (const char *src, size_t len, char *dst);

//  The simple case folding of one code point (itself when it has none).
uint32_t zb_fold_code_point (uint32_t cp);

//  --------------------------------------------------------------------------
//  Wildcards: literal segments around each '*', escapes resolved.

typedef struct {
    const char *text;           //  all segments, back to back
    uint32_t *seg_off;          //  n_segs + 1 offsets into text
    uint32_t n_segs;            //  number of '*' + 1
} zb_wild_t;

bool zb_wild_match (const zb_wild_t *wild, const char *s, size_t len);

//  --------------------------------------------------------------------------
//  One pattern, compiled (pattern_compile.c): its fields (one per leaf array,
//  each with a path from the event root and the alternatives of its array)
//  and its branches (the $or alternatives multiplied out), each a list of
//  field indexes that must all match.

typedef enum {
    ZB_OP_EXACT,            //  key/key_len: typed exact value (vkind)
    ZB_OP_PREFIX,           //  text
    ZB_OP_PREFIX_CI,        //  text, folded
    ZB_OP_SUFFIX,
    ZB_OP_SUFFIX_CI,
    ZB_OP_EQUALS_CI,        //  text, folded
    ZB_OP_WILDCARD,         //  wild
    ZB_OP_NUMERIC,          //  lo/hi
    ZB_OP_CIDR,             //  key: prefix length byte + masked address
    ZB_OP_EXISTS,           //  {"exists": true}
    ZB_OP_ABSENT,           //  {"exists": false}
    ZB_OP_ANYTHING_BUT,     //  excl/n_excl
} zb_op_t;

//  Kinds of exact values (and of anything-but exclusions)
typedef enum {
    ZB_VAL_STR,             //  key: the string bytes
    ZB_VAL_NUM,             //  key: zb_num_key
    ZB_VAL_LIT,             //  key: one byte, 't', 'f' or 'n'
} zb_vkind_t;

typedef enum {
    ZB_EXCL_VALUE,          //  vkind + key: one exact value
    ZB_EXCL_PREFIX,         //  text
    ZB_EXCL_SUFFIX,         //  text
    ZB_EXCL_EQUALS_CI,      //  text, folded
    ZB_EXCL_WILDCARD,       //  wild
} zb_excl_kind_t;

typedef struct {
    uint8_t kind;           //  zb_excl_kind_t
    uint8_t vkind;          //  for ZB_EXCL_VALUE
    const char *key;
    size_t key_len;
    zb_wild_t *wild;
} zb_excl_t;

typedef struct {
    uint8_t op;             //  zb_op_t
    uint8_t vkind;          //  for ZB_OP_EXACT
    const char *key;        //  value bytes (see zb_op_t)
    size_t key_len;
    zb_wild_t *wild;
    //  ZB_OP_NUMERIC: an interval; a missing bound is infinite
    bool has_lo, lo_incl, has_hi, hi_incl;
    zb_num_t lo, hi;
    //  ZB_OP_CIDR
    uint8_t family;         //  4 or 6
    //  ZB_OP_ANYTHING_BUT
    zb_excl_t *excl;
    size_t n_excl;
} zb_alt_t;

typedef struct {
    const char **keys;      //  path from the event root (arrays are crossed)
    size_t *key_lens;
    size_t depth;
    zb_alt_t *alts;
    size_t n_alts;
    bool can_absent;        //  one alternative is {"exists": false}
} zb_field_t;

typedef struct zb_arena_t zb_arena_t;

typedef struct {
    zb_arena_t *arena;      //  owns everything below
    char *name;
    zb_field_t *fields;
    size_t n_fields;
    uint32_t *branch_fields;    //  the fields of branch b are
    uint32_t *branch_off;       //  branch_fields [branch_off [b] .. branch_off [b + 1])
    size_t n_branches;
} zb_program_t;

//  Compile one pattern; NULL with "place: reason" in err when it is invalid
//  (or "out of memory"). max_size 0: no limit.
zb_program_t *zb_program_compile (const char *name, const char *json, size_t len,
                                  size_t max_size, char *err, size_t errlen);
void zb_program_destroy (zb_program_t **self_p);

#endif
