/*  generator.h - the store load generator: reproducible store events.

    Every random choice comes from one seeded xoshiro256** stream, so a seed
    gives the same sequence of events (request ids included) on every run and
    machine. Events are packed straight into msgpack: no JSON, no allocation. */
#ifndef ZB_GENERATOR_H_INCLUDED
#define ZB_GENERATOR_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct zb_generator_t zb_generator_t;

//  What the last generated event was, for the producer's counters.
typedef struct {
    bool sale;          //  detail-type "sales-events" (else "inventory-events")
    bool bad;           //  no store_id, bad_msg: true
} zb_generated_t;

//  bad_ratio in [0, 1]: the probability that an event is "bad".
zb_generator_t *zb_generator_new (uint64_t seed, double bad_ratio);
void zb_generator_destroy (zb_generator_t **self_p);

//  Pack the next PutEvents entry (a map: source, detail-type, detail) onto pk.
void zb_generator_pack (zb_generator_t *self, msgpack_packer *pk, zb_generated_t *info);

//  The same with a fourth key, "idempotency-key": key (keylen bytes). The key
//  draws nothing from the stream: a seed gives the same events either way.
void zb_generator_pack_keyed (zb_generator_t *self, msgpack_packer *pk,
                              const char *key, size_t keylen, zb_generated_t *info);

#endif
