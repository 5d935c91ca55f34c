/*  main.c - zb-broker: flags, the config file, start-up and shutdown.
    The broker itself is broker.c. */

#include <sched.h>
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "metrics.h"
#include "cli.h"
#include "pattern.h"
#include "rules.h"
#include "event.h"
#include "zb.h"

#define PROG "zb-broker"

//  Accepted ranges: beyond them a value is almost surely a mistake, and the
//  ingest socket's maximum message size (entries x event size) stays sane.
#define MAX_ENTRIES_LIMIT       10000
#define MAX_EVENT_SIZE_MIN      256
#define MAX_EVENT_SIZE_LIMIT    (64 * 1024 * 1024)
#define MAX_TOPICS_LIMIT        1000000
#define NAME_LIMIT              64          //  account, region
#define MEMORY_EVENTS_LIMIT     1000000000ULL
#define RETAIN_HOURS_LIMIT      876000      //  100 years
#define SIZE_MB_LIMIT           16777216    //  16 TiB
#define JOURNAL_MAX_MB_MIN      64
#define DEDUP_WINDOW_LIMIT      2592000     //  30 days
#define HEARTBEAT_MS_MIN        10
#define HEARTBEAT_MS_LIMIT      3600000
#define MAX_RULES_LIMIT         100000
#define MAX_PATTERN_SIZE_LIMIT  (1024 * 1024)
#define RATE_LIMIT_MAX          100000000   //  entries per second
#define MAX_CONTROL_MSG_MIN     4096
#define MAX_CONTROL_MSG_LIMIT   (64 * 1024 * 1024)
#define MAX_SUBSCRIPTION_MIN    256
#define MAX_SUBSCRIPTION_LIMIT  (1024 * 1024)
#define PUBLISH_HWM_LIMIT       1000000

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: " PROG " [options]\n"
"The zbridge event broker: producers PUT events on the ingest socket, consumers\n"
"subscribe by detail-type on the publish socket; the control socket answers\n"
"PING/STATS/JOURNAL and replays the journal (REPLAY). Every accepted event is in\n"
"the journal before it is acknowledged (docs/PROTOCOL.md \"Reliability\").\n"
"\n"
"  -i, --ingest EP          ROUTER for producers (default " ZB_DEFAULT_INGEST ")\n"
"  -p, --publish EP         XPUB for consumers (default " ZB_DEFAULT_PUBLISH ")\n"
"  -c, --control EP         ROUTER for PING/STATS/JOURNAL/REPLAY (default " ZB_DEFAULT_CONTROL ")\n"
"      --account ID         account stamped on events (default " ZB_DEFAULT_ACCOUNT ")\n"
"      --region NAME        region stamped on events (default " ZB_DEFAULT_REGION ")\n"
"      --max-entries N      entries per PUT request, 1..%d (default %d)\n"
"      --max-event-size B   packed event size in bytes, %d..%d (default %d)\n"
"      --max-topics N       distinct detail-types, 1..%d (default 10000)\n"
"\n"
"Journal:\n"
"      --data-dir DIR       journal directory, LMDB; created when missing\n"
"                           (default " ZB_DEFAULT_DATA_DIR ")\n"
"      --memory             no disk journal: a bounded in-memory ring serves replays;\n"
"                           seq restarts at 1 with the broker\n"
"      --memory-events N    ring capacity in events, 1..%llu (default %d)\n"
"      --sync commit|os     commit: fsync every group commit (default); os: leave\n"
"                           flushing to the OS (faster; an OS crash or power loss\n"
"                           can lose the last acknowledged events)\n"
"      --retain-hours N     prune events older than N hours, 0 = no limit (default %d)\n"
"      --retain-mb N        prune the oldest events beyond N MiB, 0 = no limit\n"
"                           (default %d)\n"
"      --journal-max-mb N   hard cap of the store (LMDB map size), %d..%d;\n"
"                           default 2 x retain-mb, at least %d (4096 without retain-mb)\n"
"      --dedup-window SECS  idempotency keys remembered, 0..%d, 0 = no\n"
"                           deduplication (default %d)\n"
"      --heartbeat-ms N     $heartbeat interval, %d..%d (default %d)\n"
"\n"
"Rules (docs/PROTOCOL.md \"Rules\"; managed with zbctl rule ...):\n"
"      --max-rules N        rules at most, 1..%d (default %d)\n"
"      --max-pattern-size B bytes of a rule's pattern, 0 = no limit (default %d)\n"
"                           Rules are kept in DATA-DIR/" ZB_RULES_FILE " (with --memory:\n"
"                           only while the broker runs); the config file's \"rules\"\n"
"                           section puts its rules at every start.\n"
"\n"
"Security (docs/SECURITY.md):\n"
"      --curve-cert PATH    the broker's secret certificate (zbctl keygen NAME writes\n"
"                           NAME and NAME_secret): CURVE on every socket\n"
"      --curve-allow DIR    directory of the allowed clients' public certificates;\n"
"                           keys added or removed take effect within a second,\n"
"                           connections of removed keys are cut\n"
"      --insecure           allow plain text on non-loopback endpoints (without\n"
"                           CURVE the broker refuses to bind them)\n"
"      --rate-limit N       entries per second per client (key, or connection\n"
"                           without CURVE), 0 = none (default 0); beyond it\n"
"                           entries get ThrottlingException\n"
"      --rate-burst N       token bucket size (default: the rate)\n"
"      --max-control-msg B  largest control frame, %d..%d (default %d)\n"
"      --max-subscription B largest subscription message, %d..%d (default %d)\n"
"      --publish-hwm N      messages (of up to 64 events, 32 KiB) queued for each\n"
"                           subscriber, 1..%d (default %d: 64 MiB); a consumer\n"
"                           further behind misses live events and replays them\n"
"\n"
"Threads:\n"
"      --cpus LIST          run the broker (its thread and ZeroMQ's I/O thread) on\n"
"                           these CPUs only, e.g. 1, 0-3 or 0,2 (default: any); one\n"
"                           CPU keeps the hand-off between the two threads on one\n"
"                           core (lower latency; docs/BENCHMARKS.md)\n"
"\n"
"Monitoring:\n"
"      --metrics ADDR:PORT  serve Prometheus metrics (text format 0.0.4) over HTTP\n"
"                           at http://ADDR:PORT/metrics (off by default; e.g.\n"
"                           127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100; port 0: a\n"
"                           free one, shown in the ready line)\n"
"\n"
"      --config FILE        zconfig file with a \"broker\" section; keys: ingest,\n"
"                           publish, control, account, region, max-entries,\n"
"                           max-event-size, max-topics, data-dir, memory (true or\n"
"                           false), memory-events, sync, retain-hours, retain-mb,\n"
"                           journal-max-mb, dedup-window, heartbeat-ms, max-rules,\n"
"                           max-pattern-size, curve-cert, curve-allow, insecure,\n"
"                           rate-limit, rate-burst, max-control-msg,\n"
"                           max-subscription, publish-hwm, metrics, cpus; a\n"
"                           \"rules\" section names rules (see below) and an\n"
"                           \"authorization\" section (per client key: source,\n"
"                           detail-type, topic, rules). Flags override the file.\n"
"  -v, --verbose            log every subscription and bad request, counters every 10 s\n"
"  -h, --help               this help\n"
"  -V, --version            print the version\n"
"\n"
"Endpoints are ZeroMQ endpoints; a tcp port of * picks a free one (the ready line\n"
"shows it). Once all sockets are bound and the journal is open it logs:\n"
"  " PROG ": ready ingest=EP publish=EP control=EP journal=DIR|memory\n"
"(and metrics=URL with --metrics).\n"
"With a data directory, seq and every topic_seq continue where the last run\n"
"stopped. SIGINT or SIGTERM stops it, logging the final counters.\n"
"\n"
"Exit status:\n"
"  0  stopped by SIGINT or SIGTERM\n"
"  1  a socket or the metrics port cannot be bound, the journal cannot be opened\n"
"  2  a bad flag, flag value or config file\n"
"\n"
"Examples:\n"
"  " PROG "\n"
"  " PROG " -i tcp://127.0.0.1:* -p tcp://127.0.0.1:* -c tcp://127.0.0.1:*\n"
"  " PROG " --ingest ipc:///tmp/zb-in --max-entries 500 --region eu-west-1 -v\n"
"  " PROG " --config /etc/zbridge/broker.cfg --max-topics 50000\n"
"  " PROG " --data-dir /var/lib/zbridge --retain-hours 24 --retain-mb 4096\n"
"  " PROG " --sync os --dedup-window 600\n"
"  " PROG " --memory --memory-events 200000 --heartbeat-ms 250\n"
"  " PROG " -i tcp://0.0.0.0:5555 -p tcp://0.0.0.0:5556 -c tcp://0.0.0.0:5557 \\\n"
"      --curve-cert /etc/zbridge/broker_secret --curve-allow /etc/zbridge/clients\n"
"  " PROG " --metrics 127.0.0.1:9100     # then: curl http://127.0.0.1:9100/metrics\n"
"\n"
"A config file (zconfig: four spaces of indent per level):\n"
"  broker\n"
"      ingest = tcp://0.0.0.0:5555\n"
"      curve-cert = /etc/zbridge/broker_secret\n"
"      curve-allow = /etc/zbridge/clients\n"
"      max-event-size = 65536\n"
"      data-dir = /var/lib/zbridge\n"
"      retain-hours = 72\n"
"  rules\n"
"      big-sales\n"
"          pattern = '{\"detail-type\": [\"sales-events\"], \"detail\": {\"total\": [{\"numeric\": [\">\", 50]}]}}'\n"
"      returns\n"
"          pattern = '{\"detail\": {\"kind\": [\"return\"]}}'\n"
"          transform = '{\"InputPathsMap\": {\"s\": \"$.detail.store_id\"}, \"InputTemplate\": \"return at <s>\"}'\n",
             MAX_ENTRIES_LIMIT, ZB_DEFAULT_MAX_ENTRIES,
             MAX_EVENT_SIZE_MIN, MAX_EVENT_SIZE_LIMIT, ZB_DEFAULT_MAX_EVENT,
             MAX_TOPICS_LIMIT,
             MEMORY_EVENTS_LIMIT, ZB_DEFAULT_MEMORY_EVENTS,
             ZB_DEFAULT_RETAIN_HOURS, ZB_DEFAULT_RETAIN_MB,
             JOURNAL_MAX_MB_MIN, SIZE_MB_LIMIT, JOURNAL_MAX_MB_MIN,
             DEDUP_WINDOW_LIMIT, ZB_DEFAULT_DEDUP_WINDOW,
             HEARTBEAT_MS_MIN, HEARTBEAT_MS_LIMIT, ZB_DEFAULT_HEARTBEAT_MS,
             MAX_RULES_LIMIT, ZB_DEFAULT_MAX_RULES, ZB_PATTERN_DEFAULT_MAX_SIZE,
             MAX_CONTROL_MSG_MIN, MAX_CONTROL_MSG_LIMIT, ZB_DEFAULT_MAX_CONTROL_MSG,
             MAX_SUBSCRIPTION_MIN, MAX_SUBSCRIPTION_LIMIT, ZB_DEFAULT_MAX_SUBSCRIPTION,
             PUBLISH_HWM_LIMIT, ZB_DEFAULT_PUBLISH_HWM);
}

