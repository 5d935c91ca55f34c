/*  pattern_ref.h - a slow, obviously-correct reference matcher for event
    patterns, written from the definitions (common/pattern.h) and sharing no
    code with the real matcher. The property test (tests/unit/
    test_pattern_random.c) and the benchmark (bench/zb-pattern-bench.c)
    check the compiled matcher against it.

    - the pattern (JSON text, parsed with json-c) is expanded once into its
      $or combinations, each a list of conditions (path, leaf array);
    - the event (the msgpack map itself) is flattened into leaves: (path,
      value, trail), the trail being the (array, index) pairs of the arrays
      the leaf sits in an object of;
    - a combination matches when each condition takes a leaf at its path
      that one of its alternatives accepts (or, with {"exists": false}, takes
      no leaf: then no leaf at its path may be compatible with the taken
      ones), the taken leaves pairwise compatible: no array seen by two of
      them at different indexes. Found by plain backtracking.

    Limits, on purpose (the callers stay inside them): strings compare
    ignoring case in ASCII only; numbers compare as doubles; a pattern
    must be valid (it is not checked, the real matcher does that). msgpack
    bin and ext values and NaN are no value, map keys that are not strings
    are skipped, as the real matcher documents. */
#ifndef PATTERN_REF_H_INCLUDED
#define PATTERN_REF_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pattern_ref_t pattern_ref_t;
typedef struct pattern_ref_event_t pattern_ref_event_t;

//  Parse and expand a (valid) pattern; NULL with a reason in err when the
//  text is not a JSON object or the pattern exceeds the reference's limits.
pattern_ref_t *pattern_ref_new (const char *json, size_t len, char *err, size_t errlen);
void pattern_ref_destroy (pattern_ref_t **self_p);

//  A flattened event, reusable: load one event after the other.
pattern_ref_event_t *pattern_ref_event_new (void);
void pattern_ref_event_destroy (pattern_ref_event_t **self_p);

//  Flatten event (a msgpack map; it must stay alive while the event is
//  used). 0 on success, -1 when it is not a map or exceeds the limits
//  (paths deeper than 16 keys, more than 16 nested arrays).
int pattern_ref_event_load (pattern_ref_event_t *self, const msgpack_object *event);

//  Does the pattern match the loaded event?
bool pattern_ref_match (const pattern_ref_t *pattern, const pattern_ref_event_t *event);

#endif
