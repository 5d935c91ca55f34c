/*  consumer_main.c - the program body of zb-dispatch, zb-warehouse and zb-consumer.

    Flags, subscriptions, a PING to the control socket, then the receive loop:
    each event is printed as one compact JSON line (the envelope, keys in wire
    order) and handed to the program's on_event. Standard output is block
    buffered when it is not a terminal and flushed whenever no further event
    is immediately pending, so a burst costs few write calls while a quiet
    stream is never left sitting in the buffer. At the end (--count reached,
    SIGINT or SIGTERM) a one-line summary goes to stderr and, with --quiet,
    a JSON summary to stdout.

    Reliability (the Clone pattern, docs/PROTOCOL.md "Reliability"): the SUB
    socket subscribes first (my topics and "$heartbeat"), then the consumer
    takes a snapshot of the journal (JOURNAL) and, unless it starts at
    "latest" without a checkpoint, replays from its start position on a DEALER
    to the control socket while it buffers the live events. catchup.c decides
    what is delivered when; this file moves the bytes: one thread, zmq_poll
    over the SUB and the DEALER. A replay that gets no answer is sent again
    after a growing wait (2 s, 4 s, ... 30 s), logged each time; live events
    are buffered meanwhile (bounded: see catchup.h).

    Content filter (zb-consumer --pattern): an EventBridge event pattern
    (pattern.h) compiled once; the SUB socket takes only the detail-types the
    pattern pins down (see s_pattern_topics), and events that do not match
    are dropped at the delivery step, after catchup.c has taken them: they
    move the position (and the checkpoint) like any other event, are counted
    as "filtered", never as received, and never reach on_event.

    Checkpoint (--state-dir): the position is saved at most every 100 ms when
    it moved, and at exit, after stdout is flushed: a saved position is never
    ahead of what was written out. */

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catchup.h"
#include "checkpoint.h"
#include "cli.h"
#include "codec.h"
#include "consumer_main.h"
#include "counts.h"
#include "event.h"
#include "pattern.h"
#include "replay_client.h"
#include "curve.h"
#include "rfc3339.h"
#include "wire.h"

//  PING and JOURNAL timeout at start-up: the broker is local, it answers in microseconds
#define CONSUMER_PING_MS        1000
//  Longest wait in one poll: bounds the time between a signal that lands just
//  before the poll and the loop noticing zsys_interrupted.
#define CONSUMER_WAIT_MS        250
//  Malformed messages logged one by one before we only count them
#define CONSUMER_LOG_MALFORMED  10
//  Live messages read in one go before the control socket gets its turn
#define CONSUMER_BATCH          256
//  Checkpoint: at most this often
#define CONSUMER_CHECKPOINT_MS  100
//  A replay session silent this long is sent again; doubled per attempt
#define CONSUMER_REPLAY_WAIT_MS     2000
#define CONSUMER_REPLAY_WAIT_MAX_MS 30000
//  After an ERROR answer: wait this long before the next attempt; doubled
#define CONSUMER_RETRY_MS       250
#define CONSUMER_RETRY_MAX_MS   10000
//  Default replay credit window
#define CONSUMER_CREDIT         1000

typedef enum { FROM_LATEST, FROM_EARLIEST, FROM_SEQ, FROM_TIME } from_mode_t;

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
    const char *state_dir;
    const char *name;               //  checkpoint name
    from_mode_t from;
    uint64_t from_seq;              //  FROM_SEQ: N
    char from_time [ZB_TIME_MAX];   //  FROM_TIME: normalized
    uint32_t credit;
    const char *pattern_text;       //  --pattern JSON, or NULL
    zb_patterns_t *pattern;         //  compiled --pattern, or NULL
    size_t pattern_topics;          //  the last topics [] are strdup'ed from it
    char **rule_topics;             //  "$rule/NAME" of each --rule (also in topics [])
    size_t nrules;

    zb_subscriber_t *sub;
    zb_catchup_t *catchup;
    zb_replay_client_t *replay;
    zb_checkpoint_t *checkpoint;
    zb_counts_t *per_topic;         //  events received per topic
    uint64_t received;
    uint64_t filtered;              //  taken but not matching --pattern
    uint64_t malformed;
    int64_t first_ns;
    int64_t last_ns;
    bool output_failed;             //  stdout is gone (EPIPE, disk full)
    bool pending_output;            //  printed since the last flush

    //  Replay sessions
    bool time_pending;              //  the first replay starts at from_time
    bool initial;                   //  the start-up catch-up is running
    unsigned attempts;              //  failed attempts of the current replay
    int64_t retry_at;               //  monotonic ms: no session before this
    msgpack_zone zone;              //  buffered events, unpacked for delivery
    zb_catchup_head_t *heads;       //  snapshot scratch (heartbeats, JOURNAL)
    size_t heads_size;

    //  Checkpoint
    uint64_t saved;                 //  position in the file
    int64_t saved_at;               //  monotonic ms
    int64_t save_error_at;          //  last save error logged
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
        spec->topics? spec->name: "none; required with --state-dir", ZB_MAX_CREDIT,
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

