/*  zb-producer - the store load generator: puts events into the bus.

    Events come from the seeded generator (generator.c) or from a file of JSON
    lines (entryfile.c). They go to the broker's ingest socket in PUT requests
    of --batch entries, pipelined on one DEALER: up to --window requests are in
    flight, and replies are matched by correlation id (window.c), so the
    producer never waits for one reply before sending the next request.

    The request buffer is packed in place and reused for every request; the
    generated path involves no JSON and, after the first request, no heap
    allocation. --rate paces entries with a token bucket; the waits happen in
    zmq_poll on the socket, so replies are read while we wait.

    Every entry carries an idempotency key, "<run-id>-<n>" (the run id is new
    for every run, even with the same --seed; --file lines may bring their
    own). A request not answered within --retry-ms is resent with the same
    entries and keys under a new correlation id, and entries answered
    InternalFailure are resent with a growing pause; the broker stores each key
    once, so a resend never makes a second event. Each request keeps its packed
    entries in its window slot for that. A late reply to a correlation id that
    was superseded by a resend is ignored: an entry is counted once, when the
    reply to its current request comes. A broker killed and restarted is
    survived: the DEALER reconnects by itself and what was lost with the old
    connection is resent after --retry-ms.

    At the end, exactly one JSON line on stdout:
    {"status":true,"tot_msgs":N,"bad_msgs":B,"sale_evnts":S,"inventory_evnts":I,
     "acked":A,"failed":F,"retried":R,"duplicates":D}
    where acked + failed == tot_msgs: every event read or generated either got
    an id from the broker, or failed (rejected locally, rejected by the broker,
    or never answered). retried counts entries sent again, duplicates the
    entries the broker had already stored (answered "duplicate": true; they
    count as acked). */

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "entryfile.h"
#include "event.h"
#include "generator.h"
#include "window.h"
#include "curve.h"
#include "wire.h"

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
//  Pause before resending InternalFailure entries: doubled per attempt, capped
#define BACKOFF_MS          100
#define BACKOFF_MAX_MS      5000

//  A request in flight, beside its window slot: what to send again
typedef struct {
    uint64_t id;                //  current correlation id, 0: slot free
    msgpack_sbuffer body;       //  the PUT body: array header + entries
    size_t *offsets;            //  entry i is body [offsets [i], offsets [i + 1])
    size_t entries;
    unsigned sends;             //  times sent so far
    int64_t sent_ms;            //  last send (monotonic)
    int64_t due_ms;             //  0: waiting for the reply; else resend at
} request_t;

typedef struct {
    //  Options
    const char *endpoint;
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
    zsock_t *sock;
    void *handle;
    zb_generator_t *generator;
    zb_entryfile_t *entryfile;
    zb_window_t *inflight;
    request_t *requests;        //  per window slot
    char run_id [17];           //  idempotency keys: "<run_id>-<n>"
    size_t *offsets;            //  entry offsets of the request being built
    msgpack_sbuffer scratch;    //  a partial resend being built
    size_t *retry_scratch;      //  batch-sized scratch arrays for a reply
    size_t *lines_scratch;
    size_t *size_scratch;
    int64_t next_check_ms;      //  earliest resend due (0: none)
    msgpack_sbuffer request;    //  the PUT body being built, reused
    msgpack_packer pk;
    msgpack_sbuffer entries;    //  --file: entries of the next request
    size_t *lines;              //  --file: their line numbers
    msgpack_zone zone;          //  reply bodies, cleared per reply
    bool input_done;

    //  Counters
    uint64_t tot_msgs;
    uint64_t bad_msgs;
    uint64_t sale_evnts;
    uint64_t inventory_evnts;
    uint64_t acked;
    uint64_t failed;
    uint64_t sent;              //  entries sent to the broker
    uint64_t entry_errors;      //  entries the broker rejected
    uint64_t request_errors;    //  requests answered ERROR or unusable
    uint64_t stray_replies;
    uint64_t retried;           //  entries sent again
    uint64_t duplicates;        //  results with "duplicate": true
    uint64_t resend_logs;

    //  Outcome
    bool ok;
    char error [512];

    //  Timing
    int64_t last_reply_ms;      //  last progress from the broker
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
        ZB_CURVE_CLIENT_HELP
        "  -h, --help            show this help\n"
        "  -V, --version         show the version\n\n"
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
    enum { OPT_CONNECT = 256, OPT_BAD_RATIO, OPT_SEED, OPT_FILE, OPT_RETRY_MS, OPT_RETRIES };
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
        { "quiet",     no_argument,       NULL, 'q' },
        ZB_CURVE_CLIENT_OPTIONS,
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
            case 'q':
                self->quiet = true;
                break;
            case ZB_CURVE_OPT_SERVER:
            case ZB_CURVE_OPT_CERT:
            case ZB_CURVE_OPT_MAXMSG:
                if (zb_curve_client_option (PROG, opt, optarg) != 0)
                    return 2;
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
    int rc = zb_curve_client_setup (PROG);
    if (rc != 0)
        return rc;
    return -1;
}

