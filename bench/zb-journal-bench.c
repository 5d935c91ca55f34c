/*  zb-journal-bench - what the broker's journal (broker/journal.h) costs.

    Appends batches of records the way the broker does (one call per group of
    events drained from the ingest socket) with each backend and sync policy,
    then reads everything back in a loop of zb_journal_read calls the way a
    replay session does, and times a few other calls the broker makes (the
    dedup lookup per keyed entry, seq_at, prune). Prints tables on stdout.

        zb-journal-bench [-n BATCHES] [-b RECORDS] [-s BYTES] [-d DIR]

    The LMDB journals go to a fresh directory under DIR (default /tmp), removed
    at the end. --sync commit fsyncs every batch, so it runs a tenth of the
    batches of the others. */

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../broker/journal.h"
#include "../common/cli.h"

static const char *prog = "zb-journal-bench";

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s [-n BATCHES] [-b RECORDS] [-s BYTES] [-d DIR]\n"
        "Times the broker's journal: appends per backend and sync policy, reads, dedup\n"
        "lookups, seq_at and prune. Prints tables on stdout.\n"
        "  -n, --batches N    append calls per policy (default 2000; --sync commit: N/10)\n"
        "  -b, --batch N      records per append call (default 100)\n"
        "  -s, --size BYTES   event bytes per record (default 350)\n"
        "  -d, --dir DIR      where to create the LMDB journals (default /tmp); a new\n"
        "                     directory is made there and removed at the end\n"
        "  -h, --help         this help\n"
        "  -V, --version      print the version\n"
        "Examples:\n"
        "  %s\n"
        "  %s -n 10000 -b 100 -s 350 -d /var/tmp\n", prog, prog, prog);
}

static double
now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
wall_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

