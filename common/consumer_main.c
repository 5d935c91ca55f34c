/*  consumer_main.c - the program body of zb-dispatch, zb-warehouse and zb-consumer,
    on libzbridge's consumer (zbridge.h; the engine is lib/consumer.c).

    Flags, then the library's receive loop: each event is printed as one
    compact JSON line (the envelope, keys in wire order) and handed to the
    program's on_event. Standard output is block buffered when it is not a
    terminal and flushed whenever no further event is immediately pending
    (the library's flush callback), so a burst costs few write calls while a
    quiet stream is never left sitting in the buffer; the checkpoint is saved
    only after a flush, so it is never ahead of what was written out. At the
    end (--count reached, SIGINT or SIGTERM) a one-line summary goes to stderr
    and, with --quiet, a JSON summary to stdout. */

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "curve.h"              //  ZB_CURVE_CLIENT_HELP only: the library applies the keys
#include "consumer_main.h"
#include "counts.h"
#include "zb.h"

//  Malformed events logged one by one before we only count them
#define CONSUMER_LOG_MALFORMED  10
//  Default replay credit window
#define CONSUMER_CREDIT         1000

#ifndef streq
#define streq(a, b) (strcmp ((a), (b)) == 0)
#endif

typedef struct {
    const zb_consumer_spec_t *spec;
    const char *connect;
    const char *control;
    uint64_t count;                 //  0: until signalled
    bool quiet;
    const char **topics;            //  exact subscriptions, rules as "$rule/NAME"
    size_t ntopics;
    const char **prefixes;          //  prefix subscriptions
    size_t nprefixes;
    const char *state_dir;
    const char *name;               //  checkpoint name
    const char *from;               //  --from, or NULL
    uint32_t credit;
    const char *pattern_text;       //  --pattern JSON, or NULL
    const char *curve_server;       //  --curve-server, --curve-cert, --max-msg-size
    const char *curve_cert;
    int64_t max_msg_size;
    char **rule_topics;             //  "$rule/NAME" of each --rule (also in topics [])
    size_t nrules;

    zbridge_consumer_t *consumer;
    zb_counts_t *per_topic;         //  events received per topic
    uint64_t received;
    uint64_t malformed;             //  events not JSON-representable
    int64_t first_ns;
    int64_t last_ns;
    bool output_failed;             //  stdout is gone (EPIPE, disk full)
} consumer_t;

static void
s_log (const consumer_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "%s: ", self->spec->name);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
}

static void
s_lib_log (void *arg, const char *line)
{
    s_log ((const consumer_t *) arg, "%s", line);
}

