/*  zb-libclient - drives libzbridge's API for tests/system/test_library.py.

    zb-libclient put EP [TIMEOUT_MS]
        Reads entries (JSON, one per line) from stdin, puts them all with
        zbridge_producer_put_batch, prints one JSON line per result, then
        {"status": N} (the call's status). Exit 0.
    zb-libclient recv PUB CTL COUNT [from=F] [topic=T] [rule=R] [pattern=P]
                      [state=DIR name=N] [timeout=MS]
        Receives COUNT events with zbridge_consumer_recv and prints each as
        "SEQ TOPIC_SEQ TOPIC JSON". Exit 0 when COUNT arrived, 3 on a receive
        timeout (default 10000 ms), 1 when the consumer cannot be made (its
        error code and message on stderr). */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zbridge.h>

#define MAX_LINES   1000

static int
s_put (const char *endpoint, int timeout_ms)
{
    static char *lines [MAX_LINES];
    size_t count = 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t n;
    while (count < MAX_LINES && (n = getline (&line, &size, stdin)) > 0) {
        if (line [n - 1] == '\n')
            line [n - 1] = '\0';
        lines [count++] = strdup (line);
    }
    free (line);
    zbridge_producer_options_t options;
    zbridge_producer_options_init (&options);
    options.endpoint = endpoint;
    options.batch = 3;                  //  several requests in flight
    options.window = 4;
    options.timeout_ms = timeout_ms;
    options.retry_ms = timeout_ms / 4 > 0? timeout_ms / 4: 1;
    zbridge_error_t error;
    zbridge_producer_t *producer = zbridge_producer_new (&options, &error);
    if (!producer) {
        fprintf (stderr, "zb-libclient: %d %s\n", error.code, error.message);
        return 1;
    }
    zbridge_result_t *results = calloc (count? count: 1, sizeof *results);
    int rc = zbridge_producer_put_batch (producer, (const char *const *) lines, count, results);
    for (size_t i = 0; i < count && rc != ZBRIDGE_EENTRY && rc != ZBRIDGE_EINVAL; i++)
        printf ("{\"tag\":%" PRIu64 ",\"status\":%d,\"duplicate\":%s,\"id\":\"%s\","
                "\"code\":\"%s\"}\n", results [i].tag, results [i].status,
                results [i].duplicate? "true": "false", results [i].id, results [i].code);
    printf ("{\"status\":%d,\"error\":\"%s\"}\n", rc, rc? zbridge_strerror (rc): "");
    if (rc)
        fprintf (stderr, "zb-libclient: %s\n", zbridge_producer_error (producer));
    zbridge_producer_destroy (&producer);
    for (size_t i = 0; i < count; i++)
        free (lines [i]);
    free (results);
    return 0;
}

static int
s_recv (int argc, char **argv)
{
    const char *topics [8] = { NULL }, *rules [8] = { NULL };
    size_t ntopics = 0, nrules = 0;
    long count = atol (argv [4]);
    int timeout_ms = 10000;
    zbridge_consumer_options_t options;
    zbridge_consumer_options_init (&options);
    options.publish = argv [2];
    options.control = argv [3];
    for (int i = 5; i < argc; i++) {
        char *value = strchr (argv [i], '=');
        if (!value)
            continue;
        *value++ = '\0';
        if (!strcmp (argv [i], "from"))     options.from = value;
        if (!strcmp (argv [i], "topic") && ntopics < 7)   topics [ntopics++] = value;
        if (!strcmp (argv [i], "rule") && nrules < 7)     rules [nrules++] = value;
        if (!strcmp (argv [i], "pattern"))  options.pattern = value;
        if (!strcmp (argv [i], "state"))    options.state_dir = value;
        if (!strcmp (argv [i], "name"))     options.name = value;
        if (!strcmp (argv [i], "timeout"))  timeout_ms = atoi (value);
    }
    options.topics = ntopics? topics: NULL;
    options.rules = nrules? rules: NULL;
    zbridge_error_t error;
    zbridge_consumer_t *consumer = zbridge_consumer_new (&options, &error);
    if (!consumer) {
        fprintf (stderr, "zb-libclient: %d %s\n", error.code, error.message);
        return 1;
    }
    int rc = ZBRIDGE_OK;
    for (long i = 0; i < count && rc == ZBRIDGE_OK; i++) {
        zbridge_event_t *event;
        rc = zbridge_consumer_recv (consumer, &event, timeout_ms);
        if (rc == ZBRIDGE_OK) {
            printf ("%" PRIu64 " %" PRIu64 " %s %s\n", zbridge_event_seq (event),
                    zbridge_event_topic_seq (event), zbridge_event_topic (event),
                    zbridge_event_json (event, NULL));
            fflush (stdout);
        }
    }
    if (rc != ZBRIDGE_OK)
        fprintf (stderr, "zb-libclient: %s\n", zbridge_consumer_error (consumer));
    zbridge_consumer_destroy (&consumer);
    return rc == ZBRIDGE_OK? 0: rc == ZBRIDGE_ETIMEOUT? 3: 1;
}

int
main (int argc, char **argv)
{
    if (argc >= 3 && !strcmp (argv [1], "put"))
        return s_put (argv [2], argc > 3? atoi (argv [3]): 10000);
    if (argc >= 5 && !strcmp (argv [1], "recv"))
        return s_recv (argc, argv);
    fprintf (stderr, "usage: zb-libclient put EP [TIMEOUT_MS] | recv PUB CTL COUNT [k=v...]\n");
    return 2;
}
