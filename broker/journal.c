/*  journal.c - the broker's store of record; see journal.h.

    This file holds what both backends share: argument checks (a record out of
    sequence is refused here, before a backend sees it), the per-topic heads
    (a small table in memory, so zb_journal_topics needs no transaction), and
    the index of entries by byte-string key that journal_memory.c uses for its
    idempotency keys as well. Everything else goes through the backend's table
    of functions (journal_impl.h). */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "journal_impl.h"
#include "siphash.h"

//  --------------------------------------------------------------------------
//  zb_jhash_t: see journal_impl.h
//
//  Slots hold {hash, seq}; beside them, one tag byte per slot: 0 empty,
//  0x80 | the hash's top 7 bits for a pair, JTAG_GONE for a tombstone. A
//  probe reads tags and only looks at a slot whose tag matches: a new key
//  (the common case) touches a run of tag bytes and no slot, and the tags of
//  millions of keys are 1/16 of the slots (they stay in cache and TLB reach;
//  with 16-byte slots alone, the first probe of each key missed both and was
//  the broker's costliest load with idempotency keys).
//  While growing, the old array is drained from slot 0 up; a drained slot
//  becomes a tombstone so probe chains through it stay intact, and so does a
//  pair removed from the old array. The current array never has tombstones
//  (backward-shift deletion), and lookups probe both arrays.

#define JHASH_MIN       64      //  slots
#define JHASH_STEP      8       //  old slots drained per insertion
#define JTAG_EMPTY      0x00
#define JTAG_GONE       0x01

typedef struct {
    uint64_t hash;
    uint64_t seq;
} jhslot_t;

typedef struct {
    jhslot_t *slots;            //  mask + 1 slots, then their tags (one block)
    uint8_t *tags;
    size_t mask;
} jharray_t;

struct zb_jhash_t {
    jharray_t cur;              //  slots NULL until the first reserve
    jharray_t old;              //  array being drained; slots NULL when none
    size_t drained;             //  old [0, drained) are drained
    size_t size;                //  pairs in both arrays
    uint64_t key [2];
};

static inline uint8_t
s_jtag (uint64_t hash)
{
    return (uint8_t) (0x80 | (hash >> 57));
}

static int
s_jarray_alloc (jharray_t *array, size_t count)
{
    jhslot_t *slots = (jhslot_t *) calloc (count, sizeof (jhslot_t) + 1);
    if (!slots)
        return -1;
    array->slots = slots;
    array->tags = (uint8_t *) (slots + count);
    array->mask = count - 1;
    return 0;
}

static void
s_jarray_free (jharray_t *array)
{
    free (array->slots);
    array->slots = NULL;
    array->tags = NULL;
    array->mask = 0;
}

zb_jhash_t *
zb_jhash_new (void)
{
    zb_jhash_t *self = (zb_jhash_t *) calloc (1, sizeof (zb_jhash_t));
    if (!self)
        return NULL;
    zb_siphash_key (self->key);
    return self;
}

void
zb_jhash_destroy (zb_jhash_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        s_jarray_free (&(*self_p)->cur);
        s_jarray_free (&(*self_p)->old);
        free (*self_p);
        *self_p = NULL;
    }
}

uint64_t
zb_jhash_of (zb_jhash_t *self, const void *key, size_t len)
{
    assert (self);
    return zb_siphash (self->key, key, len);
}

static void
s_jhash_place (zb_jhash_t *self, uint64_t hash, uint64_t seq)
{
    jharray_t *a = &self->cur;
    size_t i = hash & a->mask;
    while (a->tags [i] != JTAG_EMPTY)
        i = (i + 1) & a->mask;
    a->tags [i] = s_jtag (hash);
    a->slots [i].hash = hash;
    a->slots [i].seq = seq;
}

