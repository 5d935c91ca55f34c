/*  peers.c - connections and active producers; see peers.h. */

#include <czmq.h>
#include <string.h>

#include "edge.h"
#include "peers.h"

typedef struct {
    void *socket;                   //  the monitored socket (raw libzmq)
    zsock_t *pair;                  //  reads its monitor events
    zb_edge_t edge;                 //  serves pair
    uint64_t connections;
} watch_t;

struct zb_peers_t {
    zloop_t *loop;
    watch_t watch [ZB_PEERS_MAX_SOCKETS];
    size_t count;
    unsigned generation;            //  of the monitor endpoints
    zhashx_t *active;               //  hex identity -> last seen (ms, as a pointer)
    uint8_t last [256];             //  the last identity seen, and when
    size_t last_len;
    int64_t last_ms;
};

//  One monitor event: [event (uint16) value (uint32)] [endpoint]
static int
s_on_monitor (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    watch_t *watch = (watch_t *) arg;
    void *handle = zsock_resolve (reader);
    for (int n = 0; n < 64; n++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size (&frame) >= 2)
            memcpy (&event, zmq_msg_data (&frame), 2);      //  host order, by libzmq
        bool more = zmq_msg_more (&frame);
        while (more && zmq_msg_recv (&frame, handle, 0) != -1)
            more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
        if (event == ZMQ_EVENT_ACCEPTED)
            watch->connections++;
        else
        if (event == ZMQ_EVENT_DISCONNECTED && watch->connections > 0)
            watch->connections--;
    }
    return 0;
}

//  Monitor socket into watch [index]. 0, or -1 with err.
static int
s_watch (zb_peers_t *self, size_t index, void *socket, char *err, size_t errlen)
{
    watch_t *watch = &self->watch [index];
    //  A fresh endpoint each time: a re-watched socket's old monitor may linger
    char endpoint [80];
    snprintf (endpoint, sizeof endpoint, "inproc://zb-peers-%p-%zu-%u", (void *) self, index,
              ++self->generation);
    watch->socket = NULL;
    watch->connections = 0;
    if (zmq_socket_monitor (socket, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == -1) {
        snprintf (err, errlen, "cannot monitor a socket: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    watch->socket = socket;
    watch->pair = zsock_new (ZMQ_PAIR);
    if (!watch->pair || zsock_connect (watch->pair, "%s", endpoint) == -1
    ||  zb_edge_reader (&watch->edge, self->loop, watch->pair, s_on_monitor, watch) == -1) {
        snprintf (err, errlen, "cannot read a socket monitor: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

zb_peers_t *
zb_peers_new (zloop_t *loop, void *const *sockets, size_t count, char *err, size_t errlen)
{
    assert (loop && count <= ZB_PEERS_MAX_SOCKETS);
    zb_peers_t *self = (zb_peers_t *) zmalloc (sizeof (zb_peers_t));
    assert (self);
    self->loop = loop;
    self->active = zhashx_new ();
    assert (self->active);
    for (size_t i = 0; i < count; i++) {
        self->count = i + 1;
        if (s_watch (self, i, sockets [i], err, errlen) == -1) {
            zb_peers_destroy (&self);
            return NULL;
        }
    }
    return self;
}

int
zb_peers_rewatch (zb_peers_t *self, size_t index, void *socket, char *err, size_t errlen)
{
    assert (self && index < self->count && socket);
    watch_t *watch = &self->watch [index];
    zb_edge_reader_end (&watch->edge);
    zsock_destroy (&watch->pair);
    return s_watch (self, index, socket, err, errlen);
}

void
zb_peers_destroy (zb_peers_t **self_p)
{
    assert (self_p);
    zb_peers_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        watch_t *watch = &self->watch [i];
        if (watch->socket)
            zmq_socket_monitor (watch->socket, NULL, 0);
        zb_edge_reader_end (&watch->edge);
        zsock_destroy (&watch->pair);
    }
    zhashx_destroy (&self->active);
    free (self);
    *self_p = NULL;
}

uint64_t
zb_peers_connections (zb_peers_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->watch [index].connections : 0;
}

void
zb_peers_seen (zb_peers_t *self, const void *identity, size_t len, int64_t now_ms)
{
    assert (self);
    //  A pipelining producer sends request after request: one lookup per
    //  second for it, not one per request
    if (len == self->last_len && now_ms - self->last_ms < 1000
    &&  memcmp (identity, self->last, len) == 0)
        return;
    if (len > sizeof self->last)
        return;                     //  a ROUTER never gives more than 255 bytes
    memcpy (self->last, identity, len);
    self->last_len = len;
    self->last_ms = now_ms;
    char key [2 * sizeof self->last + 1];
    static const char hex [] = "0123456789abcdef";
    const uint8_t *bytes = (const uint8_t *) identity;
    for (size_t i = 0; i < len; i++) {
        key [2 * i] = hex [bytes [i] >> 4];
        key [2 * i + 1] = hex [bytes [i] & 15];
    }
    key [2 * len] = 0;
    //  The time + 1: never a NULL item
    void *when = (void *) (intptr_t) (now_ms + 1);
    if (zhashx_lookup (self->active, key))
        zhashx_update (self->active, key, when);
    else
    if (zhashx_size (self->active) < ZB_PEERS_MAX_ACTIVE)
        zhashx_insert (self->active, key, when);
}

size_t
zb_peers_active (zb_peers_t *self, int64_t now_ms)
{
    assert (self);
    zlistx_t *keys = zhashx_keys (self->active);
    if (!keys)
        return zhashx_size (self->active);
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        int64_t seen = (int64_t) (intptr_t) zhashx_lookup (self->active, key) - 1;
        if (now_ms - seen >= ZB_PEERS_ACTIVE_MS)
            zhashx_delete (self->active, key);
    }
    zlistx_destroy (&keys);
    if (self->last_len && now_ms - self->last_ms >= ZB_PEERS_ACTIVE_MS)
        self->last_len = 0;
    return zhashx_size (self->active);
}
