/*  zb-transform-bench - how fast a broker rule's input transformer
    (common/transform.h) renders one store event: the cost the broker pays
    per matched event of a rule with a transformer.

    The transformer is the README's realistic one: three paths (a string, a
    number, an array of objects), placed outside strings, inside a string,
    and the rule's name:

        {"store": <store>, "total": <total>, "items": <items>,
         "line": "<store> sold <total>", "rule": "<aws.events.rule-name>"}

    plus a string (non-JSON) template over the same variables. The event is
    a packed store event (~600 bytes, unpacked once, as the broker does).

    Single thread; the fastest of --runs runs (default 3) of --renders
    renders (default 1,000,000) is kept. With --reference, the reference
    renderer (today's JSON text + json-c path, kept for tests) is timed
    too. For instructions per render, run a few renders under callgrind:
        valgrind --tool=callgrind build/bench/zb-transform-bench -n 10000 -r 1
    and divide zb_transform_render's inclusive count by the renders
    (--case json-template: one transformer only). */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <msgpack.h>

#include "../common/codec.h"
#include "../common/transform.h"

static const char *prog = "zb-transform-bench";

static const char *s_event_json =
    "{\"version\":\"0\",\"id\":\"5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21\","
    "\"detail-type\":\"sales-events\",\"source\":\"store-7\",\"account\":\"000000000000\","
    "\"time\":\"2026-11-26T17:15:01Z\",\"region\":\"local\",\"resources\":[\"arn:store:7\"],"
    "\"detail\":{\"order_id\":\"o-20261126-000123\",\"store_id\":\"store_7\",\"channel\":\"pos\","
    "\"customer\":{\"id\":\"c-4411\",\"tier\":\"gold\",\"address\":{\"city\":\"Porto\",\"zip\":\"4000-123\"}},"
    "\"items\":[{\"sku\":\"A-1\",\"qty\":3,\"price\":9.5},{\"sku\":\"B-22\",\"qty\":1,\"price\":25.0},"
    "{\"sku\":\"C-333\",\"qty\":2,\"price\":2.75}],"
    "\"total\":59.5,\"currency\":\"EUR\",\"payment\":\"card\",\"promo\":null,\"vip\":true}}";

static const struct {
    const char *name;
    const char *transform;
} s_cases [] = {
    { "json-template",
      "{\"InputPathsMap\":{\"store\":\"$.detail.store_id\",\"total\":\"$.detail.total\","
      "\"items\":\"$.detail.items\"},"
      "\"InputTemplate\":\"{\\\"store\\\": <store>, \\\"total\\\": <total>, \\\"items\\\": <items>,"
      " \\\"line\\\": \\\"<store> sold <total>\\\", \\\"rule\\\": \\\"<aws.events.rule-name>\\\"}\"}" },
    { "string-template",
      "{\"InputPathsMap\":{\"store\":\"$.detail.store_id\",\"total\":\"$.detail.total\","
      "\"items\":\"$.detail.items\"},"
      "\"InputTemplate\":\"<store> sold <total> (<items>) for rule <aws.events.rule-name>\"}" },
};
#define CASES (sizeof s_cases / sizeof s_cases [0])

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef int (render_fn) (zb_transform_t *, const msgpack_object *, const zb_transform_context_t *,
                         msgpack_packer *, char *, size_t);

//  Seconds for n renders; the output's size in *bytes
static double
s_time (render_fn *render, zb_transform_t *t, const msgpack_object *event, long n, size_t *bytes)
{
    static const zb_transform_context_t context = {
        .rule_name = { "big-sales", 9 },
        .rule_arn = { "arn:zbridge:events:local:000000000000:rule/big-sales", 52 },
        .ingestion_time = { "2026-11-26T17:15:02.5Z", 22 },
    };
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, msgpack_sbuffer_write);
    char err [256];
    double start = s_now ();
    for (long i = 0; i < n; i++) {
        msgpack_sbuffer_clear (&out);
        if (render (t, event, &context, &pk, err, sizeof err) != 0) {
            fprintf (stderr, "%s: render failed: %s\n", prog, err);
            exit (1);
        }
    }
    double seconds = s_now () - start;
    *bytes = out.size;
    msgpack_sbuffer_destroy (&out);
    return seconds;
}

int
main (int argc, char **argv)
{
    long renders = 1000000;
    int runs = 3;
    bool reference = false;
    const char *only = NULL;
    static const struct option options [] = {
        { "renders", required_argument, NULL, 'n' },
        { "runs", required_argument, NULL, 'r' },
        { "reference", no_argument, NULL, 'R' },
        { "case", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long (argc, argv, "n:r:Rc:h", options, NULL)) != -1) {
        switch (c) {
            case 'n': renders = atol (optarg); break;
            case 'r': runs = atoi (optarg); break;
            case 'R': reference = true; break;
            case 'c': only = optarg; break;
            case 'V': printf ("%s 1\n", prog); return 0;
            case 'h':
                printf ("usage: %s [-n RENDERS] [-r RUNS] [-R] [-c CASE]\n"
                        "Times input transformer renders of a store event (single thread).\n"
                        "  -n, --renders N   renders per run (default 1000000)\n"
                        "  -r, --runs N      runs, the fastest kept (default 3)\n"
                        "  -R, --reference   time the reference renderer too\n"
                        "  -c, --case NAME   only this transformer (json-template, string-template)\n",
                        prog);
                return 0;
            default:
                return 2;
        }
    }
    if (renders < 1 || runs < 1) {
        fprintf (stderr, "%s: renders and runs must be at least 1\n", prog);
        return 2;
    }
    char err [256];
    json_object *json = zb_json_parse (s_event_json, strlen (s_event_json), err, sizeof err);
    if (!json) {
        fprintf (stderr, "%s: event: %s\n", prog, err);
        return 1;
    }
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &packed, msgpack_sbuffer_write);
    if (zb_json_to_msgpack (json, &pk, err, sizeof err) != 0) {
        fprintf (stderr, "%s: event: %s\n", prog, err);
        return 1;
    }
    json_object_put (json);
    msgpack_unpacked event;
    msgpack_unpacked_init (&event);
    size_t off = 0;
    if (msgpack_unpack_next (&event, packed.data, packed.size, &off) != MSGPACK_UNPACK_SUCCESS)
        return 1;

    printf ("| transformer | renderer | renders/s | ns/render | output bytes |\n");
    printf ("|---|---|---:|---:|---:|\n");
    for (size_t k = 0; k < CASES; k++) {
        if (only && strcmp (only, s_cases [k].name) != 0)
            continue;
        zb_transform_t *t = zb_transform_new (s_cases [k].transform, strlen (s_cases [k].transform),
                                              err, sizeof err);
        if (!t) {
            fprintf (stderr, "%s: %s: %s\n", prog, s_cases [k].name, err);
            return 1;
        }
        for (int which = 0; which < (reference ? 2 : 1); which++) {
            render_fn *render = which ? zb_transform_render_reference : zb_transform_render;
            double best = 0;
            size_t bytes = 0;
            for (int r = 0; r < runs; r++) {
                double seconds = s_time (render, t, &event.data, renders, &bytes);
                if (r == 0 || seconds < best)
                    best = seconds;
            }
            printf ("| %s | %s | %.0f | %.0f | %zu |\n", s_cases [k].name,
                    which ? "reference" : "skeleton", (double) renders / best,
                    best * 1e9 / (double) renders, bytes);
        }
        zb_transform_destroy (&t);
    }
    msgpack_unpacked_destroy (&event);
    msgpack_sbuffer_destroy (&packed);
    return 0;
}
