/*  pattern_ref.c - the reference matcher (see pattern_ref.h): slow, plain,
    written from the definitions. Nothing here is shared with common/pattern*.c. */

#include "pattern_ref.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_MAX_PATH  16          //  keys in a path
#define R_MAX_TRAIL 16          //  arrays a leaf sits in
#define R_MAX_CONDS 256         //  conditions in one $or combination

//  --------------------------------------------------------------------------
//  Paths

typedef struct {
    const char *keys [R_MAX_PATH];
    size_t lens [R_MAX_PATH];
    int depth;
    uint64_t hash;              //  of the keys, to skip most comparisons
} r_path_t;

static uint64_t
r_path_hash (const r_path_t *path)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < path->depth; i++) {
        h = (h ^ path->lens [i]) * 0x100000001b3ULL;
        for (size_t k = 0; k < path->lens [i]; k++)
            h = (h ^ (unsigned char) path->keys [i][k]) * 0x100000001b3ULL;
    }
    return h;
}

static bool
r_path_eq (const r_path_t *a, const r_path_t *b)
{
    if (a->hash != b->hash || a->depth != b->depth)
        return false;
    for (int i = 0; i < a->depth; i++)
        if (a->lens [i] != b->lens [i] || (a->lens [i] && memcmp (a->keys [i], b->keys [i], a->lens [i])))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  The event, flattened

typedef struct {
    r_path_t path;
    const msgpack_object *value;
    int trail [R_MAX_TRAIL][2];
    int n_trail;
} r_leaf_t;

struct pattern_ref_event_t {
    r_leaf_t *leaves;
    int n, cap;
    int arrays;
};

pattern_ref_event_t *
pattern_ref_event_new (void)
{
    return calloc (1, sizeof (pattern_ref_event_t));
}

void
pattern_ref_event_destroy (pattern_ref_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->leaves);
    free (*self_p);
    *self_p = NULL;
}

//  committed: the trail entries above the innermost object
static int
r_flatten (pattern_ref_event_t *ev, const msgpack_object *obj, const r_path_t *path,
           int trail [][2], int n_trail, int committed)
{
    if (obj->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            const msgpack_object_kv *kv = &obj->via.map.ptr [i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            if (path->depth == R_MAX_PATH)
                return -1;
            r_path_t sub = *path;
            sub.keys [sub.depth] = kv->key.via.str.ptr;
            sub.lens [sub.depth] = kv->key.via.str.size;
            sub.depth++;
            sub.hash = r_path_hash (&sub);
            if (r_flatten (ev, &kv->val, &sub, trail, n_trail, n_trail))
                return -1;
        }
        return 0;
    }
    if (obj->type == MSGPACK_OBJECT_ARRAY) {
        int id = ev->arrays++;
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            if (n_trail == R_MAX_TRAIL)
                return -1;
            trail [n_trail][0] = id;
            trail [n_trail][1] = (int) i;
            if (r_flatten (ev, &obj->via.array.ptr [i], path, trail, n_trail + 1, committed))
                return -1;
        }
        return 0;
    }
    if (obj->type == MSGPACK_OBJECT_BIN || obj->type == MSGPACK_OBJECT_EXT)
        return 0;               //  not a JSON value: no value
    if ((obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64) && isnan (obj->via.f64))
        return 0;
    if (ev->n == ev->cap) {
        int cap = ev->cap? 2 * ev->cap: 64;
        r_leaf_t *leaves = realloc (ev->leaves, (size_t) cap * sizeof (r_leaf_t));
        if (!leaves)
            return -1;
        ev->leaves = leaves;
        ev->cap = cap;
    }
    r_leaf_t *leaf = &ev->leaves [ev->n++];
    leaf->path = *path;
    leaf->value = obj;
    leaf->n_trail = committed;
    memcpy (leaf->trail, trail, sizeof (int) * 2 * (size_t) committed);
    return 0;
}