//  A setting as given by a flag or the file, before it is checked.
typedef struct {
    const char *key;            //  name in the file and, with "--", the flag
    const char *value;          //  NULL: not given
    const char *origin;         //  "--max-entries" or "broker.cfg: broker/max-entries"
    char origin_buf [300];
} setting_t;

enum { S_INGEST, S_PUBLISH, S_CONTROL, S_ACCOUNT, S_REGION,
       S_MAX_ENTRIES, S_MAX_EVENT_SIZE, S_MAX_TOPICS,
       S_DATA_DIR, S_MEMORY, S_MEMORY_EVENTS, S_SYNC, S_RETAIN_HOURS, S_RETAIN_MB,
       S_JOURNAL_MAX_MB, S_DEDUP_WINDOW, S_HEARTBEAT_MS, S_MAX_RULES, S_MAX_PATTERN_SIZE,
       S_CURVE_CERT, S_CURVE_ALLOW, S_INSECURE, S_RATE_LIMIT, S_RATE_BURST,
       S_MAX_CONTROL_MSG, S_MAX_SUBSCRIPTION, S_METRICS, S_CPUS, S_PUBLISH_HWM, S_COUNT };

static const char *const s_keys [S_COUNT] = {
    "ingest", "publish", "control", "account", "region",
    "max-entries", "max-event-size", "max-topics",
    "data-dir", "memory", "memory-events", "sync", "retain-hours", "retain-mb",
    "journal-max-mb", "dedup-window", "heartbeat-ms", "max-rules", "max-pattern-size",
    "curve-cert", "curve-allow", "insecure", "rate-limit", "rate-burst",
    "max-control-msg", "max-subscription", "metrics", "cpus", "publish-hwm"
};

