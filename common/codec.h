/*  codec.h - JSON at the edges (CLI input/output, --file, pattern text) <-> msgpack.
    Uses json-c. Everything JSON can express survives a round trip:
    - integers stay integers (int64, and uint64 above INT64_MAX);
    - floats stay floats, printed in the shortest form that reads back to the
      same double, always with a '.' or exponent (300.0 stays 300.0, not 300);
    - strings are kept byte for byte (UTF-8, no '/' escaping);
    - map key order is kept.
    msgpack values JSON cannot express (bin, ext, NaN, Inf, non-string keys)
    are errors, with a message naming the path ("detail.items[2]"). */
#ifndef ZB_CODEC_H_INCLUDED
#define ZB_CODEC_H_INCLUDED

#include <json-c/json.h>
#include <msgpack.h>
#include <stdbool.h>

//  msgpack -> json-c (a new reference; NULL on error with err filled).
json_object *zb_json_from_msgpack (const msgpack_object *obj, char *err, size_t errlen);

//  json-c -> msgpack, appended to pk. 0 on success, -1 with err filled.
int zb_json_to_msgpack (json_object *json, msgpack_packer *pk, char *err, size_t errlen);

//  Strict JSON text parse (one value, trailing spaces only, valid UTF-8).
//  Returns a new reference, or NULL with "line L column C: reason" in err.
json_object *zb_json_parse (const char *text, size_t len, char *err, size_t errlen);

//  msgpack -> compact JSON text on one line (heap string, caller frees).
//  NULL with err filled when the value is not JSON-representable.
char *zb_json_text_from_msgpack (const msgpack_object *obj, char *err, size_t errlen);

//  json-c object -> compact JSON text (heap string, caller frees).
char *zb_json_text (json_object *json);

#endif