static void
s_jhash_drain (zb_jhash_t *self, size_t count)
{
    jharray_t *old = &self->old;
    while (old->slots && count--) {
        size_t i = self->drained;
        if (old->tags [i] & 0x80) {
            s_jhash_place (self, old->slots [i].hash, old->slots [i].seq);
            old->tags [i] = JTAG_GONE;
        }
        if (++self->drained > old->mask) {
            s_jarray_free (old);
            self->drained = 0;
        }
    }
}

int
zb_jhash_reserve (zb_jhash_t *self, size_t more)
{
    assert (self);
    if (more > SIZE_MAX / 4 - self->size)
        return -1;
    size_t need = (self->size + more) * 2;          //  at most half full
    size_t have = self->cur.slots? self->cur.mask + 1: 0;
    if (need <= have)
        return 0;
    size_t count = have? have: JHASH_MIN;
    while (count < need)
        count *= 2;
    if (count > SIZE_MAX / (sizeof (jhslot_t) + 1))
        return -1;
    jharray_t grown;
    if (s_jarray_alloc (&grown, count))
        return -1;
    s_jhash_drain (self, SIZE_MAX);                 //  a previous growth, if any
    self->old = self->cur;
    self->drained = 0;
    self->cur = grown;
    if (!self->old.slots || self->size < 4096)
        s_jhash_drain (self, SIZE_MAX);             //  small: no need to spread it
    return 0;
}

void
zb_jhash_insert (zb_jhash_t *self, uint64_t hash, uint64_t seq)
{
    assert (self);
    assert (seq);
    assert (self->cur.slots && (self->size + 1) * 2 <= self->cur.mask + 1);   //  reserved
    s_jhash_drain (self, JHASH_STEP);
    s_jhash_place (self, hash, seq);
    self->size++;
}

int
zb_jhash_remove (zb_jhash_t *self, uint64_t hash, uint64_t seq)
{
    assert (self);
    if (self->size == 0)
        return 0;
    uint8_t tag = s_jtag (hash);
    jharray_t *a = &self->cur;
    size_t i = hash & a->mask;
    for (; a->tags [i] != JTAG_EMPTY; i = (i + 1) & a->mask) {
        if (a->tags [i] != tag || a->slots [i].seq != seq || a->slots [i].hash != hash)
            continue;
        //  Backward-shift deletion (Knuth 6.4, algorithm R)
        size_t j = i;
        while (true) {
            j = (j + 1) & a->mask;
            if (a->tags [j] == JTAG_EMPTY)
                break;
            size_t home = a->slots [j].hash & a->mask;
            bool stays = (i <= j)? (i < home && home <= j): (i < home || home <= j);
            if (!stays) {
                a->slots [i] = a->slots [j];
                a->tags [i] = a->tags [j];
                i = j;
            }
        }
        a->tags [i] = JTAG_EMPTY;
        self->size--;
        return 1;
    }
    jharray_t *old = &self->old;
    if (old->slots) {
        for (i = hash & old->mask; old->tags [i] != JTAG_EMPTY; i = (i + 1) & old->mask) {
            if (old->tags [i] == tag && old->slots [i].seq == seq
            &&  old->slots [i].hash == hash) {
                old->tags [i] = JTAG_GONE;
                self->size--;
                return 1;
            }
        }
    }
    return 0;
}

//  fn for each seq of array a filed under hash, until it returns non-zero
static int
s_jarray_find (const jharray_t *a, uint64_t hash, zb_jhash_fn *fn, void *arg)
{
    uint8_t tag = s_jtag (hash);
    int rc;
    for (size_t i = hash & a->mask; a->tags [i] != JTAG_EMPTY; i = (i + 1) & a->mask)
        if (a->tags [i] == tag && a->slots [i].hash == hash && (rc = fn (arg, a->slots [i].seq)))
            return rc;
    return 0;
}

int
zb_jhash_find (zb_jhash_t *self, uint64_t hash, zb_jhash_fn *fn, void *arg)
{
    assert (self);
    if (self->size == 0)
        return 0;
    int rc = s_jarray_find (&self->cur, hash, fn, arg);
    if (!rc && self->old.slots)
        rc = s_jarray_find (&self->old, hash, fn, arg);
    return rc;
}

