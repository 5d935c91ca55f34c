//  A minimal zbridge consumer: prints N events of a topic as JSON lines.
//  cc consumer.c -o consumer $(pkg-config --cflags --libs zbridge)
//  ./consumer [TOPIC [COUNT [PUBLISH_EP CONTROL_EP]]]
#include <stdio.h>
#include <stdlib.h>
#include <zbridge.h>

int
main (int argc, char **argv)
{
    const char *topics [] = { argc > 1? argv [1]: "sales-events", NULL };
    long count = argc > 2? atol (argv [2]): 10;
    zbridge_consumer_options_t options;
    zbridge_consumer_options_init (&options);
    options.topics = topics;
    options.from = "earliest";              //  what the journal holds, then live
    if (argc > 4) {
        options.publish = argv [3];
        options.control = argv [4];
    }
    zbridge_error_t error;
    zbridge_consumer_t *consumer = zbridge_consumer_new (&options, &error);
    if (!consumer) {
        fprintf (stderr, "consumer: %s\n", error.message);
        return 1;
    }
    zbridge_event_t *event;
    while (count-- > 0 && zbridge_consumer_recv (consumer, &event, 10000) == ZBRIDGE_OK)
        printf ("%lu %s\n", (unsigned long) zbridge_event_seq (event),
                zbridge_event_json (event, NULL));
    zbridge_consumer_destroy (&consumer);
    return count < 0? 0: 1;
}
