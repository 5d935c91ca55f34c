/*  checkpoint.h - a consumer's place in the event stream, kept in a file.

    DIR/<name>.checkpoint holds the last sequence number the consumer has
    processed, as two lines of text:

        zbridge-checkpoint 1
        position 12345

    It is written crash-safely: the new content goes to DIR/<name>.checkpoint.tmp,
    which is fsync'ed and renamed over the old file, then the directory is
    fsync'ed; a crash at any point leaves either the old or the new checkpoint,
    never a mix. A file that does not parse is reported as corrupt, never taken
    for "no checkpoint": starting over silently would replay or skip events.

    One process at a time owns a checkpoint: open takes an exclusive lock on
    DIR/<name>.lock (flock), so a second consumer with the same name fails
    clearly instead of interleaving writes. */
#ifndef ZB_CHECKPOINT_H_INCLUDED
#define ZB_CHECKPOINT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZB_CHECKPOINT_NAME_MAX  100     //  bytes of a checkpoint name

typedef struct zb_checkpoint_t zb_checkpoint_t;

//  True when name is a usable checkpoint name: 1 to ZB_CHECKPOINT_NAME_MAX
//  bytes of [A-Za-z0-9._-], not starting with '.'.
bool zb_checkpoint_name_valid (const char *name);

//  Open the checkpoint name in dir, creating dir (one level) when it is missing,
//  and lock it. NULL when dir cannot be used or another process holds the
//  checkpoint (err says which).
zb_checkpoint_t *zb_checkpoint_open (const char *dir, const char *name,
                                     char *err, size_t errlen);
void zb_checkpoint_destroy (zb_checkpoint_t **self_p);

//  Read the checkpoint: 1 with *position set, 0 when there is none yet, -1 when
//  the file exists but cannot be read or is corrupt (err says why and where).
int zb_checkpoint_load (zb_checkpoint_t *self, uint64_t *position, char *err, size_t errlen);

//  Replace the checkpoint with position, crash-safely. 0, or -1 with err.
int zb_checkpoint_save (zb_checkpoint_t *self, uint64_t position, char *err, size_t errlen);

//  The checkpoint file's path, for messages.
const char *zb_checkpoint_path (zb_checkpoint_t *self);

//  Parse checkpoint file content (exported for the unit tests): 0 with
//  *position, or -1 with the reason in err.
int zb_checkpoint_parse (const char *data, size_t size, uint64_t *position,
                         char *err, size_t errlen);

#endif
