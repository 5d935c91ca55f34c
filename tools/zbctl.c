/*  zbctl - talk to a running zbridge broker: health, statistics, one PUT,
    following events, reading the journal back.

    zbctl [--control EP] [--ingest EP] [--publish EP] [--timeout MS] COMMAND [options]
        ping                 PING the control socket
        stats [--json] [--watch [SECS]]
                             STATS, as a table per topic with rates or as the raw
                             reply in JSON; --watch refreshes until Ctrl-C
        tail ...             follow events (zbctl_tail.c)
        replay ...           read the journal, to stdout or into a topic (zbctl_replay.c)
        journal [--json]     JOURNAL: the journal's head, oldest, size, topic heads
        put --source S --detail-type T [--detail JSON] [--resources R1,R2] [--time T]
                             one PUT request of one entry to the ingest socket
        test-pattern --pattern JSON --event JSON
                             does the event match the event pattern? (local,
                             no broker; EventBridge's TestEventPattern)
        rule put NAME --pattern JSON [--transform JSON]
        rule get NAME [--json] | rule list [--prefix P] [--json] | rule delete NAME
                             the broker's rules (RULE-PUT, RULE-GET, RULE-LIST,
                             RULE-DELETE on the control socket)
        keygen NAME          write a CURVE key pair: NAME (public certificate)
                             and NAME_secret in the current directory (local)

    The global options may also follow the command. Exit status: 0 success,
    1 the broker did not answer, answered ERROR or rejected the entry, 2 usage.
    test-pattern: 0 match, 1 no match, 2 usage or an invalid pattern or event. */

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "curve.h"
#include "event.h"
#include "pattern.h"
#include "rfc3339.h"
#include "wire.h"
#include "zbctl.h"

#define PROG "zbctl"

typedef struct {
    const char *control;
    const char *ingest;
    const char *publish;
    int timeout_ms;
    //  stats
    bool json;
    bool watch;
    uint64_t watch_s;
    //  put
    const char *source;
    const char *detail_type;
    const char *detail;
    const char *resources;
    const char *time;
    //  test-pattern, rule
    const char *pattern;
    const char *event;
    const char *transform;
    const char *prefix;
    //  CURVE flags as given (zbctl tail passes them on)
    const char *curve_server;
    const char *curve_cert;
    const char *max_msg_size;
} zbctl_t;

enum {
    OPT_CONTROL = 256, OPT_INGEST, OPT_TIMEOUT, OPT_JSON,
    OPT_SOURCE, OPT_DETAIL_TYPE, OPT_DETAIL, OPT_RESOURCES, OPT_TIME,
    OPT_PATTERN, OPT_EVENT, OPT_TRANSFORM, OPT_PREFIX, OPT_PUBLISH, OPT_WATCH
};

#define GLOBAL_OPTIONS \
    { "control", required_argument, NULL, OPT_CONTROL }, \
    { "ingest",  required_argument, NULL, OPT_INGEST }, \
    { "publish", required_argument, NULL, OPT_PUBLISH }, \
    { "timeout", required_argument, NULL, OPT_TIMEOUT }, \
    { "help",    no_argument,       NULL, 'h' }, \
    { "version", no_argument,       NULL, 'V' }, \
    ZB_CURVE_CLIENT_OPTIONS

static const struct option s_global_options [] = {
    GLOBAL_OPTIONS, { NULL, 0, NULL, 0 }
};
static const struct option s_ping_options [] = {
    GLOBAL_OPTIONS, { NULL, 0, NULL, 0 }
};
static const struct option s_stats_options [] = {
    GLOBAL_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { "watch", optional_argument, NULL, OPT_WATCH },
    { NULL, 0, NULL, 0 }
};
static const struct option s_journal_options [] = {
    GLOBAL_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 }
};
static const struct option s_put_options [] = {
    GLOBAL_OPTIONS,
    { "source",      required_argument, NULL, OPT_SOURCE },
    { "detail-type", required_argument, NULL, OPT_DETAIL_TYPE },
    { "detail",      required_argument, NULL, OPT_DETAIL },
    { "resources",   required_argument, NULL, OPT_RESOURCES },
    { "time",        required_argument, NULL, OPT_TIME },
    { NULL, 0, NULL, 0 }
};
static const struct option s_keygen_options [] = {
    GLOBAL_OPTIONS, { NULL, 0, NULL, 0 }
};
static const struct option s_test_pattern_options [] = {
    GLOBAL_OPTIONS,
    { "pattern", required_argument, NULL, OPT_PATTERN },
    { "event",   required_argument, NULL, OPT_EVENT },
    { NULL, 0, NULL, 0 }
};

