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

//  Longest id we quote in a log line; longer ones are cut with "..."
#define DISPATCH_ID_MAX     80
//  Longest store_id counted; longer ones are counted by their first bytes
#define DISPATCH_STORE_MAX  255

typedef struct {
    uint64_t dispatched;
    uint64_t undeliverable;
    zb_counts_t *stores;            //  orders dispatched per store_id
} dispatch_t;

//  Non-empty string value of key in map, or NULL.
static const msgpack_object *
s_string (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = zb_consumer_get (map, key);
    if (value && value->type == MSGPACK_OBJECT_STR && value->via.str.size > 0)
        return value;
    return NULL;
}

//  Copy a string for a log line: printable, one line, bounded.
static void
s_printable (const msgpack_object *str, char *out, size_t size)
{
    size_t used = 0;
    const char *ptr = str->via.str.ptr;
    uint32_t len = str->via.str.size;
    for (uint32_t i = 0; i < len && used + 4 < size; i++) {
        unsigned char c = (unsigned char) ptr [i];
        out [used++] = c < 0x20 || c == 0x7f? '?': (char) c;
        if (used >= DISPATCH_ID_MAX && i + 1 < len) {
            memcpy (out + used, "...", 3);
            used += 3;
            break;
        }
    }
    out [used] = '\0';
}

static void
s_on_event (void *state, zbridge_event_t *delivery)
{
    const msgpack_object *event = zb_consumer_unpack (delivery);
    dispatch_t *self = (dispatch_t *) state;
    const msgpack_object *detail = zb_consumer_get (event, "detail");
    if (detail && detail->type != MSGPACK_OBJECT_MAP)
        detail = NULL;
    const msgpack_object *store = detail? s_string (detail, "store_id"): NULL;
    if (store) {
        self->dispatched++;
        uint32_t len = store->via.str.size;
        zb_counts_add (self->stores, store->via.str.ptr,
                       len < DISPATCH_STORE_MAX? len: DISPATCH_STORE_MAX);
        return;
    }
    self->undeliverable++;
    const msgpack_object *id = detail? s_string (detail, "request_id"): NULL;
    if (!id)
        id = s_string (event, "id");
    char text [DISPATCH_ID_MAX + 8] = "(no id)";
    if (id)
        s_printable (id, text, sizeof text);
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
