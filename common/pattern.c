/*  pattern.c - a set of named event patterns compiled into one index, and
    matching of msgpack events against all of them at once.

    COMPILED FORM
    Each pattern is compiled on its own (pattern_compile.c) into fields and
    branches: a field is one leaf array of the pattern (a path from the event
    root, e.g. detail.sales, and the alternatives listed in the array); a
    branch is one way the pattern can match, the $or alternatives multiplied
    out (at most 1000), as the set of fields that must all hold.

    The index turns all of them into one structure. Identical fields (same
    path, same alternatives; "detail-type": ["sales-events"] in a thousand
    rules) become one CONDITION; every alternative of a condition gets an ALT
    id; a branch is a list of condition ids. The structure:

    - a trie of paths: (parent path, key) -> path id, in a hash table, with
      per path a bitmap of its child keys' lengths. The event walk follows it
      and skips every key and subtree no pattern names;
    - one hash table of (path, kind, key bytes) -> list of alt ids, for
      every deterministic operator:
        exact string / number / true,false,null      key: the value (numbers
                                                     canonical, so 300 == 3e2)
        equals-ignore-case                           key: the folded string
        prefix, prefix ignore-case, wildcard with a literal start
                                                     key: the prefix; looked up
                                                     once per distinct prefix
                                                     length of that path
        suffix, suffix ignore-case, wildcard with a literal end (no literal
                                                     start): the suffix, hashed
                                                     from its end
        cidr                                         key: prefix length +
                                                     masked address, looked up
                                                     once per distinct length
        anything-but exclusions (values, prefixes, suffixes, ignore-case)
      Lookups hash the event value once per kind (prefix hashes are the
      running FNV-1a state at each needed length), so their cost depends on
      the value and on the number of distinct lengths, never on the number
      of patterns;
    - per path, the (eager, see LAZY) numeric ranges: the distinct bounds cut the number line
      into atoms (-inf,b0) [b0] (b0,b1) ... [bn] (bn,+inf); a value finds its
      atom by binary search, then either reads the atom's list of ranges
      (when the ranges overlap little, so the lists stay small) or collects
      them on a root-to-leaf walk of a segment tree, where each range is
      stored in O(log n) nodes;
    - per path, three plain lists: exists:true alts, (eager) anything-but
      alts, and wildcards with neither a literal start nor end (checked one
      by one);
    - ANCHORS: each branch is filed under one of its conditions that need a
      value, the one fewest branches share, operators that match nearly
      anything (exists, anything-but, "*") last, ranges before them.
      Branches with nothing but exists:false conditions are filed apart, as
      always candidates;
    - LAZY conditions: the anything-but and numeric alts of a condition no
      branch is anchored on are not in the index at all (s_lazy).

    MATCHING
    The event is walked once. Each scalar met at a known path is looked up
    as above; every alt found is a hit on its condition, recorded (once per
    scope) with the event SCOPE the value sits in. anything-but (eager):
    the exclusions found for the value stamp their alts, then the path's
    anything-but alts not stamped are hits; those conditions anchor
    branches, which are then candidates (they nearly all match). At a path
    with LAZY alts the walk only keeps the values met, and a candidate
    branch that needs a lazy condition works its hits out then, testing
    its alts on those values (s_materialize): ten thousand anything-but
    filters or open ranges ("total" > X) beside narrower fields cost
    nothing to an event none of those fields selects, and a step per
    candidate otherwise. Then the branches anchored on a
    hit condition, and the always candidates, are verified: every other
    condition that needs a value was hit, no exists:false condition saw a
    value, arrays are consistent. A pattern is reported once however many
    of its branches match. The work is proportional to the hits and to the
    branches anchored on them, so to the patterns that (nearly) match, not to
    the patterns there are. Per-event state is reset by generation stamps,
    never cleared, and its buffers are kept from event to event.

    ARRAY CONSISTENCY
    A scope is created for each object met as an element of an event array
    (through any number of nested arrays); it records its trail, the (array,
    index) pairs from the root down to it. Two values can be used in one
    match unless their trails go through the same array at different
    indexes. Scalars directly in an array (resources: ["a", "b"]) stay in
    the enclosing scope: they are alternatives for one field, never in
    conflict. When the event has no scopes, verification is the checks
    above; otherwise a small backtracking search picks one hit scope per
    condition, pairwise compatible, and checks that each exists:false
    condition sees no value in a scope compatible with the chosen ones.

    The walk reads either a decoded msgpack_object (zb_patterns_match) or
    the packed bytes in place (zb_patterns_match_packed: subtrees no
    pattern names are skipped header by header, never decoded; scalars
    become msgpack_objects on the stack, as msgpack_unpack makes them).

    The index is rebuilt from the compiled patterns on the first match after
    any add or remove. */

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>

#include "pattern.h"
#include "pattern_internal.h"

//  --------------------------------------------------------------------------
//  Kinds of keys in the value table

enum {
    K_STR, K_NUM, K_LIT,                //  exact values
    K_EQ_CI,                            //  folded string
    K_PRE, K_PRE_CI, K_SUF, K_SUF_CI,   //  affixes
    K_CIDR4, K_CIDR6,
    K_AB_STR, K_AB_NUM, K_AB_EQ_CI, K_AB_PRE, K_AB_SUF,     //  exclusions
    //  Per-path lists (key ""): alt ids, or distinct lengths
    K_EXISTS, K_AB, K_WILD,
    K_LEN_PRE, K_LEN_PRE_CI, K_LEN_SUF, K_LEN_SUF_CI, K_LEN_AB_PRE, K_LEN_AB_SUF,
    K_LEN_CIDR4, K_LEN_CIDR6,
    K_COUNT
};

//  Path flags
#define P_CHILDREN      0x0001          //  some pattern names a key below
#define P_LEAF          0x0002          //  some field ends here
#define P_OCC           0x0004          //  an exists:false needs this path's values
#define P_STR           0x0008          //  exact strings
#define P_NUM           0x0010
#define P_LIT           0x0020
#define P_EQ_CI         0x0040          //  equals-ignore-case values
#define P_AB_STR        0x0080          //  string exclusions of some kind
#define P_AB_NUM        0x0100
#define P_RANGES        0x0200
#define P_STRING_OPS    0x0400          //  prefix, suffix, wildcard, cidr
#define P_AB_EQ_CI      0x0800          //  anything-but equals-ignore-case
#define P_CI_AFFIX      0x1000          //  prefix/suffix ignoring case
#define P_KEEP          0x2000          //  lazy alts: keep the values met here

typedef struct {
    const uint32_t *v;
    uint32_t n;
} s_list_t;

//  Numeric ranges of one path. The distinct bounds cut the number line
//  into atoms; "direct": a list per atom (when the ranges overlap little),
//  otherwise a segment tree over the atoms, lists per tree node.
typedef struct {
    zb_num_t *bounds;
    double *approx;             //  the bounds as doubles, for a fast first search
    uint32_t n_bounds;
    uint32_t n_atoms;
    bool direct;
    uint32_t *node_off;         //  direct: n_atoms + 1; tree: 4 * n_atoms + 1
    uint32_t *node_alts;
} s_segtree_t;

typedef struct {
    uint32_t parent;
    uint32_t flags;
    uint64_t kid_bloom;         //  bit s_kid_bit (head, len) of each child key
    uint64_t child_lens;        //  bit n: a child key of n bytes (63: 63 or more)
    uint32_t kid_off;           //  up to S_SMALL_KIDS children: kids [kid_off ..
    uint32_t n_kids;            //  kid_off + n_kids), else the children table
    const char *key;
    size_t key_len;
    s_list_t exists, ab, wild;  //  ab: the eager anything-but alts
    s_list_t pre, pre_ci, suf, suf_ci, ab_pre, ab_suf, cidr4, cidr6;
    s_segtree_t ranges;
} s_path_t;

typedef struct {
    uint64_t hash;
    const char *key;
    uint32_t len;
    uint32_t path;
    uint32_t list_off;
    uint32_t list_n;
    uint8_t kind;
    uint8_t used;
} s_entry_t;

typedef struct {
    uint64_t hash;
    uint32_t parent;
    uint32_t child;             //  0: empty slot (the root is never a child)
} s_child_t;

//  A child of a path with few children: compared in place, no hashing
#define S_SMALL_KIDS 8
typedef struct {
    uint64_t head;              //  the key's first 8 bytes, zero-padded
    uint32_t len;
    uint32_t child;
} s_kid_t;

typedef struct {
    uint32_t cond;
    const zb_wild_t *wild;      //  a wildcard to check before the hit counts
    const zb_excl_t *excl;      //  anything-but with wildcard exclusions
    uint32_t n_excl;
    const zb_alt_t *src;        //  anything-but and numeric: the compiled alt
    bool ab;                    //  an anything-but
    bool range;                 //  a numeric range
    bool lazy;                  //  either, of a condition that anchors nothing
} s_alt_t;

//  A condition: one field of one or more branches (identical fields of all
//  patterns are one condition), hit when one of its alternatives matches.
typedef struct {
    uint32_t path;
    bool can_absent;            //  {"exists": false} is one of the alternatives
    uint32_t n_refs;            //  branches that use it
    uint32_t breadth;           //  how much it tends to match: see s_breadth
    uint32_t alt_first;         //  its alts: [alt_first, alt_first + alt_n)
    uint32_t alt_n;
    bool has_ab;                //  an alternative is an anything-but
    bool lazy;                  //  it has lazy alts (anchors no branch)
} s_cond_t;

//  What matching reads and writes of a condition, in one place (one cache
//  line, where s_cond_t's fields and separate arrays took several)
typedef struct {
    uint64_t stamp;             //  gen: hit by this event
    int32_t head;               //  its hits: list in hits
    uint32_t last;              //  scope of its last hit
    uint64_t mat_stamp;         //  lazy: hits worked out
    uint32_t path;
    bool anchors;               //  some branch is anchored on it
    bool lazy;                  //  s_cond_t.lazy
    bool can_absent;            //  s_cond_t.can_absent
} s_cond_state_t;

typedef struct {
    uint32_t pattern;
    uint32_t first;             //  conditions: branch_conds [first, first + n),
    uint32_t n;                 //  the n_must that need a value first
    uint32_t n_must;
} s_branch_t;

typedef struct {
    //  Paths
    s_path_t *paths;
    uint32_t n_paths, cap_paths;
    s_child_t *children;
    uint32_t children_mask;     //  capacity - 1
    uint32_t n_children;
    s_kid_t *kids;
    //  Values
    s_entry_t *entries;
    uint32_t *tags;             //  per slot of entries: 0 empty, else s_tag (hash)
    uint32_t entries_mask;
    uint32_t *lists;
    //  Ids
    s_alt_t *alts;
    uint32_t n_alts, cap_alts;
    s_cond_t *conds;
    uint32_t n_conds, cap_conds;
    s_branch_t *branches;
    uint32_t n_branches, cap_branches;
    uint32_t *branch_conds;
    uint32_t n_branch_conds, cap_branch_conds;
    uint32_t *anchored_off;     //  branches anchored on condition c:
    uint32_t *anchored;         //  anchored [anchored_off [c] .. anchored_off [c + 1])
    uint32_t *always;           //  branches without a condition that needs a value
    uint32_t n_always;
    const char **names;
    uint32_t n_patterns;
    //  Per-event state, by generation stamp
    s_cond_state_t *cs;         //  per condition
    uint32_t *alt_cond;         //  alts [alt].cond, dense: s_hit reads only that;
                                //  S_ALT_WILD: the alt has a wildcard to check
    uint64_t *pattern_stamp;
    uint64_t *path_stamp;       //  P_OCC paths: a value was seen
    int32_t *path_head;         //  their values' scopes: list in occs
    uint64_t *excl_stamp;       //  per eager anything-but alt, per value: excluded
    uint64_t *kept_stamp;       //  P_KEEP paths: the values seen,
    int32_t *kept_head;         //  a list in kept
} s_index_t;

typedef struct {
    uint32_t scope;
    int32_t next;
} s_link_t;

typedef struct {
    uint32_t off;               //  into trail, in pairs
    uint32_t len;
} s_scope_t;

//  A value met at a path with lazy alts (P_KEEP)
typedef struct {
    msgpack_object obj;         //  a copy: the packed walk's objects are on its stack
    uint32_t scope;
    int32_t next;
} s_kept_t;

#define S_MAX_WALK_DEPTH 64
#define S_ALT_WILD      0x80000000u     //  in alt_cond (conditions are fewer)