static int64_t
s_realtime_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
s_usage (const zb_consumer_spec_t *spec, FILE *out)
{
    fprintf (out, "Usage: %s [options]\n%s\n\nOptions:\n", spec->name, spec->purpose);
    fprintf (out,
        "      --connect EP    broker publish endpoint (default " ZB_DEFAULT_PUBLISH ")\n"
        "      --control EP    broker control endpoint (default " ZB_DEFAULT_CONTROL ")\n"
        "  -n, --count N       exit after N events (default 0: run until SIGINT/SIGTERM)\n"
        "  -q, --quiet         do not print events; print a JSON summary at exit\n");
    if (!spec->topics)
        fprintf (out,
        "  -t, --topic T       subscribe to detail-type T exactly (repeatable)\n"
        "      --rule NAME     receive what the broker's rule NAME delivers (its topic\n"
        "                      $rule/NAME: the matching events, or its transformer's\n"
        "                      output), with the same catch-up (repeatable)\n"
        "      --prefix P      subscribe to every detail-type starting with P\n"
        "                      (repeatable; \"\" is everything)\n"
        "      --pattern JSON  only events matching this EventBridge event pattern\n"
        "                      (given once); subscribes to the detail-types its\n"
        "                      top-level \"detail-type\" lists (plain strings), to\n"
        "                      everything otherwise; with --topic/--prefix the\n"
        "                      subscription is the union and the pattern filters all\n"
        "                      (with --rule alone: filters the rules' deliveries)\n"
        "                      At least one --topic, --prefix, --rule or --pattern is\n"
        "                      required.\n");
    fprintf (out,
        "      --from WHERE    where to start without a checkpoint: latest (default: new\n"
        "                      events only), earliest (everything the journal holds),\n"
        "                      seq:N (from sequence number N), time:RFC3339 (from the\n"
        "                      first event the broker received at or after that time)\n"
        "      --state-dir DIR keep a checkpoint (the last processed seq) in\n"
        "                      DIR/<name>.checkpoint and resume from it on start\n"
        "                      (it overrides --from)\n"
        "      --name NAME     checkpoint name (default: %s)\n"
        "      --credit N      replay credit window, 1..%d (default %d)\n"
        "  -h, --help          show this help\n"
        "  -V, --version       show the version\n"
        ZB_CURVE_CLIENT_HELP "\n",
        spec->topics? spec->name: "none; required with --state-dir", ZBRIDGE_MAX_CREDIT,
        CONSUMER_CREDIT);
    if (spec->topics) {
        fprintf (out, "Subscribes exactly to:");
        for (const char *const *t = spec->topics; *t; t++)
            fprintf (out, " %s", *t);
        fprintf (out, "\n");
    }
    fprintf (out,
        "Each event is printed on stdout as one JSON line (the full envelope), in the\n"
        "broker's sequence order, each at most once. Events missed on the live stream\n"
        "(a gap in a topic's sequence, a heartbeat ahead of us) are read back from the\n"
        "broker's journal; events the journal no longer holds are reported on stderr.\n\n"
        "Exit status:\n"
        "  0  --count events received, or stopped by SIGINT/SIGTERM\n"
        "  1  a runtime failure: an endpoint that is not a ZeroMQ endpoint, a checkpoint\n"
        "     that cannot be opened or read, stdout that cannot be written\n"
        "  2  a usage error: unknown option, bad value, no subscription given\n\n"
        "Examples:\n");
    if (spec->topics) {
        fprintf (out, "  %s\n", spec->name);
        fprintf (out, "  %s --connect tcp://10.0.0.5:5556 --control tcp://10.0.0.5:5557\n",
                 spec->name);
        fprintf (out, "  %s -q -n 2000 > summary.json\n", spec->name);
        fprintf (out, "  %s --state-dir /var/lib/zbridge      # resumes where it stopped\n",
                 spec->name);
        fprintf (out, "  %s --from time:2026-11-26T17:00:00Z -q\n", spec->name);
    }
    else {
        fprintf (out, "  %s -t sales-events -t inventory-events\n", spec->name);
        fprintf (out, "  %s --prefix sales- -n 100\n", spec->name);
        fprintf (out, "  %s --prefix '' -q        # everything, summary only\n", spec->name);
        fprintf (out, "  %s -t sales-events --from earliest -n 1000   # the first 1000\n",
                 spec->name);
        fprintf (out, "  %s -t sales-events --state-dir ./state --name audit\n", spec->name);
        fprintf (out, "  %s --pattern '{\"detail-type\":[\"sales-events\"],"
                 "\"detail\":{\"sales\":[{\"numeric\":[\">\",50]}],"
                 "\"store_id\":[\"store_2\"]}}'\n", spec->name);
        fprintf (out, "  %s --pattern '{\"detail\":{\"category\":"
                 "[{\"anything-but\":\"Groceries\"}]}}' -q   # all detail-types\n",
                 spec->name);
        fprintf (out, "\nWith --pattern, events that do not match are not printed and not\n"
                 "counted as received (the summary counts them as \"filtered\"); they still\n"
                 "move the catch-up position and the checkpoint.\n");
    }
}

