/*  zbctl_tail.c - zbctl tail: follow events as they are published.

    The consumer side is zb-consumer's own (common/consumer_main.c): exact
    subscriptions, rules' topics, patterns, --from with catch-up from the
    journal, gap filling. zbctl tail only checks that the broker answers
    (a tail that waits forever on a wrong endpoint helps nobody), turns its
    arguments into a consumer's and prints events as indented JSON unless
    --json asks for one line each. */

#include <czmq.h>
#include <string.h>

#include "cli.h"
#include "consumer_main.h"
#include "zbctl.h"

#define TAIL_NAME "zbctl tail"

static void
s_tail_usage (void)
{
    printf (
        "Usage: zbctl [--control EP] [--publish EP] tail TOPIC... | --rule NAME | --pattern JSON\n"
        "             [--prefix P] [--from WHERE] [--json] [-n N]\n"
        "Follow the events of detail-types (exact), of broker rules (their topic\n"
        "$rule/NAME), of prefixes, or matching an EventBridge event pattern, until\n"
        "Ctrl-C (or N events). Each event is printed as indented JSON; --json prints\n"
        "one JSON line per event instead (what zb-consumer prints). Missed events are\n"
        "read back from the broker's journal, in order.\n\n"
        "      --rule NAME      the deliveries of the broker's rule NAME (repeatable)\n"
        "      --pattern JSON   only events matching the pattern (EventBridge syntax)\n"
        "      --prefix P       every detail-type starting with P (repeatable; \"\" all)\n"
        "      --from WHERE     latest (default), earliest, seq:N, time:RFC3339\n"
        "      --json           one compact JSON line per event\n"
        "  -n, --count N        stop after N events\n\n"
        "Exit status: 0 stopped by Ctrl-C or after N events; 1 the broker does not\n"
        "answer on the control endpoint (within --timeout) or stdout failed; 2 usage.\n\n"
        "Examples:\n"
        "  zbctl tail sales-events\n"
        "  zbctl tail sales-events inventory-events --json | jq .detail\n"
        "  zbctl tail --rule big-sales --from earliest\n"
        "  zbctl tail --pattern '{\"detail\":{\"store_id\":[\"store_2\"]}}' -n 10\n");
}

int
zbctl_tail (zbctl_global_t *global, int argc, char **argv)
{
    enum { OPT_RULE = 256, OPT_PATTERN, OPT_PREFIX, OPT_FROM, OPT_JSON };
    static const struct option options [] = {
        ZBCTL_GLOBAL_OPTIONS,
        { "rule",    required_argument, NULL, OPT_RULE },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "prefix",  required_argument, NULL, OPT_PREFIX },
        { "from",    required_argument, NULL, OPT_FROM },
        { "json",    no_argument,       NULL, OPT_JSON },
        { "count",   required_argument, NULL, 'n' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    //  The consumer's arguments: at most two per one of ours, and 6 more
    const char **args = (const char **) calloc ((size_t) argc * 2 + 16, sizeof (char *));
    assert (args);
    int n = 0;
    args [n++] = TAIL_NAME;
    bool json = false, chosen = false;
    int rc = -1;
    opterr = 0;
    optind = 0;
    int opt;
    while (rc < 0 && (opt = getopt_long (argc, argv, ":n:hV", options, NULL)) != -1) {
        int taken = zbctl_global_option (global, opt, optarg);
        if (taken == 2)
            rc = 2;
        if (taken)
            continue;
        switch (opt) {
            case OPT_RULE:    args [n++] = "--rule"; args [n++] = optarg; chosen = true; break;
            case OPT_PATTERN: args [n++] = "--pattern"; args [n++] = optarg; chosen = true; break;
            case OPT_PREFIX:  args [n++] = "--prefix"; args [n++] = optarg; chosen = true; break;
            case OPT_FROM:    args [n++] = "--from"; args [n++] = optarg; break;
            case 'n':         args [n++] = "--count"; args [n++] = optarg; break;
            case OPT_JSON:    json = true; break;
            case 'h':         s_tail_usage (); rc = 0; break;
            case 'V':         printf (ZBCTL_PROG " %s\n", ZB_VERSION); rc = 0; break;
            default:          rc = zb_cli_option_error (TAIL_NAME, opt, argv); break;
        }
    }
    for (int i = optind; rc < 0 && i < argc; i++) {
        args [n++] = "--topic";
        args [n++] = argv [i];
        chosen = true;
    }
    if (rc < 0 && !chosen)
        rc = zb_cli_usage_error (TAIL_NAME, "give a TOPIC, --rule NAME, --prefix P or "
                                 "--pattern JSON");
    if (rc < 0) {
        int setup = zbctl_curve_setup ();
        if (setup)
            rc = setup;
    }
    if (rc < 0) {
        zsys_init ();
        rc = zbctl_ping (global);
        if (rc == 0) {
            args [n++] = "--connect";
            args [n++] = global->publish;
            args [n++] = "--control";
            args [n++] = global->control;
            //  The consumer runs on libzbridge: its CURVE settings are its own
            if (global->curve_server) {
                args [n++] = "--curve-server";
                args [n++] = global->curve_server;
            }
            if (global->curve_cert) {
                args [n++] = "--curve-cert";
                args [n++] = global->curve_cert;
            }
            if (global->max_msg_size) {
                args [n++] = "--max-msg-size";
                args [n++] = global->max_msg_size;
            }
            zb_consumer_spec_t spec = {
                .name = TAIL_NAME,
                .purpose = "follow events (zbctl tail --help)",
                .pretty = !json,
            };
            rc = zb_consumer_main (n, (char **) args, &spec);
        }
    }
    free (args);
    return rc;
}
