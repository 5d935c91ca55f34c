/*  zb-consumer - print the events of any detail-types, chosen on the command line.

    The generic consumer: --topic subscribes to a detail-type exactly, --prefix
    to every detail-type that starts with the given bytes. It has no behaviour
    of its own beyond what consumer_main.c does for every consumer. */

#include "consumer_main.h"

int
main (int argc, char **argv)
{
    const zb_consumer_spec_t spec = {
        .name = "zb-consumer",
        .purpose = "Print the events of the chosen detail-types as JSON lines.",
        .topics = NULL,             //  --topic / --prefix choose
    };
    return zb_consumer_main (argc, argv, &spec);
}
