/*  settings.h - zb-broker's settings: each one given by a flag or by the
    config file, checked, and put into a zb_broker_config_t. main.c reads the
    flags and starts the broker; tests/fuzz/fuzz_config.c runs the config
    file's part of the same code on its inputs. */

#ifndef ZB_SETTINGS_H
#define ZB_SETTINGS_H

#include <sched.h>
#include <stdio.h>
#include <czmq.h>

#include "broker.h"

#define ZB_SETTINGS_PROG "zb-broker"

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

//  A setting as given by a flag or the file, before it is checked.
typedef struct {
    const char *key;            //  name in the file and, with "--", the flag
    const char *value;          //  NULL: not given
    const char *origin;         //  "--max-entries" or "broker.cfg: broker/max-entries"
    char origin_buf [300];
} zb_setting_t;

enum {
    ZB_S_INGEST, ZB_S_PUBLISH, ZB_S_CONTROL, ZB_S_ACCOUNT, ZB_S_REGION,
    ZB_S_MAX_ENTRIES, ZB_S_MAX_EVENT_SIZE, ZB_S_MAX_TOPICS,
    ZB_S_DATA_DIR, ZB_S_MEMORY, ZB_S_MEMORY_EVENTS, ZB_S_SYNC, ZB_S_RETAIN_HOURS,
    ZB_S_RETAIN_MB, ZB_S_JOURNAL_MAX_MB, ZB_S_DEDUP_WINDOW, ZB_S_HEARTBEAT_MS,
    ZB_S_MAX_RULES, ZB_S_MAX_PATTERN_SIZE,
    ZB_S_CURVE_CERT, ZB_S_CURVE_ALLOW, ZB_S_INSECURE, ZB_S_RATE_LIMIT, ZB_S_RATE_BURST,
    ZB_S_MAX_CONTROL_MSG, ZB_S_MAX_SUBSCRIPTION, ZB_S_METRICS, ZB_S_CPUS, ZB_S_PUBLISH_HWM,
    ZB_S_COUNT
};

//  The names in the file (and, with "--", the flags), by ZB_S_ index.
extern const char *const zb_setting_keys [ZB_S_COUNT];

//  Every setting not given, its origin the flag ("--max-entries").
void zb_settings_init (zb_setting_t settings [ZB_S_COUNT]);

//  Where the messages about bad settings go (default: stderr).
void zb_settings_set_log (FILE *file);

//  Fill the settings not given by a flag from the file's "broker" section;
//  *root_p gets the file's tree (the values point into it: the caller frees
//  it, also on failure). 0, or -1 after a message.
int zb_settings_load_file (const char *path, zb_setting_t settings [ZB_S_COUNT],
                           zconfig_t **root_p);

//  The same from a tree already loaded; path names the file in messages.
int zb_settings_from_tree (const char *path, zconfig_t *root,
                           zb_setting_t settings [ZB_S_COUNT]);

//  Check every setting given (all but cpus) and put it into config, which
//  holds the defaults (and verbose); the file's rules (root may be NULL) go
//  to *rules_p, to free by the caller, also on failure. 0, or -1 after a
//  message naming the flag or key.
int zb_settings_apply (zb_setting_t settings [ZB_S_COUNT], zconfig_t *root, const char *path,
                       zb_broker_config_t *config, zb_rule_spec_t **rules_p);

//  The cpus setting as a CPU set. 0, or -1 after a message.
int zb_settings_cpus (const zb_setting_t *s, cpu_set_t *set);

#endif
