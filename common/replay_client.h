/*  replay_client.h - the client side of REPLAY (docs/PROTOCOL.md, "Reliability"):
    one replay session at a time on a DEALER connected to the control socket,
    with credit granted in windows as events arrive.

    A session is named by its correlation id (8 bytes, a per-process counter).
    Opening a new session cancels the one before (CANCEL); messages that come
    later for a cancelled or finished session are ignored. Timing policy (how
    long a silent session may stay open, when to retry) is the caller's: it
    has zb_replay_client_idle_ms() to decide. */
#ifndef ZB_REPLAY_CLIENT_H_INCLUDED
#define ZB_REPLAY_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "subscriber.h"
#include "zb.h"

#define ZB_CMD_REPLAY   "REPLAY"
#define ZB_CMD_CREDIT   "CREDIT"
#define ZB_CMD_CANCEL   "CANCEL"
#define ZB_CMD_JOURNAL  "JOURNAL"
#define ZB_MAX_CREDIT   100000      //  the most credit one REPLAY may grant

typedef struct zb_replay_client_t zb_replay_client_t;

//  A DEALER connected to the control endpoint; credit is the window (1 to
//  ZB_MAX_CREDIT): granted at the start, then half of it again every time
//  half of it has been received. NULL when the endpoint is not valid.
zb_replay_client_t *zb_replay_client_new (const char *endpoint, uint32_t credit, char *err, size_t errlen);
void zb_replay_client_destroy (zb_replay_client_t **self_p);

typedef struct {
    uint64_t from;                  //  first seq wanted (when from_time is NULL)
    uint64_t to;                    //  last seq wanted; 0: the head
    const char *from_time;          //  RFC 3339: start at this arrival time instead
    const char *const *topics;      //  exact detail-types
    size_t ntopics;
    const char *const *prefixes;    //  prefixes ("" among them: every topic)
    size_t nprefixes;
} zb_replay_client_request_t;

//  Open a session (cancelling any open one). 0, or -1 when the request could
//  not be queued (err says why; the caller retries later).
int zb_replay_client_open (zb_replay_client_t *self, const zb_replay_client_request_t *request,
                    char *err, size_t errlen);
//  Cancel the open session, if any.
void zb_replay_client_cancel (zb_replay_client_t *self);
bool zb_replay_client_active (zb_replay_client_t *self);
//  Milliseconds since the open session was opened or last heard from.
int64_t zb_replay_client_idle_ms (zb_replay_client_t *self);

typedef enum {
    ZB_REPLAY_CLIENT_NONE = 0,             //  nothing (more) to read now
    ZB_REPLAY_CLIENT_EVENT,                //  msg->event (valid until the next call)
    ZB_REPLAY_CLIENT_END,                  //  msg->last, head, oldest, count; session closed
    ZB_REPLAY_CLIENT_ERROR,                //  msg->text "code: message"; session closed
    ZB_REPLAY_CLIENT_MALFORMED,            //  msg->text says what was wrong; dropped
    ZB_REPLAY_CLIENT_STRAY,                //  a message for no open session; ignored
} zb_replay_client_kind_t;

typedef struct {
    zb_delivery_t event;
    uint64_t last, head, oldest, count;
    char text [320];
} zb_replay_client_msg_t;

//  Read one message if one is waiting; never blocks.
zb_replay_client_kind_t zb_replay_client_recv (zb_replay_client_t *self, zb_replay_client_msg_t *msg);

//  The raw libzmq socket, for polling.
void *zb_replay_client_handle (zb_replay_client_t *self);

//  Lazy: replayed events are checked (what msgpack_unpack accepts) but not
//  unpacked, and msg->event.event is NULL; the caller unpacks the raw bytes
//  if it needs the objects. Off by default.
void zb_replay_client_set_lazy (zb_replay_client_t *self, bool lazy);

#endif