//  True when the setting came from a flag (not from the config file).
static bool
s_from_flag (const setting_t *s)
{
    return s->value && s->origin [0] == '-';
}

//  Parse a decimal integer in [min, max]; 0 on success, -1 with a message.
static int
s_parse_number (const setting_t *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!zb_cli_parse_range (s->value, min, max, out)) {
        fprintf (stderr, PROG ": %s: '%s' is not an integer from %" PRIu64 " to %" PRIu64 "\n",
                 s->origin, s->value, min, max);
        return -1;
    }
    return 0;
}

static int
s_check_endpoint (const setting_t *s)
{
    if (*s->value == 0 || strlen (s->value) > 200 || !strstr (s->value, "://")) {
        fprintf (stderr, PROG ": %s: '%s' is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5555)\n",
                 s->origin, s->value);
        return -1;
    }
    return 0;
}

static int
s_check_name (const setting_t *s)
{
    size_t len = strlen (s->value);
    if (len == 0 || len > NAME_LIMIT || !zb_utf8_valid (s->value, len)
    ||  zb_utf8_has_control (s->value, len)) {
        fprintf (stderr, PROG ": %s: must be 1 to %d bytes of UTF-8 without control characters\n",
                 s->origin, NAME_LIMIT);
        return -1;
    }
    return 0;
}