//  ---------------------------------------------------------------------------
//  Replies

static void
s_entry_error (producer_t *self, const msgpack_object *result, const size_t *lines, size_t i)
{
    self->entry_errors++;
    if (self->entry_errors > LOG_LIMIT)
        return;
    const msgpack_object *code = zb_map_get (result, "code");
    const msgpack_object *message = zb_map_get (result, "message");
    char where [48] = "";
    if (lines)
        snprintf (where, sizeof where, " (line %zu)", lines [i]);
    s_log ("entry rejected: %.*s: %.*s%s",
           code && code->type == MSGPACK_OBJECT_STR? (int) code->via.str.size: 7,
           code && code->type == MSGPACK_OBJECT_STR? code->via.str.ptr: "unknown",
           message && message->type == MSGPACK_OBJECT_STR? (int) message->via.str.size: 10,
           message && message->type == MSGPACK_OBJECT_STR? message->via.str.ptr: "no message",
           where);
}

static void
s_request_error (producer_t *self, uint64_t id, const char *format, ...)
{
    self->request_errors++;
    if (self->request_errors > LOG_LIMIT)
        return;
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    s_log ("request %" PRIu64 " failed: %s", id, text);
}

static int64_t
s_backoff_ms (unsigned sends)
{
    int64_t wait = BACKOFF_MS;
    for (unsigned i = 1; i < sends && wait < BACKOFF_MAX_MS; i++)
        wait *= 2;
    return wait < BACKOFF_MAX_MS? wait: BACKOFF_MAX_MS;
}

static void
s_due (producer_t *self, int64_t at)
{
    if (self->next_check_ms == 0 || at < self->next_check_ms)
        self->next_check_ms = at;
}

//  The request in slot is done: its slot is free again
static void
s_release (producer_t *self, int slot)
{
    request_t *request = &self->requests [slot];
    zb_window_cancel (self->inflight, request->id);
    request->id = 0;
    request->due_ms = 0;
}

//  Keep only the entries keep [0 .. count-1] (indexes, ascending) of the
//  request in slot, for a resend after a pause; or give up on them when it
//  was sent too often already.
static void
s_retry_later (producer_t *self, int slot, const size_t *keep, size_t count,
               const size_t *lines, const char *why)
{
    request_t *request = &self->requests [slot];
    if (request->sends > self->retries) {
        self->failed += count;
        s_request_error (self, request->id, "%s; giving up on %zu entr%s after %u sends",
                         why, count, count == 1? "y": "ies", request->sends);
        s_release (self, slot);
        return;
    }
    size_t *kept_lines = self->lines_scratch;
    if (count < request->entries) {
        //  A partial resend: a new body with just these entries
        msgpack_sbuffer_clear (&self->scratch);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &self->scratch, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, count);
        size_t *offsets = request->offsets;
        size_t header = self->scratch.size;
        size_t at = header;
        for (size_t i = 0; i < count; i++) {
            size_t start = offsets [keep [i]], end = offsets [keep [i] + 1];
            msgpack_sbuffer_write (&self->scratch, request->body.data + start, end - start);
            if (lines)
                kept_lines [i] = lines [keep [i]];
        }
        //  Offsets of the new body (entry sizes are unchanged)
        size_t *sizes = self->size_scratch;
        for (size_t i = 0; i < count; i++)
            sizes [i] = offsets [keep [i] + 1] - offsets [keep [i]];
        for (size_t i = 0; i < count; i++) {
            offsets [i] = at;
            at += sizes [i];
        }
        offsets [count] = at;
        msgpack_sbuffer tmp = request->body;
        request->body = self->scratch;
        self->scratch = tmp;
        request->entries = count;
    }
    else
    if (lines)
        memcpy (kept_lines, lines, count * sizeof (size_t));
    uint8_t corr [ZB_CORRELATION_SIZE];
    request->id = zb_window_reissue (self->inflight, request->id, count,
                                     lines? kept_lines: NULL, corr);
    request->due_ms = zclock_mono () + s_backoff_ms (request->sends);
    s_due (self, request->due_ms);
}

