/*  test_uuid.c - UUID v4 text: format, version/variant bits, uniqueness. */

#include <assert.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "uuid.h"

//  Checks the canonical lowercase form and the v4 / RFC 4122 variant bits.
static void
s_assert_v4 (const char *id)
{
    assert_int_equal (strlen (id), ZB_UUID_LEN);
    for (int i = 0; i < ZB_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal (id [i], '-');
        else
        if (!((id [i] >= '0' && id [i] <= '9') || (id [i] >= 'a' && id [i] <= 'f')))
            fail_msg ("'%s': byte %d is not a lowercase hex digit", id, i);
    }
    assert_int_equal (id [14], '4');
    assert_non_null (strchr ("89ab", id [19]));
}

static void
test_format_v4_of_known_bytes (void **state)
{
    (void) state;
    const uint8_t bytes [16] = {
        0x5f, 0x0c, 0x6c, 0x1e, 0x2b, 0x1a, 0x4d, 0x7e,
        0x9a, 0x53, 0x3b, 0x0e, 0x7d, 0x1c, 0x9f, 0x21
    };
    char out [ZB_UUID_LEN + 1];
    zb_uuid_format_v4 (bytes, out);
    assert_string_equal (out, "5f0c6c1e-2b1a-4d7e-9a53-3b0e7d1c9f21");
}

