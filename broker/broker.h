/*  broker.h - the zbridge broker: ingest ROUTER, publish XPUB, control ROUTER,
    served by one thread in a zloop, with the journal (journal.h) as its store of
    record. The wire contract is docs/PROTOCOL.md.

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
#include "auth.h"
#include "journal.h"

//  A rule given in the config file (the broker's control socket adds more).
typedef struct {
    const char *name;
    const char *pattern;        //  JSON text
    const char *transform;      //  JSON text, or NULL
} zb_rule_spec_t;

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
    zb_journal_config_t journal;    //  journal.dir NULL: the memory backend
    uint64_t heartbeat_ms;      //  $heartbeat interval (> 0)
    uint64_t max_rules;         //  rules at most (0: ZB_DEFAULT_MAX_RULES)
    uint64_t max_pattern_size;  //  bytes of a rule's pattern text (0: no limit)
    const zb_rule_spec_t *rules;    //  put at start, after the kept ones
    size_t nrules;
    zb_auth_config_t auth;      //  CURVE, authorization, rate limit (auth.h)
    uint64_t max_control_msg;   //  ZMQ_MAXMSGSIZE of the control socket
    uint64_t max_subscription;  //  ZMQ_MAXMSGSIZE of the publish socket (subscriptions)
    uint64_t publish_hwm;       //  ZMQ_SNDHWM of the publish socket, messages per subscriber
                                //  (0: ZB_DEFAULT_PUBLISH_HWM)
    const char *metrics;        //  ADDR:PORT of the Prometheus endpoint, or NULL (off)
} zb_broker_config_t;

//  Journal defaults (the zb-broker flags of the same names)
#define ZB_DEFAULT_DATA_DIR         "./zbridge-data"
#define ZB_DEFAULT_MEMORY_EVENTS    1000000
#define ZB_DEFAULT_RETAIN_HOURS     168
#define ZB_DEFAULT_RETAIN_MB        1024
#define ZB_DEFAULT_DEDUP_WINDOW     300
#define ZB_DEFAULT_HEARTBEAT_MS     1000
#define ZB_DEFAULT_MAX_CONTROL_MSG  (1024 * 1024)
#define ZB_DEFAULT_MAX_SUBSCRIPTION 4096
//  Messages queued per subscriber: at most 2,000 x 32 KiB (64 MiB), or
//  128,000 events of up to 512 bytes; the memory bound the broker had with
//  100,000 single-event messages, which a stopped consumer must not exceed
#define ZB_DEFAULT_PUBLISH_HWM      2000

//  The documented defaults (zb.h).
zb_broker_config_t zb_broker_config_default (void);

typedef struct zb_broker_t zb_broker_t;

//  Create the sockets and bind them, then open the journal and continue its
//  sequence numbers. NULL when a socket cannot be bound or created or the
//  journal cannot be opened; err then reads e.g. "cannot bind ingest to
//  tcp://...: Address in use" or "cannot open the journal in DIR: ...".
//  The config's strings are copied.
zb_broker_t *zb_broker_new (const zb_broker_config_t *config, char *err, size_t errlen);

//  Close the sockets, free everything.
void zb_broker_destroy (zb_broker_t **self_p);

//  The endpoints actually bound (a tcp port given as * resolved).
const char *zb_broker_ingest_endpoint (zb_broker_t *self);
const char *zb_broker_publish_endpoint (zb_broker_t *self);
const char *zb_broker_control_endpoint (zb_broker_t *self);

//  The metrics URL (http://ADDR:PORT/metrics, the port bound), or NULL when off.
const char *zb_broker_metrics_url (zb_broker_t *self);

//  Where the journal is: its data directory, or "memory".
const char *zb_broker_journal_where (zb_broker_t *self);

//  Serve until interrupted (SIGINT, SIGTERM), then log "stopping (counters)".
//  Returns 0 when interrupted, -1 on an unexpected loop failure.
int zb_broker_run (zb_broker_t *self);

#endif
