/*  fuzz_rfc3339.c - event times (common/rfc3339.c): zb_time_normalize, the
    broker's check and normalization of every entry's "time" and of REPLAY's
    "from-time".

    Invariants (a violation traps):
    - a normalized time is "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", shorter than
      ZB_TIME_MAX and NUL-terminated;
    - normalizing is idempotent: normalize (normalize (x)) == normalize (x);
    - it keeps the instant: zb_time_parse gives the same seconds for the
      input and for its normal form, and the fraction digits as given;
    - without a fraction, the normal form is what zb_time_format writes for
      those seconds. */

#include <stdlib.h>

#include "fuzz.h"
#include "rfc3339.h"

static bool
s_shape_ok (const char *t, int len)
{
    static const char shape [] = "dddd-dd-ddTdd:dd:dd";
    if (len < 20 || t [len - 1] != 'Z')
        return false;
    for (int i = 0; i < 19; i++)
        if (shape [i] == 'd' ? (t [i] < '0' || t [i] > '9') : t [i] != shape [i])
            return false;
    if (len == 20)
        return true;
    if (t [19] != '.' || len < 22 || len > 30)
        return false;
    for (int i = 20; i < len - 1; i++)
        if (t [i] < '0' || t [i] > '9')
            return false;
    return true;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    char once [ZB_TIME_MAX + 8];
    memset (once, 0x55, sizeof once);
    int len = zb_time_normalize (text, size, once);
    int64_t seconds_in = 0;
    int parsed = zb_time_parse (text, size, &seconds_in);
    if (len < 0) {
        FUZZ_CHECK (len == -1, "zb_time_normalize returned %d", len);
        return 0;
    }
    FUZZ_CHECK (len < ZB_TIME_MAX && once [len] == 0, "normal form of %d bytes not terminated", len);
    FUZZ_CHECK (s_shape_ok (once, len), "not a normal form: %s", once);
    FUZZ_CHECK (parsed == 0, "normalize accepts what zb_time_parse refuses: %s", once);

    char twice [ZB_TIME_MAX];
    int len2 = zb_time_normalize (once, (size_t) len, twice);
    FUZZ_CHECK (len2 == len && memcmp (once, twice, (size_t) len) == 0,
                "not idempotent: %s -> %.*s", once, len2 > 0 ? len2 : 0, twice);

    int64_t seconds_out = 0;
    FUZZ_CHECK (zb_time_parse (once, (size_t) len, &seconds_out) == 0 && seconds_out == seconds_in,
                "instant changed: %lld -> %lld (%s)", (long long) seconds_in,
                (long long) seconds_out, once);

    //  The fraction digits, exactly as given
    const char *dot_in = size > 19 && text [19] == '.' ? text + 19 : NULL;
    const char *dot_out = len > 20 && once [19] == '.' ? once + 19 : NULL;
    FUZZ_CHECK ((dot_in == NULL) == (dot_out == NULL), "fraction appeared or vanished: %s", once);
    if (dot_out) {
        size_t digits = (size_t) (len - 21);
        FUZZ_CHECK (memcmp (dot_in + 1, dot_out + 1, digits) == 0
                    && (text [20 + digits] < '0' || text [20 + digits] > '9'),
                    "fraction digits changed: %s", once);
    }
    else {
        char formatted [ZB_TIME_MAX];
        int flen = zb_time_format ((time_t) seconds_out, formatted);
        FUZZ_CHECK (flen == len && memcmp (formatted, once, (size_t) len) == 0,
                    "zb_time_format gives %s for %s", formatted, once);
    }
    return 0;
}