//  Returns -1 to continue, or an exit code.
static int
s_parse_args (consumer_t *self, int argc, char **argv)
{
    const zb_consumer_spec_t *spec = self->spec;
    const char *prog = spec->name;
    enum { OPT_CONNECT = 256, OPT_CONTROL, OPT_PREFIX, OPT_FROM, OPT_STATE_DIR, OPT_NAME,
           OPT_CREDIT, OPT_PATTERN, OPT_RULE, OPT_CURVE_SERVER, OPT_CURVE_CERT, OPT_MAX_MSG };
#define COMMON_OPTIONS \
        { "connect",   required_argument, NULL, OPT_CONNECT }, \
        { "control",   required_argument, NULL, OPT_CONTROL }, \
        { "count",     required_argument, NULL, 'n' }, \
        { "quiet",     no_argument,       NULL, 'q' }, \
        { "from",      required_argument, NULL, OPT_FROM }, \
        { "state-dir", required_argument, NULL, OPT_STATE_DIR }, \
        { "name",      required_argument, NULL, OPT_NAME }, \
        { "credit",    required_argument, NULL, OPT_CREDIT }, \
        { "curve-server", required_argument, NULL, OPT_CURVE_SERVER }, \
        { "curve-cert",   required_argument, NULL, OPT_CURVE_CERT }, \
        { "max-msg-size", required_argument, NULL, OPT_MAX_MSG }, \
        { "help",      no_argument,       NULL, 'h' }, \
        { "version",   no_argument,       NULL, 'V' }
    static const struct option fixed_options [] = {
        COMMON_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    static const struct option free_options [] = {
        COMMON_OPTIONS,
        { "topic",   required_argument, NULL, 't' },
        { "prefix",  required_argument, NULL, OPT_PREFIX },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "rule",    required_argument, NULL, OPT_RULE },
        { NULL, 0, NULL, 0 }
    };
#undef COMMON_OPTIONS
    const struct option *options = spec->topics? fixed_options: free_options;
    const char *shorts = spec->topics? ":n:qhV": ":n:qt:hV";

    self->connect = ZB_DEFAULT_PUBLISH;
    self->control = ZB_DEFAULT_CONTROL;
    self->credit = CONSUMER_CREDIT;
    size_t nfixed = 0;
    if (spec->topics)
        while (spec->topics [nfixed])
            nfixed++;
    self->topics = (const char **) calloc ((size_t) argc + nfixed + 1, sizeof (char *));
    self->rule_topics = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self->rule_topics);
    self->prefixes = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self->topics && self->prefixes);
    if (spec->topics)
        for (const char *const *t = spec->topics; *t; t++)
            self->topics [self->ntopics++] = *t;

    opterr = 0;
    optind = 1;
    int opt;
    uint64_t value;
    while ((opt = getopt_long (argc, argv, shorts, options, NULL)) != -1) {
        switch (opt) {
            case OPT_CONNECT: self->connect = optarg; break;
            case OPT_CONTROL: self->control = optarg; break;
            case 'q': self->quiet = true; break;
            case 'n':
                if (!zb_cli_parse_u64 (optarg, &self->count))
                    return zb_cli_usage_error (prog, "--count wants a number >= 0, not '%s'",
                                               optarg);
                break;
            case 't':
                if (!*optarg)
                    return zb_cli_usage_error (prog, "--topic wants a detail-type, not an empty "
                                               "string");
                if (strlen (optarg) > ZB_MAX_DETAIL_TYPE)
                    return zb_cli_usage_error (prog, "--topic '%.40s...' is longer than %d bytes",
                                               optarg, ZB_MAX_DETAIL_TYPE);
                self->topics [self->ntopics++] = optarg;
                break;
            case OPT_PREFIX:
                if (strlen (optarg) > ZB_MAX_DETAIL_TYPE)
                    return zb_cli_usage_error (prog, "--prefix '%.40s...' is longer than %d bytes",
                                               optarg, ZB_MAX_DETAIL_TYPE);
                self->prefixes [self->nprefixes++] = optarg;
                break;
            case OPT_RULE: {
                if (zbridge_check_rule_name (optarg, NULL) != ZBRIDGE_OK)
                    return zb_cli_usage_error (prog, "--rule wants a rule name (1 to %d characters "
                                               "of A-Z a-z 0-9 . - _), not '%s'",
                                               ZB_RULE_NAME_MAX, optarg);
                char *topic = (char *) malloc (strlen (ZB_RULE_TOPIC_PREFIX) + strlen (optarg) + 1);
                assert (topic);
                strcpy (topic, ZB_RULE_TOPIC_PREFIX);
                strcat (topic, optarg);
                self->rule_topics [self->nrules++] = topic;
                self->topics [self->ntopics++] = topic;
                break;
            }
            case OPT_PATTERN:
                if (self->pattern_text)
                    return zb_cli_usage_error (prog, "--pattern may be given only once");
                self->pattern_text = optarg;
                break;
            case OPT_FROM:
                if (zbridge_check_from (optarg, NULL) != ZBRIDGE_OK)
                    return zb_cli_usage_error (prog, "--from wants latest, earliest, seq:N "
                                               "(N >= 1) or time:RFC3339 (e.g. "
                                               "time:2026-11-26T17:15:01Z), not '%s'", optarg);
                self->from = optarg;
                break;
            case OPT_STATE_DIR:
                if (!*optarg)
                    return zb_cli_usage_error (prog, "--state-dir wants a directory, not an "
                                               "empty string");
                self->state_dir = optarg;
                break;
            case OPT_NAME:
                if (zbridge_check_checkpoint_name (optarg, NULL) != ZBRIDGE_OK)
                    return zb_cli_usage_error (prog, "--name wants 1 to %d characters of A-Z a-z "
                                               "0-9 . _ - (not starting with '.'), not '%s'",
                                               ZBRIDGE_CHECKPOINT_NAME_MAX, optarg);
                self->name = optarg;
                break;
            case OPT_CURVE_SERVER: self->curve_server = optarg; break;
            case OPT_CURVE_CERT: self->curve_cert = optarg; break;
            case OPT_MAX_MSG:
                if (!zb_cli_parse_range (optarg, 1024, 1ULL << 40, &value))
                    return zb_cli_usage_error (prog, "--max-msg-size wants bytes from 1024 to "
                                               "2^40, not '%s'", optarg);
                self->max_msg_size = (int64_t) value;
                break;
            case OPT_CREDIT:
                if (!zb_cli_parse_range (optarg, 1, ZBRIDGE_MAX_CREDIT, &value))
                    return zb_cli_usage_error (prog, "--credit wants a number from 1 to %d, "
                                               "not '%s'", ZBRIDGE_MAX_CREDIT, optarg);
                self->credit = (uint32_t) value;
                break;
            case 'h':
                s_usage (spec, stdout);
                return 0;
            case 'V':
                printf ("%s %s\n", spec->name, ZB_VERSION);
                return 0;
            default:
                return zb_cli_option_error (prog, opt, argv);
        }
    }
    if (optind < argc)
        return zb_cli_usage_error (prog, "unexpected argument '%s'", argv [optind]);
    if (!self->curve_server != !self->curve_cert)
        return zb_cli_curve_pair_error (prog, self->curve_server != NULL);
    if (self->pattern_text) {
        zbridge_error_t error;
        if (zbridge_pattern_check (self->pattern_text, &error) != ZBRIDGE_OK)
            return zb_cli_usage_error (prog, "--pattern is %s", error.message);
    }
    if (self->ntopics == 0 && self->nprefixes == 0 && !self->pattern_text)
        return zb_cli_usage_error (prog, "give at least one --topic, --prefix, --rule or --pattern");
    if (self->state_dir && !self->name) {
        if (!spec->topics)
            return zb_cli_usage_error (prog, "--state-dir needs --name (the checkpoint's "
                                       "name)");
        self->name = spec->name;
    }
    return -1;
}

