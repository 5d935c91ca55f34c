//  A minimal zbridge producer: puts COUNT events, pipelined, and checks every result.
//  cc producer.c -o producer $(pkg-config --cflags --libs zbridge)
//  ./producer [COUNT [INGEST_EP]]
#include <stdio.h>
#include <stdlib.h>
#include <zbridge.h>

static void
on_result (void *arg, const zbridge_result_t *result)
{
    int *failed = (int *) arg;
    if (result->status != ZBRIDGE_OK) {
        fprintf (stderr, "producer: entry %lu: %s %s\n", (unsigned long) result->tag,
                 result->code, result->message);
        (*failed)++;
    }
}

int
main (int argc, char **argv)
{
    int count = argc > 1? atoi (argv [1]): 10, failed = 0;
    zbridge_producer_options_t options;
    zbridge_producer_options_init (&options);
    if (argc > 2)
        options.endpoint = argv [2];
    options.on_result = on_result;
    options.arg = &failed;
    zbridge_error_t error;
    zbridge_producer_t *producer = zbridge_producer_new (&options, &error);
    if (!producer) {
        fprintf (stderr, "producer: %s\n", error.message);
        return 1;
    }
    for (int i = 1; i <= count; i++) {
        char entry [256];
        snprintf (entry, sizeof entry, "{\"Source\":\"example\",\"DetailType\":\"sales-events\","
                  "\"Detail\":{\"store_id\":\"store_%d\",\"sales\":%d}}", i % 3, i);
        if (zbridge_producer_send (producer, entry, 0, (uint64_t) i) != ZBRIDGE_OK)
            break;
    }
    int rc = zbridge_producer_flush (producer);
    if (rc != ZBRIDGE_OK)
        fprintf (stderr, "producer: %s\n", zbridge_producer_error (producer));
    zbridge_producer_destroy (&producer);
    printf ("sent %d, failed %d\n", count, failed);
    return rc == ZBRIDGE_OK && failed == 0? 0: 1;
}
