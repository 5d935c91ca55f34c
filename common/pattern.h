/*  pattern.h - EventBridge event patterns: compile a set of named patterns
    into one matcher, match decoded msgpack events against all of them at once.

    A pattern is a JSON object that mirrors the event. Fields are AND'ed,
    the values listed for a field are OR'ed, fields the pattern does not name
    are ignored. Each leaf is a non-empty array whose elements are:

        "text", 42, 4.2e1, true, false, null     exact match (typed: 42 never
                                                 matches "42"; numbers by value:
                                                 300, 300.0 and 3.0e2 are equal)
        {"prefix": "us-"}                        string starts with
        {"prefix": {"equals-ignore-case": "Us-"}}
        {"suffix": ".png"}                       string ends with
        {"suffix": {"equals-ignore-case": ".PNG"}}
        {"equals-ignore-case": "alice"}          string equal, case folded
        {"wildcard": "store_*_eu"}               '*' any run of characters,
                                                 "\\*" a literal '*', "\\\\" a '\'
        {"anything-but": "x"} / 42 / ["a", "b"] / [1, 2]
        {"anything-but": {"prefix": "init"}}     also "suffix", "equals-ignore-case",
                                                 "wildcard"; each a string or a list
        {"numeric": [">", 0, "<=", 5]}           "=", "<", "<=", ">", ">=", or a
                                                 range: lower bound (">"/">=") first
        {"cidr": "10.0.0.0/24"}                  IPv4 or IPv6 address in the block
        {"exists": true} / {"exists": false}     the field has / has no value

    "$or": [ {...}, {...}, ... ] (two or more objects) at any level of the
    pattern ORs whole sub-patterns; $or nests.

    Values (what a leaf is matched against): the scalars found at the
    pattern's path in the event. An event array at any point of the path is
    crossed ("flattened"): a leaf matches when any element matches. Matches
    are array-consistent: the fields of one match never come from objects in
    two different elements of the same event array.
    "" and null are distinct values and neither matches a missing field.
    anything-but matches any value present (null included) other than the
    ones it names; the string forms (prefix, ...) let every non-string through.
    exists works on leaves only: {"exists": true} needs a scalar value (null
    counts) at the path; {"exists": false} matches when there is none: the
    field is missing, an empty array, or an object. Under arrays of objects,
    {"exists": false} looks only at the array elements the rest of the match
    uses (with nothing else to anchor it: at every element).

    Numbers compare exactly by value over the whole int64/uint64/double
    range (not only EventBridge's 15 significant digits). Case folding for
    equals-ignore-case (and the prefix/suffix forms): Unicode 14.0 simple
    case folding (CaseFolding.txt statuses C and S), code point by code
    point; strings are compared as bytes after folding.

    Deliberate choices where EventBridge is loose or silent: a key with a
    dot is one key ({"a.b": [1]} never matches {"a": {"b": 1}}); a key given
    twice is an error (EventBridge keeps the last); "$or" is always the
    operator (never a field name); a cidr block needs its "/length", and an
    IPv4-mapped IPv6 address ("::ffff:10.0.0.1") is IPv6; msgpack bin and
    ext values (not JSON) count as no value; values nested deeper than 64
    levels are not looked at.

    Rejected, with a message naming the place ("detail.sales[0].numeric: ..."):
    invalid JSON (duplicate keys included), a pattern larger than the maximum
    size (default 2048 bytes of JSON text), a top level that is not an object,
    an empty object, a field that is neither an array nor an object, an empty
    array, an element that is an array, an operator object without exactly
    one key, an unknown operator, a wrong operand type, a bad numeric range,
    a "**" or an unknown escape in a wildcard, a bad CIDR block, "$or" that
    is not an array of at least two objects, and more than 1000 combinations
    of $or alternatives (ZB_PATTERN_MAX_COMBINATIONS).

    Cost: matching walks the event once, looks each value up in one index
    built from all patterns and checks only the patterns filed under what it
    found (see pattern.c): the work grows with the patterns that (nearly)
    match, not with the number of patterns. anything-but and numeric
    beside a narrower field (an exact store id and "total" > X) are checked
    only for the patterns that field selects; a pattern
    that is only anything-but fields matches nearly every event, so costs
    a step per event (listing it). Wildcards that start and end with '*'
    are tried one by one, and patterns made only of {"exists": false}
    fields are checked for every event. bench/zb-pattern-bench measures it
    (docs/BENCHMARKS.md).
    Not thread-safe: one matcher per thread (matching updates scratch state). */
#ifndef ZB_PATTERN_H_INCLUDED
#define ZB_PATTERN_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>

typedef struct zb_patterns_t zb_patterns_t;

#define ZB_PATTERN_DEFAULT_MAX_SIZE     2048    //  bytes of JSON text, like EventBridge
#define ZB_PATTERN_MAX_COMBINATIONS     1000    //  $or alternatives multiplied out

//  An empty set of patterns; NULL only when out of memory.
zb_patterns_t *zb_patterns_new (void);
void zb_patterns_destroy (zb_patterns_t **self_p);

//  The largest pattern text zb_patterns_add accepts, in bytes (0: no limit).
void zb_patterns_set_max_size (zb_patterns_t *self, size_t max_size);

//  Compile json (len bytes) and add it under name (copied; a pattern of the
//  same name is replaced). 0 on success; -1 with a one-line reason in err
//  (the set is unchanged then).
int zb_patterns_add (zb_patterns_t *self, const char *name, const char *json, size_t len,
                     char *err, size_t errlen);

//  Remove the pattern called name. 0 when it was there, -1 when not.
int zb_patterns_remove (zb_patterns_t *self, const char *name);

//  Number of patterns in the set.
size_t zb_patterns_size (zb_patterns_t *self);

//  Match one decoded event (a msgpack map, e.g. the published envelope).
//  Writes the names of the matching patterns (each once; valid until the set
//  changes) to names, at most max_names of them, and returns how many
//  patterns matched (more than max_names means the list was cut short).
//  The first match after an add or remove rebuilds the index (in time
//  proportional to the size of all patterns); if that runs out of memory
//  the result is 0.
size_t zb_patterns_match (zb_patterns_t *self, const msgpack_object *event,
                          const char **names, size_t max_names);

//  The same on the packed event: data holds one msgpack map (size bytes;
//  bytes after the map are ignored), read in place. Only what the patterns
//  name is decoded, the rest is skipped, so this costs less than
//  msgpack_unpack followed by zb_patterns_match. Data that is truncated or
//  not msgpack matches nothing (0).
size_t zb_patterns_match_packed (zb_patterns_t *self, const void *data, size_t size,
                                 const char **names, size_t max_names);

#endif
