/*  siphash.h - SipHash-1-3 (Aumasson & Bernstein), as in Redis and Rust's std:
    the hash of the broker's tables whose keys are bytes a client chose (topic
    names, idempotency keys). Under a secret random key, a client cannot pick
    keys that collide, so no table can be made to degrade into a list. */
#ifndef ZB_SIPHASH_H_INCLUDED
#define ZB_SIPHASH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  SipHash-1-3 of len bytes under a 128-bit secret key.
uint64_t zb_siphash (const uint64_t key [2], const void *data, size_t len);

//  Draw a new secret key from the kernel (getrandom). Without kernel
//  randomness (very old kernel) the key mixes the clock and an address:
//  weaker, but the table still works.
void zb_siphash_key (uint64_t key [2]);

#endif