struct zb_patterns_t {
    size_t max_size;
    zb_program_t **progs;
    size_t n_progs, cap_progs;
    zhashx_t *by_name;
    bool dirty;
    s_index_t *ix;
    //  Per-event scratch, kept and reused
    uint64_t gen, leaf_gen;
    bool oom;
    s_link_t *hits;
    size_t n_hits, cap_hits;
    s_link_t *occs;
    size_t n_occs, cap_occs;
    s_kept_t *kept;
    size_t n_kept, cap_kept;
    uint32_t *hit_conds;        //  conditions hit by this event
    size_t n_hit_conds, cap_hit_conds;
    s_scope_t *scopes;
    size_t n_scopes, cap_scopes;
    uint32_t *trail;            //  (array id, index) pairs
    size_t n_trail, cap_trail;  //  in pairs
    uint32_t pending [2 * S_MAX_WALK_DEPTH];
    uint32_t n_arrays;
    char *fold;
    size_t cap_fold;
    uint32_t *chosen;           //  search: scopes picked, conditions deferred
    uint32_t *deferred;
    size_t cap_search;
};

//  --------------------------------------------------------------------------
//  Hashing: FNV-1a over the bytes, seeded by path and kind, then a finalizer

#define S_FNV_PRIME 0x100000001b3ULL

static inline uint64_t
s_fmix (uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

//  Every hash ends with s_fmix: a multiply is mixing enough for the seed
static inline uint64_t
s_seed (uint32_t path, uint32_t kind)
{
    return (((uint64_t) path << 8 | kind) + 1) * 0x9E3779B97F4A7C15ULL ^ 0xcbf29ce484222325ULL;
}

static inline uint64_t
s_fnv (uint64_t h, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p [i]) * S_FNV_PRIME;
    return h;
}

static inline uint64_t
s_fnv_back (uint64_t h, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    for (size_t i = len; i > 0; i--)
        h = (h ^ p [i - 1]) * S_FNV_PRIME;
    return h;
}

//  memcmp that accepts NULL with a zero length (msgpack's empty strings)
static inline bool
s_memeq (const void *a, const void *b, size_t len)
{
    return len == 0 || memcmp (a, b, len) == 0;
}

//  Whole keys: 8 bytes at a time (FNV-1a above is for the affix kinds,
//  whose lookups hash a value's prefixes one length after the other)
static inline uint64_t
s_hash_words (uint64_t h, const char *s, size_t len)
{
    const char *p = s;
    size_t left = len;
    while (left >= 8) {
        uint64_t w;
        memcpy (&w, p, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
        p += 8;
        left -= 8;
    }
    //  The last 0 to 7 bytes: two overlapping loads rather than a copy of
    //  variable length (any function of the bytes does: len is mixed in)
    uint64_t w = 0;
    if (left >= 4) {
        uint32_t lo, hi;
        memcpy (&lo, p, 4);
        memcpy (&hi, p + left - 4, 4);
        w = lo | (uint64_t) hi << 32;
    }
    else
    if (left)
        w = (uint64_t) (uint8_t) p [0] | (uint64_t) (uint8_t) p [left / 2] << 8
          | (uint64_t) (uint8_t) p [left - 1] << 16;
    h = (h ^ w ^ ((uint64_t) len << 56)) * 0x9E3779B97F4A7C15ULL;
    return s_fmix (h);
}

static bool
s_is_affix_kind (uint32_t kind)
{
    return kind == K_PRE || kind == K_PRE_CI || kind == K_SUF || kind == K_SUF_CI
        || kind == K_AB_PRE || kind == K_AB_SUF;
}

static bool
s_is_suffix_kind (uint32_t kind)
{
    return kind == K_SUF || kind == K_SUF_CI || kind == K_AB_SUF;
}

static uint64_t
s_key_hash (uint32_t path, uint32_t kind, const char *key, size_t len)
{
    uint64_t h = s_seed (path, kind);
    if (!s_is_affix_kind (kind))
        return s_hash_words (h, key, len);
    h = s_is_suffix_kind (kind)? s_fnv_back (h, key, len): s_fnv (h, key, len);
    return s_fmix (h);
}

//  An entry's tag: other bits of the hash than the slot's, never 0
static inline uint32_t
s_tag (uint64_t hash)
{
    return (uint32_t) (hash >> 32) | 1;
}

//  The list stored under (path, kind, key), hash given; empty when none.
//  The probe reads the tags, 4 bytes a slot: a key that is not there (most
//  lookups) costs no read of the entries, whose table grows with the rules
//  and outgrows the caches.
static inline s_list_t
s_find (const s_index_t *ix, uint64_t hash, uint32_t path, uint32_t kind,
        const char *key, size_t len)
{
    uint32_t mask = ix->entries_mask, tag = s_tag (hash);
    for (uint32_t i = (uint32_t) hash & mask; ; i = (i + 1) & mask) {
        uint32_t t = ix->tags [i];
        if (!t)
            return (s_list_t) { NULL, 0 };
        if (t != tag)
            continue;
        const s_entry_t *e = &ix->entries [i];
        if (e->hash == hash && e->path == path && e->kind == kind && e->len == len
        &&  s_memeq (e->key, key, len))
            return (s_list_t) { ix->lists + e->list_off, e->list_n };
    }
}

static s_list_t
s_find_list (const s_index_t *ix, uint32_t path, uint32_t kind)
{
    return s_find (ix, s_key_hash (path, kind, "", 0), path, kind, "", 0);
}

//  --------------------------------------------------------------------------
//  Building the index

typedef struct {
    uint32_t path;
    uint32_t kind;
    const char *key;
    uint32_t len;
    uint32_t value;             //  alt id, or a length
} s_tuple_t;

typedef struct {
    uint32_t path;
    uint32_t alt;
    const zb_alt_t *range;
    uint32_t lo, hi;            //  its atoms
} s_range_t;

typedef struct {
    s_tuple_t *tuples;
    size_t n_tuples, cap_tuples;
    s_range_t *ranges;
    size_t n_ranges, cap_ranges;
} s_build_t;

static bool
s_grow (void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap? *cap: 16;
    while (cap2 < need)
        cap2 *= 2;
    void *grown = realloc (*array, cap2 * size);
    if (!grown)
        return false;
    *array = grown;
    *cap = cap2;
    return true;
}

static bool
s_grow32 (void **array, uint32_t *cap, uint32_t need, size_t size)
{
    size_t cap2 = *cap;
    if (!s_grow (array, &cap2, need, size) || cap2 > UINT32_MAX)
        return false;
    *cap = (uint32_t) cap2;
    return true;
}

static bool
s_tuple (s_build_t *b, uint32_t path, uint32_t kind, const char *key, size_t len, uint32_t value)
{
    if (!s_grow ((void **) &b->tuples, &b->cap_tuples, b->n_tuples + 1, sizeof (s_tuple_t)))
        return false;
    b->tuples [b->n_tuples++] = (s_tuple_t) { path, kind, key, (uint32_t) len, value };
    return true;
}

static uint64_t
s_child_hash (uint32_t parent, const char *key, size_t len)
{
    return s_hash_words (s_seed (parent, K_COUNT), key, len);
}

static uint32_t
s_child (const s_index_t *ix, uint32_t parent, const char *key, size_t len)
{
    uint64_t hash = s_child_hash (parent, key, len);
    uint32_t mask = ix->children_mask;
    for (uint32_t i = (uint32_t) hash & mask; ; i = (i + 1) & mask) {
        const s_child_t *c = &ix->children [i];
        if (!c->child)
            return 0;
        if (c->hash == hash && c->parent == parent) {
            const s_path_t *p = &ix->paths [c->child];
            if (p->key_len == len && s_memeq (p->key, key, len))
                return c->child;
        }
    }
}

static inline uint64_t
s_key_head (const char *key, size_t len)
{
    uint64_t head = 0;
    if (len)
        memcpy (&head, key, len < 8? len: 8);
    return head;
}

//  s_key_head of a key in the packed event: one load when 8 bytes are
//  there to read
static inline uint64_t
s_key_head_packed (const uint8_t *key, size_t len, const uint8_t *end)
{
#if defined (__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    static const uint64_t mask [9] = {
        0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFULL, 0xFFFFFFFFFFFFULL,
        0xFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL
    };
    if (end - key >= 8) {
        uint64_t head;
        memcpy (&head, key, 8);
        return head & mask [len < 8? len: 8];
    }
#else
    (void) end;
#endif
    return s_key_head ((const char *) key, len);
}

//  A key's bit in its parent's kid_bloom: most keys no pattern names are
//  passed over on this test alone
static inline uint64_t
s_kid_bit (uint64_t head, size_t len)
{
    return 1ULL << (((head ^ len) * 0x9E3779B97F4A7C15ULL) >> 58);
}

//  s_child at matching time, head = s_key_head (key, len): in place for
//  paths with few children
static inline uint32_t
s_child_fast (const s_index_t *ix, uint32_t parent, uint64_t head, const char *key, size_t len)
{
    const s_path_t *p = &ix->paths [parent];
    if (!(p->kid_bloom & s_kid_bit (head, len)))
        return 0;
    if (p->n_kids > S_SMALL_KIDS)
        return s_child (ix, parent, key, len);
    const s_kid_t *kid = ix->kids + p->kid_off, *end = kid + p->n_kids;
    for (; kid < end; kid++)
        if (kid->head == head && kid->len == len    //  longer keys can share a head
        &&  (len <= 8 || memcmp (ix->paths [kid->child].key + 8, key + 8, len - 8) == 0))
            return kid->child;
    return 0;
}

//  The in-place children lists, once every path is known
static bool
s_build_kids (s_index_t *ix)
{
    ix->kids = malloc ((ix->n_paths? ix->n_paths: 1) * sizeof (s_kid_t));
    if (!ix->kids)
        return false;
    for (uint32_t p = 0; p < ix->n_paths; p++)
        ix->paths [p].n_kids = 0;
    for (uint32_t p = 1; p < ix->n_paths; p++)
        ix->paths [ix->paths [p].parent].n_kids++;
    uint32_t off = 0;
    for (uint32_t p = 0; p < ix->n_paths; p++) {
        ix->paths [p].kid_off = off;
        off += ix->paths [p].n_kids;
        ix->paths [p].n_kids = 0;
    }
    for (uint32_t p = 1; p < ix->n_paths; p++) {
        s_path_t *parent = &ix->paths [ix->paths [p].parent];
        uint64_t head = s_key_head (ix->paths [p].key, ix->paths [p].key_len);
        ix->kids [parent->kid_off + parent->n_kids++] = (s_kid_t) {
            head, (uint32_t) ix->paths [p].key_len, p
        };
        parent->kid_bloom |= s_kid_bit (head, ix->paths [p].key_len);
    }
    return true;
}

static bool
s_children_insert (s_index_t *ix, uint64_t hash, uint32_t parent, uint32_t child)
{
    if (2 * (ix->n_children + 1) > ix->children_mask + 1) {
        uint32_t cap = 2 * (ix->children_mask + 1);
        s_child_t *table = calloc (cap, sizeof (s_child_t));
        if (!table)
            return false;
        for (uint32_t i = 0; i <= ix->children_mask; i++) {
            s_child_t c = ix->children [i];
            if (!c.child)
                continue;
            uint32_t j = (uint32_t) c.hash & (cap - 1);
            while (table [j].child)
                j = (j + 1) & (cap - 1);
            table [j] = c;
        }
        free (ix->children);
        ix->children = table;
        ix->children_mask = cap - 1;
    }
    uint32_t j = (uint32_t) hash & ix->children_mask;
    while (ix->children [j].child)
        j = (j + 1) & ix->children_mask;
    ix->children [j] = (s_child_t) { hash, parent, child };
    ix->n_children++;
    return true;
}

//  Path id of a field's path, created as needed; 0 (the root) on no memory.
static uint32_t
s_intern (s_index_t *ix, const zb_field_t *field)
{
    uint32_t path = 0;
    for (size_t d = 0; d < field->depth; d++) {
        const char *key = field->keys [d];
        size_t len = field->key_lens [d];
        uint32_t child = s_child (ix, path, key, len);
        if (!child) {
            if (!s_grow32 ((void **) &ix->paths, &ix->cap_paths, ix->n_paths + 1, sizeof (s_path_t)))
                return 0;
            child = ix->n_paths++;
            s_path_t *p = &ix->paths [child];
            memset (p, 0, sizeof (*p));
            p->parent = path;
            p->key = key;
            p->key_len = len;
            if (!s_children_insert (ix, s_child_hash (path, key, len), path, child))
                return 0;
            ix->paths [path].flags |= P_CHILDREN;
            ix->paths [path].child_lens |= 1ULL << (len < 63? len: 63);
        }
        path = child;
    }
    return path;
}

