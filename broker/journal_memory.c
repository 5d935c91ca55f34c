/*  journal_memory.c - the journal's memory backend (--memory): a bounded ring.

    The ring holds up to memory_events records, each copied into one block
    (header + topic + event bytes). Records are appended and dropped in seq
    order, so the blocks come from a FIFO of 1 MiB chunks: a record is
    carved from the newest chunk, and a chunk is freed (or kept as the one
    spare) when its last record is dropped; no malloc or free per event.
    Appending to a full ring drops the oldest record. Sequence numbers in the ring are contiguous, so a read
    finds its start by subtraction. Idempotency keys live in their own entries
    (a key can outlive its record in the ring, or the other way round): an
    index by key and a FIFO in order of acceptance, which is the order they
    expire in, so pruning the dedup window only ever looks at the front. The
    entries come from chunks of their own, the same way as the records.

    Append allocates everything first and only then changes the ring, so an
    allocation failure leaves the journal as it was. Nothing survives a
    restart (the broker starts again at seq 1). */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "journal_impl.h"

typedef struct {
    uint64_t seq;
    uint64_t topic_seq;
    uint64_t arrival_ns;
    size_t size;                //  of this allocation
    size_t event_len;
    uint32_t topic_len;
    char id [ZB_JOURNAL_ID_SIZE];
    char data [];               //  topic, then event
} mrecord_t;

typedef struct mdedup_t {
    zb_jentry_t entry;          //  first member: entry.key points at bytes []
    struct mdedup_t *next;      //  FIFO in order of acceptance
    struct mchunk_t *chunk;     //  the chunk it was carved from
    uint64_t seq;
    uint64_t arrival_ns;
    size_t size;
    char id [ZB_JOURNAL_ID_SIZE];
    char bytes [];
} mdedup_t;

//  A chunk of records (or of idempotency keys), oldest chunk first.
typedef struct mchunk_t {
    struct mchunk_t *next;      //  the next newer chunk
    size_t size;                //  bytes of data []
    size_t used;                //  bytes carved
    size_t live;                //  blocks in it not dropped (or being appended)
    uint64_t data [];           //  8-byte aligned blocks
} mchunk_t;

//  Blocks that leave in about the order they came: carved from the newest
//  chunk, and a chunk goes (or stays as the one spare) once the chunks
//  before it are gone and its last block was dropped.
typedef struct {
    mchunk_t *first;
    mchunk_t *last;
    mchunk_t *spare;            //  an empty chunk kept for the next one
} mfifo_t;

//  Chunks come from malloc, which keeps what the ring frees for the next
//  one (zb_cli_tune_malloc: no trimming back to the kernel, so no page faults
//  once the ring is full). Transparent huge pages (MADV_HUGEPAGE) were tried:
//  fewer faults, but the kernel's compaction and 2 MiB zeroing on the broker's
//  thread made it slower (bench, 1 producer -> 1 consumer: 690k vs 780k/s).
#define ZB_MCHUNK_BYTES ((size_t) 1 << 20)
#define ZB_MCHUNK_SIZE (ZB_MCHUNK_BYTES - sizeof (mchunk_t))

typedef struct {
    mrecord_t *record;
    mchunk_t *chunk;
    mdedup_t *dedup;
    mchunk_t *dedup_chunk;
} mpending_t;

typedef struct {
    mrecord_t **ring;           //  capacity slots
    size_t capacity;
    size_t start;               //  slot of the oldest record
    size_t count;               //  records held
    uint64_t head;              //  last seq appended (0: none yet)
    uint64_t record_bytes;      //  sum of record allocations
    uint64_t retain_ns;         //  0: no age limit
    uint64_t retain_bytes;      //  0: no size limit
    uint64_t window_ns;         //  0: idempotency keys are not kept
    zb_jindex_t *dedup;         //  key -> newest entry for it
    mdedup_t *dedup_first;      //  FIFO: oldest first
    mdedup_t *dedup_last;
    uint64_t dedup_bytes;
    mpending_t *pending;        //  append scratch, one per record
    size_t pending_cap;
    mfifo_t records;            //  the records' chunks
    mfifo_t keys;               //  the idempotency keys' chunks
} mjournal_t;