//  --from latest|earliest|seq:N|time:RFC3339; false when not valid.
static bool
s_parse_from (consumer_t *self, const char *text)
{
    if (streq (text, "latest"))
        self->from = FROM_LATEST;
    else
    if (streq (text, "earliest"))
        self->from = FROM_EARLIEST;
    else
    if (strncmp (text, "seq:", 4) == 0) {
        if (!zb_cli_parse_u64 (text + 4, &self->from_seq) || self->from_seq == 0)
            return false;
        self->from = FROM_SEQ;
    }
    else
    if (strncmp (text, "time:", 5) == 0) {
        if (zb_time_normalize (text + 5, strlen (text + 5), self->from_time) < 0)
            return false;
        self->from = FROM_TIME;
    }
    else
        return false;
    return true;
}

//  The detail-types a pattern pins down: the elements of its top-level
//  "detail-type" leaf when that is an array of plain strings (each a valid
//  topic). Writes up to max views into pattern (NULL on anything else, which
//  means "every detail-type may match"); returns how many, 0 for none. A
//  "$or" beside such a leaf does not change it: the fields of an object are
//  AND'ed, so every match has one of these detail-types whatever the $or says.
static size_t
s_pattern_topics (json_object *pattern, const char **out, size_t max)
{
    json_object *leaf;
    if (!json_object_is_type (pattern, json_type_object)
    ||  !json_object_object_get_ex (pattern, "detail-type", &leaf)
    ||  !json_object_is_type (leaf, json_type_array))
        return 0;
    size_t n = json_object_array_length (leaf);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_object *element = json_object_array_get_idx (leaf, i);
        if (!json_object_is_type (element, json_type_string))
            return 0;               //  an operator, a number, null: not a plain name
        const char *name = json_object_get_string (element);
        size_t len = (size_t) json_object_get_string_len (element);
        if (len == 0 || len > ZB_MAX_DETAIL_TYPE || strlen (name) != len)
            return 0;               //  not a topic an event can have: play safe
        out [i] = name;
    }
    return n;
}

//  Compile --pattern and add what it subscribes to. -1 to go on, or an exit
//  code.
static int
s_pattern_compile (consumer_t *self)
{
    const char *prog = self->spec->name;
    char err [512];
    self->pattern = zb_patterns_new ();
    assert (self->pattern);
    if (zb_patterns_add (self->pattern, "pattern", self->pattern_text,
                         strlen (self->pattern_text), err, sizeof err) != 0)
        return zb_cli_usage_error (prog, "--pattern is not a valid event pattern: %s", err);
    //  With --rule alone, the pattern filters the rules' deliveries: nothing
    //  more to subscribe to
    if (self->nrules > 0 && self->ntopics == self->nrules && self->nprefixes == 0)
        return -1;
    //  It compiled, so it parses; the parse only serves to find detail-types
    json_object *json = zb_json_parse (self->pattern_text, strlen (self->pattern_text),
                                       err, sizeof err);
    //  The pattern's size limit keeps this small
    size_t room = ZB_PATTERN_DEFAULT_MAX_SIZE;
    const char **names = (const char **) calloc (room, sizeof (char *));
    assert (names);
    size_t n = json? s_pattern_topics (json, names, room): 0;
    const char **topics = (const char **) realloc (self->topics,
                                                  (self->ntopics + n + 1) * sizeof (char *));
    assert (topics);
    self->topics = topics;
    if (n == 0) {
        bool all = false;
        for (size_t i = 0; i < self->nprefixes; i++)
            all = all || !*self->prefixes [i];
        if (!all)
            self->prefixes [self->nprefixes++] = "";
    }
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (size_t j = 0; j < self->ntopics && !have; j++)
            have = streq (self->topics [j], names [i]);
        if (!have) {
            //  Kept for the whole run: the views into json must stay valid
            char *copy = strdup (names [i]);
            assert (copy);
            self->topics [self->ntopics++] = copy;
            self->pattern_topics++;
        }
    }
    self->topics [self->ntopics] = NULL;
    free (names);
    json_object_put (json);
    return -1;
}

