/*  consumer_main.c - the program body of zb-dispatch, zb-warehouse and zb-consumer.

    Flags, subscriptions, a PING to the control socket, then the receive loop:
    each event is printed as one compact JSON line (the envelope, keys in wire
    order) and handed to the program's on_event. Standard output is block
    buffered when it is not a terminal and flushed whenever no further event
    is immediately pending, so a burst costs few write calls while a quiet
    stream is never left sitting in the buffer. At the end (--count reached,
    SIGINT or SIGTERM) a one-line summary goes to stderr and, with --quiet,
    a JSON summary to stdout. */

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "consumer_main.h"
#include "event.h"
#include "wire.h"

//  PING timeout at start-up: the broker is local, it answers in microseconds
#define CONSUMER_PING_MS        1000
//  Longest wait in one receive call: bounds the time between a signal that
//  lands just before the poll and the loop noticing zsys_interrupted.
#define CONSUMER_WAIT_MS        250
//  Malformed messages logged one by one before we only count them
#define CONSUMER_LOG_MALFORMED  10

typedef struct {
    const zb_consumer_spec_t *spec;
    const char *connect;
    const char *control;
    uint64_t count;                 //  0: until signalled
    bool quiet;
    const char **topics;            //  exact subscriptions
    size_t ntopics;
    const char **prefixes;          //  prefix subscriptions
    size_t nprefixes;

    zb_subscriber_t *sub;
    zhashx_t *per_topic;            //  topic -> uint64_t * events received
    uint64_t received;
    uint64_t malformed;
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
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
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
        "      --prefix P      subscribe to every detail-type starting with P\n"
        "                      (repeatable; \"\" is everything)\n"
        "                      At least one --topic or --prefix is required.\n");
    fprintf (out,
        "  -h, --help          show this help\n"
        "  -V, --version       show the version\n\n");
    if (spec->topics) {
        fprintf (out, "Subscribes exactly to:");
        for (const char *const *t = spec->topics; *t; t++)
            fprintf (out, " %s", *t);
        fprintf (out, "\n");
    }
    fprintf (out,
        "Each event is printed on stdout as one JSON line (the full envelope).\n"
        "A gap in a topic's sequence is reported on stderr.\n\nExamples:\n");
    if (spec->topics) {
        fprintf (out, "  %s\n", spec->name);
        fprintf (out, "  %s --connect tcp://10.0.0.5:5556 --control tcp://10.0.0.5:5557\n",
                 spec->name);
        fprintf (out, "  %s -q -n 2000 > summary.json\n", spec->name);
    }
    else {
        fprintf (out, "  %s -t sales-events -t inventory-events\n", spec->name);
        fprintf (out, "  %s --prefix sales- -n 100\n", spec->name);
        fprintf (out, "  %s --prefix '' -q        # everything, summary only\n", spec->name);
    }
}

static int
s_usage_error (const zb_consumer_spec_t *spec, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "%s: ", spec->name);
    vfprintf (stderr, format, args);
    fprintf (stderr, "\nTry '%s --help' for more information.\n", spec->name);
    va_end (args);
    return 2;
}

//  Strict unsigned decimal: digits only, no sign, no overflow.
static bool
s_parse_count (const char *text, uint64_t *value)
{
    if (!*text || strspn (text, "0123456789") != strlen (text))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end)
        return false;
    *value = (uint64_t) v;
    return true;
}

//  Returns -1 to continue, or an exit code.
static int
s_parse_args (consumer_t *self, int argc, char **argv)
{
    const zb_consumer_spec_t *spec = self->spec;
    enum { OPT_CONNECT = 256, OPT_CONTROL, OPT_PREFIX };
    static const struct option fixed_options [] = {
        { "connect", required_argument, NULL, OPT_CONNECT },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "count",   required_argument, NULL, 'n' },
        { "quiet",   no_argument,       NULL, 'q' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    static const struct option free_options [] = {
        { "connect", required_argument, NULL, OPT_CONNECT },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "count",   required_argument, NULL, 'n' },
        { "quiet",   no_argument,       NULL, 'q' },
        { "topic",   required_argument, NULL, 't' },
        { "prefix",  required_argument, NULL, OPT_PREFIX },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    const struct option *options = spec->topics? fixed_options: free_options;
    const char *shorts = spec->topics? ":n:qhV": ":n:qt:hV";

    self->connect = ZB_DEFAULT_PUBLISH;
    self->control = ZB_DEFAULT_CONTROL;
    size_t nfixed = 0;
    if (spec->topics)
        while (spec->topics [nfixed])
            nfixed++;
    self->topics = (const char **) calloc ((size_t) argc + nfixed + 1, sizeof (char *));
    self->prefixes = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self->topics && self->prefixes);
    if (spec->topics)
        for (const char *const *t = spec->topics; *t; t++)
            self->topics [self->ntopics++] = *t;

    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long (argc, argv, shorts, options, NULL)) != -1) {
        switch (opt) {
            case OPT_CONNECT: self->connect = optarg; break;
            case OPT_CONTROL: self->control = optarg; break;
            case 'q': self->quiet = true; break;
            case 'n':
                if (!s_parse_count (optarg, &self->count))
                    return s_usage_error (spec, "--count wants a number >= 0, not '%s'", optarg);
                break;
            case 't':
                if (!*optarg)
                    return s_usage_error (spec, "--topic wants a detail-type, not an empty string");
                if (strlen (optarg) > ZB_MAX_DETAIL_TYPE)
                    return s_usage_error (spec, "--topic '%.40s...' is longer than %d bytes",
                                          optarg, ZB_MAX_DETAIL_TYPE);
                self->topics [self->ntopics++] = optarg;
                break;
            case OPT_PREFIX:
                self->prefixes [self->nprefixes++] = optarg;
                break;
            case 'h':
                s_usage (spec, stdout);
                return 0;
            case 'V':
                printf ("%s %s\n", spec->name, ZB_VERSION);
                return 0;
            case ':':
                return s_usage_error (spec, "option '%s' needs a value", argv [optind - 1]);
            default:
                if (strncmp (argv [optind - 1], "--", 2) == 0 || !optopt)
                    return s_usage_error (spec, "unknown option '%s'", argv [optind - 1]);
                return s_usage_error (spec, "unknown option '-%c'", optopt);
        }
    }
    if (optind < argc)
        return s_usage_error (spec, "unexpected argument '%s'", argv [optind]);
    if (self->ntopics == 0 && self->nprefixes == 0)
        return s_usage_error (spec, "give at least one --topic or --prefix");
    return -1;
}

