/*  window.h - the producer's PUT requests in flight.

    Each request gets the next correlation id of a uint64 counter (from 1),
    sent as 8 bytes big-endian. The window remembers, per request in flight,
    how many entries it carried and (for --file) their line numbers, so that
    a reply, matched by correlation id, can be accounted entry by entry.

    A request that is resent (no reply in time, or some entries to retry) keeps
    its slot and gets a new correlation id (zb_window_reissue): a late reply
    to the old id then matches nothing and is ignored, so no entry is counted
    twice. Slots are numbered 0 .. capacity-1 and never move, so the caller
    can keep per-request data (the packed entries) in an array beside. */
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

//  Find the request a reply's correlation frame names without closing it:
//  returns its slot with *id, *entries and *lines as zb_window_close gives
//  them, or -1 for an unknown id.
int zb_window_find (zb_window_t *self, const void *corr, size_t corrlen,
                    uint64_t *id, size_t *entries, const size_t **lines);

//  The slot of request id, or -1.
int zb_window_slot (zb_window_t *self, uint64_t id);

//  Give request id the next correlation id (written into corr) and returns it;
//  the old id no longer matches. entries (1 .. its current count) replaces its
//  count, and lines (when it has line numbers; NULL keeps the first entries of
//  them) its line numbers, for a resend of some of its entries.
uint64_t zb_window_reissue (zb_window_t *self, uint64_t id, size_t entries, const size_t *lines,
                            uint8_t corr [ZB_CORRELATION_SIZE]);

//  Decode a correlation frame for messages; false when it is not 8 bytes.
bool zb_window_decode (const void *corr, size_t corrlen, uint64_t *id);

#endif