//  A CPU list: numbers and ranges, comma-separated ("1", "0-3", "0,2-3").
//  0 with *set filled, -1 with a message.
static int
s_parse_cpus (const setting_t *s, cpu_set_t *set)
{
    CPU_ZERO (set);
    const char *p = s->value;
    while (true) {
        uint64_t first, last;
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9')
            goto bad;
        first = strtoull (p, &end, 10);
        last = first;
        if (errno)
            goto bad;
        p = end;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                goto bad;
            last = strtoull (p, &end, 10);
            if (errno)
                goto bad;
            p = end;
        }
        if (first > last || last >= CPU_SETSIZE)
            goto bad;
        for (uint64_t cpu = first; cpu <= last; cpu++)
            CPU_SET ((size_t) cpu, set);
        if (*p == 0)
            return 0;
        if (*p++ != ',')
            goto bad;
    }
bad:
    fprintf (stderr, PROG ": %s: '%s' is not a CPU list (CPU numbers 0..%d and ranges "
             "like 2-3, comma-separated: 1, 0-3, 0,2)\n", s->origin, s->value, CPU_SETSIZE - 1);
    return -1;
}

//  Fill the settings not given by a flag from the file's "broker" section.
//  0 on success, -1 after an error message.
static int
s_load_config (const char *path, setting_t settings [S_COUNT], zconfig_t **root_p)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, PROG ": cannot read config file %s: %s\n", path, strerror (errno));
        return -1;
    }
    fclose (file);
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fprintf (stderr, PROG ": %s: not a valid zconfig file\n", path);
        return -1;
    }
    *root_p = root;             //  values point into it: the caller frees it
    zconfig_t *section = zconfig_locate (root, "broker");
    if (!section) {
        fprintf (stderr, PROG ": %s: no \"broker\" section\n", path);
        return -1;
    }
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item)) {
        const char *name = zconfig_name (item);
        int k;
        for (k = 0; k < S_COUNT; k++)
            if (streq (name, s_keys [k]))
                break;
        if (k == S_COUNT) {
            fprintf (stderr, PROG ": %s: unknown key broker/%s (known: ingest, publish, "
                     "control, account, region, max-entries, max-event-size, max-topics, "
                     "data-dir, memory, memory-events, sync, retain-hours, retain-mb, "
                     "journal-max-mb, dedup-window, heartbeat-ms, max-rules, max-pattern-size, "
                     "curve-cert, curve-allow, insecure, rate-limit, rate-burst, max-control-msg, "
                     "max-subscription, metrics, cpus, publish-hwm)\n",
                     path, name);
            return -1;
        }
        if (zconfig_child (item)) {
            fprintf (stderr, PROG ": %s: broker/%s has nested items; expected a value\n",
                     path, name);
            return -1;
        }
        if (settings [k].value)
            continue;           //  the flag wins
        settings [k].value = zconfig_value (item) ? zconfig_value (item) : "";
        snprintf (settings [k].origin_buf, sizeof settings [k].origin_buf,
                  "%s: broker/%s", path, name);
        settings [k].origin = settings [k].origin_buf;
    }
    return 0;
}

//  The file's "rules" section: one item per rule, named after it, with a
//  pattern and optionally a transform. Checked by the broker when it puts
//  them; here only the shape. 0, or -1 after an error message.
static int
s_load_rules (const char *path, zconfig_t *root, zb_rule_spec_t **rules_p, size_t *count_p)
{
    zconfig_t *section = zconfig_locate (root, "rules");
    if (!section)
        return 0;
    size_t count = 0;
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item))
        count++;
    zb_rule_spec_t *rules = (zb_rule_spec_t *) calloc (count + 1, sizeof (zb_rule_spec_t));
    if (!rules) {
        fprintf (stderr, PROG ": out of memory\n");
        return -1;
    }
    *rules_p = rules;
    size_t n = 0;
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item), n++) {
        const char *name = zconfig_name (item);
        rules [n].name = name;
        if (zconfig_value (item) && *zconfig_value (item)) {
            fprintf (stderr, PROG ": %s: rules/%s has a value; expected pattern = ... and "
                     "transform = ... under it\n", path, name);
            return -1;
        }
        for (zconfig_t *key = zconfig_child (item); key; key = zconfig_next (key)) {
            const char *key_name = zconfig_name (key);
            const char *value = zconfig_value (key) ? zconfig_value (key) : "";
            if (streq (key_name, "pattern"))
                rules [n].pattern = value;
            else
            if (streq (key_name, "transform"))
                rules [n].transform = value;
            else {
                fprintf (stderr, PROG ": %s: unknown key rules/%s/%s (known: pattern, transform)\n",
                         path, name, key_name);
                return -1;
            }
        }
        if (!rules [n].pattern) {
            fprintf (stderr, PROG ": %s: rules/%s has no pattern\n", path, name);
            return -1;
        }
    }
    *count_p = count;
    return 0;
}

