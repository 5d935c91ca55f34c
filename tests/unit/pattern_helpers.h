/*  pattern_helpers.h - what the test_pattern*.c files share: events and
    patterns written as JSON text, matched through the real API. */
#ifndef PATTERN_HELPERS_H_INCLUDED
#define PATTERN_HELPERS_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec.h"
#include "pattern.h"

//  An event (or any JSON value) packed and unpacked as msgpack.
typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_unpacked result;
} t_event_t;

static inline void
t_event_init (t_event_t *ev, const char *json)
{
    char err [256];
    json_object *obj = zb_json_parse (json, strlen (json), err, sizeof (err));
    if (!obj)
        fail_msg ("bad test event %s: %s", json, err);
    msgpack_sbuffer_init (&ev->sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &ev->sbuf, msgpack_sbuffer_write);
    if (zb_json_to_msgpack (obj, &pk, err, sizeof (err)))
        fail_msg ("cannot pack %s: %s", json, err);
    json_object_put (obj);
    msgpack_unpacked_init (&ev->result);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&ev->result, ev->sbuf.data, ev->sbuf.size, &off),
                      MSGPACK_UNPACK_SUCCESS);
}

static inline void
t_event_fini (t_event_t *ev)
{
    msgpack_unpacked_destroy (&ev->result);
    msgpack_sbuffer_destroy (&ev->sbuf);
}

//  Does pattern (which must compile) match event?
static inline bool
t_matches (const char *pattern, const char *event)
{
    zb_patterns_t *set = zb_patterns_new ();
    assert_non_null (set);
    char err [512];
    if (zb_patterns_add (set, "p", pattern, strlen (pattern), err, sizeof (err)))
        fail_msg ("pattern %s rejected: %s", pattern, err);
    t_event_t ev;
    t_event_init (&ev, event);
    const char *names [4];
    size_t n = zb_patterns_match (set, &ev.result.data, names, 4);
    assert_true (n <= 1);
    if (n == 1)
        assert_string_equal (names [0], "p");
    //  The packed walk agrees
    size_t packed = zb_patterns_match_packed (set, ev.sbuf.data, ev.sbuf.size, names, 4);
    if (packed != n)
        fail_msg ("zb_patterns_match says %zu, zb_patterns_match_packed %zu:\n  pattern %s\n  event   %s",
                  n, packed, pattern, event);
    t_event_fini (&ev);
    zb_patterns_destroy (&set);
    return n == 1;
}

#define T_MATCH(pattern, event) do { \
    if (!t_matches ((pattern), (event))) \
        fail_msg ("expected a match:\n  pattern %s\n  event   %s", (pattern), (event)); \
} while (0)

#define T_NO_MATCH(pattern, event) do { \
    if (t_matches ((pattern), (event))) \
        fail_msg ("expected no match:\n  pattern %s\n  event   %s", (pattern), (event)); \
} while (0)

//  The error pattern gets (it must be rejected), in a static buffer.
static inline const char *
t_error (const char *pattern)
{
    static char err [512];
    zb_patterns_t *set = zb_patterns_new ();
    assert_non_null (set);
    err [0] = 0;
    int rc = zb_patterns_add (set, "p", pattern, strlen (pattern), err, sizeof (err));
    assert_int_equal (zb_patterns_size (set), 0);
    zb_patterns_destroy (&set);
    if (rc == 0)
        fail_msg ("pattern %s was accepted", pattern);
    assert_int_equal (rc, -1);
    assert_true (err [0]);
    return err;
}

#define T_REJECT(pattern, message) assert_string_equal (t_error (pattern), (message))

//  Names matched by a whole set, sorted and joined with spaces.
static inline int
t_cmp_str (const void *a, const void *b)
{
    return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static inline const char *
t_match_set (zb_patterns_t *set, const char *event)
{
    static char out [4096];
    t_event_t ev;
    t_event_init (&ev, event);
    const char *names [256], *packed [256];
    size_t n = zb_patterns_match (set, &ev.result.data, names, 256);
    assert_true (n <= 256);
    qsort (names, n, sizeof (char *), t_cmp_str);
    //  The packed walk agrees
    assert_int_equal (zb_patterns_match_packed (set, ev.sbuf.data, ev.sbuf.size, packed, 256), n);
    qsort (packed, n, sizeof (char *), t_cmp_str);
    out [0] = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal (names [i], packed [i]);
        if (i)
            strcat (out, " ");
        strcat (out, names [i]);
    }
    t_event_fini (&ev);
    return out;
}

static inline void
t_add (zb_patterns_t *set, const char *name, const char *pattern)
{
    char err [512];
    if (zb_patterns_add (set, name, pattern, strlen (pattern), err, sizeof (err)))
        fail_msg ("pattern %s rejected: %s", pattern, err);
}

#endif