//  Registers one alternative of a condition.
static bool
s_add_alt (s_index_t *ix, s_build_t *b, uint32_t path, uint32_t cond, const zb_alt_t *alt)
{
    if (alt->op == ZB_OP_ABSENT)
        return true;            //  nothing to look up: the condition can be absent
    if (!s_grow32 ((void **) &ix->alts, &ix->cap_alts, ix->n_alts + 1, sizeof (s_alt_t)))
        return false;
    uint32_t id = ix->n_alts++;
    s_alt_t *a = &ix->alts [id];
    memset (a, 0, sizeof (*a));
    a->cond = cond;
    s_path_t *p = &ix->paths [path];
    switch (alt->op) {
        case ZB_OP_EXACT: {
            static const uint32_t kinds [] = { K_STR, K_NUM, K_LIT };
            static const uint32_t flags [] = { P_STR, P_NUM, P_LIT };
            p->flags |= flags [alt->vkind];
            return s_tuple (b, path, kinds [alt->vkind], alt->key, alt->key_len, id);
        }
        case ZB_OP_EQUALS_CI:
            p->flags |= P_EQ_CI;
            return s_tuple (b, path, K_EQ_CI, alt->key, alt->key_len, id);
        case ZB_OP_PREFIX:
        case ZB_OP_PREFIX_CI:
        case ZB_OP_SUFFIX:
        case ZB_OP_SUFFIX_CI: {
            uint32_t kind = alt->op == ZB_OP_PREFIX? K_PRE: alt->op == ZB_OP_PREFIX_CI? K_PRE_CI:
                            alt->op == ZB_OP_SUFFIX? K_SUF: K_SUF_CI;
            p->flags |= P_STRING_OPS;
            if (kind == K_PRE_CI || kind == K_SUF_CI)
                p->flags |= P_CI_AFFIX;
            return s_tuple (b, path, kind, alt->key, alt->key_len, id)
                && s_tuple (b, path, kind - K_PRE + K_LEN_PRE, "", 0, (uint32_t) alt->key_len);
        }
        case ZB_OP_WILDCARD: {
            const zb_wild_t *w = alt->wild;
            uint32_t n = w->n_segs;
            if (n == 1) {       //  no '*': an exact string
                p->flags |= P_STR;
                return s_tuple (b, path, K_STR, w->text, w->seg_off [1], id);
            }
            a->wild = w;
            p->flags |= P_STRING_OPS;
            uint32_t first = w->seg_off [1], last = w->seg_off [n] - w->seg_off [n - 1];
            if (first)
                return s_tuple (b, path, K_PRE, w->text, first, id)
                    && s_tuple (b, path, K_LEN_PRE, "", 0, first);
            if (last)
                return s_tuple (b, path, K_SUF, w->text + w->seg_off [n - 1], last, id)
                    && s_tuple (b, path, K_LEN_SUF, "", 0, last);
            return s_tuple (b, path, K_WILD, "", 0, id);
        }
        case ZB_OP_NUMERIC:
            //  "=" too: a range of one atom. Indexed only when eager (s_lazy)
            a->range = true;
            a->src = alt;
            return true;
        case ZB_OP_CIDR:
            p->flags |= P_STRING_OPS;
            return s_tuple (b, path, alt->family == 4? K_CIDR4: K_CIDR6, alt->key, alt->key_len, id)
                && s_tuple (b, path, alt->family == 4? K_LEN_CIDR4: K_LEN_CIDR6, "", 0,
                            (uint8_t) alt->key [0]);
        case ZB_OP_EXISTS:
            return s_tuple (b, path, K_EXISTS, "", 0, id);
        case ZB_OP_ANYTHING_BUT:
            //  Its exclusions are indexed only when eager (s_lazy)
            a->ab = true;
            a->src = alt;
            ix->conds [cond].has_ab = true;
            return true;
    }
    return false;
}

//  Enters an eager anything-but alt (its exclusions, looked up as values
//  come) or numeric alt (into the path's ranges) in the index.
static bool
s_add_eager (s_index_t *ix, s_build_t *b, uint32_t id)
{
    s_alt_t *a = &ix->alts [id];
    const zb_alt_t *alt = a->src;
    uint32_t path = ix->conds [a->cond].path;
    s_path_t *p = &ix->paths [path];
    if (a->range) {
        if (!s_grow ((void **) &b->ranges, &b->cap_ranges, b->n_ranges + 1, sizeof (s_range_t)))
            return false;
        b->ranges [b->n_ranges++] = (s_range_t) { path, id, alt, 0, 0 };
        p->flags |= P_RANGES;
        return true;
    }
    for (size_t i = 0; i < alt->n_excl; i++) {
        const zb_excl_t *x = &alt->excl [i];
        bool ok = true;
        switch (x->kind) {
            case ZB_EXCL_VALUE:
                if (x->vkind == ZB_VAL_STR) {
                    p->flags |= P_AB_STR;
                    ok = s_tuple (b, path, K_AB_STR, x->key, x->key_len, id);
                }
                else {
                    p->flags |= P_AB_NUM;
                    ok = s_tuple (b, path, K_AB_NUM, x->key, x->key_len, id);
                }
                break;
            case ZB_EXCL_PREFIX:
                p->flags |= P_AB_STR;
                ok = s_tuple (b, path, K_AB_PRE, x->key, x->key_len, id)
                  && s_tuple (b, path, K_LEN_AB_PRE, "", 0, (uint32_t) x->key_len);
                break;
            case ZB_EXCL_SUFFIX:
                p->flags |= P_AB_STR;
                ok = s_tuple (b, path, K_AB_SUF, x->key, x->key_len, id)
                  && s_tuple (b, path, K_LEN_AB_SUF, "", 0, (uint32_t) x->key_len);
                break;
            case ZB_EXCL_EQUALS_CI:
                p->flags |= P_AB_STR | P_AB_EQ_CI;
                ok = s_tuple (b, path, K_AB_EQ_CI, x->key, x->key_len, id);
                break;
            case ZB_EXCL_WILDCARD:
                a->excl = alt->excl;
                a->n_excl = (uint32_t) alt->n_excl;
                break;
        }
        if (!ok)
            return false;
    }
    return s_tuple (b, path, K_AB, "", 0, id);
}

static int
s_tuple_cmp (const void *a_, const void *b_)
{
    const s_tuple_t *a = a_, *b = b_;
    if (a->path != b->path)
        return a->path < b->path? -1: 1;
    if (a->kind != b->kind)
        return a->kind < b->kind? -1: 1;
    if (a->len != b->len)
        return a->len < b->len? -1: 1;
    int rc = a->len? memcmp (a->key, b->key, a->len): 0;
    if (rc)
        return rc;
    return (a->value > b->value) - (a->value < b->value);
}

static bool
s_same_key (const s_tuple_t *a, const s_tuple_t *b)
{
    return a->path == b->path && a->kind == b->kind && a->len == b->len
        && s_memeq (a->key, b->key, a->len);
}

//  The value table: one entry per distinct (path, kind, key), its values
//  (sorted, without duplicates) in ix->lists.
static bool
s_build_table (s_index_t *ix, s_build_t *b)
{
    if (b->n_tuples)
        qsort (b->tuples, b->n_tuples, sizeof (s_tuple_t), s_tuple_cmp);
    size_t groups = 0;
    for (size_t i = 0; i < b->n_tuples; i++)
        if (i == 0 || !s_same_key (&b->tuples [i - 1], &b->tuples [i]))
            groups++;
    size_t cap = 16;
    while (cap < 2 * groups)
        cap *= 2;
    if (cap > UINT32_MAX)
        return false;
    ix->entries = calloc (cap, sizeof (s_entry_t));
    ix->tags = calloc (cap, sizeof (uint32_t));
    ix->lists = malloc ((b->n_tuples? b->n_tuples: 1) * sizeof (uint32_t));
    if (!ix->entries || !ix->tags || !ix->lists)
        return false;
    ix->entries_mask = (uint32_t) cap - 1;
    uint32_t n_list = 0;
    for (size_t i = 0; i < b->n_tuples; ) {
        const s_tuple_t *t = &b->tuples [i];
        uint32_t off = n_list;
        size_t j = i;
        for (; j < b->n_tuples && s_same_key (t, &b->tuples [j]); j++)
            if (j == i || b->tuples [j].value != b->tuples [j - 1].value)
                ix->lists [n_list++] = b->tuples [j].value;
        uint64_t hash = s_key_hash (t->path, t->kind, t->key, t->len);
        uint32_t k = (uint32_t) hash & ix->entries_mask;
        while (ix->entries [k].used)
            k = (k + 1) & ix->entries_mask;
        ix->entries [k] = (s_entry_t) {
            .hash = hash, .key = t->key, .len = t->len, .path = t->path,
            .list_off = off, .list_n = n_list - off, .kind = (uint8_t) t->kind, .used = 1
        };
        ix->tags [k] = s_tag (hash);
        i = j;
    }
    return true;
}

static int
s_range_cmp (const void *a_, const void *b_)
{
    const s_range_t *a = a_, *b = b_;
    if (a->path != b->path)
        return a->path < b->path? -1: 1;
    return (a->alt > b->alt) - (a->alt < b->alt);
}

static int
s_num_qcmp (const void *a, const void *b)
{
    return zb_num_cmp (a, b);
}

//  Index of value among the (sorted, distinct) bounds; the value is there.
static uint32_t
s_bound_index (const zb_num_t *bounds, uint32_t n, const zb_num_t *value)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (zb_num_cmp (&bounds [mid], value) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

//  The nearest double (rounding keeps the order, ties aside)
static inline double
s_num_double (const zb_num_t *num)
{
    return num->kind == ZB_NUM_DOUBLE? num->v.d:
           num->kind == ZB_NUM_INT? (double) num->v.i: (double) num->v.u;
}

//  s_bound_index for a matching-time value: a branchless search over the
//  doubles, then exact steps over bounds that round to the same double.
static inline uint32_t
s_bound_lookup (const s_segtree_t *tree, const zb_num_t *value)
{
    double x = s_num_double (value);
    const double *base = tree->approx;
    uint32_t n = tree->n_bounds;
    if (n == 0)
        return 0;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base [half] < x? base + half: base;
        n -= half;
    }
    //  Everything before k rounds below x, so is below value
    uint32_t k = (uint32_t) (base - tree->approx) + (*base < x);
    while (k < tree->n_bounds && zb_num_cmp (&tree->bounds [k], value) < 0)
        k++;
    return k;
}

typedef struct {
    uint32_t node, alt;
} s_pair_t;

typedef struct {
    s_pair_t *pairs;
    size_t n, cap;
} s_pairs_t;

static bool
s_seg_insert (s_pairs_t *out, uint32_t node, uint32_t l, uint32_t r,
              uint32_t ql, uint32_t qr, uint32_t alt)
{
    if (qr < l || r < ql)
        return true;
    if (ql <= l && r <= qr) {
        if (!s_grow ((void **) &out->pairs, &out->cap, out->n + 1, sizeof (s_pair_t)))
            return false;
        out->pairs [out->n++] = (s_pair_t) { node, alt };
        return true;
    }
    uint32_t mid = l + (r - l) / 2;
    return s_seg_insert (out, 2 * node, l, mid, ql, qr, alt)
        && s_seg_insert (out, 2 * node + 1, mid + 1, r, ql, qr, alt);
}