//  Account one reply: every entry of its request is acked, failed, or kept
//  for a resend (InternalFailure).
static void
s_handle_reply (producer_t *self)
{
    zb_reply_t reply;
    if (zb_wire_recv_reply (self->handle, &reply) != 0) {
        if (!zsys_interrupted)
            s_log ("malformed reply (not 3 frames) ignored");
        return;
    }
    uint64_t id;
    size_t entries;
    const size_t *lines;
    int slot = zb_window_find (self->inflight, zmq_msg_data (&reply.corr),
                               zmq_msg_size (&reply.corr), &id, &entries, &lines);
    if (slot < 0 || self->requests [slot].due_ms) {
        //  Unknown, answered already, or superseded by a resend: its entries
        //  are accounted with the reply to the current request
        self->stray_replies++;
        if (self->stray_replies <= LOG_LIMIT) {
            uint64_t stray;
            if (zb_window_decode (zmq_msg_data (&reply.corr), zmq_msg_size (&reply.corr), &stray))
                s_log ("reply for request %" PRIu64 " ignored (unknown, or resent since)", stray);
            else
                s_log ("reply with a %zu-byte correlation id ignored (ours are 8 bytes)",
                       zmq_msg_size (&reply.corr));
        }
        zb_reply_close (&reply);
        return;
    }
    self->last_reply_ms = zclock_mono ();

    msgpack_object body;
    size_t offset = 0;
    msgpack_zone_clear (&self->zone);
    bool body_ok = msgpack_unpack ((const char *) zmq_msg_data (&reply.body),
                                   zmq_msg_size (&reply.body), &offset, &self->zone, &body)
                   == MSGPACK_UNPACK_SUCCESS
                && body.type == MSGPACK_OBJECT_MAP;
    size_t status_len = zmq_msg_size (&reply.status);
    const char *status = (const char *) zmq_msg_data (&reply.status);
    size_t *retry = self->retry_scratch;
    size_t nretry = 0;
    size_t throttled = 0;

    if (zb_reply_is_ok (&reply)) {
        const msgpack_object *results = body_ok? zb_map_get (&body, "results"): NULL;
        if (!results || results->type != MSGPACK_OBJECT_ARRAY) {
            s_request_error (self, id, "OK reply without a results array; counting its %zu "
                             "entries as failed", entries);
            self->failed += entries;
        }
        else
        if (results->via.array.size != entries) {
            s_request_error (self, id, "reply has %" PRIu32 " results for %zu entries; "
                             "counting them as failed", results->via.array.size, entries);
            self->failed += entries;
        }
        else
            for (size_t i = 0; i < entries; i++) {
                const msgpack_object *result = &results->via.array.ptr [i];
                const msgpack_object *event_id = zb_map_get (result, "id");
                const msgpack_object *duplicate = zb_map_get (result, "duplicate");
                if (event_id && event_id->type == MSGPACK_OBJECT_STR) {
                    self->acked++;
                    if (duplicate && duplicate->type == MSGPACK_OBJECT_BOOLEAN
                    &&  duplicate->via.boolean)
                        self->duplicates++;
                }
                else
                if (zb_str_eq (zb_map_get (result, "code"), "InternalFailure"))
                    retry [nretry++] = i;
                else
                if (zb_str_eq (zb_map_get (result, "code"), "ThrottlingException")) {
                    //  Over the broker's rate limit: not stored, resent later
                    retry [nretry++] = i;
                    throttled++;
                }
                else {
                    self->failed++;
                    s_entry_error (self, result, lines, i);
                }
            }
    }
    else
    if (status_len == strlen (ZB_STATUS_ERROR)
    &&  memcmp (status, ZB_STATUS_ERROR, status_len) == 0) {
        const msgpack_object *code = body_ok? zb_map_get (&body, "code"): NULL;
        const msgpack_object *message = body_ok? zb_map_get (&body, "message"): NULL;
        bool named = code && code->type == MSGPACK_OBJECT_STR
                  && message && message->type == MSGPACK_OBJECT_STR;
        if (named && zb_str_eq (code, "InternalFailure"))
            for (size_t i = 0; i < entries; i++)
                retry [nretry++] = i;
        else {
            if (named)
                s_request_error (self, id, "%.*s: %.*s", (int) code->via.str.size,
                                 code->via.str.ptr, (int) message->via.str.size,
                                 message->via.str.ptr);
            else
                s_request_error (self, id, "ERROR reply without a code and message");
            self->failed += entries;
        }
    }
    else {
        s_request_error (self, id, "reply status is neither OK nor ERROR (%zu bytes)", status_len);
        self->failed += entries;
    }
    zb_reply_close (&reply);
    if (nretry)
        s_retry_later (self, slot, retry, nretry, lines,
                       throttled == nretry ? "ThrottlingException" : "InternalFailure");
    else
        s_release (self, slot);
}

