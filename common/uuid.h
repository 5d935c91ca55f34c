/*  uuid.h - UUID v4 text for event ids.
    CZMQ's zuuid allocates and makes a getrandom() call per UUID; the broker
    stamps every event, so it draws random bytes in blocks instead: ChaCha20
    keyed from getrandom() (one call per 65,536 ids, no allocation; uuid.c). */
#ifndef ZB_UUID_H_INCLUDED
#define ZB_UUID_H_INCLUDED

#include <stdint.h>

#define ZB_UUID_LEN 36

typedef struct zb_uuidgen_t zb_uuidgen_t;

//  A generator keyed by the kernel's CSPRNG (getrandom). NULL: out of memory,
//  or libsodium could not start.
zb_uuidgen_t *zb_uuidgen_new (void);
void zb_uuidgen_destroy (zb_uuidgen_t **self_p);

//  Write the next random v4 UUID, lowercase canonical form, plus a NUL.
void zb_uuidgen_next (zb_uuidgen_t *self, char out[ZB_UUID_LEN + 1]);

//  Format 16 bytes as a v4 UUID (sets version and variant bits). Used with a
//  seeded PRNG by the producer so that --seed runs are reproducible.
void zb_uuid_format_v4 (const uint8_t bytes[16], char out[ZB_UUID_LEN + 1]);

#endif
