/*  zb-producer - the store load generator: puts events into the bus.

    Events come from the seeded generator (generator.c) or from a file of JSON
    lines (entryfile.c). They go to the broker through libzbridge's producer
    (zbridge.h, lib/producer.c): PUT requests of --batch entries, pipelined on
    one DEALER, up to --window requests in flight, replies matched by
    correlation id, so the producer never waits for one reply before sending
    the next request.

    The generated path involves no JSON. --rate paces entries with a token
    bucket; the waits happen in zbridge_producer_poll, so replies are read
    while we wait.

    Every entry carries an idempotency key, "<run-id>-<n>" (the run id is new
    for every run, even with the same --seed; --file lines may bring their
    own). A request not answered within --retry-ms is resent by the library
    with the same entries and keys under a new correlation id, and entries
    answered InternalFailure are resent with a growing pause; the broker
    stores each key once, so a resend never makes a second event. Each entry
    gets one result, counted here. A broker killed and restarted is survived:
    the DEALER reconnects by itself and what was lost with the old connection
    is resent after --retry-ms.

    At the end, exactly one JSON line on stdout:
    {"status":true,"tot_msgs":N,"bad_msgs":B,"sale_evnts":S,"inventory_evnts":I,
     "acked":A,"failed":F,"retried":R,"duplicates":D}
    where acked + failed == tot_msgs: every event read or generated either got
    an id from the broker, or failed (rejected locally, rejected by the broker,
    or never answered). retried counts entries sent again, duplicates the
    entries the broker had already stored (answered "duplicate": true; they
    count as acked). */

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <msgpack.h>
#include <zbridge.h>

#include "cli.h"
#include "curve.h"              //  ZB_CURVE_CLIENT_HELP only: the library applies the keys
#include "entryfile.h"
#include "event.h"              //  zb_format_u64
#include "generator.h"
#include "zb.h"

#define PROG "zb-producer"

//  Entry errors (and request errors) logged one by one; beyond, only counted
#define LOG_LIMIT           10
//  Refresh period of the progress line on a terminal
#define PROGRESS_MS         500
//  After SIGINT, how long we still wait for the replies in flight
#define DRAIN_MS            500
//  The token bucket holds at most this much time's worth of entries, so that
//  a stall (a full window) is not followed by an unbounded catch-up burst
#define RATE_BURST_S        0.05
//  With --rate, a partial batch goes out when a full one is this far away
#define RATE_PARTIAL_S      0.010
//  Upper bounds for the flags: sanity, not protocol limits
#define MAX_BATCH           100000
#define MAX_WINDOW          100000
//  Resend a request not answered within this (--retry-ms)
#define DEFAULT_RETRY_MS    1000
//  Sends of one request after the first (--retries)
#define DEFAULT_RETRIES     10

typedef struct {
    //  Options
    const char *endpoint;
    const char *curve_server;   //  --curve-server, --curve-cert, --max-msg-size
    const char *curve_cert;
    int64_t max_msg_size;
    uint64_t count;
    bool count_given;
    double rate;                //  entries per second, 0: unpaced
    size_t batch;
    double bad_ratio;
    uint64_t seed;
    bool seed_given;
    const char *file;
    size_t window;
    unsigned timeout_s;         //  0: wait forever
    unsigned retry_ms;
    unsigned retries;
    bool quiet;

    //  Machinery
    zbridge_producer_t *producer;
    zb_generator_t *generator;
    zb_entryfile_t *entryfile;
    char run_id [17];           //  idempotency keys: "<run_id>-<n>"
    msgpack_sbuffer entry;      //  the entry being packed, reused
    msgpack_packer pk;
    bool input_done;

    //  Counters
    uint64_t tot_msgs;
    uint64_t bad_msgs;
    uint64_t sale_evnts;
    uint64_t inventory_evnts;
    uint64_t acked;
    uint64_t failed;
    uint64_t duplicates;        //  results with "duplicate": true
    uint64_t entry_errors;      //  entries the broker rejected

    //  Outcome
    bool ok;
    char error [512];

    //  Timing
    double tokens;
    double refilled_at;         //  seconds, monotonic

    //  Progress line
    bool progress;
    bool progress_shown;
    int64_t progress_at_ms;
    uint64_t progress_sent;
} producer_t;