//  Read every reply that is already here, without waiting.
static void
s_read_replies (producer_t *self)
{
    while (true) {
        int events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (self->handle, ZMQ_EVENTS, &events, &size) != 0
        ||  !(events & ZMQ_POLLIN))
            return;
        s_handle_reply (self);
    }
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

//  Pack up to n generated entries into self->request; returns how many.
static size_t
s_build_generated (producer_t *self, size_t n)
{
    msgpack_sbuffer_clear (&self->request);
    msgpack_pack_array (&self->pk, n);
    for (size_t i = 0; i < n; i++) {
        zb_generated_t info;
        char key [48];
        int keylen = snprintf (key, sizeof key, "%s-%" PRIu64, self->run_id, self->tot_msgs + 1);
        self->offsets [i] = self->request.size;
        zb_generator_pack_keyed (self->generator, &self->pk, key, (size_t) keylen, &info);
        self->tot_msgs++;
        if (info.sale)
            self->sale_evnts++;
        else
            self->inventory_evnts++;
        if (info.bad)
            self->bad_msgs++;
    }
    self->offsets [n] = self->request.size;
    return n;
}

//  Read up to n valid entries from the file into self->request; returns how
//  many. Rejected lines are counted and logged here and never sent.
static size_t
s_build_from_file (producer_t *self, size_t n)
{
    msgpack_sbuffer_clear (&self->entries);
    size_t taken = 0;
    char err [600];
    while (taken < n && s_remaining (self) > 0) {
        zb_entryinfo_t info;
        size_t before = self->entries.size;
        int rc = zb_entryfile_next (self->entryfile, &self->entries, &info, err, sizeof err);
        if (rc == 1) {
            self->offsets [taken] = before;
            self->lines [taken++] = info.line;
            self->tot_msgs++;
            s_count_detail_type (self, info.detail_type);
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
            if (rc == -2 && !zsys_interrupted) {
                s_log ("%s", err);
                s_fail (self, "%s", err);
            }
        }
    }
    if (self->count_given && self->tot_msgs >= self->count)
        self->input_done = true;
    msgpack_sbuffer_clear (&self->request);
    if (taken) {
        msgpack_pack_array (&self->pk, taken);
        size_t header = self->request.size;
        msgpack_sbuffer_write (&self->request, self->entries.data, self->entries.size);
        for (size_t i = 0; i < taken; i++)
            self->offsets [i] += header;
        self->offsets [taken] = self->request.size;
    }
    return taken;
}