//  One segment tree per path over the ranges on it.
static bool
s_build_ranges (s_index_t *ix, s_build_t *b)
{
    if (b->n_ranges == 0)
        return true;
    qsort (b->ranges, b->n_ranges, sizeof (s_range_t), s_range_cmp);
    s_pairs_t pairs = { NULL, 0, 0 };
    bool ok = true;
    for (size_t i = 0; i < b->n_ranges && ok; ) {
        size_t j = i;
        while (j < b->n_ranges && b->ranges [j].path == b->ranges [i].path)
            j++;
        s_segtree_t *tree = &ix->paths [b->ranges [i].path].ranges;
        tree->bounds = malloc (2 * (j - i) * sizeof (zb_num_t));
        if (!tree->bounds) {
            ok = false;
            break;
        }
        uint32_t n = 0;
        for (size_t k = i; k < j; k++) {
            const zb_alt_t *r = b->ranges [k].range;
            if (r->has_lo)
                tree->bounds [n++] = r->lo;
            if (r->has_hi)
                tree->bounds [n++] = r->hi;
        }
        qsort (tree->bounds, n, sizeof (zb_num_t), s_num_qcmp);
        uint32_t distinct = 0;
        for (uint32_t k = 0; k < n; k++)
            if (distinct == 0 || zb_num_cmp (&tree->bounds [distinct - 1], &tree->bounds [k]))
                tree->bounds [distinct++] = tree->bounds [k];
        tree->n_bounds = distinct;
        tree->n_atoms = 2 * distinct + 1;
        tree->approx = malloc ((distinct? distinct: 1) * sizeof (double));
        if (!tree->approx) {
            ok = false;
            break;
        }
        for (uint32_t k = 0; k < distinct; k++)
            tree->approx [k] = s_num_double (&tree->bounds [k]);
        //  Atoms of each range; a list per atom when that stays small
        //  (ranges that overlap little), else the segment tree
        size_t total = 0;
        for (size_t k = i; k < j; k++) {
            s_range_t *range = &b->ranges [k];
            const zb_alt_t *r = range->range;
            range->lo = 0;
            range->hi = tree->n_atoms - 1;
            if (r->has_lo)
                range->lo = 2 * s_bound_index (tree->bounds, distinct, &r->lo) + (r->lo_incl? 1: 2);
            if (r->has_hi)
                range->hi = 2 * s_bound_index (tree->bounds, distinct, &r->hi) + (r->hi_incl? 1: 0);
            if (range->lo <= range->hi)
                total += range->hi - range->lo + 1;
        }
        tree->direct = total <= 2 * (size_t) tree->n_atoms + 4 * (j - i);
        pairs.n = 0;
        for (size_t k = i; k < j && ok; k++) {
            const s_range_t *range = &b->ranges [k];
            if (range->lo > range->hi)
                continue;
            if (tree->direct)
                for (uint32_t atom = range->lo; atom <= range->hi && ok; atom++) {
                    ok = s_grow ((void **) &pairs.pairs, &pairs.cap, pairs.n + 1, sizeof (s_pair_t));
                    if (ok)
                        pairs.pairs [pairs.n++] = (s_pair_t) { atom, range->alt };
                }
            else
                ok = s_seg_insert (&pairs, 1, 0, tree->n_atoms - 1, range->lo, range->hi, range->alt);
        }
        size_t n_nodes = tree->direct? tree->n_atoms: 4 * (size_t) tree->n_atoms;
        tree->node_off = calloc (n_nodes + 1, sizeof (uint32_t));
        tree->node_alts = malloc ((pairs.n? pairs.n: 1) * sizeof (uint32_t));
        if (!ok || !tree->node_off || !tree->node_alts) {
            ok = false;
            break;
        }
        //  Counting sort of the pairs by node: CSR
        for (size_t k = 0; k < pairs.n; k++)
            tree->node_off [pairs.pairs [k].node + 1]++;
        for (size_t k = 0; k < n_nodes; k++)
            tree->node_off [k + 1] += tree->node_off [k];
        for (size_t k = 0; k < pairs.n; k++) {
            uint32_t node = pairs.pairs [k].node;
            //  node_off [node] is used as the fill cursor, restored below
            tree->node_alts [tree->node_off [node]++] = pairs.pairs [k].alt;
        }
        for (size_t k = n_nodes; k > 0; k--)
            tree->node_off [k] = tree->node_off [k - 1];
        tree->node_off [0] = 0;
        i = j;
    }
    free (pairs.pairs);
    return ok;
}

static void
s_index_destroy (s_index_t **ix_p)
{
    s_index_t *ix = *ix_p;
    if (!ix)
        return;
    for (uint32_t p = 0; p < ix->n_paths; p++) {
        free (ix->paths [p].ranges.bounds);
        free (ix->paths [p].ranges.approx);
        free (ix->paths [p].ranges.node_off);
        free (ix->paths [p].ranges.node_alts);
    }
    free (ix->paths);
    free (ix->children);
    free (ix->kids);
    free (ix->entries);
    free (ix->tags);
    free (ix->lists);
    free (ix->alts);
    free (ix->conds);
    free (ix->branches);
    free (ix->branch_conds);
    free (ix->anchored_off);
    free (ix->anchored);
    free (ix->always);
    free (ix->names);
    free (ix->cs);
    free (ix->alt_cond);
    free (ix->pattern_stamp);
    free (ix->path_stamp);
    free (ix->path_head);
    free (ix->excl_stamp);
    free (ix->kept_stamp);
    free (ix->kept_head);
    free (ix);
    *ix_p = NULL;
}

//  How broadly a field tends to match, to pick anchors: exists, anything-but,
//  bare wildcards and empty affixes match nearly every value; ranges many.
static uint32_t
s_breadth (const zb_field_t *field)
{
    uint32_t breadth = 0;
    for (size_t a = 0; a < field->n_alts; a++) {
        const zb_alt_t *alt = &field->alts [a];
        uint32_t wide = 0;
        if (alt->op == ZB_OP_EXISTS || alt->op == ZB_OP_ANYTHING_BUT)
            wide = 1000000;
        else
        if (alt->op == ZB_OP_WILDCARD)
            wide = alt->wild->seg_off [alt->wild->n_segs] == 0? 1000000: 1000;
        else
        if ((alt->op == ZB_OP_PREFIX || alt->op == ZB_OP_SUFFIX || alt->op == ZB_OP_PREFIX_CI
        ||   alt->op == ZB_OP_SUFFIX_CI) && alt->key_len == 0)
            wide = 1000000;
        else
        if (alt->op == ZB_OP_NUMERIC || alt->op == ZB_OP_CIDR)
            wide = 1000;
        breadth += wide;
    }
    return breadth;
}

//  The signature of a field: equal signatures, equal conditions.
typedef struct {
    char *bytes;
    size_t len, cap;
} s_sig_t;

static bool
s_sig_put (s_sig_t *sig, const void *data, size_t len)
{
    if (!s_grow ((void **) &sig->bytes, &sig->cap, sig->len + len, 1))
        return false;
    if (len)
        memcpy (sig->bytes + sig->len, data, len);
    sig->len += len;
    return true;
}

static bool
s_sig_text (s_sig_t *sig, const char *text, size_t len)
{
    uint64_t n = len;
    return s_sig_put (sig, &n, sizeof (n)) && s_sig_put (sig, text, len);
}

static bool
s_sig_wild (s_sig_t *sig, const zb_wild_t *wild)
{
    return s_sig_put (sig, &wild->n_segs, sizeof (wild->n_segs))
        && s_sig_put (sig, wild->seg_off, (wild->n_segs + 1) * sizeof (uint32_t))
        && s_sig_text (sig, wild->text, wild->seg_off [wild->n_segs]);
}

static bool
s_signature (s_sig_t *sig, uint32_t path, const zb_field_t *field)
{
    sig->len = 0;
    uint8_t absent = field->can_absent;
    bool ok = s_sig_put (sig, &path, sizeof (path)) && s_sig_put (sig, &absent, 1);
    for (size_t a = 0; ok && a < field->n_alts; a++) {
        const zb_alt_t *alt = &field->alts [a];
        uint8_t head [2] = { alt->op, alt->vkind };
        ok = s_sig_put (sig, head, 2) && s_sig_text (sig, alt->key, alt->key_len);
        if (ok && alt->op == ZB_OP_WILDCARD)
            ok = s_sig_wild (sig, alt->wild);
        if (ok && alt->op == ZB_OP_NUMERIC) {
            uint8_t flags [4] = { alt->has_lo, alt->lo_incl, alt->has_hi, alt->hi_incl };
            uint8_t lo [ZB_NUM_KEY_SIZE], hi [ZB_NUM_KEY_SIZE];
            zb_num_key (&alt->lo, lo);
            zb_num_key (&alt->hi, hi);
            ok = s_sig_put (sig, flags, 4) && s_sig_put (sig, lo, sizeof (lo)) && s_sig_put (sig, hi, sizeof (hi));
        }
        if (ok && alt->op == ZB_OP_CIDR)
            ok = s_sig_put (sig, &alt->family, 1);
        for (size_t x = 0; ok && alt->op == ZB_OP_ANYTHING_BUT && x < alt->n_excl; x++) {
            const zb_excl_t *excl = &alt->excl [x];
            uint8_t kinds [2] = { excl->kind, excl->vkind };
            ok = s_sig_put (sig, kinds, 2)
              && (excl->kind == ZB_EXCL_WILDCARD? s_sig_wild (sig, excl->wild)
                                                 : s_sig_text (sig, excl->key, excl->key_len));
        }
        uint8_t end = 0xFF;
        ok = ok && s_sig_put (sig, &end, 1);
    }
    return ok;
}

//  Condition ids by signature, while building
typedef struct {
    uint64_t hash;
    size_t off, len;            //  in sigs
    uint32_t cond;
    bool used;
} s_sig_entry_t;

typedef struct {
    s_sig_t sig;                //  the one being looked up
    s_sig_t sigs;               //  all known, back to back
    s_sig_entry_t *table;
    size_t mask, n;
} s_dedup_t;

//  The condition for field at path: an existing one, or a new one whose
//  alternatives are entered in the index. UINT32_MAX when out of memory.
static uint32_t
s_condition (s_index_t *ix, s_build_t *b, s_dedup_t *d, uint32_t path, const zb_field_t *field)
{
    if (!s_signature (&d->sig, path, field))
        return UINT32_MAX;
    uint64_t hash = s_fmix (s_fnv (0xcbf29ce484222325ULL, d->sig.bytes, d->sig.len));
    if (2 * (d->n + 1) > d->mask + 1) {
        size_t cap = d->mask? 2 * (d->mask + 1): 64;
        s_sig_entry_t *table = calloc (cap, sizeof (s_sig_entry_t));
        if (!table)
            return UINT32_MAX;
        for (size_t i = 0; d->table && i <= d->mask; i++)
            if (d->table [i].used) {
                size_t j = d->table [i].hash & (cap - 1);
                while (table [j].used)
                    j = (j + 1) & (cap - 1);
                table [j] = d->table [i];
            }
        free (d->table);
        d->table = table;
        d->mask = cap - 1;
    }
    size_t i = hash & d->mask;
    for (; d->table [i].used; i = (i + 1) & d->mask) {
        const s_sig_entry_t *e = &d->table [i];
        if (e->hash == hash && e->len == d->sig.len && memcmp (d->sigs.bytes + e->off, d->sig.bytes, e->len) == 0) {
            ix->conds [e->cond].n_refs++;
            return e->cond;
        }
    }
    size_t off = d->sigs.len;
    if (!s_sig_put (&d->sigs, d->sig.bytes, d->sig.len)
    ||  ix->n_conds >= S_ALT_WILD      //  ids must leave alt_cond's flag bit free
    ||  !s_grow32 ((void **) &ix->conds, &ix->cap_conds, ix->n_conds + 1, sizeof (s_cond_t)))
        return UINT32_MAX;
    uint32_t cond = ix->n_conds++;
    ix->conds [cond] = (s_cond_t) { path, field->can_absent, 1, s_breadth (field), ix->n_alts, 0, false, false };
    d->table [i] = (s_sig_entry_t) { hash, off, d->sig.len, cond, true };
    d->n++;
    ix->paths [path].flags |= P_LEAF | (field->can_absent? P_OCC: 0);
    for (size_t a = 0; a < field->n_alts; a++)
        if (!s_add_alt (ix, b, path, cond, &field->alts [a]))
            return UINT32_MAX;
    ix->conds [cond].alt_n = ix->n_alts - ix->conds [cond].alt_first;
    return cond;
}

//  Adds one branch: its conditions that need a value first (the search
//  tries them first), then those that may be absent.
static bool
s_add_branch (s_index_t *ix, s_build_t *b, s_dedup_t *d, const zb_program_t *prog,
              uint32_t pattern, size_t br)
{
    if (!s_grow32 ((void **) &ix->branches, &ix->cap_branches, ix->n_branches + 1, sizeof (s_branch_t)))
        return false;
    uint32_t id = ix->n_branches++;
    ix->branches [id] = (s_branch_t) { pattern, ix->n_branch_conds, 0, 0 };
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = prog->branch_off [br]; k < prog->branch_off [br + 1]; k++) {
            const zb_field_t *field = &prog->fields [prog->branch_fields [k]];
            if (field->can_absent != (pass == 1))
                continue;
            uint32_t path = s_intern (ix, field);
            if (!path)
                return false;
            uint32_t cond = s_condition (ix, b, d, path, field);
            if (cond == UINT32_MAX
            ||  !s_grow32 ((void **) &ix->branch_conds, &ix->cap_branch_conds, ix->n_branch_conds + 1,
                           sizeof (uint32_t)))
                return false;
            ix->branch_conds [ix->n_branch_conds++] = cond;
            ix->branches [id].n++;
            if (!field->can_absent)
                ix->branches [id].n_must++;
        }
    return true;
}