//  The journal settings into config->journal and config->heartbeat_ms.
//  0, or -1 after an error message naming the flag or key.
static int
s_journal_settings (setting_t settings [S_COUNT], zb_broker_config_t *config)
{
    zb_journal_config_t *journal = &config->journal;
    bool memory = false;
    setting_t *s = &settings [S_MEMORY];
    if (s->value) {
        if (streq (s->value, "true"))
            memory = true;
        else
        if (!streq (s->value, "false")) {
            fprintf (stderr, PROG ": %s: '%s' is not true or false\n", s->origin, s->value);
            return -1;
        }
    }
    //  A data directory and --memory exclude each other; between the file and
    //  a flag, the flag wins as for every other setting
    s = &settings [S_DATA_DIR];
    if (memory && s->value) {
        if (s_from_flag (s) == s_from_flag (&settings [S_MEMORY])) {
            fprintf (stderr, PROG ": %s and %s exclude each other (a disk journal or a memory one)\n",
                     settings [S_MEMORY].origin, s->origin);
            return -1;
        }
        if (s_from_flag (s))
            memory = false;
    }
    if (!memory && s->value) {
        if (*s->value == 0 || strlen (s->value) > 4000) {
            fprintf (stderr, PROG ": %s: '%s' is not a directory path\n", s->origin, s->value);
            return -1;
        }
        journal->dir = s->value;
    }
    if (memory)
        journal->dir = NULL;

    s = &settings [S_SYNC];
    if (s->value) {
        if (streq (s->value, "commit"))
            journal->sync = ZB_SYNC_COMMIT;
        else
        if (streq (s->value, "os"))
            journal->sync = ZB_SYNC_OS;
        else {
            fprintf (stderr, PROG ": %s: '%s' is not commit or os\n", s->origin, s->value);
            return -1;
        }
    }
    if ((settings [S_MEMORY_EVENTS].value
         && s_parse_number (&settings [S_MEMORY_EVENTS], 1, MEMORY_EVENTS_LIMIT,
                            &journal->memory_events) == -1)
    ||  (settings [S_RETAIN_HOURS].value
         && s_parse_number (&settings [S_RETAIN_HOURS], 0, RETAIN_HOURS_LIMIT,
                            &journal->retain_hours) == -1)
    ||  (settings [S_RETAIN_MB].value
         && s_parse_number (&settings [S_RETAIN_MB], 0, SIZE_MB_LIMIT, &journal->retain_mb) == -1)
    ||  (settings [S_JOURNAL_MAX_MB].value
         && s_parse_number (&settings [S_JOURNAL_MAX_MB], JOURNAL_MAX_MB_MIN, SIZE_MB_LIMIT,
                            &journal->max_mb) == -1)
    ||  (settings [S_DEDUP_WINDOW].value
         && s_parse_number (&settings [S_DEDUP_WINDOW], 0, DEDUP_WINDOW_LIMIT,
                            &journal->dedup_window_s) == -1)
    ||  (settings [S_HEARTBEAT_MS].value
         && s_parse_number (&settings [S_HEARTBEAT_MS], HEARTBEAT_MS_MIN, HEARTBEAT_MS_LIMIT,
                            &config->heartbeat_ms) == -1))
        return -1;
    //  The store must hold what retention keeps, or writes fail before
    //  pruning makes room
    if (journal->max_mb && journal->retain_mb && journal->max_mb < journal->retain_mb) {
        fprintf (stderr, PROG ": %s: %" PRIu64 " MiB is less than retain-mb (%" PRIu64 " MiB): "
                 "the store would be full before retention prunes it\n",
                 settings [S_JOURNAL_MAX_MB].origin, journal->max_mb, journal->retain_mb);
        return -1;
    }
    return 0;
}