void *
zb_journal_memory_open (const zb_journal_config_t *config,
                        zb_journal_restore_fn *restore, void *arg,
                        char *err, size_t errlen)
{
    (void) restore;             //  nothing to recover
    (void) arg;
    assert (config->memory_events > 0);
    mjournal_t *self = (mjournal_t *) calloc (1, sizeof (mjournal_t));
    if (!self)
        goto nomem;
    if (config->memory_events > SIZE_MAX / sizeof (mrecord_t *)) {
        snprintf (err, errlen, "memory journal: memory-events %llu is too large",
                  (unsigned long long) config->memory_events);
        free (self);
        return NULL;
    }
    self->capacity = (size_t) config->memory_events;
    //  calloc: the pages of a large ring are only touched as it fills
    self->ring = (mrecord_t **) calloc (self->capacity, sizeof (mrecord_t *));
    self->dedup = zb_jindex_new ();
    if (!self->ring || !self->dedup)
        goto nomem;
    self->retain_ns = zb_journal_mul_sat (config->retain_hours, 3600 * ZB_JOURNAL_NS_PER_S);
    self->retain_bytes = zb_journal_mul_sat (config->retain_mb, ZB_JOURNAL_MIB);
    self->window_ns = zb_journal_mul_sat (config->dedup_window_s, ZB_JOURNAL_NS_PER_S);
    return self;

nomem:
    snprintf (err, errlen, "memory journal: out of memory (memory-events %llu)",
              (unsigned long long) config->memory_events);
    if (self) {
        free (self->ring);
        zb_jindex_destroy (&self->dedup);
        free (self);
    }
    return NULL;
}

static mchunk_t *
s_chunk_alloc (size_t bytes)
{
    mchunk_t *chunk = (mchunk_t *) malloc (sizeof (mchunk_t) + bytes);
    if (!chunk)
        return NULL;
    chunk->size = bytes;
#ifdef MADV_POPULATE_WRITE
    //  Fault the chunk's pages in with one call instead of one fault per
    //  page as records are written (fresh memory while the ring first
    //  fills; pages already there cost a page-table walk)
    static uintptr_t page;
    if (!page) {
        long size = sysconf (_SC_PAGESIZE);
        page = size > 0 ? (uintptr_t) size : 4096;
    }
    uintptr_t from = ((uintptr_t) chunk->data + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t) chunk->data + bytes) & ~(page - 1);
    if (to > from)
        (void) madvise ((void *) from, to - from, MADV_POPULATE_WRITE);
#endif
    return chunk;
}

static void
s_fifo_destroy (mfifo_t *fifo)
{
    while (fifo->first) {
        mchunk_t *chunk = fifo->first;
        fifo->first = chunk->next;
        free (chunk);
    }
    free (fifo->spare);
    fifo->last = fifo->spare = NULL;
}

static void
s_destroy (void **be_p)
{
    mjournal_t *self = (mjournal_t *) *be_p;
    if (!self)
        return;
    s_fifo_destroy (&self->records);
    s_fifo_destroy (&self->keys);       //  the dedup entries live there
    zb_jindex_destroy (&self->dedup);
    free (self->ring);
    free (self->pending);
    free (self);
    *be_p = NULL;
}

//  Carve size bytes from the newest chunk, or from a new one; counts the
//  block live there. NULL when out of memory.
static void *
s_fifo_carve (mfifo_t *fifo, size_t size, mchunk_t **chunk_p)
{
    size = (size + 7) & ~(size_t) 7;
    mchunk_t *chunk = fifo->last;
    if (!chunk || chunk->size - chunk->used < size) {
        if (fifo->spare && fifo->spare->size >= size) {
            chunk = fifo->spare;
            fifo->spare = NULL;
        }
        else {
            size_t bytes = size > ZB_MCHUNK_SIZE ? size : ZB_MCHUNK_SIZE;
            chunk = s_chunk_alloc (bytes);
            if (!chunk)
                return NULL;
        }
        chunk->next = NULL;
        chunk->used = 0;
        chunk->live = 0;
        if (fifo->last)
            fifo->last->next = chunk;
        else
            fifo->first = chunk;
        fifo->last = chunk;
    }
    void *block = (char *) chunk->data + chunk->used;
    chunk->used += size;
    chunk->live++;
    *chunk_p = chunk;
    return block;
}