//  Each branch that needs a value is anchored on one of those conditions:
//  the one used by the fewest branches, narrow ones first. Only branches
//  anchored on a condition an event hits are looked at for that event.
static bool
s_anchor (s_index_t *ix)
{
    ix->anchored_off = calloc ((size_t) ix->n_conds + 1, sizeof (uint32_t));
    ix->anchored = malloc ((ix->n_branches? ix->n_branches: 1) * sizeof (uint32_t));
    uint32_t *anchor = malloc ((ix->n_branches? ix->n_branches: 1) * sizeof (uint32_t));
    if (!ix->anchored_off || !ix->anchored || !anchor) {
        free (anchor);
        return false;
    }
    uint32_t n_always = 0;
    for (uint32_t b = 0; b < ix->n_branches; b++) {
        const s_branch_t *branch = &ix->branches [b];
        anchor [b] = UINT32_MAX;
        uint64_t best = UINT64_MAX;
        for (uint32_t k = 0; k < branch->n_must; k++) {
            uint32_t c = ix->branch_conds [branch->first + k];
            uint64_t score = (uint64_t) ix->conds [c].breadth + ix->conds [c].n_refs;
            if (score < best) {
                best = score;
                anchor [b] = c;
            }
        }
        if (anchor [b] == UINT32_MAX)
            n_always++;
        else
            ix->anchored_off [anchor [b] + 1]++;
    }
    for (uint32_t c = 0; c < ix->n_conds; c++)
        ix->anchored_off [c + 1] += ix->anchored_off [c];
    ix->always = malloc ((n_always? n_always: 1) * sizeof (uint32_t));
    if (!ix->always) {
        free (anchor);
        return false;
    }
    for (uint32_t b = 0; b < ix->n_branches; b++) {
        if (anchor [b] == UINT32_MAX)
            ix->always [ix->n_always++] = b;
        else        //  anchored_off [c] is the fill cursor here, shifted back below
            ix->anchored [ix->anchored_off [anchor [b]]++] = b;
    }
    for (uint32_t c = ix->n_conds; c > 0; c--)
        ix->anchored_off [c] = ix->anchored_off [c - 1];
    ix->anchored_off [0] = 0;
    free (anchor);
    return true;
}

//  anything-but and numeric alts of a condition no branch is anchored on
//  are LAZY: the walk does not look them up (an anything-but is hit by
//  nearly every value, an open range by every value past its bound, and
//  with thousands of such conditions beside narrower fields that would cost
//  every event a step per condition, and a step per exclusion of the value,
//  whether any branch needs them or not). It keeps the values met at their
//  paths, and a branch being verified works out the hits of its lazy
//  conditions from them (s_materialize): the work is per candidate branch.
//  The others (conditions that anchor branches) are indexed and hit as
//  values come: the branches they anchor are candidates, so that work is
//  paid per candidate too.
static bool
s_lazy (s_index_t *ix, s_build_t *b)
{
    for (uint32_t id = 0; id < ix->n_alts; id++) {
        s_alt_t *a = &ix->alts [id];
        if (!a->ab && !a->range)
            continue;
        s_cond_t *cond = &ix->conds [a->cond];
        a->lazy = ix->anchored_off [a->cond + 1] == ix->anchored_off [a->cond];
        if (a->lazy) {
            cond->lazy = true;
            ix->paths [cond->path].flags |= P_KEEP;
        }
        else
        if (!s_add_eager (ix, b, id))
            return false;
    }
    return true;
}

static bool
s_zalloc (void **ptr, size_t n, size_t size)
{
    *ptr = calloc (n? n: 1, size);
    return *ptr != NULL;
}

static s_index_t *
s_index_build (zb_patterns_t *self)
{
    s_index_t *ix = calloc (1, sizeof (s_index_t));
    s_build_t b;
    memset (&b, 0, sizeof (b));
    bool ok = ix != NULL;
    if (ok) {
        ix->cap_paths = 16;
        ix->paths = calloc (ix->cap_paths, sizeof (s_path_t));
        ix->children = calloc (16, sizeof (s_child_t));
        ix->children_mask = 15;
        ix->n_paths = 1;            //  the root
        ix->names = calloc (self->n_progs? self->n_progs: 1, sizeof (char *));
        ix->n_patterns = (uint32_t) self->n_progs;
        ok = ix->paths && ix->children && ix->names;
    }
    size_t max_conds = 0;
    s_dedup_t dedup;
    memset (&dedup, 0, sizeof (dedup));
    for (size_t pi = 0; ok && pi < self->n_progs; pi++) {
        const zb_program_t *prog = self->progs [pi];
        ix->names [pi] = prog->name;
        for (size_t br = 0; ok && br < prog->n_branches; br++) {
            ok = s_add_branch (ix, &b, &dedup, prog, (uint32_t) pi, br);
            if (ok && ix->branches [ix->n_branches - 1].n > max_conds)
                max_conds = ix->branches [ix->n_branches - 1].n;
        }
    }
    free (dedup.sig.bytes);
    free (dedup.sigs.bytes);
    free (dedup.table);
    ok = ok && s_anchor (ix) && s_lazy (ix, &b) && s_build_table (ix, &b) && s_build_ranges (ix, &b)
       && s_build_kids (ix);
    if (ok)
        for (uint32_t p = 1; p < ix->n_paths; p++) {
            s_path_t *path = &ix->paths [p];
            path->exists = s_find_list (ix, p, K_EXISTS);
            path->ab = s_find_list (ix, p, K_AB);
            path->wild = s_find_list (ix, p, K_WILD);
            path->pre = s_find_list (ix, p, K_LEN_PRE);
            path->pre_ci = s_find_list (ix, p, K_LEN_PRE_CI);
            path->suf = s_find_list (ix, p, K_LEN_SUF);
            path->suf_ci = s_find_list (ix, p, K_LEN_SUF_CI);
            path->ab_pre = s_find_list (ix, p, K_LEN_AB_PRE);
            path->ab_suf = s_find_list (ix, p, K_LEN_AB_SUF);
            path->cidr4 = s_find_list (ix, p, K_LEN_CIDR4);
            path->cidr6 = s_find_list (ix, p, K_LEN_CIDR6);
        }
    ok = ok
      && s_zalloc ((void **) &ix->cs, ix->n_conds, sizeof (s_cond_state_t))
      && s_zalloc ((void **) &ix->alt_cond, ix->n_alts, sizeof (uint32_t))
      && s_zalloc ((void **) &ix->pattern_stamp, ix->n_patterns, sizeof (uint64_t))
      && s_zalloc ((void **) &ix->path_stamp, ix->n_paths, sizeof (uint64_t))
      && s_zalloc ((void **) &ix->path_head, ix->n_paths, sizeof (int32_t))
      && s_zalloc ((void **) &ix->excl_stamp, ix->n_alts, sizeof (uint64_t))
      && s_zalloc ((void **) &ix->kept_stamp, ix->n_paths, sizeof (uint64_t))
      && s_zalloc ((void **) &ix->kept_head, ix->n_paths, sizeof (int32_t));
    if (ok) {
        for (uint32_t a = 0; a < ix->n_alts; a++)
            ix->alt_cond [a] = ix->alts [a].cond | (ix->alts [a].wild? S_ALT_WILD: 0);
        for (uint32_t c = 0; c < ix->n_conds; c++) {
            ix->cs [c].anchors = ix->anchored_off [c + 1] > ix->anchored_off [c];
            ix->cs [c].lazy = ix->conds [c].lazy;
            ix->cs [c].path = ix->conds [c].path;
            ix->cs [c].can_absent = ix->conds [c].can_absent;
        }
    }
    if (ok && max_conds > self->cap_search) {
        free (self->chosen);
        free (self->deferred);
        self->chosen = malloc (max_conds * sizeof (uint32_t));
        self->deferred = malloc (max_conds * sizeof (uint32_t));
        self->cap_search = max_conds;
        ok = self->chosen && self->deferred;
        if (!ok)
            self->cap_search = 0;
    }
    free (b.tuples);
    free (b.ranges);
    if (!ok)
        s_index_destroy (&ix);
    return ix;
}

//  --------------------------------------------------------------------------
//  Matching: hits

static void
s_oom (zb_patterns_t *self)
{
    self->oom = true;
}

static inline void
s_hit (zb_patterns_t *self, uint32_t alt, uint32_t scope)
{
    s_index_t *ix = self->ix;
    uint32_t c = ix->alt_cond [alt] & ~S_ALT_WILD;
    s_cond_state_t *cs = &ix->cs [c];
    if (cs->stamp != self->gen) {
        cs->stamp = self->gen;
        cs->head = -1;
        cs->last = UINT32_MAX;
        if (cs->anchors) {
            if (!s_grow ((void **) &self->hit_conds, &self->cap_hit_conds, self->n_hit_conds + 1,
                         sizeof (uint32_t))) {
                s_oom (self);
                return;
            }
            self->hit_conds [self->n_hit_conds++] = c;
        }
    }
    if (cs->last != scope) {
        if (!s_grow ((void **) &self->hits, &self->cap_hits, self->n_hits + 1, sizeof (s_link_t))) {
            s_oom (self);
            return;
        }
        self->hits [self->n_hits] = (s_link_t) { scope, cs->head };
        cs->head = (int32_t) self->n_hits++;
        cs->last = scope;
    }
}

//  What a list of alts found for a value does: hits, or exclusions
typedef enum { S_HIT, S_EXCLUDE } s_mode_t;

static inline void
s_apply (zb_patterns_t *self, s_list_t list, s_mode_t mode, uint32_t scope,
         const char *s, size_t len)
{
    for (uint32_t i = 0; i < list.n; i++) {
        uint32_t alt = list.v [i];
        if (mode == S_EXCLUDE)
            self->ix->excl_stamp [alt] = self->leaf_gen;
        else {
            if (!(self->ix->alt_cond [alt] & S_ALT_WILD)
            ||  zb_wild_match (self->ix->alts [alt].wild, s, len))
                s_hit (self, alt, scope);
        }
    }
}

static inline void
s_exact (zb_patterns_t *self, uint32_t path, uint32_t kind, const char *key, size_t len,
         s_mode_t mode, uint32_t scope)
{
    s_list_t list = s_find (self->ix, s_key_hash (path, kind, key, len), path, kind, key, len);
    if (list.n)
        s_apply (self, list, mode, scope, key, len);
}

//  Looks up every prefix (or suffix) of s whose length is in lens.
//  verify/verify_len: the string wildcards are checked against.
static void
s_affixes (zb_patterns_t *self, uint32_t path, uint32_t kind, s_list_t lens, bool suffix,
           const char *s, size_t len, s_mode_t mode, uint32_t scope,
           const char *verify, size_t verify_len)
{
    uint64_t h = s_seed (path, kind);
    size_t done = 0;
    for (uint32_t j = 0; j < lens.n; j++) {
        size_t l = lens.v [j];
        if (l > len)
            break;
        const char *key;
        if (suffix) {
            key = s + len - l;
            h = s_fnv_back (h, key, l - done);
        }
        else {
            key = s;
            h = s_fnv (h, s + done, l - done);
        }
        done = l;
        s_list_t list = s_find (self->ix, s_fmix (h), path, kind, key, l);
        if (list.n)
            s_apply (self, list, mode, scope, verify, verify_len);
    }
}

static void
s_cidr (zb_patterns_t *self, const s_path_t *p, uint32_t path, const char *s, size_t len,
        uint32_t scope)
{
    char text [48];
    if (len == 0 || len >= sizeof (text))
        return;
    memcpy (text, s, len);
    text [len] = 0;
    uint8_t addr [16], key [17];
    s_list_t lens;
    uint32_t kind;
    size_t n;
    if (p->cidr4.n && inet_pton (AF_INET, text, addr) == 1) {
        lens = p->cidr4;
        kind = K_CIDR4;
        n = 4;
    }
    else
    if (p->cidr6.n && inet_pton (AF_INET6, text, addr) == 1) {
        lens = p->cidr6;
        kind = K_CIDR6;
        n = 16;
    }
    else
        return;
    for (uint32_t j = 0; j < lens.n; j++) {
        uint32_t plen = lens.v [j];
        key [0] = (uint8_t) plen;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = plen > 8 * i? plen - 8 * (uint32_t) i: 0;
            key [1 + i] = bits >= 8? addr [i]: (uint8_t) (addr [i] & (0xFF00u >> bits));
        }
        s_exact (self, path, kind, (const char *) key, 1 + n, S_HIT, scope);
    }
}

