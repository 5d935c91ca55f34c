/*  counts.h - counters by name for a consumer's summary: events per topic,
    orders per store. One lookup per event; at the end, a JSON object of the
    counters with its keys sorted, so that two summaries compare line by line. */
#ifndef ZB_COUNTS_H_INCLUDED
#define ZB_COUNTS_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct zb_counts_t zb_counts_t;

//  An empty table. NULL when out of memory.
zb_counts_t *zb_counts_new (void);
void zb_counts_destroy (zb_counts_t **self_p);

//  Add one to the counter of the name [ptr, ptr+len) (the name ends at a NUL
//  byte, if it holds one), creating it at 1. false when out of memory: that
//  one is not counted.
bool zb_counts_add (zb_counts_t *self, const char *ptr, size_t len);

//  A new JSON object {"name": count, ...} with the names in strcmp order.
json_object *zb_counts_json (zb_counts_t *self);

#endif
