/*  topics.c - the broker's topic table; see topics.h.

    Layout: topics live in a dense array of pointers (iteration order, cheap
    removal by moving the last one into the gap); an open-addressing index of
    slots {hash, position + 1} finds them. Linear probing with backward-shift
    deletion, so there are no tombstones and probe chains stay short. The
    index is kept at most half full and doubles when it would not be. */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "siphash.h"
#include "topics.h"

typedef struct {
    uint32_t hash;          //  low 32 bits of the name's hash
    uint32_t pos;           //  position in topics [] plus one; 0: empty slot
} slot_t;

struct zb_topics_t {
    size_t max_tracked;
    size_t tracked;         //  topics with tracked set
    size_t untracked;       //  subscription-only topics
    zb_topic_t **topics;    //  dense, size = tracked + untracked
    size_t capacity;        //  of topics []
    slot_t *slots;
    size_t mask;            //  slot count - 1 (slot count a power of two)
    uint64_t key [2];       //  SipHash key
};

zb_topics_t *
zb_topics_new (size_t max_tracked)
{
    assert (max_tracked > 0);
    zb_topics_t *self = (zb_topics_t *) calloc (1, sizeof (zb_topics_t));
    if (!self)
        return NULL;
    self->max_tracked = max_tracked;
    self->mask = 63;
    self->slots = (slot_t *) calloc (self->mask + 1, sizeof (slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    zb_siphash_key (self->key);
    return self;
}

void
zb_topics_destroy (zb_topics_t **self_p)
{
    assert (self_p);
    zb_topics_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->tracked + self->untracked; i++)
            free (self->topics [i]);
        free (self->topics);
        free (self->slots);
        free (self);
        *self_p = NULL;
    }
}

//  Index of the slot that holds the name, or of the empty slot where it would go.
static size_t
s_find (zb_topics_t *self, const char *name, size_t len, uint32_t hash)
{
    size_t i = hash & self->mask;
    while (self->slots [i].pos) {
        if (self->slots [i].hash == hash) {
            zb_topic_t *topic = self->topics [self->slots [i].pos - 1];
            if (topic->len == len && memcmp (topic->name, name, len) == 0)
                return i;
        }
        i = (i + 1) & self->mask;
    }
    return i;
}

static uint32_t
s_hash (zb_topics_t *self, const char *name, size_t len)
{
    return (uint32_t) zb_siphash (self->key, name, len);
}

zb_topic_t *
zb_topics_lookup (zb_topics_t *self, const char *name, size_t len)
{
    assert (self);
    if (len == 0 || len > ZB_MAX_DETAIL_TYPE)
        return NULL;
    size_t i = s_find (self, name, len, s_hash (self, name, len));
    return self->slots [i].pos ? self->topics [self->slots [i].pos - 1] : NULL;
}

//  Double the slot index; -1 when out of memory (the table is unchanged).
static int
s_grow (zb_topics_t *self)
{
    size_t count = (self->mask + 1) * 2;
    slot_t *slots = (slot_t *) calloc (count, sizeof (slot_t));
    if (!slots)
        return -1;
    for (size_t i = 0; i <= self->mask; i++) {
        if (self->slots [i].pos) {
            size_t j = self->slots [i].hash & (count - 1);
            while (slots [j].pos)
                j = (j + 1) & (count - 1);
            slots [j] = self->slots [i];
        }
    }
    free (self->slots);
    self->slots = slots;
    self->mask = count - 1;
    return 0;
}

//  Add a new topic; NULL when out of memory.
static zb_topic_t *
s_add (zb_topics_t *self, const char *name, size_t len, uint32_t hash, bool tracked)
{
    size_t size = self->tracked + self->untracked;
    if ((size + 1) * 2 > self->mask + 1 && s_grow (self) == -1)
        return NULL;
    if (size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        zb_topic_t **topics = (zb_topic_t **) realloc (self->topics, capacity * sizeof (zb_topic_t *));
        if (!topics)
            return NULL;
        self->topics = topics;
        self->capacity = capacity;
    }
    zb_topic_t *topic = (zb_topic_t *) calloc (1, sizeof (zb_topic_t));
    if (!topic)
        return NULL;
    memcpy (topic->name, name, len);
    topic->name [len] = 0;
    topic->len = (uint8_t) len;
    topic->tracked = tracked;
    self->topics [size] = topic;
    size_t i = s_find (self, name, len, hash);
    assert (self->slots [i].pos == 0);
    self->slots [i].hash = hash;
    self->slots [i].pos = (uint32_t) size + 1;
    if (tracked)
        self->tracked++;
    else
        self->untracked++;
    return topic;
}

