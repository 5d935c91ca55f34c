/*  siphash.c - SipHash-1-3; see siphash.h. */

#include <sys/random.h>
#include <time.h>
#include "siphash.h"

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL (v1, 13); v1 ^= v0; v0 = ROTL (v0, 32); \
        v2 += v3; v3 = ROTL (v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL (v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL (v1, 17); v1 ^= v2; v2 = ROTL (v2, 32); \
    } while (0)

static uint64_t
s_load64le (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

uint64_t
zb_siphash (const uint64_t key [2], const void *data, size_t len)
{
    const uint8_t *in = (const uint8_t *) data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key [0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ key [1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key [0];
    uint64_t v3 = 0x7465646279746573ULL ^ key [1];
    const uint8_t *end = in + len - (len % 8);
    for (; in != end; in += 8) {
        uint64_t m = s_load64le (in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t) len) << 56;
    switch (len & 7) {
        case 7: b |= ((uint64_t) in [6]) << 48; /* fall through */
        case 6: b |= ((uint64_t) in [5]) << 40; /* fall through */
        case 5: b |= ((uint64_t) in [4]) << 32; /* fall through */
        case 4: b |= ((uint64_t) in [3]) << 24; /* fall through */
        case 3: b |= ((uint64_t) in [2]) << 16; /* fall through */
        case 2: b |= ((uint64_t) in [1]) << 8;  /* fall through */
        case 1: b |= ((uint64_t) in [0]); break;
        case 0: break;
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void
zb_siphash_key (uint64_t key [2])
{
    if (getrandom (key, 2 * sizeof (uint64_t), 0) != (ssize_t) (2 * sizeof (uint64_t))) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        key [0] = (uint64_t) ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t) (uintptr_t) key;
        key [1] = (uint64_t) ts.tv_sec * 0xbf58476d1ce4e5b9ULL;
    }
}
