/*  zb-pattern-bench - what matching an event against a set of patterns costs
    (common/pattern.h), and how that cost grows with the number of patterns.

    For each kind of pattern (exact, prefix, suffix, equals-ignore-case,
    numeric, cidr, exists, wildcard, anything-but, a mix with $or, arrays of
    objects) it compiles 10, 1,000 and 10,000 patterns of that kind into one
    set, then matches pre-decoded store events (the published envelope,
    nested detail, an array of line items) against it, single thread, and
    prints a table: nanoseconds per match (decoding not included; the
    fastest of three runs), events per second, patterns matched per event,
    and the time of the first match (which builds the index). The patterns are made so that each event
    matches about one of them whatever their number (anything-but: all but
    one, by its nature), so a flat ns/match column means the cost does not
    grow with the number of patterns.

        zb-pattern-bench [-n MATCHES] [-r COUNTS] [-k KINDS]

    Prints on stdout; nothing is asserted (performance targets are read from
    the table, see docs/BENCHMARKS.md). */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <msgpack.h>

#include "../common/pattern.h"
#include "../common/zb.h"

static const char *prog = "zb-pattern-bench";

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s [-n MATCHES] [-r COUNTS] [-k KINDS]\n"
        "Times matching store events against 10, 1000 and 10000 patterns of each kind\n"
        "(common/pattern.h). Prints a table on stdout: ns per match (fastest of 3 runs),\n"
        "events/s, patterns matched per event, and the first match (index build) in ms.\n"
        "  -n, --matches N    matches timed per run (default 200000)\n"
        "  -r, --rules LIST   pattern counts, comma-separated (default 10,1000,10000)\n"
        "  -k, --kinds LIST   kinds to run, comma-separated (default all: exact,prefix,\n"
        "                     suffix,ignore-case,numeric,cidr,exists,wildcard,\n"
        "                     anything-but,mixed-or,array)\n"
        "  -h, --help         this help\n"
        "  -V, --version      print the version\n"
        "Examples:\n"
        "  %s\n"
        "  %s -n 1000000 -r 5,10000 -k exact,numeric\n", prog, prog, prog);
}

static double
now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint32_t
s_rand (uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t) (rng % n);
}

//  --------------------------------------------------------------------------
//  Events: store sales as the broker publishes them

#define N_EVENTS 1024

static const char *categories [] = { "Monitors", "Camera", "Projectors", "Tablets", "Books",
                                     "Shoes", "Speakers", "Notebooks", "Groceries", "Toys" };
static const char *first_names [] = { "Sylvara", "Orin", "Maelis", "Tamsin", "Corvin", "Ysolde" };
static const char *last_names [] = { "Moonbrook", "Ashdown", "Fairweather", "Holloway", "Quill" };

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body (pk, s, strlen (s));
}

