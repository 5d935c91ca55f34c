/*  rules.h - the broker's named rules: an EventBridge event pattern each, and
    optionally an input transformer (common/transform.h), compiled together
    into one matcher (common/pattern.h).

    Every accepted event is matched against all rules; for each rule that
    matches, the broker journals and publishes the event (or the
    transformer's output) once more on the rule's own topic "$rule/NAME",
    with its own topic_seq, so that a rule's subscribers get the same gap
    detection and catch-up as a detail-type's.

    Rules are kept in a JSON file (DATA_DIR/rules.json) rewritten atomically
    (temporary file, fsync, rename, fsync of the directory) on every change,
    so they survive a restart; without a file (--memory) they live as long as
    the broker. */
#ifndef ZB_RULES_H_INCLUDED
#define ZB_RULES_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "transform.h"
#include "zb.h"

#define ZB_DEFAULT_MAX_RULES    300         //  EventBridge's default quota per bus
#define ZB_RULES_FILE           "rules.json"

typedef struct {
    char name [ZB_RULE_NAME_MAX + 1];
    char *pattern;                          //  JSON text, as given
    size_t pattern_len;
    char *transform;                        //  JSON text as given, or NULL
    size_t transform_len;
    zb_transform_t *transformer;            //  compiled transform, or NULL
    char topic [sizeof ZB_RULE_TOPIC_PREFIX + ZB_RULE_NAME_MAX];   //  "$rule/NAME"
    size_t topic_len;
    char arn [256];                         //  <aws.events.rule-arn> (account, region: 64 bytes each)
    size_t arn_len;
    uint64_t failed;                        //  transformer outputs that could not be delivered
} zb_rule_t;

typedef struct zb_rules_t zb_rules_t;

//  Load the rules of path (NULL: none and nothing persisted; a missing file is
//  an empty set). NULL with err when the file cannot be read or holds a rule
//  that does not compile: the broker refuses to start rather than run
//  without rules it was given.
zb_rules_t *zb_rules_new (const char *path, size_t max_rules, size_t max_pattern_size,
                          const char *account, const char *region, char *err, size_t errlen);
void zb_rules_destroy (zb_rules_t **self_p);

//  Add or replace a rule, then persist the set. Returns 1 when created, 0 when
//  replaced, -1 on failure with *code (a literal: "InvalidArgument",
//  "InvalidEventPattern", "LimitExceeded", "InternalFailure") and err; the set
//  is unchanged then (in memory and on disk).
int zb_rules_put (zb_rules_t *self, const char *name, size_t name_len,
                  const char *pattern, size_t pattern_len,
                  const char *transform, size_t transform_len,
                  const char **code, char *err, size_t errlen);

//  Remove a rule and persist. 0 done; -1 no such rule; -2 the file could not be
//  written (err; the rule stays).
int zb_rules_delete (zb_rules_t *self, const char *name, size_t name_len, char *err, size_t errlen);

zb_rule_t *zb_rules_get (zb_rules_t *self, const char *name, size_t name_len);
size_t zb_rules_size (zb_rules_t *self);
//  In name order.
zb_rule_t *zb_rules_at (zb_rules_t *self, size_t index);

//  The rules an event (the published envelope, a map) matches; at most max
//  written to out; returns how many matched.
size_t zb_rules_match (zb_rules_t *self, const msgpack_object *event, zb_rule_t **out, size_t max);

//  The same on the packed envelope, read in place (zb_patterns_match_packed).
size_t zb_rules_match_packed (zb_rules_t *self, const void *data, size_t size,
                              zb_rule_t **out, size_t max);

//  Where rules are kept: the file's path, or "memory".
const char *zb_rules_where (zb_rules_t *self);

#endif
