/*  uuid.c - UUID v4 text for event ids, from random bytes drawn in blocks.

    The generator reads ZB_UUID_BLOCK bytes from getrandom() at a time (one
    system call per 256 ids) and formats 16 of them per id. A generator is not
    thread-safe; give each thread its own. */

#include "uuid.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ZB_UUID_BLOCK 4096

struct zb_uuidgen_t {
    size_t pos;                         //  next unused byte in block
    uint8_t block [ZB_UUID_BLOCK];
};

zb_uuidgen_t *
zb_uuidgen_new (void)
{
    zb_uuidgen_t *self = (zb_uuidgen_t *) malloc (sizeof (zb_uuidgen_t));
    if (self)
        self->pos = ZB_UUID_BLOCK;      //  empty: filled on first use
    return self;
}

void
zb_uuidgen_destroy (zb_uuidgen_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zb_uuidgen_t *self = *self_p;
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

//  Two hex digits per byte, looked up at once (the broker formats an id per
//  event): "000102...feff"
static const char s_hex_pairs [513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void
zb_uuid_format_v4 (const uint8_t bytes [16], char out [ZB_UUID_LEN + 1])
{
    //  Where each byte's two digits go in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
    static const uint8_t at [16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };
    uint8_t b [16];
    memcpy (b, bytes, 16);
    b [6] = (uint8_t) ((b [6] & 0x0F) | 0x40);     //  version 4
    b [8] = (uint8_t) ((b [8] & 0x3F) | 0x80);     //  variant 10xx (RFC 4122)
    for (int i = 0; i < 16; i++)
        memcpy (out + at [i], s_hex_pairs + 2 * b [i], 2);
    out [8] = out [13] = out [18] = out [23] = '-';
    out [36] = 0;
}

void
zb_uuidgen_next (zb_uuidgen_t *self, char out [ZB_UUID_LEN + 1])
{
    assert (self);
    if (self->pos + 16 > ZB_UUID_BLOCK) {
        s_fill (self->block, ZB_UUID_BLOCK);
        self->pos = 0;
    }
    zb_uuid_format_v4 (self->block + self->pos, out);
    self->pos += 16;
}