//  "sales-events, inventory-events, sales-*"
static void
s_describe_subscriptions (const consumer_t *self, char *out, size_t size)
{
    size_t used = 0;
    out [0] = '\0';
    for (size_t i = 0; i < self->ntopics + self->nprefixes && used < size; i++) {
        bool exact = i < self->ntopics;
        const char *name = exact? self->topics [i]: self->prefixes [i - self->ntopics];
        int n = snprintf (out + used, size - used, "%s%s%s", i? ", ": "", name, exact? "": "*");
        if (n < 0)
            break;
        used += (size_t) n;
    }
}

static int
s_subscribe (consumer_t *self)
{
    char err [256];
    self->sub = zb_subscriber_new (self->connect, err, sizeof err);
    if (!self->sub) {
        s_log (self, "%s", err);
        return 1;
    }
    for (size_t i = 0; i < self->ntopics; i++)
        if (zb_subscriber_subscribe (self->sub, self->topics [i]) != 0) {
            s_log (self, "cannot subscribe to '%s': %s", self->topics [i],
                   zmq_strerror (zmq_errno ()));
            return 1;
        }
    for (size_t i = 0; i < self->nprefixes; i++)
        if (zb_subscriber_subscribe_prefix (self->sub, self->prefixes [i]) != 0) {
            s_log (self, "cannot subscribe to prefix '%s': %s", self->prefixes [i],
                   zmq_strerror (zmq_errno ()));
            return 1;
        }
    char topics [1024];
    s_describe_subscriptions (self, topics, sizeof topics);
    s_log (self, "subscribed to %s at %s", topics, self->connect);
    return 0;
}

