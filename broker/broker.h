/*  broker.h - the zbridge broker: ingest ROUTER, publish XPUB, control ROUTER,
    served by one thread in a zloop. The wire contract is docs/PROTOCOL.md.

    Usage:
        zb_broker_config_t config = zb_broker_config_default ();
        zb_broker_t *broker = zb_broker_new (&config, err, sizeof err);
        ...log the endpoints...
        zb_broker_run (broker);        //  until SIGINT/SIGTERM; logs the final counters
        zb_broker_destroy (&broker); */
#ifndef ZB_BROKER_H_INCLUDED
#define ZB_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *ingest;         //  endpoints to bind
    const char *publish;
    const char *control;
    const char *account;        //  stamped on every event
    const char *region;
    uint64_t max_entries;       //  entries per PUT request
    uint64_t max_event_size;    //  packed envelope, bytes
    uint64_t max_topics;        //  distinct detail-types tracked
    bool verbose;               //  log every subscription and bad request, periodic counters
} zb_broker_config_t;

//  The documented defaults (zb.h).
zb_broker_config_t zb_broker_config_default (void);

typedef struct zb_broker_t zb_broker_t;

//  Create the sockets and bind them. NULL when a socket cannot be bound or
//  created; err then reads e.g. "cannot bind ingest to tcp://...: Address in use".
//  The config's strings are copied.
zb_broker_t *zb_broker_new (const zb_broker_config_t *config, char *err, size_t errlen);

//  Close the sockets, free everything.
void zb_broker_destroy (zb_broker_t **self_p);

//  The endpoints actually bound (a tcp port given as * resolved).
const char *zb_broker_ingest_endpoint (zb_broker_t *self);
const char *zb_broker_publish_endpoint (zb_broker_t *self);
const char *zb_broker_control_endpoint (zb_broker_t *self);

//  Serve until interrupted (SIGINT, SIGTERM), then log "stopping (counters)".
//  Returns 0 when interrupted, -1 on an unexpected loop failure.
int zb_broker_run (zb_broker_t *self);

#endif
