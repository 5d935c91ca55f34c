/*  fuzz_config.c - the broker's config file (zb-broker --config FILE).

    zb-broker reads the file with zconfig_load, which is zfile_read of the
    whole file, then zconfig_chunk_load of those bytes: that is what runs
    here, on the raw input. Then broker/settings.c, the broker's own code:
    the "broker" section's keys (zb_settings_from_tree) and every value's
    checks into a zb_broker_config_t, the "rules" section and the security
    settings (zb_settings_apply). What it accepts must be in the documented
    ranges; what it refuses, it says why.

    One difference with the broker: a "metrics" address is dropped before
    the checks, since checking it resolves a host name (getaddrinfo), which
    may wait for DNS. tests/system/test_metrics.py sends it garbage.

    CZMQ is the system library, not instrumented for coverage: libFuzzer
    sees its branches only through this file and settings.c (and ASan sees
    CZMQ's memory errors only through its interceptors: memcpy, memchr,
    strlen, strdup, ...). The seed corpus and the dictionary
    (fuzz_config.dict) make up for some of it. */

#include <czmq.h>
#include <stdlib.h>

#include "../../broker/settings.h"
#include "fuzz.h"

static char s_log_buf [1 << 16];
static FILE *s_log;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    //  zconfig reports each syntax error with zclock_log on stdout: thousands
    //  of lines a second. ZB_FUZZ_VERBOSE=1 keeps them, and the settings'
    //  messages on stderr.
    const char *verbose = getenv ("ZB_FUZZ_VERBOSE");
    if (verbose && streq (verbose, "1"))
        return 0;
    if (!freopen ("/dev/null", "w", stdout))
        abort ();
    //  The settings' messages go to a buffer, checked after a refusal
    s_log = fmemopen (s_log_buf, sizeof s_log_buf, "w");
    if (!s_log)
        abort ();
    zb_settings_set_log (s_log);
    return 0;
}