//  A block of chunk is gone: free the oldest chunks that hold nothing now
//  (the newest one is started again instead).
static void
s_fifo_drop (mfifo_t *fifo, mchunk_t *chunk)
{
    assert (chunk && chunk->live > 0);
    chunk->live--;
    while (fifo->first && fifo->first->live == 0) {
        mchunk_t *empty = fifo->first;
        if (empty == fifo->last) {
            empty->used = 0;
            break;
        }
        fifo->first = empty->next;
        if (!fifo->spare && empty->size == ZB_MCHUNK_SIZE)
            fifo->spare = empty;
        else
            free (empty);
    }
}

//  Undo the carving of an append that failed: the chunks it added go, the
//  newest one before it is as it was (the caller took its blocks out of
//  the live counts already).
static void
s_fifo_rollback (mfifo_t *fifo, mchunk_t *last_before, size_t used_before)
{
    mchunk_t *added = last_before ? last_before->next : fifo->first;
    while (added) {
        mchunk_t *next = added->next;
        free (added);
        added = next;
    }
    if (last_before) {
        last_before->next = NULL;
        last_before->used = used_before;
    }
    else
        fifo->first = NULL;
    fifo->last = last_before;
}

static void
s_drop_oldest (mjournal_t *self)
{
    assert (self->count > 0);
    mrecord_t *record = self->ring [self->start];
    self->record_bytes -= record->size;
    //  records leave in the order they came: the oldest is in the oldest chunk
    s_fifo_drop (&self->records, self->records.first);
    self->ring [self->start] = NULL;
    self->start = (self->start + 1) % self->capacity;
    self->count--;
}

