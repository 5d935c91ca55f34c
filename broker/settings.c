/*  settings.c - zb-broker's settings from flags and the config file, checked
    into a zb_broker_config_t (settings.h). */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "metrics.h"
#include "cli.h"
#include "event.h"

#define PROG ZB_SETTINGS_PROG

const char *const zb_setting_keys [ZB_S_COUNT] = {
    "ingest", "publish", "control", "account", "region",
    "max-entries", "max-event-size", "max-topics",
    "data-dir", "memory", "memory-events", "sync", "retain-hours", "retain-mb",
    "journal-max-mb", "dedup-window", "heartbeat-ms", "max-rules", "max-pattern-size",
    "curve-cert", "curve-allow", "insecure", "rate-limit", "rate-burst",
    "max-control-msg", "max-subscription", "metrics", "cpus", "publish-hwm"
};

static FILE *s_log_file;

void
zb_settings_set_log (FILE *file)
{
    s_log_file = file;
}

static FILE *
s_log (void)
{
    return s_log_file ? s_log_file : stderr;
}

void
zb_settings_init (zb_setting_t settings [ZB_S_COUNT])
{
    memset (settings, 0, ZB_S_COUNT * sizeof (zb_setting_t));
    for (int k = 0; k < ZB_S_COUNT; k++) {
        settings [k].key = zb_setting_keys [k];
        snprintf (settings [k].origin_buf, sizeof settings [k].origin_buf, "--%s",
                  zb_setting_keys [k]);
        settings [k].origin = settings [k].origin_buf;
    }
}

//  True when the setting came from a flag (not from the config file).
static bool
s_from_flag (const zb_setting_t *s)
{
    return s->value && s->origin [0] == '-';
}

//  Parse a decimal integer in [min, max]; 0 on success, -1 with a message.
static int
s_parse_number (const zb_setting_t *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s->value)
        return 0;               //  not given: *out keeps its default
    if (!zb_cli_parse_range (s->value, min, max, out)) {
        fprintf (s_log (), PROG ": %s: '%s' is not an integer from %" PRIu64 " to %" PRIu64 "\n",
                 s->origin, s->value, min, max);
        return -1;
    }
    return 0;
}

//  "true" or "false" into *out (left as it is when not given); 0, or -1
//  with a message.
static int
s_parse_bool (const zb_setting_t *s, bool *out)
{
    if (!s->value)
        return 0;
    if (streq (s->value, "true") || streq (s->value, "false")) {
        *out = streq (s->value, "true");
        return 0;
    }
    fprintf (s_log (), PROG ": %s: '%s' is not true or false\n", s->origin, s->value);
    return -1;
}

static int
s_check_endpoint (const zb_setting_t *s)
{
    if (*s->value == 0 || strlen (s->value) > 200 || !strstr (s->value, "://")) {
        fprintf (s_log (), PROG ": %s: '%s' is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5555)\n",
                 s->origin, s->value);
        return -1;
    }
    return 0;
}

static int
s_check_name (const zb_setting_t *s)
{
    size_t len = strlen (s->value);
    if (len == 0 || len > NAME_LIMIT || !zb_utf8_valid (s->value, len)
    ||  zb_utf8_has_control (s->value, len)) {
        fprintf (s_log (), PROG ": %s: must be 1 to %d bytes of UTF-8 without control characters\n",
                 s->origin, NAME_LIMIT);
        return -1;
    }
    return 0;
}

//  A CPU list: numbers and ranges, comma-separated ("1", "0-3", "0,2-3").
//  0 with *set filled, -1 with a message.
int
zb_settings_cpus (const zb_setting_t *s, cpu_set_t *set)
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
    fprintf (s_log (), PROG ": %s: '%s' is not a CPU list (CPU numbers 0..%d and ranges "
             "like 2-3, comma-separated: 1, 0-3, 0,2)\n", s->origin, s->value, CPU_SETSIZE - 1);
    return -1;
}

//  Fill the settings not given by a flag from the file's "broker" section.
//  0 on success, -1 after an error message.
int
zb_settings_load_file (const char *path, zb_setting_t settings [ZB_S_COUNT], zconfig_t **root_p)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (s_log (), PROG ": cannot read config file %s: %s\n", path, strerror (errno));
        return -1;
    }
    fclose (file);
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fprintf (s_log (), PROG ": %s: not a valid zconfig file\n", path);
        return -1;
    }
    *root_p = root;             //  values point into it: the caller frees it
    return zb_settings_from_tree (path, root, settings);
}