//  Returns -1 to continue, or an exit code.
static int
s_parse_args (consumer_t *self, int argc, char **argv)
{
    const zb_consumer_spec_t *spec = self->spec;
    const char *prog = spec->name;
    enum { OPT_CONNECT = 256, OPT_CONTROL, OPT_PREFIX, OPT_FROM, OPT_STATE_DIR, OPT_NAME,
           OPT_CREDIT, OPT_PATTERN, OPT_RULE };
#define COMMON_OPTIONS \
        { "connect",   required_argument, NULL, OPT_CONNECT }, \
        { "control",   required_argument, NULL, OPT_CONTROL }, \
        { "count",     required_argument, NULL, 'n' }, \
        { "quiet",     no_argument,       NULL, 'q' }, \
        { "from",      required_argument, NULL, OPT_FROM }, \
        { "state-dir", required_argument, NULL, OPT_STATE_DIR }, \
        { "name",      required_argument, NULL, OPT_NAME }, \
        { "credit",    required_argument, NULL, OPT_CREDIT }, \
        { "help",      no_argument,       NULL, 'h' }, \
        { "version",   no_argument,       NULL, 'V' }, \
        ZB_CURVE_CLIENT_OPTIONS
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
    self->from = FROM_LATEST;
    self->credit = CONSUMER_CREDIT;
    size_t nfixed = 0;
    if (spec->topics)
        while (spec->topics [nfixed])
            nfixed++;
    self->topics = (const char **) calloc ((size_t) argc + nfixed + 1, sizeof (char *));
    self->rule_topics = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self->rule_topics);
    //  + 1: the "" prefix a --pattern may add
    self->prefixes = (const char **) calloc ((size_t) argc + 2, sizeof (char *));
    assert (self->topics && self->prefixes);
    if (spec->topics)
        for (const char *const *t = spec->topics; *t; t++)
            self->topics [self->ntopics++] = *t;

    opterr = 0;
    optind = 1;
    int opt, rc;
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
                if (!zb_rule_name_ok (optarg, strlen (optarg)))
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
                if (!s_parse_from (self, optarg))
                    return zb_cli_usage_error (prog, "--from wants latest, earliest, seq:N "
                                               "(N >= 1) or time:RFC3339 (e.g. "
                                               "time:2026-11-26T17:15:01Z), not '%s'", optarg);
                break;
            case OPT_STATE_DIR:
                if (!*optarg)
                    return zb_cli_usage_error (prog, "--state-dir wants a directory, not an "
                                               "empty string");
                self->state_dir = optarg;
                break;
            case OPT_NAME:
                if (!zb_checkpoint_name_valid (optarg))
                    return zb_cli_usage_error (prog, "--name wants 1 to %d characters of A-Z a-z "
                                               "0-9 . _ - (not starting with '.'), not '%s'",
                                               ZB_CHECKPOINT_NAME_MAX, optarg);
                self->name = optarg;
                break;
            case OPT_CREDIT:
                if (!zb_cli_parse_range (optarg, 1, ZB_MAX_CREDIT, &value))
                    return zb_cli_usage_error (prog, "--credit wants a number from 1 to %d, "
                                               "not '%s'", ZB_MAX_CREDIT, optarg);
                self->credit = (uint32_t) value;
                break;
            case ZB_CURVE_OPT_SERVER:
            case ZB_CURVE_OPT_CERT:
            case ZB_CURVE_OPT_MAXMSG:
                if (zb_curve_client_option (prog, opt, optarg) != 0)
                    return 2;
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
    if ((rc = zb_curve_client_setup (prog)) != 0)
        return rc;
    if (self->pattern_text) {
        rc = s_pattern_compile (self);
        if (rc >= 0)
            return rc;
    }
    if (self->ntopics == 0 && self->nprefixes == 0)
        return zb_cli_usage_error (prog, "give at least one --topic, --prefix, --rule or --pattern");
    if (self->state_dir && !self->name) {
        if (!spec->topics)
            return zb_cli_usage_error (prog, "--state-dir needs --name (the checkpoint's "
                                       "name)");
        self->name = spec->name;
    }
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
    if (zb_subscriber_subscribe_heartbeats (self->sub) != 0) {
        s_log (self, "cannot subscribe to heartbeats: %s", zmq_strerror (zmq_errno ()));
        return 1;
    }
    char topics [1024];
    s_describe_subscriptions (self, topics, sizeof topics);
    s_log (self, "subscribed to %s at %s", topics, self->connect);
    return 0;
}

