/*  event.h - the EventBridge envelope: validate a PutEvents entry, stamp it,
    pack it as the one msgpack map that goes on the wire.

    An entry is a msgpack map with keys "source", "detail-type", "detail" and
    optionally "resources" and "time". The published event is a msgpack map with
    exactly these keys, in this order:
        version, id, detail-type, source, account, time, region, resources, detail
    Nothing here allocates: parsed entries are views into the caller's msgpack zone. */
#ifndef ZB_EVENT_H_INCLUDED
#define ZB_EVENT_H_INCLUDED

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include "rfc3339.h"
#include "zb.h"

//  Per-entry result codes, named as EventBridge names them where it has one.
typedef enum {
    ZB_OK = 0,
    ZB_E_INVALID_ARGUMENT,      //  "InvalidArgument"
    ZB_E_MALFORMED_DETAIL,      //  "MalformedDetail"
    ZB_E_ENTRY_TOO_LARGE,       //  "EntryTooLarge"
    ZB_E_LIMIT_EXCEEDED,        //  "LimitExceeded"
    ZB_E_INTERNAL,              //  "InternalFailure" (retryable)
    ZB_E_NOT_AUTHORIZED_SOURCE, //  "NotAuthorizedForSource" (docs/SECURITY.md)
    ZB_E_NOT_AUTHORIZED_DETAIL_TYPE,    //  "NotAuthorizedForDetailType"
    ZB_E_THROTTLED,             //  "ThrottlingException" (retryable)
} zb_code_t;

//  The code's wire name, e.g. "InvalidArgument".
const char *zb_code_name (zb_code_t code);

typedef struct {
    zb_str_t source;
    zb_str_t detail_type;
    zb_str_t time;                      //  ptr NULL when the entry has no time
    const msgpack_object *detail;       //  a map
    const msgpack_object *resources;    //  an array of strings, or NULL
    zb_str_t idem_key;                  //  "idempotency-key"; ptr NULL when absent
    char time_utc [ZB_TIME_MAX];        //  time normalized (zb_time_normalize):
    size_t time_utc_len;                //  0 when the entry has no time
    //  Optional, set by the caller after zb_entry_parse (which clears them):
    //  the msgpack bytes of detail and resources exactly as received. The
    //  broker's decoder knows where they are (decode.h zb_msgpack_value_bytes);
    //  packing then copies them instead of packing the trees again.
    zb_str_t detail_bytes;
    zb_str_t resources_bytes;
} zb_entry_t;

//  Longest idempotency key, bytes (docs/PROTOCOL.md "Idempotency keys").
#define ZB_MAX_IDEM_KEY 128

//  Validate one entry. On success fills *entry and returns ZB_OK; otherwise
//  returns the code and writes a one-line reason (naming the field) into err.
//  Checks: map with string keys; only the five known keys plus the optional
//  "idempotency-key" (1..ZB_MAX_IDEM_KEY bytes of UTF-8; it is not part of the
//  published event) (id, version, account, region are named as "set by the broker"); source 1..256 bytes, detail-type
//  1..128 bytes, both valid UTF-8 without control characters, detail-type not
//  starting with '$'; time an RFC 3339 string; resources an array of UTF-8 strings;
//  detail a map (MalformedDetail otherwise) whose whole tree is JSON-representable:
//  string keys, valid UTF-8, no bin/ext, finite floats, no duplicate keys in a map,
//  depth <= ZB_MAX_DEPTH.
//  Depth counts containers from the entry map (level 1): detail is level 2,
//  a map inside detail level 3, ... so a published event (envelope level 1,
//  detail level 2) never nests deeper than msgpack-c's unpacker accepts (32).
//  Duplicate keys are found in O(n log n) for big maps, using a per-thread
//  scratch array that is kept and reused (it grows to the biggest map seen;
//  ZB_E_INTERNAL if it cannot grow).
zb_code_t zb_entry_parse (const msgpack_object *obj, zb_entry_t *entry,
                          char *err, size_t errlen);

//  zb_entry_parse's verdict without the object tree, for the broker's hot
//  path: [data, data+len) starts with one entry, a well-formed msgpack value
//  (the request body zb_msgpack_validate passed; bytes may follow it). True
//  exactly when zb_entry_parse would accept the entry (it makes the same
//  checks on the bytes): *entry is then what zb_entry_parse fills in, except
//  that detail and resources are NULL and detail_bytes and resources_bytes
//  (ptr NULL when there are no resources) point into data; *used is the
//  entry's size in bytes. False when zb_entry_parse would reject it (or,
//  rarely, out of memory for a big detail): the caller then decodes the
//  entry and runs zb_entry_parse for the code and the message. Nothing
//  here writes a message, and nothing allocates per call.
bool zb_entry_parse_packed (const char *data, size_t len, zb_entry_t *entry, size_t *used);

