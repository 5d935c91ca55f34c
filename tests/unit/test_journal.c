/*  test_journal.c - the broker's journal (broker/journal*.c), both backends:
    append and sequence checks, reads (ranges, early stop, max_scan, topic
    filtering in the visitor), seq_at, idempotency keys and their window,
    pruning by age, size and window, recovery on reopen (LMDB), a full map,
    a failed commit, the directory lock, and the memory ring. Tests named
    test_both_* run once per backend. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lmdb.h>

#include "../../broker/journal.h"
#include "../../broker/journal_impl.h"      //  the key index both backends use

#define NS_PER_S    1000000000ULL
#define T0          (1700000000ULL * NS_PER_S)      //  an arrival time (2023)

//  --------------------------------------------------------------------------
//  Fixture: a journal in a fresh directory (or in memory), and a producer of
//  records that numbers them like the broker does.

#define MAX_TOPICS 4

typedef struct {
    bool memory;
    char base [64];                 //  mkdtemp directory
    char dir [128];                 //  journal directory (base/journal/data)
    zb_journal_config_t config;
    zb_journal_t *journal;
    uint64_t seq;                   //  last seq appended
    const char *topics [MAX_TOPICS];
    uint64_t topic_seq [MAX_TOPICS];
    size_t event_size;              //  bytes per event
    char err [256];
} fixture_t;

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_setup (void **state, bool memory)
{
    fixture_t *fx = (fixture_t *) calloc (1, sizeof (fixture_t));
    assert_non_null (fx);
    fx->memory = memory;
    strcpy (fx->base, "/tmp/zb-journal-test-XXXXXX");
    assert_non_null (mkdtemp (fx->base));
    snprintf (fx->dir, sizeof (fx->dir), "%s/journal/data", fx->base);
    fx->config.dir = memory? NULL: fx->dir;
    fx->config.sync = ZB_SYNC_OS;
    fx->config.retain_hours = 0;
    fx->config.retain_mb = 0;
    fx->config.max_mb = 64;
    fx->config.memory_events = 1000;
    fx->config.dedup_window_s = 300;
    fx->topics [0] = "sales-events";
    fx->topics [1] = "inventory-events";
    fx->topics [2] = "rare-events";
    fx->event_size = 64;
    *state = fx;
    return 0;
}

static int s_setup_lmdb (void **state) { return s_setup (state, false); }
static int s_setup_memory (void **state) { return s_setup (state, true); }

static int
s_teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zb_journal_destroy (&fx->journal);
    nftw (fx->base, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (fx);
    return 0;
}

static void
s_open (fixture_t *fx)
{
    fx->journal = zb_journal_open (&fx->config, fx->err, sizeof (fx->err));
    if (!fx->journal)
        fail_msg ("open: %s", fx->err);
    fx->seq = zb_journal_head (fx->journal);
}

static void
s_reopen (fixture_t *fx)
{
    zb_journal_destroy (&fx->journal);
    s_open (fx);
}

//  Fill event bytes that say which record they belong to
static void
s_event_bytes (char *buf, size_t size, uint64_t seq)
{
    int n = snprintf (buf, size, "event-%llu:", (unsigned long long) seq);
    for (size_t i = (size_t) n; i < size; i++)
        buf [i] = (char) ('a' + (seq + i) % 26);
}

typedef struct {
    zb_record_t *records;
    char (*ids) [37];
    char (*keys) [48];
    char *events;
} batch_t;

static void
s_batch_free (batch_t *b)
{
    free (b->records);
    free (b->ids);
    free (b->keys);
    free (b->events);
}

//  count records from seq + 1, topic i % ntopics, arrival arrival0 + i * step,
//  idempotency keys "<key_prefix><seq>" when key_prefix is not NULL.
static batch_t
s_batch (fixture_t *fx, size_t count, size_t ntopics, uint64_t arrival0, uint64_t step,
         const char *key_prefix)
{
    batch_t b;
    b.records = (zb_record_t *) calloc (count, sizeof (zb_record_t));
    b.ids = calloc (count, sizeof (*b.ids));
    b.keys = calloc (count, sizeof (*b.keys));
    b.events = (char *) malloc (count * fx->event_size + 1);
    assert_true (b.records && b.ids && b.keys && b.events);
    uint64_t topic_seq [MAX_TOPICS];
    memcpy (topic_seq, fx->topic_seq, sizeof (topic_seq));
    for (size_t i = 0; i < count; i++) {
        uint64_t seq = fx->seq + 1 + i;
        size_t t = i % ntopics;
        zb_record_t *r = &b.records [i];
        r->seq = seq;
        r->topic_seq = ++topic_seq [t];
        r->arrival_ns = arrival0 + i * step;
        r->topic.ptr = fx->topics [t];
        r->topic.len = strlen (fx->topics [t]);
        snprintf (b.ids [i], 37, "00000000-0000-4000-8000-%012llu", (unsigned long long) seq);
        r->id.ptr = b.ids [i];
        r->id.len = 36;
        s_event_bytes (b.events + i * fx->event_size, fx->event_size, seq);
        r->event.ptr = b.events + i * fx->event_size;
        r->event.len = fx->event_size;
        if (key_prefix) {
            snprintf (b.keys [i], 48, "%s%llu", key_prefix, (unsigned long long) seq);
            r->idem_key.ptr = b.keys [i];
            r->idem_key.len = strlen (b.keys [i]);
        }
    }
    return b;
}

//  After a successful append: the producer's counters move on
static void
s_batch_done (fixture_t *fx, batch_t *b, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t t = 0; t < MAX_TOPICS; t++)
            if (fx->topics [t] && b->records [i].topic.ptr == fx->topics [t])
                fx->topic_seq [t] = b->records [i].topic_seq;
    }
    fx->seq += count;
}

//  Append count records; returns what zb_journal_append returned
static int
s_append (fixture_t *fx, size_t count, size_t ntopics, uint64_t arrival0, uint64_t step,
          const char *key_prefix)
{
    batch_t b = s_batch (fx, count, ntopics, arrival0, step, key_prefix);
    int rc = zb_journal_append (fx->journal, b.records, count, fx->err, sizeof (fx->err));
    if (rc == 0)
        s_batch_done (fx, &b, count);
    s_batch_free (&b);
    return rc;
}

static void
s_append_ok (fixture_t *fx, size_t count, size_t ntopics, uint64_t arrival0, uint64_t step,
             const char *key_prefix)
{
    if (s_append (fx, count, ntopics, arrival0, step, key_prefix))
        fail_msg ("append: %s", fx->err);
}

//  A visitor that checks and collects what it sees
typedef struct {
    fixture_t *fx;
    const char *topic;              //  only this topic counts (NULL: all)
    size_t stop_after;              //  return 1 after this many counted (0: never)
    size_t visited;
    size_t counted;
    uint64_t seqs [4096];
} visit_t;

static int
s_visit (void *arg, const zb_record_t *r)
{
    visit_t *v = (visit_t *) arg;
    v->visited++;
    //  Every record is intact: the bytes name its seq and id
    char expect [4096];
    assert_true (r->event.len <= sizeof (expect));
    s_event_bytes (expect, r->event.len, r->seq);
    assert_memory_equal (r->event.ptr, expect, r->event.len);
    assert_int_equal (r->id.len, 36);
    char id [37];
    snprintf (id, sizeof (id), "00000000-0000-4000-8000-%012llu", (unsigned long long) r->seq);
    assert_memory_equal (r->id.ptr, id, 36);
    assert_true (r->arrival_ns > 0);
    assert_true (r->topic_seq > 0);
    assert_null (r->idem_key.ptr);
    if (v->topic && (r->topic.len != strlen (v->topic) || memcmp (r->topic.ptr, v->topic, r->topic.len)))
        return 0;
    assert_true (v->counted < 4096);
    v->seqs [v->counted++] = r->seq;
    return v->stop_after && v->counted == v->stop_after;
}

static void
s_read_ok (fixture_t *fx, uint64_t from, uint64_t to, size_t max_scan, visit_t *v, uint64_t *next)
{
    if (zb_journal_read (fx->journal, from, to, max_scan, s_visit, v, next, fx->err, sizeof (fx->err)))
        fail_msg ("read: %s", fx->err);
}

//  Read everything and check it is seq oldest..head without holes
static void
s_check_all (fixture_t *fx)
{
    uint64_t oldest = zb_journal_oldest (fx->journal);
    uint64_t head = zb_journal_head (fx->journal);
    uint64_t expect = oldest;
    uint64_t from = 1, next = 0;
    while (from <= head) {
        visit_t v = { .fx = fx };
        s_read_ok (fx, from, head, 1000, &v, &next);
        for (size_t i = 0; i < v.counted; i++)
            assert_int_equal (v.seqs [i], expect++);
        assert_true (next > from);
        from = next;
    }
    assert_int_equal (expect, oldest? head + 1: oldest);
}

typedef struct {
    size_t count;
    char names [8][32];
    uint64_t seqs [8];
} topics_t;

static void
s_topic (void *arg, zb_str_t topic, uint64_t topic_seq)
{
    topics_t *t = (topics_t *) arg;
    assert_true (t->count < 8 && topic.len < 32);
    memcpy (t->names [t->count], topic.ptr, topic.len);
    t->names [t->count][topic.len] = 0;
    t->seqs [t->count++] = topic_seq;
}

static uint64_t
s_topic_head (fixture_t *fx, const char *name)
{
    topics_t t = { 0 };
    zb_journal_topics (fx->journal, s_topic, &t);
    for (size_t i = 0; i < t.count; i++)
        if (strcmp (t.names [i], name) == 0)
            return t.seqs [i];
    return 0;
}

static zb_str_t
s_str (const char *s)
{
    zb_str_t str = { s, strlen (s) };
    return str;
}

//  --------------------------------------------------------------------------
//  Groups (journal_lmdb.c, format 2): the LMDB backend stores an append's
//  consecutive records in groups of up to group_max bytes, a record alone
//  larger than that in a group of one. These helpers know that layout; the
//  memory backend stores records one by one, so for it a "group" is 1.

#define RECORD_HEADER   (8 + 8 + 2 + 4 + 36)    //  per record in a group
#define GROUP_HEADER    2                       //  record count

//  The largest group stored inline with this page size (see s_env_open)
static size_t
s_group_max (size_t psize)
{
    return (((psize - 16) / 2) & ~(size_t) 1) - 2 - 8 - 8;
}

//  LMDB's page size in a new environment: the OS page size
static size_t
s_psize (void)
{
    return (size_t) sysconf (_SC_PAGESIZE);
}

//  Records per group when every record has this many topic + event bytes
//  (1 on the memory backend)
static size_t
s_per_group (fixture_t *fx, size_t topic_and_event)
{
    if (fx->memory)
        return 1;
    size_t per = (s_group_max (s_psize ()) - GROUP_HEADER) / (RECORD_HEADER + topic_and_event);
    return per? per: 1;
}

//  Like s_append_ok, with event sizes taken in turn from sizes []
static void
s_append_sizes (fixture_t *fx, size_t count, size_t ntopics, uint64_t arrival0, uint64_t step,
                const size_t *sizes, size_t nsizes)
{
    size_t saved = fx->event_size;
    fx->event_size = 1;
    for (size_t i = 0; i < nsizes; i++)
        if (sizes [i] > fx->event_size)
            fx->event_size = sizes [i];
    batch_t b = s_batch (fx, count, ntopics, arrival0, step, NULL);
    fx->event_size = saved;
    for (size_t i = 0; i < count; i++) {
        b.records [i].event.len = sizes [i % nsizes];
        s_event_bytes ((char *) b.records [i].event.ptr, b.records [i].event.len, b.records [i].seq);
    }
    if (zb_journal_append (fx->journal, b.records, count, fx->err, sizeof (fx->err)))
        fail_msg ("append: %s", fx->err);
    s_batch_done (fx, &b, count);
    s_batch_free (&b);
}

//  Read [from, to] with max_scan and check every record visited and *next,
//  knowing that the journal holds every seq from its oldest to its head
static void
s_check_read (fixture_t *fx, uint64_t from, uint64_t to, size_t max_scan)
{
    uint64_t oldest = zb_journal_oldest (fx->journal);
    uint64_t head = zb_journal_head (fx->journal);
    visit_t v = { .fx = fx };
    uint64_t next;
    s_read_ok (fx, from, to, max_scan, &v, &next);
    uint64_t first = from < oldest? oldest: from;
    uint64_t last = to < head? to: head;
    uint64_t expect = oldest && last >= first? last - first + 1: 0;
    bool cut = max_scan && expect > max_scan;
    if (cut)
        expect = max_scan;
    if (v.counted != expect || next != (cut? first + max_scan: to + 1))
        fail_msg ("read [%llu, %llu] max_scan %zu: %zu records, next %llu; expected %llu, next %llu",
                  (unsigned long long) from, (unsigned long long) to, max_scan, v.counted,
                  (unsigned long long) next, (unsigned long long) expect,
                  (unsigned long long) (cut? first + max_scan: to + 1));
    for (size_t i = 0; i < v.counted; i++)
        assert_int_equal (v.seqs [i], first + i);
}

//  Raw LMDB on a journal's directory (the journal closed): what is stored
typedef struct {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi events, topics, dedup, meta;
    size_t psize;
} raw_t;

static void
s_raw_open (fixture_t *fx, raw_t *raw)
{
    char path [160];
    snprintf (path, sizeof (path), "%s/journal", fx->base);
    mkdir (path, 0750);
    mkdir (fx->dir, 0750);
    assert_int_equal (mdb_env_create (&raw->env), 0);
    assert_int_equal (mdb_env_set_maxdbs (raw->env, 8), 0);
    assert_int_equal (mdb_env_set_mapsize (raw->env, (size_t) fx->config.max_mb << 20), 0);
    assert_int_equal (mdb_env_open (raw->env, fx->dir, 0, 0640), 0);
    MDB_stat stat;
    assert_int_equal (mdb_env_stat (raw->env, &stat), 0);
    raw->psize = stat.ms_psize;
    assert_int_equal (mdb_txn_begin (raw->env, NULL, 0, &raw->txn), 0);
    assert_int_equal (mdb_dbi_open (raw->txn, "events", MDB_CREATE, &raw->events), 0);
    assert_int_equal (mdb_dbi_open (raw->txn, "topics", MDB_CREATE, &raw->topics), 0);
    assert_int_equal (mdb_dbi_open (raw->txn, "dedup", MDB_CREATE, &raw->dedup), 0);
    assert_int_equal (mdb_dbi_open (raw->txn, "meta", MDB_CREATE, &raw->meta), 0);
}

static void
s_raw_close (raw_t *raw)
{
    assert_int_equal (mdb_txn_commit (raw->txn), 0);
    mdb_env_close (raw->env);
}

static void
s_raw_put (raw_t *raw, MDB_dbi dbi, const void *key, size_t key_len, const void *data, size_t len)
{
    MDB_val k = { key_len, (void *) key }, v = { len, (void *) data };
    assert_int_equal (mdb_put (raw->txn, dbi, &k, &v, 0), 0);
}

static void
s_raw_put_seq (raw_t *raw, MDB_dbi dbi, uint64_t seq, const void *data, size_t len)
{
    uint8_t key [8];
    zb_journal_put64 (key, seq);
    s_raw_put (raw, dbi, key, 8, data, len);
}

//  meta [name] as a u64 (0 when absent)
static uint64_t
s_raw_meta (raw_t *raw, const char *name)
{
    MDB_val k = { strlen (name), (void *) name }, v;
    int rc = mdb_get (raw->txn, raw->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    assert_int_equal (rc, 0);
    assert_int_equal (v.mv_size, 8);
    return zb_journal_get64 ((const uint8_t *) v.mv_data);
}

typedef struct {
    uint64_t key;               //  first seq
    size_t count;               //  records
    size_t size;                //  value bytes
} group_info_t;

//  Every group in events, in order. Returns how many.
static size_t
s_raw_groups (raw_t *raw, group_info_t *groups, size_t max)
{
    MDB_cursor *cursor;
    assert_int_equal (mdb_cursor_open (raw->txn, raw->events, &cursor), 0);
    MDB_val key, val;
    size_t n = 0;
    int rc;
    for (rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT)) {
        assert_true (n < max);
        assert_int_equal (key.mv_size, 8);
        assert_true (val.mv_size >= GROUP_HEADER);
        groups [n].key = zb_journal_get64 ((const uint8_t *) key.mv_data);
        groups [n].count = zb_journal_get16 ((const uint8_t *) val.mv_data);
        groups [n].size = val.mv_size;
        n++;
    }
    assert_int_equal (rc, MDB_NOTFOUND);
    mdb_cursor_close (cursor);
    return n;
}

//  The groups s_append (journal_lmdb.c) makes of one append: records of
//  these sizes (topic + event bytes each) from seq first. Adds them at
//  groups [*n] on.
static void
s_expect_groups (uint64_t first, const size_t *sizes, size_t count, size_t group_max,
                 group_info_t *groups, size_t *n)
{
    for (size_t i = 0; i < count; ) {
        size_t size = GROUP_HEADER + RECORD_HEADER + sizes [i];
        size_t c = 1;
        while (i + c < count && size + RECORD_HEADER + sizes [i + c] <= group_max) {
            size += RECORD_HEADER + sizes [i + c];
            c++;
        }
        groups [*n].key = first + i;
        groups [*n].count = c;
        groups [*n].size = size;
        (*n)++;
        i += c;
    }
}

static void
s_groups_equal (const group_info_t *got, size_t ngot, const group_info_t *expect, size_t nexpect)
{
    for (size_t i = 0; i < ngot && i < nexpect; i++)
        if (got [i].key != expect [i].key || got [i].count != expect [i].count
        ||  got [i].size != expect [i].size)
            fail_msg ("group %zu: key %llu, %zu records, %zu bytes; expected key %llu, %zu, %zu",
                      i, (unsigned long long) got [i].key, got [i].count, got [i].size,
                      (unsigned long long) expect [i].key, expect [i].count, expect [i].size);
    assert_int_equal (ngot, nexpect);
}

//  --------------------------------------------------------------------------
//  Both backends

static void
test_both_append_and_read_back (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    assert_int_equal (zb_journal_head (fx->journal), 0);
    assert_int_equal (zb_journal_oldest (fx->journal), 0);
    //  An empty journal reads as a finished range
    visit_t v = { .fx = fx };
    uint64_t next = 0;
    s_read_ok (fx, 1, 10, 100, &v, &next);
    assert_int_equal (v.visited, 0);
    assert_int_equal (next, 11);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0), 1);

    s_append_ok (fx, 100, 2, T0, 1000, NULL);
    s_append_ok (fx, 1, 1, T0 + 200000, 0, NULL);
    assert_int_equal (zb_journal_head (fx->journal), 101);
    assert_int_equal (zb_journal_oldest (fx->journal), 1);
    s_check_all (fx);
    assert_int_equal (s_topic_head (fx, "sales-events"), 51);
    assert_int_equal (s_topic_head (fx, "inventory-events"), 50);
    assert_int_equal (s_topic_head (fx, "rare-events"), 0);

    zb_journal_info_t info;
    zb_journal_info (fx->journal, &info);
    assert_string_equal (info.backend, fx->memory? "memory": "lmdb");
    assert_string_equal (info.path, fx->memory? "": fx->dir);
    assert_string_equal (info.sync, fx->memory? "none": "os");
    assert_int_equal (info.head, 101);
    assert_int_equal (info.oldest, 1);
    assert_int_equal (info.events, 101);
    assert_true (info.bytes >= 101 * fx->event_size);

    //  Nothing to append is fine
    assert_int_equal (zb_journal_append (fx->journal, NULL, 0, fx->err, sizeof (fx->err)), 0);
    assert_int_equal (zb_journal_head (fx->journal), 101);
}

static void
test_both_sequence_checked (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    s_append_ok (fx, 5, 2, T0, 1, NULL);
    batch_t b = s_batch (fx, 3, 2, T0 + 10, 1, NULL);
    //  A gap
    b.records [0].seq = 7;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    assert_string_equal (fx->err, "record 0 has seq 7, expected 6 (head 5)");
    //  A repeat
    b.records [0].seq = 5;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    //  Out of order inside the batch: nothing of it is stored
    b.records [0].seq = 6;
    b.records [2].seq = 9;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    assert_string_equal (fx->err, "record 2 has seq 9, expected 8 (head 5)");
    b.records [2].seq = 8;
    //  Malformed records
    b.records [1].id.len = 35;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    assert_non_null (strstr (fx->err, "id must be 36 bytes"));
    b.records [1].id.len = 36;
    b.records [1].topic.len = 0;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    assert_non_null (strstr (fx->err, "topic"));
    b.records [1].topic.len = strlen (fx->topics [1]);
    b.records [1].idem_key.ptr = "";
    b.records [1].idem_key.len = 0;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), -1);
    assert_non_null (strstr (fx->err, "idempotency key"));
    b.records [1].idem_key.ptr = NULL;
    assert_int_equal (zb_journal_head (fx->journal), 5);
    s_check_all (fx);
    //  No error buffer: the message is kept for zb_journal_last_error
    b.records [0].seq = 42;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, NULL, 0), -1);
    assert_non_null (strstr (zb_journal_last_error (fx->journal), "expected 6"));
    b.records [0].seq = 6;
    //  The right one goes in
    assert_int_equal (zb_journal_append (fx->journal, b.records, 3, fx->err, sizeof (fx->err)), 0);
    s_batch_done (fx, &b, 3);
    s_batch_free (&b);
    assert_int_equal (zb_journal_head (fx->journal), 8);
    s_check_all (fx);
}

static void
test_both_read_ranges (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    //  seq 1..300 round-robin over three topics: rare-events is 3, 6, 9, ...
    s_append_ok (fx, 300, 3, T0, 1000, NULL);
    uint64_t next;

    //  A middle range, every topic
    visit_t v = { .fx = fx };
    s_read_ok (fx, 10, 19, 100, &v, &next);
    assert_int_equal (v.counted, 10);
    assert_int_equal (v.seqs [0], 10);
    assert_int_equal (v.seqs [9], 19);
    assert_int_equal (next, 20);

    //  One record
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 300, 300, 100, &v, &next);
    assert_int_equal (v.counted, 1);
    assert_int_equal (v.seqs [0], 300);
    assert_int_equal (next, 301);

    //  Past the head: the range is done at to + 1
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 295, 1000, 100, &v, &next);
    assert_int_equal (v.counted, 6);
    assert_int_equal (next, 1001);
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 400, 1000, 100, &v, &next);
    assert_int_equal (v.visited, 0);
    assert_int_equal (next, 1001);
    //  to = UINT64_MAX is clamped so that next still lies past to
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 299, UINT64_MAX, 100, &v, &next);
    assert_int_equal (v.counted, 2);
    assert_int_equal (next, UINT64_MAX);

    //  from 0 means from the start; from > to visits nothing
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 0, 3, 100, &v, &next);
    assert_int_equal (v.counted, 3);
    assert_int_equal (v.seqs [0], 1);
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 10, 9, 100, &v, &next);
    assert_int_equal (v.visited, 0);
    assert_int_equal (next, 10);

    //  The visitor filters a topic and stops after 5 of it
    memset (&v, 0, sizeof (v));
    v.fx = fx;
    v.topic = "rare-events";
    v.stop_after = 5;
    s_read_ok (fx, 1, 300, 1000, &v, &next);
    assert_int_equal (v.counted, 5);
    assert_int_equal (v.seqs [0], 3);
    assert_int_equal (v.seqs [4], 15);
    assert_int_equal (v.visited, 15);
    assert_int_equal (next, 16);

    //  max_scan bounds the records looked at, matching or not
    memset (&v, 0, sizeof (v));
    v.fx = fx;
    v.topic = "rare-events";
    s_read_ok (fx, 1, 300, 10, &v, &next);
    assert_int_equal (v.visited, 10);
    assert_int_equal (v.counted, 3);            //  3, 6, 9
    assert_int_equal (next, 11);
    //  ... and the caller continues where it stopped, without loss or repeat
    uint64_t from = next;
    while (from <= 300) {
        s_read_ok (fx, from, 300, 10, &v, &next);
        assert_true (next > from);
        from = next;
    }
    assert_int_equal (next, 301);
    assert_int_equal (v.visited, 300);
    assert_int_equal (v.counted, 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal (v.seqs [i], 3 * (i + 1));

    //  max_scan 0 means no limit
    memset (&v, 0, sizeof (v));
    v.fx = fx;
    s_read_ok (fx, 1, 300, 0, &v, &next);
    assert_int_equal (v.visited, 300);
    assert_int_equal (next, 301);
}

static void
test_both_seq_at (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    //  seq i + 1 arrives at T0 + i * 1000
    s_append_ok (fx, 100, 2, T0, 1000, NULL);
    assert_int_equal (zb_journal_seq_at (fx->journal, 0), 1);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0), 1);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 1), 2);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 2500), 4);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 3000), 4);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 99000), 100);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 99001), 101);
    assert_int_equal (zb_journal_seq_at (fx->journal, UINT64_MAX), 101);
    //  Equal arrivals: the first of them
    s_append_ok (fx, 50, 2, T0 + 200000, 0, NULL);      //  seq 101..150
    s_append_ok (fx, 10, 2, T0 + 300000, 1, NULL);      //  seq 151..160
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 150000), 101);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 200000), 101);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 200001), 151);
    //  A clock stepped back: whatever it answers has arrived at or after
    s_append_ok (fx, 20, 2, T0 + 100, 1, NULL);         //  seq 161..180
    uint64_t seq = zb_journal_seq_at (fx->journal, T0 + 250000);
    assert_true (seq >= 151 && seq <= 181);
    if (seq <= 180) {
        visit_t v = { .fx = fx };
        uint64_t next;
        s_read_ok (fx, seq, seq, 1, &v, &next);
        assert_int_equal (v.counted, 1);
    }
}

static void
test_both_dedup (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.dedup_window_s = 10;
    s_open (fx);
    s_append_ok (fx, 20, 2, T0, NS_PER_S / 10, "run1-");      //  keys run1-1..run1-20
    zb_record_t found;
    memset (&found, 0, sizeof (found));
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-7"), T0 + NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 7);
    assert_int_equal (found.arrival_ns, T0 + 6 * (NS_PER_S / 10));
    assert_int_equal (found.id.len, 36);
    assert_memory_equal (found.id.ptr, "00000000-0000-4000-8000-000000000007", 36);
    assert_int_equal (found.idem_key.len, 6);
    assert_memory_equal (found.idem_key.ptr, "run1-7", 6);
    //  Unknown keys, keys that cannot exist
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-21"), T0 + NS_PER_S, &found), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-"), T0 + NS_PER_S, &found), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str (""), T0 + NS_PER_S, &found), 0);
    //  The window is measured from the acceptance: seq 7 arrived at T0 + 0.6 s
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-7"), T0 + 10 * NS_PER_S, &found), 1);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-7"), T0 + 10 * NS_PER_S + 6 * (NS_PER_S / 10) - 1, &found), 1);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-7"), T0 + 10 * NS_PER_S + 6 * (NS_PER_S / 10), &found), 0);
    //  A clock behind the acceptance still finds it
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-7"), T0 - NS_PER_S, NULL), 1);

    //  Within the window the first acceptance stands
    batch_t b = s_batch (fx, 1, 1, T0 + 5 * NS_PER_S, 0, NULL);
    b.records [0].idem_key = s_str ("run1-3");
    assert_int_equal (zb_journal_append (fx->journal, b.records, 1, fx->err, sizeof (fx->err)), 0);
    s_batch_done (fx, &b, 1);
    s_batch_free (&b);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-3"), T0 + 6 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 3);
    //  After it, a new acceptance replaces the expired one
    b = s_batch (fx, 1, 1, T0 + 15 * NS_PER_S, 0, NULL);       //  seq 22
    b.records [0].idem_key = s_str ("run1-4");
    assert_int_equal (zb_journal_append (fx->journal, b.records, 1, fx->err, sizeof (fx->err)), 0);
    s_batch_done (fx, &b, 1);
    s_batch_free (&b);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-4"), T0 + 16 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 22);
    assert_int_equal (found.arrival_ns, T0 + 15 * NS_PER_S);

    //  Pruning at T0 + 11.05 s removes the keys accepted up to T0 + 1.05 s
    //  (run1-1..run1-11); the replaced entry of run1-4 goes without taking
    //  the new one with it.
    int removed = zb_journal_prune (fx->journal, T0 + 11 * NS_PER_S + NS_PER_S / 20, 1000);
    assert_int_equal (removed, 11);
    //  Asked as of T0 + 1 s they would be in the window, but they are gone
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-2"), T0 + NS_PER_S, &found), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-11"), T0 + NS_PER_S, &found), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-12"), T0 + NS_PER_S, &found), 1);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-4"), T0 + 16 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 22);
    //  Events are not affected by the dedup window
    assert_int_equal (zb_journal_oldest (fx->journal), 1);
    //  max_delete bounds one call
    assert_int_equal (zb_journal_prune (fx->journal, T0 + 100 * NS_PER_S, 3), 3);
    assert_int_equal (zb_journal_prune (fx->journal, T0 + 100 * NS_PER_S, 1000), 7);
    assert_int_equal (zb_journal_prune (fx->journal, T0 + 100 * NS_PER_S, 1000), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("run1-4"), T0 + 16 * NS_PER_S, &found), 0);
    s_check_all (fx);
}

//  A key twice in one batch (the broker's lookup cannot see the first one
//  yet): both records are stored, the key names the first.
static void
test_both_dedup_same_key_in_batch (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    s_append_ok (fx, 3, 1, T0, 1, "early-");
    batch_t b = s_batch (fx, 4, 2, T0 + 10, 1, NULL);
    b.records [1].idem_key = s_str ("twice");
    b.records [3].idem_key = s_str ("twice");
    b.records [2].idem_key = s_str ("early-2");        //  and one from an earlier batch
    assert_int_equal (zb_journal_append (fx->journal, b.records, 4, fx->err, sizeof (fx->err)), 0);
    s_batch_done (fx, &b, 4);
    s_batch_free (&b);
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("twice"), T0 + 100, &found), 1);
    assert_int_equal (found.seq, 5);
    assert_memory_equal (found.id.ptr, "00000000-0000-4000-8000-000000000005", 36);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("early-2"), T0 + 100, &found), 1);
    assert_int_equal (found.seq, 2);
    if (!fx->memory) {
        s_reopen (fx);
        assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("twice"), T0 + 100, &found), 1);
        assert_int_equal (found.seq, 5);
    }
    s_check_all (fx);
}

//  Enough keys for several of the memory backend's 1 MiB chunks, with keys
//  the window already holds (dropped at once: the first acceptance stands),
//  then pruned a slice at a time: what is in the window is found, what was
//  pruned is not, and the space comes back.
static void
test_both_dedup_many_keys (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.dedup_window_s = 100;
    s_open (fx);
    const size_t batches = 600, per = 100;          //  60,000 records
    for (size_t i = 0; i < batches; i++) {
        //  arrival: batch i at T0 + i * 0.1 s
        batch_t b = s_batch (fx, per, 2, T0 + i * (NS_PER_S / 10), 0, "many-");
        if (i > 0)      //  one key of the previous batch again
            snprintf (b.keys [7], 48, "many-%llu", (unsigned long long) (fx->seq - 3));
        b.records [7].idem_key = s_str (b.keys [7]);
        if (zb_journal_append (fx->journal, b.records, per, fx->err, sizeof (fx->err)))
            fail_msg ("append %zu: %s", i, fx->err);
        s_batch_done (fx, &b, per);
        s_batch_free (&b);
    }
    zb_journal_info_t full;
    zb_journal_info (fx->journal, &full);
    zb_record_t found;
    uint64_t now = T0 + 60 * NS_PER_S;
    for (uint64_t seq = 1; seq <= batches * per; seq += 37) {
        char key [48];
        snprintf (key, sizeof key, "many-%llu", (unsigned long long) seq);
        bool replaced = seq % per == 8 && seq > per;        //  record 7 of a batch > 0
        int want = replaced ? 0 : 1;
        assert_int_equal (zb_journal_dedup_get (fx->journal, s_str (key), now, &found), want);
        if (want)
            assert_int_equal (found.seq, seq);
    }
    //  Prune batches 0..300 (arrivals up to T0 + 30 s: 100 s, the window, old)
    uint64_t cut = T0 + 130 * NS_PER_S;
    while (zb_journal_prune (fx->journal, cut, 1000) > 0)
        ;
    for (uint64_t seq = 1; seq <= batches * per; seq += 41) {
        char key [48];
        snprintf (key, sizeof key, "many-%llu", (unsigned long long) seq);
        bool replaced = seq % per == 8 && seq > per;
        int want = replaced || seq <= 301 * per ? 0 : 1;     //  batch 300 is 100 s old
        assert_int_equal (zb_journal_dedup_get (fx->journal, s_str (key), cut, &found), want);
    }
    //  Everything pruned: the keys take no room, and new ones go in
    while (zb_journal_prune (fx->journal, T0 + 1000 * NS_PER_S, 1000) > 0)
        ;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("many-59999"), T0 + 1000 * NS_PER_S, &found), 0);
    zb_journal_info_t empty;
    zb_journal_info (fx->journal, &empty);
    if (fx->memory)
        assert_true (empty.bytes < full.bytes / 4);
    s_append_ok (fx, 10, 1, T0 + 1000 * NS_PER_S, 1, "after-");
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("after-60005"), T0 + 1000 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 60005);
}

static void
test_both_dedup_window_zero (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.dedup_window_s = 0;
    s_open (fx);
    s_append_ok (fx, 5, 1, T0, 1, "k-");
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("k-1"), T0, NULL), 0);
    assert_int_equal (zb_journal_prune (fx->journal, T0, 100), 0);
}

static void
test_both_prune_by_age (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.retain_hours = 1;
    s_open (fx);
    //  seq i + 1 arrives at T0 + i seconds, one append each: the LMDB
    //  backend prunes whole groups, and a group never spans appends, so
    //  here records go one by one on both backends (groups of records:
    //  test_both_prune_by_age_groups)
    for (uint64_t i = 0; i < 100; i++) {
        batch_t b = s_batch (fx, 1, 1, T0 + i * NS_PER_S, 0, NULL);
        size_t t = i % 2;       //  topics alternate as in one batch over 2 topics
        b.records [0].topic = s_str (fx->topics [t]);
        b.records [0].topic_seq = fx->topic_seq [t] + 1;
        if (zb_journal_append (fx->journal, b.records, 1, fx->err, sizeof (fx->err)))
            fail_msg ("append: %s", fx->err);
        s_batch_done (fx, &b, 1);
        s_batch_free (&b);
    }
    assert_int_equal (zb_journal_prune (fx->journal, T0 + 3600 * NS_PER_S - 1, 1000), 0);
    assert_int_equal (zb_journal_oldest (fx->journal), 1);
    //  At T0 + 1 h + 10.5 s: seq 1..11 are an hour old
    uint64_t now = T0 + 3610 * NS_PER_S + NS_PER_S / 2;
    assert_int_equal (zb_journal_prune (fx->journal, now, 5), 5);
    assert_int_equal (zb_journal_oldest (fx->journal), 6);
    assert_int_equal (zb_journal_prune (fx->journal, now, 1000), 6);
    assert_int_equal (zb_journal_oldest (fx->journal), 12);
    assert_int_equal (zb_journal_head (fx->journal), 100);
    s_check_all (fx);
    //  A read from before the oldest starts at the oldest
    visit_t v = { .fx = fx };
    uint64_t next;
    s_read_ok (fx, 1, 15, 100, &v, &next);
    assert_int_equal (v.counted, 4);
    assert_int_equal (v.seqs [0], 12);
    zb_journal_info_t info;
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 89);
    assert_int_equal (info.oldest, 12);

    //  Everything expires: the journal is empty but keeps its head
    assert_int_equal (zb_journal_prune (fx->journal, T0 + 10 * 3600 * NS_PER_S, 1000), 89);
    assert_int_equal (zb_journal_oldest (fx->journal), 0);
    assert_int_equal (zb_journal_head (fx->journal), 100);
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 0);
    memset (&v, 0, sizeof (v));
    s_read_ok (fx, 1, 100, 100, &v, &next);
    assert_int_equal (v.visited, 0);
    assert_int_equal (next, 101);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0), 101);
    if (!fx->memory) {
        s_reopen (fx);
        assert_int_equal (zb_journal_head (fx->journal), 100);
        assert_int_equal (zb_journal_oldest (fx->journal), 0);
        assert_int_equal (s_topic_head (fx, "sales-events"), 50);
    }
    //  And goes on from there
    s_append_ok (fx, 3, 2, T0 + 11 * 3600 * NS_PER_S, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 101);
    assert_int_equal (zb_journal_head (fx->journal), 103);
    assert_int_equal (s_topic_head (fx, "sales-events"), 52);
    s_check_all (fx);
}

static void
test_both_prune_by_size (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.retain_mb = 1;
    fx->config.memory_events = 100000;
    fx->event_size = 1000;
    s_open (fx);
    for (int i = 0; i < 30; i++)        //  3000 x ~1 KB: about 3 MiB
        s_append_ok (fx, 100, 2, T0 + (uint64_t) i * NS_PER_S, 1, NULL);
    zb_journal_info_t before;
    zb_journal_info (fx->journal, &before);
    assert_int_equal (before.events, 3000);
    assert_true (before.bytes > 3 * 1000 * 1000);
    int removed = 0, total = 0;
    while ((removed = zb_journal_prune (fx->journal, T0 + 60 * NS_PER_S, 500)) > 0)
        total += removed;
    assert_int_equal (removed, 0);
    zb_journal_info_t after;
    zb_journal_info (fx->journal, &after);
    //  About 1 MiB of ~1 KB events is left, the newest ones
    //  (records per page differ: ~950 fit in 1 MiB in memory, ~770 in LMDB pages)
    assert_true (total > 1800 && total < 2400);
    assert_int_equal (after.events, 3000 - (uint64_t) total);
    assert_int_equal (after.oldest, (uint64_t) total + 1);
    assert_int_equal (after.head, 3000);
    assert_true (after.bytes < 1100 * 1024);
    s_check_all (fx);
}

static void
test_both_topics_iterate (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    topics_t t = { 0 };
    zb_journal_topics (fx->journal, s_topic, &t);
    assert_int_equal (t.count, 0);
    s_append_ok (fx, 7, 3, T0, 1, NULL);
    memset (&t, 0, sizeof (t));
    zb_journal_topics (fx->journal, s_topic, &t);
    assert_int_equal (t.count, 3);
    assert_int_equal (s_topic_head (fx, "sales-events"), 3);
    assert_int_equal (s_topic_head (fx, "inventory-events"), 2);
    assert_int_equal (s_topic_head (fx, "rare-events"), 2);
    //  A refused batch leaves no trace in the heads
    batch_t b = s_batch (fx, 2, 1, T0, 1, NULL);
    b.records [0].topic = s_str ("new-topic");
    b.records [1].seq = 100;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 2, fx->err, sizeof (fx->err)), -1);
    s_batch_free (&b);
    memset (&t, 0, sizeof (t));
    zb_journal_topics (fx->journal, s_topic, &t);
    assert_int_equal (t.count, 3);
    assert_int_equal (s_topic_head (fx, "sales-events"), 3);
}

//  Reads that start and end anywhere in groups (LMDB: partial groups at
//  every append's end too), max_scan and the visitor stopping inside one.
static void
test_both_read_inside_groups (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    //  seq 1..203 in appends of 37, 100, 5, 1 and 60 records
    size_t appends [] = { 37, 100, 5, 1, 60 };
    for (size_t i = 0; i < 5; i++)
        s_append_ok (fx, appends [i], 3, T0 + i * NS_PER_S, 1000, NULL);
    assert_int_equal (zb_journal_head (fx->journal), 203);
    uint64_t per = s_per_group (fx, 12 + fx->event_size);
    assert_true (fx->memory || per > 4);
    if (per < 2)
        per = 2;                //  memory: the edges below still differ
    for (int pass = 0; pass < 2; pass++) {
        //  Every start, ends at and around group edges and past the head
        uint64_t spans [] = { 0, 1, 2, per - 1, per, per + 1, 2 * per + 3, 250 };
        for (uint64_t from = 1; from <= 205; from++)
            for (size_t i = 0; i < sizeof (spans) / sizeof (spans [0]); i++)
                s_check_read (fx, from, from + spans [i], 0);
        //  max_scan stops inside a group, and the caller goes on from *next
        size_t scans [] = { 1, 2, 3, 7, per - 1, per, per + 1, 2 * per + 1 };
        for (uint64_t from = 1; from <= 70; from++)
            for (size_t i = 0; i < sizeof (scans) / sizeof (scans [0]); i++)
                s_check_read (fx, from, 203, scans [i]);
        for (size_t i = 0; i < sizeof (scans) / sizeof (scans [0]); i++) {
            visit_t v = { .fx = fx };
            uint64_t from = 1, next;
            while (from <= 203) {
                size_t before = v.counted;
                s_read_ok (fx, from, 203, scans [i], &v, &next);
                assert_true (v.counted - before <= scans [i]);
                assert_int_equal (next, from + (v.counted - before));
                from = next;
            }
            assert_int_equal (next, 204);
            assert_int_equal (v.counted, 203);
            for (size_t j = 0; j < 203; j++)
                assert_int_equal (v.seqs [j], j + 1);
        }
        //  The visitor stops inside a group: *next is the record after
        uint64_t starts [] = { 1, 2, per, per + 1, 38, 40, 137, 143, 200 };
        for (size_t i = 0; i < sizeof (starts) / sizeof (starts [0]); i++)
            for (size_t stop = 1; stop <= 4; stop++) {
                visit_t v = { .fx = fx, .stop_after = stop };
                uint64_t next;
                s_read_ok (fx, starts [i], 1000, 0, &v, &next);
                size_t expect = starts [i] + stop - 1 <= 203? stop: 203 - starts [i] + 1;
                assert_int_equal (v.counted, expect);
                assert_int_equal (v.seqs [0], starts [i]);
                assert_int_equal (next, expect == stop? starts [i] + stop: 1001);
            }
        if (fx->memory)
            break;
        s_reopen (fx);          //  the same from the file
    }
}

//  seq_at finds records inside groups: every seq, equal arrivals in a group
static void
test_both_seq_at_in_groups (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    //  seq s arrives at T0 + (s - 1) * 1000; appends of 13, 50, 1, 136
    size_t appends [] = { 13, 50, 1, 136 };
    for (size_t i = 0; i < 4; i++)
        s_append_ok (fx, appends [i], 2, T0 + fx->seq * 1000, 1000, NULL);
    for (uint64_t s = 1; s <= 200; s++) {
        uint64_t arrival = T0 + (s - 1) * 1000;
        assert_int_equal (zb_journal_seq_at (fx->journal, arrival), s);
        assert_int_equal (zb_journal_seq_at (fx->journal, arrival - 999), s);
        assert_int_equal (zb_journal_seq_at (fx->journal, arrival - 1), s);
    }
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 199000 + 1), 201);
    //  Equal arrivals across one group and into the next: the first of them
    s_append_ok (fx, 40, 1, T0 + 1000000, 0, NULL);     //  seq 201..240
    s_append_ok (fx, 5, 1, T0 + 2000000, 1, NULL);      //  seq 241..245
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 1000000), 201);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 999999), 201);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 1000001), 241);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 2000002), 243);
    if (!fx->memory) {
        s_reopen (fx);
        assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 1000000), 201);
        assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 77 * 1000), 78);
    }
}

//  Pruning by age when a group holds expired and fresh records: LMDB
//  deletes a group once its newest record expired (retention is "at
//  least"), the memory ring record by record.
static void
test_both_prune_by_age_groups (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.retain_hours = 1;
    s_open (fx);
    //  seq s arrives at T0 + (s - 1) seconds, one topic: groups of `per`
    s_append_ok (fx, 100, 1, T0, NS_PER_S, NULL);
    uint64_t per = s_per_group (fx, strlen (fx->topics [0]) + fx->event_size);
    assert_true (fx->memory || per > 4);
    uint64_t hour = 3600 * NS_PER_S;
    //  At T0 + 1 h + (k - 1) s + 0.5 s, seq 1..k have expired
    uint64_t ks [] = { 5, 14, 15, 18, 44, 45, 50 };  //  per is 15 with 4 KiB pages
    uint64_t oldest = 1;
    for (size_t i = 0; i < sizeof (ks) / sizeof (ks [0]); i++) {
        uint64_t k = ks [i];
        uint64_t now = T0 + hour + (k - 1) * NS_PER_S + NS_PER_S / 2;
        uint64_t expect = k / per * per + 1;      //  whole groups of expired records
        if (expect < oldest)
            expect = oldest;
        int removed = zb_journal_prune (fx->journal, now, 1000);
        assert_int_equal (removed, expect - oldest);
        oldest = expect;
        assert_int_equal (zb_journal_oldest (fx->journal), oldest);
        //  Nothing fresh went, nothing expired is left but in a fresh group
        assert_true (oldest <= k + 1);
        assert_true (oldest + per > k + 1);
        s_check_read (fx, 1, 100, 0);
        zb_journal_info_t info;
        zb_journal_info (fx->journal, &info);
        assert_int_equal (info.events, 100 - oldest + 1);
    }
    //  max_delete smaller than a group: one group goes (progress), not less
    uint64_t now = T0 + hour + 88 * NS_PER_S + NS_PER_S / 2;    //  1..89 expired
    int removed = zb_journal_prune (fx->journal, now, 1);
    assert_int_equal (removed, per);
    oldest += per;
    assert_int_equal (zb_journal_oldest (fx->journal), oldest);
    removed = zb_journal_prune (fx->journal, now, 1000);
    assert_int_equal (oldest + (uint64_t) removed, 89 / per * per + 1);
    oldest += (uint64_t) removed;
    s_check_all (fx);

    //  A clock stepped back inside a group: seq 101..105 arrive at A, A,
    //  A + 2 h, A, A. At A + 1.5 h, 103 is fresh: LMDB keeps the group
    //  (its newest record is fresh), the ring drops 101, 102.
    uint64_t a = T0 + 200 * NS_PER_S;
    batch_t b = s_batch (fx, 5, 1, a, 0, NULL);
    b.records [2].arrival_ns = a + 2 * hour;
    assert_int_equal (zb_journal_append (fx->journal, b.records, 5, fx->err, sizeof (fx->err)), 0);
    s_batch_done (fx, &b, 5);
    s_batch_free (&b);
    zb_journal_prune (fx->journal, a + hour + hour / 2, 1000);
    assert_int_equal (zb_journal_oldest (fx->journal), fx->memory? 103: 101);
    s_check_all (fx);
    //  Everything expires
    zb_journal_prune (fx->journal, a + 4 * hour, 1000);
    assert_int_equal (zb_journal_oldest (fx->journal), 0);
    assert_int_equal (zb_journal_head (fx->journal), 105);
    if (!fx->memory) {
        s_reopen (fx);
        assert_int_equal (zb_journal_head (fx->journal), 105);
        assert_int_equal (zb_journal_oldest (fx->journal), 0);
    }
    s_append_ok (fx, 3, 1, a + 4 * hour, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 106);
    s_check_all (fx);
}

//  Large events among small ones: groups of one (overflow pages) between
//  groups of many, a record that fills a group exactly, one byte more.
static void
test_both_mixed_sizes (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    //  With one topic of 12 bytes, a group of one record of `fill` event
    //  bytes is group_max exactly
    size_t fill = s_group_max (s_psize ()) - GROUP_HEADER - RECORD_HEADER - 12;
    size_t sizes [] = { 64, 3000, 64, 64, 64, fill, 64, fill + 1, 4000, 0, 1, 500, 4000,
                        fill / 2, fill / 2 - RECORD_HEADER - 12, 64, 3000,  //  group_max in two
                        fill / 2 + 1, fill / 2 - RECORD_HEADER - 12 };      //  one byte more
    size_t n = sizeof (sizes) / sizeof (sizes [0]);
    s_append_sizes (fx, n, 1, T0, 1000, sizes, n);
    s_append_sizes (fx, 3 * n, 1, T0 + NS_PER_S, 1000, sizes, n);
    size_t small [] = { 30 };
    s_append_sizes (fx, 50, 1, T0 + 2 * NS_PER_S, 1000, small, 1);
    s_append_sizes (fx, 1, 1, T0 + 3 * NS_PER_S, 1000, &sizes [8], 1);
    uint64_t head = 4 * n + 51;
    assert_int_equal (zb_journal_head (fx->journal), head);
    for (int pass = 0; pass < 2; pass++) {
        s_check_all (fx);
        for (uint64_t from = 1; from <= head; from++) {
            s_check_read (fx, from, from + 2, 0);
            s_check_read (fx, from, head, 3);
        }
        for (uint64_t s = 1; s <= n; s++)
            assert_int_equal (zb_journal_seq_at (fx->journal, T0 + (s - 1) * 1000), s);
        if (fx->memory)
            return;
        s_reopen (fx);
    }
    //  The groups are the ones the rule makes
    zb_journal_destroy (&fx->journal);
    raw_t raw;
    s_raw_open (fx, &raw);
    assert_int_equal (raw.psize, s_psize ());
    size_t group_max = s_group_max (raw.psize);
    group_info_t got [200], expect [200];
    size_t ngot = s_raw_groups (&raw, got, 200), nexpect = 0;
    size_t record_sizes [4 * 16];
    for (size_t i = 0; i < 3 * n; i++)
        record_sizes [i] = 12 + sizes [i % n];
    s_expect_groups (1, record_sizes, n, group_max, expect, &nexpect);
    s_expect_groups (n + 1, record_sizes, 3 * n, group_max, expect, &nexpect);
    for (size_t i = 0; i < 50; i++)
        record_sizes [i] = 12 + 30;
    s_expect_groups (4 * n + 1, record_sizes, 50, group_max, expect, &nexpect);
    record_sizes [0] = 12 + 4000;
    s_expect_groups (4 * n + 51, record_sizes, 1, group_max, expect, &nexpect);
    s_groups_equal (got, ngot, expect, nexpect);
    //  ... with groups of one among groups of many, one exactly group_max
    size_t ones = 0, many = 0, exact = 0;
    for (size_t i = 0; i < ngot; i++) {
        ones += got [i].count == 1 && got [i].size > group_max;
        many += got [i].count >= 3;
        exact += got [i].size == group_max;
    }
    assert_true (ones >= 4 && many >= 4 && exact >= 1);
    //  ... and LMDB keeps a group of group_max inline, larger ones on
    //  overflow pages (a page header of 16 bytes, then the value)
    MDB_stat stat;
    assert_int_equal (mdb_stat (raw.txn, raw.events, &stat), 0);
    size_t overflow = 0;
    for (size_t i = 0; i < ngot; i++)
        if (got [i].size > group_max)
            overflow += (got [i].size + 16 + raw.psize - 1) / raw.psize;
    assert_int_equal (stat.ms_overflow_pages, overflow);
    s_raw_close (&raw);
}

//  --------------------------------------------------------------------------
//  LMDB only

static void
test_lmdb_reopen_keeps_everything (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.sync = ZB_SYNC_COMMIT;
    s_open (fx);
    //  The directory was created, parents too, private to the group
    struct stat st;
    assert_int_equal (stat (fx->dir, &st), 0);
    assert_true (S_ISDIR (st.st_mode));
    assert_int_equal (st.st_mode & 0777, 0750);
    char path [256];
    snprintf (path, sizeof (path), "%s/data.mdb", fx->dir);
    assert_int_equal (stat (path, &st), 0);

    s_append_ok (fx, 50, 3, T0, 1000, "key-");
    s_append_ok (fx, 25, 2, T0 + 100000, 1000, NULL);
    zb_journal_info_t before;
    zb_journal_info (fx->journal, &before);
    assert_string_equal (before.sync, "commit");
    s_reopen (fx);
    zb_journal_info_t after;
    zb_journal_info (fx->journal, &after);
    assert_int_equal (after.head, 75);
    assert_int_equal (after.oldest, 1);
    assert_int_equal (after.events, 75);
    assert_int_equal (after.bytes, before.bytes);
    assert_int_equal (s_topic_head (fx, "sales-events"), 17 + 13);
    assert_int_equal (s_topic_head (fx, "inventory-events"), 17 + 12);
    assert_int_equal (s_topic_head (fx, "rare-events"), 16);
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("key-33"), T0 + NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 33);
    assert_int_equal (found.arrival_ns, T0 + 32 * 1000);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 100000), 51);
    s_check_all (fx);
    //  It continues where it stopped
    s_append_ok (fx, 5, 1, T0 + 200000, 1, NULL);
    assert_int_equal (zb_journal_head (fx->journal), 80);
    s_check_all (fx);
}

static void
test_lmdb_one_broker_per_directory (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    char err [256];
    zb_journal_t *second = zb_journal_open (&fx->config, err, sizeof (err));
    assert_null (second);
    assert_non_null (strstr (err, "in use by another broker"));
    //  Closing releases it
    zb_journal_destroy (&fx->journal);
    assert_null (fx->journal);
    s_open (fx);
}

static void
test_lmdb_open_errors (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    char err [256];
    //  The directory is a file
    char path [128];
    snprintf (path, sizeof (path), "%s/file", fx->base);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("not a journal", file);
    fclose (file);
    fx->config.dir = path;
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    assert_non_null (strstr (err, "Not a directory"));
    //  A directory with something else in data.mdb
    snprintf (path, sizeof (path), "%s/other", fx->base);
    assert_int_equal (mkdir (path, 0700), 0);
    char data [160];
    snprintf (data, sizeof (data), "%s/data.mdb", path);
    file = fopen (data, "w");
    assert_non_null (file);
    for (int i = 0; i < 3000; i++)
        fputs ("garbage ", file);
    fclose (file);
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    assert_non_null (strstr (err, path));
    //  The memory backend wants a capacity
    fx->config.dir = NULL;
    fx->config.memory_events = 0;
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    assert_non_null (strstr (err, "memory-events"));
}

static void
test_lmdb_map_full (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.max_mb = 2;
    fx->config.retain_mb = 1;
    fx->event_size = 1000;
    s_open (fx);
    int rc = 0;
    int batches = 0;
    for (batches = 0; batches < 1000; batches++) {
        rc = s_append (fx, 20, 2, T0 + (uint64_t) batches * NS_PER_S, 1, "full-");
        if (rc)
            break;
    }
    assert_int_equal (rc, -1);
    assert_true (batches > 20);           //  about 2 MiB went in
    assert_string_equal (fx->err, "journal full (journal-max-mb reached)");
    uint64_t head = zb_journal_head (fx->journal);
    assert_int_equal (head, fx->seq);
    //  Full stays full, and nothing of a refused batch is kept
    assert_int_equal (s_append (fx, 20, 2, T0 + 2000 * NS_PER_S, 1, "full-"), -1);
    assert_int_equal (zb_journal_head (fx->journal), head);
    s_check_all (fx);
    //  Pruning down to retain-mb makes room
    int removed = zb_journal_prune (fx->journal, T0 + 2000 * NS_PER_S, 100000);
    if (removed <= 0)
        fail_msg ("prune: %d %s", removed, zb_journal_last_error (fx->journal));
    assert_true (zb_journal_oldest (fx->journal) > 1);
    s_append_ok (fx, 20, 2, T0 + 2000 * NS_PER_S, 1, "full-");
    assert_int_equal (zb_journal_head (fx->journal), head + 20);
    s_check_all (fx);
    //  ... for as long as pruning keeps up
    for (int i = 0; i < 200; i++) {
        if (s_append (fx, 20, 2, T0 + (2001 + (uint64_t) i) * NS_PER_S, 1, "more-")) {
            assert_string_equal (fx->err, "journal full (journal-max-mb reached)");
            assert_true (zb_journal_prune (fx->journal, T0 + 3000 * NS_PER_S, 100000) > 0);
            s_append_ok (fx, 20, 2, T0 + (2001 + (uint64_t) i) * NS_PER_S, 1, "more-");
        }
    }
    s_check_all (fx);
    s_reopen (fx);
    assert_int_equal (zb_journal_head (fx->journal), fx->seq);
    s_check_all (fx);
}

//  A commit that fails writing its pages (here: the file size limit, as a
//  full disk would) stores nothing, and the next append works.
static void
test_lmdb_failed_commit (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.sync = ZB_SYNC_COMMIT;
    fx->event_size = 2000;
    s_open (fx);
    s_append_ok (fx, 10, 2, T0, 1, "a-");
    char path [256];
    snprintf (path, sizeof (path), "%s/data.mdb", fx->dir);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);

    struct rlimit saved, tight;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &saved), 0);
    void (*old_handler) (int) = signal (SIGXFSZ, SIG_IGN);
    tight = saved;
    tight.rlim_cur = (rlim_t) st.st_size;
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &tight), 0);
    int rc = s_append (fx, 100, 2, T0 + 1000, 1, "b-");
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &saved), 0);
    signal (SIGXFSZ, old_handler);

    assert_int_equal (rc, -1);
    //  EFBIG, or EIO when a write straddled the limit
    if (strcmp (fx->err, strerror (EFBIG)) && strcmp (fx->err, strerror (EIO)))
        fail_msg ("unexpected error: %s", fx->err);
    assert_int_equal (zb_journal_head (fx->journal), 10);
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("b-11"), T0 + 2000, &found), 0);
    assert_int_equal (s_topic_head (fx, "sales-events"), 5);
    //  The environment still works
    s_append_ok (fx, 100, 2, T0 + 2000, 1, "b-");
    assert_int_equal (zb_journal_head (fx->journal), 110);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("b-11"), T0 + 3000, &found), 1);
    assert_int_equal (found.seq, 11);
    s_check_all (fx);
    s_reopen (fx);
    assert_int_equal (zb_journal_head (fx->journal), 110);
    assert_int_equal (s_topic_head (fx, "sales-events"), 55);
    s_check_all (fx);
}

static void
test_lmdb_large_events (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->event_size = 4000;          //  overflow pages
    s_open (fx);
    s_append_ok (fx, 30, 2, T0, 1, NULL);
    fx->event_size = 3;
    s_append_ok (fx, 3, 2, T0 + 100, 1, NULL);
    fx->event_size = 4000;
    s_append_ok (fx, 2, 2, T0 + 200, 1, NULL);
    s_reopen (fx);
    s_check_all (fx);
}

//  Appends that end in partial groups, a reopen after each (sync commit):
//  the head is the last group's key + count - 1, and the next append starts
//  a new group after it.
static void
test_lmdb_reopen_partial_groups (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.sync = ZB_SYNC_COMMIT;
    s_open (fx);
    size_t appends [] = { 7, 1, 23, 3, 40, 2 };
    uint64_t head = 0;
    for (size_t i = 0; i < 6; i++) {
        s_append_ok (fx, appends [i], 3, T0 + i * NS_PER_S, 1000, i % 2? "key-": NULL);
        head += appends [i];
        s_reopen (fx);
        assert_int_equal (zb_journal_head (fx->journal), head);
        assert_int_equal (zb_journal_oldest (fx->journal), 1);
        zb_journal_info_t info;
        zb_journal_info (fx->journal, &info);
        assert_int_equal (info.events, head);
        s_check_all (fx);
        for (uint64_t from = 1; from <= head; from++)
            s_check_read (fx, from, from + 4, 0);
        assert_int_equal (zb_journal_seq_at (fx->journal, T0 + i * NS_PER_S), head - appends [i] + 1);
    }
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("key-8"), T0 + 10 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 8);
    assert_int_equal (s_topic_head (fx, "sales-events"), 3 + 1 + 8 + 1 + 14 + 1);
    //  A group per append at least: none spans two
    zb_journal_destroy (&fx->journal);
    raw_t raw;
    s_raw_open (fx, &raw);
    group_info_t groups [100];
    size_t n = s_raw_groups (&raw, groups, 100);
    uint64_t key = 1;
    size_t g = 0;
    for (size_t i = 0; i < 6; i++) {
        uint64_t end = key + appends [i];
        assert_true (g < n && groups [g].key == key);
        while (g < n && groups [g].key < end) {
            assert_true (groups [g].key + groups [g].count <= end);
            g++;
        }
        key = end;
    }
    assert_int_equal (g, n);
    assert_int_equal (s_raw_meta (&raw, "format"), 2);
    s_raw_close (&raw);
    s_open (fx);
    assert_int_equal (zb_journal_head (fx->journal), head);
    s_append_ok (fx, 5, 1, T0 + 10 * NS_PER_S, 1, NULL);
    assert_int_equal (zb_journal_head (fx->journal), head + 5);
    s_check_all (fx);
}

//  Garbage in an events value (written with raw LMDB): the reads that meet
//  it fail with a clear error, the others work; garbage in the last group
//  refuses the open (its count makes the head).
static void
test_lmdb_malformed_values (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    s_append_ok (fx, 100, 2, T0, 1000, NULL);
    zb_journal_destroy (&fx->journal);
    raw_t raw;
    s_raw_open (fx, &raw);
    group_info_t groups [100];
    size_t n = s_raw_groups (&raw, groups, 100);
    assert_true (n >= 5);
    s_raw_close (&raw);

    //  Each kind of damage, in the third group (restored in between)
    uint64_t bad = groups [2].key;
    size_t count = groups [2].count;
    uint8_t good_value [4096], value [4096];
    size_t good_len = groups [2].size;
    assert_true (good_len + 1 <= sizeof (value));
    s_raw_open (fx, &raw);
    {
        uint8_t key [8];
        zb_journal_put64 (key, bad);
        MDB_val k = { 8, key }, v;
        assert_int_equal (mdb_get (raw.txn, raw.events, &k, &v), 0);
        assert_int_equal (v.mv_size, good_len);
        memcpy (good_value, v.mv_data, good_len);
    }
    s_raw_close (&raw);
    const char *cases [] = {
        "count 0", "one record more than the bytes hold", "record cut short",
        "topic past the end", "event past the end", "a byte after the last record",
        "one byte"
    };
    for (size_t c = 0; c < sizeof (cases) / sizeof (cases [0]); c++) {
        memcpy (value, good_value, good_len);
        size_t len = good_len;
        uint64_t last_good = bad - 1;       //  what the error names
        switch (c) {
            case 0:
                zb_journal_put16 (value, 0);
                break;
            case 1:
                zb_journal_put16 (value, (uint16_t) (count + 1));
                last_good = bad + count - 1;
                break;
            case 2:
                len = GROUP_HEADER + RECORD_HEADER - 1;
                break;
            case 3:
                zb_journal_put16 (value + GROUP_HEADER + 16, 500);
                len = GROUP_HEADER + RECORD_HEADER + 3;
                break;
            case 4:
                zb_journal_put16 (value + GROUP_HEADER + 16, 12);
                memcpy (value + GROUP_HEADER + 18, "\x00\x00\x01\x00", 4);     //  256 bytes
                len = GROUP_HEADER + RECORD_HEADER + 12 + 10;
                break;
            case 5:
                value [len++] = 'x';
                last_good = bad + count - 1;
                break;
            default:
                len = 1;
                break;
        }
        s_raw_open (fx, &raw);
        s_raw_put_seq (&raw, raw.events, bad, value, len);
        s_raw_close (&raw);

        s_open (fx);
        assert_int_equal (zb_journal_head (fx->journal), 100);
        //  Before it: fine; through it: the error
        visit_t vis = { .fx = fx };
        uint64_t next;
        s_read_ok (fx, 1, bad - 1, 0, &vis, &next);
        assert_int_equal (vis.counted, bad - 1);
        memset (&vis, 0, sizeof (vis));
        vis.fx = fx;
        int rc = zb_journal_read (fx->journal, 1, 100, 0, s_visit, &vis, &next, fx->err, sizeof (fx->err));
        if (rc != -1)
            fail_msg ("%s: read did not fail", cases [c]);
        char expect [256];
        snprintf (expect, sizeof (expect), "journal %s: malformed record after seq %llu",
                  fx->dir, (unsigned long long) last_good);
        if (strcmp (fx->err, expect))
            fail_msg ("%s: \"%s\", expected \"%s\"", cases [c], fx->err, expect);
        //  A read from inside it fails too (unless the damage is past the
        //  records read), from after it works
        if (c != 1 && c != 5) {
            assert_int_equal (zb_journal_read (fx->journal, bad + 1, bad + 2, 0, s_visit, &vis,
                                               &next, fx->err, sizeof (fx->err)), -1);
            assert_non_null (strstr (fx->err, "malformed record after seq"));
        }
        uint64_t after = groups [3].key;
        memset (&vis, 0, sizeof (vis));
        vis.fx = fx;
        s_read_ok (fx, after, 100, 0, &vis, &next);
        assert_int_equal (vis.counted, 100 - after + 1);
        zb_journal_destroy (&fx->journal);
    }

    //  Garbage as the last group: the open says so
    s_raw_open (fx, &raw);
    s_raw_put_seq (&raw, raw.events, groups [n - 1].key, "\x00\x05garbage", 9);
    s_raw_close (&raw);
    char err [512];
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    char expect [256];
    snprintf (expect, sizeof (expect), "journal %s: malformed record after seq %llu (the last group of events)",
              fx->dir, (unsigned long long) (groups [n - 1].key - 1));
    assert_string_equal (err, expect);
}

//  A value in format 1: [arrival_ns][topic_seq][topic_len][id] topic event
static size_t
s_v1_value (uint8_t *p, uint64_t seq, uint64_t arrival, uint64_t topic_seq, const char *topic,
            size_t event_len)
{
    zb_journal_put64 (p, arrival);
    zb_journal_put64 (p + 8, topic_seq);
    zb_journal_put16 (p + 16, (uint16_t) strlen (topic));
    char id [37];
    snprintf (id, sizeof (id), "00000000-0000-4000-8000-%012llu", (unsigned long long) seq);
    memcpy (p + 18, id, 36);
    memcpy (p + 54, topic, strlen (topic));
    s_event_bytes ((char *) p + 54 + strlen (topic), event_len, seq);
    return 54 + strlen (topic) + event_len;
}

//  A store written by a broker of format 1 (one record per value, as the
//  previous journal_lmdb.c wrote it) opens with nothing lost: every record
//  reads back, seq_at, topics, idempotency keys, pruning; appends go on in
//  groups after it, and the store is format 2 from then on.
static void
test_lmdb_format1_upgrade (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    raw_t raw;
    s_raw_open (fx, &raw);
    //  seq 1..60 over two topics, arriving at T0 + (seq - 1) s; seq 20 and 41 large
    static uint8_t value [8192];
    uint64_t topic_seq [2] = { 0, 0 };
    for (uint64_t seq = 1; seq <= 60; seq++) {
        size_t t = (seq - 1) % 2;
        size_t event_len = seq == 20 || seq == 41? 4000: 64;
        size_t len = s_v1_value (value, seq, T0 + (seq - 1) * NS_PER_S, ++topic_seq [t],
                                 fx->topics [t], event_len);
        s_raw_put_seq (&raw, raw.events, seq, value, len);
    }
    for (size_t t = 0; t < 2; t++) {
        uint8_t last [8];
        zb_journal_put64 (last, topic_seq [t]);
        s_raw_put (&raw, raw.topics, fx->topics [t], strlen (fx->topics [t]), last, 8);
    }
    //  An idempotency key for seq 55: [arrival][id] key
    zb_journal_put64 (value, T0 + 54 * NS_PER_S);
    memcpy (value + 8, "00000000-0000-4000-8000-000000000055", 36);
    memcpy (value + 44, "old-55", 6);
    s_raw_put_seq (&raw, raw.dedup, 55, value, 50);
    uint8_t format [8];
    zb_journal_put64 (format, 1);
    s_raw_put (&raw, raw.meta, "format", 6, format, 8);
    s_raw_close (&raw);

    fx->config.dedup_window_s = 3600;
    s_open (fx);
    fx->topic_seq [0] = topic_seq [0];
    fx->topic_seq [1] = topic_seq [1];
    assert_int_equal (zb_journal_head (fx->journal), 60);
    assert_int_equal (zb_journal_oldest (fx->journal), 1);
    zb_journal_info_t info;
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 60);
    s_check_all (fx);
    for (uint64_t from = 1; from <= 60; from++)
        s_check_read (fx, from, from + 3, 2);
    for (uint64_t seq = 1; seq <= 60; seq++)
        assert_int_equal (zb_journal_seq_at (fx->journal, T0 + (seq - 1) * NS_PER_S), seq);
    assert_int_equal (s_topic_head (fx, "sales-events"), 30);
    assert_int_equal (s_topic_head (fx, "inventory-events"), 30);
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("old-55"), T0 + 60 * NS_PER_S, &found), 1);
    assert_int_equal (found.seq, 55);

    //  Appends after it, in groups; reads across the two layouts
    s_append_ok (fx, 40, 2, T0 + 60 * NS_PER_S, NS_PER_S, NULL);    //  seq 61..100
    assert_int_equal (zb_journal_head (fx->journal), 100);
    s_check_all (fx);
    for (uint64_t from = 50; from <= 70; from++)
        s_check_read (fx, from, from + 20, 0);
    assert_int_equal (zb_journal_seq_at (fx->journal, T0 + 59 * NS_PER_S + 1), 61);
    assert_int_equal (s_topic_head (fx, "sales-events"), 50);
    zb_journal_destroy (&fx->journal);

    s_raw_open (fx, &raw);
    assert_int_equal (s_raw_meta (&raw, "format"), 2);
    assert_int_equal (s_raw_meta (&raw, "format1-head"), 60);
    s_raw_close (&raw);

    //  Reopened with a retention of an hour: format-1 records are pruned
    //  one by one, the groups after them whole (the key of seq 55 stays)
    fx->config.retain_hours = 1;
    fx->config.dedup_window_s = 7200;
    s_open (fx);
    assert_int_equal (zb_journal_head (fx->journal), 100);
    s_check_all (fx);
    uint64_t hour = 3600 * NS_PER_S;
    assert_int_equal (zb_journal_prune (fx->journal, T0 + hour + 24 * NS_PER_S + 1, 1000), 25);
    assert_int_equal (zb_journal_oldest (fx->journal), 26);
    assert_int_equal (zb_journal_seq_at (fx->journal, 0), 26);
    s_check_all (fx);
    //  seq 1..62 expired: the first group after the format-1 records has
    //  fresh records, so it stays
    assert_int_equal (zb_journal_prune (fx->journal, T0 + hour + 61 * NS_PER_S + 1, 1000), 35);
    assert_int_equal (zb_journal_oldest (fx->journal), 61);
    s_check_all (fx);
    s_append_ok (fx, 3, 1, T0 + hour, 1, NULL);
    s_reopen (fx);
    assert_int_equal (zb_journal_head (fx->journal), 103);
    assert_int_equal (zb_journal_oldest (fx->journal), 61);
    s_check_all (fx);
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 43);
}

//  A format this broker does not know stays refused, and so does a format
//  value that is not 8 bytes
static void
test_lmdb_unknown_format (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    s_append_ok (fx, 10, 1, T0, 1, NULL);
    zb_journal_destroy (&fx->journal);
    raw_t raw;
    s_raw_open (fx, &raw);
    uint8_t format [8];
    zb_journal_put64 (format, 3);
    s_raw_put (&raw, raw.meta, "format", 6, format, 8);
    s_raw_close (&raw);
    char err [512], expect [512];
    snprintf (expect, sizeof (expect), "journal %s: unsupported format (this broker reads format 2)", fx->dir);
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    assert_string_equal (err, expect);
    s_raw_open (fx, &raw);
    s_raw_put (&raw, raw.meta, "format", 6, "2", 1);
    s_raw_close (&raw);
    assert_null (zb_journal_open (&fx->config, err, sizeof (err)));
    assert_string_equal (err, expect);
    //  Put right, it opens again with everything
    s_raw_open (fx, &raw);
    zb_journal_put64 (format, 2);
    s_raw_put (&raw, raw.meta, "format", 6, format, 8);
    s_raw_close (&raw);
    s_open (fx);
    assert_int_equal (zb_journal_head (fx->journal), 10);
    s_check_all (fx);
}

//  --------------------------------------------------------------------------
//  Memory only

static void
test_memory_ring_overwrites_oldest (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.memory_events = 10;
    s_open (fx);
    s_append_ok (fx, 6, 2, T0, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 1);
    s_append_ok (fx, 6, 2, T0 + 10, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 3);
    assert_int_equal (zb_journal_head (fx->journal), 12);
    s_check_all (fx);
    //  A batch larger than the ring keeps its last records
    s_append_ok (fx, 25, 3, T0 + 20, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 28);
    assert_int_equal (zb_journal_head (fx->journal), 37);
    zb_journal_info_t info;
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 10);
    s_check_all (fx);
    visit_t v = { .fx = fx };
    uint64_t next;
    s_read_ok (fx, 1, 30, 100, &v, &next);
    assert_int_equal (v.counted, 3);
    assert_int_equal (v.seqs [0], 28);
    assert_int_equal (next, 31);
    //  Topic heads are not affected by the ring
    assert_int_equal (s_topic_head (fx, "sales-events"), 3 + 3 + 9);
    //  seq_at only knows what is still in the ring
    assert_int_equal (zb_journal_seq_at (fx->journal, 0), 28);
    //  Keys outlive their records in the ring
    s_append_ok (fx, 20, 1, T0 + 100, 1, "ring-");
    assert_int_equal (zb_journal_oldest (fx->journal), 48);
    zb_record_t found;
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("ring-38"), T0 + 200, &found), 1);
    assert_int_equal (found.seq, 38);
}

//  Records live in 1 MiB chunks (journal_memory.c): a ring that wraps many
//  times frees and reuses chunks, and a record larger than a chunk gets its
//  own; every record read back is intact.
static void
test_memory_chunks_wrap (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->config.memory_events = 600;     //  about 2.4 MB of 4,000-byte events
    s_open (fx);
    fx->event_size = 4000;
    for (int round = 0; round < 40; round++) {
        s_append_ok (fx, 50, 2, T0 + (uint64_t) round * 100, 1, NULL);
        s_check_all (fx);
    }
    assert_int_equal (zb_journal_head (fx->journal), 2000);
    assert_int_equal (zb_journal_oldest (fx->journal), 1401);
    //  Larger than a chunk: a chunk of its own, gone when it is dropped
    fx->event_size = 3 << 20;
    s_append_ok (fx, 1, 1, T0 + 5000, 1, NULL);
    assert_int_equal (zb_journal_head (fx->journal), 2001);
    fx->event_size = 100;
    for (int round = 0; round < 13; round++)
        s_append_ok (fx, 50, 3, T0 + 6000 + (uint64_t) round * 100, 1, NULL);
    assert_int_equal (zb_journal_oldest (fx->journal), 2651 - 600 + 1);
    s_check_all (fx);
    zb_journal_info_t info;
    zb_journal_info (fx->journal, &info);
    assert_int_equal (info.events, 600);
    assert_true (info.bytes < 600 * (100 + 200) + 600 * sizeof (void *));
}

static void
test_memory_restart_forgets (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    s_open (fx);
    s_append_ok (fx, 10, 2, T0, 1, "x-");
    s_reopen (fx);
    assert_int_equal (zb_journal_head (fx->journal), 0);
    assert_int_equal (zb_journal_oldest (fx->journal), 0);
    assert_int_equal (s_topic_head (fx, "sales-events"), 0);
    assert_int_equal (zb_journal_dedup_get (fx->journal, s_str ("x-1"), T0, NULL), 0);
}

//  --------------------------------------------------------------------------
//  The key index (journal.c): growth is spread over insertions; lookups and
//  removals must find every entry wherever it is meanwhile.

typedef struct {
    zb_jentry_t entry;
    char name [24];
    bool indexed;
} item_t;

static void
test_jindex_grow_and_remove (void **state)
{
    (void) state;
    const size_t count = 100000;
    item_t *items = (item_t *) calloc (count, sizeof (item_t));
    assert_non_null (items);
    zb_jindex_t *index = zb_jindex_new ();
    assert_non_null (index);
    assert_null (zb_jindex_lookup (index, "x", 1));
    for (size_t i = 0; i < count; i++) {
        item_t *item = &items [i];
        snprintf (item->name, sizeof (item->name), "key-%zu", i);
        item->entry.key.ptr = item->name;
        item->entry.key.len = strlen (item->name);
        assert_int_equal (zb_jindex_reserve (index, 1), 0);
        zb_jindex_insert (index, &item->entry);
        item->indexed = true;
        //  Remove every third of the earlier ones while the index grows
        if (i % 3 == 2) {
            item_t *gone = &items [i / 2];
            if (gone->indexed) {
                assert_int_equal (zb_jindex_remove (index, &gone->entry), 1);
                gone->indexed = false;
            }
        }
        if (i % 997 == 0) {
            //  Everything that should be there is, the rest is not
            for (size_t j = 0; j <= i; j += 101) {
                void *found = zb_jindex_lookup (index, items [j].name, strlen (items [j].name));
                assert_ptr_equal (found, items [j].indexed? &items [j].entry: NULL);
            }
        }
    }
    size_t indexed = 0;
    for (size_t i = 0; i < count; i++) {
        void *found = zb_jindex_lookup (index, items [i].name, strlen (items [i].name));
        assert_ptr_equal (found, items [i].indexed? &items [i].entry: NULL);
        indexed += items [i].indexed;
    }
    assert_int_equal (zb_jindex_size (index), indexed);
    //  Removing twice, or what never was there, changes nothing
    item_t *some = &items [count - 1];
    assert_int_equal (zb_jindex_remove (index, &some->entry), 1);
    assert_int_equal (zb_jindex_remove (index, &some->entry), 0);
    some->indexed = false;
    assert_int_equal (zb_jindex_size (index), indexed - 1);
    //  Keys are bytes: a prefix or an extension is another key
    assert_null (zb_jindex_lookup (index, "key-1", 4));
    assert_null (zb_jindex_lookup (index, "key-10x", 7));
    //  A big reservation in one go
    assert_int_equal (zb_jindex_reserve (index, 1000000), 0);
    for (size_t i = 0; i < count; i++)
        if (items [i].indexed)
            assert_ptr_equal (zb_jindex_lookup (index, items [i].name, strlen (items [i].name)),
                              &items [i].entry);
    zb_jindex_destroy (&index);
    assert_null (index);
    free (items);
}

//  The hash -> seq multimap (journal.c) the LMDB backend indexes its keys
//  with: several seqs per hash, growth spread over insertions, removals
//  from either array while it grows.

typedef struct {
    uint64_t seqs [16];
    size_t count;
    uint64_t stop_at;
} seqs_t;

static int
s_collect (void *arg, uint64_t seq)
{
    seqs_t *s = (seqs_t *) arg;
    assert_true (s->count < 16);
    s->seqs [s->count++] = seq;
    return seq == s->stop_at? 7: 0;
}

static size_t
s_find_all (zb_jhash_t *index, uint64_t hash, uint64_t seq, bool *seen)
{
    seqs_t s = { .count = 0, .stop_at = 0 };
    assert_int_equal (zb_jhash_find (index, hash, s_collect, &s), 0);
    *seen = false;
    for (size_t i = 0; i < s.count; i++)
        if (s.seqs [i] == seq)
            *seen = true;
    return s.count;
}

static void
test_jhash_grow_and_remove (void **state)
{
    (void) state;
    zb_jhash_t *index = zb_jhash_new ();
    assert_non_null (index);
    const uint64_t count = 200000;
    //  Pair seq -> hash: seq / 3, so every hash has three seqs; a pair is
    //  removed when seq % 5 == 0, some while the index grows
    for (uint64_t seq = 1; seq <= count; seq++) {
        assert_int_equal (zb_jhash_reserve (index, 1), 0);
        zb_jhash_insert (index, zb_jhash_of (index, &(uint64_t) { seq / 3 }, 8), seq);
        if (seq % 5 == 0 && seq > 1000) {
            uint64_t gone = seq - 1000;
            if (gone % 5 == 0)
                assert_int_equal (zb_jhash_remove (index, zb_jhash_of (index, &(uint64_t) { gone / 3 }, 8), gone), 1);
        }
        if (seq % 4999 == 0) {
            for (uint64_t s = 1; s <= seq; s += 37) {
                bool seen;
                s_find_all (index, zb_jhash_of (index, &(uint64_t) { s / 3 }, 8), s, &seen);
                bool removed = s % 5 == 0 && s + 1000 <= seq;
                assert_true (seen == !removed);
            }
        }
    }
    //  The remaining removals, then check everything
    for (uint64_t gone = count - 999; gone <= count; gone++)
        if (gone % 5 == 0)
            assert_int_equal (zb_jhash_remove (index, zb_jhash_of (index, &(uint64_t) { gone / 3 }, 8), gone), 1);
    assert_int_equal (zb_jhash_size (index), count - count / 5);
    for (uint64_t seq = 1; seq <= count; seq++) {
        bool seen;
        size_t n = s_find_all (index, zb_jhash_of (index, &(uint64_t) { seq / 3 }, 8), seq, &seen);
        assert_true (seen == (seq % 5 != 0));
        assert_true (n >= 1 && n <= 3);
    }
    //  A pair that is not there, twice removed
    uint64_t h = zb_jhash_of (index, &(uint64_t) { 7 }, 8);
    assert_int_equal (zb_jhash_remove (index, h, 999999999), 0);
    assert_int_equal (zb_jhash_remove (index, h, 21), 1);
    assert_int_equal (zb_jhash_remove (index, h, 21), 0);
    //  find stops at the first non-zero answer
    seqs_t s = { .count = 0, .stop_at = 22 };
    assert_int_equal (zb_jhash_find (index, h, s_collect, &s), 7);
    assert_int_equal (s.seqs [s.count - 1], 22);
    zb_jhash_destroy (&index);
    assert_null (index);
}

//  Hashes that share their home slot and their tag (the top 7 bits) and
//  differ only in between: every probe meets tags that match and must tell
//  the pairs apart by the full hash, through growth and removals.
static void
test_jhash_same_tag (void **state)
{
    (void) state;
    zb_jhash_t *index = zb_jhash_new ();
    assert_non_null (index);
    const uint64_t count = 3000;
    for (uint64_t k = 1; k <= count; k++) {
        assert_int_equal (zb_jhash_reserve (index, 1), 0);
        zb_jhash_insert (index, (k << 24) | 0x15, k);
    }
    for (uint64_t k = 1; k <= count; k += 2)
        assert_int_equal (zb_jhash_remove (index, (k << 24) | 0x15, k), 1);
    assert_int_equal (zb_jhash_size (index), count / 2);
    for (uint64_t k = 1; k <= count; k++) {
        bool seen;
        size_t n = s_find_all (index, (k << 24) | 0x15, k, &seen);
        assert_true (seen == (k % 2 == 0));
        assert_int_equal (n, k % 2 == 0);
    }
    //  A hash with the same home and tag that was never filed
    bool seen;
    assert_int_equal (s_find_all (index, ((count + 1) << 24) | 0x15, count + 1, &seen), 0);
    zb_jhash_destroy (&index);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
#define BOTH(test) \
        cmocka_unit_test_setup_teardown (test, s_setup_lmdb, s_teardown), \
        cmocka_unit_test_setup_teardown (test, s_setup_memory, s_teardown)
        BOTH (test_both_append_and_read_back),
        BOTH (test_both_sequence_checked),
        BOTH (test_both_read_ranges),
        BOTH (test_both_seq_at),
        BOTH (test_both_dedup),
        BOTH (test_both_dedup_same_key_in_batch),
        BOTH (test_both_dedup_window_zero),
        BOTH (test_both_dedup_many_keys),
        BOTH (test_both_prune_by_age),
        BOTH (test_both_prune_by_size),
        BOTH (test_both_topics_iterate),
        BOTH (test_both_read_inside_groups),
        BOTH (test_both_seq_at_in_groups),
        BOTH (test_both_prune_by_age_groups),
        BOTH (test_both_mixed_sizes),
        cmocka_unit_test_setup_teardown (test_lmdb_reopen_keeps_everything, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_one_broker_per_directory, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_open_errors, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_map_full, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_failed_commit, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_large_events, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_reopen_partial_groups, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_malformed_values, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_format1_upgrade, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_lmdb_unknown_format, s_setup_lmdb, s_teardown),
        cmocka_unit_test_setup_teardown (test_memory_ring_overwrites_oldest, s_setup_memory, s_teardown),
        cmocka_unit_test_setup_teardown (test_memory_chunks_wrap, s_setup_memory, s_teardown),
        cmocka_unit_test_setup_teardown (test_memory_restart_forgets, s_setup_memory, s_teardown),
        cmocka_unit_test (test_jindex_grow_and_remove),
        cmocka_unit_test (test_jhash_grow_and_remove),
        cmocka_unit_test (test_jhash_same_tag),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