static void
test_format_v4_sets_version_and_variant_bits (void **state)
{
    (void) state;
    char out [ZB_UUID_LEN + 1];
    uint8_t ones [16], zeros [16];
    memset (ones, 0xFF, sizeof (ones));
    memset (zeros, 0, sizeof (zeros));
    zb_uuid_format_v4 (ones, out);
    assert_string_equal (out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    zb_uuid_format_v4 (zeros, out);
    assert_string_equal (out, "00000000-0000-4000-8000-000000000000");
}

//  Against a reference made with printf: every byte value in every position
//  (the word-at-a-time digits must carry no nibble into its neighbour)
static void
test_format_v4_matches_printf (void **state)
{
    (void) state;
    for (int pos = 0; pos < 16; pos++) {
        for (int v = 0; v < 256; v++) {
            uint8_t b [16];
            for (int i = 0; i < 16; i++)
                b [i] = (uint8_t) (v * 31 + i * 17 + pos);
            b [pos] = (uint8_t) v;
            char out [ZB_UUID_LEN + 1], want [ZB_UUID_LEN + 8];
            zb_uuid_format_v4 (b, out);
            uint8_t c [16];
            memcpy (c, b, 16);
            c [6] = (uint8_t) ((c [6] & 0x0F) | 0x40);
            c [8] = (uint8_t) ((c [8] & 0x3F) | 0x80);
            snprintf (want, sizeof want,
                      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                      c [0], c [1], c [2], c [3], c [4], c [5], c [6], c [7],
                      c [8], c [9], c [10], c [11], c [12], c [13], c [14], c [15]);
            assert_string_equal (out, want);
        }
    }
}

static void
test_generator_gives_canonical_v4 (void **state)
{
    (void) state;
    zb_uuidgen_t *gen = zb_uuidgen_new ();
    assert_non_null (gen);
    char out [ZB_UUID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        memset (out, 'X', sizeof (out));
        zb_uuidgen_next (gen, out);
        s_assert_v4 (out);
    }
    zb_uuidgen_destroy (&gen);
    assert_null (gen);
    zb_uuidgen_destroy (&gen);          //  destroying nothing is harmless
}

static int
s_compare (const void *a, const void *b)
{
    return memcmp (a, b, ZB_UUID_LEN);
}

static void
test_100k_ids_are_unique_and_random_digits_vary (void **state)
{
    (void) state;
    enum { COUNT = 100000 };
    char (*ids) [ZB_UUID_LEN + 1] = malloc ((size_t) COUNT * sizeof (*ids));
    assert_non_null (ids);
    zb_uuidgen_t *gen = zb_uuidgen_new ();
    assert_non_null (gen);
    //  seen [position][digit]: every random digit position must show all 16 values
    unsigned seen [ZB_UUID_LEN][16];
    memset (seen, 0, sizeof (seen));
    for (int i = 0; i < COUNT; i++) {
        zb_uuidgen_next (gen, ids [i]);
        s_assert_v4 (ids [i]);
        for (int p = 0; p < ZB_UUID_LEN; p++) {
            char c = ids [i][p];
            if (c != '-')
                seen [p][c <= '9'? c - '0': c - 'a' + 10]++;
        }
    }
    zb_uuidgen_destroy (&gen);

    qsort (ids, COUNT, sizeof (*ids), s_compare);
    for (int i = 1; i < COUNT; i++)
        if (memcmp (ids [i], ids [i - 1], ZB_UUID_LEN) == 0)
            fail_msg ("duplicate id %s", ids [i]);
    free (ids);

    for (int p = 0; p < ZB_UUID_LEN; p++) {
        if (p == 8 || p == 13 || p == 18 || p == 23 || p == 14)
            continue;
        int digits = p == 19? 4: 16;    //  variant digit: 8, 9, a, b only
        int first = p == 19? 8: 0;
        for (int d = first; d < first + digits; d++) {
            //  Expected 100000/16 = 6250 (25000 for the variant digit);
            //  a fair source is never below half of that in practice
            unsigned expected = COUNT / (unsigned) digits;
            if (seen [p][d] < expected / 2)
                fail_msg ("position %d digit %x seen %u times", p, d, seen [p][d]);
        }
    }
}

static void
test_two_generators_do_not_repeat_each_other (void **state)
{
    (void) state;
    zb_uuidgen_t *a = zb_uuidgen_new ();
    zb_uuidgen_t *b = zb_uuidgen_new ();
    assert_non_null (a);
    assert_non_null (b);
    char ida [ZB_UUID_LEN + 1], idb [ZB_UUID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        zb_uuidgen_next (a, ida);
        zb_uuidgen_next (b, idb);
        assert_string_not_equal (ida, idb);
    }
    zb_uuidgen_destroy (&a);
    zb_uuidgen_destroy (&b);
}

//  --------------------------------------------------------------------------
//  A getrandom() of our own: the executable's definition takes precedence over
//  libc's, also for the call inside uuid.c, so the tests can script what the
//  kernel answers (EINTR, short reads, ENOSYS) and count the calls.

static struct {
    bool scripted;          //  false: pass every call to the kernel
    int script [8];         //  per call: -errno, or how many bytes to give (0: all)
    int steps;
    int step;
    int calls;              //  calls made (scripted or not)
    size_t given;           //  bytes handed out by scripted calls
} s_fake;

ssize_t
getrandom (void *buf, size_t len, unsigned int flags)
{
    s_fake.calls++;
    if (!s_fake.scripted || s_fake.step >= s_fake.steps)
        return syscall (SYS_getrandom, buf, len, flags);
    int action = s_fake.script [s_fake.step++];
    if (action < 0) {
        errno = -action;
        return -1;
    }
    size_t n = action == 0 || (size_t) action > len? len: (size_t) action;
    //  Predictable bytes: the running count of bytes given
    for (size_t i = 0; i < n; i++)
        ((uint8_t *) buf) [i] = (uint8_t) (s_fake.given + i);
    s_fake.given += n;
    return (ssize_t) n;
}

static void
s_fake_script (const int *script, int steps)
{
    memset (&s_fake, 0, sizeof (s_fake));
    s_fake.scripted = true;
    memcpy (s_fake.script, script, (size_t) steps * sizeof (int));
    s_fake.steps = steps;
}

//  One key from the kernel per 256 blocks of 4 KiB (65,536 ids)
static void
test_one_getrandom_call_per_65536_ids (void **state)
{
    (void) state;
    memset (&s_fake, 0, sizeof (s_fake));
    zb_uuidgen_t *gen = zb_uuidgen_new ();
    assert_non_null (gen);
    assert_int_equal (s_fake.calls, 0);          //  nothing drawn until needed
    char out [ZB_UUID_LEN + 1];
    for (int i = 0; i < 65536; i++)
        zb_uuidgen_next (gen, out);
    assert_int_equal (s_fake.calls, 1);
    zb_uuidgen_next (gen, out);
    assert_int_equal (s_fake.calls, 2);
    zb_uuidgen_destroy (&gen);
}

//  The id of bytes [at, at + 16) of ChaCha20 (IETF, nonce 0) under key
static void
s_chacha_id (const uint8_t key [32], size_t at, char out [ZB_UUID_LEN + 1])
{
    static uint8_t stream [4096 + 32];
    static const uint8_t nonce [12] = { 0 };
    crypto_stream_chacha20_ietf (stream, sizeof stream, nonce, key);
    zb_uuid_format_v4 (stream + at, out);
}

static void
test_eintr_and_short_reads_are_retried (void **state)
{
    (void) state;
    const int script [] = { -EINTR, 10, -EINTR, 3, 0 };
    s_fake_script (script, 5);
    zb_uuidgen_t *gen = zb_uuidgen_new ();
    assert_non_null (gen);
    char out [ZB_UUID_LEN + 1], want [ZB_UUID_LEN + 1];
    zb_uuidgen_next (gen, out);
    assert_int_equal (s_fake.calls, 5);
    assert_int_equal (s_fake.given, 32);
    //  The key is bytes 0..31 in order, whatever the pieces were; the ids
    //  are ChaCha20 under it
    uint8_t key [32];
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) i;
    s_chacha_id (key, 0, want);
    assert_string_equal (out, want);
    for (int i = 1; i < 256; i++) {
        zb_uuidgen_next (gen, out);
        s_assert_v4 (out);
        if (i == 255) {
            s_chacha_id (key, 255 * 16, want);
            assert_string_equal (out, want);
        }
    }
    //  Fast key erasure: the 32 bytes after the first block key the second
    uint8_t stream [4096 + 32];
    static const uint8_t nonce [12] = { 0 };
    crypto_stream_chacha20_ietf (stream, sizeof stream, nonce, key);
    zb_uuidgen_next (gen, out);
    s_chacha_id (stream + 4096, 0, want);
    assert_string_equal (out, want);
    assert_int_equal (s_fake.calls, 5);
    zb_uuidgen_destroy (&gen);
    s_fake.scripted = false;
}