static producer_t *s_self;      //  for s_log's progress-line handling

static void
s_log (const char *format, ...)
{
    if (s_self && s_self->progress_shown) {
        fputs ("\r\033[K", stderr);
        s_self->progress_shown = false;
    }
    va_list args;
    va_start (args, format);
    fprintf (stderr, PROG ": ");
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int64_t
s_mono_ms (void)
{
    return (int64_t) (s_now () * 1000);
}

static void
s_fail (producer_t *self, const char *format, ...)
{
    if (!self->ok)
        return;                 //  keep the first reason
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    self->ok = false;
}

//  ---------------------------------------------------------------------------
//  Command line

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: " PROG " [options]\n"
        "Put store events into the zbridge broker: generated ones (a reproducible\n"
        "load generator) or PutEvents entries from a file of JSON lines.\n\n"
        "Options:\n"
        "      --connect EP      broker ingest endpoint (default " ZB_DEFAULT_INGEST ")\n"
        "  -n, --count N         events to send (default 5; with --file: all lines,\n"
        "                        or the first N when given)\n"
        "  -r, --rate N          events per second, 0 = as fast as possible (default 0)\n"
        "  -b, --batch N         entries per PUT request (default 10)\n"
        "      --bad-ratio F     fraction of bad events (no store_id), 0..1 (default 0.1)\n"
        "      --seed N          PRNG seed for a reproducible run (default: from the clock)\n"
        "      --file PATH|-     send entries from JSON lines (- is stdin) instead of\n"
        "                        generating them; one entry per line:\n"
        "                        {\"Source\":..,\"DetailType\":..,\"Detail\":..,\"Resources\":[..],\"Time\":..}\n"
        "                        (lowercase envelope keys, as zb-consumer prints them, work too)\n"
        "  -w, --window N        PUT requests in flight (default 16)\n"
        "  -t, --timeout SECS    give up when the broker has not answered for this long\n"
        "                        (default 10; 0 = wait forever)\n"
        "      --retry-ms MS     resend a request not answered within MS milliseconds,\n"
        "                        same entries, same idempotency keys (default 1000)\n"
        "      --retries N       resends of one request before its entries count as\n"
        "                        failed (default 10); InternalFailure entries are\n"
        "                        resent too, after a pause growing from 100 ms to 5 s;\n"
        "                        so are ThrottlingException ones (the broker's rate limit)\n"
        "  -q, --quiet           no progress line\n"
        "  -h, --help            show this help\n"
        "  -V, --version         show the version\n"
        ZB_CURVE_CLIENT_HELP "\n"
        "At the end one JSON line goes to stdout:\n"
        "  {\"status\":true,\"tot_msgs\":N,\"bad_msgs\":B,\"sale_evnts\":S,\"inventory_evnts\":I,"
        "\"acked\":A,\"failed\":F,\n   \"retried\":R,\"duplicates\":D}\n"
        "Every entry carries an idempotency key (\"<run-id>-<n>\"; --file lines may give\n"
        "their own with IdempotencyKey): the broker stores a resent entry only once.\n"
        "Exit status: 0 when status is true, 1 otherwise, 2 on a usage error.\n\n"
        "Examples:\n"
        "  " PROG "                                   # 5 events to the local broker\n"
        "  " PROG " -n 100000 -b 50 -w 32 -q           # a load test\n"
        "  " PROG " -n 2000 --seed 7 --rate 500        # reproducible, paced\n"
        "  " PROG " -n 50000 --retry-ms 200 --retries 100   # rides out a broker restart\n"
        "  " PROG " --file entries.jsonl\n"
        "  zb-consumer -t sales-events -n 10 | " PROG " --file -   # replay events\n");
}