//  What zb_settings_apply accepted is what the broker documents.
static void
s_check_config (const zb_broker_config_t *config, const zb_rule_spec_t *rules, zconfig_t *root)
{
    FUZZ_CHECK (config->ingest && strstr (config->ingest, "://"), "ingest %s", config->ingest);
    FUZZ_CHECK (config->publish && strstr (config->publish, "://"), "publish");
    FUZZ_CHECK (config->control && strstr (config->control, "://"), "control");
    FUZZ_CHECK (config->account && *config->account && strlen (config->account) <= NAME_LIMIT,
                "account");
    FUZZ_CHECK (config->region && *config->region && strlen (config->region) <= NAME_LIMIT,
                "region");
    FUZZ_CHECK (config->max_entries >= 1 && config->max_entries <= MAX_ENTRIES_LIMIT,
                "max-entries %" PRIu64, config->max_entries);
    FUZZ_CHECK (config->max_event_size >= MAX_EVENT_SIZE_MIN
                && config->max_event_size <= MAX_EVENT_SIZE_LIMIT,
                "max-event-size %" PRIu64, config->max_event_size);
    FUZZ_CHECK (config->max_topics >= 1 && config->max_topics <= MAX_TOPICS_LIMIT,
                "max-topics %" PRIu64, config->max_topics);
    const zb_journal_config_t *j = &config->journal;
    FUZZ_CHECK (!j->dir || (*j->dir && strlen (j->dir) <= 4000), "data-dir");
    FUZZ_CHECK (j->sync == ZB_SYNC_COMMIT || j->sync == ZB_SYNC_OS, "sync %d", (int) j->sync);
    FUZZ_CHECK (j->memory_events >= 1 && j->memory_events <= MEMORY_EVENTS_LIMIT,
                "memory-events %" PRIu64, j->memory_events);
    FUZZ_CHECK (j->retain_hours <= RETAIN_HOURS_LIMIT && j->retain_mb <= SIZE_MB_LIMIT
                && j->dedup_window_s <= DEDUP_WINDOW_LIMIT, "retention");
    FUZZ_CHECK (j->max_mb == 0 || (j->max_mb >= JOURNAL_MAX_MB_MIN && j->max_mb <= SIZE_MB_LIMIT
                                   && (!j->retain_mb || j->max_mb >= j->retain_mb)),
                "journal-max-mb %" PRIu64, j->max_mb);
    FUZZ_CHECK (config->heartbeat_ms >= HEARTBEAT_MS_MIN
                && config->heartbeat_ms <= HEARTBEAT_MS_LIMIT,
                "heartbeat-ms %" PRIu64, config->heartbeat_ms);
    FUZZ_CHECK (config->max_rules >= 1 && config->max_rules <= MAX_RULES_LIMIT, "max-rules");
    FUZZ_CHECK (config->max_pattern_size <= MAX_PATTERN_SIZE_LIMIT, "max-pattern-size");
    FUZZ_CHECK (config->max_control_msg >= MAX_CONTROL_MSG_MIN
                && config->max_control_msg <= MAX_CONTROL_MSG_LIMIT, "max-control-msg");
    FUZZ_CHECK (config->max_subscription >= MAX_SUBSCRIPTION_MIN
                && config->max_subscription <= MAX_SUBSCRIPTION_LIMIT, "max-subscription");
    FUZZ_CHECK (config->publish_hwm >= 1 && config->publish_hwm <= PUBLISH_HWM_LIMIT,
                "publish-hwm %" PRIu64, config->publish_hwm);
    const zb_auth_config_t *auth = &config->auth;
    FUZZ_CHECK (!auth->curve_cert == !auth->curve_allow, "curve-cert without curve-allow");
    FUZZ_CHECK (!auth->rate_burst || auth->rate_limit, "rate-burst without rate-limit");
    FUZZ_CHECK (auth->rate_limit <= RATE_LIMIT_MAX && auth->rate_burst <= RATE_LIMIT_MAX,
                "rate-limit");
    FUZZ_CHECK (auth->curve_cert || zb_auth_endpoint_safe (config->ingest),
                "plain text beyond loopback: %s", config->ingest);
    //  Every item of the rules section is a rule with a pattern
    zconfig_t *section = zconfig_locate (root, "rules");
    size_t items = 0;
    for (zconfig_t *item = section ? zconfig_child (section) : NULL; item;
         item = zconfig_next (item))
        items++;
    FUZZ_CHECK (config->nrules == items && config->rules == rules, "%zu rules of %zu items",
                config->nrules, items);
    for (size_t i = 0; i < config->nrules; i++)
        FUZZ_CHECK (rules [i].name && rules [i].pattern, "rule %zu", i);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zchunk_t *chunk = zchunk_new (data, size);
    FUZZ_CHECK (chunk, "zchunk_new of %zu bytes", size);
    zconfig_t *root = zconfig_chunk_load (chunk);
    zchunk_destroy (&chunk);
    if (!root)
        return 0;               //  "not a valid zconfig file"

    zb_setting_t settings [ZB_S_COUNT];
    zb_settings_init (settings);
    if (s_log)
        rewind (s_log);
    int rc = zb_settings_from_tree ("fuzz.cfg", root, settings);
    zb_rule_spec_t *rules = NULL;
    if (rc == 0) {
        settings [ZB_S_METRICS].value = NULL;
        zb_broker_config_t config = zb_broker_config_default ();
        rc = zb_settings_apply (settings, root, "fuzz.cfg", &config, &rules);
        if (rc == 0)
            s_check_config (&config, rules, root);
    }
    if (rc != 0 && s_log) {
        //  A refusal says why, in one line that names the program
        fflush (s_log);
        long len = ftell (s_log);
        FUZZ_CHECK (len > 0 && (size_t) len < sizeof s_log_buf, "no message for a refusal");
        s_log_buf [len] = 0;
        FUZZ_CHECK (strncmp (s_log_buf, "zb-broker: ", 11) == 0, "message: %s", s_log_buf);
    }
    free (rules);
    zconfig_destroy (&root);
    FUZZ_CHECK (root == NULL, "zconfig_destroy left the pointer set");
    return 0;
}