static void
s_output_error (consumer_t *self)
{
    if (errno == EINTR) {
        //  A signal cut a blocked write short: not a broken stdout. The loop
        //  stops on the signal and the final flush writes the rest.
        clearerr (stdout);
        return;
    }
    if (!self->output_failed)
        s_log (self, "cannot write to stdout: %s; stopping", strerror (errno));
    self->output_failed = true;
}

//  The library's flush callback: non-zero once stdout failed
static int
s_flush (void *arg)
{
    consumer_t *self = (consumer_t *) arg;
    if (fflush (stdout) == EOF)
        s_output_error (self);
    return self->output_failed? -1: 0;
}

//  json-c's pretty form of an empty array or object is "[\n  ]": make it "[]".
//  A raw newline is never inside a JSON string, so this only meets layout.
static void
s_pretty_empty (char *text)
{
    char *out = text;
    for (char *in = text; *in; ) {
        *out++ = *in;
        if ((*in == '[' || *in == '{') && in [1] == '\n') {
            char *p = in + 1;
            while (*p == '\n' || *p == ' ')
                p++;
            if (*p == (*in == '[' ? ']' : '}')) {
                in = p;
                continue;
            }
        }
        in++;
    }
    *out = 0;
}

//  The event's JSON text indented over several lines (spec->pretty), in a
//  heap string, or NULL when json-c cannot read the compact text back. The
//  tokener keeps each number's text, so values print as in the compact form.
static char *
s_pretty (const char *compact)
{
    json_object *json = json_tokener_parse (compact);
    if (!json)
        return NULL;
    char *text = strdup (json_object_to_json_string_ext (json, JSON_C_TO_STRING_PRETTY
                         | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (json);
    if (text)
        s_pretty_empty (text);
    return text;
}

//  Print one event; false when it is not JSON-representable.
static bool
s_print (consumer_t *self, zbridge_event_t *event)
{
    zbridge_error_t error;
    const char *text = zbridge_event_json (event, &error);
    char *pretty = NULL;
    if (text && self->spec->pretty) {
        pretty = s_pretty (text);
        if (pretty)
            text = pretty;
    }
    if (!text) {
        self->malformed++;
        if (self->malformed <= CONSUMER_LOG_MALFORMED)
            s_log (self, "event seq %" PRIu64 " on %s is not JSON-representable, skipped: %s",
                   zbridge_event_seq (event), zbridge_event_topic (event), error.message);
        return false;
    }
    if (fputs (text, stdout) == EOF || fputc ('\n', stdout) == EOF)
        s_output_error (self);
    free (pretty);
    return true;
}

//  The library's on_event: print it, count it, hand it to the program.
//  Non-zero (stop) once --count events are received or stdout failed.
static int
s_on_event (void *arg, zbridge_event_t *event)
{
    consumer_t *self = (consumer_t *) arg;
    const zb_consumer_spec_t *spec = self->spec;
    if (!self->quiet && !s_print (self, event))
        return self->output_failed;
    int64_t now = s_realtime_ns ();
    if (self->received == 0)
        self->first_ns = now;
    self->last_ns = now;
    self->received++;
    const char *topic = zbridge_event_topic (event);
    zb_counts_add (self->per_topic, topic, strlen (topic));
    if (spec->on_event)
        spec->on_event (spec->state, event);
    return self->output_failed || (self->count && self->received >= self->count);
}

static json_object *
s_summary (consumer_t *self)
{
    zbridge_consumer_stats_t stats;
    zbridge_consumer_stats (self->consumer, &stats);
    json_object *summary = json_object_new_object ();
    json_object_object_add (summary, "received", json_object_new_uint64 (self->received));
    json_object_object_add (summary, "missed", json_object_new_uint64 (stats.missed));
    json_object_object_add (summary, "malformed",
                            json_object_new_uint64 (stats.malformed + self->malformed));
    if (!self->spec->topics)
        json_object_object_add (summary, "filtered", json_object_new_uint64 (stats.filtered));

    json_object_object_add (summary, "topics", zb_counts_json (self->per_topic));
    json_object_object_add (summary, "first_ns",
                            self->received? json_object_new_int64 (self->first_ns): NULL);
    json_object_object_add (summary, "last_ns",
                            self->received? json_object_new_int64 (self->last_ns): NULL);
    json_object_object_add (summary, "replayed", json_object_new_uint64 (stats.replayed));
    json_object_object_add (summary, "position", json_object_new_uint64 (stats.position));
    if (self->spec->summarize)
        self->spec->summarize (self->spec->state, summary);
    return summary;
}

//  "zb-dispatch: stopping (interrupted): received=... undeliverable=..."
static void
s_log_summary (consumer_t *self, json_object *summary, const char *reason)
{
    char line [1024];
    size_t used = 0;
    json_object_object_foreach (summary, key, value) {
        if (used >= sizeof line)
            break;
        json_type type = json_object_get_type (value);
        if (type == json_type_object || type == json_type_array || type == json_type_null
        ||  streq (key, "first_ns") || streq (key, "last_ns"))
            continue;
        int n = snprintf (line + used, sizeof line - used, " %s=%s", key,
                          json_object_to_json_string_ext (value, JSON_C_TO_STRING_PLAIN
                                                          | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (n > 0)
            used += (size_t) n;
    }
    if (self->received && self->last_ns > self->first_ns) {
        double seconds = (double) (self->last_ns - self->first_ns) / 1e9;
        if (used < sizeof line)
            snprintf (line + used, sizeof line - used, " rate=%.0f/s",
                      (double) (self->received - 1) / seconds);
    }
    s_log (self, "stopping (%s):%s", reason, line);
}

//  What s_parse_args allocated
static void
s_free_args (consumer_t *self)
{
    free (self->topics);
    for (size_t i = 0; i < self->nrules; i++)
        free (self->rule_topics [i]);
    free (self->rule_topics);
    free (self->prefixes);
}

int
zb_consumer_main (int argc, char **argv, const zb_consumer_spec_t *spec)
{
    assert (spec && spec->name && spec->purpose);
    zb_cli_tune_malloc ();
    consumer_t self = { .spec = spec };
    int rc = s_parse_args (&self, argc, argv);
    if (rc >= 0) {
        s_free_args (&self);
        return rc;
    }
    //  A closed pipe on stdout becomes a write error we report, not a silent death
    signal (SIGPIPE, SIG_IGN);
    if (isatty (STDOUT_FILENO))
        setvbuf (stdout, NULL, _IOLBF, 0);
    else
        setvbuf (stdout, NULL, _IOFBF, 64 * 1024);

    self.per_topic = zb_counts_new ();
    assert (self.per_topic);
    zbridge_consumer_options_t options;
    zbridge_consumer_options_init (&options);
    options.publish = self.connect;
    options.control = self.control;
    options.topics = self.ntopics? self.topics: NULL;
    options.prefixes = self.nprefixes? self.prefixes: NULL;
    options.pattern = self.pattern_text;
    options.from = self.from;
    options.state_dir = self.state_dir;
    options.name = self.name;
    options.credit = self.credit;
    options.curve_server = self.curve_server;
    options.curve_cert = self.curve_cert;
    options.max_msg_size = self.max_msg_size;
    options.on_event = s_on_event;
    options.flush = s_flush;
    options.log = s_lib_log;
    options.arg = &self;
    //  Installs CZMQ's SIGINT/SIGTERM handler: run returns on a signal
    zbridge_error_t error;
    self.consumer = zbridge_consumer_new (&options, &error);
    if (!self.consumer) {
        s_log (&self, "%s", error.message);
        rc = 1;
    }
    else {
        rc = zbridge_consumer_run (self.consumer);
        const char *reason = self.output_failed? "stdout failed":
                             rc == ZBRIDGE_EINTR? "interrupted": "count reached";
        json_object *summary = s_summary (&self);
        s_log_summary (&self, summary, reason);
        if (self.quiet) {
            puts (json_object_to_json_string_ext (summary, JSON_C_TO_STRING_PLAIN
                                                  | JSON_C_TO_STRING_NOSLASHESCAPE));
            s_flush (&self);
        }
        json_object_put (summary);
        rc = self.output_failed? 1: 0;
    }
    zbridge_consumer_destroy (&self.consumer);
    zb_counts_destroy (&self.per_topic);
    s_free_args (&self);
    return rc;
}