int
zb_settings_from_tree (const char *path, zconfig_t *root, zb_setting_t settings [ZB_S_COUNT])
{
    zconfig_t *section = zconfig_locate (root, "broker");
    if (!section) {
        fprintf (s_log (), PROG ": %s: no \"broker\" section\n", path);
        return -1;
    }
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item)) {
        const char *name = zconfig_name (item);
        int k;
        for (k = 0; k < ZB_S_COUNT; k++)
            if (streq (name, zb_setting_keys [k]))
                break;
        if (k == ZB_S_COUNT) {
            fprintf (s_log (), PROG ": %s: unknown key broker/%s (known: ingest, publish, "
                     "control, account, region, max-entries, max-event-size, max-topics, "
                     "data-dir, memory, memory-events, sync, retain-hours, retain-mb, "
                     "journal-max-mb, dedup-window, heartbeat-ms, max-rules, max-pattern-size, "
                     "curve-cert, curve-allow, insecure, rate-limit, rate-burst, max-control-msg, "
                     "max-subscription, metrics, cpus, publish-hwm)\n",
                     path, name);
            return -1;
        }
        if (zconfig_child (item)) {
            fprintf (s_log (), PROG ": %s: broker/%s has nested items; expected a value\n",
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
        fprintf (s_log (), PROG ": out of memory\n");
        return -1;
    }
    *rules_p = rules;
    size_t n = 0;
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item), n++) {
        const char *name = zconfig_name (item);
        rules [n].name = name;
        if (zconfig_value (item) && *zconfig_value (item)) {
            fprintf (s_log (), PROG ": %s: rules/%s has a value; expected pattern = ... and "
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
                fprintf (s_log (), PROG ": %s: unknown key rules/%s/%s (known: pattern, transform)\n",
                         path, name, key_name);
                return -1;
            }
        }
        if (!rules [n].pattern) {
            fprintf (s_log (), PROG ": %s: rules/%s has no pattern\n", path, name);
            return -1;
        }
    }
    *count_p = count;
    return 0;
}

//  The journal settings into config->journal and config->heartbeat_ms.
//  0, or -1 after an error message naming the flag or key.
static int
s_journal_settings (zb_setting_t settings [ZB_S_COUNT], zb_broker_config_t *config)
{
    zb_journal_config_t *journal = &config->journal;
    bool memory = false;
    if (s_parse_bool (&settings [ZB_S_MEMORY], &memory) == -1)
        return -1;
    //  A data directory and --memory exclude each other; between the file and
    //  a flag, the flag wins as for every other setting
    zb_setting_t *s = &settings [ZB_S_DATA_DIR];
    if (memory && s->value) {
        if (s_from_flag (s) == s_from_flag (&settings [ZB_S_MEMORY])) {
            fprintf (s_log (), PROG ": %s and %s exclude each other (a disk journal or a memory one)\n",
                     settings [ZB_S_MEMORY].origin, s->origin);
            return -1;
        }
        if (s_from_flag (s))
            memory = false;
    }
    if (!memory && s->value) {
        if (*s->value == 0 || strlen (s->value) > 4000) {
            fprintf (s_log (), PROG ": %s: '%s' is not a directory path\n", s->origin, s->value);
            return -1;
        }
        journal->dir = s->value;
    }
    if (memory)
        journal->dir = NULL;

    s = &settings [ZB_S_SYNC];
    if (s->value) {
        if (streq (s->value, "commit"))
            journal->sync = ZB_SYNC_COMMIT;
        else
        if (streq (s->value, "os"))
            journal->sync = ZB_SYNC_OS;
        else {
            fprintf (s_log (), PROG ": %s: '%s' is not commit or os\n", s->origin, s->value);
            return -1;
        }
    }
    if (s_parse_number (&settings [ZB_S_MEMORY_EVENTS], 1, MEMORY_EVENTS_LIMIT,
                        &journal->memory_events) == -1
    ||  s_parse_number (&settings [ZB_S_RETAIN_HOURS], 0, RETAIN_HOURS_LIMIT,
                        &journal->retain_hours) == -1
    ||  s_parse_number (&settings [ZB_S_RETAIN_MB], 0, SIZE_MB_LIMIT, &journal->retain_mb) == -1
    ||  s_parse_number (&settings [ZB_S_JOURNAL_MAX_MB], JOURNAL_MAX_MB_MIN, SIZE_MB_LIMIT,
                        &journal->max_mb) == -1
    ||  s_parse_number (&settings [ZB_S_DEDUP_WINDOW], 0, DEDUP_WINDOW_LIMIT,
                        &journal->dedup_window_s) == -1
    ||  s_parse_number (&settings [ZB_S_HEARTBEAT_MS], HEARTBEAT_MS_MIN, HEARTBEAT_MS_LIMIT,
                        &config->heartbeat_ms) == -1)
        return -1;
    //  The store must hold what retention keeps, or writes fail before
    //  pruning makes room
    if (journal->max_mb && journal->retain_mb && journal->max_mb < journal->retain_mb) {
        fprintf (s_log (), PROG ": %s: %" PRIu64 " MiB is less than retain-mb (%" PRIu64 " MiB): "
                 "the store would be full before retention prunes it\n",
                 settings [ZB_S_JOURNAL_MAX_MB].origin, journal->max_mb, journal->retain_mb);
        return -1;
    }
    return 0;
}