//  -1 to run, else the exit code
static int
s_parse_args (producer_t *self, int argc, char **argv)
{
    enum { OPT_CONNECT = 256, OPT_BAD_RATIO, OPT_SEED, OPT_FILE, OPT_RETRY_MS, OPT_RETRIES,
           OPT_CURVE_SERVER, OPT_CURVE_CERT, OPT_MAX_MSG };
    static const struct option options [] = {
        { "connect",   required_argument, NULL, OPT_CONNECT },
        { "count",     required_argument, NULL, 'n' },
        { "rate",      required_argument, NULL, 'r' },
        { "batch",     required_argument, NULL, 'b' },
        { "bad-ratio", required_argument, NULL, OPT_BAD_RATIO },
        { "seed",      required_argument, NULL, OPT_SEED },
        { "file",      required_argument, NULL, OPT_FILE },
        { "window",    required_argument, NULL, 'w' },
        { "timeout",   required_argument, NULL, 't' },
        { "retry-ms",  required_argument, NULL, OPT_RETRY_MS },
        { "retries",   required_argument, NULL, OPT_RETRIES },
        { "curve-server", required_argument, NULL, OPT_CURVE_SERVER },
        { "curve-cert",   required_argument, NULL, OPT_CURVE_CERT },
        { "max-msg-size", required_argument, NULL, OPT_MAX_MSG },
        { "quiet",     no_argument,       NULL, 'q' },
        { "help",      no_argument,       NULL, 'h' },
        { "version",   no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    self->endpoint = ZB_DEFAULT_INGEST;
    self->count = 5;
    self->batch = 10;
    self->bad_ratio = 0.1;
    self->window = 16;
    self->timeout_s = 10;
    self->retry_ms = DEFAULT_RETRY_MS;
    self->retries = DEFAULT_RETRIES;

    opterr = 0;
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, ":n:r:b:w:t:qhV", options, NULL)) != -1) {
        switch (opt) {
            case OPT_CONNECT:
                self->endpoint = optarg;
                break;
            case 'n':
                if (!zb_cli_parse_u64 (optarg, &self->count))
                    return zb_cli_usage_error (PROG, "--count wants a number >= 0, not '%s'",
                                               optarg);
                self->count_given = true;
                break;
            case 'r':
                if (!zb_cli_parse_double (optarg, &self->rate) || self->rate < 0)
                    return zb_cli_usage_error (PROG, "--rate wants events per second >= 0, "
                                               "not '%s'", optarg);
                break;
            case 'b':
                if (!zb_cli_parse_range (optarg, 1, MAX_BATCH, &value))
                    return zb_cli_usage_error (PROG, "--batch wants a number from 1 to %d, "
                                               "not '%s'", MAX_BATCH, optarg);
                self->batch = (size_t) value;
                break;
            case OPT_BAD_RATIO:
                if (!zb_cli_parse_double (optarg, &self->bad_ratio)
                ||  self->bad_ratio < 0 || self->bad_ratio > 1)
                    return zb_cli_usage_error (PROG, "--bad-ratio wants a fraction from 0 to 1, "
                                               "not '%s'", optarg);
                break;
            case OPT_SEED:
                if (!zb_cli_parse_u64 (optarg, &self->seed))
                    return zb_cli_usage_error (PROG, "--seed wants an unsigned 64-bit number, "
                                               "not '%s'", optarg);
                self->seed_given = true;
                break;
            case OPT_FILE:
                self->file = optarg;
                break;
            case 'w':
                if (!zb_cli_parse_range (optarg, 1, MAX_WINDOW, &value))
                    return zb_cli_usage_error (PROG, "--window wants a number from 1 to %d, "
                                               "not '%s'", MAX_WINDOW, optarg);
                self->window = (size_t) value;
                break;
            case 't':
                if (!zb_cli_parse_range (optarg, 0, 24 * 3600, &value))
                    return zb_cli_usage_error (PROG, "--timeout wants seconds from 0 to 86400, "
                                               "not '%s'", optarg);
                self->timeout_s = (unsigned) value;
                break;
            case OPT_RETRY_MS:
                if (!zb_cli_parse_range (optarg, 1, 3600 * 1000, &value))
                    return zb_cli_usage_error (PROG, "--retry-ms wants milliseconds from 1 to "
                                               "3600000, not '%s'", optarg);
                self->retry_ms = (unsigned) value;
                break;
            case OPT_RETRIES:
                if (!zb_cli_parse_range (optarg, 0, 1000000, &value))
                    return zb_cli_usage_error (PROG, "--retries wants a number from 0 to 1000000, "
                                               "not '%s'", optarg);
                self->retries = (unsigned) value;
                break;
            case OPT_CURVE_SERVER: self->curve_server = optarg; break;
            case OPT_CURVE_CERT: self->curve_cert = optarg; break;
            case OPT_MAX_MSG:
                if (!zb_cli_parse_range (optarg, 1024, 1ULL << 40, &value))
                    return zb_cli_usage_error (PROG, "--max-msg-size wants bytes from 1024 to "
                                               "2^40, not '%s'", optarg);
                self->max_msg_size = (int64_t) value;
                break;
            case 'q':
                self->quiet = true;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf (PROG " %s\n", ZB_VERSION);
                return 0;
            default:
                return zb_cli_option_error (PROG, opt, argv);
        }
    }
    if (optind < argc)
        return zb_cli_usage_error (PROG, "unexpected argument '%s'", argv [optind]);
    if (!self->curve_server != !self->curve_cert)
        return zb_cli_curve_pair_error (PROG, self->curve_server != NULL);
    return -1;
}