static const struct option s_rule_options [] = {
    GLOBAL_OPTIONS,
    { "pattern",   required_argument, NULL, OPT_PATTERN },
    { "transform", required_argument, NULL, OPT_TRANSFORM },
    { "prefix",    required_argument, NULL, OPT_PREFIX },
    { "json",      no_argument,       NULL, OPT_JSON },
    { NULL, 0, NULL, 0 }
};

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: " PROG " [--control EP] [--ingest EP] [--publish EP] [--timeout MS] COMMAND [options]\n"
        "Talk to a running zbridge broker.\n\n"
        "Options:\n"
        "      --control EP     broker control endpoint (default " ZB_DEFAULT_CONTROL ")\n"
        "      --ingest EP      broker ingest endpoint (default " ZB_DEFAULT_INGEST ")\n"
        "      --publish EP     broker publish endpoint, for tail (default " ZB_DEFAULT_PUBLISH ")\n"
        "      --timeout MS     how long to wait for a reply (default 2000)\n"
        "  -h, --help           show this help\n"
        "  -V, --version        show the version\n"
        ZB_CURVE_CLIENT_HELP "\n"
        "Commands:\n"
        "  ping                 PING the control socket:\n"
        "                       prints \"ok seq=N version=V uptime=Xs\"\n"
        "  stats [--json] [--watch [SECS]]\n"
        "                       broker counters, connections, active producers, catch-up\n"
        "                       (replays and each replaying client's lag), the journal,\n"
        "                       and a table per topic (in, out, rejected, subscribers,\n"
        "                       seq, in/s, out/s); --json: the raw reply as JSON;\n"
        "                       --watch: refresh every SECS (default 2) like top until\n"
        "                       Ctrl-C, rates over the last interval (with --json: one\n"
        "                       line per refresh, with \"rates\" and \"interval_s\")\n"
        "  tail TOPIC... | --rule NAME | --pattern JSON [--prefix P] [--from WHERE]\n"
        "       [--json] [-n N]\n"
        "                       follow events until Ctrl-C, as indented JSON (--json:\n"
        "                       one line each), with catch-up from the journal\n"
        "                       (zbctl tail --help)\n"
        "  replay --from N|seq:N|earliest|time:RFC3339 [--to N] [--topic T]... [--into TOPIC]\n"
        "                       read the journal (REPLAY): JSON lines on stdout, or put\n"
        "                       again as detail-type TOPIC (zbctl replay --help)\n"
        "  journal [--json]     the broker's journal: backend, path, head and oldest seq,\n"
        "                       events, bytes, retention, and the last topic_seq per\n"
        "                       topic; --json: the raw reply as JSON\n"
        "  put --source S --detail-type T [--detail JSON] [--resources R1,R2] [--time RFC3339]\n"
        "                       put one event through the ingest socket; prints the\n"
        "                       reply as JSON: {\"failed\":0,\"results\":[{\"id\":..,\"seq\":..}]}\n"
        "                       (a rejected entry's result is {\"code\":..,\"message\":..});\n"
        "                       --detail defaults to {}\n"
        "  test-pattern --pattern JSON --event JSON\n"
        "                       match one event against an EventBridge event pattern,\n"
        "                       locally (no broker); the event is a full envelope as\n"
        "                       the consumers print it; prints true or false\n"
        "  rule put NAME --pattern JSON [--transform JSON]\n"
        "                       add or replace the broker rule NAME: every event\n"
        "                       matching the pattern is also published on the topic\n"
        "                       $rule/NAME (zb-consumer --rule NAME), or the output of\n"
        "                       the transform ({\"InputPathsMap\": {...}, \"InputTemplate\":\n"
        "                       \"...\"}, EventBridge's input transformer)\n"
        "  rule get NAME [--json]   one rule: pattern, transform, topic, events matched\n"
        "  rule list [--prefix P] [--json]\n"
        "                       every rule (whose name starts with P), one per line\n"
        "  rule delete NAME     remove a rule\n\n"
        "  keygen NAME          write a new CURVE key pair in the current directory:\n"
        "                       NAME (the public certificate: give it to the broker's\n"
        "                       --curve-allow directory, or to clients as --curve-server)\n"
        "                       and NAME_secret (mode 0600: --curve-cert of its owner);\n"
        "                       never overwrites a file; prints the public key\n\n"
        "Exit status:\n"
        "  0  success\n"
        "  1  no reply within --timeout (the endpoint is named), an ERROR reply, a\n"
        "     rejected entry\n"
        "  2  usage: unknown command or option, bad value\n"
        "test-pattern: 0 the event matches, 1 it does not, 2 an invalid pattern or event.\n\n"
        "Examples:\n"
        "  " PROG " ping\n"
        "  " PROG " --control tcp://10.0.0.5:5557 stats\n"
        "  " PROG " stats --json\n"
        "  " PROG " stats --watch 5\n"
        "  " PROG " tail sales-events\n"
        "  " PROG " tail --rule big-sales --from earliest --json\n"
        "  " PROG " replay --from earliest --topic sales-events > sales.jsonl\n"
        "  " PROG " replay --from time:2026-11-26T17:00:00Z --to 5000 --topic sales-events \\\n"
        "        --into sales-events-replayed\n"
        "  " PROG " journal\n"
        "  " PROG " keygen store-7     # then: cp store-7 /etc/zbridge/clients/\n"
        "  " PROG " --curve-server broker --curve-cert store-7_secret ping\n"
        "  " PROG " put --source store-7 --detail-type sales-events \\\n"
        "        --detail '{\"store_id\":\"store_1\",\"sales\":12.5}' --resources shelf-3,till-1\n"
        "  " PROG " rule put big-sales \\\n"
        "        --pattern '{\"detail-type\":[\"sales-events\"],\"detail\":{\"sales\":[{\"numeric\":[\">\",50]}]}}'\n"
        "  " PROG " rule put store2-lines --pattern '{\"detail\":{\"store_id\":[\"store_2\"]}}' \\\n"
        "        --transform '{\"InputPathsMap\":{\"s\":\"$.detail.sales\"},\"InputTemplate\":\"sold <s>\"}'\n"
        "  " PROG " rule list\n"
        "  " PROG " rule delete big-sales\n"
        "  " PROG " test-pattern \\\n"
        "        --pattern '{\"detail-type\":[\"sales-events\"],\"detail\":{\"sales\":[{\"numeric\":[\">\",50]}]}}' \\\n"
        "        --event '{\"version\":\"0\",\"id\":\"6f1c2b1e-0d5a-4c1e-9a0b-1f2e3d4c5b6a\",\n"
        "                  \"detail-type\":\"sales-events\",\"source\":\"store-7\",\n"
        "                  \"account\":\"000000000000\",\"time\":\"2026-11-26T17:15:01Z\",\n"
        "                  \"region\":\"local\",\"resources\":[],\n"
        "                  \"detail\":{\"store_id\":\"store_2\",\"sales\":72.5}}'\n");
}