int
pattern_ref_event_load (pattern_ref_event_t *self, const msgpack_object *event)
{
    self->n = 0;
    self->arrays = 0;
    if (event->type != MSGPACK_OBJECT_MAP)
        return -1;
    r_path_t root;
    memset (&root, 0, sizeof (root));
    root.hash = r_path_hash (&root);
    int trail [R_MAX_TRAIL][2];
    return r_flatten (self, event, &root, trail, 0, 0);
}

static bool
r_compatible (const r_leaf_t *a, const r_leaf_t *b)
{
    for (int i = 0; i < a->n_trail; i++)
        for (int j = 0; j < b->n_trail; j++)
            if (a->trail [i][0] == b->trail [j][0] && a->trail [i][1] != b->trail [j][1])
                return false;
    return true;
}

//  --------------------------------------------------------------------------
//  One alternative against one value

static bool
r_value_num (const msgpack_object *v, double *d)
{
    switch (v->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER: *d = (double) v->via.u64; return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: *d = (double) v->via.i64; return true;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:          *d = v->via.f64; return true;
        default: return false;
    }
}

static bool
r_is_num (json_object *j)
{
    return json_object_is_type (j, json_type_int) || json_object_is_type (j, json_type_double);
}

static bool
r_scalar_eq (json_object *p, const msgpack_object *v)
{
    double d;
    if (r_is_num (p))
        return r_value_num (v, &d) && json_object_get_double (p) == d;
    if (json_object_is_type (p, json_type_string))
        return v->type == MSGPACK_OBJECT_STR
            && (size_t) json_object_get_string_len (p) == v->via.str.size
            && memcmp (json_object_get_string (p), v->via.str.ptr, v->via.str.size) == 0;
    if (json_object_is_type (p, json_type_boolean))
        return v->type == MSGPACK_OBJECT_BOOLEAN && (bool) json_object_get_boolean (p) == v->via.boolean;
    return p == NULL && v->type == MSGPACK_OBJECT_NIL;     //  json-c's null
}

//  A string value: bytes and length
typedef struct {
    const char *s;
    size_t len;
} r_str_t;

static bool
r_prefix (r_str_t s, const char *p, bool ci)
{
    size_t lp = strlen (p);
    if (lp > s.len)
        return false;
    for (size_t i = 0; i < lp; i++) {
        char a = s.s [i], b = p [i];
        if (ci? tolower ((unsigned char) a) != tolower ((unsigned char) b): a != b)
            return false;
    }
    return true;
}

static bool
r_suffix (r_str_t s, const char *p, bool ci)
{
    size_t lp = strlen (p);
    if (lp > s.len)
        return false;
    r_str_t tail = { s.s + s.len - lp, lp };
    return r_prefix (tail, p, ci);
}

static bool
r_eq_ci (r_str_t s, const char *p)
{
    return strlen (p) == s.len && r_prefix (s, p, true);
}

//  Glob with '*' and the escapes \* and \\, by backtracking
static bool
r_glob (const char *p, const char *s, size_t len)
{
    if (*p == 0)
        return len == 0;
    if (*p == '*')
        return r_glob (p + 1, s, len) || (len && r_glob (p, s + 1, len - 1));
    char c = *p;
    const char *next = p + 1;
    if (c == '\\') {
        c = p [1];
        next = p + 2;
    }
    return len && *s == c && r_glob (next, s + 1, len - 1);
}

//  Is the text an address of the block ("addr/bits")? IPv4 or IPv6, by the block.
static bool
r_cidr (const char *block, r_str_t s)
{
    char net_text [64], addr_text [64];
    snprintf (net_text, sizeof (net_text), "%s", block);
    char *slash = strchr (net_text, '/');
    if (!slash || s.len >= sizeof (addr_text))
        return false;
    *slash = 0;
    int bits = atoi (slash + 1);
    memcpy (addr_text, s.s, s.len);
    addr_text [s.len] = 0;
    int family = strchr (net_text, ':')? AF_INET6: AF_INET;
    unsigned char net [16], addr [16];
    if (inet_pton (family, net_text, net) != 1 || inet_pton (family, addr_text, addr) != 1)
        return false;
    for (int i = 0; i < bits; i++) {
        int bit = 7 - i % 8;
        if (((net [i / 8] >> bit) & 1) != ((addr [i / 8] >> bit) & 1))
            return false;
    }
    return true;
}

