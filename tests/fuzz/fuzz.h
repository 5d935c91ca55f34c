/*  fuzz.h - what the libFuzzer targets share: invariant checks that stop the
    run (__builtin_trap: libFuzzer saves the input as a crash) and the check
    that an error message is fit to send to a client.

    Each fuzz_*.c defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize
    when it needs set-up done once). Build and run: see tests/fuzz/meson.build. */
#ifndef ZB_FUZZ_H_INCLUDED
#define ZB_FUZZ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Stop with a message when an invariant does not hold. Always give a
//  message (format and arguments) after the condition.
#define FUZZ_CHECK(cond, ...)                                               \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "fuzz invariant failed at %s:%d: %s: ",        \
                     __FILE__, __LINE__, #cond);                            \
            fprintf (stderr, __VA_ARGS__);                                  \
            fputc ('\n', stderr);                                           \
            __builtin_trap ();                                              \
        }                                                                   \
    } while (0)

//  True when err (a buffer of errlen bytes) holds a non-empty NUL-terminated
//  message that is one line of valid UTF-8, as event.h promises for entry
//  errors and paths: no C0 control character (newline included). DEL and C1
//  characters (U+0080..U+009F) are not checked: zb_path_key and
//  zb_json_parse's "duplicate key" message let them through from keys.
static inline bool
fuzz_message_ok (const char *err, size_t errlen)
{
    const char *end = (const char *) memchr (err, 0, errlen);
    if (!end || end == err)
        return false;
    size_t len = (size_t) (end - err);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) err [i] < 0x20)
            return false;
    return zb_utf8_valid (err, len);
}

//  True when the invariant id is a known finding to tolerate: listed in
//  ZB_FUZZ_KNOWN (space separated), which run.sh sets from known-findings
//  while fuzzing and never when replaying regressions.
static inline bool
fuzz_known (const char *id)
{
    const char *known = getenv ("ZB_FUZZ_KNOWN");
    size_t len = strlen (id);
    for (const char *p = known; p && (p = strstr (p, id)); p += len)
        if ((p == known || p [-1] == ' ') && (p [len] == 0 || p [len] == ' '))
            return true;
    return false;
}

#endif
