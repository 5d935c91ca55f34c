/*  consumer_main.h - the one program body behind zb-dispatch, zb-warehouse and
    zb-consumer: flags, subscription, the receive loop, JSON output, summary,
    on libzbridge's consumer (zbridge.h). Each program supplies its name, its
    topics and what it does with an event. */
#ifndef ZB_CONSUMER_MAIN_H_INCLUDED
#define ZB_CONSUMER_MAIN_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <zbridge.h>

typedef struct {
    const char *name;                   //  program name, e.g. "zb-dispatch"
    const char *purpose;                //  one line for --help
    const char *const *topics;          //  fixed topics, NULL-terminated; NULL: --topic/--prefix choose
    //  Called for every event after it is printed; may log to stderr.
    void (*on_event) (void *state, zbridge_event_t *event);
    //  Adds program-specific counters to the final summary object.
    void (*summarize) (void *state, json_object *summary);
    void *state;
    //  Print each event as indented multi-line JSON instead of one line (zbctl tail)
    bool pretty;
} zb_consumer_spec_t;

//  Parse argv, run until --count events arrived or SIGINT/SIGTERM, print the
//  summary. Returns the process exit code (0 ok, 1 runtime error, 2 usage).
int zb_consumer_main (int argc, char **argv, const zb_consumer_spec_t *spec);

//  The programs read an event's fields in place: zbridge_event_msgpack and
//  common/mpread.h.

#endif