void
zb_jhash_prefetch (zb_jhash_t *self, uint64_t hash)
{
    assert (self);
    if (self->cur.slots)
        __builtin_prefetch (&self->cur.tags [hash & self->cur.mask]);
    if (self->old.slots)
        __builtin_prefetch (&self->old.tags [hash & self->old.mask]);
}

size_t
zb_jhash_size (zb_jhash_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  zb_jindex_t: see journal_impl.h
//
//  A zb_jhash_t whose values are the entries' addresses: a lookup that misses
//  (a new idempotency key, the common case) reads one run of tag bytes
//  and no entry at all; only a slot whose 64-bit hash matches is followed to
//  its entry to compare the key. (A chained table read the bucket and then
//  each entry of the chain, a cache miss apiece: 20% of the broker's time
//  with 300,000 keys in the window.)

struct zb_jindex_t {
    zb_jhash_t *hash;
};

zb_jindex_t *
zb_jindex_new (void)
{
    zb_jindex_t *self = (zb_jindex_t *) calloc (1, sizeof (zb_jindex_t));
    if (!self)
        return NULL;
    self->hash = zb_jhash_new ();
    if (!self->hash) {
        free (self);
        return NULL;
    }
    return self;
}

void
zb_jindex_destroy (zb_jindex_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zb_jhash_destroy (&(*self_p)->hash);
        free (*self_p);
        *self_p = NULL;
    }
}

typedef struct {
    const void *key;
    size_t len;
    zb_jentry_t *found;
} jindex_probe_t;

static int
s_jindex_match (void *arg, uint64_t value)
{
    jindex_probe_t *probe = (jindex_probe_t *) arg;
    zb_jentry_t *entry = (zb_jentry_t *) (uintptr_t) value;
    if (entry->key.len != probe->len || memcmp (entry->key.ptr, probe->key, probe->len) != 0)
        return 0;
    probe->found = entry;
    return 1;
}

uint64_t
zb_jindex_hash (zb_jindex_t *self, const void *key, size_t len)
{
    assert (self);
    return zb_jhash_of (self->hash, key, len);
}

void *
zb_jindex_find (zb_jindex_t *self, uint64_t hash, const void *key, size_t len)
{
    assert (self);
    jindex_probe_t probe = { key, len, NULL };
    zb_jhash_find (self->hash, hash, s_jindex_match, &probe);
    return probe.found;
}

void *
zb_jindex_lookup (zb_jindex_t *self, const void *key, size_t len)
{
    assert (self);
    if (zb_jhash_size (self->hash) == 0)
        return NULL;
    return zb_jindex_find (self, zb_jhash_of (self->hash, key, len), key, len);
}

int
zb_jindex_reserve (zb_jindex_t *self, size_t more)
{
    assert (self);
    return zb_jhash_reserve (self->hash, more);
}

void
zb_jindex_insert (zb_jindex_t *self, zb_jentry_t *entry)
{
    assert (self);
    assert (entry);
    entry->hash = zb_jhash_of (self->hash, entry->key.ptr, entry->key.len);
    zb_jindex_insert_hashed (self, entry);
}

void
zb_jindex_prefetch (zb_jindex_t *self, uint64_t hash)
{
    assert (self);
    zb_jhash_prefetch (self->hash, hash);
}

void
zb_jindex_insert_hashed (zb_jindex_t *self, zb_jentry_t *entry)
{
    assert (self);
    assert (entry);
    zb_jhash_insert (self->hash, entry->hash, (uint64_t) (uintptr_t) entry);
}

int
zb_jindex_remove (zb_jindex_t *self, zb_jentry_t *entry)
{
    assert (self);
    assert (entry);
    return zb_jhash_remove (self->hash, entry->hash, (uint64_t) (uintptr_t) entry);
}

size_t
zb_jindex_size (zb_jindex_t *self)
{
    assert (self);
    return zb_jhash_size (self->hash);
}