static bool
r_numeric (json_object *ops, double v)
{
    size_t n = json_object_array_length (ops);
    for (size_t i = 0; i + 1 < n; i += 2) {
        const char *op = json_object_get_string (json_object_array_get_idx (ops, i));
        double bound = json_object_get_double (json_object_array_get_idx (ops, i + 1));
        bool ok = !strcmp (op, "=")? v == bound: !strcmp (op, "<")? v < bound: !strcmp (op, "<=")? v <= bound:
                  !strcmp (op, ">")? v > bound: v >= bound;
        if (!ok)
            return false;
    }
    return true;
}

//  Is v excluded by one entry of an anything-but object form?
static bool
r_excluded_by (const char *op, json_object *item, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return false;
    r_str_t s = { v->via.str.ptr, v->via.str.size };
    const char *p = json_object_get_string (item);
    if (!strcmp (op, "prefix"))
        return r_prefix (s, p, false);
    if (!strcmp (op, "suffix"))
        return r_suffix (s, p, false);
    if (!strcmp (op, "equals-ignore-case"))
        return r_eq_ci (s, p);
    return r_glob (p, s.s, s.len);
}

//  Does one alternative accept the value v (a present leaf)?
static bool
r_alt (json_object *alt, const msgpack_object *v)
{
    if (!json_object_is_type (alt, json_type_object))
        return r_scalar_eq (alt, v);
    bool is_str = v->type == MSGPACK_OBJECT_STR;
    r_str_t s = { is_str? v->via.str.ptr: NULL, is_str? v->via.str.size: 0 };
    double d;
    json_object_object_foreach (alt, op, arg) {
        if (!strcmp (op, "exists"))
            return json_object_get_boolean (arg);
        if (!strcmp (op, "numeric"))
            return r_value_num (v, &d) && r_numeric (arg, d);
        if (!strcmp (op, "cidr"))
            return is_str && r_cidr (json_object_get_string (arg), s);
        if (!strcmp (op, "wildcard"))
            return is_str && r_glob (json_object_get_string (arg), s.s, s.len);
        if (!strcmp (op, "equals-ignore-case"))
            return is_str && r_eq_ci (s, json_object_get_string (arg));
        if (!strcmp (op, "prefix") || !strcmp (op, "suffix")) {
            bool pre = !strcmp (op, "prefix");
            if (!is_str)
                return false;
            json_object *ci;
            bool fold = json_object_object_get_ex (arg, "equals-ignore-case", &ci);
            const char *p = json_object_get_string (fold? ci: arg);
            return pre? r_prefix (s, p, fold): r_suffix (s, p, fold);
        }
        if (!strcmp (op, "anything-but")) {
            if (json_object_is_type (arg, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length (arg); i++)
                    if (r_scalar_eq (json_object_array_get_idx (arg, i), v))
                        return false;
                return true;
            }
            if (!json_object_is_type (arg, json_type_object))
                return !r_scalar_eq (arg, v);
            json_object_object_foreach (arg, sub, items) {
                if (json_object_is_type (items, json_type_array)) {
                    for (size_t i = 0; i < json_object_array_length (items); i++)
                        if (r_excluded_by (sub, json_object_array_get_idx (items, i), v))
                            return false;
                    return true;
                }
                return !r_excluded_by (sub, items, v);
            }
        }
        return false;           //  unknown operator: the pattern was not valid
    }
    return false;
}

//  --------------------------------------------------------------------------
//  The pattern, expanded into its $or combinations

typedef struct {
    const r_path_t *path;
    json_object *leaf;          //  the pattern's array
    bool can_absent;
} r_cond_t;

