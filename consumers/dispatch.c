/*  zb-dispatch - sends each sales order to the store that made it.

    Subscribes to sales-events exactly. An order is dispatched to the store
    named by detail.store_id (a non-empty string); an order without one - no
    detail map, no store_id, a store_id that is not a string or is empty - is
    undeliverable: it is logged with its detail.request_id (or the event id
    when the detail has none) and counted. Odd events never stop dispatch. */

#include <assert.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "consumer_main.h"
#include "counts.h"
#include "mpread.h"

//  Longest id we quote in a log line; longer ones are cut with "..."
#define DISPATCH_ID_MAX     80
//  Longest store_id counted; longer ones are counted by their first bytes
#define DISPATCH_STORE_MAX  255

typedef struct {
    uint64_t dispatched;
    uint64_t undeliverable;
    zb_counts_t *stores;            //  orders dispatched per store_id
} dispatch_t;

//  A non-empty string at p (*p moved past it), or false.
static bool
s_string (const uint8_t *p, const uint8_t *end, const uint8_t **str, uint32_t *len)
{
    return p && mpr_str (&p, end, str, len) && *len > 0;
}

//  Copy a string for a log line: printable, one line, bounded.
static void
s_printable (const uint8_t *ptr, uint32_t len, char *out, size_t size)
{
    size_t used = 0;
    for (uint32_t i = 0; i < len && used + 4 < size; i++) {
        unsigned char c = ptr [i];
        out [used++] = c < 0x20 || c == 0x7f? '?': (char) c;
        if (used >= DISPATCH_ID_MAX && i + 1 < len) {
            memcpy (out + used, "...", 3);
            used += 3;
            break;
        }
    }
    out [used] = '\0';
}

//  Read in place (common/mpread.h): the fields it needs, without unpacking
//  the event into objects
static void
s_on_event (void *state, zbridge_event_t *delivery)
{
    dispatch_t *self = (dispatch_t *) state;
    size_t size;
    const uint8_t *event = (const uint8_t *) zbridge_event_msgpack (delivery, &size);
    const uint8_t *end = event + size;
    static const char *const envelope [] = { "detail", "id" };
    static const char *const order [] = { "store_id", "request_id" };
    const uint8_t *top [2] = { NULL, NULL }, *fields [2] = { NULL, NULL };
    if (!event || !mpr_fields (event, end, envelope, 2, top))
        top [0] = top [1] = NULL;               //  not a map: no id either
    else
    if (top [0] && !mpr_fields (top [0], end, order, 2, fields))
        fields [0] = fields [1] = NULL;         //  a detail that is not a map
    const uint8_t *str;
    uint32_t len;
    if (s_string (fields [0], end, &str, &len)) {
        self->dispatched++;
        zb_counts_add (self->stores, (const char *) str,
                       len < DISPATCH_STORE_MAX? len: DISPATCH_STORE_MAX);
        return;
    }
    self->undeliverable++;
    char text [DISPATCH_ID_MAX + 8] = "(no id)";
    if (s_string (fields [1], end, &str, &len) || s_string (top [1], end, &str, &len))
        s_printable (str, len, text, sizeof text);
    fprintf (stderr, "zb-dispatch: undeliverable order %s: no store_id\n", text);
}

static void
s_summarize (void *state, json_object *summary)
{
    dispatch_t *self = (dispatch_t *) state;
    json_object_object_add (summary, "dispatched", json_object_new_uint64 (self->dispatched));
    json_object_object_add (summary, "undeliverable",
                            json_object_new_uint64 (self->undeliverable));
    //  Orders per store, sorted by store_id
    json_object_object_add (summary, "stores", zb_counts_json (self->stores));
}

int
main (int argc, char **argv)
{
    static const char *const topics [] = { "sales-events", NULL };
    dispatch_t dispatch = { 0 };
    dispatch.stores = zb_counts_new ();
    assert (dispatch.stores);
    const zb_consumer_spec_t spec = {
        .name = "zb-dispatch",
        .purpose = "Dispatch sales orders to their stores; report undeliverable orders.",
        .topics = topics,
        .on_event = s_on_event,
        .summarize = s_summarize,
        .state = &dispatch,
    };
    int rc = zb_consumer_main (argc, argv, &spec);
    zb_counts_destroy (&dispatch.stores);
    return rc;
}
