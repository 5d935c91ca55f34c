/*  edge.h - a zloop reader that costs one socket check per wake-up, not one
    per socket per loop turn.

    zloop polls its readers with zmq_poll, which asks every ZeroMQ socket in
    the set for ZMQ_EVENTS twice per turn (a first pass that does not block,
    then one after the wait). On libzmq 4.3 each ask of an idle socket is two
    system calls (getpid, its fork check, and a poll of the socket's
    mailbox): with the broker's six sockets, 34 system calls for each event
    that wakes the loop (perf stat, paced at 10,000 events/s).

    An edge reader puts the socket's ZMQ_FD in the poll set as a plain file
    descriptor instead. ZMQ_FD is edge-triggered: it turns readable when
    commands reach the socket's mailbox, and a send or receive on the socket
    may take that signal without the loop seeing it. So the handler runs when
    the descriptor is readable, and after each run the socket is asked once
    (ZMQ_EVENTS). Input still waiting comes back on the loop's next turn,
    after the loop's other sockets and timers, through an eventfd of the
    reader's own.

    The rule that keeps it correct: only the edge reader's own handler sends
    or receives on its socket (other code that did could take the signal, and
    the input would wait for the next one). The handler reads without
    blocking (ZMQ_DONTWAIT) and may be called with nothing to read.

    The caller owns the zb_edge_t and keeps it until the loop is gone: zloop
    may call a poller ended during the same turn once more, and an ended
    reader ignores that call. A zeroed zb_edge_t is a reader that is not
    serving (zb_edge_reader_end does nothing to it).

        zb_edge_t edge;
        zb_edge_reader (&edge, loop, socket, s_on_input, self);
        ...
        zb_edge_reader_end (&edge);         //  before the socket goes
*/

#ifndef ZB_BROKER_EDGE_H_INCLUDED
#define ZB_BROKER_EDGE_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    zloop_t *loop;
    zsock_t *sock;                  //  NULL: not serving (never started, or ended)
    zloop_reader_fn *handler;
    void *arg;
    zmq_pollitem_t item;            //  the socket's ZMQ_FD
    zmq_pollitem_t again;           //  our eventfd: input left after a run
} zb_edge_t;

//  Serve sock on loop with handler, as zloop_reader would (a handler that
//  returns -1 ends the loop). Input already waiting is served on the loop's
//  first turn. 0, or -1 with errno (no eventfd, or the loop refused).
int
    zb_edge_reader (zb_edge_t *self, zloop_t *loop, zsock_t *sock, zloop_reader_fn handler,
                    void *arg);

//  Take the reader off its loop. Safe on a reader that is not serving.
void
    zb_edge_reader_end (zb_edge_t *self);

#ifdef __cplusplus
}
#endif

#endif
