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
#include "settings.h"
#include "metrics.h"
#include "cli.h"
#include "pattern.h"
#include "rules.h"
#include "event.h"
#include "zb.h"

#define PROG "zb-broker"

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

int
main (int argc, char *argv [])
{
    zb_cli_tune_malloc ();
    zb_setting_t settings [ZB_S_COUNT];
    zb_settings_init (settings);
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
        { "data-dir",       required_argument, NULL, OPT_JOURNAL + ZB_S_DATA_DIR },
        { "memory",         no_argument,       NULL, OPT_JOURNAL + ZB_S_MEMORY },
        { "memory-events",  required_argument, NULL, OPT_JOURNAL + ZB_S_MEMORY_EVENTS },
        { "sync",           required_argument, NULL, OPT_JOURNAL + ZB_S_SYNC },
        { "retain-hours",   required_argument, NULL, OPT_JOURNAL + ZB_S_RETAIN_HOURS },
        { "retain-mb",      required_argument, NULL, OPT_JOURNAL + ZB_S_RETAIN_MB },
        { "journal-max-mb", required_argument, NULL, OPT_JOURNAL + ZB_S_JOURNAL_MAX_MB },
        { "dedup-window",   required_argument, NULL, OPT_JOURNAL + ZB_S_DEDUP_WINDOW },
        { "heartbeat-ms",   required_argument, NULL, OPT_JOURNAL + ZB_S_HEARTBEAT_MS },
        { "max-rules",      required_argument, NULL, OPT_JOURNAL + ZB_S_MAX_RULES },
        { "max-pattern-size", required_argument, NULL, OPT_JOURNAL + ZB_S_MAX_PATTERN_SIZE },
        //  Security settings (docs/SECURITY.md), the same way
        { "curve-cert",     required_argument, NULL, OPT_JOURNAL + ZB_S_CURVE_CERT },
        { "curve-allow",    required_argument, NULL, OPT_JOURNAL + ZB_S_CURVE_ALLOW },
        { "insecure",       no_argument,       NULL, OPT_JOURNAL + ZB_S_INSECURE },
        { "rate-limit",     required_argument, NULL, OPT_JOURNAL + ZB_S_RATE_LIMIT },
        { "rate-burst",     required_argument, NULL, OPT_JOURNAL + ZB_S_RATE_BURST },
        { "max-control-msg", required_argument, NULL, OPT_JOURNAL + ZB_S_MAX_CONTROL_MSG },
        { "max-subscription", required_argument, NULL, OPT_JOURNAL + ZB_S_MAX_SUBSCRIPTION },
        { "metrics",        required_argument, NULL, OPT_JOURNAL + ZB_S_METRICS },
        { "cpus",           required_argument, NULL, OPT_JOURNAL + ZB_S_CPUS },
        { "publish-hwm",    required_argument, NULL, OPT_JOURNAL + ZB_S_PUBLISH_HWM },
        { "verbose",        no_argument,       NULL, 'v' },
        { "help",           no_argument,       NULL, 'h' },
        { "version",        no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    opterr = 0;                 //  our own messages, prefixed like every other line
    while ((opt = getopt_long (argc, argv, ":i:p:c:vhV", options, NULL)) != -1) {
        switch (opt) {
            case 'i': settings [ZB_S_INGEST].value = optarg; break;
            case 'p': settings [ZB_S_PUBLISH].value = optarg; break;
            case 'c': settings [ZB_S_CONTROL].value = optarg; break;
            case OPT_ACCOUNT: settings [ZB_S_ACCOUNT].value = optarg; break;
            case OPT_REGION: settings [ZB_S_REGION].value = optarg; break;
            case OPT_MAX_ENTRIES: settings [ZB_S_MAX_ENTRIES].value = optarg; break;
            case OPT_MAX_EVENT_SIZE: settings [ZB_S_MAX_EVENT_SIZE].value = optarg; break;
            case OPT_MAX_TOPICS: settings [ZB_S_MAX_TOPICS].value = optarg; break;
            case OPT_CONFIG: config_path = optarg; break;
            case 'v': verbose = true; break;
            case OPT_JOURNAL + ZB_S_MEMORY: settings [ZB_S_MEMORY].value = "true"; break;
            case OPT_JOURNAL + ZB_S_DATA_DIR:
            case OPT_JOURNAL + ZB_S_MEMORY_EVENTS:
            case OPT_JOURNAL + ZB_S_SYNC:
            case OPT_JOURNAL + ZB_S_RETAIN_HOURS:
            case OPT_JOURNAL + ZB_S_RETAIN_MB:
            case OPT_JOURNAL + ZB_S_JOURNAL_MAX_MB:
            case OPT_JOURNAL + ZB_S_DEDUP_WINDOW:
            case OPT_JOURNAL + ZB_S_HEARTBEAT_MS:
            case OPT_JOURNAL + ZB_S_MAX_RULES:
            case OPT_JOURNAL + ZB_S_MAX_PATTERN_SIZE:
            case OPT_JOURNAL + ZB_S_CURVE_CERT:
            case OPT_JOURNAL + ZB_S_CURVE_ALLOW:
            case OPT_JOURNAL + ZB_S_RATE_LIMIT:
            case OPT_JOURNAL + ZB_S_RATE_BURST:
            case OPT_JOURNAL + ZB_S_MAX_CONTROL_MSG:
            case OPT_JOURNAL + ZB_S_MAX_SUBSCRIPTION:
            case OPT_JOURNAL + ZB_S_METRICS:
            case OPT_JOURNAL + ZB_S_CPUS:
            case OPT_JOURNAL + ZB_S_PUBLISH_HWM:
                settings [opt - OPT_JOURNAL].value = optarg;
                break;
            case OPT_JOURNAL + ZB_S_INSECURE: settings [ZB_S_INSECURE].value = "true"; break;
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
    if (config_path && zb_settings_load_file (config_path, settings, &root) == -1)
        status = 2;

    zb_broker_config_t config = zb_broker_config_default ();
    config.verbose = verbose;
    zb_rule_spec_t *rules = NULL;
    if (status == 0 && zb_settings_apply (settings, root, config_path, &config, &rules) == -1)
        status = 2;

    //  Before the broker starts any thread: ZeroMQ's I/O threads take the
    //  affinity of the thread that creates them
    cpu_set_t cpus;
    if (status == 0 && settings [ZB_S_CPUS].value) {
        if (zb_settings_cpus (&settings [ZB_S_CPUS], &cpus) == -1)
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
                     "use: %s)\n", settings [ZB_S_CPUS].origin, settings [ZB_S_CPUS].value,
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