static int
s_append (void *be, const zb_record_t *records, size_t count,
          zb_journal_topic_t *const *dirty, size_t ndirty, char *err, size_t errlen)
{
    (void) dirty;               //  journal.c keeps the topic heads
    (void) ndirty;
    mjournal_t *self = (mjournal_t *) be;
    if (count > self->pending_cap) {
        size_t cap = self->pending_cap? self->pending_cap: 64;
        while (cap < count)
            cap *= 2;
        mpending_t *pending = (mpending_t *) realloc (self->pending, cap * sizeof (mpending_t));
        if (!pending)
            goto nomem;
        self->pending = pending;
        self->pending_cap = cap;
    }
    //  1. Allocate everything, change nothing (the records are counted live
    //  in their chunks now, so that no drop frees a chunk under them; undone
    //  below when anything fails)
    mchunk_t *last_before = self->records.last;
    size_t used_before = last_before ? last_before->used : 0;
    mchunk_t *keys_before = self->keys.last;
    size_t keys_used_before = keys_before ? keys_before->used : 0;
    size_t new_keys = 0;
    size_t done;
    for (done = 0; done < count; done++) {
        const zb_record_t *in = &records [done];
        mpending_t *pending = &self->pending [done];
        pending->dedup = NULL;
        size_t size = sizeof (mrecord_t) + in->topic.len + in->event.len;
        pending->record = (mrecord_t *) s_fifo_carve (&self->records, size, &pending->chunk);
        if (!pending->record)
            break;
        mrecord_t *record = pending->record;
        record->seq = in->seq;
        record->topic_seq = in->topic_seq;
        record->arrival_ns = in->arrival_ns;
        record->size = size;
        record->topic_len = (uint32_t) in->topic.len;
        record->event_len = in->event.len;
        memcpy (record->id, in->id.ptr, ZB_JOURNAL_ID_SIZE);
        memcpy (record->data, in->topic.ptr, in->topic.len);
        if (in->event.len)
            memcpy (record->data + in->topic.len, in->event.ptr, in->event.len);
        if (in->idem_key.ptr && self->window_ns) {
            size = sizeof (mdedup_t) + in->idem_key.len;
            mdedup_t *entry = (mdedup_t *) s_fifo_carve (&self->keys, size,
                                                         &pending->dedup_chunk);
            if (!entry) {
                pending->chunk->live--;
                break;
            }
            entry->chunk = pending->dedup_chunk;
            memcpy (entry->bytes, in->idem_key.ptr, in->idem_key.len);
            entry->entry.key.ptr = entry->bytes;
            entry->entry.key.len = in->idem_key.len;
            //  The hash the caller gave with the record (zb_journal_key_hash), or ours
            entry->entry.hash = in->idem_hash
                              ? in->idem_hash
                              : zb_jindex_hash (self->dedup, in->idem_key.ptr, in->idem_key.len);
            entry->next = NULL;
            entry->seq = in->seq;
            entry->arrival_ns = in->arrival_ns;
            entry->size = size;
            memcpy (entry->id, in->id.ptr, ZB_JOURNAL_ID_SIZE);
            pending->dedup = entry;
            new_keys++;
        }
    }
    if (done < count || zb_jindex_reserve (self->dedup, new_keys)) {
        for (size_t i = 0; i < done; i++) {
            self->pending [i].chunk->live--;
            if (self->pending [i].dedup)
                self->pending [i].dedup_chunk->live--;
        }
        s_fifo_rollback (&self->records, last_before, used_before);
        s_fifo_rollback (&self->keys, keys_before, keys_used_before);
        goto nomem;
    }
    //  2. Commit: nothing below can fail
    for (size_t i = 0; i < count; i++) {
        mpending_t *pending = &self->pending [i];
        if (self->count == self->capacity)
            s_drop_oldest (self);
        self->ring [(self->start + self->count) % self->capacity] = pending->record;
        self->count++;
        self->record_bytes += pending->record->size;
        self->head = pending->record->seq;

        mdedup_t *entry = pending->dedup;
        if (!entry)
            continue;
        mdedup_t *known = (mdedup_t *) zb_jindex_find (self->dedup, entry->entry.hash,
                                                       entry->entry.key.ptr,
                                                       entry->entry.key.len);
        if (known && !zb_journal_expired (known->arrival_ns, self->window_ns, entry->arrival_ns)) {
            s_fifo_drop (&self->keys, entry->chunk);  //  the first acceptance stands
            continue;
        }
        if (known)              //  expired: stays in the FIFO until pruned
            zb_jindex_remove (self->dedup, &known->entry);
        zb_jindex_insert_hashed (self->dedup, &entry->entry);
        if (self->dedup_last)
            self->dedup_last->next = entry;
        else
            self->dedup_first = entry;
        self->dedup_last = entry;
        self->dedup_bytes += entry->size;
    }
    return 0;

nomem:
    snprintf (err, errlen, "out of memory");
    return -1;
}

static int
s_read (void *be, uint64_t from, uint64_t to, size_t max_scan,
        zb_journal_visit_fn *fn, void *arg, uint64_t *next, char *err, size_t errlen)
{
    (void) err;
    (void) errlen;
    mjournal_t *self = (mjournal_t *) be;
    *next = to + 1;             //  unless we stop before the range is done
    if (self->count == 0 || from > self->head)
        return 0;
    uint64_t oldest = self->ring [self->start]->seq;
    if (from < oldest)
        from = oldest;
    size_t scanned = 0;
    for (uint64_t seq = from; seq <= to && seq <= self->head; seq++) {
        if (scanned == max_scan) {
            *next = seq;
            return 0;
        }
        scanned++;
        const mrecord_t *stored = self->ring [(self->start + (size_t) (seq - oldest)) % self->capacity];
        assert (stored->seq == seq);
        zb_record_t record = {
            .seq = stored->seq,
            .topic_seq = stored->topic_seq,
            .arrival_ns = stored->arrival_ns,
            .topic = { stored->data, stored->topic_len },
            .event = { stored->data + stored->topic_len, stored->event_len },
            .id = { stored->id, ZB_JOURNAL_ID_SIZE },
            .idem_key = { NULL, 0 },
        };
        if (fn (arg, &record)) {
            *next = seq + 1;
            return 0;
        }
    }
    return 0;
}