//  CURVE, authorization, rate limit and socket limits into config; then the
//  safe default: no plain-text endpoint beyond loopback unless --insecure.
//  0, or -1 after an error message.
static int
s_security_settings (zb_setting_t settings [ZB_S_COUNT], zconfig_t *root, const char *config_path,
                     zb_broker_config_t *config)
{
    zb_auth_config_t *auth = &config->auth;
    bool insecure = false;
    if (s_parse_bool (&settings [ZB_S_INSECURE], &insecure) == -1)
        return -1;
    zb_setting_t *s;
    for (int k = ZB_S_CURVE_CERT; k <= ZB_S_CURVE_ALLOW; k++) {
        s = &settings [k];
        if (s->value && (*s->value == 0 || strlen (s->value) > 4000)) {
            fprintf (s_log (), PROG ": %s: '%s' is not a path\n", s->origin, s->value);
            return -1;
        }
    }
    auth->curve_cert = settings [ZB_S_CURVE_CERT].value;
    auth->curve_allow = settings [ZB_S_CURVE_ALLOW].value;
    if (!auth->curve_cert != !auth->curve_allow) {
        fprintf (s_log (), PROG ": %s needs %s as well (CURVE takes the broker's secret "
                 "certificate and the directory of allowed client certificates)\n",
                 auth->curve_cert ? settings [ZB_S_CURVE_CERT].origin : settings [ZB_S_CURVE_ALLOW].origin,
                 auth->curve_cert ? "curve-allow" : "curve-cert");
        return -1;
    }
    auth->authorization = root ? zconfig_locate (root, "authorization") : NULL;
    auth->config_path = config_path;
    auth->verbose = config->verbose;
    if (s_parse_number (&settings [ZB_S_RATE_LIMIT], 0, RATE_LIMIT_MAX, &auth->rate_limit) == -1
    ||  s_parse_number (&settings [ZB_S_RATE_BURST], 1, RATE_LIMIT_MAX, &auth->rate_burst) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_CONTROL_MSG], MAX_CONTROL_MSG_MIN, MAX_CONTROL_MSG_LIMIT,
                        &config->max_control_msg) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_SUBSCRIPTION], MAX_SUBSCRIPTION_MIN,
                        MAX_SUBSCRIPTION_LIMIT, &config->max_subscription) == -1
    ||  s_parse_number (&settings [ZB_S_PUBLISH_HWM], 1, PUBLISH_HWM_LIMIT,
                        &config->publish_hwm) == -1)
        return -1;
    if (auth->rate_burst && !auth->rate_limit) {
        fprintf (s_log (), PROG ": %s needs rate-limit\n", settings [ZB_S_RATE_BURST].origin);
        return -1;
    }
    if (auth->curve_cert || insecure)
        return 0;
    const char *endpoints [] = { config->ingest, config->publish, config->control };
    const char *names [] = { "ingest", "publish", "control" };
    for (int i = 0; i < 3; i++) {
        if (!zb_auth_endpoint_safe (endpoints [i])) {
            fprintf (s_log (), PROG ": refusing to bind %s to %s in plain text: anyone who can "
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
zb_settings_apply (zb_setting_t settings [ZB_S_COUNT], zconfig_t *root, const char *path,
                   zb_broker_config_t *config, zb_rule_spec_t **rules_p)
{
    *rules_p = NULL;
    const char **strings [] = { &config->ingest, &config->publish, &config->control,
                                &config->account, &config->region };
    for (int k = ZB_S_INGEST; k <= ZB_S_REGION; k++) {
        if (!settings [k].value)
            continue;
        if ((k <= ZB_S_CONTROL ? s_check_endpoint (&settings [k])
                               : s_check_name (&settings [k])) == -1)
            return -1;
        *strings [k] = settings [k].value;
    }
    if (s_parse_number (&settings [ZB_S_MAX_ENTRIES], 1, MAX_ENTRIES_LIMIT,
                        &config->max_entries) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_EVENT_SIZE], MAX_EVENT_SIZE_MIN,
                        MAX_EVENT_SIZE_LIMIT, &config->max_event_size) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_TOPICS], 1, MAX_TOPICS_LIMIT,
                        &config->max_topics) == -1
    ||  s_journal_settings (settings, config) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_RULES], 1, MAX_RULES_LIMIT,
                        &config->max_rules) == -1
    ||  s_parse_number (&settings [ZB_S_MAX_PATTERN_SIZE], 0, MAX_PATTERN_SIZE_LIMIT,
                        &config->max_pattern_size) == -1)
        return -1;
    if (settings [ZB_S_METRICS].value) {
        char err [300];
        if (zb_metrics_check_address (settings [ZB_S_METRICS].value, err, sizeof err) == -1) {
            fprintf (s_log (), PROG ": %s: %s\n", settings [ZB_S_METRICS].origin, err);
            return -1;
        }
        config->metrics = settings [ZB_S_METRICS].value;
    }
    if (root && s_load_rules (path, root, rules_p, &config->nrules) == -1)
        return -1;
    config->rules = *rules_p;
    return s_security_settings (settings, root, path, config);
}
