/*  uuid.c - UUID v4 text for event ids, from random bytes drawn in blocks.

    The bytes come from ChaCha20 (libsodium's, SIMD) keyed from the kernel's
    CSPRNG, the construction of the kernel's own generator and OpenBSD's
    arc4random ("fast key erasure"): each block is ChaCha20 output under a
    256-bit key, and the 32 bytes after the block become the next key, so a
    key that drew a block exists no more. Every ZB_UUID_RESEED blocks (1 MiB,
    65,536 ids) the key comes fresh from getrandom() again. The kernel's
    getrandom() for every 4 KiB was ~6% of the broker's CPU (its ChaCha20 is
    the generic C one). A generator is not thread-safe; give each thread its
    own. */

#include "uuid.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ZB_UUID_BLOCK   4096
#define ZB_UUID_RESEED  256     //  blocks per key from the kernel
#define ZB_UUID_KEY     crypto_stream_chacha20_ietf_KEYBYTES

struct zb_uuidgen_t {
    size_t pos;                         //  next unused byte in block
    unsigned blocks;                    //  blocks drawn since the last kernel key
    uint8_t key [ZB_UUID_KEY];
    uint8_t block [ZB_UUID_BLOCK + ZB_UUID_KEY];
};

zb_uuidgen_t *
zb_uuidgen_new (void)
{
    //  libsodium picks its fastest ChaCha20 for this CPU (idempotent)
    if (sodium_init () < 0)
        return NULL;
    zb_uuidgen_t *self = (zb_uuidgen_t *) malloc (sizeof (zb_uuidgen_t));
    if (self) {
        self->pos = ZB_UUID_BLOCK;      //  empty: filled on first use
        self->blocks = ZB_UUID_RESEED;  //  with a key from the kernel
    }
    return self;
}

void
zb_uuidgen_destroy (zb_uuidgen_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zb_uuidgen_t *self = *self_p;
        sodium_memzero (self, sizeof *self);
        free (self);
        *self_p = NULL;
    }
}

//  Fallback for kernels without getrandom (ENOSYS): /dev/urandom.
static int
s_read_urandom (uint8_t *buf, size_t len)
{
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close (fd);
            return -1;
        }
        got += (size_t) n;
    }
    close (fd);
    return 0;
}

//  Fill buf completely from the kernel CSPRNG. getrandom() may return fewer
//  bytes than asked (it does for > 256 bytes when a signal arrives) or fail
//  with EINTR; both just mean "go on". An id without randomness would break
//  the uniqueness every consumer relies on, so a CSPRNG that cannot be read at
//  all is fatal.
static void
s_fill (uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom (buf + got, len - got, 0);
        if (n > 0)
            got += (size_t) n;
        else
        if (n < 0 && errno == EINTR)
            continue;
        else
        if (n < 0 && errno == ENOSYS) {
            if (s_read_urandom (buf + got, len - got) == 0)
                return;
            break;
        }
        else
            break;
    }
    if (got < len) {
        fprintf (stderr, "zbridge: cannot read random bytes: %s\n", strerror (errno));
        abort ();
    }
}

#if defined (__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
//  Eight hex digits for four bytes in one 64-bit word (the broker formats an
//  id per event: ~70 instructions for an id instead of ~170 with a table of
//  digit pairs). Each byte goes to a 16-bit lane, its high nibble to the
//  lane's first byte and its low nibble to the second; then every nibble n
//  becomes '0' + n, plus 39 more ('a' - '0' - 10) where n >= 10, which is
//  where n + 6 carries into bit 4.
static inline uint64_t
s_hex8 (const uint8_t *b)
{
    uint32_t word;
    memcpy (&word, b, 4);
    uint64_t x = word;
    x = (x | x << 16) & 0x0000FFFF0000FFFFULL;
    x = (x | x << 8) & 0x00FF00FF00FF00FFULL;
    uint64_t n = ((x >> 4) & 0x000F000F000F000FULL) | ((x & 0x000F000F000F000FULL) << 8);
    uint64_t letters = ((n + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
    return n + 0x3030303030303030ULL + letters * 39;
}

void
zb_uuid_format_v4 (const uint8_t bytes [16], char out [ZB_UUID_LEN + 1])
{
    uint8_t b [16];
    memcpy (b, bytes, 16);
    b [6] = (uint8_t) ((b [6] & 0x0F) | 0x40);     //  version 4
    b [8] = (uint8_t) ((b [8] & 0x3F) | 0x80);     //  variant 10xx (RFC 4122)
    //  xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx: 8, 4+4, 4+4, 8 digits
    uint64_t v0 = s_hex8 (b), v1 = s_hex8 (b + 4), v2 = s_hex8 (b + 8), v3 = s_hex8 (b + 12);
    memcpy (out, &v0, 8);
    memcpy (out + 9, &v1, 4);
    memcpy (out + 14, (const char *) &v1 + 4, 4);
    memcpy (out + 19, &v2, 4);
    memcpy (out + 24, (const char *) &v2 + 4, 4);
    memcpy (out + 28, &v3, 8);
    out [8] = out [13] = out [18] = out [23] = '-';
    out [36] = 0;
}
#else
void
zb_uuid_format_v4 (const uint8_t bytes [16], char out [ZB_UUID_LEN + 1])
{
    static const char digits [] = "0123456789abcdef";
    //  Where each byte's two digits go in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
    static const uint8_t at [16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };
    uint8_t b [16];
    memcpy (b, bytes, 16);
    b [6] = (uint8_t) ((b [6] & 0x0F) | 0x40);     //  version 4
    b [8] = (uint8_t) ((b [8] & 0x3F) | 0x80);     //  variant 10xx (RFC 4122)
    for (int i = 0; i < 16; i++) {
        out [at [i]] = digits [b [i] >> 4];
        out [at [i] + 1] = digits [b [i] & 15];
    }
    out [8] = out [13] = out [18] = out [23] = '-';
    out [36] = 0;
}
#endif

//  The next block, and the key after it
static void
s_refill (zb_uuidgen_t *self)
{
    if (self->blocks >= ZB_UUID_RESEED) {
        s_fill (self->key, ZB_UUID_KEY);
        self->blocks = 0;
    }
    static const uint8_t nonce [crypto_stream_chacha20_ietf_NONCEBYTES] = { 0 };
    crypto_stream_chacha20_ietf (self->block, sizeof self->block, nonce, self->key);
    memcpy (self->key, self->block + ZB_UUID_BLOCK, ZB_UUID_KEY);
    sodium_memzero (self->block + ZB_UUID_BLOCK, ZB_UUID_KEY);
    self->blocks++;
    self->pos = 0;
}

void
zb_uuidgen_next (zb_uuidgen_t *self, char out [ZB_UUID_LEN + 1])
{
    assert (self);
    if (self->pos + 16 > ZB_UUID_BLOCK)
        s_refill (self);
    zb_uuid_format_v4 (self->block + self->pos, out);
    self->pos += 16;
}
