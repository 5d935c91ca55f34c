/*  subscriber.h - the consumer side of the publish socket: exact or prefix
    subscriptions, frame decoding, gap detection per topic, and (on request)
    the broker's heartbeats. */
#ifndef ZB_SUBSCRIBER_H_INCLUDED
#define ZB_SUBSCRIBER_H_INCLUDED

#include <msgpack.h>
#include <stdint.h>
#include "zb.h"

typedef struct zb_subscriber_t zb_subscriber_t;

//  A SUB socket connected to the broker's publish endpoint; NULL when the
//  endpoint is not valid (err says why).
zb_subscriber_t *zb_subscriber_new (const char *endpoint, char *err, size_t errlen);
void zb_subscriber_destroy (zb_subscriber_t **self_p);

//  Subscribe to exactly one detail-type (its frame plus the NUL terminator),
//  or to every topic that starts with prefix (no terminator; "" is everything).
int zb_subscriber_subscribe (zb_subscriber_t *self, const char *detail_type);
int zb_subscriber_subscribe_prefix (zb_subscriber_t *self, const char *prefix);

//  Subscribe to the broker's heartbeats ("$heartbeat" + NUL) and have
//  zb_subscriber_recv return them (other '$' topics are skipped unless subscribed
//  to exactly by name, as zb-consumer --rule does with "$rule/NAME").
int zb_subscriber_subscribe_heartbeats (zb_subscriber_t *self);

#define ZB_HEARTBEAT_TOPIC  "$heartbeat"

typedef struct {
    zb_str_t topic;                 //  detail-type, without the terminator
    uint64_t seq;                   //  broker-wide sequence number
    uint64_t topic_seq;             //  sequence number within this topic
    uint64_t missed;                //  events of this topic skipped before this one
    const msgpack_object *event;    //  the decoded envelope (a map); NULL when lazy
    zb_str_t raw;                   //  the msgpack bytes of the envelope
} zb_delivery_t;

//  Wait up to timeout_ms (-1: forever) for the next event. Returns 1 with *d
//  filled (valid until the next call), 0 on timeout or interrupt, -1 when a
//  malformed message arrived and was dropped (err says why; keep calling).
//  With heartbeats subscribed, returns 2 for a heartbeat: d->topic is
//  "$heartbeat", d->seq the header's seq, d->event its body (a map); heartbeats
//  take no part in gap detection.
int zb_subscriber_recv (zb_subscriber_t *self, zb_delivery_t *d, int timeout_ms,
                        char *err, size_t errlen);

//  Total events seen missing from the live stream so far (sum of d->missed).
uint64_t zb_subscriber_missed (zb_subscriber_t *self);

//  Lazy: events are checked (what msgpack_unpack accepts, same errors) but
//  not unpacked, and d->event is NULL; the caller unpacks d->raw if it needs
//  the objects. Heartbeats are unpacked either way. Off by default.
void zb_subscriber_set_lazy (zb_subscriber_t *self, bool lazy);

//  The raw libzmq socket, for polling alongside other sockets.
void *zb_subscriber_handle (zb_subscriber_t *self);

#endif
