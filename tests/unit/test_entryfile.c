/*  test_entryfile.c - the producer's --file reader: JSON lines to msgpack
    PutEvents entries, and clear per-line rejections. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "entryfile.h"
#include "event.h"

typedef struct {
    char path [64];
    zb_entryfile_t *file;
    msgpack_sbuffer out;
    msgpack_zone zone;
    msgpack_object entry;
    zb_entryinfo_t info;
    char err [600];
} fixture_t;

static fixture_t *
s_open (const char *text)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    strcpy (f->path, "/tmp/test_entryfile_XXXXXX");
    int fd = mkstemp (f->path);
    assert_true (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fputs (text, file);
    fclose (file);
    f->file = zb_entryfile_open (f->path, f->err, sizeof f->err);
    assert_non_null (f->file);
    msgpack_sbuffer_init (&f->out);
    msgpack_zone_init (&f->zone, 1024);
    return f;
}

static void
s_close (fixture_t *f)
{
    zb_entryfile_destroy (&f->file);
    assert_null (f->file);
    unlink (f->path);
    msgpack_sbuffer_destroy (&f->out);
    msgpack_zone_destroy (&f->zone);
    free (f);
}

//  Next line must be an entry; unpacks it into f->entry
static void
s_expect_entry (fixture_t *f, size_t line)
{
    msgpack_sbuffer_clear (&f->out);
    int rc = zb_entryfile_next (f->file, &f->out, &f->info, f->err, sizeof f->err);
    if (rc != 1)
        fail_msg ("line %zu: expected an entry, got %d (%s)", line, rc, f->err);
    assert_int_equal (f->info.line, line);
    size_t offset = 0;
    msgpack_zone_clear (&f->zone);
    assert_int_equal (msgpack_unpack (f->out.data, f->out.size, &offset, &f->zone, &f->entry),
                      MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (f->entry.type, MSGPACK_OBJECT_MAP);
}

static void
s_expect_rejected (fixture_t *f, size_t line, const char *reason)
{
    size_t before = f->out.size;
    int rc = zb_entryfile_next (f->file, &f->out, &f->info, f->err, sizeof f->err);
    if (rc != -1)
        fail_msg ("line %zu: expected a rejection, got %d", line, rc);
    assert_int_equal (f->info.line, line);
    assert_int_equal (f->out.size, before);     //  nothing half-packed left behind
    char prefix [32];
    snprintf (prefix, sizeof prefix, "line %zu: ", line);
    if (strncmp (f->err, prefix, strlen (prefix)) != 0 || !strstr (f->err, reason))
        fail_msg ("'%s' is not '%s...%s'", f->err, prefix, reason);
}

static void
s_expect_end (fixture_t *f)
{
    assert_int_equal (zb_entryfile_next (f->file, &f->out, &f->info, f->err, sizeof f->err), 0);
    assert_int_equal (zb_entryfile_next (f->file, &f->out, &f->info, f->err, sizeof f->err), 0);
}

static void
test_putevents_and_envelope_spellings (void **state)
{
    (void) state;
    fixture_t *f = s_open (
        "{\"Source\":\"s\",\"DetailType\":\"sales-events\",\"Detail\":\"{\\\"n\\\":1,\\\"x\\\":[true,null]}\"}\n"
        "\n"
        "   \r\n"
        "{\"time\":\"2026-11-26T18:15:01+01:00\",\"resources\":[\"r1\",\"r2\"],\"detail\":{\"n\":2},"
        "\"detail-type\":\"t\",\"source\":\"s\"}\r\n"
        "{\"version\":\"0\",\"id\":\"x\",\"detail-type\":\"t\",\"source\":\"s\",\"account\":\"1\","
        "\"time\":\"2026-11-26T17:15:01Z\",\"region\":\"r\",\"resources\":[],\"detail\":{}}\n"
        "{\"DetailType\":\"t\",\"Detail\":{}}");    //  no newline at the end; no Source
    s_expect_entry (f, 1);
    const msgpack_object *e = &f->entry;
    assert_int_equal (e->via.map.size, 3);
    assert_true (zb_str_eq (&e->via.map.ptr [0].key, "source"));
    assert_true (zb_str_eq (&e->via.map.ptr [1].key, "detail-type"));
    assert_true (zb_str_eq (&e->via.map.ptr [2].key, "detail"));
    assert_true (zb_str_eq (zb_map_get (e, "detail-type"), "sales-events"));
    assert_int_equal (f->info.detail_type.len, 12);
    assert_memory_equal (f->info.detail_type.ptr, "sales-events", 12);
    //  Detail given as JSON text is sent as a map
    const msgpack_object *detail = zb_map_get (e, "detail");
    assert_int_equal (detail->type, MSGPACK_OBJECT_MAP);
    assert_int_equal (zb_map_get (detail, "n")->via.u64, 1);
    assert_int_equal (zb_map_get (detail, "x")->type, MSGPACK_OBJECT_ARRAY);
    zb_entry_t parsed;
    assert_int_equal (zb_entry_parse (e, &parsed, f->err, sizeof f->err), ZB_OK);

    s_expect_entry (f, 4);                      //  blank lines 2 and 3 skipped
    e = &f->entry;
    assert_int_equal (e->via.map.size, 5);      //  wire key order, whatever the line's
    const char *order [] = { "source", "detail-type", "detail", "resources", "time" };
    for (int i = 0; i < 5; i++)
        assert_true (zb_str_eq (&e->via.map.ptr [i].key, order [i]));
    assert_true (zb_str_eq (zb_map_get (e, "time"), "2026-11-26T18:15:01+01:00"));
    assert_int_equal (zb_map_get (e, "resources")->via.array.size, 2);
    assert_int_equal (zb_entry_parse (e, &parsed, f->err, sizeof f->err), ZB_OK);

    s_expect_entry (f, 5);                      //  consumer output: broker-set keys dropped
    e = &f->entry;
    assert_int_equal (e->via.map.size, 5);
    assert_null (zb_map_get (e, "id"));
    assert_null (zb_map_get (e, "version"));
    assert_null (zb_map_get (e, "account"));
    assert_null (zb_map_get (e, "region"));
    assert_int_equal (zb_entry_parse (e, &parsed, f->err, sizeof f->err), ZB_OK);

    s_expect_entry (f, 6);                      //  a missing Source is the broker's to reject
    assert_int_equal (f->entry.via.map.size, 2);
    assert_null (zb_map_get (&f->entry, "source"));
    s_expect_end (f);
    s_close (f);
}

static void
test_bad_lines_are_rejected_with_a_reason (void **state)
{
    (void) state;
    fixture_t *f = s_open (
        "{not json\n"
        "[1,2]\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"[1]\"}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"{oops\"}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":5}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{},\"Colour\":1,\"Size\":2}\n"
        "{\"Source\":7,\"DetailType\":\"t\",\"Detail\":{}}\n"
        "{\"Source\":\"s\",\"DetailType\":[],\"Detail\":{}}\n"
        "{\"Source\":\"s\",\"source\":\"s\",\"DetailType\":\"t\",\"Detail\":{}}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{},\"Resources\":[\"a\",1]}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{},\"Resources\":\"a\"}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{},\"Time\":1}\n"
        "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{\"ok\":true}}\n");
    s_expect_rejected (f, 1, "not valid JSON");
    s_expect_rejected (f, 2, "not a JSON object");
    s_expect_rejected (f, 3, "Detail is not a JSON object");
    s_expect_rejected (f, 4, "Detail is not valid JSON");
    s_expect_rejected (f, 5, "Detail is not a JSON object");
    s_expect_rejected (f, 6, "unknown keys \"Colour\", \"Size\"");
    s_expect_rejected (f, 7, "Source is not a string");
    s_expect_rejected (f, 8, "DetailType is not a string");
    s_expect_rejected (f, 9, "Source given twice");
    s_expect_rejected (f, 10, "Resources is not an array of strings");
    s_expect_rejected (f, 11, "Resources is not an array of strings");
    s_expect_rejected (f, 12, "Time is not a string");
    s_expect_entry (f, 13);                     //  the good lines still come through
    s_expect_end (f);
    s_close (f);
}

static void
test_overlong_line (void **state)
{
    (void) state;
    size_t big = ZB_ENTRYFILE_MAX_LINE + 10;
    char *text = (char *) malloc (big + 200);
    strcpy (text, "{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{\"pad\":\"");
    size_t len = strlen (text);
    memset (text + len, 'x', big);
    strcpy (text + len + big, "\"}}\n{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":{}}\n");
    fixture_t *f = s_open (text);
    free (text);
    s_expect_rejected (f, 1, "longer than");
    s_expect_entry (f, 2);
    s_expect_end (f);
    s_close (f);
}

static void
test_missing_file (void **state)
{
    (void) state;
    char err [256] = "";
    zb_entryfile_t *file = zb_entryfile_open ("/nonexistent/entries.jsonl", err, sizeof err);
    assert_null (file);
    assert_non_null (strstr (err, "/nonexistent/entries.jsonl"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_putevents_and_envelope_spellings),
        cmocka_unit_test (test_bad_lines_are_rejected_with_a_reason),
        cmocka_unit_test (test_overlong_line),
        cmocka_unit_test (test_missing_file),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