//  The header of a PUT body on its packed bytes, for the fast path that reads
//  each entry with zb_entry_parse_packed: true when [data, data+len) starts
//  with an array header (fixarray, array 16 or array 32) of 1 or more elements,
//  no more than the bytes after it; *count is its element count and *pos the
//  offset of its first element. False for anything else, which goes the slow
//  way (zb_msgpack_validate says what is wrong).
bool zb_entries_header_packed (const char *data, size_t len, uint32_t *count, size_t *pos);

//  Stamps the broker adds to every entry.
typedef struct {
    zb_str_t id;            //  canonical UUID text, 36 bytes
    zb_str_t time;          //  normalized RFC 3339 UTC
    zb_str_t account;
    zb_str_t region;
} zb_stamp_t;

//  Pack the full envelope (9 keys, order above). The entry's own time is
//  ignored here: the caller puts the time to publish into stamp->time. detail
//  and resources are copied from detail_bytes/resources_bytes when set.
void zb_event_pack (msgpack_packer *pk, const zb_entry_t *entry, const zb_stamp_t *stamp);

//  The same envelope without a packer, for the broker's hot path: its exact
//  size in bytes, then the bytes themselves written to out (which must hold
//  that many). Needs entry->detail_bytes, and entry->resources_bytes when the
//  entry has resources (those decide: resources_bytes.ptr NULL means none,
//  whatever entry->resources is). Byte for byte what zb_event_pack writes
//  from them.
size_t zb_event_size (const zb_entry_t *entry, const zb_stamp_t *stamp);
void zb_event_write (char *out, const zb_entry_t *entry, const zb_stamp_t *stamp);

//  Look up a string key in a msgpack map; NULL if obj is not a map or has no such key.
const msgpack_object *zb_map_get (const msgpack_object *obj, const char *key);

//  True when obj is a msgpack string equal to s.
bool zb_str_eq (const msgpack_object *obj, const char *s);

//  Pack a msgpack str from a NUL-terminated string, or from a string literal
//  (length known at compile time). For pointer and length, msgpack-c's own
//  msgpack_pack_str_with_body.
static inline void
zb_pack_cstr (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body (pk, s, strlen (s));
}
#define ZB_PACK_LIT(pk, lit) msgpack_pack_str_with_body ((pk), (lit), sizeof (lit) - 1)

//  value in decimal at out (room for 20 bytes, no NUL); returns its length.
//  For the per-event paths that would otherwise call snprintf.
size_t zb_format_u64 (uint64_t value, char *out);

//  True when [ptr, ptr+len) is valid UTF-8 (no overlongs, no surrogates).
bool zb_utf8_valid (const char *ptr, size_t len);

//  The length of the longest valid UTF-8 prefix of [ptr, ptr+len): len when
//  it is all valid, else the offset of the first bad sequence.
size_t zb_utf8_prefix (const char *ptr, size_t len);

//  True when [ptr, ptr+len) holds a control character: C0 (U+0000..U+001F),
//  DEL (U+007F) or C1 (U+0080..U+009F). Expects valid UTF-8.
bool zb_utf8_has_control (const char *ptr, size_t len);

//  Cut a NUL-terminated string back so that it does not end inside a UTF-8
//  sequence: what vsnprintf leaves when it truncates a message.
void zb_utf8_trim (char *s);

//  vsnprintf into out (size bytes in all), then zb_utf8_trim when the text
//  was truncated: a message that is cut never ends in half a character.
//  Nothing happens when out is NULL or size is 0.
void zb_utf8_vformat (char *out, size_t size, const char *format, va_list args);

//  Value paths for error messages, e.g. detail.items[2] or detail["a b"].
//  Each appends one step to the NUL-terminated path in out (size bytes in all)
//  and returns the new length; the path is truncated, never overflowed. A key
//  that is not a plain name is written as ["..."] with bytes escaped, so the
//  path is always one line of valid UTF-8. At the root (empty path) a plain
//  key is written without the leading '.'.
//  True when name is 1 to ZB_RULE_NAME_MAX characters of A-Z a-z 0-9 . - _
//  (a broker rule's name, as EventBridge allows them).
bool zb_rule_name_ok (const char *name, size_t len);

size_t zb_path_key (char *out, size_t size, const char *key, size_t keylen);
size_t zb_path_index (char *out, size_t size, size_t index);

#endif