//  --------------------------------------------------------------------------
//  The journal

struct zb_journal_t {
    const zb_journal_ops_t *ops;
    void *be;                       //  backend state
    char *path;                     //  data directory, "" for memory
    const char *sync;               //  "commit", "os", "none"
    zb_jindex_t *topic_index;
    zb_journal_topic_t **topics;    //  in order of creation (iteration)
    size_t ntopics;
    size_t topics_cap;
    zb_journal_topic_t **dirty;     //  scratch for append: topics a batch touches
    size_t dirty_cap;
    uint64_t mark;                  //  append call counter (dirty marks)
    char id [ZB_JOURNAL_ID_SIZE];   //  dedup_get: the id handed out
    char error [256];               //  last failure where the caller gave no buffer
};

//  The entry for a topic, created with topic_seq 0 when missing (an entry
//  that never gets a committed head stays invisible). NULL: out of memory.
static zb_journal_topic_t *
s_topic_require (zb_journal_t *self, const void *name, size_t len)
{
    zb_journal_topic_t *topic =
        (zb_journal_topic_t *) zb_jindex_lookup (self->topic_index, name, len);
    if (topic)
        return topic;
    if (self->ntopics == self->topics_cap) {
        size_t cap = self->topics_cap ? self->topics_cap * 2 : 16;
        zb_journal_topic_t **topics = (zb_journal_topic_t **)
            realloc (self->topics, cap * sizeof (zb_journal_topic_t *));
        if (!topics)
            return NULL;
        self->topics = topics;
        self->topics_cap = cap;
    }
    if (zb_jindex_reserve (self->topic_index, 1))
        return NULL;
    topic = (zb_journal_topic_t *) calloc (1, sizeof (zb_journal_topic_t) + len + 1);
    if (!topic)
        return NULL;
    memcpy (topic->bytes, name, len);
    topic->entry.key.ptr = topic->bytes;
    topic->entry.key.len = len;
    zb_jindex_insert (self->topic_index, &topic->entry);
    self->topics [self->ntopics++] = topic;
    return topic;
}

static int
s_topic_restore (void *arg, const void *name, size_t len, uint64_t topic_seq)
{
    zb_journal_t *self = (zb_journal_t *) arg;
    zb_journal_topic_t *topic = s_topic_require (self, name, len);
    if (!topic)
        return -1;
    topic->topic_seq = topic_seq;
    return 0;
}

zb_journal_t *
zb_journal_open (const zb_journal_config_t *config, char *err, size_t errlen)
{
    assert (config);
    char scratch [256];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof (scratch);
    }
    err [0] = 0;
    if (!config->dir && config->memory_events == 0) {
        snprintf (err, errlen, "memory journal: memory-events must be at least 1");
        return NULL;
    }
    if (config->dir && !*config->dir) {
        snprintf (err, errlen, "journal directory is empty");
        return NULL;
    }
    zb_journal_t *self = (zb_journal_t *) calloc (1, sizeof (zb_journal_t));
    if (!self
    ||  !(self->topic_index = zb_jindex_new ())
    ||  !(self->path = strdup (config->dir? config->dir: ""))) {
        snprintf (err, errlen, "out of memory");
        goto failed;
    }
    if (config->dir) {
        self->ops = &zb_journal_lmdb_ops;
        self->sync = config->sync == ZB_SYNC_OS? "os": "commit";
        self->be = zb_journal_lmdb_open (config, s_topic_restore, self, err, errlen);
    }
    else {
        self->ops = &zb_journal_memory_ops;
        self->sync = "none";
        self->be = zb_journal_memory_open (config, s_topic_restore, self, err, errlen);
    }
    if (!self->be)
        goto failed;
    return self;

failed:
    zb_journal_destroy (&self);
    return NULL;
}