//  The folded copy of s, in self->fold; NULL when out of memory.
static const char *
s_fold (zb_patterns_t *self, const char *s, size_t len, size_t *folded_len)
{
    size_t need = ZB_FOLD_MAX (len);
    if (!s_grow ((void **) &self->fold, &self->cap_fold, need, 1)) {
        s_oom (self);
        return NULL;
    }
    *folded_len = zb_fold_utf8 (s, len, self->fold);
    return self->fold;
}

static void
s_leaf_string (zb_patterns_t *self, const s_path_t *p, uint32_t path, const char *s, size_t len,
               uint32_t scope)
{
    if (p->flags & P_STR)
        s_exact (self, path, K_STR, s, len, S_HIT, scope);
    if (p->flags & P_STRING_OPS) {
        if (p->pre.n)
            s_affixes (self, path, K_PRE, p->pre, false, s, len, S_HIT, scope, s, len);
        if (p->suf.n)
            s_affixes (self, path, K_SUF, p->suf, true, s, len, S_HIT, scope, s, len);
        if (p->wild.n)
            s_apply (self, p->wild, S_HIT, scope, s, len);
        if (p->cidr4.n || p->cidr6.n)
            s_cidr (self, p, path, s, len, scope);
    }
    if (p->flags & (P_EQ_CI | P_CI_AFFIX)) {
        size_t flen;
        const char *f = s_fold (self, s, len, &flen);
        if (!f)
            return;
        if (p->flags & P_EQ_CI)
            s_exact (self, path, K_EQ_CI, f, flen, S_HIT, scope);
        if (p->pre_ci.n)
            s_affixes (self, path, K_PRE_CI, p->pre_ci, false, f, flen, S_HIT, scope, f, flen);
        if (p->suf_ci.n)
            s_affixes (self, path, K_SUF_CI, p->suf_ci, true, f, flen, S_HIT, scope, f, flen);
    }
}

//  Does a wildcard exclusion of an anything-but alt exclude the value?
static inline bool
s_wild_excluded (const s_alt_t *a, const msgpack_object *obj)
{
    if (!a->n_excl || obj->type != MSGPACK_OBJECT_STR)
        return false;
    for (uint32_t k = 0; k < a->n_excl; k++)
        if (a->excl [k].kind == ZB_EXCL_WILDCARD
        &&  zb_wild_match (a->excl [k].wild, obj->via.str.ptr, obj->via.str.size))
            return true;
    return false;
}

//  Keeps a value met at a path with lazy alts, for s_materialize.
static void
s_keep (zb_patterns_t *self, uint32_t path, const msgpack_object *obj, uint32_t scope)
{
    s_index_t *ix = self->ix;
    if (ix->kept_stamp [path] != self->gen) {
        ix->kept_stamp [path] = self->gen;
        ix->kept_head [path] = -1;
    }
    if (!s_grow ((void **) &self->kept, &self->cap_kept, self->n_kept + 1, sizeof (s_kept_t))) {
        s_oom (self);
        return;
    }
    self->kept [self->n_kept] = (s_kept_t) { *obj, scope, ix->kept_head [path] };
    ix->kept_head [path] = (int32_t) self->n_kept++;
}

//  Eager anything-but alts: exclusions of this value stamp their alts; the
//  others hit.
static void
s_anything_but (zb_patterns_t *self, const s_path_t *p, uint32_t path, const msgpack_object *obj,
                const char *numkey, uint32_t scope)
{
    self->leaf_gen++;
    if (obj->type == MSGPACK_OBJECT_STR) {
        const char *s = obj->via.str.ptr;
        size_t len = obj->via.str.size;
        if (p->flags & P_AB_STR) {
            s_exact (self, path, K_AB_STR, s, len, S_EXCLUDE, scope);
            if (p->ab_pre.n)
                s_affixes (self, path, K_AB_PRE, p->ab_pre, false, s, len, S_EXCLUDE, scope, s, len);
            if (p->ab_suf.n)
                s_affixes (self, path, K_AB_SUF, p->ab_suf, true, s, len, S_EXCLUDE, scope, s, len);
            if (p->flags & P_AB_EQ_CI) {
                size_t flen;
                const char *f = s_fold (self, s, len, &flen);
                if (!f)
                    return;
                s_exact (self, path, K_AB_EQ_CI, f, flen, S_EXCLUDE, scope);
            }
        }
    }
    else
    if (numkey && (p->flags & P_AB_NUM))
        s_exact (self, path, K_AB_NUM, numkey, ZB_NUM_KEY_SIZE, S_EXCLUDE, scope);

    const s_index_t *ix = self->ix;
    for (uint32_t i = 0; i < p->ab.n; i++) {
        uint32_t alt = p->ab.v [i];
        if (ix->excl_stamp [alt] != self->leaf_gen && !s_wild_excluded (&ix->alts [alt], obj))
            s_hit (self, alt, scope);
    }
}

//  The canonical number of a numeric msgpack value; false for anything
//  else (NaN included: not a JSON number).
static inline bool
s_number (const msgpack_object *obj, zb_num_t *num)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            *num = zb_num_from_uint (obj->via.u64);
            return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            *num = zb_num_from_int (obj->via.i64);
            return true;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (obj->via.f64 != obj->via.f64)
                return false;
            *num = zb_num_from_double (obj->via.f64);
            return true;
        default:
            return false;
    }
}

//  Does a lazy anything-but alt hold for the value (no exclusion names it)?
//  The same tests as the eager lookups: string values against the string
//  exclusions (equals-ignore-case on the folded value), numbers by value.
static bool
s_ab_holds (zb_patterns_t *self, const zb_alt_t *alt, const msgpack_object *obj)
{
    const char *s = NULL, *folded = NULL;
    size_t len = 0, flen = 0;
    bool is_str = obj->type == MSGPACK_OBJECT_STR;
    if (is_str) {
        s = obj->via.str.ptr;
        len = obj->via.str.size;
    }
    uint8_t numkey [ZB_NUM_KEY_SIZE];
    int is_num = -1;                //  not worked out yet
    for (size_t k = 0; k < alt->n_excl; k++) {
        const zb_excl_t *x = &alt->excl [k];
        if (x->kind == ZB_EXCL_VALUE && x->vkind != ZB_VAL_STR) {
            if (is_num < 0) {
                zb_num_t num;
                is_num = s_number (obj, &num);
                if (is_num)
                    zb_num_key (&num, numkey);
            }
            if (is_num && x->key_len == ZB_NUM_KEY_SIZE && memcmp (x->key, numkey, ZB_NUM_KEY_SIZE) == 0)
                return false;
            continue;
        }
        if (!is_str)
            continue;               //  the string forms let every non-string through
        switch (x->kind) {
            case ZB_EXCL_VALUE:
                if (len == x->key_len && s_memeq (s, x->key, len))
                    return false;
                break;
            case ZB_EXCL_PREFIX:
                if (len >= x->key_len && s_memeq (s, x->key, x->key_len))
                    return false;
                break;
            case ZB_EXCL_SUFFIX:
                if (len >= x->key_len && s_memeq (s + len - x->key_len, x->key, x->key_len))
                    return false;
                break;
            case ZB_EXCL_EQUALS_CI:
                if (!folded) {
                    folded = s_fold (self, s, len, &flen);
                    if (!folded)
                        return false;
                }
                if (flen == x->key_len && s_memeq (folded, x->key, flen))
                    return false;
                break;
            case ZB_EXCL_WILDCARD:
                if (zb_wild_match (x->wild, s, len))
                    return false;
                break;
        }
    }
    return true;
}

//  Is the value in a lazy numeric alt's range?
static bool
s_range_holds (const zb_alt_t *alt, const msgpack_object *obj)
{
    zb_num_t num;
    if (!s_number (obj, &num))
        return false;
    if (alt->has_lo) {
        int cmp = zb_num_cmp (&num, &alt->lo);
        if (cmp < 0 || (cmp == 0 && !alt->lo_incl))
            return false;
    }
    if (alt->has_hi) {
        int cmp = zb_num_cmp (&num, &alt->hi);
        if (cmp > 0 || (cmp == 0 && !alt->hi_incl))
            return false;
    }
    return true;
}

//  The hits of a lazy condition: its lazy alts against every value kept at
//  its path (its other alts were hit during the walk). Once per event and
//  condition, when a candidate branch needs it; the cost is the
//  condition's lazy alts times the values at the path.
static void
s_materialize (zb_patterns_t *self, uint32_t c)
{
    s_index_t *ix = self->ix;
    ix->cs [c].mat_stamp = self->gen;
    const s_cond_t *cond = &ix->conds [c];
    if (ix->kept_stamp [cond->path] != self->gen)
        return;                 //  no value there
    for (uint32_t alt = cond->alt_first; alt < cond->alt_first + cond->alt_n; alt++) {
        const s_alt_t *a = &ix->alts [alt];
        if (!a->lazy)
            continue;
        for (int32_t o = ix->kept_head [cond->path]; o >= 0; o = self->kept [o].next) {
            const s_kept_t *kept = &self->kept [o];
            if (a->ab? s_ab_holds (self, a->src, &kept->obj): s_range_holds (a->src, &kept->obj))
                s_hit (self, alt, kept->scope);
        }
    }
}

static void
s_leaf (zb_patterns_t *self, uint32_t path, const msgpack_object *obj, uint32_t scope)
{
    s_index_t *ix = self->ix;
    const s_path_t *p = &ix->paths [path];
    if (obj->type == MSGPACK_OBJECT_BIN || obj->type == MSGPACK_OBJECT_EXT)
        return;                 //  not a JSON value: not a value at all here
    if (p->flags & P_OCC) {
        if (ix->path_stamp [path] != self->gen) {
            ix->path_stamp [path] = self->gen;
            ix->path_head [path] = -1;
        }
        if (!s_grow ((void **) &self->occs, &self->cap_occs, self->n_occs + 1, sizeof (s_link_t))) {
            s_oom (self);
            return;
        }
        self->occs [self->n_occs] = (s_link_t) { scope, ix->path_head [path] };
        ix->path_head [path] = (int32_t) self->n_occs++;
    }
    for (uint32_t i = 0; i < p->exists.n; i++)
        s_hit (self, p->exists.v [i], scope);

    char numkey [ZB_NUM_KEY_SIZE];
    bool is_num = false;
    switch (obj->type) {
        case MSGPACK_OBJECT_STR:
            s_leaf_string (self, p, path, obj->via.str.ptr, obj->via.str.size, scope);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: {
            zb_num_t num;
            if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                num = zb_num_from_uint (obj->via.u64);
            else
            if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                num = zb_num_from_int (obj->via.i64);
            else {
                if (obj->via.f64 != obj->via.f64)
                    return;     //  NaN: not a JSON number
                num = zb_num_from_double (obj->via.f64);
            }
            //  The hash key only when something looks numbers up by value
            is_num = (p->flags & (P_NUM | P_AB_NUM)) != 0;
            if (is_num)
                zb_num_key (&num, (uint8_t *) numkey);
            if (p->flags & P_NUM)
                s_exact (self, path, K_NUM, numkey, ZB_NUM_KEY_SIZE, S_HIT, scope);
            if (p->flags & P_RANGES) {
                const s_segtree_t *tree = &p->ranges;
                uint32_t k = s_bound_lookup (tree, &num);
                uint32_t atom = 2 * k + ((k < tree->n_bounds && zb_num_cmp (&tree->bounds [k], &num) == 0)? 1: 0);
                if (tree->direct)
                    for (uint32_t i = tree->node_off [atom]; i < tree->node_off [atom + 1]; i++)
                        s_hit (self, tree->node_alts [i], scope);
                uint32_t node = 1, l = 0, r = tree->n_atoms - 1;
                while (!tree->direct) {
                    for (uint32_t i = tree->node_off [node]; i < tree->node_off [node + 1]; i++)
                        s_hit (self, tree->node_alts [i], scope);
                    if (l == r)
                        break;
                    uint32_t mid = l + (r - l) / 2;
                    if (atom <= mid) {
                        node = 2 * node;
                        r = mid;
                    }
                    else {
                        node = 2 * node + 1;
                        l = mid + 1;
                    }
                }
            }
            break;
        }
        case MSGPACK_OBJECT_BOOLEAN:
            if (p->flags & P_LIT)
                s_exact (self, path, K_LIT, obj->via.boolean? "t": "f", 1, S_HIT, scope);
            break;
        case MSGPACK_OBJECT_NIL:
            if (p->flags & P_LIT)
                s_exact (self, path, K_LIT, "n", 1, S_HIT, scope);
            break;
        default:
            break;
    }
    if (p->flags & P_KEEP)
        s_keep (self, path, obj, scope);
    if (p->ab.n)
        s_anything_but (self, p, path, obj, is_num? numkey: NULL, scope);
}