//  Send the request in slot (again) under its current correlation id.
//  false when the send failed (the run is over then).
static bool
s_send_slot (producer_t *self, int slot)
{
    request_t *request = &self->requests [slot];
    uint8_t corr [ZB_CORRELATION_SIZE];
    for (int i = 0; i < ZB_CORRELATION_SIZE; i++)
        corr [i] = (uint8_t) (request->id >> (56 - 8 * i));
    if (zb_wire_send_request (self->handle, ZB_CMD_PUT, corr, sizeof corr,
                              request->body.data, request->body.size) != 0) {
        int error = zmq_errno ();
        if (error == EAGAIN)
            s_fail (self, "no reply from %s within %u s", self->endpoint, self->timeout_s);
        else
        if (error != EINTR)
            s_fail (self, "cannot send to %s: %s", self->endpoint, zmq_strerror (error));
        return false;
    }
    request->sends++;
    request->sent_ms = zclock_mono ();
    request->due_ms = 0;
    s_due (self, request->sent_ms + self->retry_ms);
    return true;
}

//  Build and send one request of at most n entries. false when nothing more
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
    if (zb_window_requests (self->inflight) == 0)
        self->last_reply_ms = zclock_mono ();       //  the timeout runs from here
    uint8_t corr [ZB_CORRELATION_SIZE];
    uint64_t id = zb_window_open (self->inflight, taken, self->file? self->lines: NULL, corr);
    int slot = zb_window_slot (self->inflight, id);
    assert (slot >= 0);
    request_t *request = &self->requests [slot];
    request->id = id;
    request->entries = taken;
    request->sends = 0;
    msgpack_sbuffer_clear (&request->body);
    msgpack_sbuffer_write (&request->body, self->request.data, self->request.size);
    memcpy (request->offsets, self->offsets, (taken + 1) * sizeof (size_t));
    if (!s_send_slot (self, slot)) {
        s_release (self, slot);
        self->failed += taken;
        self->input_done = true;
        return false;
    }
    self->sent += taken;
    return true;
}

//  Resend what is due: requests not answered within --retry-ms, and entries
//  held back after InternalFailure whose pause is over.
static void
s_resend_due (producer_t *self)
{
    int64_t now = zclock_mono ();
    if (self->next_check_ms == 0 || now < self->next_check_ms)
        return;
    self->next_check_ms = 0;
    for (size_t slot = 0; slot < self->window && self->ok && !zsys_interrupted; slot++) {
        request_t *request = &self->requests [slot];
        if (request->id == 0)
            continue;
        if (request->due_ms == 0) {
            //  Waiting for a reply
            int64_t deadline = request->sent_ms + self->retry_ms;
            if (now < deadline) {
                s_due (self, deadline);
                continue;
            }
            if (request->sends > self->retries) {
                self->failed += request->entries;
                s_request_error (self, request->id, "no reply within %u ms after %u sends; "
                                 "giving up on its %zu entries", self->retry_ms,
                                 request->sends, request->entries);
                s_release (self, (int) slot);
                continue;
            }
            uint64_t old = request->id;
            uint8_t corr [ZB_CORRELATION_SIZE];
            request->id = zb_window_reissue (self->inflight, old, request->entries, NULL, corr);
            if (++self->resend_logs <= LOG_LIMIT)
                s_log ("no reply to request %" PRIu64 " within %u ms: resending it as %" PRIu64,
                       old, self->retry_ms, request->id);
        }
        else
        if (now < request->due_ms) {
            s_due (self, request->due_ms);
            continue;
        }
        self->retried += request->entries;
        if (!s_send_slot (self, (int) slot))
            break;
    }
}

//  ---------------------------------------------------------------------------
//  The run