//  CURVE, authorization, rate limit and socket limits into config; then the
//  safe default: no plain-text endpoint beyond loopback unless --insecure.
//  0, or -1 after an error message.
static int
s_security_settings (setting_t settings [S_COUNT], zconfig_t *root, const char *config_path,
                     zb_broker_config_t *config)
{
    zb_auth_config_t *auth = &config->auth;
    bool insecure = false;
    setting_t *s = &settings [S_INSECURE];
    if (s->value) {
        if (streq (s->value, "true"))
            insecure = true;
        else
        if (!streq (s->value, "false")) {
            fprintf (stderr, PROG ": %s: '%s' is not true or false\n", s->origin, s->value);
            return -1;
        }
    }
    for (int k = S_CURVE_CERT; k <= S_CURVE_ALLOW; k++) {
        s = &settings [k];
        if (s->value && (*s->value == 0 || strlen (s->value) > 4000)) {
            fprintf (stderr, PROG ": %s: '%s' is not a path\n", s->origin, s->value);
            return -1;
        }
    }
    auth->curve_cert = settings [S_CURVE_CERT].value;
    auth->curve_allow = settings [S_CURVE_ALLOW].value;
    if (!auth->curve_cert != !auth->curve_allow) {
        fprintf (stderr, PROG ": %s needs %s as well (CURVE takes the broker's secret "
                 "certificate and the directory of allowed client certificates)\n",
                 auth->curve_cert ? settings [S_CURVE_CERT].origin : settings [S_CURVE_ALLOW].origin,
                 auth->curve_cert ? "curve-allow" : "curve-cert");
        return -1;
    }
    auth->authorization = root ? zconfig_locate (root, "authorization") : NULL;
    auth->config_path = config_path;
    auth->verbose = config->verbose;
    if ((settings [S_RATE_LIMIT].value
         && s_parse_number (&settings [S_RATE_LIMIT], 0, RATE_LIMIT_MAX, &auth->rate_limit) == -1)
    ||  (settings [S_RATE_BURST].value
         && s_parse_number (&settings [S_RATE_BURST], 1, RATE_LIMIT_MAX, &auth->rate_burst) == -1)
    ||  (settings [S_MAX_CONTROL_MSG].value
         && s_parse_number (&settings [S_MAX_CONTROL_MSG], MAX_CONTROL_MSG_MIN, MAX_CONTROL_MSG_LIMIT,
                            &config->max_control_msg) == -1)
    ||  (settings [S_MAX_SUBSCRIPTION].value
         && s_parse_number (&settings [S_MAX_SUBSCRIPTION], MAX_SUBSCRIPTION_MIN,
                            MAX_SUBSCRIPTION_LIMIT, &config->max_subscription) == -1)
    ||  (settings [S_PUBLISH_HWM].value
         && s_parse_number (&settings [S_PUBLISH_HWM], 1, PUBLISH_HWM_LIMIT,
                            &config->publish_hwm) == -1))
        return -1;
    if (auth->rate_burst && !auth->rate_limit) {
        fprintf (stderr, PROG ": %s needs rate-limit\n", settings [S_RATE_BURST].origin);
        return -1;
    }
    if (auth->curve_cert || insecure)
        return 0;
    const char *endpoints [] = { config->ingest, config->publish, config->control };
    const char *names [] = { "ingest", "publish", "control" };
    for (int i = 0; i < 3; i++) {
        if (!zb_auth_endpoint_safe (endpoints [i])) {
            fprintf (stderr, PROG ": refusing to bind %s to %s in plain text: anyone who can "
                     "reach it could publish and read every event. Enable CURVE with "
                     "--curve-cert BROKER_secret --curve-allow DIR (zbctl keygen makes the "
                     "certificates; docs/SECURITY.md), bind a loopback address, or pass "
                     "--insecure to accept the risk\n", names [i], endpoints [i]);
            return -1;
        }
    }
    return 0;
}