static void
test_kernel_without_getrandom_falls_back_to_urandom (void **state)
{
    (void) state;
    const int script [] = { -ENOSYS };
    s_fake_script (script, 1);
    zb_uuidgen_t *gen = zb_uuidgen_new ();
    assert_non_null (gen);
    char a [ZB_UUID_LEN + 1], b [ZB_UUID_LEN + 1];
    zb_uuidgen_next (gen, a);
    zb_uuidgen_next (gen, b);
    s_assert_v4 (a);
    s_assert_v4 (b);
    assert_string_not_equal (a, b);
    assert_int_equal (s_fake.calls, 1);
    assert_int_equal (s_fake.given, 0);          //  the bytes came from /dev/urandom
    zb_uuidgen_destroy (&gen);
    s_fake.scripted = false;
}

int
main (void)
{
    //  libsodium starts once per process (it may read random bytes then):
    //  before the tests count getrandom's calls
    if (sodium_init () < 0)
        return 1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_format_v4_of_known_bytes),
        cmocka_unit_test (test_format_v4_sets_version_and_variant_bits),
        cmocka_unit_test (test_format_v4_matches_printf),
        cmocka_unit_test (test_generator_gives_canonical_v4),
        cmocka_unit_test (test_100k_ids_are_unique_and_random_digits_vary),
        cmocka_unit_test (test_two_generators_do_not_repeat_each_other),
        cmocka_unit_test (test_one_getrandom_call_per_65536_ids),
        cmocka_unit_test (test_eintr_and_short_reads_are_retried),
        cmocka_unit_test (test_kernel_without_getrandom_falls_back_to_urandom),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