//  --------------------------------------------------------------------------
//  Matching: the walk

//  A scope for an object inside arrays: the parent's trail plus the
//  pending (array, index) pairs.
static uint32_t
s_new_scope (zb_patterns_t *self, uint32_t parent, uint32_t base, uint32_t n_pending)
{
    uint32_t parent_off = self->scopes [parent].off, parent_len = self->scopes [parent].len;
    size_t len = (size_t) parent_len + n_pending;
    if (!s_grow ((void **) &self->trail, &self->cap_trail, self->n_trail + len, 2 * sizeof (uint32_t))
    ||  !s_grow ((void **) &self->scopes, &self->cap_scopes, self->n_scopes + 1, sizeof (s_scope_t))) {
        s_oom (self);
        return parent;
    }
    uint32_t *out = self->trail + 2 * self->n_trail;
    memcpy (out, self->trail + 2 * (size_t) parent_off, 2 * parent_len * sizeof (uint32_t));
    memcpy (out + 2 * parent_len, self->pending + 2 * base, 2 * n_pending * sizeof (uint32_t));
    self->scopes [self->n_scopes] = (s_scope_t) { (uint32_t) self->n_trail, (uint32_t) len };
    self->n_trail += len;
    return (uint32_t) self->n_scopes++;
}

//  pending [base, base + n_pending): the arrays crossed since the last map
static void
s_walk (zb_patterns_t *self, const msgpack_object *obj, uint32_t path, uint32_t scope,
        uint32_t base, uint32_t n_pending, uint32_t depth)
{
    if (depth >= S_MAX_WALK_DEPTH || self->oom)
        return;
    const s_index_t *ix = self->ix;
    const s_path_t *p = &ix->paths [path];
    if (obj->type == MSGPACK_OBJECT_MAP) {
        if (!(p->flags & P_CHILDREN))
            return;
        if (n_pending) {
            scope = s_new_scope (self, scope, base, n_pending);
            base += n_pending;
        }
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            const msgpack_object_kv *kv = &obj->via.map.ptr [i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            const char *key = kv->key.via.str.ptr;
            uint32_t len = kv->key.via.str.size;
            if (!(p->child_lens & (1ULL << (len < 63? len: 63))))
                continue;       //  no pattern names a key that long here (cheaper
                                //  than the head the bloom test needs)
            uint32_t child = s_child_fast (ix, path, s_key_head (key, len), key, len);
            if (child)
                s_walk (self, &kv->val, child, scope, base, 0, depth + 1);
        }
    }
    else
    if (obj->type == MSGPACK_OBJECT_ARRAY) {
        if (!(p->flags & (P_CHILDREN | P_LEAF)))
            return;
        uint32_t id = self->n_arrays++;
        uint32_t slot = base + n_pending;
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            self->pending [2 * slot] = id;
            self->pending [2 * slot + 1] = i;
            s_walk (self, &obj->via.array.ptr [i], path, scope, base, n_pending + 1, depth + 1);
        }
    }
    else
    if (p->flags & P_LEAF)
        s_leaf (self, path, obj, scope);
}

//  --------------------------------------------------------------------------
//  Matching: the walk over packed msgpack (zb_patterns_match_packed). The
//  same walk as s_walk, reading the bytes in place: subtrees no pattern
//  names are skipped header by header, never decoded; scalars become
//  msgpack_objects on the stack, as msgpack_unpack would make them.

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;                   //  truncated or not msgpack
} s_cursor_t;

typedef enum { S_SCALAR, S_MAP, S_ARRAY } s_head_t;

static inline uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p [i];
    return v;
}

//  Bytes available for n more
static inline bool
s_need (s_cursor_t *c, size_t n)
{
    if ((size_t) (c->end - c->p) < n) {
        c->bad = true;
        return false;
    }
    return true;
}

//  Reads one header: a map or an array (count of entries / elements) or a
//  whole scalar (in obj). false when the data ends or is not msgpack.
static bool
s_head (s_cursor_t *c, s_head_t *head, uint32_t *count, msgpack_object *obj)
{
    if (!s_need (c, 1))
        return false;
    uint8_t b = *c->p++;
    *head = S_SCALAR;
    size_t len = 0, size = 0;       //  body bytes, length field bytes
    int kind = -1;                  //  str 0, bin 1, ext 2
    if ((b & 0xe0) == 0xa0) {       //  fixstr: most keys and values
        len = b & 0x1f;
        if (!s_need (c, len))
            return false;
        obj->type = MSGPACK_OBJECT_STR;
        obj->via.str.ptr = (const char *) c->p;
        obj->via.str.size = (uint32_t) len;
        c->p += len;
        return true;
    }
    if (b <= 0x7f) {
        obj->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        obj->via.u64 = b;
        return true;
    }
    if (b >= 0xe0) {
        obj->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        obj->via.i64 = (int8_t) b;
        return true;
    }
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
        *head = (b & 0xf0) == 0x80? S_MAP: S_ARRAY;
        *count = b & 0x0f;
        return true;
    }
    if ((b & 0xe0) == 0xa0) {
        kind = 0;
        len = b & 0x1f;
    }
    else
    switch (b) {
        case 0xc0: obj->type = MSGPACK_OBJECT_NIL; return true;
        case 0xc2: case 0xc3:
            obj->type = MSGPACK_OBJECT_BOOLEAN;
            obj->via.boolean = b == 0xc3;
            return true;
        case 0xc4: case 0xc5: case 0xc6: kind = 1; size = (size_t) 1 << (b - 0xc4); break;
        case 0xc7: case 0xc8: case 0xc9: kind = 2; size = (size_t) 1 << (b - 0xc7); break;
        case 0xca: case 0xcb: {
            int n = b == 0xca? 4: 8;
            if (!s_need (c, (size_t) n))
                return false;
            uint64_t bits = s_be (c->p, n);
            c->p += n;
            if (n == 4) {
                uint32_t u = (uint32_t) bits;
                float f;
                memcpy (&f, &u, 4);
                obj->type = MSGPACK_OBJECT_FLOAT32;
                obj->via.f64 = f;
            }
            else {
                double d;
                memcpy (&d, &bits, 8);
                obj->type = MSGPACK_OBJECT_FLOAT64;
                obj->via.f64 = d;
            }
            return true;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf: {
            int n = 1 << (b - 0xcc);
            if (!s_need (c, (size_t) n))
                return false;
            obj->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            obj->via.u64 = s_be (c->p, n);
            c->p += n;
            return true;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            int n = 1 << (b - 0xd0);
            if (!s_need (c, (size_t) n))
                return false;
            uint64_t u = s_be (c->p, n);
            c->p += n;
            int64_t v = n == 1? (int8_t) u: n == 2? (int16_t) u: n == 4? (int32_t) u: (int64_t) u;
            //  msgpack_unpack: a signed encoding of a value >= 0 is positive
            obj->type = v < 0? MSGPACK_OBJECT_NEGATIVE_INTEGER: MSGPACK_OBJECT_POSITIVE_INTEGER;
            if (v < 0)
                obj->via.i64 = v;
            else
                obj->via.u64 = (uint64_t) v;
            return true;
        }
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            kind = 2;
            len = (size_t) 1 << (b - 0xd4);
            break;
        case 0xd9: case 0xda: case 0xdb: kind = 0; size = (size_t) 1 << (b - 0xd9); break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
            int n = (b == 0xdc || b == 0xde)? 2: 4;
            if (!s_need (c, (size_t) n))
                return false;
            *head = b <= 0xdd? S_ARRAY: S_MAP;
            *count = (uint32_t) s_be (c->p, n);
            c->p += n;
            return true;
        }
        default:                //  0xc1: never used
            c->bad = true;
            return false;
    }
    if (size) {
        if (!s_need (c, size))
            return false;
        len = (size_t) s_be (c->p, (int) size);
        c->p += size;
    }
    if (kind == 2)
        len++;                  //  the ext type byte
    if (!s_need (c, len))
        return false;
    obj->type = kind == 0? MSGPACK_OBJECT_STR: kind == 1? MSGPACK_OBJECT_BIN: MSGPACK_OBJECT_EXT;
    obj->via.str.ptr = (const char *) c->p;
    obj->via.str.size = (uint32_t) len;
    c->p += len;
    return true;
}

//  The whole size of an object from its first byte, for the objects whose
//  size that byte tells (fixint, fixstr, nil, bool, float, (u)int, fixext);
//  0 for the others (maps, arrays, str/bin/ext with a length field)
static const uint8_t s_fixed_size [256] = {
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
     1,  0,  1,  1,  0,  0,  0,  0,  0,  0,  5,  9,  2,  3,  5,  9,
     2,  3,  5,  9,  3,  4,  6, 10, 18,  0,  0,  0,  0,  0,  0,  0,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
};

//  Skips n objects, however nested (no recursion).
static bool
s_skip (s_cursor_t *c, uint64_t n)
{
    while (n) {
        //  Every object takes one byte at least: more pending than bytes
        //  left is data that cannot be complete
        if (n > (uint64_t) (c->end - c->p)) {
            c->bad = true;
            return false;
        }
        //  The common headers first
        uint8_t b = *c->p;
        size_t fixed = s_fixed_size [b];
        if (fixed) {
            if ((size_t) (c->end - c->p) < fixed) {
                c->bad = true;
                return false;
            }
            c->p += fixed;
            n--;
            continue;
        }
        if ((b & 0xe0) == 0x80) {                   //  fixmap, fixarray
            c->p++;
            n = n - 1 + (uint64_t) (b & 0x0f) * ((b & 0xf0) == 0x80? 2: 1);
            continue;
        }
        if (b == 0xd9) {                            //  str 8
            if ((size_t) (c->end - c->p) < 2 || (size_t) (c->end - c->p) - 2 < c->p [1]) {
                c->bad = true;
                return false;
            }
            c->p += 2 + (size_t) c->p [1];
            n--;
            continue;
        }
        s_head_t head;
        uint32_t count;
        msgpack_object obj;
        if (!s_head (c, &head, &count, &obj))
            return false;
        n--;
        if (head == S_MAP)
            n += 2 * (uint64_t) count;
        else
        if (head == S_ARRAY)
            n += count;
    }
    return true;
}

