/*  window.h - the producer's PUT requests in flight.

    Each request gets the next correlation id of a uint64 counter (from 1),
    sent as 8 bytes big-endian. The window remembers, per request in flight,
    how many entries it carried and (for --file) their line numbers, so that
    a reply, matched by correlation id, can be accounted entry by entry. */
#ifndef ZB_WINDOW_H_INCLUDED
#define ZB_WINDOW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZB_CORRELATION_SIZE 8

typedef struct zb_window_t zb_window_t;

//  capacity: requests in flight; batch: most entries per request.
zb_window_t *zb_window_new (size_t capacity, size_t batch);
void zb_window_destroy (zb_window_t **self_p);

//  Requests and entries in flight.
size_t zb_window_requests (zb_window_t *self);
size_t zb_window_entries (zb_window_t *self);
bool zb_window_full (zb_window_t *self);

//  Take the next correlation id for a request of entries entries (lines: their
//  line numbers, or NULL). Writes the 8-byte id into corr. The window must not be full.
uint64_t zb_window_open (zb_window_t *self, size_t entries, const size_t *lines,
                         uint8_t corr [ZB_CORRELATION_SIZE]);

//  Forget a request whose send failed (the last one opened).
void zb_window_cancel (zb_window_t *self, uint64_t id);

//  Match a reply's correlation frame. On a match the request leaves the window:
//  returns true with its id and entry count, and *lines (NULL when none were
//  given) valid until the next zb_window_open. False for an unknown id.
bool zb_window_close (zb_window_t *self, const void *corr, size_t corrlen,
                      uint64_t *id, size_t *entries, const size_t **lines);

//  Decode a correlation frame for messages; false when it is not 8 bytes.
bool zb_window_decode (const void *corr, size_t corrlen, uint64_t *id);

#endif