static void
s_pack_event (msgpack_packer *pk, int i)
{
    char buf [128];
    msgpack_pack_map (pk, 9);
    s_str (pk, "version");      s_str (pk, "0");
    s_str (pk, "id");
    snprintf (buf, sizeof (buf), "%08x-ce29-43c2-b0b8-%012x", s_rand (0xFFFFFFFF), s_rand (0xFFFFFFF));
    s_str (pk, buf);
    s_str (pk, "detail-type");  s_str (pk, s_rand (3)? "sales-events": "inventory-events");
    s_str (pk, "source");       s_str (pk, "zbridge.store-producer");
    s_str (pk, "account");      s_str (pk, "000000000000");
    s_str (pk, "time");         s_str (pk, "2026-11-26T17:44:59Z");
    s_str (pk, "region");       s_str (pk, "local");
    s_str (pk, "resources");
    msgpack_pack_array (pk, 1);
    snprintf (buf, sizeof (buf), "arn:zb:store:local:000000000000:store/store_%u", s_rand (10));
    s_str (pk, buf);
    s_str (pk, "detail");
    msgpack_pack_map (pk, 9);
    s_str (pk, "request_id");
    snprintf (buf, sizeof (buf), "%08x-73af-4965-8d0f-%012x", s_rand (0xFFFFFFFF), s_rand (0xFFFFFFF));
    s_str (pk, buf);
    s_str (pk, "name");
    snprintf (buf, sizeof (buf), "%s %s", first_names [s_rand (6)], last_names [s_rand (5)]);
    s_str (pk, buf);
    s_str (pk, "category");     s_str (pk, categories [s_rand (10)]);
    s_str (pk, "store_id");
    snprintf (buf, sizeof (buf), "store_%u", s_rand (10));
    s_str (pk, buf);
    s_str (pk, "sales");        msgpack_pack_double (pk, s_rand (10000) / 100.0);
    s_str (pk, "new_order");    (s_rand (2)? msgpack_pack_true: msgpack_pack_false) (pk);
    s_str (pk, "source_ip");
    snprintf (buf, sizeof (buf), "10.%u.%u.%u", s_rand (40), s_rand (256), s_rand (256));
    s_str (pk, buf);
    s_str (pk, "note");         s_str (pk, i % 7? "ok": "");
    s_str (pk, "items");
    uint32_t n = 1 + s_rand (3);
    msgpack_pack_array (pk, n);
    for (uint32_t k = 0; k < n; k++) {
        msgpack_pack_map (pk, 3);
        s_str (pk, "sku");
        snprintf (buf, sizeof (buf), "SKU%04u", s_rand (10000));
        s_str (pk, buf);
        s_str (pk, "qty");      msgpack_pack_int (pk, (int) (1 + s_rand (5)));
        s_str (pk, "price");    msgpack_pack_double (pk, s_rand (5000) / 100.0);
    }
    (void) i;
}

//  --------------------------------------------------------------------------
//  Pattern kinds: pattern i of n

typedef void (*s_make_fn) (char *out, size_t size, int i, int n);

static void
s_exact (char *out, size_t size, int i, int n)
{
    (void) n;
    snprintf (out, size, "{\"detail\": {\"store_id\": [\"store_%d\"]}}", i);
}

static void
s_prefix (char *out, size_t size, int i, int n)
{
    (void) n;
    //  "arn:...store/store_1" also prefixes store_1x...: only exact ids exist
    snprintf (out, size, "{\"resources\": [{\"prefix\": \"arn:zb:store:local:000000000000:store/store_%d\"}]}", i);
}

static void
s_suffix (char *out, size_t size, int i, int n)
{
    (void) n;
    snprintf (out, size, "{\"detail\": {\"name\": [{\"suffix\": \" %s%d\"}]}}",
              i < 5? last_names [i]: "Nobody", i);
    if (i < 5)      //  the real names, without the number
        snprintf (out, size, "{\"detail\": {\"name\": [{\"suffix\": \" %s\"}]}}", last_names [i]);
}

static void
s_ignore_case (char *out, size_t size, int i, int n)
{
    (void) n;
    if (i < 10) {
        char upper [32];
        size_t k = 0;
        for (; categories [i][k]; k++)
            upper [k] = (char) (categories [i][k] & ~0x20);
        upper [k] = 0;
        snprintf (out, size, "{\"detail\": {\"category\": [{\"equals-ignore-case\": \"%s\"}]}}", upper);
    }
    else
        snprintf (out, size, "{\"detail\": {\"category\": [{\"equals-ignore-case\": \"CATEGORY-%d\"}]}}", i);
}

static void
s_numeric (char *out, size_t size, int i, int n)
{
    //  n disjoint ranges covering [0, 100): one match per event
    double lo = 100.0 * i / n, hi = 100.0 * (i + 1) / n;
    snprintf (out, size, "{\"detail\": {\"sales\": [{\"numeric\": [\">=\", %.17g, \"<\", %.17g]}]}}", lo, hi);
}

static void
s_cidr (char *out, size_t size, int i, int n)
{
    (void) n;
    //  /16 blocks 10.0-39.x: the events'; the others never match
    snprintf (out, size, "{\"detail\": {\"source_ip\": [{\"cidr\": \"%d.%d.0.0/16\"}]}}", 10 + i / 256, i % 256);
}