//  ---------------------------------------------------------------------------
//  Results

//  The library's on_result: every entry sent gets exactly one.
static void
s_on_result (void *arg, const zbridge_result_t *result)
{
    producer_t *self = (producer_t *) arg;
    if (result->status == ZBRIDGE_OK) {
        self->acked++;
        if (result->duplicate)
            self->duplicates++;
        return;
    }
    self->failed++;
    if (result->status != ZBRIDGE_EREJECTED)
        return;                 //  a request error: the library logged it
    self->entry_errors++;
    if (self->entry_errors > LOG_LIMIT)
        return;
    char where [48] = "";
    if (self->file)
        snprintf (where, sizeof where, " (line %" PRIu64 ")", result->tag);
    s_log ("entry rejected: %s: %s%s", result->code, result->message, where);
}

static void
s_lib_log (void *arg, const char *line)
{
    (void) arg;
    s_log ("%s", line);
}

//  ---------------------------------------------------------------------------
//  Requests

//  Entries still to generate or read (SIZE_MAX: until end of file).
static uint64_t
s_remaining (producer_t *self)
{
    if (self->input_done)
        return 0;
    if (self->file && !self->count_given)
        return UINT64_MAX;
    return self->count > self->tot_msgs? self->count - self->tot_msgs: 0;
}

//  How many entries may go now under --rate; 0 with *wait_ms set when none.
static size_t
s_paced (producer_t *self, size_t want, long *wait_ms)
{
    if (self->rate == 0)
        return want;
    double now = s_now ();
    double cap = fmax ((double) self->batch, self->rate * RATE_BURST_S);
    self->tokens = fmin (cap, self->tokens + (now - self->refilled_at) * self->rate);
    self->refilled_at = now;
    if (self->tokens >= (double) want)
        return want;
    double full_in = ((double) want - self->tokens) / self->rate;
    if (self->tokens >= 1 && full_in > RATE_PARTIAL_S)
        return (size_t) self->tokens;
    double until = self->tokens >= 1? full_in: (1 - self->tokens) / self->rate;
    *wait_ms = (long) ceil (until * 1000);
    if (*wait_ms < 1)
        *wait_ms = 1;
    return 0;
}

static void
s_count_detail_type (producer_t *self, zb_str_t detail_type)
{
    if (detail_type.len == 12 && memcmp (detail_type.ptr, "sales-events", 12) == 0)
        self->sale_evnts++;
    else
    if (detail_type.len == 16 && memcmp (detail_type.ptr, "inventory-events", 16) == 0)
        self->inventory_evnts++;
}

//  "<run_id>-<n>" into key (room for 16 + 1 + 20 bytes); returns its length.
//  Written by hand: snprintf was an eighth of the producer's time.
static size_t
s_format_key (const char *run_id, uint64_t n, char *key)
{
    size_t len = strlen (run_id);
    memcpy (key, run_id, len);
    key [len++] = '-';
    return len + zb_format_u64 (n, key + len);
}