static void
s_ping (consumer_t *self)
{
    msgpack_unpacked reply;
    msgpack_unpacked_init (&reply);
    char err [256];
    int rc = zb_wire_call (self->control, ZB_CMD_PING, NULL, 0, CONSUMER_PING_MS,
                           &reply, err, sizeof err);
    if (rc == 0) {
        const msgpack_object *seq = zb_map_get (&reply.data, "seq");
        if (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            s_log (self, "broker up, seq %" PRIu64, seq->via.u64);
        else
            s_log (self, "broker up at %s (its PING reply has no seq)", self->control);
    }
    else
    if (!zsys_interrupted)
        s_log (self, "warning: broker not answering on %s (%s); waiting for events anyway",
               self->control, err);
    msgpack_unpacked_destroy (&reply);
}

static void
s_count_topic (consumer_t *self, zb_str_t topic)
{
    char small [ZB_MAX_DETAIL_TYPE + 1];
    char *key = topic.len < sizeof small? small: strndup (topic.ptr, topic.len);
    if (!key)
        return;
    if (key == small) {
        memcpy (small, topic.ptr, topic.len);
        small [topic.len] = '\0';
    }
    uint64_t *n = (uint64_t *) zhashx_lookup (self->per_topic, key);
    if (n)
        (*n)++;
    else {
        n = (uint64_t *) malloc (sizeof (uint64_t));
        if (n) {
            *n = 1;
            zhashx_insert (self->per_topic, key, n);
        }
    }
    if (key != small)
        free (key);
}

static void
s_output_error (consumer_t *self)
{
    if (errno == EINTR) {
        //  A signal cut a blocked write short: not a broken stdout. The loop
        //  stops on zsys_interrupted and the final flush writes the rest.
        clearerr (stdout);
        return;
    }
    if (!self->output_failed)
        s_log (self, "cannot write to stdout: %s; stopping", strerror (errno));
    self->output_failed = true;
}

static void
s_flush (consumer_t *self)
{
    if (fflush (stdout) == EOF)
        s_output_error (self);
}

//  Print one event; false when it is not JSON-representable.
static bool
s_print (consumer_t *self, const zb_delivery_t *d)
{
    char err [256];
    char *text = zb_json_text_from_msgpack (d->event, err, sizeof err);
    if (!text) {
        self->malformed++;
        if (self->malformed <= CONSUMER_LOG_MALFORMED)
            s_log (self, "event seq %" PRIu64 " on %.*s is not JSON-representable, skipped: %s",
                   d->seq, (int) d->topic.len, d->topic.ptr, err);
        return false;
    }
    if (fputs (text, stdout) == EOF || fputc ('\n', stdout) == EOF)
        s_output_error (self);
    free (text);
    return true;
}

static void
s_receive_loop (consumer_t *self)
{
    const zb_consumer_spec_t *spec = self->spec;
    bool pending_output = false;
    char err [256];
    while (!zsys_interrupted && !self->output_failed
    &&    (self->count == 0 || self->received < self->count)) {
        zb_delivery_t d;
        //  While output waits in the buffer, only look for events already here
        int rc = zb_subscriber_recv (self->sub, &d, pending_output? 0: CONSUMER_WAIT_MS,
                                     err, sizeof err);
        if (rc == 0) {
            if (pending_output) {
                s_flush (self);
                pending_output = false;
            }
            continue;
        }
        if (rc < 0) {
            self->malformed++;
            if (self->malformed <= CONSUMER_LOG_MALFORMED)
                s_log (self, "malformed message dropped: %s", err);
            if (self->malformed == CONSUMER_LOG_MALFORMED)
                s_log (self, "further malformed messages are counted, not logged");
            continue;
        }
        if (d.missed)
            s_log (self, "missed %" PRIu64 " events on %.*s (topic_seq %" PRIu64 "..%" PRIu64 ")",
                   d.missed, (int) d.topic.len, d.topic.ptr,
                   d.topic_seq - d.missed, d.topic_seq - 1);
        if (!self->quiet) {
            if (!s_print (self, &d))
                continue;
            pending_output = true;
        }
        int64_t now = s_realtime_ns ();
        if (self->received == 0)
            self->first_ns = now;
        self->last_ns = now;
        self->received++;
        s_count_topic (self, d.topic);
        if (spec->on_event)
            spec->on_event (spec->state, &d);
    }
    s_flush (self);
}

static int
s_compare_strings (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static json_object *
s_summary (consumer_t *self)
{
    json_object *summary = json_object_new_object ();
    json_object_object_add (summary, "received", json_object_new_uint64 (self->received));
    json_object_object_add (summary, "missed",
                            json_object_new_uint64 (zb_subscriber_missed (self->sub)));
    json_object_object_add (summary, "malformed", json_object_new_uint64 (self->malformed));

    json_object *topics = json_object_new_object ();
    size_t ntopics = zhashx_size (self->per_topic);
    const char **names = (const char **) calloc (ntopics + 1, sizeof (char *));
    assert (names);
    size_t i = 0;
    for (void *n = zhashx_first (self->per_topic); n; n = zhashx_next (self->per_topic))
        names [i++] = (const char *) zhashx_cursor (self->per_topic);
    qsort (names, ntopics, sizeof (char *), s_compare_strings);
    for (i = 0; i < ntopics; i++) {
        uint64_t *n = (uint64_t *) zhashx_lookup (self->per_topic, names [i]);
        json_object_object_add (topics, names [i], json_object_new_uint64 (*n));
    }
    free (names);
    json_object_object_add (summary, "topics", topics);
    json_object_object_add (summary, "first_ns",
                            self->received? json_object_new_int64 (self->first_ns): NULL);
    json_object_object_add (summary, "last_ns",
                            self->received? json_object_new_int64 (self->last_ns): NULL);
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

int
zb_consumer_main (int argc, char **argv, const zb_consumer_spec_t *spec)
{
    assert (spec && spec->name && spec->purpose);
    consumer_t self = { .spec = spec };
    int rc = s_parse_args (&self, argc, argv);
    if (rc >= 0) {
        free (self.topics);
        free (self.prefixes);
        return rc;
    }
    //  Installs CZMQ's SIGINT/SIGTERM handler (sets zsys_interrupted)
    zsys_init ();
    //  A closed pipe on stdout becomes a write error we report, not a silent death
    signal (SIGPIPE, SIG_IGN);
    if (isatty (STDOUT_FILENO))
        setvbuf (stdout, NULL, _IOLBF, 0);
    else
        setvbuf (stdout, NULL, _IOFBF, 64 * 1024);

    self.per_topic = zhashx_new ();
    assert (self.per_topic);
    zhashx_set_destructor (self.per_topic, s_free_item);

    rc = s_subscribe (&self);
    if (rc == 0) {
        s_ping (&self);
        s_receive_loop (&self);
        const char *reason = self.output_failed? "stdout failed":
                             zsys_interrupted? "interrupted": "count reached";
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
    zb_subscriber_destroy (&self.sub);
    zhashx_destroy (&self.per_topic);
    free (self.topics);
    free (self.prefixes);
    return rc;
}