//  The value at the cursor, at path (as s_walk)
static void
s_walk_packed (zb_patterns_t *self, s_cursor_t *c, uint32_t path, uint32_t scope,
               uint32_t base, uint32_t n_pending, uint32_t depth)
{
    s_head_t head;
    uint32_t count;
    msgpack_object obj;
    if (self->oom || !s_head (c, &head, &count, &obj))
        return;
    const s_index_t *ix = self->ix;
    const s_path_t *p = &ix->paths [path];
    if (head == S_MAP) {
        if (depth >= S_MAX_WALK_DEPTH || !(p->flags & P_CHILDREN)) {
            s_skip (c, 2 * (uint64_t) count);
            return;
        }
        if (n_pending) {
            scope = s_new_scope (self, scope, base, n_pending);
            base += n_pending;
        }
        //  The common case in line, on a local copy of the cursor (c->p is
        //  written back before any call that reads it). c->bad and
        //  self->oom are set only by the calls, checked after them.
        const uint8_t *at = c->p, *end = c->end;
        for (uint32_t i = 0; i < count; i++) {
            const uint8_t *key;
            size_t len;
            if (at < end && (*at & 0xe0) == 0xa0) {
                //  A fixstr key: nearly all of them
                len = *at & 0x1f;
                key = at + 1;
                if ((size_t) (end - key) < len) {
                    c->bad = true;
                    return;
                }
                at = key + len;
            }
            else {
                s_head_t key_head;
                uint32_t key_count;
                msgpack_object obj_key;
                c->p = at;
                if (!s_head (c, &key_head, &key_count, &obj_key))
                    return;
                at = c->p;
                if (key_head != S_SCALAR || obj_key.type != MSGPACK_OBJECT_STR) {
                    //  A map, array or non-string as a key: skipped with its value
                    uint64_t n = key_head == S_SCALAR? 1: (key_head == S_MAP? 2: 1) * (uint64_t) key_count + 1;
                    if (!s_skip (c, n))
                        return;
                    at = c->p;
                    continue;
                }
                key = (const uint8_t *) obj_key.via.str.ptr;
                len = obj_key.via.str.size;
            }
            uint32_t child = 0;
            if (p->child_lens & (1ULL << (len < 63? len: 63)))
                child = s_child_fast (ix, path, s_key_head_packed (key, len, end), (const char *) key, len);
            size_t n = at < end? s_fixed_size [*at]: 0;
            if (n && n <= (size_t) (end - at)) {
                //  A value whose first byte tells its size: a scalar. At a
                //  key no pattern names, skipped in line; at a named path,
                //  straight to s_leaf (as the call below would)
                if (child && (ix->paths [child].flags & P_LEAF) && depth + 1 < S_MAX_WALK_DEPTH) {
                    msgpack_object value;
                    if ((*at & 0xe0) == 0xa0) {
                        value.type = MSGPACK_OBJECT_STR;
                        value.via.str.ptr = (const char *) at + 1;
                        value.via.str.size = (uint32_t) n - 1;
                    }
                    else {
                        s_cursor_t scalar = { at, end, false };
                        s_head_t value_head;
                        uint32_t value_count;
                        s_head (&scalar, &value_head, &value_count, &value);
                    }
                    s_leaf (self, child, &value, scope);
                    if (self->oom)
                        return;
                }
                at += n;
                continue;
            }
            c->p = at;
            if (child)
                s_walk_packed (self, c, child, scope, base, 0, depth + 1);
            else
                s_skip (c, 1);
            if (c->bad || self->oom)
                return;
            at = c->p;
        }
        c->p = at;
    }
    else
    if (head == S_ARRAY) {
        if (depth >= S_MAX_WALK_DEPTH || !(p->flags & (P_CHILDREN | P_LEAF))) {
            s_skip (c, count);
            return;
        }
        uint32_t id = self->n_arrays++;
        uint32_t slot = base + n_pending;
        for (uint32_t i = 0; i < count && !c->bad && !self->oom; i++) {
            self->pending [2 * slot] = id;
            self->pending [2 * slot + 1] = i;
            s_walk_packed (self, c, path, scope, base, n_pending + 1, depth + 1);
        }
    }
    else
    if ((p->flags & P_LEAF) && depth < S_MAX_WALK_DEPTH)
        s_leaf (self, path, &obj, scope);
}

//  --------------------------------------------------------------------------
//  Matching: candidates

//  No two objects of the same array at different indexes.
static inline bool
s_compatible (const zb_patterns_t *self, uint32_t a, uint32_t b)
{
    if (a == b)
        return true;
    const s_scope_t *sa = &self->scopes [a], *sb = &self->scopes [b];
    uint32_t n = sa->len < sb->len? sa->len: sb->len;
    const uint32_t *ta = self->trail + 2 * (size_t) sa->off;
    const uint32_t *tb = self->trail + 2 * (size_t) sb->off;
    for (uint32_t i = 0; i < n; i++) {
        if (ta [2 * i] != tb [2 * i])
            return true;        //  parted at an object: different arrays
        if (ta [2 * i + 1] != tb [2 * i + 1])
            return false;       //  same array, different elements
    }
    return true;
}

static bool
s_compatible_all (const zb_patterns_t *self, uint32_t scope, uint32_t n_chosen)
{
    for (uint32_t k = 0; k < n_chosen; k++)
        if (!s_compatible (self, scope, self->chosen [k]))
            return false;
    return true;
}

//  No value at path in a scope that could join the chosen ones.
static bool
s_absent (const zb_patterns_t *self, uint32_t path, uint32_t n_chosen)
{
    const s_index_t *ix = self->ix;
    if (ix->path_stamp [path] != self->gen)
        return true;
    for (int32_t o = ix->path_head [path]; o >= 0; o = self->occs [o].next)
        if (s_compatible_all (self, self->occs [o].scope, n_chosen))
            return false;
    return true;
}

//  Condition k of branch onward, with chosen [0, n_chosen) picked and the
//  conditions in deferred [0, n_deferred) relying on absence.
static bool
s_search (zb_patterns_t *self, const s_branch_t *branch, uint32_t k,
          uint32_t n_chosen, uint32_t n_deferred)
{
    const s_index_t *ix = self->ix;
    if (k == branch->n) {
        //  Absence only gets easier as scopes are chosen: check it last
        for (uint32_t d = 0; d < n_deferred; d++)
            if (!s_absent (self, ix->cs [self->deferred [d]].path, n_chosen))
                return false;
        return true;
    }
    uint32_t c = ix->branch_conds [branch->first + k];
    if (ix->cs [c].can_absent) {
        self->deferred [n_deferred] = c;
        if (s_search (self, branch, k + 1, n_chosen, n_deferred + 1))
            return true;
    }
    if (ix->cs [c].stamp != self->gen)
        return false;
    for (int32_t h = ix->cs [c].head; h >= 0; h = self->hits [h].next) {
        uint32_t scope = self->hits [h].scope;
        if (!s_compatible_all (self, scope, n_chosen))
            continue;
        self->chosen [n_chosen] = scope;
        if (s_search (self, branch, k + 1, n_chosen + 1, n_deferred))
            return true;
    }
    return false;
}

static bool
s_verify (zb_patterns_t *self, uint32_t b)
{
    const s_index_t *ix = self->ix;
    const s_branch_t *branch = &ix->branches [b];
    const uint32_t *conds = ix->branch_conds + branch->first;
    for (uint32_t k = 0; k < branch->n; k++)
        if (ix->cs [conds [k]].lazy && ix->cs [conds [k]].mat_stamp != self->gen)
            s_materialize (self, conds [k]);
    if (self->oom)
        return false;
    for (uint32_t k = 0; k < branch->n_must; k++)
        if (ix->cs [conds [k]].stamp != self->gen)
            return false;
    if (self->n_scopes > 1)
        return s_search (self, branch, 0, 0, 0);
    //  One scope: every hit is compatible; absent conditions need no value
    for (uint32_t k = branch->n_must; k < branch->n; k++) {
        uint32_t c = conds [k];
        if (ix->cs [c].stamp != self->gen && ix->path_stamp [ix->cs [c].path] == self->gen)
            return false;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  The set

zb_patterns_t *
zb_patterns_new (void)
{
    zb_patterns_t *self = calloc (1, sizeof (zb_patterns_t));
    if (!self)
        return NULL;
    self->max_size = ZB_PATTERN_DEFAULT_MAX_SIZE;
    self->by_name = zhashx_new ();
    if (!self->by_name) {
        free (self);
        return NULL;
    }
    self->dirty = true;
    return self;
}

void
zb_patterns_destroy (zb_patterns_t **self_p)
{
    assert (self_p);
    zb_patterns_t *self = *self_p;
    if (!self)
        return;
    s_index_destroy (&self->ix);
    for (size_t i = 0; i < self->n_progs; i++)
        zb_program_destroy (&self->progs [i]);
    free (self->progs);
    zhashx_destroy (&self->by_name);
    free (self->hits);
    free (self->occs);
    free (self->kept);
    free (self->hit_conds);
    free (self->scopes);
    free (self->trail);
    free (self->fold);
    free (self->chosen);
    free (self->deferred);
    free (self);
    *self_p = NULL;
}

void
zb_patterns_set_max_size (zb_patterns_t *self, size_t max_size)
{
    assert (self);
    self->max_size = max_size;
}

static size_t
s_find_prog (zb_patterns_t *self, const zb_program_t *prog)
{
    for (size_t i = 0; i < self->n_progs; i++)
        if (self->progs [i] == prog)
            return i;
    return self->n_progs;
}

int
zb_patterns_add (zb_patterns_t *self, const char *name, const char *json, size_t len,
                 char *err, size_t errlen)
{
    assert (self);
    if (!name || !*name) {
        if (err && errlen)
            snprintf (err, errlen, "a pattern needs a name");
        return -1;
    }
    zb_program_t *prog = zb_program_compile (name, json, len, self->max_size, err, errlen);
    if (!prog)
        return -1;
    zb_program_t *old = zhashx_lookup (self->by_name, name);
    if (old) {
        size_t i = s_find_prog (self, old);
        assert (i < self->n_progs);
        self->progs [i] = prog;
        zhashx_update (self->by_name, name, prog);
        zb_program_destroy (&old);
    }
    else {
        if (!s_grow ((void **) &self->progs, &self->cap_progs, self->n_progs + 1, sizeof (zb_program_t *))
        ||  zhashx_insert (self->by_name, name, prog) != 0) {
            zb_program_destroy (&prog);
            if (err && errlen)
                snprintf (err, errlen, "out of memory");
            return -1;
        }
        self->progs [self->n_progs++] = prog;
    }
    //  The index points into the programs: drop it now, rebuild on demand
    s_index_destroy (&self->ix);
    self->dirty = true;
    return 0;
}

int
zb_patterns_remove (zb_patterns_t *self, const char *name)
{
    assert (self);
    zb_program_t *prog = name? zhashx_lookup (self->by_name, name): NULL;
    if (!prog)
        return -1;
    size_t i = s_find_prog (self, prog);
    assert (i < self->n_progs);
    memmove (self->progs + i, self->progs + i + 1, (self->n_progs - i - 1) * sizeof (zb_program_t *));
    self->n_progs--;
    zhashx_delete (self->by_name, name);
    s_index_destroy (&self->ix);
    zb_program_destroy (&prog);
    self->dirty = true;
    return 0;
}

size_t
zb_patterns_size (zb_patterns_t *self)
{
    assert (self);
    return self->n_progs;
}

//  Index built, per-event state reset; false when there is nothing to match
static bool
s_match_begin (zb_patterns_t *self)
{
    if (self->n_progs == 0)
        return false;
    if (self->dirty || !self->ix) {
        s_index_destroy (&self->ix);
        self->ix = s_index_build (self);
        if (!self->ix)
            return false;
        self->dirty = false;
    }
    self->gen++;
    self->oom = false;
    self->n_hits = self->n_occs = self->n_hit_conds = self->n_trail = 0;
    self->n_kept = 0;
    self->n_arrays = 0;
    if (!s_grow ((void **) &self->scopes, &self->cap_scopes, 1, sizeof (s_scope_t)))
        return false;
    self->scopes [0] = (s_scope_t) { 0, 0 };
    self->n_scopes = 1;
    return true;
}

//  After the walk: the branches anchored on a condition hit, then those
//  that need no value, verified
static size_t
s_match_end (zb_patterns_t *self, const char **names, size_t max_names)
{
    if (self->oom)
        return 0;
    s_index_t *ix = self->ix;
    size_t count = 0;
    for (size_t i = 0; i <= self->n_hit_conds; i++) {
        const uint32_t *list;
        uint32_t n;
        if (i < self->n_hit_conds) {
            uint32_t c = self->hit_conds [i];
            list = ix->anchored + ix->anchored_off [c];
            n = ix->anchored_off [c + 1] - ix->anchored_off [c];
        }
        else {
            list = ix->always;
            n = ix->n_always;
        }
        for (uint32_t j = 0; j < n; j++) {
            uint32_t b = list [j];
            uint32_t pattern = ix->branches [b].pattern;
            if (ix->pattern_stamp [pattern] == self->gen || !s_verify (self, b))
                continue;
            ix->pattern_stamp [pattern] = self->gen;
            if (names && count < max_names)
                names [count] = ix->names [pattern];
            count++;
        }
    }
    return self->oom? 0: count;
}

size_t
zb_patterns_match (zb_patterns_t *self, const msgpack_object *event,
                   const char **names, size_t max_names)
{
    assert (self);
    if (!event || event->type != MSGPACK_OBJECT_MAP || !s_match_begin (self))
        return 0;
    s_walk (self, event, 0, 0, 0, 0, 0);
    return s_match_end (self, names, max_names);
}

size_t
zb_patterns_match_packed (zb_patterns_t *self, const void *data, size_t size,
                          const char **names, size_t max_names)
{
    assert (self);
    const uint8_t *bytes = data;
    //  A map: fixmap, map 16, map 32
    if (!data || size == 0 || !((bytes [0] & 0xf0) == 0x80 || bytes [0] == 0xde || bytes [0] == 0xdf)
    ||  !s_match_begin (self))
        return 0;
    s_cursor_t cursor = { bytes, bytes + size, false };
    s_walk_packed (self, &cursor, 0, 0, 0, 0, 0);
    if (cursor.bad)
        return 0;
    return s_match_end (self, names, max_names);
}
