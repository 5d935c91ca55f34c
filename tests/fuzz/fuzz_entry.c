/*  fuzz_entry.c - libzbridge's producer entries (zbridge.h), as an
    application hands them over: zbridge_producer_send (JSON text) and
    zbridge_producer_send_msgpack (bytes).

    Input: the bytes, given to both calls. The producer is connected to a
    port where nothing listens, with the largest batch, so nothing is sent:
    entries only queue (the producer is remade now and then).

    Invariants (a violation traps):
    - each call returns ZBRIDGE_OK (one more entry queued) or ZBRIDGE_EENTRY
      (none) with a one-line message;
    - an accepted msgpack entry was one whole map (msgpack-c agrees). */

#include <msgpack.h>
#include <zbridge.h>

#include "fuzz.h"

static zbridge_producer_t *s_producer;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    return 0;
}

static void
s_check (int rc, size_t before)
{
    zbridge_producer_stats_t stats;
    FUZZ_CHECK (zbridge_producer_stats (s_producer, &stats) == ZBRIDGE_OK, "stats");
    if (rc == ZBRIDGE_OK)
        FUZZ_CHECK (stats.queued == before + 1, "queued %zu after %zu", stats.queued, before);
    else {
        FUZZ_CHECK (rc == ZBRIDGE_EENTRY, "status %d (%s)", rc, zbridge_strerror (rc));
        FUZZ_CHECK (stats.queued == before, "queued %zu after %zu", stats.queued, before);
        const char *message = zbridge_producer_error (s_producer);
        FUZZ_CHECK (*message && !strchr (message, '\n'), "message '%s'", message);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zbridge_producer_stats_t stats = { 0 };
    if (s_producer)
        zbridge_producer_stats (s_producer, &stats);
    if (!s_producer || stats.queued > 90000) {
        zbridge_producer_destroy (&s_producer);
        zbridge_producer_options_t options;
        zbridge_producer_options_init (&options);
        options.endpoint = "tcp://127.0.0.1:1";
        options.batch = 100000;
        options.window = 1;
        s_producer = zbridge_producer_new (&options, NULL);
        FUZZ_CHECK (s_producer, "producer");
        stats.queued = 0;
    }
    int rc = zbridge_producer_send_msgpack (s_producer, data, size, 0);
    s_check (rc, stats.queued);
    if (rc == ZBRIDGE_OK) {
        msgpack_zone zone;
        msgpack_zone_init (&zone, 1024);
        msgpack_object object;
        size_t offset = 0;
        FUZZ_CHECK (msgpack_unpack ((const char *) data, size, &offset, &zone, &object)
                    == MSGPACK_UNPACK_SUCCESS && offset == size
                    && object.type == MSGPACK_OBJECT_MAP, "accepted a non-map");
        msgpack_zone_destroy (&zone);
        stats.queued++;
    }
    if (size > 0) {
        rc = zbridge_producer_send (s_producer, (const char *) data, size, 0);
        s_check (rc, stats.queued);
    }
    return 0;
}