//  Queue up to n generated entries; returns how many.
static size_t
s_build_generated (producer_t *self, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        zb_generated_t info;
        char key [48];
        size_t keylen = s_format_key (self->run_id, self->tot_msgs + 1, key);
        msgpack_sbuffer_clear (&self->entry);
        zb_generator_pack_keyed (self->generator, &self->pk, key, keylen, &info);
        self->tot_msgs++;
        if (info.sale)
            self->sale_evnts++;
        else
            self->inventory_evnts++;
        if (info.bad)
            self->bad_msgs++;
        int rc = zbridge_producer_send_msgpack (self->producer, self->entry.data,
                                                self->entry.size, 0);
        if (rc != ZBRIDGE_OK) {
            s_fail (self, "%s", zbridge_producer_error (self->producer));
            return i + 1;
        }
    }
    return n;
}

//  Queue up to n valid entries from the file; returns how many. Rejected
//  lines are counted and logged here and never sent.
static size_t
s_build_from_file (producer_t *self, size_t n)
{
    size_t taken = 0;
    char err [600];
    while (taken < n && s_remaining (self) > 0) {
        zb_entryinfo_t info;
        msgpack_sbuffer_clear (&self->entry);
        int rc = zb_entryfile_next (self->entryfile, &self->entry, &info, err, sizeof err);
        if (rc == 1) {
            taken++;
            self->tot_msgs++;
            s_count_detail_type (self, info.detail_type);
            if (zbridge_producer_send_msgpack (self->producer, self->entry.data,
                                               self->entry.size, info.line) != ZBRIDGE_OK) {
                s_fail (self, "%s", zbridge_producer_error (self->producer));
                self->input_done = true;
                break;
            }
        }
        else
        if (rc == -1) {
            self->tot_msgs++;
            self->bad_msgs++;
            self->failed++;
            s_log ("%s", err);
        }
        else {
            self->input_done = true;
            if (rc == -2 && !zbridge_interrupted ()) {
                s_log ("%s", err);
                s_fail (self, "%s", err);
            }
        }
    }
    if (self->count_given && self->tot_msgs >= self->count)
        self->input_done = true;
    return taken;
}

//  Queue and send one request of at most n entries. false when nothing more
//  can be sent now (no input left, or the send failed).
static bool
s_send_request (producer_t *self, size_t n)
{
    size_t taken = self->file? s_build_from_file (self, n): s_build_generated (self, n);
    if (s_remaining (self) == 0)
        self->input_done = true;
    if (taken == 0)
        return false;
    if (self->rate > 0)
        self->tokens -= (double) taken;
    if (zbridge_producer_submit (self->producer) != ZBRIDGE_OK) {
        s_fail (self, "%s", zbridge_producer_error (self->producer));
        self->input_done = true;
        return false;
    }
    return self->ok;
}

//  ---------------------------------------------------------------------------
//  The run

static zbridge_producer_stats_t
s_stats (producer_t *self)
{
    zbridge_producer_stats_t stats = { 0 };
    zbridge_producer_stats (self->producer, &stats);      //  NULL: stays 0
    return stats;
}

static void
s_show_progress (producer_t *self)
{
    if (!self->progress)
        return;
    int64_t now = s_mono_ms ();
    if (now - self->progress_at_ms < PROGRESS_MS)
        return;
    double seconds = (double) (now - self->progress_at_ms) / 1000.0;
    double rate = seconds > 0? (double) (s_stats (self).sent - self->progress_sent) / seconds: 0;
    fprintf (stderr, "\r\033[K" PROG ": %.0f ev/s  sent %" PRIu64 "  acked %" PRIu64
             "  failed %" PRIu64, rate, s_stats (self).sent, self->acked, self->failed);
    fflush (stderr);
    self->progress_shown = true;
    self->progress_at_ms = now;
    self->progress_sent = s_stats (self).sent;
}


//  A status from the library's waits: a timeout or a failed resend ends the
//  run (what was in flight has its results); true to go on.
static bool
s_check (producer_t *self, int rc)
{
    if (rc == ZBRIDGE_OK || rc == ZBRIDGE_EINTR)
        return true;
    s_fail (self, "%s", zbridge_producer_error (self->producer));
    return false;
}

