/*  window.c - the producer's PUT requests in flight.

    A small array of slots, searched linearly: the window is tens of requests
    and is touched once per request (not per entry), so a hash would buy
    nothing. Slots are not indexed by id because replies may legally come
    back in any order, which leaves holes. */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

typedef struct {
    uint64_t id;                //  0: free
    size_t entries;
    size_t *lines;              //  batch line numbers (allocated once)
    bool has_lines;
} slot_t;

struct zb_window_t {
    slot_t *slots;
    size_t capacity;
    size_t batch;
    size_t requests;            //  slots in use
    size_t entries;             //  entries in the slots in use
    uint64_t next_id;
};

zb_window_t *
zb_window_new (size_t capacity, size_t batch)
{
    assert (capacity > 0 && batch > 0);
    zb_window_t *self = (zb_window_t *) calloc (1, sizeof (zb_window_t));
    if (!self)
        return NULL;
    self->slots = (slot_t *) calloc (capacity, sizeof (slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->capacity = capacity;
    self->batch = batch;
    self->next_id = 1;
    return self;
}

void
zb_window_destroy (zb_window_t **self_p)
{
    assert (self_p);
    zb_window_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->capacity; i++)
        free (self->slots [i].lines);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

size_t
zb_window_requests (zb_window_t *self)
{
    return self->requests;
}

size_t
zb_window_entries (zb_window_t *self)
{
    return self->entries;
}

bool
zb_window_full (zb_window_t *self)
{
    return self->requests == self->capacity;
}

uint64_t
zb_window_open (zb_window_t *self, size_t entries, const size_t *lines,
                uint8_t corr [ZB_CORRELATION_SIZE])
{
    assert (self->requests < self->capacity);
    assert (entries > 0 && entries <= self->batch);
    slot_t *slot = NULL;
    for (size_t i = 0; i < self->capacity && !slot; i++)
        if (self->slots [i].id == 0)
            slot = &self->slots [i];
    assert (slot);
    slot->id = self->next_id++;
    slot->entries = entries;
    slot->has_lines = lines != NULL;
    if (lines) {
        if (!slot->lines) {
            slot->lines = (size_t *) malloc (self->batch * sizeof (size_t));
            assert (slot->lines);
        }
        memcpy (slot->lines, lines, entries * sizeof (size_t));
    }
    self->requests++;
    self->entries += entries;
    for (int i = 0; i < ZB_CORRELATION_SIZE; i++)
        corr [i] = (uint8_t) (slot->id >> (56 - 8 * i));
    return slot->id;
}

static slot_t *
s_find (zb_window_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots [i].id == id)
            return &self->slots [i];
    return NULL;
}

static void
s_release (zb_window_t *self, slot_t *slot)
{
    self->requests--;
    self->entries -= slot->entries;
    slot->id = 0;
}

void
zb_window_cancel (zb_window_t *self, uint64_t id)
{
    slot_t *slot = s_find (self, id);
    assert (slot);
    s_release (self, slot);
}

int
zb_window_slot (zb_window_t *self, uint64_t id)
{
    slot_t *slot = id? s_find (self, id): NULL;
    return slot? (int) (slot - self->slots): -1;
}

static void
s_encode (uint64_t id, uint8_t corr [ZB_CORRELATION_SIZE])
{
    for (int i = 0; i < ZB_CORRELATION_SIZE; i++)
        corr [i] = (uint8_t) (id >> (56 - 8 * i));
}

uint64_t
zb_window_reissue (zb_window_t *self, uint64_t id, size_t entries, const size_t *lines,
                   uint8_t corr [ZB_CORRELATION_SIZE])
{
    slot_t *slot = s_find (self, id);
    assert (slot);
    assert (entries > 0 && entries <= slot->entries);
    self->entries -= slot->entries - entries;
    slot->entries = entries;
    if (lines && slot->has_lines)
        memmove (slot->lines, lines, entries * sizeof (size_t));
    slot->id = self->next_id++;
    s_encode (slot->id, corr);
    return slot->id;
}

bool
zb_window_decode (const void *corr, size_t corrlen, uint64_t *id)
{
    if (corrlen != ZB_CORRELATION_SIZE)
        return false;
    const uint8_t *bytes = (const uint8_t *) corr;
    uint64_t value = 0;
    for (int i = 0; i < ZB_CORRELATION_SIZE; i++)
        value = (value << 8) | bytes [i];
    *id = value;
    return true;
}

int
zb_window_find (zb_window_t *self, const void *corr, size_t corrlen,
                uint64_t *id, size_t *entries, const size_t **lines)
{
    uint64_t value;
    if (!zb_window_decode (corr, corrlen, &value) || value == 0)
        return -1;
    slot_t *slot = s_find (self, value);
    if (!slot)
        return -1;
    *id = value;
    *entries = slot->entries;
    *lines = slot->has_lines? slot->lines: NULL;
    return (int) (slot - self->slots);
}

bool
zb_window_close (zb_window_t *self, const void *corr, size_t corrlen,
                 uint64_t *id, size_t *entries, const size_t **lines)
{
    uint64_t value;
    if (!zb_window_decode (corr, corrlen, &value) || value == 0)
        return false;
    slot_t *slot = s_find (self, value);
    if (!slot)
        return false;
    *id = value;
    *entries = slot->entries;
    *lines = slot->has_lines? slot->lines: NULL;
    s_release (self, slot);
    return true;
}
