/*  checkpoint.c - a consumer's place in the event stream, kept crash-safely.

    Write: temp file in the same directory (so rename is atomic), write all,
    fsync, close, rename over the checkpoint, fsync the directory (so the
    rename itself is durable). The directory is opened once, at open, and kept:
    saving costs one open, one write, two fsyncs and a rename, at most every
    100 ms (the caller's policy).

    Read: the whole file (it is tiny; anything over 4 KiB is corrupt), parsed
    strictly: the exact header line, "position <decimal>", a final newline. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"

#define CHECKPOINT_HEADER   "zbridge-checkpoint 1\n"
#define CHECKPOINT_KEY      "position "
#define CHECKPOINT_MAX_SIZE 4096

struct zb_checkpoint_t {
    char *path;                 //  DIR/<name>.checkpoint
    char *tmp_path;             //  DIR/<name>.checkpoint.tmp
    int dir_fd;                 //  for fsync after rename
    int lock_fd;                //  DIR/<name>.lock, flock'ed
};

bool
zb_checkpoint_name_valid (const char *name)
{
    assert (name);
    size_t len = strlen (name);
    if (len == 0 || len > ZB_CHECKPOINT_NAME_MAX || name [0] == '.')
        return false;
    return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._-") == len;
}

static char *
s_join (const char *dir, const char *name, const char *suffix)
{
    size_t size = strlen (dir) + 1 + strlen (name) + strlen (suffix) + 1;
    char *path = (char *) malloc (size);
    if (path)
        snprintf (path, size, "%s/%s%s", dir, name, suffix);
    return path;
}

zb_checkpoint_t *
zb_checkpoint_open (const char *dir, const char *name, char *err, size_t errlen)
{
    assert (dir);
    assert (name);
    assert (zb_checkpoint_name_valid (name));
    if (!*dir) {
        snprintf (err, errlen, "the state directory is an empty string");
        return NULL;
    }
    if (mkdir (dir, 0755) == -1 && errno != EEXIST) {
        snprintf (err, errlen, "cannot create state directory %s: %s", dir, strerror (errno));
        return NULL;
    }
    zb_checkpoint_t *self = (zb_checkpoint_t *) calloc (1, sizeof (zb_checkpoint_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->dir_fd = -1;
    self->lock_fd = -1;
    self->path = s_join (dir, name, ".checkpoint");
    self->tmp_path = s_join (dir, name, ".checkpoint.tmp");
    char *lock_path = s_join (dir, name, ".lock");
    if (!self->path || !self->tmp_path || !lock_path) {
        snprintf (err, errlen, "out of memory");
        free (lock_path);
        zb_checkpoint_destroy (&self);
        return NULL;
    }
    self->dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd == -1) {
        snprintf (err, errlen, "cannot open state directory %s: %s", dir, strerror (errno));
        free (lock_path);
        zb_checkpoint_destroy (&self);
        return NULL;
    }
    self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd == -1) {
        snprintf (err, errlen, "cannot create %s: %s", lock_path, strerror (errno));
        free (lock_path);
        zb_checkpoint_destroy (&self);
        return NULL;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno == EWOULDBLOCK)
            snprintf (err, errlen, "checkpoint '%s' in %s is in use by another process "
                      "(%s is locked)", name, dir, lock_path);
        else
            snprintf (err, errlen, "cannot lock %s: %s", lock_path, strerror (errno));
        free (lock_path);
        zb_checkpoint_destroy (&self);
        return NULL;
    }
    free (lock_path);
    return self;
}

void
zb_checkpoint_destroy (zb_checkpoint_t **self_p)
{
    assert (self_p);
    zb_checkpoint_t *self = *self_p;
    if (!self)
        return;
    if (self->lock_fd != -1)
        close (self->lock_fd);          //  releases the lock
    if (self->dir_fd != -1)
        close (self->dir_fd);
    free (self->path);
    free (self->tmp_path);
    free (self);
    *self_p = NULL;
}

const char *
zb_checkpoint_path (zb_checkpoint_t *self)
{
    assert (self);
    return self->path;
}

int
zb_checkpoint_parse (const char *data, size_t size, uint64_t *position,
                     char *err, size_t errlen)
{
    assert (data || size == 0);
    assert (position);
    size_t header = strlen (CHECKPOINT_HEADER);
    if (size == 0) {
        snprintf (err, errlen, "the file is empty");
        return -1;
    }
    if (size < header || memcmp (data, CHECKPOINT_HEADER, header) != 0) {
        snprintf (err, errlen, "first line is not \"zbridge-checkpoint 1\"");
        return -1;
    }
    const char *line = data + header;
    size_t left = size - header;
    size_t key = strlen (CHECKPOINT_KEY);
    if (left < key || memcmp (line, CHECKPOINT_KEY, key) != 0) {
        snprintf (err, errlen, "second line is not \"position <number>\"");
        return -1;
    }
    const char *digits = line + key;
    left -= key;
    size_t ndigits = 0;
    while (ndigits < left && digits [ndigits] >= '0' && digits [ndigits] <= '9')
        ndigits++;
    if (ndigits == 0 || ndigits > 20 || (ndigits > 1 && digits [0] == '0')) {
        snprintf (err, errlen, "position is not a decimal number");
        return -1;
    }
    if (ndigits != left - 1 || digits [ndigits] != '\n') {
        snprintf (err, errlen, "unexpected bytes after the position "
                  "(a checkpoint is exactly two lines)");
        return -1;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < ndigits; i++) {
        unsigned d = (unsigned) (digits [i] - '0');
        if (value > (UINT64_MAX - d) / 10) {
            snprintf (err, errlen, "position is larger than 2^64-1");
            return -1;
        }
        value = value * 10 + d;
    }
    *position = value;
    return 0;
}

int
zb_checkpoint_load (zb_checkpoint_t *self, uint64_t *position, char *err, size_t errlen)
{
    assert (self);
    assert (position);
    int fd = open (self->path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT)
            return 0;
        snprintf (err, errlen, "cannot read checkpoint %s: %s", self->path, strerror (errno));
        return -1;
    }
    char data [CHECKPOINT_MAX_SIZE + 1];
    size_t size = 0;
    while (size < sizeof data) {
        ssize_t n = read (fd, data + size, sizeof data - size);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            snprintf (err, errlen, "cannot read checkpoint %s: %s", self->path,
                      strerror (errno));
            close (fd);
            return -1;
        }
        if (n == 0)
            break;
        size += (size_t) n;
    }
    close (fd);
    char why [200];
    if (size > CHECKPOINT_MAX_SIZE)
        snprintf (why, sizeof why, "larger than %d bytes", CHECKPOINT_MAX_SIZE);
    else
    if (zb_checkpoint_parse (data, size, position, why, sizeof why) == 0)
        return 1;
    snprintf (err, errlen, "checkpoint %s is corrupt: %s (remove it to start over "
              "from --from)", self->path, why);
    return -1;
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write (fd, data, size);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

int
zb_checkpoint_save (zb_checkpoint_t *self, uint64_t position, char *err, size_t errlen)
{
    assert (self);
    char text [64];
    int len = snprintf (text, sizeof text, CHECKPOINT_HEADER CHECKPOINT_KEY "%" PRIu64 "\n",
                        position);
    assert (len > 0 && (size_t) len < sizeof text);
    int fd = open (self->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf (err, errlen, "cannot write checkpoint %s: %s", self->tmp_path,
                  strerror (errno));
        return -1;
    }
    if (s_write_all (fd, text, (size_t) len) == -1 || fsync (fd) == -1) {
        snprintf (err, errlen, "cannot write checkpoint %s: %s", self->tmp_path,
                  strerror (errno));
        close (fd);
        unlink (self->tmp_path);
        return -1;
    }
    if (close (fd) == -1) {
        snprintf (err, errlen, "cannot write checkpoint %s: %s", self->tmp_path,
                  strerror (errno));
        unlink (self->tmp_path);
        return -1;
    }
    if (rename (self->tmp_path, self->path) == -1) {
        snprintf (err, errlen, "cannot rename %s to %s: %s", self->tmp_path, self->path,
                  strerror (errno));
        unlink (self->tmp_path);
        return -1;
    }
    //  The rename is durable only once the directory entry is on disk
    if (fsync (self->dir_fd) == -1 && errno != EINVAL) {
        snprintf (err, errlen, "cannot sync the state directory of %s: %s", self->path,
                  strerror (errno));
        return -1;
    }
    return 0;
}