static void
s_run (producer_t *self)
{
    double started = s_now ();
    self->refilled_at = started;
    self->tokens = 1;
    self->progress_at_ms = s_mono_ms ();
    //  After a failure (read error, send error) nothing more is sent, but the
    //  replies in flight are still collected; a timeout ends the loop at once.
    while (!zbridge_interrupted ()) {
        if (!s_check (self, zbridge_producer_poll (self->producer, 0)))
            break;

        //  Send while the window, the rate and the input allow
        long wait_ms = -1;
        while (!self->input_done && s_stats (self).requests < self->window && self->ok
        &&     !zbridge_interrupted ()) {
            uint64_t remaining = s_remaining (self);
            size_t want = remaining < self->batch? (size_t) remaining: self->batch;
            if (want == 0) {
                self->input_done = true;
                break;
            }
            size_t n = s_paced (self, want, &wait_ms);
            if (n == 0)
                break;
            if (!s_send_request (self, n))
                break;
        }
        zbridge_producer_stats_t stats = s_stats (self);
        if (self->input_done && stats.requests == 0)
            break;              //  all sent, all answered

        //  Wait for a reply, the next token, or the next progress refresh
        int64_t now = s_mono_ms ();
        bool waiting = stats.requests > 0;
        if (self->progress) {
            long until = (long) (self->progress_at_ms + PROGRESS_MS - now);
            if (until < 1)
                until = 1;
            if (wait_ms < 0 || until < wait_ms)
                wait_ms = until;
        }
        if (wait_ms < 0 && !waiting && self->input_done)
            break;
        if (!s_check (self, zbridge_producer_poll (self->producer, wait_ms < 0? 250:
                                                   (int) wait_ms)))
            break;
        s_show_progress (self);
    }
    if (zbridge_interrupted ()) {
        s_fail (self, "interrupted");
        //  Give the replies in flight a moment so that acked is accurate
        int64_t until = s_mono_ms () + DRAIN_MS;
        while (s_stats (self).requests > 0) {
            long left = (long) (until - s_mono_ms ());
            if (left <= 0)
                break;
            zbridge_producer_poll (self->producer, (int) left);
        }
    }
    //  Whatever is still in flight (or queued) was never answered
    zbridge_producer_stats_t stats = s_stats (self);
    self->failed += stats.in_flight + stats.queued;
    double seconds = s_now () - started;
    s_log ("%s%s%s: %" PRIu64 " events, %" PRIu64 " acked, %" PRIu64 " failed in %.2f s "
           "(%.0f ev/s)", self->ok? "done": "stopped (", self->ok? "": self->error,
           self->ok? "": ")", self->tot_msgs, self->acked, self->failed, seconds,
           seconds > 0? (double) self->acked / seconds: 0.0);
    if (self->entry_errors > LOG_LIMIT)
        s_log ("%" PRIu64 " more entry errors not shown", self->entry_errors - LOG_LIMIT);
    if (stats.request_errors > LOG_LIMIT)
        s_log ("%" PRIu64 " more request errors not shown", stats.request_errors - LOG_LIMIT);
    if (stats.stray_replies > LOG_LIMIT)
        s_log ("%" PRIu64 " more stray replies not shown", stats.stray_replies - LOG_LIMIT);
    if (stats.resends > LOG_LIMIT)
        s_log ("%" PRIu64 " more resends not shown", stats.resends - LOG_LIMIT);
    if (stats.retried || self->duplicates)
        s_log ("%" PRIu64 " entries resent, %" PRIu64 " answered as duplicates (stored once)",
               stats.retried, self->duplicates);
}

//  The run id of the idempotency keys: new for every run, even with the same
//  --seed (a rerun is new events, not a resend): the seed, the clock and the
//  pid, mixed (splitmix64's finalizer).
static void
s_make_run_id (producer_t *self)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t z = self->seed ^ ((uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec)
               ^ ((uint64_t) getpid () << 40);
    for (int round = 0; round < 2; round++) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    }
    snprintf (self->run_id, sizeof self->run_id, "%016" PRIx64, z);
}


