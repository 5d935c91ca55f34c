/*  edge.c - a zloop reader on a ZeroMQ socket's ZMQ_FD; see edge.h. */

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "edge.h"

//  One run of the handler, then the one check that ZMQ_FD cannot make for us.
static int
s_run (zb_edge_t *self)
{
    if (!self->sock)
        return 0;                   //  ended earlier in this turn of the loop
    if (self->handler (self->loop, self->sock, self->arg) == -1)
        return -1;
    if (self->sock && (zsock_events (self->sock) & ZMQ_POLLIN)) {
        uint64_t one = 1;
        if (write (self->again.fd, &one, sizeof one) == -1 && errno != EAGAIN)
            return -1;              //  EAGAIN: the counter is full, a run is due anyway
    }
    return 0;
}

static int
s_on_fd (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    return s_run ((zb_edge_t *) arg);
}

static int
s_on_again (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    zb_edge_t *self = (zb_edge_t *) arg;
    uint64_t count;
    if (self->sock && read (self->again.fd, &count, sizeof count) == -1 && errno != EAGAIN)
        return -1;
    return s_run (self);
}

int
zb_edge_reader (zb_edge_t *self, zloop_t *loop, zsock_t *sock, zloop_reader_fn handler, void *arg)
{
    assert (self && loop && sock && handler);
    *self = (zb_edge_t) { loop, NULL, handler, arg,
                          { NULL, zsock_fd (sock), ZMQ_POLLIN, 0 },
                          { NULL, -1, ZMQ_POLLIN, 0 } };
    //  Starts at 1: input that came before the poller may have signalled already
    self->again.fd = eventfd (1, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->again.fd == -1)
        return -1;
    if (zloop_poller (loop, &self->item, s_on_fd, self) == -1
    ||  zloop_poller (loop, &self->again, s_on_again, self) == -1) {
        zloop_poller_end (loop, &self->item);
        close (self->again.fd);
        self->again.fd = -1;
        errno = ENOMEM;
        return -1;
    }
    self->sock = sock;
    return 0;
}

void
zb_edge_reader_end (zb_edge_t *self)
{
    assert (self);
    if (!self->sock)
        return;
    zloop_poller_end (self->loop, &self->item);
    zloop_poller_end (self->loop, &self->again);
    close (self->again.fd);
    self->again.fd = -1;
    self->sock = NULL;
}