//  Parse options of one table. -1 to go on, else an exit code.
//  With stop_at_command, parsing stops at the first non-option (the command).
static int
s_parse (zbctl_t *self, int argc, char **argv, const struct option *options,
         bool stop_at_command, const char *command)
{
    opterr = 0;
    optind = 0;                 //  full re-initialization in glibc
    int opt;
    const char *shorts = stop_at_command? "+:hV": ":hV";
    while ((opt = getopt_long (argc, argv, shorts, options, NULL)) != -1) {
        switch (opt) {
            case OPT_CONTROL: self->control = optarg; break;
            case OPT_INGEST:  self->ingest = optarg; break;
            case OPT_PUBLISH: self->publish = optarg; break;
            case OPT_WATCH:
                self->watch = true;
                if (optarg && !zb_cli_parse_range (optarg, 1, 86400, &self->watch_s))
                    return zb_cli_usage_error (PROG, "--watch wants seconds from 1 to 86400, "
                                               "not '%s'", optarg);
                break;
            case OPT_TIMEOUT: {
                uint64_t value;
                if (!zb_cli_parse_range (optarg, 1, 3600 * 1000, &value))
                    return zb_cli_usage_error (PROG, "--timeout wants milliseconds from 1 to "
                                               "3600000, not '%s'", optarg);
                self->timeout_ms = (int) value;
                break;
            }
            case OPT_JSON:        self->json = true; break;
            case OPT_SOURCE:      self->source = optarg; break;
            case OPT_DETAIL_TYPE: self->detail_type = optarg; break;
            case OPT_DETAIL:      self->detail = optarg; break;
            case OPT_RESOURCES:   self->resources = optarg; break;
            case OPT_TIME:        self->time = optarg; break;
            case OPT_PATTERN:     self->pattern = optarg; break;
            case OPT_EVENT:       self->event = optarg; break;
            case OPT_TRANSFORM:   self->transform = optarg; break;
            case OPT_PREFIX:      self->prefix = optarg; break;
            case ZB_CURVE_OPT_SERVER:
            case ZB_CURVE_OPT_CERT:
            case ZB_CURVE_OPT_MAXMSG:
                if (zb_curve_client_option (PROG, opt, optarg) != 0)
                    return 2;
                if (opt == ZB_CURVE_OPT_SERVER)
                    self->curve_server = optarg;
                else
                if (opt == ZB_CURVE_OPT_CERT)
                    self->curve_cert = optarg;
                else
                    self->max_msg_size = optarg;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf (PROG " %s\n", ZB_VERSION);
                return 0;
            default:
                if (opt != ':' && command && strncmp (argv [optind - 1], "--", 2) == 0)
                    return zb_cli_usage_error (PROG, "'%s' is not an option of %s",
                                               argv [optind - 1], command);
                return zb_cli_option_error (PROG, opt, argv);
        }
    }
    return -1;
}