static int
s_setup (producer_t *self)
{
    char err [512];
    s_make_run_id (self);
    if (self->file) {
        self->entryfile = zb_entryfile_open (self->file, err, sizeof err);
        if (!self->entryfile) {
            s_log ("%s", err);
            s_fail (self, "%s", err);
            return -1;
        }
        zb_entryfile_set_key_prefix (self->entryfile, self->run_id);
    }
    else {
        if (!self->seed_given) {
            struct timespec ts;
            clock_gettime (CLOCK_REALTIME, &ts);
            self->seed = ((uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec)
                       ^ ((uint64_t) getpid () << 32);
        }
        self->generator = zb_generator_new (self->seed, self->bad_ratio);
        assert (self->generator);
    }
    zbridge_producer_options_t options;
    zbridge_producer_options_init (&options);
    options.endpoint = self->endpoint;
    options.batch = self->batch;
    options.window = self->window;
    options.timeout_ms = (int) self->timeout_s * 1000;
    options.retry_ms = (int) self->retry_ms;
    options.retries = self->retries;
    options.key_prefix = self->run_id;
    options.on_result = s_on_result;
    options.log = s_lib_log;
    options.arg = self;
    options.curve_server = self->curve_server;
    options.curve_cert = self->curve_cert;
    options.max_msg_size = self->max_msg_size;
    zbridge_error_t error;
    self->producer = zbridge_producer_new (&options, &error);
    if (!self->producer) {
        s_fail (self, "%s", error.message);
        s_log ("%s", self->error);
        return -1;
    }
    msgpack_sbuffer_init (&self->entry);
    msgpack_packer_init (&self->pk, &self->entry, msgpack_sbuffer_write);

    char rate [32] = "unlimited";
    if (self->rate > 0)
        snprintf (rate, sizeof rate, "%g/s", self->rate);
    if (self->file)
        s_log ("sending entries from %s to %s (batch %zu, window %zu, rate %s, run %s)",
               strcmp (self->file, "-") == 0? "stdin": self->file, self->endpoint,
               self->batch, self->window, rate, self->run_id);
    else
        s_log ("sending %" PRIu64 " events to %s (batch %zu, window %zu, rate %s, "
               "bad-ratio %g, seed %" PRIu64 ", run %s)", self->count, self->endpoint,
               self->batch, self->window, rate, self->bad_ratio, self->seed, self->run_id);
    return 0;
}

static void
s_teardown (producer_t *self)
{
    if (self->producer)
        msgpack_sbuffer_destroy (&self->entry);
    zbridge_producer_destroy (&self->producer);
    zb_generator_destroy (&self->generator);
    zb_entryfile_destroy (&self->entryfile);
}

static void
s_print_result (producer_t *self)
{
    json_object *result = json_object_new_object ();
    json_object_object_add (result, "status", json_object_new_boolean (self->ok));
    if (!self->ok)
        json_object_object_add (result, "error_message", json_object_new_string (self->error));
    json_object_object_add (result, "tot_msgs", json_object_new_uint64 (self->tot_msgs));
    json_object_object_add (result, "bad_msgs", json_object_new_uint64 (self->bad_msgs));
    json_object_object_add (result, "sale_evnts", json_object_new_uint64 (self->sale_evnts));
    json_object_object_add (result, "inventory_evnts",
                            json_object_new_uint64 (self->inventory_evnts));
    json_object_object_add (result, "acked", json_object_new_uint64 (self->acked));
    json_object_object_add (result, "failed", json_object_new_uint64 (self->failed));
    json_object_object_add (result, "retried", json_object_new_uint64 (s_stats (self).retried));
    json_object_object_add (result, "duplicates", json_object_new_uint64 (self->duplicates));
    puts (json_object_to_json_string_ext (result, JSON_C_TO_STRING_PLAIN
                                                  | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush (stdout);
    json_object_put (result);
}


int
main (int argc, char **argv)
{
    zb_cli_tune_malloc ();
    producer_t self = { .ok = true };
    int rc = s_parse_args (&self, argc, argv);
    if (rc >= 0)
        return rc;
    s_self = &self;
    self.progress = !self.quiet && isatty (STDERR_FILENO);
    if (s_setup (&self) == 0)
        s_run (&self);
    if (zbridge_interrupted ())
        s_fail (&self, "interrupted");
    s_print_result (&self);
    s_teardown (&self);
    return self.ok? 0: 1;
}