static void
s_show_progress (producer_t *self)
{
    if (!self->progress)
        return;
    int64_t now = zclock_mono ();
    if (now - self->progress_at_ms < PROGRESS_MS)
        return;
    double seconds = (double) (now - self->progress_at_ms) / 1000.0;
    double rate = seconds > 0? (double) (self->sent - self->progress_sent) / seconds: 0;
    fprintf (stderr, "\r\033[K" PROG ": %.0f ev/s  sent %" PRIu64 "  acked %" PRIu64
             "  failed %" PRIu64, rate, self->sent, self->acked, self->failed);
    fflush (stderr);
    self->progress_shown = true;
    self->progress_at_ms = now;
    self->progress_sent = self->sent;
}

static void
s_run (producer_t *self)
{
    double started = s_now ();
    self->refilled_at = started;
    self->tokens = 1;
    self->progress_at_ms = zclock_mono ();
    //  After a failure (read error, send error) nothing more is sent, but the
    //  replies in flight are still collected; a timeout ends the loop at once.
    while (!zsys_interrupted) {
        s_read_replies (self);
        s_resend_due (self);

        //  Send while the window, the rate and the input allow
        long wait_ms = -1;
        while (!self->input_done && !zb_window_full (self->inflight) && self->ok
        &&     !zsys_interrupted) {
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
        if (self->input_done && zb_window_requests (self->inflight) == 0)
            break;              //  all sent, all answered

        //  Wait for a reply, the next token, or the next progress refresh
        int64_t now = zclock_mono ();
        bool waiting = zb_window_requests (self->inflight) > 0;
        if (waiting && self->timeout_s) {
            int64_t deadline = self->last_reply_ms + (int64_t) self->timeout_s * 1000;
            if (now >= deadline) {
                s_fail (self, "no reply from %s within %u s", self->endpoint, self->timeout_s);
                break;
            }
            if (wait_ms < 0 || deadline - now < wait_ms)
                wait_ms = (long) (deadline - now);
        }
        if (waiting && self->next_check_ms) {
            long until = (long) (self->next_check_ms - now);
            if (until < 0)
                until = 0;
            if (wait_ms < 0 || until < wait_ms)
                wait_ms = until;
        }
        if (self->progress) {
            long until = (long) (self->progress_at_ms + PROGRESS_MS - now);
            if (until < 1)
                until = 1;
            if (wait_ms < 0 || until < wait_ms)
                wait_ms = until;
        }
        if (wait_ms < 0 && !waiting && self->input_done)
            break;
        zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, wait_ms);       //  EINTR: the loop sees zsys_interrupted
        s_show_progress (self);
    }
    if (zsys_interrupted) {
        s_fail (self, "interrupted");
        //  Give the replies in flight a moment so that acked is accurate
        int64_t until = zclock_mono () + DRAIN_MS;
        while (zb_window_requests (self->inflight) > 0) {
            long left = (long) (until - zclock_mono ());
            if (left <= 0)
                break;
            zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, left) == 1)
                s_read_replies (self);
        }
    }
    //  Whatever is still in flight was never answered
    self->failed += zb_window_entries (self->inflight);
    double seconds = s_now () - started;
    s_log ("%s%s%s: %" PRIu64 " events, %" PRIu64 " acked, %" PRIu64 " failed in %.2f s "
           "(%.0f ev/s)", self->ok? "done": "stopped (", self->ok? "": self->error,
           self->ok? "": ")", self->tot_msgs, self->acked, self->failed, seconds,
           seconds > 0? (double) self->acked / seconds: 0.0);
    if (self->entry_errors > LOG_LIMIT)
        s_log ("%" PRIu64 " more entry errors not shown", self->entry_errors - LOG_LIMIT);
    if (self->request_errors > LOG_LIMIT)
        s_log ("%" PRIu64 " more request errors not shown", self->request_errors - LOG_LIMIT);
    if (self->stray_replies > LOG_LIMIT)
        s_log ("%" PRIu64 " more stray replies not shown", self->stray_replies - LOG_LIMIT);
    if (self->resend_logs > LOG_LIMIT)
        s_log ("%" PRIu64 " more resends not shown", self->resend_logs - LOG_LIMIT);
    if (self->retried || self->duplicates)
        s_log ("%" PRIu64 " entries resent, %" PRIu64 " answered as duplicates (stored once)",
               self->retried, self->duplicates);
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
        self->lines = (size_t *) calloc (self->batch, sizeof (size_t));
        assert (self->lines);
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
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        s_fail (self, "cannot create a DEALER socket: %s", zmq_strerror (zmq_errno ()));
        s_log ("%s", self->error);
        return -1;
    }
    //  Room for the whole window both ways, so a send never waits on the queue
    int hwm = (int) (self->window * 2 > 1000? self->window * 2: 1000);
    zsock_set_sndhwm (self->sock, hwm);
    zsock_set_rcvhwm (self->sock, hwm);
    zsock_set_sndtimeo (self->sock, self->timeout_s? (int) self->timeout_s * 1000: -1);
    zsock_set_linger (self->sock, 0);
    zb_curve_client_apply (self->sock);     //  CURVE keys, maximum frame size
    if (zsock_connect (self->sock, "%s", self->endpoint) != 0) {
        s_fail (self, "cannot connect to '%s': %s", self->endpoint, zmq_strerror (zmq_errno ()));
        s_log ("%s", self->error);
        return -1;
    }
    self->handle = zsock_resolve (self->sock);
    self->inflight = zb_window_new (self->window, self->batch);
    assert (self->inflight);
    self->requests = (request_t *) calloc (self->window, sizeof (request_t));
    self->offsets = (size_t *) calloc (self->batch + 1, sizeof (size_t));
    self->retry_scratch = (size_t *) calloc (self->batch, sizeof (size_t));
    self->lines_scratch = (size_t *) calloc (self->batch, sizeof (size_t));
    self->size_scratch = (size_t *) calloc (self->batch, sizeof (size_t));
    assert (self->requests && self->offsets && self->retry_scratch && self->lines_scratch
            && self->size_scratch);
    for (size_t i = 0; i < self->window; i++) {
        msgpack_sbuffer_init (&self->requests [i].body);
        //  Allocated once per slot: offsets for a full batch
        self->requests [i].offsets = (size_t *) malloc ((self->batch + 1) * sizeof (size_t));
        assert (self->requests [i].offsets);
    }
    msgpack_sbuffer_init (&self->scratch);
    msgpack_sbuffer_init (&self->request);
    msgpack_sbuffer_init (&self->entries);
    msgpack_packer_init (&self->pk, &self->request, msgpack_sbuffer_write);
    msgpack_zone_init (&self->zone, 4096);

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
    if (self->inflight) {
        msgpack_sbuffer_destroy (&self->request);
        msgpack_sbuffer_destroy (&self->entries);
        msgpack_sbuffer_destroy (&self->scratch);
        msgpack_zone_destroy (&self->zone);
        for (size_t i = 0; i < self->window; i++) {
            msgpack_sbuffer_destroy (&self->requests [i].body);
            free (self->requests [i].offsets);
        }
    }
    free (self->requests);
    free (self->offsets);
    free (self->retry_scratch);
    free (self->lines_scratch);
    free (self->size_scratch);
    zb_window_destroy (&self->inflight);
    zsock_destroy (&self->sock);
    zb_generator_destroy (&self->generator);
    zb_entryfile_destroy (&self->entryfile);
    free (self->lines);
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
    json_object_object_add (result, "retried", json_object_new_uint64 (self->retried));
    json_object_object_add (result, "duplicates", json_object_new_uint64 (self->duplicates));
    puts (json_object_to_json_string_ext (result, JSON_C_TO_STRING_PLAIN
                                                  | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush (stdout);
    json_object_put (result);
}

int
main (int argc, char **argv)
{
    producer_t self = { .ok = true };
    int rc = s_parse_args (&self, argc, argv);
    if (rc >= 0)
        return rc;
    s_self = &self;
    zsys_init ();                   //  SIGINT/SIGTERM set zsys_interrupted
    self.progress = !self.quiet && isatty (STDERR_FILENO);
    if (s_setup (&self) == 0)
        s_run (&self);
    if (zsys_interrupted)
        s_fail (&self, "interrupted");
    s_print_result (&self);
    s_teardown (&self);
    return self.ok? 0: 1;
}
