/*  journal_impl.h - what journal.c shares with its backends (journal_lmdb.c,
    journal_memory.c). Not part of the broker's contract: the broker codes
    against journal.h only.

    journal.c checks the arguments the contract puts on the caller (sequence
    continuity, record shapes), keeps the per-topic heads in memory and calls
    the backend through a small table of functions. A backend stores records,
    reads them back, keeps the idempotency keys and prunes. */
#ifndef ZB_JOURNAL_IMPL_H_INCLUDED
#define ZB_JOURNAL_IMPL_H_INCLUDED

#include "journal.h"

#define ZB_JOURNAL_ID_SIZE      36      //  an event id (UUID text)
#define ZB_JOURNAL_MAX_KEY      511     //  topic or idempotency key, bytes (LMDB's key limit)
#define ZB_JOURNAL_MIB          (1024ULL * 1024ULL)
#define ZB_JOURNAL_NS_PER_S     1000000000ULL

//  --------------------------------------------------------------------------
//  Big-endian integers in stored records (keys sort numerically with memcmp)

static inline void
zb_journal_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p [i] = (uint8_t) v;
        v >>= 8;
    }
}

static inline uint64_t
zb_journal_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p [i];
    return v;
}

static inline void
zb_journal_put16 (uint8_t *p, uint16_t v)
{
    p [0] = (uint8_t) (v >> 8);
    p [1] = (uint8_t) v;
}

static inline uint16_t
zb_journal_get16 (const uint8_t *p)
{
    return (uint16_t) ((p [0] << 8) | p [1]);
}

//  --------------------------------------------------------------------------
//  Retention and idempotency windows, as both backends apply them

//  a * b, or UINT64_MAX when that overflows (a limit in hours or MiB to ns or bytes)
static inline uint64_t
zb_journal_mul_sat (uint64_t a, uint64_t b)
{
    return (b && a > UINT64_MAX / b)? UINT64_MAX: a * b;
}

//  True when something accepted at `then` is older than `age` at `now`.
static inline bool
zb_journal_expired (uint64_t then, uint64_t age, uint64_t now)
{
    return now >= then && now - then >= age;
}

//  --------------------------------------------------------------------------
//  An index of entries by byte-string key, over a zb_jhash_t (below: open
//  addressing, SipHash-1-3 under a random key, since keys come from clients)
//  that files each entry's address under its key's hash. Entries are
//  intrusive: any struct whose first member is a zb_jentry_t, owned by the
//  caller; the key bytes must stay put while it is indexed.
//  Insertion never allocates once room was reserved, so a caller can make a
//  change all-or-nothing: reserve (may fail), then insert (cannot fail).
//  Growing is incremental (as in Redis): the new array is allocated by
//  reserve, and every insertion then moves a few slots over, so an index of
//  millions of keys never stalls its caller for a full rehash.

typedef struct zb_jentry_t {
    zb_str_t key;
    uint64_t hash;              //  set by zb_jindex_insert
} zb_jentry_t;

typedef struct zb_jindex_t zb_jindex_t;

zb_jindex_t *zb_jindex_new (void);
void zb_jindex_destroy (zb_jindex_t **self_p);
//  The entry filed under this key, or NULL.
void *zb_jindex_lookup (zb_jindex_t *self, const void *key, size_t len);
//  Make room for `more` insertions. 0 ok, -1 out of memory (index unchanged).
int zb_jindex_reserve (zb_jindex_t *self, size_t more);
//  File an entry (entry->key set) whose key is not in the index yet; room
//  must be reserved.
void zb_jindex_insert (zb_jindex_t *self, zb_jentry_t *entry);
//  The same, for a caller that looks a key up and then files it, hashing
//  it once: hash = zb_jindex_hash (key), zb_jindex_find (hash, key), and
//  zb_jindex_insert_hashed with entry->hash = hash.
uint64_t zb_jindex_hash (zb_jindex_t *self, const void *key, size_t len);
void *zb_jindex_find (zb_jindex_t *self, uint64_t hash, const void *key, size_t len);
void zb_jindex_insert_hashed (zb_jindex_t *self, zb_jentry_t *entry);
void zb_jindex_prefetch (zb_jindex_t *self, uint64_t hash);
//  Remove this very entry (by address). 1 removed, 0 it was not indexed.
int zb_jindex_remove (zb_jindex_t *self, zb_jentry_t *entry);
size_t zb_jindex_size (zb_jindex_t *self);

//  --------------------------------------------------------------------------
//  A compact multimap from a 64-bit keyed hash to sequence numbers (16 bytes
//  and a tag byte a slot, at most half full): the LMDB backend's in-memory index of the
//  idempotency keys in its dedup log. It holds no key bytes, so a hit is a
//  candidate the caller checks against the stored key; a miss is certain.
//  Open addressing with linear probing; growing is incremental (the old
//  array drains a few slots per insertion), and insertion never allocates
//  once room was reserved.

