/*  entryfile.h - PutEvents entries from a file of JSON lines (--file).

    One entry per line, as in PutEvents:
        {"Source": str, "DetailType": str, "Detail": JSON text of an object, or an object,
         "Resources": [str, ...], "Time": str}
    or the lowercase envelope keys a consumer prints ("source", "detail-type",
    "detail", "resources", "time"), so consumer output can be fed back; the
    envelope keys the broker sets ("version", "id", "account", "region") are
    dropped. An entry may carry its idempotency key ("IdempotencyKey" or
    "idempotency-key", a string); with a key prefix set, an entry without one
    gets "<prefix>-<line number>". Blank lines are skipped. A line that is not an entry is rejected
    with a reason naming the line; content rules (lengths, time format, ...)
    are left to the broker, which answers per entry. */
#ifndef ZB_ENTRYFILE_H_INCLUDED
#define ZB_ENTRYFILE_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include "zb.h"

//  Longest line accepted, in bytes (without the newline)
#define ZB_ENTRYFILE_MAX_LINE   (1024 * 1024)

typedef struct zb_entryfile_t zb_entryfile_t;

//  path "-" reads stdin. NULL when the file cannot be opened (err says why).
zb_entryfile_t *zb_entryfile_open (const char *path, char *err, size_t errlen);
void zb_entryfile_destroy (zb_entryfile_t **self_p);

//  Give every entry without an idempotency key the key "<prefix>-<line>"
//  (NULL: leave such entries without one, the default).
void zb_entryfile_set_key_prefix (zb_entryfile_t *self, const char *prefix);

typedef struct {
    size_t line;            //  line number, from 1
    zb_str_t detail_type;   //  valid until the next call
} zb_entryinfo_t;

//  Read up to the next entry. Returns
//     1  an entry: its msgpack map was appended to out, info filled
//     0  end of input
//    -1  the line was rejected: err holds "line N: reason", info->line is set
//    -2  the input could not be read (err says why; EINTR on a signal)
int zb_entryfile_next (zb_entryfile_t *self, msgpack_sbuffer *out, zb_entryinfo_t *info,
                       char *err, size_t errlen);

//  One entry from its JSON text (as one line of the file, without a line
//  number or generated key): its msgpack map appended to out, 0; or -1 with
//  the reason in err (nothing appended).
int zb_entryfile_pack_text (const char *text, size_t len, msgpack_sbuffer *out,
                            char *err, size_t errlen);

#endif