//  Bytes this process handed to write calls so far (/proc/self/io wchar):
//  what a commit writes, page copies included. 0 when unavailable.
static uint64_t
s_wchar (void)
{
    FILE *file = fopen ("/proc/self/io", "r");
    if (!file)
        return 0;
    char line [128];
    unsigned long long value = 0;
    while (fgets (line, sizeof (line), file))
        if (sscanf (line, "wchar: %llu", &value) == 1)
            break;
    fclose (file);
    return value;
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  One batch's worth of records, renumbered for every call
typedef struct {
    size_t count;
    zb_record_t *records;
    char *events;
    char (*ids) [37];
    char (*keys) [40];
    uint64_t topic_seq [2];
} batch_t;

static const char *topics [2] = { "sales-events", "inventory-events" };

static int
s_batch_init (batch_t *b, size_t count, size_t size)
{
    memset (b, 0, sizeof (*b));
    b->count = count;
    b->records = (zb_record_t *) calloc (count, sizeof (zb_record_t));
    b->events = (char *) malloc (count * size + 1);
    b->ids = calloc (count, sizeof (*b->ids));
    b->keys = calloc (count, sizeof (*b->keys));
    if (!b->records || !b->events || !b->ids || !b->keys)
        return -1;
    for (size_t i = 0; i < count * size; i++)
        b->events [i] = (char) ('a' + i % 26);
    for (size_t i = 0; i < count; i++) {
        b->records [i].event.ptr = b->events + i * size;
        b->records [i].event.len = size;
        b->records [i].topic.ptr = topics [i % 2];
        b->records [i].topic.len = strlen (topics [i % 2]);
        b->records [i].id.ptr = b->ids [i];
        b->records [i].id.len = 36;
    }
    return 0;
}

//  Idempotency keys: none, a producer's run id and counter (what zb-producer
//  sends: each producer's keys land next to each other in the key order), or
//  random (UUID-like: every key lands somewhere else, the worst case)
typedef enum { KEYS_NONE, KEYS_SEQ, KEYS_RANDOM } keys_t;
static const char *keys_name [] = { "no", "seq", "random" };

static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void
s_batch_fill (batch_t *b, uint64_t first_seq, keys_t keys)
{
    uint64_t arrival = wall_ns ();
    for (size_t i = 0; i < b->count; i++) {
        zb_record_t *r = &b->records [i];
        r->seq = first_seq + i;
        r->topic_seq = ++b->topic_seq [i % 2];
        r->arrival_ns = arrival;
        snprintf (b->ids [i], 37, "00000000-0000-4000-8000-%012llu", (unsigned long long) r->seq);
        if (keys) {
            if (keys == KEYS_SEQ)
                snprintf (b->keys [i], 40, "bench-run-%llu", (unsigned long long) r->seq);
            else
                snprintf (b->keys [i], 40, "%016llx%016llx", (unsigned long long) s_mix (r->seq),
                          (unsigned long long) s_mix (~r->seq));
            r->idem_key.ptr = b->keys [i];
            r->idem_key.len = strlen (b->keys [i]);
        }
        else
            r->idem_key.ptr = NULL;
    }
}

static void
s_batch_free (batch_t *b)
{
    free (b->records);
    free (b->events);
    free (b->ids);
    free (b->keys);
}

typedef struct {
    uint64_t records;
    uint64_t bytes;
} count_t;

static int
s_count (void *arg, const zb_record_t *record)
{
    count_t *c = (count_t *) arg;
    c->records++;
    c->bytes += record->event.len;
    return 0;
}

static int
s_count_sales (void *arg, const zb_record_t *record)
{
    count_t *c = (count_t *) arg;
    if (record->topic.len == 12 && memcmp (record->topic.ptr, "sales-events", 12) == 0) {
        c->records++;
        c->bytes += record->event.len;
    }
    return 0;
}

//  Read [1, head] in calls of max_scan records, passes times; records/s
static double
s_read_rate (zb_journal_t *journal, size_t max_scan, int passes, zb_journal_visit_fn *fn,
             uint64_t *visited)
{
    uint64_t head = zb_journal_head (journal);
    count_t c = { 0, 0 };
    uint64_t scanned = 0;
    double start = now_s ();
    for (int pass = 0; pass < passes; pass++) {
        uint64_t from = 1, next;
        char err [256];
        while (from <= head) {
            if (zb_journal_read (journal, from, head, max_scan, fn, &c, &next, err, sizeof (err))) {
                fprintf (stderr, "%s: read: %s\n", prog, err);
                exit (1);
            }
            scanned += next - from;
            from = next;
        }
    }
    double elapsed = now_s () - start;
    *visited = c.records;
    return scanned / elapsed;
}

typedef struct {
    const char *backend;
    const char *sync;
    keys_t keys;
    long long batches;
    double mean_us, p50_us, p99_us, max_us;
    double records_per_s;
    double mb_per_s;
    double written_per_record;      //  bytes handed to write calls
} append_row_t;

static zb_journal_t *
s_open (const char *dir, zb_sync_t sync, char *path, size_t pathlen, const char *name)
{
    zb_journal_config_t config = {
        .dir = NULL,
        .sync = sync,
        .retain_hours = 0,
        .retain_mb = 0,
        .max_mb = 16384,
        .memory_events = 10000000,
        .dedup_window_s = 300,
    };
    if (dir) {
        snprintf (path, pathlen, "%s/%s", dir, name);
        config.dir = path;
    }
    char err [256];
    zb_journal_t *journal = zb_journal_open (&config, err, sizeof (err));
    if (!journal) {
        fprintf (stderr, "%s: open: %s\n", prog, err);
        exit (1);
    }
    return journal;
}

static void
s_append_run (zb_journal_t *journal, batch_t *b, long long batches, keys_t keys, size_t size,
              append_row_t *row)
{
    double *lat = (double *) malloc ((size_t) batches * sizeof (double));
    if (!lat) {
        fprintf (stderr, "%s: out of memory\n", prog);
        exit (1);
    }
    char err [256];
    uint64_t written = s_wchar ();
    double start = now_s ();
    for (long long i = 0; i < batches; i++) {
        s_batch_fill (b, zb_journal_head (journal) + 1, keys);
        double t0 = now_s ();
        if (zb_journal_append (journal, b->records, b->count, err, sizeof (err))) {
            fprintf (stderr, "%s: append: %s\n", prog, err);
            exit (1);
        }
        lat [i] = (now_s () - t0) * 1e6;
    }
    double elapsed = now_s () - start;
    written = s_wchar () - written;
    qsort (lat, (size_t) batches, sizeof (double), s_cmp_double);
    double sum = 0;
    for (long long i = 0; i < batches; i++)
        sum += lat [i];
    row->batches = batches;
    row->keys = keys;
    row->mean_us = sum / batches;
    row->p50_us = lat [batches / 2];
    row->p99_us = lat [(size_t) ((double) batches * 0.99)];
    row->max_us = lat [batches - 1];
    //  Rates over the time spent in zb_journal_append (not in making records)
    (void) elapsed;
    row->records_per_s = (double) batches * b->count / (sum / 1e6);
    row->mb_per_s = (double) batches * b->count * size / (sum / 1e6) / 1e6;
    row->written_per_record = (double) written / ((double) batches * b->count);
    free (lat);
}

int
main (int argc, char *argv [])
{
    long long batches = 2000, batch = 100, size = 350;
    const char *base = "/tmp";
    static const struct option options [] = {
        { "batches", required_argument, NULL, 'n' },
        { "batch", required_argument, NULL, 'b' },
        { "size", required_argument, NULL, 's' },
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, ":n:b:s:d:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'n':
                if (!zb_cli_parse_range (optarg, 10, LLONG_MAX, &value)) {
                    fprintf (stderr, "%s: --batches: expected an integer >= 10, got '%s'\n", prog, optarg);
                    return 2;
                }
                batches = (long long) value;
                break;
            case 'b':
                if (!zb_cli_parse_range (optarg, 1, 100000, &value)) {
                    fprintf (stderr, "%s: --batch: expected 1..100000, got '%s'\n", prog, optarg);
                    return 2;
                }
                batch = (long long) value;
                break;
            case 's':
                if (!zb_cli_parse_range (optarg, 0, 1024 * 1024, &value)) {
                    fprintf (stderr, "%s: --size: expected 0..1048576, got '%s'\n", prog, optarg);
                    return 2;
                }
                size = (long long) value;
                break;
            case 'd':
                base = optarg;
                break;
            case 'h':
                usage (stdout);
                return 0;
            case 'V':
                printf ("%s %s\n", prog, ZB_VERSION);
                return 0;
            case ':':
                fprintf (stderr, "%s: option '%s' needs a value\n", prog, argv [optind - 1]);
                usage (stderr);
                return 2;
            default:
                fprintf (stderr, "%s: unknown option '%s'\n", prog, argv [optind - 1]);
                usage (stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument '%s'\n", prog, argv [optind]);
        usage (stderr);
        return 2;
    }
    char dir [1024];
    snprintf (dir, sizeof (dir), "%s/zb-journal-bench-XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "%s: %s: %s\n", prog, dir, strerror (errno));
        return 1;
    }
    fprintf (stderr, "%s: journals in %s; %lld records of %lld bytes per append\n",
             prog, dir, batch, size);

    batch_t b;
    if (s_batch_init (&b, (size_t) batch, (size_t) size)) {
        fprintf (stderr, "%s: out of memory\n", prog);
        return 1;
    }
    char path [1200];
    append_row_t rows [6];
    memset (rows, 0, sizeof (rows));

    //  Appends: LMDB commit (fsync per batch), LMDB os, with and without keys, memory
    zb_journal_t *journal = s_open (dir, ZB_SYNC_COMMIT, path, sizeof (path), "commit");
    rows [0].backend = "lmdb"; rows [0].sync = "commit";
    s_append_run (journal, &b, batches / 10, KEYS_SEQ, (size_t) size, &rows [0]);
    zb_journal_destroy (&journal);

    journal = s_open (dir, ZB_SYNC_OS, path, sizeof (path), "os-nokeys");
    rows [1].backend = "lmdb"; rows [1].sync = "os";
    s_append_run (journal, &b, batches, KEYS_NONE, (size_t) size, &rows [1]);
    zb_journal_destroy (&journal);

    journal = s_open (dir, ZB_SYNC_OS, path, sizeof (path), "os-random");
    rows [5].backend = "lmdb"; rows [5].sync = "os";
    s_append_run (journal, &b, batches, KEYS_RANDOM, (size_t) size, &rows [5]);
    zb_journal_destroy (&journal);

    zb_journal_t *lmdb = s_open (dir, ZB_SYNC_OS, path, sizeof (path), "os");
    rows [2].backend = "lmdb"; rows [2].sync = "os";
    memset (b.topic_seq, 0, sizeof (b.topic_seq));
    s_append_run (lmdb, &b, batches, KEYS_SEQ, (size_t) size, &rows [2]);

    journal = s_open (NULL, ZB_SYNC_OS, path, sizeof (path), NULL);
    rows [3].backend = "memory"; rows [3].sync = "none";
    s_append_run (journal, &b, batches, KEYS_NONE, (size_t) size, &rows [3]);
    zb_journal_destroy (&journal);

    zb_journal_t *memory = s_open (NULL, ZB_SYNC_OS, path, sizeof (path), NULL);
    rows [4].backend = "memory"; rows [4].sync = "none";
    memset (b.topic_seq, 0, sizeof (b.topic_seq));
    s_append_run (memory, &b, batches, KEYS_SEQ, (size_t) size, &rows [4]);

    printf ("APPEND  %lld records x %lld bytes per call\n", batch, size);
    printf ("%-8s %-7s %-6s %8s %10s %10s %10s %10s %12s %8s %10s\n",
            "backend", "sync", "keys", "calls", "mean us", "p50 us", "p99 us", "max us",
            "records/s", "MB/s", "written/rec");
    const int order [6] = { 0, 1, 2, 5, 3, 4 };
    for (int o = 0; o < 6; o++) {
        int i = order [o];
        printf ("%-8s %-7s %-6s %8lld %10.1f %10.1f %10.1f %10.1f %12.0f %8.1f %10.0f\n",
                rows [i].backend, rows [i].sync, keys_name [rows [i].keys], rows [i].batches,
                rows [i].mean_us, rows [i].p50_us, rows [i].p99_us, rows [i].max_us,
                rows [i].records_per_s, rows [i].mb_per_s, rows [i].written_per_record);
    }

    //  Reads: everything, in calls of max_scan records
    printf ("\nREAD  loop of zb_journal_read calls over [1, head]\n");
    printf ("%-8s %10s %9s %-14s %14s\n", "backend", "records", "max_scan", "visitor", "records/s");
    zb_journal_t *journals [2] = { lmdb, memory };
    const char *names [2] = { "lmdb", "memory" };
    for (int j = 0; j < 2; j++) {
        size_t scans [3] = { 100, 1000, 10000 };
        uint64_t head = zb_journal_head (journals [j]);
        int passes = head < 1000000? (int) (2000000 / (head + 1)) + 1: 1;
        for (int k = 0; k < 3; k++) {
            uint64_t visited;
            double rate = s_read_rate (journals [j], scans [k], passes, s_count, &visited);
            printf ("%-8s %10llu %9zu %-14s %14.0f\n", names [j], (unsigned long long) head,
                    scans [k], "all", rate);
        }
        uint64_t visited;
        double rate = s_read_rate (journals [j], 1000, passes, s_count_sales, &visited);
        printf ("%-8s %10llu %9d %-14s %14.0f\n", names [j], (unsigned long long) head,
                1000, "sales only", rate);
    }

    //  Other calls the broker makes
    printf ("\nOTHER CALLS\n");
    printf ("%-8s %-34s %12s\n", "backend", "call", "us/call");
    for (int j = 0; j < 2; j++) {
        zb_journal_t *jr = journals [j];
        uint64_t head = zb_journal_head (jr);
        int n = 200000;
        char key [40];
        int found = 0;
        uint64_t now = wall_ns ();
        double t0 = now_s ();
        for (int i = 0; i < n; i++) {
            snprintf (key, sizeof (key), "bench-run-%llu", (unsigned long long) (1 + (uint64_t) i * 7919 % head));
            zb_str_t k = { key, strlen (key) };
            zb_record_t rec;
            found += zb_journal_dedup_get (jr, k, now, &rec) == 1;
        }
        double us = (now_s () - t0) * 1e6 / n;
        printf ("%-8s %-34s %12.3f\n", names [j], "dedup_get (key present)", us);
        if (found != n)
            fprintf (stderr, "%s: dedup_get found %d of %d keys\n", prog, found, n);
        t0 = now_s ();
        for (int i = 0; i < n; i++) {
            snprintf (key, sizeof (key), "absent-%d", i);
            zb_str_t k = { key, strlen (key) };
            zb_journal_dedup_get (jr, k, now, NULL);
        }
        us = (now_s () - t0) * 1e6 / n;
        printf ("%-8s %-34s %12.3f\n", names [j], "dedup_get (key absent)", us);
        t0 = now_s ();
        uint64_t sink = 0;
        for (int i = 0; i < 20000; i++)
            sink += zb_journal_seq_at (jr, now - (uint64_t) i * 1000);
        us = (now_s () - t0) * 1e6 / 20000;
        printf ("%-8s %-34s %12.3f\n", names [j], "seq_at", us);
        if (!sink)
            fprintf (stderr, "%s: seq_at returned nothing\n", prog);
        t0 = now_s ();
        for (int i = 0; i < 20000; i++) {
            zb_journal_info_t info;
            zb_journal_info (jr, &info);
        }
        us = (now_s () - t0) * 1e6 / 20000;
        printf ("%-8s %-34s %12.3f\n", names [j], "info", us);
    }
    zb_journal_destroy (&memory);
    zb_journal_destroy (&lmdb);

    //  Prune: reopen the LMDB journal with a size limit of half its events,
    //  then time prune calls of 10,000 records (dedup keys go first: the
    //  window is set to 0 so they all count).
    {
        snprintf (path, sizeof (path), "%s/os", dir);
        zb_journal_config_t config = {
            .dir = path, .sync = ZB_SYNC_OS, .retain_hours = 0, .retain_mb = 1,
            .max_mb = 16384, .memory_events = 1, .dedup_window_s = 0,
        };
        char err [256];
        lmdb = zb_journal_open (&config, err, sizeof (err));
        if (!lmdb) {
            fprintf (stderr, "%s: reopen: %s\n", prog, err);
            return 1;
        }
        int calls = 0, total = 0, removed;
        double worst = 0;
        double t0 = now_s ();
        while ((removed = zb_journal_prune (lmdb, wall_ns (), 10000)) > 0 && calls < 1000) {
            double t1 = now_s ();
            double took = t1 - t0;
            if (took > worst)
                worst = took;
            total += removed;
            calls++;
            t0 = now_s ();
        }
        printf ("%-8s %-34s %12.1f  (worst of %d calls removing %d records)\n", "lmdb",
                "prune, max_delete 10000, sync os", worst * 1e6, calls, total);
        zb_journal_destroy (&lmdb);
    }
    s_batch_free (&b);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