void
zb_journal_destroy (zb_journal_t **self_p)
{
    assert (self_p);
    zb_journal_t *self = *self_p;
    if (!self)
        return;
    if (self->be)
        self->ops->destroy (&self->be);
    for (size_t i = 0; i < self->ntopics; i++)
        free (self->topics [i]);
    free (self->topics);
    free (self->dirty);
    zb_jindex_destroy (&self->topic_index);
    free (self->path);
    free (self);
    *self_p = NULL;
}

static bool
s_key_ok (zb_str_t key)
{
    return key.ptr && key.len >= 1 && key.len <= ZB_JOURNAL_MAX_KEY;
}

int
zb_journal_append (zb_journal_t *self, const zb_record_t *records, size_t count,
                   char *err, size_t errlen)
{
    assert (self);
    if (!err || errlen == 0) {
        err = self->error;
        errlen = sizeof (self->error);
    }
    else
        err [0] = 0;
    if (count == 0)
        return 0;
    assert (records);
    uint64_t head = self->ops->head (self->be);
    for (size_t i = 0; i < count; i++) {
        const zb_record_t *record = &records [i];
        if (record->seq != head + 1 + i) {
            snprintf (err, errlen, "record %zu has seq %llu, expected %llu (head %llu)",
                      i, (unsigned long long) record->seq,
                      (unsigned long long) (head + 1 + i), (unsigned long long) head);
            return -1;
        }
        if (!record->id.ptr || record->id.len != ZB_JOURNAL_ID_SIZE) {
            snprintf (err, errlen, "record seq %llu: id must be %d bytes",
                      (unsigned long long) record->seq, ZB_JOURNAL_ID_SIZE);
            return -1;
        }
        if (!s_key_ok (record->topic)) {
            snprintf (err, errlen, "record seq %llu: topic must be 1 to %d bytes",
                      (unsigned long long) record->seq, ZB_JOURNAL_MAX_KEY);
            return -1;
        }
        if (!record->event.ptr && record->event.len) {
            snprintf (err, errlen, "record seq %llu: event has no bytes",
                      (unsigned long long) record->seq);
            return -1;
        }
        if (record->idem_key.ptr && !s_key_ok (record->idem_key)) {
            snprintf (err, errlen, "record seq %llu: idempotency key must be 1 to %d bytes",
                      (unsigned long long) record->seq, ZB_JOURNAL_MAX_KEY);
            return -1;
        }
    }
    //  The topics this batch touches, each once, with its head after it
    self->mark++;
    size_t ndirty = 0;
    zb_journal_topic_t *topic = NULL;
    for (size_t i = 0; i < count; i++) {
        //  A batch comes topic by topic: the previous record's topic is
        //  usually this one's, without hashing the name again
        const zb_str_t *name = &records [i].topic;
        if (!topic || topic->entry.key.len != name->len
        ||  memcmp (topic->entry.key.ptr, name->ptr, name->len) != 0)
            topic = s_topic_require (self, name->ptr, name->len);
        if (!topic) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        if (topic->mark != self->mark) {
            if (ndirty == self->dirty_cap) {
                size_t cap = self->dirty_cap? self->dirty_cap * 2: 16;
                zb_journal_topic_t **dirty = (zb_journal_topic_t **)
                    realloc (self->dirty, cap * sizeof (zb_journal_topic_t *));
                if (!dirty) {
                    snprintf (err, errlen, "out of memory");
                    return -1;
                }
                self->dirty = dirty;
                self->dirty_cap = cap;
            }
            self->dirty [ndirty++] = topic;
            topic->mark = self->mark;
        }
        topic->pending = records [i].topic_seq;
    }
    if (self->ops->append (self->be, records, count, self->dirty, ndirty, err, errlen))
        return -1;
    for (size_t i = 0; i < ndirty; i++)
        self->dirty [i]->topic_seq = self->dirty [i]->pending;
    return 0;
}