static void
s_exists (char *out, size_t size, int i, int n)
{
    (void) n;
    if (i == 0)
        snprintf (out, size, "{\"detail\": {\"store_id\": [{\"exists\": true}]}}");
    else
        snprintf (out, size, "{\"detail\": {\"field_%d\": [{\"exists\": true}]}}", i);
}

static void
s_wildcard (char *out, size_t size, int i, int n)
{
    (void) n;
    if (i < 6)
        snprintf (out, size, "{\"detail\": {\"name\": [{\"wildcard\": \"%s *\"}]}}", first_names [i]);
    else
        snprintf (out, size, "{\"detail\": {\"name\": [{\"wildcard\": \"N%d*e*%d\"}]}}", i, i);
}

static void
s_anything_but (char *out, size_t size, int i, int n)
{
    (void) n;
    snprintf (out, size, "{\"detail\": {\"store_id\": [{\"anything-but\": [\"store_%d\"]}]}}", i);
}

static void
s_mixed_or (char *out, size_t size, int i, int n)
{
    (void) n;
    snprintf (out, size, "{\"detail-type\": [\"sales-events\"], \"detail\": {\"store_id\": [\"store_%d\"],"
              " \"$or\": [{\"sales\": [{\"numeric\": [\">\", %d]}]}, {\"category\": [\"Books\"]},"
              " {\"new_order\": [false]}]}}", i, 90 + i % 10);
}

static void
s_array (char *out, size_t size, int i, int n)
{
    (void) n;
    snprintf (out, size, "{\"detail\": {\"items\": {\"sku\": [\"SKU%04d\"], \"qty\": [{\"numeric\": [\">=\", 3]}]}}}",
              i % 10000);
}

typedef struct {
    const char *name;
    s_make_fn make;
} s_kind_t;

static const s_kind_t kinds [] = {
    { "exact", s_exact },
    { "prefix", s_prefix },
    { "suffix", s_suffix },
    { "ignore-case", s_ignore_case },
    { "numeric", s_numeric },
    { "cidr", s_cidr },
    { "exists", s_exists },
    { "wildcard", s_wildcard },
    { "anything-but", s_anything_but },
    { "mixed-or", s_mixed_or },
    { "array", s_array },
};
#define N_KINDS (sizeof (kinds) / sizeof (kinds [0]))

static bool
s_in_list (const char *list, const char *name)
{
    if (!list)
        return true;
    size_t len = strlen (name);
    for (const char *p = list; *p; ) {
        const char *end = strchr (p, ',');
        size_t n = end? (size_t) (end - p): strlen (p);
        if (n == len && !memcmp (p, name, n))
            return true;
        p += n + (end? 1: 0);
    }
    return false;
}