typedef struct {
    r_cond_t *conds;
    int n;
} r_branch_t;

typedef struct {
    r_branch_t *b;
    int n, cap;
    bool failed;
} r_branches_t;

struct pattern_ref_t {
    json_object *json;
    r_path_t **paths;           //  owned, one per leaf
    int n_paths, cap_paths;
    r_branches_t branches;
};

static void
r_push (r_branches_t *list, r_cond_t *conds, int n)
{
    if (list->failed)
        return;
    if (list->n == list->cap) {
        int cap = list->cap? 2 * list->cap: 4;
        r_branch_t *b = realloc (list->b, (size_t) cap * sizeof (r_branch_t));
        if (!b) {
            list->failed = true;
            return;
        }
        list->b = b;
        list->cap = cap;
    }
    r_branch_t *branch = &list->b [list->n];
    branch->conds = malloc ((n? (size_t) n: 1) * sizeof (r_cond_t));
    if (!branch->conds) {
        list->failed = true;
        return;
    }
    if (n)
        memcpy (branch->conds, conds, (size_t) n * sizeof (r_cond_t));
    branch->n = n;
    list->n++;
}

static void
r_free (r_branches_t *list)
{
    for (int i = 0; i < list->n; i++)
        free (list->b [i].conds);
    free (list->b);
    memset (list, 0, sizeof (*list));
}

static r_branches_t
r_product (r_branches_t *a, r_branches_t *b)
{
    r_branches_t out = { NULL, 0, 0, a->failed || b->failed };
    r_cond_t conds [R_MAX_CONDS];
    for (int i = 0; i < a->n && !out.failed; i++)
        for (int j = 0; j < b->n && !out.failed; j++) {
            if (a->b [i].n + b->b [j].n > R_MAX_CONDS) {
                out.failed = true;
                break;
            }
            memcpy (conds, a->b [i].conds, (size_t) a->b [i].n * sizeof (r_cond_t));
            memcpy (conds + a->b [i].n, b->b [j].conds, (size_t) b->b [j].n * sizeof (r_cond_t));
            r_push (&out, conds, a->b [i].n + b->b [j].n);
        }
    r_free (a);
    r_free (b);
    return out;
}

static const r_path_t *
r_keep_path (pattern_ref_t *self, const r_path_t *path)
{
    if (self->n_paths == self->cap_paths) {
        int cap = self->cap_paths? 2 * self->cap_paths: 8;
        r_path_t **paths = realloc (self->paths, (size_t) cap * sizeof (r_path_t *));
        if (!paths)
            return NULL;
        self->paths = paths;
        self->cap_paths = cap;
    }
    r_path_t *copy = malloc (sizeof (r_path_t));
    if (!copy)
        return NULL;
    *copy = *path;
    self->paths [self->n_paths++] = copy;
    return copy;
}

static r_branches_t
r_expand (pattern_ref_t *self, json_object *obj, const r_path_t *path)
{
    r_branches_t out = { NULL, 0, 0, false };
    r_push (&out, NULL, 0);
    if (!json_object_is_type (obj, json_type_object)) {
        out.failed = true;
        return out;
    }
    json_object_object_foreach (obj, key, value) {
        r_branches_t more = { NULL, 0, 0, false };
        if (!strcmp (key, "$or")) {
            for (size_t i = 0; i < json_object_array_length (value); i++) {
                r_branches_t alt = r_expand (self, json_object_array_get_idx (value, i), path);
                more.failed |= alt.failed;
                for (int k = 0; k < alt.n; k++)
                    r_push (&more, alt.b [k].conds, alt.b [k].n);
                r_free (&alt);
            }
        }
        else {
            r_path_t sub = *path;
            if (sub.depth == R_MAX_PATH) {
                more.failed = true;
                out = r_product (&out, &more);
                break;
            }
            sub.keys [sub.depth] = key;
            sub.lens [sub.depth] = strlen (key);
            sub.depth++;
            sub.hash = r_path_hash (&sub);
            if (json_object_is_type (value, json_type_object))
                more = r_expand (self, value, &sub);
            else {
                r_cond_t one = { r_keep_path (self, &sub), value, false };
                more.failed = one.path == NULL;
                for (size_t i = 0; i < json_object_array_length (value); i++) {
                    json_object *alt = json_object_array_get_idx (value, i), *flag;
                    if (json_object_is_type (alt, json_type_object)
                    &&  json_object_object_get_ex (alt, "exists", &flag) && !json_object_get_boolean (flag))
                        one.can_absent = true;
                }
                r_push (&more, &one, 1);
            }
        }
        out = r_product (&out, &more);
    }
    return out;
}

