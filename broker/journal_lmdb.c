/*  journal_lmdb.c - the journal's disk backend: one LMDB environment in the
    data directory (data.mdb, lock.mdb).

    Named databases:
      events    first seq of a group (8 bytes big-endian, so keys sort
                numerically) -> a group of records with consecutive seqs
                (format 2, below)
      topics    detail-type -> last topic_seq (u64)
      dedup     seq -> [arrival_ns u64][id 36] idempotency key: the keys in
                order of acceptance (a log, appended like events)
      meta      "format" -> 2; "head" -> last seq, written when pruning
                deletes events (an emptied journal still knows where seq was);
                "pruned" -> when the last prune ran; "format1-head" -> see
                Format 1 below
    All integers big-endian.

    Format 2: an events value is a group of records, the first one with the
    key's seq and each next one with the seq after:
        [count u16]                         records in the group, >= 1
        count times:
          [arrival_ns u64][topic_seq u64][topic_len u16][event_len u32]
          [id 36] topic event               58 bytes + topic + event
    An append fills a group greedily with its consecutive records for as
    long as the value stays small enough to be stored inline in a leaf page:
    key and value within LMDB's largest node, so two groups of the largest
    size fill a page (group_max, from the page size: 2,022 bytes for 4 KiB
    pages). A record that alone is larger is a group of one, on overflow
    pages as before. Groups never span appends. Why: mdb_put was about a
    third of the broker's work per event with --sync os (~1,320 of ~3,800
    instructions under callgrind); a group pays it once for all its records.
    Why not larger, multi-page groups: LMDB looks for a run of contiguous
    free pages for every overflow value, a slow search in a fragmented free
    list. Readers visit records one by one, each with its own seq: a read
    from the middle of a group starts at the group before the key (MDB_PREV)
    and skips the records before it. Pruning by age deletes a group when its
    newest record is past retention (retention stays "at least"); pruning
    by size deletes whole groups from the front.

    Format 1 (brokers before groups): one record per value, key its seq,
    value [arrival_ns u64][topic_seq u64][topic_len u16][id 36] topic event
    (the event is the rest of the value). A format-1 store is upgraded at
    open by writing meta "format" = 2 and "format1-head" = its last seq, in
    one small transaction: nothing is rewritten. Values whose key is at or
    below format1-head are read as format-1 records (a group of one each);
    retention removes them in time like any others. Another format is
    refused.

    Why the idempotency keys are a log and not a table keyed by the key:
    keys are chosen by producers (UUIDs, typically), so in a key-ordered
    B-tree each of a batch's keys lands on another page, and every commit
    rewrites one 4 KiB page per key: with such a table, bench/zb-journal-bench
    measured 9 KiB written per record and ~0.9 ms (p50) per 100-record append
    with random keys at 3M keys, against 0.7 KiB and ~0.05 ms without keys.
    The log is appended like the events (a few pages per batch: ~1 KiB per
    record and ~0.1 ms per append, random keys or not) and pruned from its
    front. Lookups go through an index
    in memory, zb_jhash_t: 64-bit keyed hash -> seq, 16 bytes a slot and a
    tag byte, at most half full (~34 bytes per key in the window), rebuilt
    from the log at
    open. A hash hit is confirmed against the key stored in the log (one
    B-tree get); a miss, the common case, costs no transaction at all.

    One write transaction per append (MDB_APPEND: keys only grow, pages fill
    up completely and no search is needed), committed with an fsync unless
    --sync os (MDB_NOSYNC). Reads use one read-only transaction handle that
    is renewed for each call and reset after it: no read transaction outlives
    a call, so pruned pages are reusable at once, and no call allocates.
    The environment is opened MDB_NOTLS (read transactions are not tied to a
    thread) and the directory is flock()ed so a second broker on the same
    directory is refused instead of interleaving sequence numbers. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lmdb.h>
#include "journal_impl.h"

#define FORMAT_VERSION  2
#define GROUP_HEADER    2                                       //  record count u16
#define GROUP_MAX_COUNT 0xFFFF
#define RECORD_HEADER   (8 + 8 + 2 + 4 + ZB_JOURNAL_ID_SIZE)    //  format 2, before topic
#define V1_HEADER       (8 + 8 + 2 + ZB_JOURNAL_ID_SIZE)        //  format 1, before topic
#define DEDUP_HEADER    (8 + ZB_JOURNAL_ID_SIZE)                //  dedup value, before the key
#define MALFORMED       (-1)    //  not an LMDB code: an events value we cannot decode

typedef struct {
    char *dir;
    int dir_fd;                 //  holds the flock
    size_t mapsize;
    unsigned int flags;         //  mdb_env_open flags
    MDB_env *env;               //  NULL after a fatal error, until reopened
    MDB_dbi main, events, topics, dedup, meta;
    MDB_txn *rtxn;              //  read-only, reset between calls
    MDB_cursor *rcursor;        //  on events, renewed with rtxn
    size_t psize;
    size_t group_max;           //  largest group value stored inline (more: a group of one)
    uint64_t v1_head;           //  values with keys up to this are format 1 (0: none)
    uint64_t head;              //  last seq stored
    uint64_t oldest;            //  first seq stored, 0 when empty
    uint64_t retain_ns;         //  0: no age limit
    uint64_t retain_bytes;      //  0: no size limit
    uint64_t window_ns;         //  0: idempotency keys are not kept
    zb_jhash_t *keys;           //  hash of idempotency key -> seq in dedup
    char id [ZB_JOURNAL_ID_SIZE];   //  dedup_get: the id found
} ljournal_t;

static void
s_error (char *err, size_t errlen, const char *what, int rc)
{
    const char *text = rc == MDB_MAP_FULL? "journal full (journal-max-mb reached)": mdb_strerror (rc);
    if (what)
        snprintf (err, errlen, "%s: %s", what, text);
    else
        snprintf (err, errlen, "%s", text);
}

static MDB_val
s_val (const void *data, size_t size)
{
    MDB_val val = { size, (void *) data };
    return val;
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24);
    p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);
    p [3] = (uint8_t) v;
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return ((uint32_t) p [0] << 24) | ((uint32_t) p [1] << 16) | ((uint32_t) p [2] << 8) | p [3];
}

//  --------------------------------------------------------------------------
//  Groups of records (format 2, and format 1's single records)

typedef struct {
    uint64_t seq;               //  seq of the next record
    size_t left;                //  records not read yet
    const uint8_t *p;           //  the next record's bytes
    const uint8_t *end;         //  the end of the value
    bool v1;                    //  a format-1 value: one record, another layout
} group_t;

//  Start reading the group stored under key. 0 ok, MALFORMED when the key
//  or the group's header cannot be ours.
static int
s_group_open (ljournal_t *self, const MDB_val *key, const MDB_val *val, group_t *g)
{
    if (key->mv_size != 8)
        return MALFORMED;
    g->seq = zb_journal_get64 ((const uint8_t *) key->mv_data);
    g->p = (const uint8_t *) val->mv_data;
    g->end = g->p + val->mv_size;
    g->v1 = g->seq <= self->v1_head;
    g->left = 1;
    if (!g->v1) {
        if (val->mv_size < GROUP_HEADER)
            return MALFORMED;
        g->left = zb_journal_get16 (g->p);
        g->p += GROUP_HEADER;
    }
    if (g->left == 0 || g->seq == 0 || g->seq > UINT64_MAX - g->left)
        return MALFORMED;
    return 0;
}

//  The seq of the group's last record
static uint64_t
s_group_last (const group_t *g)
{
    return g->seq + g->left - 1;
}

//  Decode the group's next record into a view. 1 done, 0 the group is over
//  (and ends where its value ends), MALFORMED when the bytes do not add up.
static int
s_group_next (group_t *g, zb_record_t *record)
{
    if (g->left == 0)
        return g->p == g->end? 0: MALFORMED;
    const uint8_t *p = g->p;
    size_t avail = (size_t) (g->end - p);
    size_t header, topic_len, event_len;
    const uint8_t *id;
    if (g->v1) {
        header = V1_HEADER;
        if (avail < header)
            return MALFORMED;
        topic_len = zb_journal_get16 (p + 16);
        if (topic_len > avail - header)
            return MALFORMED;
        event_len = avail - header - topic_len;
        id = p + 18;
    }
    else {
        header = RECORD_HEADER;
        if (avail < header)
            return MALFORMED;
        topic_len = zb_journal_get16 (p + 16);
        event_len = s_get32 (p + 18);
        if (topic_len > avail - header || event_len > avail - header - topic_len)
            return MALFORMED;
        id = p + 22;
    }
    record->seq = g->seq;
    record->arrival_ns = zb_journal_get64 (p);
    record->topic_seq = zb_journal_get64 (p + 8);
    record->id.ptr = (const char *) id;
    record->id.len = ZB_JOURNAL_ID_SIZE;
    record->topic.ptr = (const char *) p + header;
    record->topic.len = topic_len;
    record->event.ptr = (const char *) p + header + topic_len;
    record->event.len = event_len;
    record->idem_key.ptr = NULL;
    record->idem_key.len = 0;
    record->idem_hash = 0;
    g->p = p + header + topic_len + event_len;
    g->seq++;
    g->left--;
    return 1;
}

//  Read a whole group: its record count and its newest arrival. 0 ok,
//  MALFORMED.
static int
s_group_scan (ljournal_t *self, const MDB_val *key, const MDB_val *val,
              size_t *count, uint64_t *newest)
{
    group_t g;
    if (s_group_open (self, key, val, &g))
        return MALFORMED;
    *count = g.left;
    *newest = 0;
    zb_record_t record;
    int rc;
    while ((rc = s_group_next (&g, &record)) == 1)
        if (record.arrival_ns > *newest)
            *newest = record.arrival_ns;
    return rc;
}

//  Position cursor on the group that holds seq, or else on the first group
//  after it, and open that group with seq (or the group's first record) as
//  its next record. 0 ok, MDB_NOTFOUND when no record at or after seq is
//  stored, MALFORMED, or an LMDB error.
static int
s_seek (ljournal_t *self, MDB_cursor *cursor, uint64_t seq, group_t *g)
{
    uint8_t at [8];
    zb_journal_put64 (at, seq);
    MDB_val key = s_val (at, 8), val;
    int rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && key.mv_size == 8 && zb_journal_get64 ((const uint8_t *) key.mv_data) == seq)
        return s_group_open (self, &key, &val, g);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    //  The key is past seq, or there is none: seq may be inside the group before
    bool after = rc == 0;
    rc = mdb_cursor_get (cursor, &key, &val, after? MDB_PREV: MDB_LAST);
    if (rc == 0) {
        if (s_group_open (self, &key, &val, g))
            return MALFORMED;
        if (s_group_last (g) >= seq) {
            zb_record_t skipped;
            while (g->seq < seq)
                if (s_group_next (g, &skipped) != 1)
                    return MALFORMED;
            return 0;
        }
        if (!after)
            return MDB_NOTFOUND;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    else
    if (rc == MDB_NOTFOUND && after)
        rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);    //  nothing before seq
    if (rc)
        return rc;
    return s_group_open (self, &key, &val, g);
}

//  mkdir -p with mode 0750 for what it creates
static int
s_mkdirs (const char *path)
{
    char *copy = strdup (path);
    if (!copy)
        return -1;
    for (char *slash = strchr (copy + 1, '/'); ; slash = strchr (slash + 1, '/')) {
        if (slash)
            *slash = 0;
        if (*copy && mkdir (copy, 0750) && errno != EEXIST) {
            free (copy);
            return -1;
        }
        if (!slash)
            break;
        *slash = '/';
        while (slash [1] == '/')
            slash++;
    }
    free (copy);
    struct stat st;
    if (stat (path, &st))
        return -1;
    if (!S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void
s_env_close (ljournal_t *self)
{
    if (self->rcursor)
        mdb_cursor_close (self->rcursor);
    self->rcursor = NULL;
    if (self->rtxn)
        mdb_txn_abort (self->rtxn);
    self->rtxn = NULL;
    if (self->env) {
        if (self->flags & MDB_NOSYNC)
            mdb_env_sync (self->env, 1);
        mdb_env_close (self->env);
    }
    self->env = NULL;
}

//  Read the heads back from the store. The caller holds no transaction.
static int
s_recover_heads (ljournal_t *self, zb_journal_restore_fn *restore, void *arg,
                 char *err, size_t errlen)
{
    int rc = mdb_txn_renew (self->rtxn);
    if (!rc)
        rc = mdb_cursor_renew (self->rtxn, self->rcursor);
    if (rc) {
        s_error (err, errlen, "journal read", rc);
        return -1;
    }
    MDB_val key, val;
    uint64_t head = 0, oldest = 0;
    rc = mdb_cursor_get (self->rcursor, &key, &val, MDB_FIRST);
    if (rc == 0 && key.mv_size == 8) {
        oldest = zb_journal_get64 ((const uint8_t *) key.mv_data);
        rc = mdb_cursor_get (self->rcursor, &key, &val, MDB_LAST);
        if (rc == 0) {
            //  The head is the last group's last record: the whole group
            //  must decode, or its count could put the head anywhere
            group_t g;
            zb_record_t record;
            int got = s_group_open (self, &key, &val, &g);
            uint64_t last = got? 0: s_group_last (&g);
            uint64_t good = got? 0: g.seq - 1;
            if (got == 0)
                while ((got = s_group_next (&g, &record)) == 1)
                    good = record.seq;
            if (got) {
                mdb_txn_reset (self->rtxn);
                snprintf (err, errlen, "journal %s: malformed record after seq %llu "
                          "(the last group of events)", self->dir, (unsigned long long) good);
                return -1;
            }
            head = last;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        goto failed;
    MDB_val name = s_val ("head", 4);
    rc = mdb_get (self->rtxn, self->meta, &name, &val);
    if (rc == 0 && val.mv_size == 8) {
        uint64_t meta_head = zb_journal_get64 ((const uint8_t *) val.mv_data);
        if (meta_head > head)
            head = meta_head;
    }
    else
    if (rc && rc != MDB_NOTFOUND)
        goto failed;
    if (restore) {
        MDB_cursor *cursor;
        rc = mdb_cursor_open (self->rtxn, self->topics, &cursor);
        if (rc)
            goto failed;
        for (rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT)) {
            if (val.mv_size != 8 || key.mv_size == 0 || key.mv_size > ZB_JOURNAL_MAX_KEY)
                continue;       //  not ours: ignore rather than refuse the store
            if (restore (arg, key.mv_data, key.mv_size, zb_journal_get64 ((const uint8_t *) val.mv_data))) {
                mdb_cursor_close (cursor);
                mdb_txn_reset (self->rtxn);
                snprintf (err, errlen, "out of memory");
                return -1;
            }
        }
        mdb_cursor_close (cursor);
        if (rc != MDB_NOTFOUND)
            goto failed;
    }
    mdb_txn_reset (self->rtxn);
    self->head = head;
    self->oldest = oldest;
    return 0;

failed:
    mdb_txn_reset (self->rtxn);
    s_error (err, errlen, "journal recovery", rc);
    return -1;
}

static bool s_lend_room (ljournal_t *self);
static void s_return_room (ljournal_t *self);

//  The setup transaction: open (create) the databases, check the format,
//  upgrade format 1 (see the top of the file). Returns an LMDB code;
//  *unsupported set when the store is of a format this broker does not read.
static int
s_setup_txn (ljournal_t *self, bool *unsupported)
{
    MDB_txn *txn;
    MDB_cursor *cursor = NULL;
    *unsupported = false;
    self->v1_head = 0;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_dbi_open (txn, NULL, 0, &self->main))
    ||  (rc = mdb_dbi_open (txn, "events", MDB_CREATE, &self->events))
    ||  (rc = mdb_dbi_open (txn, "topics", MDB_CREATE, &self->topics))
    ||  (rc = mdb_dbi_open (txn, "dedup", MDB_CREATE, &self->dedup))
    ||  (rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta)))
        goto failed;
    MDB_val name = s_val ("format", 6), val, key;
    rc = mdb_get (txn, self->meta, &name, &val);
    if (rc && rc != MDB_NOTFOUND)
        goto failed;
    bool write_format = rc == MDB_NOTFOUND;     //  a new store
    uint64_t version = write_format? FORMAT_VERSION
                     : val.mv_size == 8? zb_journal_get64 ((const uint8_t *) val.mv_data): 0;
    MDB_val v1_name = s_val ("format1-head", 12);
    uint8_t v1_head [8];
    if (version == 1) {
        //  Every value stored so far holds one format-1 record
        if ((rc = mdb_cursor_open (txn, self->events, &cursor)))
            goto failed;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
        if (rc == 0 && key.mv_size == 8)
            self->v1_head = zb_journal_get64 ((const uint8_t *) key.mv_data);
        mdb_cursor_close (cursor);
        cursor = NULL;
        if (rc && rc != MDB_NOTFOUND)
            goto failed;
        if (self->v1_head) {
            zb_journal_put64 (v1_head, self->v1_head);
            val = s_val (v1_head, 8);
            if ((rc = mdb_put (txn, self->meta, &v1_name, &val, 0)))
                goto failed;
        }
        write_format = true;
    }
    else
    if (version == FORMAT_VERSION) {
        rc = mdb_get (txn, self->meta, &v1_name, &val);
        if (rc == 0 && val.mv_size == 8)
            self->v1_head = zb_journal_get64 ((const uint8_t *) val.mv_data);
        else
        if (rc == 0) {
            *unsupported = true;
            mdb_txn_abort (txn);
            return 0;
        }
        else
        if (rc != MDB_NOTFOUND)
            goto failed;
    }
    else {
        *unsupported = true;
        mdb_txn_abort (txn);
        return 0;
    }
    if (write_format) {
        uint8_t format [8];
        zb_journal_put64 (format, FORMAT_VERSION);
        val = s_val (format, 8);
        if ((rc = mdb_put (txn, self->meta, &name, &val, 0)))
            goto failed;
    }
    return mdb_txn_commit (txn);

failed:
    if (cursor)
        mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return rc;
}

//  Open the environment and its databases (creating what is missing)
static int
s_env_open (ljournal_t *self, char *err, size_t errlen)
{
    assert (!self->env);
    const char *what = "journal open";
    int rc = mdb_env_create (&self->env);
    if (rc) {
        self->env = NULL;
        goto failed;
    }
    if ((rc = mdb_env_set_maxdbs (self->env, 8))
    ||  (rc = mdb_env_set_mapsize (self->env, self->mapsize))
    ||  (rc = mdb_env_open (self->env, self->dir, self->flags, 0640)))
        goto failed;
    MDB_stat stat;
    if ((rc = mdb_env_stat (self->env, &stat)))
        goto failed;
    self->psize = stat.ms_psize;
    //  LMDB stores a node inline when node header (8) + key + value fit in
    //  its me_nodemax, ((psize - page header 16) / 2, even) - a 2-byte slot:
    //  two such nodes fill a page. Our key is 8 bytes.
    self->group_max = (((self->psize - 16) / 2) & ~(size_t) 1) - 2 - 8 - 8;

    what = "journal setup";
    bool unsupported;
    rc = s_setup_txn (self, &unsupported);
    if (rc == MDB_MAP_FULL && s_lend_room (self)) {
        //  Copy-on-write wants a few free pages even for the format upgrade
        rc = s_setup_txn (self, &unsupported);
        s_return_room (self);
    }
    if (rc)
        goto failed;
    if (unsupported) {
        snprintf (err, errlen, "journal %s: unsupported format (this broker reads format %d)",
                  self->dir, FORMAT_VERSION);
        s_env_close (self);
        return -1;
    }

    what = "journal open";
    if ((rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &self->rtxn))) {
        self->rtxn = NULL;
        goto failed;
    }
    if ((rc = mdb_cursor_open (self->rtxn, self->events, &self->rcursor))) {
        self->rcursor = NULL;
        goto failed;
    }
    mdb_txn_reset (self->rtxn);
    return 0;

failed:
    {
        char what_dir [64 + 1024];
        snprintf (what_dir, sizeof (what_dir), "%s %s", what, self->dir);
        s_error (err, errlen, what_dir, rc);
    }
    s_env_close (self);
    return -1;
}

//  After MDB_PANIC (a failed meta page write) LMDB refuses every further
//  transaction on this environment: close it and open it again, which
//  recovers the last committed state.
static int
s_env_reopen (ljournal_t *self, char *err, size_t errlen)
{
    s_env_close (self);
    if (s_env_open (self, err, errlen))
        return -1;
    return s_recover_heads (self, NULL, NULL, err, errlen);
}

static int
s_ready (ljournal_t *self, char *err, size_t errlen)
{
    return self->env? 0: s_env_reopen (self, err, errlen);
}

static int
s_write_begin (ljournal_t *self, MDB_txn **txn, char *err, size_t errlen)
{
    if (s_ready (self, err, errlen))
        return -1;
    int rc = mdb_txn_begin (self->env, NULL, 0, txn);
    if (rc == MDB_PANIC) {
        if (s_env_reopen (self, err, errlen))
            return -1;
        rc = mdb_txn_begin (self->env, NULL, 0, txn);
    }
    if (rc) {
        s_error (err, errlen, NULL, rc);
        if (rc == MDB_PANIC)
            s_env_close (self);
        return -1;
    }
    return 0;
}

static int
s_read_begin (ljournal_t *self, char *err, size_t errlen)
{
    if (s_ready (self, err, errlen))
        return -1;
    int rc = mdb_txn_renew (self->rtxn);
    if (rc == MDB_PANIC) {
        if (s_env_reopen (self, err, errlen))
            return -1;
        rc = mdb_txn_renew (self->rtxn);
    }
    if (!rc)
        rc = mdb_cursor_renew (self->rtxn, self->rcursor);
    if (rc) {
        mdb_txn_reset (self->rtxn);
        s_error (err, errlen, "journal read", rc);
        return -1;
    }
    return 0;
}

//  Index every idempotency key of the dedup log (expired ones too: the next
//  prune removes them, and lookups check the window anyway)
static int
s_load_keys (ljournal_t *self, char *err, size_t errlen)
{
    if (s_read_begin (self, err, errlen))
        return -1;
    MDB_stat stat;
    MDB_cursor *cursor = NULL;
    int rc = mdb_stat (self->rtxn, self->dedup, &stat);
    if (rc == 0 && zb_jhash_reserve (self->keys, stat.ms_entries)) {
        mdb_txn_reset (self->rtxn);
        snprintf (err, errlen, "out of memory (%zu idempotency keys)", (size_t) stat.ms_entries);
        return -1;
    }
    if (rc == 0)
        rc = mdb_cursor_open (self->rtxn, self->dedup, &cursor);
    MDB_val key, val;
    size_t loaded = 0;
    if (rc == 0) {
        for (rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT)) {
            if (key.mv_size != 8 || val.mv_size <= DEDUP_HEADER || loaded == stat.ms_entries)
                continue;       //  not ours; prune drops it
            uint64_t seq = zb_journal_get64 ((const uint8_t *) key.mv_data);
            uint64_t hash = zb_jhash_of (self->keys, (const uint8_t *) val.mv_data + DEDUP_HEADER,
                                         val.mv_size - DEDUP_HEADER);
            zb_jhash_insert (self->keys, hash, seq);
            loaded++;
        }
        mdb_cursor_close (cursor);
    }
    mdb_txn_reset (self->rtxn);
    if (rc != MDB_NOTFOUND) {
        s_error (err, errlen, "journal recovery", rc);
        return -1;
    }
    return 0;
}

//  Is this key in the dedup log at seq, accepted within the window as of
//  now? Reads with txn. 1 yes (*entry set), 0 no, -1 LMDB error (*rc set).
typedef struct {
    ljournal_t *self;
    MDB_txn *txn;               //  NULL: open the read transaction on first use
    zb_str_t key;
    uint64_t now_ns;
    MDB_val entry;              //  the log entry found
    int rc;
    uint64_t seq;               //  its seq
} key_check_t;

static int
s_key_check (void *arg, uint64_t seq)
{
    key_check_t *check = (key_check_t *) arg;
    ljournal_t *self = check->self;
    if (!check->txn) {
        int rc = mdb_txn_renew (self->rtxn);
        if (rc) {
            check->rc = rc;
            return -1;
        }
        check->txn = self->rtxn;
    }
    uint8_t seq_be [8];
    zb_journal_put64 (seq_be, seq);
    MDB_val key = s_val (seq_be, 8);
    int rc = mdb_get (check->txn, self->dedup, &key, &check->entry);
    if (rc == MDB_NOTFOUND)
        return 0;               //  pruned meanwhile
    if (rc) {
        check->rc = rc;
        return -1;
    }
    const uint8_t *p = (const uint8_t *) check->entry.mv_data;
    if (check->entry.mv_size != DEDUP_HEADER + check->key.len
    ||  memcmp (p + DEDUP_HEADER, check->key.ptr, check->key.len) != 0)
        return 0;               //  another key with the same hash
    if (zb_journal_expired (zb_journal_get64 (p), self->window_ns, check->now_ns))
        return 0;               //  an earlier acceptance, expired
    check->seq = seq;
    return 1;
}

void *
zb_journal_lmdb_open (const zb_journal_config_t *config,
                      zb_journal_restore_fn *restore, void *arg,
                      char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) calloc (1, sizeof (ljournal_t));
    if (!self || !(self->dir = strdup (config->dir))) {
        snprintf (err, errlen, "out of memory");
        free (self);
        return NULL;
    }
    self->dir_fd = -1;
    self->retain_ns = zb_journal_mul_sat (config->retain_hours, 3600 * ZB_JOURNAL_NS_PER_S);
    self->retain_bytes = zb_journal_mul_sat (config->retain_mb, ZB_JOURNAL_MIB);
    self->window_ns = zb_journal_mul_sat (config->dedup_window_s, ZB_JOURNAL_NS_PER_S);
    uint64_t max_mb = config->max_mb;
    if (max_mb == 0)
        max_mb = config->retain_mb == 0? 4096
               : config->retain_mb > UINT64_MAX / 2? UINT64_MAX
               : config->retain_mb * 2 > 64? config->retain_mb * 2: 64;
    uint64_t mapsize = zb_journal_mul_sat (max_mb, ZB_JOURNAL_MIB);
    self->mapsize = mapsize > SIZE_MAX / 2? SIZE_MAX / 2: (size_t) mapsize;
    self->flags = MDB_NOTLS | (config->sync == ZB_SYNC_OS? MDB_NOSYNC: 0);

    if (s_mkdirs (self->dir)) {
        snprintf (err, errlen, "journal directory %s: %s", self->dir, strerror (errno));
        goto failed;
    }
    self->dir_fd = open (self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd == -1) {
        snprintf (err, errlen, "journal directory %s: %s", self->dir, strerror (errno));
        goto failed;
    }
    if (flock (self->dir_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            snprintf (err, errlen, "journal %s is in use by another broker", self->dir);
        else
            snprintf (err, errlen, "journal directory %s: lock: %s", self->dir, strerror (errno));
        goto failed;
    }
    if (!(self->keys = zb_jhash_new ())) {
        snprintf (err, errlen, "out of memory");
        goto failed;
    }
    if (s_env_open (self, err, errlen)
    ||  s_recover_heads (self, restore, arg, err, errlen)
    ||  s_load_keys (self, err, errlen))
        goto failed;
    //  LMDB may just have created its files: make their names durable too
    fsync (self->dir_fd);
    return self;

failed:
    {
        void *be = self;
        zb_journal_lmdb_ops.destroy (&be);
    }
    return NULL;
}

static void
s_destroy (void **be_p)
{
    ljournal_t *self = (ljournal_t *) *be_p;
    if (!self)
        return;
    s_env_close (self);
    zb_jhash_destroy (&self->keys);
    if (self->dir_fd != -1)
        close (self->dir_fd);   //  releases the flock
    free (self->dir);
    free (self);
    *be_p = NULL;
}

//  The hash a record's idempotency key is filed under: the one the caller
//  computed (zb_journal_key_hash), or ours when it gave none
static uint64_t
s_record_hash (ljournal_t *self, const zb_record_t *record)
{
    return record->idem_hash
         ? record->idem_hash
         : zb_jhash_of (self->keys, record->idem_key.ptr, record->idem_key.len);
}

//  Take back the index entries an append made before it failed
static void
s_unindex (ljournal_t *self, const zb_record_t *records, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (records [i].idem_key.ptr)
            zb_jhash_remove (self->keys, s_record_hash (self, &records [i]), records [i].seq);
}

//  Bytes of a record in a group
static size_t
s_record_size (const zb_record_t *record)
{
    return RECORD_HEADER + record->topic.len + record->event.len;
}

//  Write a record at p; returns where the next one goes
static uint8_t *
s_record_put (uint8_t *p, const zb_record_t *record)
{
    zb_journal_put64 (p, record->arrival_ns);
    zb_journal_put64 (p + 8, record->topic_seq);
    zb_journal_put16 (p + 16, (uint16_t) record->topic.len);
    s_put32 (p + 18, (uint32_t) record->event.len);
    memcpy (p + 22, record->id.ptr, ZB_JOURNAL_ID_SIZE);
    p += RECORD_HEADER;
    memcpy (p, record->topic.ptr, record->topic.len);
    p += record->topic.len;
    if (record->event.len)
        memcpy (p, record->event.ptr, record->event.len);
    return p + record->event.len;
}

static int
s_append (void *be, const zb_record_t *records, size_t count,
          zb_journal_topic_t *const *dirty, size_t ndirty, char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    if (self->window_ns) {
        size_t keyed = 0;
        for (size_t i = 0; i < count; i++)
            keyed += records [i].idem_key.ptr != NULL;
        if (zb_jhash_reserve (self->keys, keyed)) {
            snprintf (err, errlen, "out of memory (%zu idempotency keys)",
                      zb_jhash_size (self->keys) + keyed);
            return -1;
        }
    }
    for (size_t i = 0; i < count; i++)
        if (records [i].event.len > UINT32_MAX) {
            snprintf (err, errlen, "record seq %llu: event of %zu bytes, more than the journal stores (4 GiB)",
                      (unsigned long long) records [i].seq, records [i].event.len);
            return -1;
        }
    MDB_txn *txn;
    if (s_write_begin (self, &txn, err, errlen))
        return -1;
    int rc = 0;
    size_t indexed = 0;         //  records [0, indexed) had their key indexed
    uint8_t seq_be [8];
    MDB_val key = s_val (seq_be, 8), val;
    for (size_t i = 0; i < count; ) {
        //  The group: records [i, i + n), as many as stay inline (one at least)
        size_t size = GROUP_HEADER + s_record_size (&records [i]);
        size_t n = 1;
        while (i + n < count && n < GROUP_MAX_COUNT) {
            size_t more = s_record_size (&records [i + n]);
            if (size + more > self->group_max)
                break;
            size += more;
            n++;
        }
        zb_journal_put64 (seq_be, records [i].seq);
        //  MDB_RESERVE: LMDB hands us the space, we write the group in place
        val.mv_size = size;
        val.mv_data = NULL;
        if ((rc = mdb_put (txn, self->events, &key, &val, MDB_APPEND | MDB_RESERVE)))
            goto failed;
        uint8_t *p = (uint8_t *) val.mv_data;
        zb_journal_put16 (p, (uint16_t) n);
        p += GROUP_HEADER;
        for (size_t j = 0; j < n; j++)
            p = s_record_put (p, &records [i + j]);
        assert (p == (uint8_t *) val.mv_data + size);
        i += n;
    }
    for (size_t i = 0; i < ndirty; i++) {
        uint8_t topic_seq [8];
        zb_journal_put64 (topic_seq, dirty [i]->pending);
        MDB_val name = s_val (dirty [i]->entry.key.ptr, dirty [i]->entry.key.len);
        val = s_val (topic_seq, 8);
        if ((rc = mdb_put (txn, self->topics, &name, &val, 0)))
            goto failed;
    }
    for (size_t i = 0; self->window_ns && i < count; i++, indexed = i) {
        const zb_record_t *record = &records [i];
        if (!record->idem_key.ptr)
            continue;
        //  The first acceptance within the window stands (the broker looks
        //  keys up before it appends; this covers a key twice in one batch)
        uint64_t hash = s_record_hash (self, record);
        key_check_t check = { self, txn, record->idem_key, record->arrival_ns, { 0, NULL }, 0, 0 };
        int found = zb_jhash_find (self->keys, hash, s_key_check, &check);
        if (found == -1) {
            rc = check.rc;
            goto failed;
        }
        if (found)
            continue;
        zb_journal_put64 (seq_be, record->seq);
        val.mv_size = DEDUP_HEADER + record->idem_key.len;
        val.mv_data = NULL;
        if ((rc = mdb_put (txn, self->dedup, &key, &val, MDB_APPEND | MDB_RESERVE)))
            goto failed;
        uint8_t *p = (uint8_t *) val.mv_data;
        zb_journal_put64 (p, record->arrival_ns);
        memcpy (p + 8, record->id.ptr, ZB_JOURNAL_ID_SIZE);
        memcpy (p + DEDUP_HEADER, record->idem_key.ptr, record->idem_key.len);
        zb_jhash_insert (self->keys, hash, record->seq);
    }
    rc = mdb_txn_commit (txn);      //  frees txn, also when it fails
    if (rc) {
        s_unindex (self, records, count);
        s_error (err, errlen, NULL, rc);
        return -1;
    }
    self->head = records [count - 1].seq;
    if (!self->oldest)
        self->oldest = records [0].seq;
    return 0;

failed:
    mdb_txn_abort (txn);
    s_unindex (self, records, indexed);
    s_error (err, errlen, NULL, rc);
    return -1;
}

static void
s_malformed (ljournal_t *self, uint64_t good, char *err, size_t errlen)
{
    snprintf (err, errlen, "journal %s: malformed record after seq %llu",
              self->dir, (unsigned long long) good);
}

static int
s_read (void *be, uint64_t from, uint64_t to, size_t max_scan,
        zb_journal_visit_fn *fn, void *arg, uint64_t *next, char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    *next = to + 1;
    if (from > self->head || !self->oldest)
        return 0;               //  nothing stored in the range
    if (s_read_begin (self, err, errlen))
        return -1;
    size_t scanned = 0;
    uint64_t good = from - 1;   //  the last record decoded (for the error message)
    group_t g;
    MDB_val key, val;
    int rc = s_seek (self, self->rcursor, from, &g);
    while (rc == 0) {
        zb_record_t record;
        int got = s_group_next (&g, &record);
        if (got == 0) {
            rc = mdb_cursor_get (self->rcursor, &key, &val, MDB_NEXT);
            if (rc == 0 && key.mv_size == 8 && zb_journal_get64 ((const uint8_t *) key.mv_data) > to)
                break;          //  the range ends before this group
            if (rc == 0)
                rc = s_group_open (self, &key, &val, &g);
            continue;
        }
        if (got != 1) {
            rc = MALFORMED;
            break;
        }
        good = record.seq;
        if (record.seq > to)
            break;
        if (scanned == max_scan) {
            *next = record.seq;
            break;
        }
        scanned++;
        if (fn (arg, &record)) {
            *next = record.seq + 1;
            break;
        }
    }
    mdb_txn_reset (self->rtxn);
    if (rc == MALFORMED) {
        s_malformed (self, good, err, errlen);
        return -1;
    }
    if (rc && rc != MDB_NOTFOUND) {
        s_error (err, errlen, "journal read", rc);
        return -1;
    }
    return 0;
}

static int
s_seq_at (void *be, uint64_t arrival_ns, uint64_t *seq, char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    *seq = self->head + 1;
    if (!self->oldest)
        return 0;
    if (s_read_begin (self, err, errlen))
        return -1;
    //  Binary search over seq on the record's arrival. Arrivals only go
    //  backwards when the clock is stepped back; the search then still ends
    //  on a record with arrival >= arrival_ns, just maybe not the first one.
    //  Each probe finds the record in its group (s_seek): the same probes,
    //  and so the same answer, as with one record per value.
    uint64_t lo = self->oldest, hi = self->head + 1;
    int rc = 0;
    group_t g;
    zb_record_t record;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        rc = s_seek (self, self->rcursor, mid, &g);
        if (rc == MDB_NOTFOUND) {
            hi = mid;
            continue;
        }
        if (rc)
            break;
        if (s_group_next (&g, &record) != 1) {
            rc = MALFORMED;
            break;
        }
        if (record.seq >= hi || record.arrival_ns >= arrival_ns)
            hi = mid;
        else
            lo = record.seq + 1;
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = s_seek (self, self->rcursor, lo, &g);
        if (rc == 0)
            *seq = g.seq;
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_txn_reset (self->rtxn);
    if (rc) {
        if (rc == MALFORMED)
            s_malformed (self, lo - 1, err, errlen);
        else
            s_error (err, errlen, "journal seq_at", rc);
        *seq = self->head + 1;
        return -1;
    }
    return 0;
}

static uint64_t
s_key_hash (void *be, zb_str_t key)
{
    return zb_jhash_of (((ljournal_t *) be)->keys, key.ptr, key.len);
}

static void
s_key_prefetch (void *be, uint64_t hash)
{
    zb_jhash_prefetch (((ljournal_t *) be)->keys, hash);
}

static int
s_dedup_get (void *be, zb_str_t key, uint64_t hash, uint64_t now_ns, zb_record_t *found,
             char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    if (!self->window_ns)
        return 0;
    if (s_ready (self, err, errlen))
        return -1;
    key_check_t check = { self, NULL, key, now_ns, { 0, NULL }, 0, 0 };
    int result = zb_jhash_find (self->keys, hash, s_key_check, &check);
    if (result == 1) {
        //  Copy while the transaction is live: once it is reset, a writer
        //  may reuse the page
        const uint8_t *p = (const uint8_t *) check.entry.mv_data;
        memcpy (self->id, p + 8, ZB_JOURNAL_ID_SIZE);
        found->arrival_ns = zb_journal_get64 (p);
        found->id.ptr = self->id;
        found->id.len = ZB_JOURNAL_ID_SIZE;
        found->seq = check.seq;
    }
    if (check.txn)
        mdb_txn_reset (self->rtxn);
    if (result == -1) {
        s_error (err, errlen, "journal dedup", check.rc);
        return -1;
    }
    return result;
}

//  Pages a database uses, from its statistics
static uint64_t
s_pages (MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat stat;
    if (mdb_stat (txn, dbi, &stat))
        return 0;
    return (uint64_t) stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
}

//  One prune transaction. Returns records removed, or -1 with err set and
//  *mdb_rc the LMDB error (0 when the failure was not LMDB's).
static int
s_prune_txn (ljournal_t *self, uint64_t now_ns, size_t max_delete, char *err, size_t errlen,
             int *mdb_rc)
{
    MDB_txn *txn;
    *mdb_rc = 0;
    if (s_write_begin (self, &txn, err, errlen))
        return -1;
    MDB_cursor *cursor = NULL;
    MDB_val key, val;
    size_t removed = 0;
    size_t events_removed = 0;
    int rc;

    //  1. Idempotency keys past the window, oldest first (window 0: all).
    //  They leave the index at once: should the commit fail, the log keeps
    //  entries no lookup would accept anyway, and the next prune drops them.
    if ((rc = mdb_cursor_open (txn, self->dedup, &cursor)))
        goto failed;
    while (removed < max_delete
    &&     (rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST)) == 0) {
        if (key.mv_size == 8 && val.mv_size > DEDUP_HEADER) {
            if (!zb_journal_expired (zb_journal_get64 ((const uint8_t *) val.mv_data),
                                     self->window_ns, now_ns))
                break;
            zb_jhash_remove (self->keys,
                zb_jhash_of (self->keys, (const uint8_t *) val.mv_data + DEDUP_HEADER,
                             val.mv_size - DEDUP_HEADER),
                zb_journal_get64 ((const uint8_t *) key.mv_data));
        }
        if ((rc = mdb_cursor_del (cursor, 0)))
            goto failed;
        removed++;
    }
    if (rc && rc != MDB_NOTFOUND)
        goto failed;
    mdb_cursor_close (cursor);
    cursor = NULL;

    //  2. Events past retention, oldest first, a group at a time: by age
    //  when its newest record is past retention, by size while the events
    //  take more pages than retain-mb. A group counts its records (so the
    //  last group may take removed past max_delete by less than a group).
    if (self->retain_ns || self->retain_bytes) {
        if ((rc = mdb_cursor_open (txn, self->events, &cursor)))
            goto failed;
        uint64_t retain_pages = self->retain_bytes / self->psize;
        while (removed < max_delete
        &&     (rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST)) == 0) {
            size_t records;
            uint64_t newest;
            //  A value we cannot read counts as one record too old
            bool readable = s_group_scan (self, &key, &val, &records, &newest) == 0;
            if (!readable)
                records = 1;
            bool too_old = self->retain_ns
                && (!readable || zb_journal_expired (newest, self->retain_ns, now_ns));
            bool too_big = self->retain_bytes && s_pages (txn, self->events) > retain_pages;
            if (!too_old && !too_big)
                break;
            if ((rc = mdb_cursor_del (cursor, 0)))
                goto failed;
            removed += records;
            events_removed += records;
        }
        if (rc && rc != MDB_NOTFOUND)
            goto failed;
        mdb_cursor_close (cursor);
        cursor = NULL;
    }
    if (removed == 0) {
        mdb_txn_abort (txn);    //  nothing to commit, nothing to flush
        return 0;
    }
    uint64_t oldest = 0;
    if (events_removed) {
        //  Remember the head: retention may just have emptied the journal
        uint8_t head [8];
        zb_journal_put64 (head, self->head);
        MDB_val name = s_val ("head", 4);
        val = s_val (head, 8);
        if ((rc = mdb_put (txn, self->meta, &name, &val, 0))
        ||  (rc = mdb_cursor_open (txn, self->events, &cursor)))
            goto failed;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        if (rc == 0 && key.mv_size == 8)
            oldest = zb_journal_get64 ((const uint8_t *) key.mv_data);
        else
        if (rc && rc != MDB_NOTFOUND)
            goto failed;
        mdb_cursor_close (cursor);
        cursor = NULL;
    }
    if ((rc = mdb_txn_commit (txn))) {
        *mdb_rc = rc;
        s_error (err, errlen, "journal prune", rc);
        return -1;
    }
    if (events_removed)
        self->oldest = oldest;
    return (int) removed;

failed:
    if (cursor)
        mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    *mdb_rc = rc;
    s_error (err, errlen, "journal prune", rc);
    return -1;
}

//  Copy-on-write: even a delete needs fresh pages for the path it changes,
//  and a map filled to its last page has none. For pruning, lend the map a
//  little room, then set it back (LMDB keeps it at least as large as the
//  pages in use, so at worst the map grows by the few pages a prune took).
static bool
s_lend_room (ljournal_t *self)
{
    size_t room = self->mapsize / 64;
    if (room < ZB_JOURNAL_MIB)
        room = ZB_JOURNAL_MIB;
    return self->env && mdb_env_set_mapsize (self->env, self->mapsize + room) == 0;
}

static void
s_return_room (ljournal_t *self)
{
    if (self->env)
        mdb_env_set_mapsize (self->env, self->mapsize);
}

//  A tiny write transaction (meta "pruned" = now). LMDB hands out the pages
//  a transaction freed only from the next-but-one transaction on (the last
//  committed state stays intact until another commit supersedes it): after
//  this one, the next append can use every page the prune freed, which is
//  what a full journal needs.
static int
s_touch_txn (ljournal_t *self, uint64_t now_ns, char *err, size_t errlen, int *mdb_rc)
{
    MDB_txn *txn;
    *mdb_rc = 0;
    if (s_write_begin (self, &txn, err, errlen))
        return -1;
    uint8_t now [8];
    zb_journal_put64 (now, now_ns);
    MDB_val name = s_val ("pruned", 6), val = s_val (now, 8);
    int rc = mdb_put (txn, self->meta, &name, &val, 0);
    if (rc)
        mdb_txn_abort (txn);
    else
        rc = mdb_txn_commit (txn);
    if (rc) {
        *mdb_rc = rc;
        s_error (err, errlen, "journal prune", rc);
        return -1;
    }
    return 0;
}

static int
s_prune (void *be, uint64_t now_ns, size_t max_delete, char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    int mdb_rc;
    int removed = s_prune_txn (self, now_ns, max_delete, err, errlen, &mdb_rc);
    if (removed == -1 && mdb_rc == MDB_MAP_FULL && s_lend_room (self)) {
        removed = s_prune_txn (self, now_ns, max_delete, err, errlen, &mdb_rc);
        s_return_room (self);
    }
    if (removed > 0
    &&  s_touch_txn (self, now_ns, err, errlen, &mdb_rc) == -1
    &&  mdb_rc == MDB_MAP_FULL && s_lend_room (self)) {
        //  Not fatal either way: the records are gone, the pages come free
        //  with the next commits
        s_touch_txn (self, now_ns, err, errlen, &mdb_rc);
        s_return_room (self);
    }
    return removed;
}

static int
s_info (void *be, zb_journal_info_t *info, char *err, size_t errlen)
{
    ljournal_t *self = (ljournal_t *) be;
    if (s_read_begin (self, err, errlen))
        return -1;
    MDB_stat stat;
    int rc = mdb_stat (self->rtxn, self->events, &stat);
    if (rc == 0) {
        //  Seqs are contiguous from the oldest to the head (ms_entries
        //  would count groups)
        info->events = self->oldest? self->head - self->oldest + 1: 0;
        uint64_t pages = 2          //  the two meta pages
                       + s_pages (self->rtxn, 0)        //  LMDB's free list
                       + s_pages (self->rtxn, self->main)
                       + s_pages (self->rtxn, self->events)
                       + s_pages (self->rtxn, self->topics)
                       + s_pages (self->rtxn, self->dedup)
                       + s_pages (self->rtxn, self->meta);
        info->bytes = pages * self->psize;
    }
    mdb_txn_reset (self->rtxn);
    if (rc) {
        s_error (err, errlen, "journal info", rc);
        return -1;
    }
    return 0;
}

static uint64_t
s_head (void *be)
{
    return ((ljournal_t *) be)->head;
}

static uint64_t
s_oldest (void *be)
{
    return ((ljournal_t *) be)->oldest;
}

const zb_journal_ops_t zb_journal_lmdb_ops = {
    .name = "lmdb",
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
