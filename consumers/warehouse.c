/*  zb-warehouse - the warehouse's view of the stores: sales and inventory events.

    Counts the orders (detail.new_order is true) and returns (detail.is_return
    is true) it sees, on either topic. A field of another type, or an event
    without a detail map, counts as neither; nothing about an odd event can
    stop the warehouse. */

#include <stdbool.h>
#include <stdint.h>
#include "consumer_main.h"
#include "mpread.h"

typedef struct {
    uint64_t orders;
    uint64_t returns;
} warehouse_t;

//  Read in place (common/mpread.h): the two flags of the detail, without
//  unpacking the event into objects
static void
s_on_event (void *state, zbridge_event_t *delivery)
{
    warehouse_t *self = (warehouse_t *) state;
    size_t size;
    const uint8_t *event = (const uint8_t *) zbridge_event_msgpack (delivery, &size);
    const uint8_t *end = event + size;
    static const char *const envelope [] = { "detail" };
    static const char *const flags [] = { "new_order", "is_return" };
    const uint8_t *detail, *flag [2];
    if (!event || !mpr_fields (event, end, envelope, 1, &detail) || !detail
    ||  !mpr_fields (detail, end, flags, 2, flag))
        return;                 //  no detail map: neither
    bool yes;
    if (flag [0] && mpr_bool (&flag [0], end, &yes) && yes)
        self->orders++;
    if (flag [1] && mpr_bool (&flag [1], end, &yes) && yes)
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
