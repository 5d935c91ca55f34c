/*  codec.h - JSON at the edges (CLI input/output, --file, pattern text) <-> msgpack.
    Uses json-c. Everything JSON can express survives a round trip:
    - integers stay integers (int64, and uint64 above INT64_MAX);
    - floats stay floats, printed in the shortest form that reads back to the
      same double, always with a '.' or exponent (300.0 stays 300.0, not 300);
    - strings are kept byte for byte (UTF-8, no '/' escaping);
    - map key order is kept.
    msgpack values JSON cannot express (bin, ext, NaN, Inf, non-string keys)
    are errors, with a message naming the path ("detail.items[2]"; "value" is
    the root). Map keys containing NUL cannot be json-c keys: also an error.
    Nesting: a container at a level above ZB_MAX_DEPTH (root = level 1) is an
    error in both directions; the JSON parser itself stops at 64 levels.
    Floats: double as above; a msgpack float32 prints as the shortest text
    that reads back to the same float (0.1f -> 0.1). Output assumes the "C"
    LC_NUMERIC locale (do not call setlocale with LC_NUMERIC). */
#ifndef ZB_CODEC_H_INCLUDED
#define ZB_CODEC_H_INCLUDED

#include <json-c/json.h>
#include <msgpack.h>
#include <stdbool.h>

//  msgpack -> json-c (a new reference; NULL on error with err filled).
//  A msgpack nil gives NULL too (json-c's null), with err set to "": check
//  err [0] or obj->type to tell it from an error.
json_object *zb_json_from_msgpack (const msgpack_object *obj, char *err, size_t errlen);

//  json-c -> msgpack, appended to pk. 0 on success, -1 with err filled
//  (nothing is appended then). A json-c uint64 above INT64_MAX packs as uint64.
//  NaN/Infinity doubles (only possible in objects built in code) are errors.
int zb_json_to_msgpack (json_object *json, msgpack_packer *pk, char *err, size_t errlen);

//  Strict JSON text parse (one value, trailing spaces only, valid UTF-8).
//  Returns a new reference, or NULL with "line L column C: reason" in err
//  (columns count characters). RFC 8259 strictly, closing gaps json-c 0.16
//  leaves even in strict mode: rejected are integers outside
//  [INT64_MIN, UINT64_MAX] (json-c would saturate them silently), numbers that
//  overflow a double (1e400), NaN/Infinity, leading zeros, "2.", raw control
//  characters in strings, lone surrogate \u escapes, "\u0000" inside keys,
//  NUL bytes, and duplicate keys in an object ("duplicate key \"a\"" at the
//  second occurrence; json-c itself would keep the last value silently).
//  A text that is just `null` is an error too (json-c's null is NULL).
//  Nesting deeper than 64 levels: json-c's "nesting too deep".
json_object *zb_json_parse (const char *text, size_t len, char *err, size_t errlen);

//  msgpack -> compact JSON text on one line (heap string, caller frees).
//  NULL with err filled when the value is not JSON-representable.
char *zb_json_text_from_msgpack (const msgpack_object *obj, char *err, size_t errlen);

//  json-c object -> compact JSON text (heap string, caller frees).
char *zb_json_text (json_object *json);

#endif