//  Remove the topic in slot i (backward-shift deletion) and free it.
static void
s_remove (zb_topics_t *self, size_t i)
{
    size_t pos = self->slots [i].pos - 1;
    zb_topic_t *topic = self->topics [pos];
    if (topic->tracked)
        self->tracked--;
    else
        self->untracked--;
    free (topic);
    self->topics [pos] = NULL;

    //  Shift back the slots after i that probed past it
    size_t hole = i;
    size_t j = i;
    while (true) {
        j = (j + 1) & self->mask;
        if (!self->slots [j].pos)
            break;
        size_t home = self->slots [j].hash & self->mask;
        //  The entry at j stays when its home lies cyclically in (hole, j]
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            self->slots [hole] = self->slots [j];
            hole = j;
        }
    }
    self->slots [hole].pos = 0;
    self->slots [hole].hash = 0;

    //  Close the gap in the dense array with the last topic; the index is
    //  consistent again, so its slot can be found by name
    size_t last = self->tracked + self->untracked;
    if (pos != last) {
        zb_topic_t *moved = self->topics [last];
        size_t k = s_find (self, moved->name, moved->len, s_hash (self, moved->name, moved->len));
        assert (self->slots [k].pos == last + 1);
        self->slots [k].pos = (uint32_t) pos + 1;
        self->topics [pos] = moved;
    }
    self->topics [last] = NULL;
}

int
zb_topics_track (zb_topics_t *self, const char *name, size_t len, zb_topic_t **topic_p)
{
    assert (self);
    assert (topic_p);
    assert (len > 0 && len <= ZB_MAX_DETAIL_TYPE);
    *topic_p = NULL;
    uint32_t hash = s_hash (self, name, len);
    size_t i = s_find (self, name, len, hash);
    zb_topic_t *topic = self->slots [i].pos ? self->topics [self->slots [i].pos - 1] : NULL;
    if (topic && topic->tracked) {
        *topic_p = topic;
        return 0;
    }
    if (self->tracked >= self->max_tracked)
        return -1;
    if (topic) {
        topic->tracked = true;
        self->untracked--;
        self->tracked++;
    }
    else {
        topic = s_add (self, name, len, hash, true);
        if (!topic)
            return -2;
    }
    *topic_p = topic;
    return 0;
}

int64_t
zb_topics_subscribe (zb_topics_t *self, const char *name, size_t len)
{
    assert (self);
    if (len == 0 || len > ZB_MAX_DETAIL_TYPE)
        return -1;
    uint32_t hash = s_hash (self, name, len);
    size_t i = s_find (self, name, len, hash);
    zb_topic_t *topic = self->slots [i].pos ? self->topics [self->slots [i].pos - 1] : NULL;
    if (!topic) {
        if (self->untracked >= self->max_tracked)
            return -1;
        topic = s_add (self, name, len, hash, false);
        if (!topic)
            return -1;
    }
    topic->subscribers++;
    return (int64_t) topic->subscribers;
}

int64_t
zb_topics_unsubscribe (zb_topics_t *self, const char *name, size_t len)
{
    assert (self);
    if (len == 0 || len > ZB_MAX_DETAIL_TYPE)
        return -1;
    size_t i = s_find (self, name, len, s_hash (self, name, len));
    if (!self->slots [i].pos)
        return -1;
    zb_topic_t *topic = self->topics [self->slots [i].pos - 1];
    if (topic->subscribers > 0)
        topic->subscribers--;
    if (topic->subscribers == 0 && !topic->tracked) {
        s_remove (self, i);
        return 0;
    }
    return (int64_t) topic->subscribers;
}

size_t
zb_topics_size (zb_topics_t *self)
{
    assert (self);
    return self->tracked + self->untracked;
}

size_t
zb_topics_tracked (zb_topics_t *self)
{
    assert (self);
    return self->tracked;
}

zb_topic_t *
zb_topics_at (zb_topics_t *self, size_t index)
{
    assert (self);
    return index < self->tracked + self->untracked ? self->topics [index] : NULL;
}
