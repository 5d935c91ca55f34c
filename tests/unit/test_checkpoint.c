/*  test_checkpoint.c - the consumer's checkpoint file: strict parsing, crash-safe
    save (no temp file left, the old content replaced whole), corruption
    reported (never taken for "no checkpoint"), one owner at a time. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "checkpoint.h"

typedef struct {
    char dir [64];
    char path [128];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    snprintf (f->dir, sizeof f->dir, "/tmp/zb-test-checkpoint-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->path, sizeof f->path, "%s/c1.checkpoint", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal (system (cmd), 0);
    free (f);
    return 0;
}

static void
s_write (const char *path, const char *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    fclose (file);
}

static void
s_expect_parse (const char *text, uint64_t want)
{
    uint64_t position = 12345;
    char err [200] = "";
    if (zb_checkpoint_parse (text, strlen (text), &position, err, sizeof err) != 0)
        fail_msg ("'%s' did not parse: %s", text, err);
    assert_true (position == want);
}

static void
s_expect_bad (const char *data, size_t size, const char *reason)
{
    uint64_t position = 777;
    char err [200] = "";
    assert_int_equal (zb_checkpoint_parse (data, size, &position, err, sizeof err), -1);
    assert_true (position == 777);
    if (!strstr (err, reason))
        fail_msg ("error '%s' does not say '%s'", err, reason);
}

//  A literal with its exact size (NULs inside included)
#define BAD(lit, reason) s_expect_bad ((lit), sizeof (lit) - 1, (reason))

static void
test_names (void **state)
{
    (void) state;
    assert_true (zb_checkpoint_name_valid ("zb-dispatch"));
    assert_true (zb_checkpoint_name_valid ("audit_2.v1"));
    assert_false (zb_checkpoint_name_valid (""));
    assert_false (zb_checkpoint_name_valid (".hidden"));
    assert_false (zb_checkpoint_name_valid ("a/b"));
    assert_false (zb_checkpoint_name_valid ("../x"));
    assert_false (zb_checkpoint_name_valid ("sp ace"));
    char long_name [ZB_CHECKPOINT_NAME_MAX + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name [ZB_CHECKPOINT_NAME_MAX + 1] = '\0';
    assert_false (zb_checkpoint_name_valid (long_name));
    long_name [ZB_CHECKPOINT_NAME_MAX] = '\0';
    assert_true (zb_checkpoint_name_valid (long_name));
}

static void
test_parse (void **state)
{
    (void) state;
    s_expect_parse ("zbridge-checkpoint 1\nposition 0\n", 0);
    s_expect_parse ("zbridge-checkpoint 1\nposition 42\n", 42);
    s_expect_parse ("zbridge-checkpoint 1\nposition 18446744073709551615\n", UINT64_MAX);

    BAD ("", "empty");
    BAD ("zbridge-checkpoint 2\nposition 1\n", "first line");
    BAD ("garbage", "first line");
    BAD ("zbridge-checkpoint 1\n", "second line");
    BAD ("zbridge-checkpoint 1\nposition \n", "not a decimal");
    BAD ("zbridge-checkpoint 1\nposition -1\n", "not a decimal");
    BAD ("zbridge-checkpoint 1\nposition 007\n", "not a decimal");
    BAD ("zbridge-checkpoint 1\nposition 18446744073709551616\n", "larger than");
    BAD ("zbridge-checkpoint 1\nposition 12", "unexpected bytes");
    BAD ("zbridge-checkpoint 1\nposition 12\nextra\n", "unexpected bytes");
    BAD ("zbridge-checkpoint 1\nposition 12 \n", "unexpected bytes");
    //  A NUL inside: a torn write filled with zeros
    BAD ("zbridge-checkpoint 1\nposition 1\0\0\n", "unexpected bytes");
}

static void
test_save_and_load (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [512];
    zb_checkpoint_t *cp = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_non_null (cp);
    assert_string_equal (zb_checkpoint_path (cp), f->path);
    uint64_t position = 99;
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), 0);
    assert_true (position == 99);          //  untouched: no checkpoint yet

    assert_int_equal (zb_checkpoint_save (cp, 1234, err, sizeof err), 0);
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), 1);
    assert_true (position == 1234);
    assert_int_equal (zb_checkpoint_save (cp, 7, err, sizeof err), 0);
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), 1);
    assert_true (position == 7);

    //  The file is exactly the documented text; no temp file is left behind
    FILE *file = fopen (f->path, "rb");
    assert_non_null (file);
    char text [64] = "";
    size_t n = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    assert_int_equal (n, strlen ("zbridge-checkpoint 1\nposition 7\n"));
    assert_string_equal (text, "zbridge-checkpoint 1\nposition 7\n");
    char tmp [160];
    snprintf (tmp, sizeof tmp, "%s.tmp", f->path);
    assert_int_equal (access (tmp, F_OK), -1);
    zb_checkpoint_destroy (&cp);
    assert_null (cp);

    //  A new owner reads what the old one saved
    cp = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_non_null (cp);
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), 1);
    assert_true (position == 7);
    zb_checkpoint_destroy (&cp);
}

static void
test_corrupt_is_an_error (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [512];
    zb_checkpoint_t *cp = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_non_null (cp);
    uint64_t position = 5;
    const char *cases [] = {
        "", "zbridge-checkpoint 1\nposition x\n", "{\"position\": 3}\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_write (f->path, cases [i], strlen (cases [i]));
        err [0] = '\0';
        assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), -1);
        assert_true (position == 5);
        assert_non_null (strstr (err, "corrupt"));
        assert_non_null (strstr (err, f->path));
    }
    //  A huge file is corrupt too (and not read whole)
    char *big = (char *) malloc (100000);
    memset (big, '1', 100000);
    memcpy (big, "zbridge-checkpoint 1\nposition ", 30);
    s_write (f->path, big, 100000);
    free (big);
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), -1);
    assert_non_null (strstr (err, "larger than"));

    //  Saving over a corrupt file repairs it
    assert_int_equal (zb_checkpoint_save (cp, 8, err, sizeof err), 0);
    assert_int_equal (zb_checkpoint_load (cp, &position, err, sizeof err), 1);
    assert_true (position == 8);
    zb_checkpoint_destroy (&cp);
}

static void
test_one_owner_at_a_time (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [512];
    zb_checkpoint_t *first = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_non_null (first);
    err [0] = '\0';
    zb_checkpoint_t *second = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_null (second);
    assert_non_null (strstr (err, "in use by another process"));
    //  Another name is another checkpoint
    zb_checkpoint_t *other = zb_checkpoint_open (f->dir, "c2", err, sizeof err);
    assert_non_null (other);
    zb_checkpoint_destroy (&other);
    zb_checkpoint_destroy (&first);
    second = zb_checkpoint_open (f->dir, "c1", err, sizeof err);
    assert_non_null (second);
    zb_checkpoint_destroy (&second);
}

static void
test_directory (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [512];
    //  A missing directory is created (one level)
    char sub [128];
    snprintf (sub, sizeof sub, "%s/state", f->dir);
    zb_checkpoint_t *cp = zb_checkpoint_open (sub, "x", err, sizeof err);
    assert_non_null (cp);
    struct stat st;
    assert_int_equal (stat (sub, &st), 0);
    assert_true (S_ISDIR (st.st_mode));
    zb_checkpoint_destroy (&cp);

    //  Two missing levels, or a file in the way: a clear error
    snprintf (sub, sizeof sub, "%s/no/such", f->dir);
    err [0] = '\0';
    assert_null (zb_checkpoint_open (sub, "x", err, sizeof err));
    assert_non_null (strstr (err, sub));
    snprintf (sub, sizeof sub, "%s/file", f->dir);
    s_write (sub, "x", 1);
    err [0] = '\0';
    assert_null (zb_checkpoint_open (sub, "x", err, sizeof err));
    assert_non_null (strstr (err, sub));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_parse),
        cmocka_unit_test_setup_teardown (test_save_and_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_is_an_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_owner_at_a_time, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_directory, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
