/*  fuzz_json.c - JSON at the edges (common/codec.c), the way zbctl and the
    producer read events and consumers print them:
        text -> zb_json_parse -> zb_json_to_msgpack -> msgpack-c unpack
             -> zb_json_from_msgpack -> zb_json_text

    Invariants (a violation traps):
    - a parse error is a one-line UTF-8 message;
    - what zb_json_parse accepts either packs, or fails to pack with a
      message and nothing appended (only nesting deeper than ZB_MAX_DEPTH);
    - the packed bytes are one msgpack value msgpack-c unpacks, and
      zb_json_from_msgpack converts it back;
    - round trip: the printed text parses again, to a value equal to the
      input's (json_object_equal), that packs to the very same msgpack bytes
      (same types, same key order) and prints to the same text. */

#include <json-c/json.h>
#include <msgpack.h>
#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"

static msgpack_sbuffer s_first;
static msgpack_sbuffer s_second;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    msgpack_sbuffer_init (&s_first);
    msgpack_sbuffer_init (&s_second);
    return 0;
}

static int
s_pack (json_object *json, msgpack_sbuffer *buf, char *err, size_t errlen)
{
    msgpack_sbuffer_clear (buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    return zb_json_to_msgpack (json, &pk, err, errlen);
}

static void
s_trim (msgpack_sbuffer *buf)
{
    if (buf->alloc > 1 << 20) {
        msgpack_sbuffer_destroy (buf);
        msgpack_sbuffer_init (buf);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [256] = "";
    json_object *input = zb_json_parse ((const char *) data, size, err, sizeof err);
    if (!input) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "parse error is not one line of UTF-8");
        return 0;
    }
    if (s_pack (input, &s_first, err, sizeof err) != 0) {
        FUZZ_CHECK (fuzz_message_ok (err, sizeof err), "pack error is not one line of UTF-8");
        FUZZ_CHECK (s_first.size == 0, "a failed pack appended %zu bytes", s_first.size);
        json_object_put (input);
        return 0;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&unpacked, s_first.data, s_first.size, &off);
    FUZZ_CHECK (ret == MSGPACK_UNPACK_SUCCESS && off == s_first.size,
                "msgpack-c cannot unpack what zb_json_to_msgpack packed (%d, %zu of %zu bytes)",
                (int) ret, off, s_first.size);

    json_object *back = zb_json_from_msgpack (&unpacked.data, err, sizeof err);
    FUZZ_CHECK (back, "zb_json_from_msgpack refuses a packed JSON value: %s", err);
    char *text = zb_json_text (back);
    FUZZ_CHECK (text, "zb_json_text returned NULL");

    json_object *again = zb_json_parse (text, strlen (text), err, sizeof err);
    FUZZ_CHECK (again, "printed text does not parse again: %s: %.200s", err, text);
    FUZZ_CHECK (json_object_equal (input, again), "round trip changed the value: %.200s", text);
    FUZZ_CHECK (s_pack (again, &s_second, err, sizeof err) == 0,
                "the round-tripped value does not pack: %s", err);
    FUZZ_CHECK (s_second.size == s_first.size
                && memcmp (s_first.data, s_second.data, s_first.size) == 0,
                "round trip changed the msgpack bytes (%zu -> %zu bytes): %.200s",
                s_first.size, s_second.size, text);
    char *text2 = zb_json_text (again);
    FUZZ_CHECK (text2 && strcmp (text, text2) == 0,
                "printing is not stable: %.200s then %.200s", text, text2 ? text2 : "(null)");

    free (text2);
    free (text);
    json_object_put (again);
    json_object_put (back);
    json_object_put (input);
    msgpack_unpacked_destroy (&unpacked);
    s_trim (&s_first);
    s_trim (&s_second);
    return 0;
}
