/*  journal.h - the broker's store of record: every accepted event, by sequence number.

    The broker appends each group of events it drained from the ingest socket in
    one call (one transaction), before it publishes or acknowledges any of them.
    Two backends sit behind this interface: LMDB on disk (the default) and a
    bounded in-memory ring (--memory). A distributed backend can follow by
    implementing the same functions.

    Records are views: the journal copies what it keeps; what it hands out in a
    read callback is valid only during that callback. */
#ifndef ZB_JOURNAL_H_INCLUDED
#define ZB_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zb.h"

typedef struct zb_journal_t zb_journal_t;

typedef enum {
    ZB_SYNC_COMMIT,     //  flush to disk on every group commit (store of record)
    ZB_SYNC_OS,         //  leave flushing to the OS (MDB_NOSYNC)
} zb_sync_t;

typedef struct {
    const char *dir;            //  data directory; NULL selects the memory backend
    zb_sync_t sync;
    uint64_t retain_hours;      //  prune events older than this (0: no age limit)
    uint64_t retain_mb;         //  prune oldest events beyond this size (0: no size limit)
    uint64_t max_mb;            //  hard size of the store (LMDB map size); 0: default
    uint64_t memory_events;     //  memory backend: ring capacity in events
    uint64_t dedup_window_s;    //  how long idempotency keys are remembered
} zb_journal_config_t;

typedef struct {
    uint64_t seq;               //  broker-wide sequence number
    uint64_t topic_seq;         //  sequence number within the topic
    uint64_t arrival_ns;        //  broker clock (CLOCK_REALTIME) at acceptance
    zb_str_t topic;             //  detail-type
    zb_str_t event;             //  the packed msgpack envelope as published
    zb_str_t id;                //  the event id (36 bytes)
    zb_str_t idem_key;          //  idempotency key; ptr NULL when none
    uint64_t idem_hash;         //  zb_journal_key_hash of idem_key, or 0: computed then
} zb_record_t;

typedef struct {
    const char *backend;        //  "lmdb" or "memory"
    const char *path;           //  data directory or ""
    const char *sync;           //  "commit", "os" or "none"
    uint64_t head;              //  last seq stored (0 when empty and never used)
    uint64_t oldest;            //  first seq still stored (0 when empty)
    uint64_t events;            //  records stored
    uint64_t bytes;             //  bytes used by the store
} zb_journal_info_t;

//  Open (creating the directory and store when missing) and recover the heads.
zb_journal_t *zb_journal_open (const zb_journal_config_t *config, char *err, size_t errlen);
void zb_journal_destroy (zb_journal_t **self_p);

//  Append count records, all or nothing, in one transaction (durable per the
//  sync policy when this returns 0). records[i].seq must be head+1+i. On -1
//  nothing was stored and err says why (e.g. "No space left on device").
int zb_journal_append (zb_journal_t *self, const zb_record_t *records, size_t count,
                       char *err, size_t errlen);

//  Visit records with seq in [from, to] in order. fn returns 0 to go on, 1 to
//  stop after this record. At most max_scan records are looked at per call
//  (so a sparse topic filter cannot stall the caller). *next is set to the
//  seq to continue from (to + 1 when the range is done). 0 ok, -1 error.
//  Details: from 0 reads from 1, max_scan 0 means no limit; a range past the
//  head is done once the stored records are visited (*next = to + 1); read
//  records have idem_key NULL; fn must not call the journal.
typedef int (zb_journal_visit_fn) (void *arg, const zb_record_t *record);
int zb_journal_read (zb_journal_t *self, uint64_t from, uint64_t to, size_t max_scan,
                     zb_journal_visit_fn *fn, void *arg, uint64_t *next,
                     char *err, size_t errlen);

//  The first seq whose arrival_ns >= arrival_ns (head + 1 when none).
uint64_t zb_journal_seq_at (zb_journal_t *self, uint64_t arrival_ns);

//  The last topic_seq of every topic, as recovered at open and kept by append.
typedef void (zb_journal_topic_fn) (void *arg, zb_str_t topic, uint64_t topic_seq);
void zb_journal_topics (zb_journal_t *self, zb_journal_topic_fn *fn, void *arg);

//  Look up an idempotency key accepted within the dedup window. 1 found (the
//  record has seq, id, arrival_ns; event/topic may be empty), 0 not found, -1 error.
int zb_journal_dedup_get (zb_journal_t *self, zb_str_t key, uint64_t now_ns, zb_record_t *found);

//  The hash the journal files an idempotency key under (SipHash-1-3 under the
//  journal's own random key, fixed while it is open), so that a caller that
//  hashes a key once can look it up (dedup_get_hashed), prefetch its slot
//  before that (key_prefetch: a new key is a cache miss in a large window),
//  and append it (zb_record_t.idem_hash) without the journal hashing again.
uint64_t zb_journal_key_hash (zb_journal_t *self, zb_str_t key);
void zb_journal_key_prefetch (zb_journal_t *self, uint64_t hash);
int zb_journal_dedup_get_hashed (zb_journal_t *self, zb_str_t key, uint64_t hash,
                                 uint64_t now_ns, zb_record_t *found);

//  Remove what retention and the dedup window no longer keep, at most max_delete
//  records per call (call from a timer). Returns records removed, -1 on error.
//  The LMDB backend stores and removes events in groups (journal_lmdb.c): an
//  event goes with its group once the group's newest event is past retention,
//  and the last group of a call may take the count past max_delete by less
//  than a group.
int zb_journal_prune (zb_journal_t *self, uint64_t now_ns, size_t max_delete);

void zb_journal_info (zb_journal_t *self, zb_journal_info_t *info);

uint64_t zb_journal_head (zb_journal_t *self);
uint64_t zb_journal_oldest (zb_journal_t *self);

//  The message of the last failure of a call that has no err buffer (prune,
//  seq_at, info, dedup_get) or was given none; "" when there was none yet.
const char *zb_journal_last_error (zb_journal_t *self);

#endif