static int
s_seq_at (void *be, uint64_t arrival_ns, uint64_t *seq, char *err, size_t errlen)
{
    (void) err;
    (void) errlen;
    mjournal_t *self = (mjournal_t *) be;
    //  First position whose arrival >= arrival_ns; with arrivals out of order
    //  (a clock step back) this still lands on one such record.
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->ring [(self->start + mid) % self->capacity]->arrival_ns >= arrival_ns)
            hi = mid;
        else
            lo = mid + 1;
    }
    *seq = lo < self->count? self->ring [(self->start + lo) % self->capacity]->seq: self->head + 1;
    return 0;
}

static int
s_dedup_get (void *be, zb_str_t key, uint64_t hash, uint64_t now_ns, zb_record_t *found,
             char *err, size_t errlen)
{
    (void) err;
    (void) errlen;
    mjournal_t *self = (mjournal_t *) be;
    if (!self->window_ns)
        return 0;
    mdedup_t *entry = (mdedup_t *) zb_jindex_find (self->dedup, hash, key.ptr, key.len);
    if (!entry || zb_journal_expired (entry->arrival_ns, self->window_ns, now_ns))
        return 0;
    found->seq = entry->seq;
    found->arrival_ns = entry->arrival_ns;
    found->id.ptr = entry->id;
    found->id.len = ZB_JOURNAL_ID_SIZE;
    return 1;
}

static uint64_t
s_key_hash (void *be, zb_str_t key)
{
    return zb_jindex_hash (((mjournal_t *) be)->dedup, key.ptr, key.len);
}

static void
s_key_prefetch (void *be, uint64_t hash)
{
    zb_jindex_prefetch (((mjournal_t *) be)->dedup, hash);
}

static int
s_prune (void *be, uint64_t now_ns, size_t max_delete, char *err, size_t errlen)
{
    (void) err;
    (void) errlen;
    mjournal_t *self = (mjournal_t *) be;
    size_t removed = 0;
    //  Idempotency keys past the window (window 0: every key left over)
    while (removed < max_delete && self->dedup_first
    &&     zb_journal_expired (self->dedup_first->arrival_ns, self->window_ns, now_ns)) {
        mdedup_t *entry = self->dedup_first;
        self->dedup_first = entry->next;
        if (!self->dedup_first)
            self->dedup_last = NULL;
        zb_jindex_remove (self->dedup, &entry->entry);    //  unless a newer one replaced it
        self->dedup_bytes -= entry->size;
        s_fifo_drop (&self->keys, entry->chunk);
        removed++;
    }
    //  Events past retention (the ring itself bounds the count)
    while (removed < max_delete && self->count > 0) {
        mrecord_t *oldest = self->ring [self->start];
        bool too_old = self->retain_ns
                    && zb_journal_expired (oldest->arrival_ns, self->retain_ns, now_ns);
        bool too_big = self->retain_bytes && self->record_bytes > self->retain_bytes;
        if (!too_old && !too_big)
            break;
        s_drop_oldest (self);
        removed++;
    }
    return (int) removed;
}

static int
s_info (void *be, zb_journal_info_t *info, char *err, size_t errlen)
{
    (void) err;
    (void) errlen;
    mjournal_t *self = (mjournal_t *) be;
    info->events = self->count;
    info->bytes = self->record_bytes + self->dedup_bytes + self->count * sizeof (mrecord_t *);
    return 0;
}

static uint64_t
s_head (void *be)
{
    return ((mjournal_t *) be)->head;
}

static uint64_t
s_oldest (void *be)
{
    mjournal_t *self = (mjournal_t *) be;
    return self->count? self->ring [self->start]->seq: 0;
}

const zb_journal_ops_t zb_journal_memory_ops = {
    .name = "memory",
    .destroy = s_destroy,
    .append = s_append,
    .read = s_read,
    .seq_at = s_seq_at,
    .dedup_get = s_dedup_get,
    .key_hash = s_key_hash,
    .key_prefetch = s_key_prefetch,
    .prune = s_prune,
    .info = s_info,
    .head = s_head,
    .oldest = s_oldest,
};