int
zb_journal_read (zb_journal_t *self, uint64_t from, uint64_t to, size_t max_scan,
                 zb_journal_visit_fn *fn, void *arg, uint64_t *next,
                 char *err, size_t errlen)
{
    assert (self);
    assert (fn);
    if (!err || errlen == 0) {
        err = self->error;
        errlen = sizeof (self->error);
    }
    else
        err [0] = 0;
    uint64_t next_scratch;
    if (!next)
        next = &next_scratch;
    if (from == 0)
        from = 1;               //  sequence numbers start at 1
    if (to == UINT64_MAX)
        to = UINT64_MAX - 1;    //  so that to + 1 still says "done"
    if (from > to) {
        *next = from;
        return 0;
    }
    if (max_scan == 0)
        max_scan = SIZE_MAX;
    return self->ops->read (self->be, from, to, max_scan, fn, arg, next, err, errlen);
}

uint64_t
zb_journal_seq_at (zb_journal_t *self, uint64_t arrival_ns)
{
    assert (self);
    uint64_t seq;
    if (self->ops->seq_at (self->be, arrival_ns, &seq, self->error, sizeof (self->error)))
        return self->ops->head (self->be) + 1;
    return seq;
}

void
zb_journal_topics (zb_journal_t *self, zb_journal_topic_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    for (size_t i = 0; i < self->ntopics; i++) {
        zb_journal_topic_t *topic = self->topics [i];
        if (topic->topic_seq)
            fn (arg, topic->entry.key, topic->topic_seq);
    }
}

uint64_t
zb_journal_key_hash (zb_journal_t *self, zb_str_t key)
{
    assert (self);
    return self->ops->key_hash (self->be, key);
}

void
zb_journal_key_prefetch (zb_journal_t *self, uint64_t hash)
{
    assert (self);
    self->ops->key_prefetch (self->be, hash);
}

int
zb_journal_dedup_get (zb_journal_t *self, zb_str_t key, uint64_t now_ns, zb_record_t *found)
{
    assert (self);
    if (!s_key_ok (key))
        return 0;
    return zb_journal_dedup_get_hashed (self, key, zb_journal_key_hash (self, key),
                                        now_ns, found);
}

int
zb_journal_dedup_get_hashed (zb_journal_t *self, zb_str_t key, uint64_t hash,
                             uint64_t now_ns, zb_record_t *found)
{
    assert (self);
    if (!s_key_ok (key))
        return 0;               //  such a key can never have been stored
    zb_record_t record;
    memset (&record, 0, sizeof (record));
    int rc = self->ops->dedup_get (self->be, key, hash, now_ns, &record,
                                   self->error, sizeof (self->error));
    if (rc == 1 && found) {
        //  Hand out our own copy of the id: valid until the next call
        assert (record.id.len == ZB_JOURNAL_ID_SIZE);
        memcpy (self->id, record.id.ptr, ZB_JOURNAL_ID_SIZE);
        record.id.ptr = self->id;
        record.idem_key = key;
        *found = record;
    }
    return rc;
}

int
zb_journal_prune (zb_journal_t *self, uint64_t now_ns, size_t max_delete)
{
    assert (self);
    if (max_delete == 0)
        return 0;
    if (max_delete > INT32_MAX)
        max_delete = INT32_MAX;     //  the count is returned as an int
    return self->ops->prune (self->be, now_ns, max_delete, self->error, sizeof (self->error));
}

void
zb_journal_info (zb_journal_t *self, zb_journal_info_t *info)
{
    assert (self);
    assert (info);
    memset (info, 0, sizeof (*info));
    info->backend = self->ops->name;
    info->path = self->path;
    info->sync = self->sync;
    info->head = self->ops->head (self->be);
    info->oldest = self->ops->oldest (self->be);
    if (self->ops->info (self->be, info, self->error, sizeof (self->error)))
        info->events = info->oldest? info->head - info->oldest + 1: 0;
}

uint64_t
zb_journal_head (zb_journal_t *self)
{
    assert (self);
    return self->ops->head (self->be);
}

uint64_t
zb_journal_oldest (zb_journal_t *self)
{
    assert (self);
    return self->ops->oldest (self->be);
}

const char *
zb_journal_last_error (zb_journal_t *self)
{
    assert (self);
    return self->error;
}
