/*  fuzz_config.c - the broker's config file (zb-broker --config FILE).

    zb-broker reads the file with zconfig_load, which is zfile_read of the
    whole file, then zconfig_chunk_load of those bytes: that is what runs
    here, on the raw input. The broker's own walk of the tree (broker/main.c
    s_load_config: the "broker" section, known keys, no nested items, then
    the checks of each value) is static in main.c, so it is mirrored below:
    keep the key list and the checks in step with main.c. A public
    zb_broker_config_load () in the broker would let this target call the
    real code instead.

    CZMQ is the system library, not instrumented for coverage: libFuzzer
    sees only this file's branches (and ASan sees CZMQ's memory errors only
    through its interceptors: memcpy, memchr, strlen, strdup, ...). The seed
    corpus and the dictionary (fuzz_config.dict) make up for some of it. */

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>

#include "event.h"
#include "fuzz.h"

//  broker/main.c s_keys, in its order
static const char *const s_keys [] = {
    "ingest", "publish", "control", "account", "region",
    "max-entries", "max-event-size", "max-topics",
    "data-dir", "memory", "memory-events", "sync", "retain-hours", "retain-mb",
    "journal-max-mb", "dedup-window", "heartbeat-ms"
};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys [0])

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    //  zconfig reports each syntax error with zclock_log on stdout: thousands
    //  of lines a second. ZB_FUZZ_VERBOSE=1 keeps them.
    const char *verbose = getenv ("ZB_FUZZ_VERBOSE");
    if (!verbose || !streq (verbose, "1"))
        if (!freopen ("/dev/null", "w", stdout))
            abort ();
    return 0;
}

//  main.c s_parse_number
static bool
s_number_ok (const char *text, uint64_t min, uint64_t max)
{
    bool digits = *text != 0;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    errno = 0;
    unsigned long long value = digits ? strtoull (text, NULL, 10) : 0;
    return digits && errno != ERANGE && value >= min && value <= max;
}

//  The value checks of main.c, by key; true when the broker would take it.
static bool
s_value_ok (size_t k, const char *value)
{
    size_t len = strlen (value);
    switch (k) {
        case 0: case 1: case 2:         //  endpoints
            return *value && len <= 200 && strstr (value, "://");
        case 3: case 4:                 //  account, region
            return len >= 1 && len <= 64 && zb_utf8_valid (value, len)
                && !zb_utf8_has_control (value, len);
        case 5:  return s_number_ok (value, 1, 10000);
        case 6:  return s_number_ok (value, 256, 64 * 1024 * 1024);
        case 7:  return s_number_ok (value, 1, 1000000);
        case 8:  return *value && len <= 4000;
        case 9:  return streq (value, "true") || streq (value, "false");
        case 10: return s_number_ok (value, 1, 1000000000ULL);
        case 11: return streq (value, "commit") || streq (value, "os");
        case 12: return s_number_ok (value, 0, 876000);
        case 13: return s_number_ok (value, 0, 16777216);
        case 14: return s_number_ok (value, 64, 16777216);
        case 15: return s_number_ok (value, 0, 2592000);
        case 16: return s_number_ok (value, 10, 3600000);
    }
    return false;
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

    zconfig_t *section = zconfig_locate (root, "broker");
    size_t accepted = 0;
    for (zconfig_t *item = section ? zconfig_child (section) : NULL; item;
         item = zconfig_next (item)) {
        const char *name = zconfig_name (item);
        FUZZ_CHECK (name, "an item without a name");
        size_t k;
        for (k = 0; k < KEY_COUNT; k++)
            if (streq (name, s_keys [k]))
                break;
        if (k == KEY_COUNT || zconfig_child (item))
            break;              //  unknown key, or nested items: the broker stops
        const char *value = zconfig_value (item) ? zconfig_value (item) : "";
        if (s_value_ok (k, value))
            accepted++;
    }
    (void) accepted;
    zconfig_destroy (&root);
    FUZZ_CHECK (root == NULL, "zconfig_destroy left the pointer set");
    return 0;
}
