/*  counts.c - counters by name; see counts.h. A zhashx of name -> uint64_t *. */

#include <assert.h>
#include <czmq.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"
#include "zb.h"

struct zb_counts_t {
    zhashx_t *table;
};

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static int
s_compare_strings (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

zb_counts_t *
zb_counts_new (void)
{
    zb_counts_t *self = (zb_counts_t *) calloc (1, sizeof (zb_counts_t));
    if (!self)
        return NULL;
    self->table = zhashx_new ();
    if (!self->table) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->table, s_free_item);
    return self;
}

void
zb_counts_destroy (zb_counts_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zhashx_destroy (&(*self_p)->table);
        free (*self_p);
        *self_p = NULL;
    }
}

bool
zb_counts_add (zb_counts_t *self, const char *ptr, size_t len)
{
    assert (self);
    //  Names are short (detail-types, store ids): no allocation for the key
    char small [ZB_MAX_DETAIL_TYPE + 1];
    char *key = len < sizeof small? small: strndup (ptr, len);
    if (!key)
        return false;
    if (key == small) {
        memcpy (small, ptr, len);
        small [len] = '\0';
    }
    bool counted = true;
    uint64_t *n = (uint64_t *) zhashx_lookup (self->table, key);
    if (n)
        (*n)++;
    else
    if ((n = (uint64_t *) malloc (sizeof (uint64_t)))) {
        *n = 1;
        zhashx_insert (self->table, key, n);
    }
    else
        counted = false;
    if (key != small)
        free (key);
    return counted;
}

json_object *
zb_counts_json (zb_counts_t *self)
{
    assert (self);
    size_t count = zhashx_size (self->table);
    const char **names = (const char **) calloc (count + 1, sizeof (char *));
    assert (names);
    size_t i = 0;
    for (void *n = zhashx_first (self->table); n; n = zhashx_next (self->table))
        names [i++] = (const char *) zhashx_cursor (self->table);
    qsort (names, count, sizeof (char *), s_compare_strings);
    json_object *object = json_object_new_object ();
    for (i = 0; i < count; i++) {
        uint64_t *n = (uint64_t *) zhashx_lookup (self->table, names [i]);
        json_object_object_add (object, names [i], json_object_new_uint64 (*n));
    }
    free (names);
    return object;
}