typedef struct zb_jhash_t zb_jhash_t;

zb_jhash_t *zb_jhash_new (void);
void zb_jhash_destroy (zb_jhash_t **self_p);
//  The hash to file a key under (SipHash-1-3, random key per index)
uint64_t zb_jhash_of (zb_jhash_t *self, const void *key, size_t len);
//  Make room for `more` insertions. 0 ok, -1 out of memory (index unchanged).
int zb_jhash_reserve (zb_jhash_t *self, size_t more);
//  File seq (> 0, < UINT64_MAX) under hash; room must be reserved.
void zb_jhash_insert (zb_jhash_t *self, uint64_t hash, uint64_t seq);
//  Remove the pair. 1 removed, 0 not there.
int zb_jhash_remove (zb_jhash_t *self, uint64_t hash, uint64_t seq);
//  Call fn for every seq filed under hash until it returns non-zero; returns
//  that value, or 0. fn must not change the index.
typedef int (zb_jhash_fn) (void *arg, uint64_t seq);
int zb_jhash_find (zb_jhash_t *self, uint64_t hash, zb_jhash_fn *fn, void *arg);
//  Start loading the slot where a lookup of hash begins.
void zb_jhash_prefetch (zb_jhash_t *self, uint64_t hash);
size_t zb_jhash_size (zb_jhash_t *self);

//  --------------------------------------------------------------------------
//  Topic heads, kept by journal.c for both backends

typedef struct {
    zb_jentry_t entry;          //  first member: entry.key is the name (points at bytes [])
    uint64_t topic_seq;         //  last topic_seq stored (0: none yet)
    uint64_t pending;           //  during an append: topic_seq after this batch
    uint64_t mark;              //  the append call that last touched it
    char bytes [];
} zb_journal_topic_t;

//  Called by a backend while it opens, once per topic it recovered.
//  0 ok, -1 out of memory.
typedef int (zb_journal_restore_fn) (void *arg, const void *name, size_t len, uint64_t topic_seq);

//  --------------------------------------------------------------------------
//  The backend interface. `be` is the backend's own state. Every function
//  that can fail writes a message into err (never NULL, errlen > 0).
//  journal.c has checked: count > 0, records [i].seq == head + 1 + i, record
//  shapes (id 36 bytes, topic 1..ZB_JOURNAL_MAX_KEY bytes, idempotency key
//  NULL or 1..ZB_JOURNAL_MAX_KEY bytes); for read: 1 <= from <= to < UINT64_MAX,
//  max_scan > 0.

typedef struct {
    const char *name;           //  "lmdb", "memory"
    void (*destroy) (void **be_p);
    //  dirty: the topics this batch touches, each with its new head in pending
    int (*append) (void *be, const zb_record_t *records, size_t count,
                   zb_journal_topic_t *const *dirty, size_t ndirty,
                   char *err, size_t errlen);
    int (*read) (void *be, uint64_t from, uint64_t to, size_t max_scan,
                 zb_journal_visit_fn *fn, void *arg, uint64_t *next,
                 char *err, size_t errlen);
    //  0 ok (*seq set), -1 error
    int (*seq_at) (void *be, uint64_t arrival_ns, uint64_t *seq, char *err, size_t errlen);
    //  found->id must point at memory the backend keeps until its next call
    //  hash: key_hash (be, key)
    int (*dedup_get) (void *be, zb_str_t key, uint64_t hash, uint64_t now_ns,
                      zb_record_t *found, char *err, size_t errlen);
    uint64_t (*key_hash) (void *be, zb_str_t key);
    void (*key_prefetch) (void *be, uint64_t hash);
    int (*prune) (void *be, uint64_t now_ns, size_t max_delete, char *err, size_t errlen);
    //  Fills events and bytes (journal.c fills the rest). 0 ok, -1 error.
    int (*info) (void *be, zb_journal_info_t *info, char *err, size_t errlen);
    uint64_t (*head) (void *be);
    uint64_t (*oldest) (void *be);
} zb_journal_ops_t;

extern const zb_journal_ops_t zb_journal_lmdb_ops;
extern const zb_journal_ops_t zb_journal_memory_ops;

//  Backend constructors: NULL with err set on failure.
void *zb_journal_lmdb_open (const zb_journal_config_t *config,
                            zb_journal_restore_fn *restore, void *arg,
                            char *err, size_t errlen);
void *zb_journal_memory_open (const zb_journal_config_t *config,
                              zb_journal_restore_fn *restore, void *arg,
                              char *err, size_t errlen);

#endif