int
main (int argc, char **argv)
{
    long matches = 200000;
    const char *rule_list = "10,1000,10000";
    const char *kind_list = NULL;
    static struct option options [] = {
        { "matches", required_argument, NULL, 'n' },
        { "rules", required_argument, NULL, 'r' },
        { "kinds", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, ":n:r:k:hV", options, NULL)) != -1) {
        switch (opt) {
            case 'n':
                matches = atol (optarg);
                if (matches < 1) {
                    fprintf (stderr, "%s: --matches must be a positive number\n", prog);
                    return 2;
                }
                break;
            case 'r': rule_list = optarg; break;
            case 'k': kind_list = optarg; break;
            case 'h': usage (stdout); return 0;
            case 'V': printf ("%s %s\n", prog, ZB_VERSION); return 0;
            default:
                fprintf (stderr, "%s: bad option or missing value: %s\n", prog, argv [optind - 1]);
                usage (stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument %s\n", prog, argv [optind]);
        return 2;
    }
    if (kind_list) {
        //  Check the names first, so that a typo does not print an empty table
        for (const char *p = kind_list; *p; ) {
            const char *end = strchr (p, ',');
            size_t n = end? (size_t) (end - p): strlen (p);
            bool known = false;
            for (size_t i = 0; i < N_KINDS; i++)
                known |= strlen (kinds [i].name) == n && !memcmp (kinds [i].name, p, n);
            if (!known) {
                fprintf (stderr, "%s: unknown kind %.*s\n", prog, (int) n, p);
                return 2;
            }
            p += n + (end? 1: 0);
        }
    }
    int counts [16];
    int n_counts = 0;
    for (const char *p = rule_list; *p && n_counts < 16; ) {
        counts [n_counts] = atoi (p);
        if (counts [n_counts] < 1) {
            fprintf (stderr, "%s: --rules takes positive counts, comma-separated\n", prog);
            return 2;
        }
        n_counts++;
        const char *comma = strchr (p, ',');
        p = comma? comma + 1: p + strlen (p);
    }

    //  The events, packed and decoded once
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    size_t offsets [N_EVENTS + 1];
    for (int i = 0; i < N_EVENTS; i++) {
        offsets [i] = sbuf.size;
        s_pack_event (&pk, i);
    }
    offsets [N_EVENTS] = sbuf.size;
    msgpack_unpacked *events = calloc (N_EVENTS, sizeof (msgpack_unpacked));
    if (!events)
        return 1;
    for (int i = 0; i < N_EVENTS; i++) {
        size_t off = offsets [i];
        msgpack_unpacked_init (&events [i]);
        if (msgpack_unpack_next (&events [i], sbuf.data, offsets [i + 1], &off) != MSGPACK_UNPACK_SUCCESS) {
            fprintf (stderr, "%s: cannot decode event %d\n", prog, i);
            return 1;
        }
    }
    printf ("%s: %d store events (%.0f bytes of msgpack on average), %ld matches per run, "
            "fastest of 3 runs, single thread\n\n",
            prog, N_EVENTS, (double) sbuf.size / N_EVENTS, matches);
    printf ("%-14s %8s %10s %12s %14s %12s\n", "kind", "rules", "ns/match", "events/s", "matched/event",
            "build ms");

    const char *names [16384];
    for (size_t k = 0; k < N_KINDS; k++) {
        if (!s_in_list (kind_list, kinds [k].name))
            continue;
        for (int c = 0; c < n_counts; c++) {
            int n = counts [c];
            zb_patterns_t *set = zb_patterns_new ();
            if (!set)
                return 1;
            for (int i = 0; i < n; i++) {
                char pattern [512], name [32], err [256];
                kinds [k].make (pattern, sizeof (pattern), i, n);
                snprintf (name, sizeof (name), "%s-%d", kinds [k].name, i);
                if (zb_patterns_add (set, name, pattern, strlen (pattern), err, sizeof (err))) {
                    fprintf (stderr, "%s: pattern %s rejected: %s\n", prog, pattern, err);
                    return 1;
                }
            }
            //  The first match builds the index
            double start = now_s ();
            size_t matched = zb_patterns_match (set, &events [0].data, names, 16384);
            double build = now_s () - start;
            //  Warm up, then time
            for (int i = 0; i < N_EVENTS; i++)
                zb_patterns_match (set, &events [i].data, names, 16384);
            //  The fastest of three runs: the least disturbed by other work
            double elapsed = 0;
            for (int run = 0; run < 3; run++) {
                matched = 0;
                start = now_s ();
                for (long m = 0; m < matches; m++)
                    matched += zb_patterns_match (set, &events [m % N_EVENTS].data, names, 16384);
                double took = now_s () - start;
                if (run == 0 || took < elapsed)
                    elapsed = took;
            }
            printf ("%-14s %8d %10.0f %12.0f %14.2f %12.2f\n", kinds [k].name, n,
                    elapsed * 1e9 / (double) matches, (double) matches / elapsed,
                    (double) matched / (double) matches, build * 1e3);
            fflush (stdout);
            zb_patterns_destroy (&set);
        }
    }
    for (int i = 0; i < N_EVENTS; i++)
        msgpack_unpacked_destroy (&events [i]);
    free (events);
    msgpack_sbuffer_destroy (&sbuf);
    return 0;
}
