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

void
zb_uuid_format_v4 (const uint8_t bytes [16], char out [ZB_UUID_LEN + 1])
{
    static const char hex [] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        uint8_t b = bytes [i];
        if (i == 6)
            b = (uint8_t) ((b & 0x0F) | 0x40);     //  version 4
        else
        if (i == 8)
            b = (uint8_t) ((b & 0x3F) | 0x80);     //  variant 10xx (RFC 4122)
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex [b >> 4];
        *p++ = hex [b & 0x0F];
    }
    *p = 0;
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
