/*  peers.h - who is connected to the broker, for STATS and the metrics:
    - connections per socket, from libzmq's socket monitor (ACCEPTED minus
      DISCONNECTED events, read from an inproc PAIR in the broker's zloop);
    - producers active: distinct ingest client identities (one per
      connection, as the ROUTER names it) that sent a request in the last
      ZB_PEERS_ACTIVE_MS.

    Usage (broker.c):
        zb_peers_t *peers = zb_peers_new (loop, handles, 3, err, sizeof err);
        ...per ingest request: zb_peers_seen (peers, identity, len, zclock_mono ());
        ...STATS: zb_peers_connections (peers, 0), zb_peers_active (peers, now)
        zb_peers_destroy (&peers);      //  before the sockets are closed */
#ifndef ZB_PEERS_H_INCLUDED
#define ZB_PEERS_H_INCLUDED

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#define ZB_PEERS_ACTIVE_MS      60000
#define ZB_PEERS_MAX_SOCKETS    4
#define ZB_PEERS_MAX_ACTIVE     100000      //  identities remembered at most

typedef struct zb_peers_t zb_peers_t;

//  Monitor the raw libzmq sockets (at most ZB_PEERS_MAX_SOCKETS), with readers
//  on loop. NULL with err when a monitor cannot be set up.
zb_peers_t *zb_peers_new (zloop_t *loop, void *const *sockets, size_t count,
                          char *err, size_t errlen);
void zb_peers_destroy (zb_peers_t **self_p);

//  Socket index was closed and replaced by socket (e.g. a publish socket
//  re-created): watch the new one, from zero connections. The old socket must
//  not be used again (it is not touched here). 0, or -1 with err.
int zb_peers_rewatch (zb_peers_t *self, size_t index, void *socket, char *err, size_t errlen);

//  Connections open now on socket index (as given to zb_peers_new).
uint64_t zb_peers_connections (zb_peers_t *self, size_t index);

//  An ingest request from this client identity at now_ms (zclock_mono).
void zb_peers_seen (zb_peers_t *self, const void *identity, size_t len, int64_t now_ms);

//  Distinct identities seen within ZB_PEERS_ACTIVE_MS of now_ms; forgets older ones.
size_t zb_peers_active (zb_peers_t *self, int64_t now_ms);

#endif
