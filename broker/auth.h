/*  auth.h - who may talk to the broker and what they may do (docs/SECURITY.md):
    - CURVE on every broker socket: CZMQ's zauth actor is the ZAP handler,
      its certificate store the --curve-allow directory. The broker's own
      watcher (zb_auth_tick) notices keys added to or removed from the
      directory, reloads zauth's store at once (zauth alone would only notice
      a change of the directory's file count, total size or newest mtime in
      seconds) and reports removed keys: their connections must be cut,
      because ZAP runs only at the handshake.
    - Per request: the client's key is the ZMQ "User-Id" property of its
      messages (zauth sets it to the Z85 public key); a key not in the
      directory any more gets ERROR AccessDenied.
    - Authorization per key (the config file's "authorization" section):
      sources and detail-types it may publish, topics it may subscribe to
      and replay.
    - A rate limit per client (token bucket per key, or per connection
      without CURVE): entries beyond it get ThrottlingException.
    Without CURVE every client is allowed everything (loopback only, unless
    --insecure: zb_auth_endpoint_safe). */
#ifndef ZB_AUTH_H_INCLUDED
#define ZB_AUTH_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "event.h"
#include "zb.h"

typedef struct {
    const char *curve_cert;         //  the broker's secret certificate; NULL: no CURVE
    const char *curve_allow;        //  directory of allowed client public certificates
    zconfig_t *authorization;       //  the config file's "authorization" section, or NULL
    const char *config_path;        //  the config file, for messages
    uint64_t rate_limit;            //  entries per second per client, 0: no limit
    uint64_t rate_burst;            //  bucket size; 0: rate_limit
    bool verbose;
} zb_auth_config_t;

typedef struct zb_auth_t zb_auth_t;
typedef struct zb_policy_t zb_policy_t;

//  Who sent a request (zb_auth_client). Views valid while the request is.
typedef struct {
    const char *key;                //  Z85 public key; NULL without CURVE
    const zb_policy_t *policy;      //  NULL: allowed everything
    const void *identity;           //  the ROUTER's routing id of the connection
    size_t identity_len;
} zb_client_t;

//  Load the certificates and the authorization table, start zauth. NULL
//  with err when something is wrong ("zb-broker: " is not in err); *usage
//  then says whether it is a configuration mistake (exit 2) or a runtime
//  failure (exit 1).
zb_auth_t *zb_auth_new (const zb_auth_config_t *config, bool *usage, char *err, size_t errlen);
void zb_auth_destroy (zb_auth_t **self_p);

//  True with CURVE on.
bool zb_auth_curve (zb_auth_t *self);

//  A one-line description for the ready line: "curve (N keys allowed)", "off".
const char *zb_auth_describe (zb_auth_t *self);

//  True when a socket may bind endpoint without CURVE: tcp:// on 127.0.0.0/8
//  or [::1], and transports that do not leave the machine (ipc://, inproc://;
//  an unknown one is left to fail at the bind). False for tcp elsewhere and
//  every other network transport (ws, wss, pgm, epgm, norm, udp, tipc, vmci).
bool zb_auth_endpoint_safe (const char *endpoint);

//  Make a socket a CURVE server (before it binds). Nothing without CURVE.
void zb_auth_server_apply (zb_auth_t *self, zsock_t *sock, const char *domain);

//  Who sent this request: frame is any frame of it after the identity (it
//  carries the connection's properties). 0 with *client filled; -1 when its
//  key is not allowed any more, with the message of the AccessDenied reply.
int zb_auth_client (zb_auth_t *self, zmq_msg_t *identity, zmq_msg_t *frame,
                    zb_client_t *client, char *err, size_t errlen);

//  How many of the next count entries of this client may proceed now (the
//  rest get ThrottlingException). count when there is no rate limit.
size_t zb_auth_admit (zb_auth_t *self, const zb_client_t *client, size_t count);

//  The rate limit, for the ThrottlingException message.
uint64_t zb_auth_rate_limit (zb_auth_t *self);

//  ZB_OK when the client may publish this source and detail-type; otherwise
//  ZB_E_NOT_AUTHORIZED_SOURCE or _DETAIL_TYPE with a message.
zb_code_t zb_auth_entry (const zb_client_t *client, zb_str_t source, zb_str_t detail_type,
                         char *err, size_t errlen);

//  A subscription message from the publish socket (its first byte 1 or 0,
//  then the topic bytes): true when its sender may hold it. Unsubscriptions,
//  "$heartbeat\0" and everything without CURVE or without an authorization
//  table are allowed. *key is set to the sender's key (NULL when unknown).
bool zb_auth_subscription (zb_auth_t *self, zmq_msg_t *msg, const char **key);

//  REPLAY: 0 when the client may read every topic the body asks for (a body
//  that cannot be read is left to the replay's own checks); -1 with the
//  message of the NotAuthorizedForTopic reply.
int zb_auth_replay (zb_auth_t *self, const zb_client_t *client, zmq_msg_t *body,
                    char *err, size_t errlen);

//  RULE-PUT and RULE-DELETE: 0 when the client may manage rules (no
//  authorization table, or "rules = true" in its entry); -1 with the message
//  of the AccessDenied reply.
int zb_auth_rules (const zb_client_t *client, char *err, size_t errlen);

//  Remember that this control connection (by its identity) is the client's
//  key, so its replay sessions can be closed when the key is removed.
void zb_auth_remember_peer (zb_auth_t *self, const zb_client_t *client);

//  Called for every remembered control connection whose key was removed.
typedef void (zb_auth_peer_fn) (void *arg, const void *identity, size_t len);

//  Look at the allow directory (call it every few hundred ms). When keys
//  were removed: reloads zauth, calls close_peer for their control
//  connections, returns 1 (the caller cuts every publish connection).
//  0 when nothing was removed.
int zb_auth_tick (zb_auth_t *self, zb_auth_peer_fn *close_peer, void *arg);

//  Counters for STATS: requests refused, entries throttled, subscriptions refused.
typedef struct {
    uint64_t denied;                //  requests from keys no longer allowed
    uint64_t throttled;             //  entries answered ThrottlingException
    uint64_t forbidden_subscriptions;
    uint64_t reloads;               //  allow directory reloads
    size_t keys;                    //  keys allowed now
} zb_auth_stats_t;

void zb_auth_stats (zb_auth_t *self, zb_auth_stats_t *stats);
void zb_auth_count_forbidden (zb_auth_t *self);

#endif