//  PING the control socket: true when the broker answered
static bool
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
    return rc == 0;
}

//  Room for n heads in the snapshot scratch
static void
s_heads_reserve (consumer_t *self, size_t n)
{
    if (n <= self->heads_size)
        return;
    zb_catchup_head_t *heads = (zb_catchup_head_t *) realloc (self->heads, n * sizeof *heads);
    assert (heads);
    self->heads = heads;
    self->heads_size = n;
}

//  Fill a snapshot from a map with a head ("seq" or "head") and "topics":
//  {detail-type: topic_seq}. Views into map. false when it has no head.
static bool
s_snapshot (consumer_t *self, const msgpack_object *map, const char *head_key,
            zb_catchup_snapshot_t *snapshot)
{
    const msgpack_object *head = zb_map_get (map, head_key);
    if (!head || head->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    snapshot->seq = head->via.u64;
    const msgpack_object *oldest = zb_map_get (map, "oldest");
    snapshot->oldest = oldest && oldest->type == MSGPACK_OBJECT_POSITIVE_INTEGER?
                       oldest->via.u64: 0;
    snapshot->nheads = 0;
    const msgpack_object *topics = zb_map_get (map, "topics");
    if (topics && topics->type == MSGPACK_OBJECT_MAP) {
        s_heads_reserve (self, topics->via.map.size);
        for (uint32_t i = 0; i < topics->via.map.size; i++) {
            const msgpack_object_kv *kv = &topics->via.map.ptr [i];
            if (kv->key.type != MSGPACK_OBJECT_STR
            ||  kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER
            ||  memchr (kv->key.via.str.ptr, '\0', kv->key.via.str.size))
                continue;
            zb_catchup_head_t *h = &self->heads [snapshot->nheads++];
            h->topic.ptr = kv->key.via.str.ptr;
            h->topic.len = kv->key.via.str.size;
            h->head = kv->val.via.u64;
        }
    }
    snapshot->heads = self->heads;
    return true;
}

//  JOURNAL: the broker's head and the heads of all its topics, the snapshot
//  the consumer starts from. 1 with *reply holding it, 0 when the broker has
//  no journal or does not answer (logged).
static int
s_journal (consumer_t *self, msgpack_unpacked *reply)
{
    char err [256];
    int rc = zb_wire_call (self->control, ZB_CMD_JOURNAL, NULL, 0, CONSUMER_PING_MS,
                           reply, err, sizeof err);
    if (rc == 0 && reply->data.type == MSGPACK_OBJECT_MAP
    &&  zb_map_get (&reply->data, "head"))
        return 1;
    if (rc == 0) {
        msgpack_unpacked_destroy (reply);
        snprintf (err, sizeof err, "its JOURNAL reply has no head");
    }
    if (!zsys_interrupted)
        s_log (self, "warning: no journal snapshot from %s (%s)", self->control, err);
    return 0;
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

//  Print one event; false when it is not JSON-representable.
static bool
s_print (consumer_t *self, const zb_delivery_t *d)
{
    char err [256] = "";
    char *text = NULL;
    if (self->spec->pretty) {
        json_object *json = zb_json_from_msgpack (d->event, err, sizeof err);
        if (json || !err [0])
            text = strdup (json? json_object_to_json_string_ext (json, JSON_C_TO_STRING_PRETTY
                                 | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)
                               : "null");
        json_object_put (json);
        if (text)
            s_pretty_empty (text);
    }
    else
        text = zb_json_text_from_msgpack (d->event, err, sizeof err);
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
s_malformed (consumer_t *self, const char *what, const char *err)
{
    self->malformed++;
    if (self->malformed <= CONSUMER_LOG_MALFORMED)
        s_log (self, "%s: %s", what, err);
    if (self->malformed == CONSUMER_LOG_MALFORMED)
        s_log (self, "further malformed messages are counted, not logged");
}

static bool
s_done (consumer_t *self)
{
    return zsys_interrupted || self->output_failed
        || (self->count && self->received >= self->count);
}

//  Deliver one event: print it, count it, hand it to the program.
static void
s_deliver (consumer_t *self, const zb_delivery_t *d)
{
    const zb_consumer_spec_t *spec = self->spec;
    if (self->pattern) {
        const char *name;
        if (zb_patterns_match (self->pattern, d->event, &name, 1) == 0) {
            self->filtered++;
            return;
        }
    }
    if (!self->quiet) {
        if (!s_print (self, d))
            return;
        self->pending_output = true;
    }
    int64_t now = s_realtime_ns ();
    if (self->received == 0)
        self->first_ns = now;
    self->last_ns = now;
    self->received++;
    zb_counts_add (self->per_topic, d->topic.ptr, d->topic.len);
    if (spec->on_event)
        spec->on_event (spec->state, d);
}

//  Deliver the buffered live events that may go now (after a replay ended)
static void
s_drain (consumer_t *self)
{
    while (!s_done (self)) {
        zb_catchup_event_t ev;
        zb_catchup_verdict_t verdict = zb_catchup_next (self->catchup, &ev);
        if (verdict == ZB_CATCHUP_DROP)
            break;
        if (verdict != ZB_CATCHUP_DELIVER)
            continue;
        msgpack_object event;
        size_t offset = 0;
        msgpack_zone_clear (&self->zone);
        if (msgpack_unpack (ev.raw.ptr, ev.raw.len, &offset, &self->zone, &event)
            != MSGPACK_UNPACK_SUCCESS) {
            s_malformed (self, "buffered event could not be unpacked", "out of memory");
            continue;
        }
        zb_delivery_t d = {
            .topic = ev.topic, .seq = ev.seq, .topic_seq = ev.topic_seq,
            .missed = 0, .event = &event, .raw = ev.raw
        };
        s_deliver (self, &d);
    }
}

//  One message from the publish socket: 1 handled, 0 nothing waiting
static int
s_read_live (consumer_t *self)
{
    zb_delivery_t d;
    char err [256];
    int rc = zb_subscriber_recv (self->sub, &d, 0, err, sizeof err);
    if (rc == 0)
        return 0;
    if (rc < 0)
        s_malformed (self, "malformed message dropped", err);
    else
    if (rc == 2) {
        zb_catchup_snapshot_t heartbeat;
        if (s_snapshot (self, d.event, "seq", &heartbeat))
            zb_catchup_heartbeat (self->catchup, &heartbeat);
        else
            s_malformed (self, "malformed heartbeat dropped", "no seq in its body");
    }
    else {
        zb_catchup_event_t ev = {
            .topic = d.topic, .seq = d.seq, .topic_seq = d.topic_seq, .raw = d.raw
        };
        if (zb_catchup_live (self->catchup, &ev) == ZB_CATCHUP_DELIVER)
            s_deliver (self, &d);
    }
    s_drain (self);
    return 1;
}

static int64_t
s_replay_wait_ms (consumer_t *self)
{
    int64_t wait = CONSUMER_REPLAY_WAIT_MS;
    for (unsigned i = 0; i < self->attempts && wait < CONSUMER_REPLAY_WAIT_MAX_MS; i++)
        wait *= 2;
    return wait < CONSUMER_REPLAY_WAIT_MAX_MS? wait: CONSUMER_REPLAY_WAIT_MAX_MS;
}

static int64_t
s_retry_ms (consumer_t *self)
{
    int64_t wait = CONSUMER_RETRY_MS;
    for (unsigned i = 1; i < self->attempts && wait < CONSUMER_RETRY_MAX_MS; i++)
        wait *= 2;
    return wait < CONSUMER_RETRY_MAX_MS? wait: CONSUMER_RETRY_MAX_MS;
}

//  Open a replay session when catchup wants one and none is open
static void
s_replay_open (consumer_t *self)
{
    if (!zb_catchup_replaying (self->catchup) || zb_replay_client_active (self->replay)
    ||  zclock_mono () < self->retry_at)
        return;
    zb_replay_client_request_t request = {
        .topics = self->topics, .ntopics = self->ntopics,
        .prefixes = self->prefixes, .nprefixes = self->nprefixes,
    };
    zb_catchup_replay_range (self->catchup, &request.from, &request.to);
    const char *late = zb_catchup_replay_topic (self->catchup);
    if (late) {
        //  A late replay: of that one topic alone
        request.topics = &late;
        request.ntopics = 1;
        request.prefixes = NULL;
        request.nprefixes = 0;
    }
    else
    if (self->time_pending && zb_catchup_position (self->catchup) == 0)
        request.from_time = self->from_time;
    char err [256];
    if (zb_replay_client_open (self->replay, &request, err, sizeof err) != 0) {
        self->attempts++;
        self->retry_at = zclock_mono () + s_retry_ms (self);
        s_log (self, "%s; retrying in %" PRId64 " ms", err, s_retry_ms (self));
    }
}

static void
s_replay_failed (consumer_t *self, const char *why)
{
    self->attempts++;
    int64_t wait = s_retry_ms (self);
    self->retry_at = zclock_mono () + wait;
    s_log (self, "replay from %s failed (%s); retrying in %" PRId64 " ms (attempt %u)",
           self->control, why, wait, self->attempts + 1);
}

//  One message from the control socket: 1 handled, 0 nothing waiting
static int
s_read_replay (consumer_t *self)
{
    zb_replay_client_msg_t msg;
    zb_replay_client_kind_t kind = zb_replay_client_recv (self->replay, &msg);
    switch (kind) {
        case ZB_REPLAY_CLIENT_NONE:
            return 0;
        case ZB_REPLAY_CLIENT_STRAY:
            break;
        case ZB_REPLAY_CLIENT_MALFORMED:
            s_malformed (self, "malformed replay message dropped", msg.text);
            break;
        case ZB_REPLAY_CLIENT_EVENT: {
            self->attempts = 0;
            zb_catchup_event_t ev = {
                .topic = msg.event.topic, .seq = msg.event.seq,
                .topic_seq = msg.event.topic_seq, .raw = msg.event.raw
            };
            if (zb_catchup_replayed (self->catchup, &ev) == ZB_CATCHUP_DELIVER)
                s_deliver (self, &msg.event);
            break;
        }
        case ZB_REPLAY_CLIENT_END:
            self->attempts = 0;
            self->time_pending = false;
            zb_catchup_end (self->catchup, msg.last, msg.head);
            if (self->initial && !zb_catchup_replaying (self->catchup)) {
                self->initial = false;
                s_log (self, "caught up at seq %" PRIu64 " (%" PRIu64 " events replayed, "
                       "broker head %" PRIu64 ")", zb_catchup_position (self->catchup),
                       zb_catchup_replayed_count (self->catchup), msg.head);
            }
            s_drain (self);
            break;
        case ZB_REPLAY_CLIENT_ERROR:
            s_replay_failed (self, msg.text);
            break;
    }
    return 1;
}

//  Save the position when it moved (at most every CONSUMER_CHECKPOINT_MS
//  unless forced), after flushing what was printed.
static void
s_checkpoint (consumer_t *self, bool force)
{
    if (!self->checkpoint)
        return;
    //  Never past an event known missing that waits for its late replay
    uint64_t position = zb_catchup_safe_position (self->catchup);
    int64_t now = zclock_mono ();
    if (position == self->saved || (!force && now - self->saved_at < CONSUMER_CHECKPOINT_MS))
        return;
    if (self->pending_output) {
        s_flush (self);
        self->pending_output = false;
    }
    if (self->output_failed)
        return;                     //  never record events as done that were not written
    char err [512];
    if (zb_checkpoint_save (self->checkpoint, position, err, sizeof err) == 0) {
        self->saved = position;
        self->saved_at = now;
        return;
    }
    if (force || now - self->save_error_at >= 10000) {
        s_log (self, "%s", err);
        self->save_error_at = now;
    }
    self->saved_at = now;           //  do not retry on every event
}

static void
s_receive_loop (consumer_t *self)
{
    void *live = zb_subscriber_handle (self->sub);
    void *control = zb_replay_client_handle (self->replay);
    while (!s_done (self)) {
        s_replay_open (self);

        //  Wait for input, a retry, a session timeout, or a checkpoint due
        int64_t now = zclock_mono ();
        long wait = CONSUMER_WAIT_MS;
        if (self->pending_output)
            wait = 0;
        if (zb_catchup_replaying (self->catchup)) {
            int64_t until = zb_replay_client_active (self->replay)
                          ? s_replay_wait_ms (self) - zb_replay_client_idle_ms (self->replay)
                          : self->retry_at - now;
            if (until < wait)
                wait = until < 0? 0: (long) until;
        }
        if (self->checkpoint && zb_catchup_safe_position (self->catchup) != self->saved) {
            int64_t until = self->saved_at + CONSUMER_CHECKPOINT_MS - now;
            if (until < wait)
                wait = until < 0? 0: (long) until;
        }
        zmq_pollitem_t items [] = {
            { live, 0, ZMQ_POLLIN, 0 },
            { control, 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll (items, 2, wait);
        if (rc == -1)
            continue;               //  EINTR: the loop checks zsys_interrupted
        if (rc == 0 && self->pending_output) {
            s_flush (self);
            self->pending_output = false;
        }
        //  Replay messages first: they grant credit and end catch-up
        for (int i = 0; i < CONSUMER_BATCH && !s_done (self) && s_read_replay (self); i++)
            ;
        for (int i = 0; i < CONSUMER_BATCH && !s_done (self) && s_read_live (self); i++)
            ;
        if (zb_replay_client_active (self->replay)
        &&  zb_replay_client_idle_ms (self->replay) >= s_replay_wait_ms (self)) {
            int64_t waited = zb_replay_client_idle_ms (self->replay);
            zb_replay_client_cancel (self->replay);
            self->attempts++;
            s_log (self, "no answer to REPLAY from %s within %" PRId64 " ms; sending it again "
                   "(attempt %u)", self->control, waited, self->attempts + 1);
        }
        s_checkpoint (self, false);
    }
    s_flush (self);
    self->pending_output = false;
}

//  Where to start: the checkpoint, else --from; with the journal's snapshot
//  when the broker gave one. 0, or an exit code.
static int
s_start (consumer_t *self, bool broker_up)
{
    uint64_t position = 0;
    bool resume = false;
    if (self->checkpoint) {
        char err [512];
        int rc = zb_checkpoint_load (self->checkpoint, &position, err, sizeof err);
        if (rc < 0) {
            s_log (self, "%s", err);
            return 1;
        }
        resume = rc == 1;
        self->saved = position;
        self->saved_at = zclock_mono ();
    }
    msgpack_unpacked journal;
    msgpack_unpacked_init (&journal);
    zb_catchup_snapshot_t snapshot;
    bool have = broker_up && s_journal (self, &journal)
             && s_snapshot (self, &journal.data, "head", &snapshot);
    const zb_catchup_snapshot_t *snap = have? &snapshot: NULL;
    if (have)
        s_log (self, "journal at seq %" PRIu64 " (oldest %" PRIu64 ")", snapshot.seq,
               snapshot.oldest);

    if (resume) {
        s_log (self, "resuming after seq %" PRIu64 " (checkpoint %s)", position,
               zb_checkpoint_path (self->checkpoint));
        zb_catchup_start_replay (self->catchup, position, 0, position == 0, snap);
    }
    else
    if (self->from == FROM_LATEST) {
        if (snap)
            zb_catchup_start_at (self->catchup, snap);
        else {
            s_log (self, "starting without a snapshot: events are delivered as they come "
                   "until the broker's first heartbeat");
            zb_catchup_start_unanchored (self->catchup);
        }
    }
    else
    if (self->from == FROM_EARLIEST)
        zb_catchup_start_replay (self->catchup, 0, 0, true, snap);
    else
    if (self->from == FROM_SEQ) {
        position = self->from_seq - 1;
        //  Past the head: wait for seq N from the head on
        if (snap && position > snap->seq)
            position = snap->seq;
        zb_catchup_start_replay (self->catchup, position, self->from_seq, position == 0, snap);
    }
    else {
        self->time_pending = true;
        zb_catchup_start_replay (self->catchup, 0, 0, false, snap);
    }
    self->initial = zb_catchup_replaying (self->catchup);
    if (self->initial) {
        uint64_t from, to;
        zb_catchup_replay_range (self->catchup, &from, &to);
        char range [64];
        if (to)
            snprintf (range, sizeof range, "%" PRIu64 "..%" PRIu64, from, to);
        else
            snprintf (range, sizeof range, "%" PRIu64 "..head", from);
        if (self->time_pending && from == 1)
            s_log (self, "catching up: replaying from %s", self->from_time);
        else
            s_log (self, "catching up: replaying seq %s", range);
    }
    else
    if (zb_catchup_anchored (self->catchup)) {
        if (self->from == FROM_SEQ && !resume
        &&  self->from_seq > zb_catchup_position (self->catchup) + 1)
            s_log (self, "starting after seq %" PRIu64 ", delivering from seq %" PRIu64,
                   zb_catchup_position (self->catchup), self->from_seq);
        else
            s_log (self, "starting after seq %" PRIu64, zb_catchup_position (self->catchup));
    }
    msgpack_unpacked_destroy (&journal);
    return 0;
}

static void
s_catchup_log (void *arg, const char *line)
{
    s_log ((const consumer_t *) arg, "%s", line);
}

static json_object *
s_summary (consumer_t *self)
{
    json_object *summary = json_object_new_object ();
    json_object_object_add (summary, "received", json_object_new_uint64 (self->received));
    json_object_object_add (summary, "missed",
                            json_object_new_uint64 (zb_catchup_missed (self->catchup)));
    json_object_object_add (summary, "malformed", json_object_new_uint64 (self->malformed));
    if (!self->spec->topics)
        json_object_object_add (summary, "filtered", json_object_new_uint64 (self->filtered));

    json_object_object_add (summary, "topics", zb_counts_json (self->per_topic));
    json_object_object_add (summary, "first_ns",
                            self->received? json_object_new_int64 (self->first_ns): NULL);
    json_object_object_add (summary, "last_ns",
                            self->received? json_object_new_int64 (self->last_ns): NULL);
    json_object_object_add (summary, "replayed",
                            json_object_new_uint64 (zb_catchup_replayed_count (self->catchup)));
    json_object_object_add (summary, "position",
                            json_object_new_uint64 (zb_catchup_position (self->catchup)));
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
    for (size_t i = self->ntopics - self->pattern_topics; i < self->ntopics; i++)
        free ((char *) self->topics [i]);
    free (self->topics);
    for (size_t i = 0; i < self->nrules; i++)
        free (self->rule_topics [i]);
    free (self->rule_topics);
    free (self->prefixes);
    zb_patterns_destroy (&self->pattern);
}

int
zb_consumer_main (int argc, char **argv, const zb_consumer_spec_t *spec)
{
    assert (spec && spec->name && spec->purpose);
    consumer_t self = { .spec = spec };
    int rc = s_parse_args (&self, argc, argv);
    if (rc >= 0) {
        s_free_args (&self);
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

    self.per_topic = zb_counts_new ();
    assert (self.per_topic);
    msgpack_zone_init (&self.zone, 16 * 1024);
    zb_catchup_config_t config = {
        .topics = self.topics, .ntopics = self.ntopics,
        .prefixes = self.prefixes, .nprefixes = self.nprefixes,
        .log = s_catchup_log, .log_arg = &self,
    };
    self.catchup = zb_catchup_new (&config);
    assert (self.catchup);

    char err [512];
    rc = 0;
    if (self.state_dir) {
        self.checkpoint = zb_checkpoint_open (self.state_dir, self.name, err, sizeof err);
        if (!self.checkpoint) {
            s_log (&self, "%s", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        self.replay = zb_replay_client_new (self.control, self.credit, err, sizeof err);
        if (!self.replay) {
            s_log (&self, "%s", err);
            rc = 1;
        }
    }
    if (rc == 0)
        rc = s_subscribe (&self);
    if (rc == 0)
        rc = s_start (&self, s_ping (&self));
    if (rc == 0) {
        s_receive_loop (&self);
        s_checkpoint (&self, true);
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
    zb_replay_client_destroy (&self.replay);
    zb_subscriber_destroy (&self.sub);
    zb_checkpoint_destroy (&self.checkpoint);
    zb_catchup_destroy (&self.catchup);
    msgpack_zone_destroy (&self.zone);
    free (self.heads);
    zb_counts_destroy (&self.per_topic);
    s_free_args (&self);
    return rc;
}