//  An unsigned integer value of a map, for display
static uint64_t
s_uint (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = zb_map_get (map, key);
    if (value && value->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return value->via.u64;
    return 0;
}

//  A string value of a map as printf arguments ("?" when absent)
#define STR_ARGS(obj) \
    (obj) && (obj)->type == MSGPACK_OBJECT_STR? (int) (obj)->via.str.size: 1, \
    (obj) && (obj)->type == MSGPACK_OBJECT_STR? (obj)->via.str.ptr: "?"

static int
s_call (zbctl_t *self, const char *endpoint, const char *command,
        const void *body, size_t bodylen, msgpack_unpacked *reply)
{
    char err [512];
    int rc = zb_wire_call (endpoint, command, body, bodylen, self->timeout_ms, reply,
                           err, sizeof err);
    if (rc != 0)
        return zb_cli_error (PROG, "%s", err);
    if (reply->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy (reply);
        return zb_cli_error (PROG, "bad reply from %s: the body is not a map", endpoint);
    }
    return 0;
}

static int
s_ping (zbctl_t *self)
{
    msgpack_unpacked reply;
    int rc = s_call (self, self->control, ZB_CMD_PING, NULL, 0, &reply);
    if (rc)
        return rc;
    const msgpack_object *version = zb_map_get (&reply.data, "version");
    printf ("ok seq=%" PRIu64 " version=%.*s uptime=%" PRIu64 "s\n",
            s_uint (&reply.data, "seq"), STR_ARGS (version),
            s_uint (&reply.data, "uptime_ms") / 1000);
    msgpack_unpacked_destroy (&reply);
    return 0;
}

static int
s_compare_keys (const void *a, const void *b)
{
    const msgpack_object_kv *x = (const msgpack_object_kv *) a;
    const msgpack_object_kv *y = (const msgpack_object_kv *) b;
    uint32_t xl = x->key.type == MSGPACK_OBJECT_STR? x->key.via.str.size: 0;
    uint32_t yl = y->key.type == MSGPACK_OBJECT_STR? y->key.via.str.size: 0;
    int rc = memcmp (x->key.via.str.ptr, y->key.via.str.ptr, xl < yl? xl: yl);
    return rc? rc: (xl > yl) - (xl < yl);
}

//  A byte count for people: "812 B", "3.4 KiB", "120.0 MiB"
static void
s_bytes (uint64_t bytes, char *out, size_t size)
{
    if (bytes < 1024)
        snprintf (out, size, "%" PRIu64 " B", bytes);
    else
    if (bytes < 1024 * 1024)
        snprintf (out, size, "%.1f KiB", (double) bytes / 1024);
    else
    if (bytes < 1024ULL * 1024 * 1024)
        snprintf (out, size, "%.1f MiB", (double) bytes / (1024 * 1024));
    else
        snprintf (out, size, "%.2f GiB", (double) bytes / (1024.0 * 1024 * 1024));
}

//  "journal lmdb (sync commit): head 500, oldest 1, 500 events, 120.0 KiB"
static void
s_journal_line (const msgpack_object *journal)
{
    const msgpack_object *backend = zb_map_get (journal, "backend");
    const msgpack_object *sync = zb_map_get (journal, "sync");
    char bytes [32];
    s_bytes (s_uint (journal, "bytes"), bytes, sizeof bytes);
    printf ("journal %.*s (sync %.*s): head %" PRIu64 ", oldest %" PRIu64 ", %" PRIu64
            " events, %s\n", STR_ARGS (backend), STR_ARGS (sync), s_uint (journal, "head"),
            s_uint (journal, "oldest"), s_uint (journal, "events"), bytes);
}

//  Print a reply map as one line of JSON
static int
s_print_json (const msgpack_object *map, const char *what)
{
    char err [256];
    char *text = zb_json_text_from_msgpack (map, err, sizeof err);
    if (!text)
        return zb_cli_error (PROG, "cannot show the %s reply as JSON: %s", what, err);
    puts (text);
    free (text);
    return 0;
}

//  Topic rows of a map {"<topic>": value}, sorted by name (keys that are not
//  strings skipped). Returns the rows (caller frees) and the widest name.
static msgpack_object_kv *
s_sorted_rows (const msgpack_object *topics, uint32_t *nrows, int *width);

static int
s_journal (zbctl_t *self)
{
    msgpack_unpacked reply;
    int rc = s_call (self, self->control, "JOURNAL", NULL, 0, &reply);
    if (rc)
        return rc;
    const msgpack_object *journal = &reply.data;
    if (self->json) {
        rc = s_print_json (journal, "JOURNAL");
        msgpack_unpacked_destroy (&reply);
        return rc;
    }
    const msgpack_object *path = zb_map_get (journal, "path");
    s_journal_line (journal);
    if (path && path->type == MSGPACK_OBJECT_STR && path->via.str.size)
        printf ("path %.*s\n", STR_ARGS (path));
    uint64_t hours = s_uint (journal, "retain_hours");
    uint64_t mb = s_uint (journal, "retain_mb");
    char hours_text [32] = "no age limit", mb_text [32] = "no size limit";
    if (hours)
        snprintf (hours_text, sizeof hours_text, "%" PRIu64 " h", hours);
    if (mb)
        snprintf (mb_text, sizeof mb_text, "%" PRIu64 " MiB", mb);
    printf ("retention %s, %s\n", hours_text, mb_text);

    uint32_t nrows;
    int width;
    msgpack_object_kv *rows = s_sorted_rows (zb_map_get (journal, "topics"), &nrows, &width);
    if (nrows == 0)
        printf ("no topics yet\n");
    else {
        printf ("\n%-*s %12s\n", width, "topic", "seq");
        for (uint32_t i = 0; i < nrows; i++) {
            const msgpack_object *v = &rows [i].val;
            int pad = width - (int) rows [i].key.via.str.size;
            printf ("%.*s%*s %12" PRIu64 "\n", (int) rows [i].key.via.str.size,
                    rows [i].key.via.str.ptr, pad, "",
                    v->type == MSGPACK_OBJECT_POSITIVE_INTEGER? v->via.u64: 0);
        }
    }
    free (rows);
    msgpack_unpacked_destroy (&reply);
    return 0;
}

static msgpack_object_kv *
s_sorted_rows (const msgpack_object *topics, uint32_t *nrows, int *width)
{
    uint32_t ntopics = topics && topics->type == MSGPACK_OBJECT_MAP? topics->via.map.size: 0;
    //  Sort a copy of the entries by topic name; skip keys that are not strings
    msgpack_object_kv *rows = (msgpack_object_kv *) calloc (ntopics + 1, sizeof *rows);
    assert (rows);
    *nrows = 0;
    *width = 5;                 //  strlen ("topic")
    for (uint32_t i = 0; i < ntopics; i++) {
        const msgpack_object_kv *kv = &topics->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            continue;
        rows [(*nrows)++] = *kv;
        if ((int) kv->key.via.str.size > *width)
            *width = (int) kv->key.via.str.size;
    }
    qsort (rows, *nrows, sizeof *rows, s_compare_keys);
    return rows;
}

//  A topic's row of the previous STATS sample (sorted rows), or NULL
static const msgpack_object *
s_previous_row (const msgpack_object_kv *rows, uint32_t nrows, const msgpack_object *key)
{
    msgpack_object_kv probe = { .key = *key };
    const msgpack_object_kv *found = (const msgpack_object_kv *)
        bsearch (&probe, rows, nrows, sizeof *rows, s_compare_keys);
    return found? &found->val: NULL;
}

//  Events per second of a counter between two samples (prev NULL: since start)
static double
s_rate (const msgpack_object *now, const msgpack_object *prev, const char *key, double seconds)
{
    uint64_t a = s_uint (now, key), b = prev? s_uint (prev, key): 0;
    return seconds > 0 && a >= b? (double) (a - b) / seconds: 0.0;
}

//  The previous sample of stats --watch, for rates
typedef struct {
    msgpack_unpacked reply;
    bool have;
    msgpack_object_kv *rows;
    uint32_t nrows;
} stats_prev_t;

//  The seconds between two samples, by the broker's own clock (uptime_ms);
//  without a previous sample (or after a broker restart), since it started
static double
s_interval (const msgpack_object *stats, const stats_prev_t *prev, bool *since_start)
{
    uint64_t now = s_uint (stats, "uptime_ms");
    uint64_t then = prev->have? s_uint (&prev->reply.data, "uptime_ms"): 0;
    *since_start = !prev->have || then > now;
    return (double) (*since_start? now: now - then) / 1000.0;
}

//  stats --json: the reply, plus with --watch the rates of the interval
static int
s_stats_json (const msgpack_object *stats, const stats_prev_t *prev, bool watch)
{
    char err [256];
    json_object *json = zb_json_from_msgpack (stats, err, sizeof err);
    if (!json)
        return zb_cli_error (PROG, "cannot show the STATS reply as JSON: %s", err);
    if (watch) {
        bool since_start;
        double seconds = s_interval (stats, prev, &since_start);
        json_object *rates = json_object_new_object ();
        const msgpack_object *topics = zb_map_get (stats, "topics");
        for (uint32_t i = 0; topics && topics->type == MSGPACK_OBJECT_MAP
                             && i < topics->via.map.size; i++) {
            const msgpack_object_kv *kv = &topics->via.map.ptr [i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            const msgpack_object *old = since_start? NULL:
                s_previous_row (prev->rows, prev->nrows, &kv->key);
            json_object *rate = json_object_new_object ();
            json_object_object_add (rate, "in", json_object_new_double (
                                    s_rate (&kv->val, old, "in", seconds)));
            json_object_object_add (rate, "out", json_object_new_double (
                                    s_rate (&kv->val, old, "out", seconds)));
            char name [ZB_MAX_DETAIL_TYPE * 2 + 1];
            snprintf (name, sizeof name, "%.*s", (int) kv->key.via.str.size, kv->key.via.str.ptr);
            json_object_object_add (rates, name, rate);
        }
        json_object_object_add (json, "rates", rates);
        json_object_object_add (json, "interval_s", json_object_new_double (seconds));
    }
    char *text = zb_json_text (json);
    json_object_put (json);
    puts (text);
    free (text);
    return 0;
}

//  The client identity and lag of each replay session (a consumer catching up)
static void
s_stats_replay_clients (const msgpack_object *clients)
{
    if (!clients || clients->type != MSGPACK_OBJECT_ARRAY || clients->via.array.size == 0)
        return;
    printf ("\n%-16s %12s %12s %12s %12s\n", "replay client", "next", "to", "sent", "lag");
    for (uint32_t i = 0; i < clients->via.array.size; i++) {
        const msgpack_object *c = &clients->via.array.ptr [i];
        const msgpack_object *client = zb_map_get (c, "client");
        printf ("%-16.*s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n",
                STR_ARGS (client), s_uint (c, "next"), s_uint (c, "to"), s_uint (c, "sent"),
                s_uint (c, "lag"));
    }
}

static void
s_stats_table (const msgpack_object *stats, const stats_prev_t *prev)
{
    const msgpack_object *version = zb_map_get (stats, "version");
    char bytes [32];
    s_bytes (s_uint (stats, "bytes_in"), bytes, sizeof bytes);
    printf ("broker %.*s  seq %" PRIu64 "  uptime %" PRIu64 "s\n", STR_ARGS (version),
            s_uint (stats, "seq"), s_uint (stats, "uptime_ms") / 1000);
    printf ("requests %" PRIu64 " ok, %" PRIu64 " failed; entries %" PRIu64 " in, %" PRIu64
            " rejected, %" PRIu64 " duplicates; %s received\n", s_uint (stats, "requests"),
            s_uint (stats, "requests_failed"), s_uint (stats, "entries_in"),
            s_uint (stats, "entries_rejected"), s_uint (stats, "duplicates"), bytes);
    if (zb_map_get (stats, "prefix_subscriptions"))
        printf ("prefix subscriptions %" PRIu64 "\n", s_uint (stats, "prefix_subscriptions"));
    const msgpack_object *connections = zb_map_get (stats, "connections");
    if (connections && connections->type == MSGPACK_OBJECT_MAP)
        printf ("connections: ingest %" PRIu64 " (%" PRIu64 " producers active in the last "
                "minute), publish %" PRIu64 " (%" PRIu64 " exact subscriptions), control %"
                PRIu64 "\n", s_uint (connections, "ingest"), s_uint (stats, "producers_active"),
                s_uint (connections, "publish"), s_uint (stats, "subscriptions"),
                s_uint (connections, "control"));
    if (zb_map_get (stats, "replay_requests"))
        printf ("catch-up: %" PRIu64 " replay requests, %" PRIu64 " events replayed, %"
                PRIu64 " sessions open\n", s_uint (stats, "replay_requests"),
                s_uint (stats, "replay_events"), s_uint (stats, "replay_sessions"));
    const msgpack_object *journal = zb_map_get (stats, "journal");
    if (journal && journal->type == MSGPACK_OBJECT_MAP)
        s_journal_line (journal);

    bool since_start;
    double seconds = s_interval (stats, prev, &since_start);
    uint32_t nrows;
    int width;
    msgpack_object_kv *rows = s_sorted_rows (zb_map_get (stats, "topics"), &nrows, &width);
    if (nrows == 0)
        printf ("no topics yet\n");
    else {
        printf ("\n%-*s %12s %12s %10s %12s %12s %10s %10s\n", width, "topic",
                "in", "out", "rejected", "subscribers", "seq", "in/s", "out/s");
        for (uint32_t i = 0; i < nrows; i++) {
            const msgpack_object *t = &rows [i].val;
            const msgpack_object *old = since_start? NULL:
                s_previous_row (prev->rows, prev->nrows, &rows [i].key);
            int pad = width - (int) rows [i].key.via.str.size;
            printf ("%.*s%*s %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %12" PRIu64
                    " %10.1f %10.1f\n", (int) rows [i].key.via.str.size, rows [i].key.via.str.ptr,
                    pad, "", s_uint (t, "in"), s_uint (t, "out"), s_uint (t, "rejected"),
                    s_uint (t, "subscribers"), s_uint (t, "seq"),
                    s_rate (t, old, "in", seconds), s_rate (t, old, "out", seconds));
        }
        printf ("(rates: %s %.1f s)\n", since_start? "average since the broker started,":
                                                     "over the last", seconds);
    }
    free (rows);
    s_stats_replay_clients (zb_map_get (stats, "replay_clients"));
}

//  Sleep up to ms, waking for SIGINT/SIGTERM; false when interrupted
static bool
s_sleep (int64_t ms)
{
    int64_t until = zclock_mono () + ms;
    while (!zsys_interrupted && zclock_mono () < until) {
        int64_t left = until - zclock_mono ();
        zclock_sleep ((int) (left < 100? left: 100));
    }
    return !zsys_interrupted;
}

static int
s_stats (zbctl_t *self)
{
    stats_prev_t prev = { .have = false };
    bool tty = isatty (STDOUT_FILENO);
    int rc = 0;
    while (true) {
        msgpack_unpacked reply;
        rc = s_call (self, self->control, ZB_CMD_STATS, NULL, 0, &reply);
        if (rc) {
            if (self->watch && zsys_interrupted)
                rc = 0;                         //  Ctrl-C while waiting: just stop
            break;
        }
        const msgpack_object *stats = &reply.data;
        if (self->json)
            rc = s_stats_json (stats, &prev, self->watch);
        else {
            if (self->watch && tty)
                printf ("\033[H\033[2J");       //  like top: home, clear
            if (self->watch) {
                char now [ZB_TIME_MAX];
                zb_time_format (time (NULL), now);
                printf ("zbctl stats --watch %" PRIu64 " %s  %s  (Ctrl-C stops)\n",
                        self->watch_s, self->control, now);
            }
            s_stats_table (stats, &prev);
            if (self->watch && !tty)
                printf ("\n");
        }
        fflush (stdout);
        //  This sample is the next one's previous
        if (prev.have)
            msgpack_unpacked_destroy (&prev.reply);
        free (prev.rows);
        prev.reply = reply;
        prev.have = true;
        int width;
        prev.rows = s_sorted_rows (zb_map_get (&prev.reply.data, "topics"), &prev.nrows, &width);
        if (rc || !self->watch || !s_sleep ((int64_t) self->watch_s * 1000))
            break;
    }
    if (prev.have)
        msgpack_unpacked_destroy (&prev.reply);
    free (prev.rows);
    return rc;
}

static int
s_put (zbctl_t *self)
{
    if (!self->source)
        return zb_cli_usage_error (PROG, "put needs --source");
    if (!self->detail_type)
        return zb_cli_usage_error (PROG, "put needs --detail-type");
    const char *detail_text = self->detail? self->detail: "{}";
    char err [512];
    json_object *detail = zb_json_parse (detail_text, strlen (detail_text), err, sizeof err);
    if (!detail)
        return zb_cli_usage_error (PROG, "--detail is not valid JSON: %s", err);
    if (!json_object_is_type (detail, json_type_object)) {
        json_object_put (detail);
        return zb_cli_usage_error (PROG, "--detail must be a JSON object, "
                                   "like '{\"sales\":12.5}'");
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 3 + (self->resources? 1: 0) + (self->time? 1: 0));
    msgpack_pack_str_with_body (&pk, "source", 6);
    msgpack_pack_str_with_body (&pk, self->source, strlen (self->source));
    msgpack_pack_str_with_body (&pk, "detail-type", 11);
    msgpack_pack_str_with_body (&pk, self->detail_type, strlen (self->detail_type));
    msgpack_pack_str_with_body (&pk, "detail", 6);
    int rc = zb_json_to_msgpack (detail, &pk, err, sizeof err);
    json_object_put (detail);
    if (rc != 0) {
        msgpack_sbuffer_destroy (&body);
        return zb_cli_usage_error (PROG, "--detail: %s", err);
    }
    if (self->resources) {
        //  "a,b,c" -> ["a", "b", "c"]; "" -> []
        const char *list = self->resources;
        uint32_t count = *list? 1: 0;
        for (const char *c = list; *c; c++)
            count += *c == ',';
        msgpack_pack_str_with_body (&pk, "resources", 9);
        msgpack_pack_array (&pk, count);
        for (const char *start = list; count > 0; count--) {
            const char *comma = strchr (start, ',');
            size_t len = comma? (size_t) (comma - start): strlen (start);
            msgpack_pack_str_with_body (&pk, start, len);
            start += len + 1;
        }
    }
    if (self->time) {
        msgpack_pack_str_with_body (&pk, "time", 4);
        msgpack_pack_str_with_body (&pk, self->time, strlen (self->time));
    }
    msgpack_unpacked reply;
    rc = s_call (self, self->ingest, ZB_CMD_PUT, body.data, body.size, &reply);
    msgpack_sbuffer_destroy (&body);
    if (rc)
        return rc;
    const msgpack_object *results = zb_map_get (&reply.data, "results");
    if (!results || results->type != MSGPACK_OBJECT_ARRAY || results->via.array.size != 1) {
        msgpack_unpacked_destroy (&reply);
        return zb_cli_error (PROG, "bad reply from %s: expected one result", self->ingest);
    }
    const msgpack_object *result = &results->via.array.ptr [0];
    char *text = zb_json_text_from_msgpack (&reply.data, err, sizeof err);
    if (!text) {
        msgpack_unpacked_destroy (&reply);
        return zb_cli_error (PROG, "bad reply from %s: %s", self->ingest, err);
    }
    puts (text);
    free (text);
    rc = 0;
    const msgpack_object *id = zb_map_get (result, "id");
    if (!id || id->type != MSGPACK_OBJECT_STR) {
        const msgpack_object *code = zb_map_get (result, "code");
        const msgpack_object *message = zb_map_get (result, "message");
        rc = zb_cli_error (PROG, "entry rejected: %.*s: %.*s", STR_ARGS (code),
                           STR_ARGS (message));
    }
    msgpack_unpacked_destroy (&reply);
    return rc;
}

//  test-pattern: 0 match, 1 no match, 2 usage / invalid pattern or event
static int
s_test_pattern (zbctl_t *self)
{
    if (!self->pattern)
        return zb_cli_usage_error (PROG, "test-pattern needs --pattern");
    if (!self->event)
        return zb_cli_usage_error (PROG, "test-pattern needs --event");
    char err [512];
    zb_patterns_t *patterns = zb_patterns_new ();
    assert (patterns);
    if (zb_patterns_add (patterns, "pattern", self->pattern, strlen (self->pattern),
                         err, sizeof err) != 0) {
        zb_patterns_destroy (&patterns);
        return zb_cli_usage_error (PROG, "--pattern is not a valid event pattern: %s", err);
    }
    json_object *event = zb_json_parse (self->event, strlen (self->event), err, sizeof err);
    if (!event) {
        zb_patterns_destroy (&patterns);
        return zb_cli_usage_error (PROG, "--event is not valid JSON: %s", err);
    }
    if (!json_object_is_type (event, json_type_object)) {
        json_object_put (event);
        zb_patterns_destroy (&patterns);
        return zb_cli_usage_error (PROG, "--event must be a JSON object (an event envelope "
                                   "as the consumers print it)");
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    int rc = zb_json_to_msgpack (event, &pk, err, sizeof err);
    json_object_put (event);
    if (rc != 0) {
        msgpack_sbuffer_destroy (&buffer);
        zb_patterns_destroy (&patterns);
        return zb_cli_usage_error (PROG, "--event: %s", err);
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, &offset)
        != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&buffer);
        zb_patterns_destroy (&patterns);
        return zb_cli_error (PROG, "cannot decode the event (out of memory?)");
    }
    const char *name;
    bool match = zb_patterns_match (patterns, &unpacked.data, &name, 1) > 0;
    puts (match? "true": "false");
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    zb_patterns_destroy (&patterns);
    return match? 0: 1;
}

//  --------------------------------------------------------------------------
//  rule put|get|list|delete

//  A rule map as "name  matched  subscribers  pattern" lines or in full
static void
s_rule_print (const msgpack_object *rule, bool full)
{
    const msgpack_object *name = zb_map_get (rule, "name");
    const msgpack_object *topic = zb_map_get (rule, "topic");
    const msgpack_object *pattern = zb_map_get (rule, "pattern");
    const msgpack_object *transform = zb_map_get (rule, "transform");
    if (!full) {
        printf ("%-24.*s %10" PRIu64 " %5" PRIu64 "  %.*s%s\n", STR_ARGS (name),
                s_uint (rule, "matched"), s_uint (rule, "subscribers"), STR_ARGS (pattern),
                transform ? "  (transformed)" : "");
        return;
    }
    printf ("name:        %.*s\n", STR_ARGS (name));
    printf ("topic:       %.*s\n", STR_ARGS (topic));
    printf ("pattern:     %.*s\n", STR_ARGS (pattern));
    if (transform)
        printf ("transform:   %.*s\n", STR_ARGS (transform));
    printf ("matched:     %" PRIu64 " (topic seq %" PRIu64 ")\n", s_uint (rule, "matched"),
            s_uint (rule, "seq"));
    printf ("subscribers: %" PRIu64 "\n", s_uint (rule, "subscribers"));
    if (s_uint (rule, "failed"))
        printf ("failed:      %" PRIu64 " (transform outputs not delivered)\n", s_uint (rule, "failed"));
}

static int
s_rule (zbctl_t *self, int argc, char **argv)
{
    static const char usage [] = "rule put NAME --pattern JSON [--transform JSON], rule get NAME, "
                                 "rule list [--prefix P] or rule delete NAME";
    if (argc < 1)
        return zb_cli_usage_error (PROG, "give %s", usage);
    const char *action = argv [0];
    bool list = streq (action, "list");
    if (!list && !streq (action, "put") && !streq (action, "get") && !streq (action, "delete"))
        return zb_cli_usage_error (PROG, "unknown rule action '%s' (give %s)", action, usage);
    if (argc != (list ? 1 : 2))
        return zb_cli_usage_error (PROG, list ? "rule list takes no name (use --prefix)"
                                              : "rule %s wants exactly one NAME", action);
    const char *name = list ? NULL : argv [1];
    if (name && !zb_rule_name_ok (name, strlen (name)))
        return zb_cli_usage_error (PROG, "'%s' is not a rule name (1 to %d characters of "
                                   "A-Z a-z 0-9 . - _)", name, ZB_RULE_NAME_MAX);
    if (streq (action, "put") && !self->pattern)
        return zb_cli_usage_error (PROG, "rule put wants --pattern JSON");
    if ((self->pattern || self->transform) && !streq (action, "put"))
        return zb_cli_usage_error (PROG, "--pattern and --transform go with rule put");
    if (self->prefix && !list)
        return zb_cli_usage_error (PROG, "--prefix goes with rule list");

    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    const char *command;
    if (list) {
        command = "RULE-LIST";
        msgpack_pack_map (&pk, self->prefix ? 1 : 0);
        if (self->prefix) {
            zb_pack_cstr (&pk, "prefix");
            zb_pack_cstr (&pk, self->prefix);
        }
    }
    else {
        bool put = streq (action, "put");
        command = put ? "RULE-PUT" : streq (action, "get") ? "RULE-GET" : "RULE-DELETE";
        msgpack_pack_map (&pk, put ? (self->transform ? 3 : 2) : 1);
        zb_pack_cstr (&pk, "name");
        zb_pack_cstr (&pk, name);
        if (put) {
            zb_pack_cstr (&pk, "pattern");
            zb_pack_cstr (&pk, self->pattern);
            if (self->transform) {
                zb_pack_cstr (&pk, "transform");
                zb_pack_cstr (&pk, self->transform);
            }
        }
    }
    msgpack_unpacked reply;
    int rc = s_call (self, self->control, command, body.data, body.size, &reply);
    msgpack_sbuffer_destroy (&body);
    if (rc)
        return rc;
    const msgpack_object *map = &reply.data;
    if (self->json)
        rc = s_print_json (map, command);
    else
    if (streq (action, "put")) {
        const msgpack_object *topic = zb_map_get (map, "topic");
        const msgpack_object *created = zb_map_get (map, "created");
        printf ("%s rule %s (topic %.*s)\n",
                created && created->type == MSGPACK_OBJECT_BOOLEAN && created->via.boolean
                    ? "created" : "replaced", name, STR_ARGS (topic));
    }
    else
    if (streq (action, "delete"))
        printf ("deleted rule %s\n", name);
    else
    if (streq (action, "get"))
        s_rule_print (map, true);
    else {
        const msgpack_object *rules = zb_map_get (map, "rules");
        if (!rules || rules->type != MSGPACK_OBJECT_ARRAY)
            rc = zb_cli_error (PROG, "bad RULE-LIST reply: no \"rules\" array");
        else {
            printf ("%-24s %10s %5s  %s\n", "NAME", "MATCHED", "SUBS", "PATTERN");
            for (uint32_t i = 0; i < rules->via.array.size; i++)
                s_rule_print (&rules->via.array.ptr [i], false);
        }
    }
    msgpack_unpacked_destroy (&reply);
    return rc;
}

//  keygen NAME: NAME and NAME_secret (zcert_save's format), never overwriting.
static int
s_keygen (const char *name)
{
    size_t len = strlen (name);
    bool ok = len > 0 && len <= 200 && name [0] != '.' && name [0] != '-';
    for (size_t i = 0; ok && i < len; i++)
        ok = (name [i] >= 'a' && name [i] <= 'z') || (name [i] >= 'A' && name [i] <= 'Z')
          || (name [i] >= '0' && name [i] <= '9') || strchr ("._-", name [i]);
    if (!ok)
        return zb_cli_usage_error (PROG, "keygen wants a file name of 1 to 200 characters "
                                   "A-Z a-z 0-9 . _ - (not starting with '.' or '-'), not '%s'",
                                   name);
    char secret [256];
    snprintf (secret, sizeof secret, "%s_secret", name);
    if (access (name, F_OK) == 0 || access (secret, F_OK) == 0)
        return zb_cli_error (PROG, "keygen: %s or %s exists already: not overwriting a key",
                             name, secret);
    zcert_t *cert = zcert_new ();
    if (!cert)
        return zb_cli_error (PROG, "keygen: cannot make a key pair (libzmq without CURVE?)");
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created-by", "zbctl keygen");
    int rc = zcert_save_public (cert, name);
    if (rc == 0) {
        //  Only its owner may read the secret key
        mode_t old = umask (077);
        rc = zcert_save_secret (cert, secret);
        umask (old);
        if (rc == 0)
            chmod (secret, 0600);
    }
    if (rc != 0) {
        int err = errno;
        zcert_destroy (&cert);
        return zb_cli_error (PROG, "keygen: cannot write %s / %s: %s", name, secret,
                             strerror (err));
    }
    printf ("%s\n", zcert_public_txt (cert));
    fprintf (stderr, PROG ": wrote %s (public) and %s (secret, mode 0600)\n", name, secret);
    zcert_destroy (&cert);
    return 0;
}

int
main (int argc, char **argv)
{
    zbctl_t self = {
        .control = ZB_DEFAULT_CONTROL,
        .ingest = ZB_DEFAULT_INGEST,
        .publish = ZB_DEFAULT_PUBLISH,
        .timeout_ms = 2000,
        .watch_s = 2,
    };
    int rc = s_parse (&self, argc, argv, s_global_options, true, NULL);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return zb_cli_usage_error (PROG, "give a command: ping, stats, journal, put, "
                                   "tail, replay, test-pattern, rule or keygen");
    const char *command = argv [optind];
    //  The command's own options (and the global ones again) follow it
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    zbctl_global_t global = { self.control, self.ingest, self.publish, self.timeout_ms,
                              self.curve_server, self.curve_cert, self.max_msg_size };
    if (streq (command, "tail"))
        return zbctl_tail (&global, sub_argc, sub_argv);
    if (streq (command, "replay"))
        return zbctl_replay (&global, sub_argc, sub_argv);
    const struct option *options =
        streq (command, "ping")? s_ping_options:
        streq (command, "stats")? s_stats_options:
        streq (command, "journal")? s_journal_options:
        streq (command, "put")? s_put_options:
        streq (command, "test-pattern")? s_test_pattern_options:
        streq (command, "rule")? s_rule_options:
        streq (command, "keygen")? s_keygen_options: NULL;
    if (!options)
        return zb_cli_usage_error (PROG, "unknown command '%s' (commands: ping, stats, "
                                   "journal, put, tail, replay, test-pattern, rule, keygen)", command);
    rc = s_parse (&self, sub_argc, sub_argv, options, false, command);
    if (rc >= 0)
        return rc;
    if (streq (command, "rule")) {
        if ((rc = zb_curve_client_setup (PROG)) != 0)
            return rc;
        zsys_init ();
        return s_rule (&self, sub_argc - optind, sub_argv + optind);
    }
    if (streq (command, "keygen")) {
        if (optind >= sub_argc)
            return zb_cli_usage_error (PROG, "keygen wants a NAME (it writes NAME and "
                                       "NAME_secret)");
        if (optind + 1 < sub_argc)
            return zb_cli_usage_error (PROG, "unexpected argument '%s' after keygen NAME",
                                       sub_argv [optind + 1]);
        return s_keygen (sub_argv [optind]);
    }
    //  stats --watch 5: the seconds as a separate argument
    if (streq (command, "stats") && self.watch && optind == sub_argc - 1
    &&  zb_cli_parse_range (sub_argv [optind], 1, 86400, &self.watch_s))
        optind++;
    if (optind < sub_argc)
        return zb_cli_usage_error (PROG, "unexpected argument '%s' after %s", sub_argv [optind],
                                   command);

    if (streq (command, "test-pattern"))
        return s_test_pattern (&self);
    if ((rc = zb_curve_client_setup (PROG)) != 0)
        return rc;
    zsys_init ();
    if (streq (command, "ping"))
        rc = s_ping (&self);
    else
    if (streq (command, "stats"))
        rc = s_stats (&self);
    else
    if (streq (command, "journal"))
        rc = s_journal (&self);
    else
        rc = s_put (&self);
    return rc;
}
