/*  decode.h - request bodies: check and decode one msgpack value, safely.

    Why not msgpack_unpack: msgpack-c (a) allocates an array's or map's
    element storage from the count in its header before it has seen the
    elements, so a 5-byte body can ask for gigabytes, and (b) refuses any value
    nested deeper than 32 containers, failing the whole request. PROTOCOL.md
    allows 32 levels in each *entry*, and the PUT body's array adds one more;
    an entry nested deeper must fail alone (MalformedDetail), never sink the
    request.

    So the broker checks the body keeping only a count of the elements still
    expected (any depth, nothing allocated before the elements a container
    announces are known to be backed by bytes) and, in the same pass, builds
    msgpack_object trees in a msgpack zone, exactly as msgpack-c would, with
    strings pointing into the body (no copies). A
    container deeper than keep_depth levels is replaced by an empty array: it
    lies inside a container that is already too deep for any consumer of the
    tree (zb_entry_parse rejects the first container past its limit without
    looking inside), so what replaces it is never seen. Memory is bounded: at
    most one msgpack_object per byte of the body.

    A PUT body no longer takes this path as a whole: the broker reads its
    entries on their packed bytes (event.h zb_entry_parse_packed), and builds
    a tree here only for the control socket's bodies and for an entry that
    fast reading does not accept, so that zb_entry_parse gives the rejection
    its code and message. */
#ifndef ZB_DECODE_H_INCLUDED
#define ZB_DECODE_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>

//  0 when [data, data+len) is exactly one well-formed msgpack value (any
//  depth); otherwise -1 with a one-line reason in err: empty, truncated,
//  invalid byte (0xc1), or bytes after the value.
int zb_msgpack_validate (const void *data, size_t len, char *err, size_t errlen);

//  Validate, then decode into *obj with objects allocated in zone (strings,
//  bin and ext point into data, which must outlive the objects). Containers
//  at a depth greater than keep_depth (the top value is depth 1) become empty
//  arrays. 0 on success; -1 (invalid, err says why) or -2 (out of memory).
int zb_msgpack_decode (const void *data, size_t len, size_t keep_depth,
                       msgpack_zone *zone, msgpack_object *obj, char *err, size_t errlen);

//  Where a map's value lies in the body it was decoded from: for a map that
//  zb_msgpack_decode built from [data, data+len), val being the value of one
//  of its pairs whose key is a string. The value's bytes start right after
//  the key's (strings point into data) and hold exactly one msgpack value.
//  Returns its first byte and sets *size; the bytes are the value as the
//  client encoded it (so the broker can copy them instead of packing again).
const char *zb_msgpack_value_bytes (const msgpack_object *val, const void *data, size_t len,
                                    size_t *size);

//  The first item of [data, data+len), a well-formed msgpack value (as
//  zb_msgpack_validate passed it): its type as zb_msgpack_decode would give
//  it (a signed encoding of a value >= 0 is a positive integer) and, for an
//  array or a map, its element count (pairs for a map; else 0). Returns the
//  offset after the item: after its header for an array or a map (where its
//  elements start), after the whole value otherwise.
size_t zb_msgpack_peek (const void *data, size_t len, msgpack_object_type *type,
                        uint32_t *count);

//  The size in bytes of the value that [data, data+len) starts with, which
//  must be well-formed (bytes may follow it).
size_t zb_msgpack_value_size (const void *data, size_t len);

//  A value's type as an error message names it: "a string", "an integer",
//  "a negative integer", "nil", ...
const char *zb_msgpack_type_name (msgpack_object_type type);

#endif
