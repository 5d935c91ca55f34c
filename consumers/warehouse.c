/*  zb-warehouse - the warehouse's view of the stores: sales and inventory events.

    Counts the orders (detail.new_order is true) and returns (detail.is_return
    is true) it sees, on either topic. A field of another type, or an event
    without a detail map, counts as neither; nothing about an odd event can
    stop the warehouse. */

#include <stdbool.h>
#include <stdint.h>
#include "consumer_main.h"

typedef struct {
    uint64_t orders;
    uint64_t returns;
} warehouse_t;

static bool
s_is_true (const msgpack_object *detail, const char *key)
{
    const msgpack_object *value = zb_consumer_get (detail, key);
    return value && value->type == MSGPACK_OBJECT_BOOLEAN && value->via.boolean;
}

static void
s_on_event (void *state, zbridge_event_t *delivery)
{
    const msgpack_object *event = zb_consumer_unpack (delivery);
    warehouse_t *self = (warehouse_t *) state;
    const msgpack_object *detail = zb_consumer_get (event, "detail");
    if (!detail || detail->type != MSGPACK_OBJECT_MAP)
        return;
    if (s_is_true (detail, "new_order"))
        self->orders++;
    if (s_is_true (detail, "is_return"))
        self->returns++;
}

static void
s_summarize (void *state, json_object *summary)
{
    warehouse_t *self = (warehouse_t *) state;
    json_object_object_add (summary, "orders", json_object_new_uint64 (self->orders));
    json_object_object_add (summary, "returns", json_object_new_uint64 (self->returns));
}

int
main (int argc, char **argv)
{
    static const char *const topics [] = { "sales-events", "inventory-events", NULL };
    warehouse_t warehouse = { 0 };
    const zb_consumer_spec_t spec = {
        .name = "zb-warehouse",
        .purpose = "Follow sales and inventory events; count orders and returns.",
        .topics = topics,
        .on_event = s_on_event,
        .summarize = s_summarize,
        .state = &warehouse,
    };
    return zb_consumer_main (argc, argv, &spec);
}