int
main (int argc, char *argv [])
{
    zb_cli_tune_malloc ();
    setting_t settings [S_COUNT];
    memset (settings, 0, sizeof settings);
    for (int k = 0; k < S_COUNT; k++) {
        settings [k].key = s_keys [k];
        snprintf (settings [k].origin_buf, sizeof settings [k].origin_buf, "--%s", s_keys [k]);
        settings [k].origin = settings [k].origin_buf;
    }
    const char *config_path = NULL;
    bool verbose = false;

    enum { OPT_ACCOUNT = 256, OPT_REGION, OPT_MAX_ENTRIES, OPT_MAX_EVENT_SIZE,
           OPT_MAX_TOPICS, OPT_CONFIG, OPT_JOURNAL };
    static const struct option options [] = {
        { "ingest",         required_argument, NULL, 'i' },
        { "publish",        required_argument, NULL, 'p' },
        { "control",        required_argument, NULL, 'c' },
        { "account",        required_argument, NULL, OPT_ACCOUNT },
        { "region",         required_argument, NULL, OPT_REGION },
        { "max-entries",    required_argument, NULL, OPT_MAX_ENTRIES },
        { "max-event-size", required_argument, NULL, OPT_MAX_EVENT_SIZE },
        { "max-topics",     required_argument, NULL, OPT_MAX_TOPICS },
        { "config",         required_argument, NULL, OPT_CONFIG },
        //  Journal settings: val is OPT_JOURNAL + their index in settings []
        { "data-dir",       required_argument, NULL, OPT_JOURNAL + S_DATA_DIR },
        { "memory",         no_argument,       NULL, OPT_JOURNAL + S_MEMORY },
        { "memory-events",  required_argument, NULL, OPT_JOURNAL + S_MEMORY_EVENTS },
        { "sync",           required_argument, NULL, OPT_JOURNAL + S_SYNC },
        { "retain-hours",   required_argument, NULL, OPT_JOURNAL + S_RETAIN_HOURS },
        { "retain-mb",      required_argument, NULL, OPT_JOURNAL + S_RETAIN_MB },
        { "journal-max-mb", required_argument, NULL, OPT_JOURNAL + S_JOURNAL_MAX_MB },
        { "dedup-window",   required_argument, NULL, OPT_JOURNAL + S_DEDUP_WINDOW },
        { "heartbeat-ms",   required_argument, NULL, OPT_JOURNAL + S_HEARTBEAT_MS },
        { "max-rules",      required_argument, NULL, OPT_JOURNAL + S_MAX_RULES },
        { "max-pattern-size", required_argument, NULL, OPT_JOURNAL + S_MAX_PATTERN_SIZE },
        //  Security settings (docs/SECURITY.md), the same way
        { "curve-cert",     required_argument, NULL, OPT_JOURNAL + S_CURVE_CERT },
        { "curve-allow",    required_argument, NULL, OPT_JOURNAL + S_CURVE_ALLOW },
        { "insecure",       no_argument,       NULL, OPT_JOURNAL + S_INSECURE },
        { "rate-limit",     required_argument, NULL, OPT_JOURNAL + S_RATE_LIMIT },
        { "rate-burst",     required_argument, NULL, OPT_JOURNAL + S_RATE_BURST },
        { "max-control-msg", required_argument, NULL, OPT_JOURNAL + S_MAX_CONTROL_MSG },
        { "max-subscription", required_argument, NULL, OPT_JOURNAL + S_MAX_SUBSCRIPTION },
        { "metrics",        required_argument, NULL, OPT_JOURNAL + S_METRICS },
        { "cpus",           required_argument, NULL, OPT_JOURNAL + S_CPUS },
        { "publish-hwm",    required_argument, NULL, OPT_JOURNAL + S_PUBLISH_HWM },
        { "verbose",        no_argument,       NULL, 'v' },
        { "help",           no_argument,       NULL, 'h' },
        { "version",        no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    opterr = 0;                 //  our own messages, prefixed like every other line
    while ((opt = getopt_long (argc, argv, ":i:p:c:vhV", options, NULL)) != -1) {
        switch (opt) {
            case 'i': settings [S_INGEST].value = optarg; break;
            case 'p': settings [S_PUBLISH].value = optarg; break;
            case 'c': settings [S_CONTROL].value = optarg; break;
            case OPT_ACCOUNT: settings [S_ACCOUNT].value = optarg; break;
            case OPT_REGION: settings [S_REGION].value = optarg; break;
            case OPT_MAX_ENTRIES: settings [S_MAX_ENTRIES].value = optarg; break;
            case OPT_MAX_EVENT_SIZE: settings [S_MAX_EVENT_SIZE].value = optarg; break;
            case OPT_MAX_TOPICS: settings [S_MAX_TOPICS].value = optarg; break;
            case OPT_CONFIG: config_path = optarg; break;
            case 'v': verbose = true; break;
            case OPT_JOURNAL + S_MEMORY: settings [S_MEMORY].value = "true"; break;
            case OPT_JOURNAL + S_DATA_DIR:
            case OPT_JOURNAL + S_MEMORY_EVENTS:
            case OPT_JOURNAL + S_SYNC:
            case OPT_JOURNAL + S_RETAIN_HOURS:
            case OPT_JOURNAL + S_RETAIN_MB:
            case OPT_JOURNAL + S_JOURNAL_MAX_MB:
            case OPT_JOURNAL + S_DEDUP_WINDOW:
            case OPT_JOURNAL + S_HEARTBEAT_MS:
            case OPT_JOURNAL + S_MAX_RULES:
            case OPT_JOURNAL + S_MAX_PATTERN_SIZE:
            case OPT_JOURNAL + S_CURVE_CERT:
            case OPT_JOURNAL + S_CURVE_ALLOW:
            case OPT_JOURNAL + S_RATE_LIMIT:
            case OPT_JOURNAL + S_RATE_BURST:
            case OPT_JOURNAL + S_MAX_CONTROL_MSG:
            case OPT_JOURNAL + S_MAX_SUBSCRIPTION:
            case OPT_JOURNAL + S_METRICS:
            case OPT_JOURNAL + S_CPUS:
            case OPT_JOURNAL + S_PUBLISH_HWM:
                settings [opt - OPT_JOURNAL].value = optarg;
                break;
            case OPT_JOURNAL + S_INSECURE: settings [S_INSECURE].value = "true"; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf (PROG " %s\n", ZB_VERSION); return 0;
            default:
                return zb_cli_option_error (PROG, opt, argv);
        }
    }
    if (optind < argc)
        return zb_cli_usage_error (PROG, "unexpected argument '%s'", argv [optind]);

    zconfig_t *root = NULL;
    int status = 0;
    if (config_path && s_load_config (config_path, settings, &root) == -1)
        status = 2;

    zb_broker_config_t config = zb_broker_config_default ();
    config.verbose = verbose;
    const char **strings [] = { &config.ingest, &config.publish, &config.control,
                                &config.account, &config.region };
    for (int k = S_INGEST; status == 0 && k <= S_REGION; k++) {
        if (!settings [k].value)
            continue;
        if ((k <= S_CONTROL ? s_check_endpoint (&settings [k]) : s_check_name (&settings [k])) == -1)
            status = 2;
        else
            *strings [k] = settings [k].value;
    }
    if (status == 0 && settings [S_MAX_ENTRIES].value
    &&  s_parse_number (&settings [S_MAX_ENTRIES], 1, MAX_ENTRIES_LIMIT, &config.max_entries) == -1)
        status = 2;
    if (status == 0 && settings [S_MAX_EVENT_SIZE].value
    &&  s_parse_number (&settings [S_MAX_EVENT_SIZE], MAX_EVENT_SIZE_MIN, MAX_EVENT_SIZE_LIMIT,
                        &config.max_event_size) == -1)
        status = 2;
    if (status == 0 && settings [S_MAX_TOPICS].value
    &&  s_parse_number (&settings [S_MAX_TOPICS], 1, MAX_TOPICS_LIMIT, &config.max_topics) == -1)
        status = 2;
    if (status == 0 && s_journal_settings (settings, &config) == -1)
        status = 2;
    if (status == 0 && settings [S_MAX_RULES].value
    &&  s_parse_number (&settings [S_MAX_RULES], 1, MAX_RULES_LIMIT, &config.max_rules) == -1)
        status = 2;
    if (status == 0 && settings [S_MAX_PATTERN_SIZE].value
    &&  s_parse_number (&settings [S_MAX_PATTERN_SIZE], 0, MAX_PATTERN_SIZE_LIMIT,
                        &config.max_pattern_size) == -1)
        status = 2;
    if (status == 0 && settings [S_METRICS].value) {
        char err [300];
        if (zb_metrics_check_address (settings [S_METRICS].value, err, sizeof err) == -1) {
            fprintf (stderr, PROG ": %s: %s\n", settings [S_METRICS].origin, err);
            status = 2;
        }
        else
            config.metrics = settings [S_METRICS].value;
    }
    zb_rule_spec_t *rules = NULL;
    if (status == 0 && root
    &&  s_load_rules (config_path, root, &rules, &config.nrules) == -1)
        status = 2;
    config.rules = rules;
    if (status == 0 && s_security_settings (settings, root, config_path, &config) == -1)
        status = 2;

    //  Before the broker starts any thread: ZeroMQ's I/O threads take the
    //  affinity of the thread that creates them
    cpu_set_t cpus;
    if (status == 0 && settings [S_CPUS].value) {
        if (s_parse_cpus (&settings [S_CPUS], &cpus) == -1)
            status = 2;
        else
        if (sched_setaffinity (0, sizeof cpus, &cpus) == -1) {
            cpu_set_t allowed;
            char list [256] = "";
            if (sched_getaffinity (0, sizeof allowed, &allowed) == 0)
                for (int cpu = 0, n = 0; cpu < CPU_SETSIZE && n < 32; cpu++)
                    if (CPU_ISSET (cpu, &allowed)) {
                        size_t len = strlen (list);
                        snprintf (list + len, sizeof list - len, "%s%d", n++ ? "," : "", cpu);
                    }
            fprintf (stderr, PROG ": %s: '%s': the broker may not run on %s (%s; it may "
                     "use: %s)\n", settings [S_CPUS].origin, settings [S_CPUS].value,
                     CPU_COUNT (&cpus) == 1 ? "this CPU" : "these CPUs", strerror (errno),
                     list [0] ? list : "unknown");
            status = 2;
        }
    }
    if (status == 0) {
        char err [512];
        zb_broker_t *broker = zb_broker_new (&config, err, sizeof err);
        if (!broker)
            status = zb_cli_error (PROG, "%s", err);
        else {
            const char *metrics = zb_broker_metrics_url (broker);
            fprintf (stderr, PROG ": ready ingest=%s publish=%s control=%s journal=%s%s%s\n",
                     zb_broker_ingest_endpoint (broker), zb_broker_publish_endpoint (broker),
                     zb_broker_control_endpoint (broker), zb_broker_journal_where (broker),
                     metrics ? " metrics=" : "", metrics ? metrics : "");
            if (zb_broker_run (broker) != 0)
                status = 1;
            zb_broker_destroy (&broker);
        }
    }
    free (rules);
    zconfig_destroy (&root);
    return status;
}
