/*  transform.h - EventBridge input transformers: what a broker rule delivers
    instead of the whole event.

    A transformer is given as JSON, in EventBridge's own shape:

        {"InputPathsMap": {"store": "$.detail.store_id", "total": "$.detail.total"},
         "InputTemplate": "{\"store\": <store>, \"line\": \"<store> sold <total>\"}"}

    InputPathsMap (optional) names up to 100 variables, each a JSON path in dot
    notation: "$" (the whole event) or "$.key.key...". A key that is a decimal
    number also indexes an array ("$.detail.items.0.sku"). Variable names are
    1 to 64 characters of A-Z a-z 0-9 _ - . and must not start with "aws.".

    InputTemplate (required, 1 to 8192 bytes) is text with placeholders <name>
    for the variables and the predefined ones:
        <aws.events.rule-name>              the rule's name
        <aws.events.rule-arn>               arn:zbridge:events:REGION:ACCOUNT:rule/NAME
        <aws.events.event>                  the whole event
        <aws.events.event.json>             the whole event (same as above)
        <aws.events.event.ingestion-time>   when the broker accepted it (RFC 3339)
    A <name> that is neither is an error; a '<' that does not open a
    placeholder (e.g. "a < b") is text.

    The output:
    - when the template is JSON (with every placeholder outside a string
      replaced by null it parses as a JSON value), the output is that JSON
      value, delivered as msgpack. A placeholder outside a string becomes the
      value as JSON (a string with its quotes, an object as an object); inside
      a string it becomes the value's text (a string without its quotes, other
      values as their JSON), escaped for the string. A path that does not
      exist in the event gives null outside a string and nothing inside one.
    - otherwise the output is a msgpack string: the template with each
      placeholder replaced by the value's text (nothing for a missing path).

    Cost: rendering never writes or parses JSON text. A JSON template is
    compiled once (zb_transform_new) into a msgpack skeleton, rendered with
    msgpack_packer; a string template writes the values' text directly. A
    JSON template the skeleton cannot take safely (a placeholder inside an
    object key, a literal escape running into a placeholder, ...) renders
    the original way, through JSON text and json-c: same output either way.

    Usage:
        zb_transform_t *t = zb_transform_new (json, len, err, sizeof err);
        zb_transform_render (t, event, &context, &packer, err, sizeof err);
        zb_transform_destroy (&t); */
#ifndef ZB_TRANSFORM_H_INCLUDED
#define ZB_TRANSFORM_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include "zb.h"

#define ZB_TRANSFORM_MAX_VARS       100
#define ZB_TRANSFORM_MAX_TEMPLATE   8192
#define ZB_TRANSFORM_MAX_NAME       64
#define ZB_TRANSFORM_MAX_PATH       32      //  keys in one path

typedef struct zb_transform_t zb_transform_t;

//  What the predefined variables read, for one delivery.
typedef struct {
    zb_str_t rule_name;
    zb_str_t rule_arn;
    zb_str_t ingestion_time;
} zb_transform_context_t;

//  Compile a transformer from its JSON text. NULL with a one-line reason in
//  err ("InputPathsMap.store: ..." / "InputTemplate: ...") when it is invalid.
zb_transform_t *zb_transform_new (const char *json, size_t len, char *err, size_t errlen);
void zb_transform_destroy (zb_transform_t **self_p);

//  True when the output is a JSON value, false when it is a string.
bool zb_transform_is_json (const zb_transform_t *self);

//  Render the output for one event (a msgpack map) and pack it with pk.
//  0, or -1 with err (out of memory, or a value JSON cannot represent).
int zb_transform_render (zb_transform_t *self, const msgpack_object *event,
                         const zb_transform_context_t *context, msgpack_packer *pk,
                         char *err, size_t errlen);

//  The reference renderer: the original way, the output written as JSON
//  text and parsed back with json-c. zb_transform_render uses it for the
//  templates the skeleton cannot take and for its error messages; tests,
//  fuzzing and benchmarks check the fast paths against it (same contract,
//  same bytes). Not for the hot path.
int zb_transform_render_reference (zb_transform_t *self, const msgpack_object *event,
                                   const zb_transform_context_t *context, msgpack_packer *pk,
                                   char *err, size_t errlen);

//  Tests and fuzzing only: false when every render of this transformer takes
//  the reference path (a JSON template the skeleton cannot take safely).
bool zb_transform_compiled (const zb_transform_t *self);

//  Tests and fuzzing only: how many renders the fast path gave up that the
//  reference path then rendered (a fast-path bug when not 0).
size_t zb_transform_fallbacks (const zb_transform_t *self);

#endif