pattern_ref_t *
pattern_ref_new (const char *json, size_t len, char *err, size_t errlen)
{
    pattern_ref_t *self = calloc (1, sizeof (pattern_ref_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    json_tokener *tok = json_tokener_new ();
    if (tok) {
        self->json = json_tokener_parse_ex (tok, json, (int) len);
        json_tokener_free (tok);
    }
    if (!self->json || !json_object_is_type (self->json, json_type_object)) {
        snprintf (err, errlen, "reference: the pattern is not a JSON object");
        pattern_ref_destroy (&self);
        return NULL;
    }
    r_path_t root;
    memset (&root, 0, sizeof (root));
    root.hash = r_path_hash (&root);
    self->branches = r_expand (self, self->json, &root);
    if (self->branches.failed) {
        snprintf (err, errlen, "reference: pattern beyond the reference's limits (or out of memory)");
        pattern_ref_destroy (&self);
        return NULL;
    }
    return self;
}

void
pattern_ref_destroy (pattern_ref_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pattern_ref_t *self = *self_p;
    r_free (&self->branches);
    for (int i = 0; i < self->n_paths; i++)
        free (self->paths [i]);
    free (self->paths);
    json_object_put (self->json);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Matching

static bool
r_leaf_ok (const r_cond_t *cond, const r_leaf_t *leaf)
{
    if (!r_path_eq (cond->path, &leaf->path))
        return false;
    for (size_t i = 0; i < json_object_array_length (cond->leaf); i++)
        if (r_alt (json_object_array_get_idx (cond->leaf, i), leaf->value))
            return true;
    return false;
}

//  chosen [k]: leaf index taken by condition k, or -1 for "absent"
static bool
r_search (const pattern_ref_event_t *ev, const r_branch_t *br, int k, int *chosen)
{
    if (k == br->n) {
        for (int c = 0; c < br->n; c++) {
            if (chosen [c] >= 0)
                continue;
            for (int l = 0; l < ev->n; l++) {
                if (!r_path_eq (br->conds [c].path, &ev->leaves [l].path))
                    continue;
                bool compatible = true;
                for (int d = 0; d < br->n && compatible; d++)
                    if (chosen [d] >= 0)
                        compatible = r_compatible (&ev->leaves [l], &ev->leaves [chosen [d]]);
                if (compatible)
                    return false;
            }
        }
        return true;
    }
    if (br->conds [k].can_absent) {
        chosen [k] = -1;
        if (r_search (ev, br, k + 1, chosen))
            return true;
    }
    for (int l = 0; l < ev->n; l++) {
        if (!r_leaf_ok (&br->conds [k], &ev->leaves [l]))
            continue;
        bool compatible = true;
        for (int d = 0; d < k && compatible; d++)
            if (chosen [d] >= 0)
                compatible = r_compatible (&ev->leaves [l], &ev->leaves [chosen [d]]);
        if (!compatible)
            continue;
        chosen [k] = l;
        if (r_search (ev, br, k + 1, chosen))
            return true;
    }
    return false;
}

bool
pattern_ref_match (const pattern_ref_t *pattern, const pattern_ref_event_t *event)
{
    int chosen [R_MAX_CONDS];
    for (int b = 0; b < pattern->branches.n; b++)
        if (r_search (event, &pattern->branches.b [b], 0, chosen))
            return true;
    return false;
}
