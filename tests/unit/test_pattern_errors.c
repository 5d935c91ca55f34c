/*  test_pattern_errors.c - every pattern the matcher rejects, with the exact
    message (naming the place in the pattern), the size limit and the limit
    on $or combinations; and near misses that are valid. */

#include "pattern_helpers.h"

static void
test_not_json_or_not_an_object (void **state)
{
    (void) state;
    T_REJECT ("", "pattern: invalid JSON: line 1 column 1: unexpected end of input");
    T_REJECT ("{\"a\": [1]", "pattern: invalid JSON: line 1 column 10: unexpected end of input");
    T_REJECT ("{\"a\": [1], \"a\": [2]}", "pattern: invalid JSON: line 1 column 12: duplicate key \"a\"");
    T_REJECT ("null", "pattern: invalid JSON: line 1 column 1: null is not accepted as the whole JSON text");
    T_REJECT ("[1]", "pattern: must be a JSON object (got an array)");
    T_REJECT ("\"x\"", "pattern: must be a JSON object (got a string)");
    T_REJECT ("42", "pattern: must be a JSON object (got a number)");
    T_REJECT ("true", "pattern: must be a JSON object (got a boolean)");
    T_REJECT ("{}", "pattern: empty object: name at least one field");
}

static void
test_fields (void **state)
{
    (void) state;
    T_REJECT ("{\"a\": \"x\"}", "a: must be an array of values to match or an object of fields (got a string)");
    T_REJECT ("{\"a\": 1}", "a: must be an array of values to match or an object of fields (got a number)");
    T_REJECT ("{\"a\": null}", "a: must be an array of values to match or an object of fields (got null)");
    T_REJECT ("{\"a\": false}", "a: must be an array of values to match or an object of fields (got a boolean)");
    T_REJECT ("{\"a\": []}", "a: empty array: list at least one value to match");
    T_REJECT ("{\"a\": {}}", "a: empty object: name at least one field");
    T_REJECT ("{\"detail\": {\"b\": []}}", "detail.b: empty array: list at least one value to match");
    T_REJECT ("{\"a\": [[1]]}", "a[0]: a match value cannot be an array");
    T_REJECT ("{\"a\": [1, []]}", "a[1]: a match value cannot be an array");
    T_REJECT ("{\"a\": [{}]}", "a[0]: a match object has exactly one operator (got 0 keys)");
    T_REJECT ("{\"a\": [{\"prefix\": \"a\", \"suffix\": \"b\"}]}",
              "a[0]: a match object has exactly one operator (got 2 keys)");
    T_REJECT ("{\"a\": [{\"contains\": \"x\"}]}",
              "a[0]: unknown operator \"contains\" (known: prefix, suffix, equals-ignore-case, "
              "wildcard, anything-but, numeric, cidr, exists)");
    T_REJECT ("{\"a\": [{\"Prefix\": \"x\"}]}",
              "a[0]: unknown operator \"Prefix\" (known: prefix, suffix, equals-ignore-case, "
              "wildcard, anything-but, numeric, cidr, exists)");
    //  Keys that are not plain names are quoted in the path
    T_REJECT ("{\"a b\": {\"c\": []}}", "[\"a b\"].c: empty array: list at least one value to match");
    //  The first error is reported, valid fields before it do not hide it
    T_REJECT ("{\"ok\": [1], \"detail\": {\"fine\": [{\"prefix\": \"x\"}], \"bad\": [{\"exists\": 1}]}}",
              "detail.bad[0].exists: must be true or false (got a number)");
}

static void
test_string_operators (void **state)
{
    (void) state;
    T_REJECT ("{\"a\": [{\"prefix\": 1}]}",
              "a[0].prefix: must be a string or {\"equals-ignore-case\": string} (got a number)");
    T_REJECT ("{\"a\": [{\"prefix\": [\"x\"]}]}",
              "a[0].prefix: must be a string or {\"equals-ignore-case\": string} (got an array)");
    T_REJECT ("{\"a\": [{\"prefix\": null}]}",
              "a[0].prefix: must be a string or {\"equals-ignore-case\": string} (got null)");
    T_REJECT ("{\"a\": [{\"prefix\": {}}]}",
              "a[0].prefix: must be a string or {\"equals-ignore-case\": string} (got an object with 0 keys)");
    T_REJECT ("{\"a\": [{\"prefix\": {\"other\": \"x\"}}]}",
              "a[0].prefix: must be a string or {\"equals-ignore-case\": string} (got key \"other\")");
    T_REJECT ("{\"a\": [{\"prefix\": {\"equals-ignore-case\": 1}}]}",
              "a[0].prefix.equals-ignore-case: must be a string (got a number)");
    T_REJECT ("{\"a\": [{\"suffix\": true}]}",
              "a[0].suffix: must be a string or {\"equals-ignore-case\": string} (got a boolean)");
    T_REJECT ("{\"a\": [{\"suffix\": {\"equals-ignore-case\": [\"x\"]}}]}",
              "a[0].suffix.equals-ignore-case: must be a string (got an array)");
    T_REJECT ("{\"a\": [{\"equals-ignore-case\": [\"x\"]}]}",
              "a[0].equals-ignore-case: must be a string (got an array)");
    T_REJECT ("{\"a\": [{\"equals-ignore-case\": 5}]}", "a[0].equals-ignore-case: must be a string (got a number)");
}

static void
test_wildcards (void **state)
{
    (void) state;
    T_REJECT ("{\"a\": [{\"wildcard\": 5}]}", "a[0].wildcard: must be a string (got a number)");
    T_REJECT ("{\"a\": [{\"wildcard\": \"a**b\"}]}",
              "a[0].wildcard: consecutive wildcard characters (\"**\") are not allowed");
    T_REJECT ("{\"a\": [{\"wildcard\": \"**\"}]}",
              "a[0].wildcard: consecutive wildcard characters (\"**\") are not allowed");
    T_REJECT ("{\"a\": [{\"wildcard\": \"x***\"}]}",
              "a[0].wildcard: consecutive wildcard characters (\"**\") are not allowed");
    T_REJECT ("{\"a\": [{\"wildcard\": \"a\\\\b\"}]}",
              "a[0].wildcard: invalid escape \"\\b\": only \"\\*\" and \"\\\\\" are allowed");
    T_REJECT ("{\"a\": [{\"wildcard\": \"ab\\\\\"}]}",
              "a[0].wildcard: \"\\\" at the end: escape a backslash as \"\\\\\"");
    //  Valid near misses: an escaped star next to a wildcard, escaped backslashes
    T_MATCH ("{\"a\": [{\"wildcard\": \"\\\\**\"}]}", "{\"a\": \"*x\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*\\\\*\"}]}", "{\"a\": \"x*\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"\\\\\\\\*\"}]}", "{\"a\": \"\\\\x\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*a*\"}]}", "{\"a\": \"bab\"}");
}

static void
test_anything_but (void **state)
{
    (void) state;
    const char *usage = "must be a string, a number, a list of strings or of numbers, "
                        "or an object with one of prefix, suffix, equals-ignore-case, wildcard";
    char expected [512];
    snprintf (expected, sizeof (expected), "a[0].anything-but: %s (got null)", usage);
    T_REJECT ("{\"a\": [{\"anything-but\": null}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].anything-but: %s (got a boolean)", usage);
    T_REJECT ("{\"a\": [{\"anything-but\": true}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].anything-but: %s (got an object with 2 keys)", usage);
    T_REJECT ("{\"a\": [{\"anything-but\": {\"prefix\": \"a\", \"suffix\": \"b\"}}]}", expected);
    T_REJECT ("{\"a\": [{\"anything-but\": []}]}", "a[0].anything-but: empty list: name at least one value");
    T_REJECT ("{\"a\": [{\"anything-but\": [\"a\", 1]}]}",
              "a[0].anything-but[1]: an anything-but list holds only strings or only numbers (got a number)");
    T_REJECT ("{\"a\": [{\"anything-but\": [1, 2, \"a\"]}]}",
              "a[0].anything-but[2]: an anything-but list holds only strings or only numbers (got a string)");
    T_REJECT ("{\"a\": [{\"anything-but\": [null]}]}",
              "a[0].anything-but[0]: an anything-but list holds only strings or only numbers (got null)");
    T_REJECT ("{\"a\": [{\"anything-but\": [true]}]}",
              "a[0].anything-but[0]: an anything-but list holds only strings or only numbers (got a boolean)");
    T_REJECT ("{\"a\": [{\"anything-but\": [[\"x\"]]}]}",
              "a[0].anything-but[0]: an anything-but list holds only strings or only numbers (got an array)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"numeric\": [\">\", 1]}}]}",
              "a[0].anything-but: unknown anything-but operator \"numeric\" "
              "(use prefix, suffix, equals-ignore-case or wildcard)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"exists\": true}}]}",
              "a[0].anything-but: unknown anything-but operator \"exists\" "
              "(use prefix, suffix, equals-ignore-case or wildcard)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"prefix\": 1}}]}",
              "a[0].anything-but.prefix: must be a string or a list of strings (got a number)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"suffix\": null}}]}",
              "a[0].anything-but.suffix: must be a string or a list of strings (got null)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": {}}}]}",
              "a[0].anything-but.equals-ignore-case: must be a string or a list of strings (got an object)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"prefix\": []}}]}",
              "a[0].anything-but.prefix: empty list: name at least one string");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"prefix\": [\"a\", 2]}}]}",
              "a[0].anything-but.prefix[1]: must be a string (got a number)");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"wildcard\": \"a**\"}}]}",
              "a[0].anything-but.wildcard: consecutive wildcard characters (\"**\") are not allowed");
    T_REJECT ("{\"a\": [{\"anything-but\": {\"wildcard\": [\"x\", \"a\\\\q\"]}}]}",
              "a[0].anything-but.wildcard[1]: invalid escape \"\\q\": only \"\\*\" and \"\\\\\" are allowed");
}

static void
test_numeric (void **state)
{
    (void) state;
    const char *usage = "must be [op, number] (op one of =, <, <=, >, >=) or a range "
                        "[\">\" or \">=\", number, \"<\" or \"<=\", number]";
    char expected [512];
    snprintf (expected, sizeof (expected), "a[0].numeric: %s (got a number)", usage);
    T_REJECT ("{\"a\": [{\"numeric\": 5}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].numeric: %s (got an array of 0)", usage);
    T_REJECT ("{\"a\": [{\"numeric\": []}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].numeric: %s (got an array of 1)", usage);
    T_REJECT ("{\"a\": [{\"numeric\": [\">\"]}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].numeric: %s (got an array of 3)", usage);
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 1, \"<\"]}]}", expected);
    snprintf (expected, sizeof (expected), "a[0].numeric: %s (got an array of 6)", usage);
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 1, \"<\", 5, \"<\", 6]}]}", expected);
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", \"1\"]}]}", "a[0].numeric[1]: must be a number (got a string)");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", null]}]}", "a[0].numeric[1]: must be a number (got null)");
    T_REJECT ("{\"a\": [{\"numeric\": [1, \">\"]}]}",
              "a[0].numeric[0]: must be a comparison operator: \"=\", \"<\", \"<=\", \">\" or \">=\" (got a number)");
    T_REJECT ("{\"a\": [{\"numeric\": [\"=>\", 1]}]}",
              "a[0].numeric[0]: unknown comparison operator \"=>\" (use =, <, <=, >, >=)");
    T_REJECT ("{\"a\": [{\"numeric\": [\"==\", 1]}]}",
              "a[0].numeric[0]: unknown comparison operator \"==\" (use =, <, <=, >, >=)");
    T_REJECT ("{\"a\": [{\"numeric\": [\"<\", 5, \">\", 1]}]}",
              "a[0].numeric[0]: a range starts with its lower bound: \">\" or \">=\" (got \"<\")");
    T_REJECT ("{\"a\": [{\"numeric\": [\"=\", 5, \"<\", 6]}]}",
              "a[0].numeric[0]: a range starts with its lower bound: \">\" or \">=\" (got \"=\")");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 1, \">\", 5]}]}",
              "a[0].numeric[2]: the second bound of a range is the upper one: \"<\" or \"<=\" (got \">\")");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 1, \"=\", 5]}]}",
              "a[0].numeric[2]: the second bound of a range is the upper one: \"<\" or \"<=\" (got \"=\")");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 1, \"<\", \"5\"]}]}", "a[0].numeric[3]: must be a number (got a string)");
    T_REJECT ("{\"detail\": {\"sales\": [{\"numeric\": [\">\", 5, \"<\", 1]}]}}",
              "detail.sales[0].numeric: the lower bound 5 must be less than the upper bound 1");
    T_REJECT ("{\"a\": [{\"numeric\": [\">=\", 5, \"<=\", 5]}]}",
              "a[0].numeric: the lower bound 5 must be less than the upper bound 5");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 0.5, \"<\", 0.25]}]}",
              "a[0].numeric: the lower bound 0.5 must be less than the upper bound 0.25");
    T_REJECT ("{\"a\": [{\"numeric\": [\">\", 5.0, \"<\", 5]}]}",
              "a[0].numeric: the lower bound 5 must be less than the upper bound 5");
    //  Near misses that are valid
    T_MATCH ("{\"a\": [{\"numeric\": [\">=\", 5, \"<=\", 5.000001]}]}", "{\"a\": 5}");
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", -1e308, \"<\", 1e308]}]}", "{\"a\": 0}");
    T_MATCH ("{\"a\": [{\"numeric\": [\"<=\", 18446744073709551615]}]}", "{\"a\": 1}");
}

static void
test_cidr_and_exists (void **state)
{
    (void) state;
    T_REJECT ("{\"a\": [{\"cidr\": 10}]}", "a[0].cidr: must be a string such as \"10.0.0.0/24\" (got a number)");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0\"}]}",
              "a[0].cidr: \"10.0.0.0\" is not a CIDR block (address/prefix-length, such as \"10.0.0.0/24\")");
    T_REJECT ("{\"a\": [{\"cidr\": \"/8\"}]}",
              "a[0].cidr: \"/8\" is not a CIDR block (address/prefix-length, such as \"10.0.0.0/24\")");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/\"}]}",
              "a[0].cidr: \"10.0.0.0/\" is not a CIDR block (address/prefix-length, such as \"10.0.0.0/24\")");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0/8\"}]}", "a[0].cidr: \"10.0.0\" is not an IPv4 or IPv6 address");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.256/8\"}]}", "a[0].cidr: \"10.0.0.256\" is not an IPv4 or IPv6 address");
    T_REJECT ("{\"a\": [{\"cidr\": \"2001:db8:::/32\"}]}", "a[0].cidr: \"2001:db8:::\" is not an IPv4 or IPv6 address");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/33\"}]}", "a[0].cidr: \"10.0.0.0/33\": the prefix length must be 0 to 32");
    T_REJECT ("{\"a\": [{\"cidr\": \"::/129\"}]}", "a[0].cidr: \"::/129\": the prefix length must be 0 to 128");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/x\"}]}",
              "a[0].cidr: \"10.0.0.0/x\": the prefix length must be a decimal number");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/08\"}]}",
              "a[0].cidr: \"10.0.0.0/08\": the prefix length must be a decimal number");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/-1\"}]}",
              "a[0].cidr: \"10.0.0.0/-1\": the prefix length must be a decimal number");
    T_REJECT ("{\"a\": [{\"cidr\": \"10.0.0.0/1000\"}]}",
              "a[0].cidr: \"10.0.0.0/1000\": the prefix length must be a decimal number");
    T_REJECT ("{\"a\": [{\"exists\": \"true\"}]}", "a[0].exists: must be true or false (got a string)");
    T_REJECT ("{\"a\": [{\"exists\": 1}]}", "a[0].exists: must be true or false (got a number)");
    T_REJECT ("{\"a\": [{\"exists\": null}]}", "a[0].exists: must be true or false (got null)");
}

static void
test_or (void **state)
{
    (void) state;
    T_REJECT ("{\"$or\": {\"a\": [1]}}", "$or: must be an array of at least two objects (got an object)");
    T_REJECT ("{\"$or\": [{\"a\": [1]}]}", "$or: must be an array of at least two objects (got an array of 1)");
    T_REJECT ("{\"$or\": []}", "$or: must be an array of at least two objects (got an array of 0)");
    T_REJECT ("{\"$or\": \"x\"}", "$or: must be an array of at least two objects (got a string)");
    T_REJECT ("{\"$or\": [{\"a\": [1]}, 5]}", "$or[1]: each \"$or\" alternative must be an object (got a number)");
    T_REJECT ("{\"$or\": [[], {\"a\": [1]}]}", "$or[0]: each \"$or\" alternative must be an object (got an array)");
    T_REJECT ("{\"$or\": [{\"a\": [1]}, {}]}", "$or[1]: empty object: name at least one field");
    T_REJECT ("{\"$or\": [{\"a\": [1]}, {\"b\": []}]}", "$or[1].b: empty array: list at least one value to match");
    T_REJECT ("{\"x\": {\"$or\": [{\"a\": [1]}, {\"b\": {\"c\": [{\"nope\": 1}]}}]}}",
              "x.$or[1].b.c[0]: unknown operator \"nope\" (known: prefix, suffix, equals-ignore-case, "
              "wildcard, anything-but, numeric, cidr, exists)");
    T_REJECT ("{\"$or\": [{\"a\": [1]}, {\"$or\": [{\"b\": [1]}]}]}",
              "$or[1].$or: must be an array of at least two objects (got an array of 1)");
}

//  1000 combinations are allowed, 1001 are not: counted before expanding
static void
test_or_combination_limit (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    zb_patterns_set_max_size (set, 0);
    char *pattern = malloc (200000);
    char err [256];
    //  One $or of n alternatives
    for (int n = 999; n <= 1002; n++) {
        size_t len = (size_t) sprintf (pattern, "{\"$or\": [");
        for (int i = 0; i < n; i++)
            len += (size_t) sprintf (pattern + len, "%s{\"f\": [%d]}", i? ", ": "", i);
        len += (size_t) sprintf (pattern + len, "]}");
        int rc = zb_patterns_add (set, "one", pattern, len, err, sizeof (err));
        if (n <= 1000)
            assert_int_equal (rc, 0);
        else {
            assert_int_equal (rc, -1);
            assert_string_equal (err, "pattern: more than 1000 combinations of \"$or\" alternatives");
        }
    }
    //  Products: 10 x 10 x 10 = 1000 passes, 10 x 10 x 11 does not; nested
    //  groups multiply too, and a huge product is refused without expanding
    const int sizes [][4] = { { 10, 10, 10, 1 }, { 10, 10, 11, 1 }, { 2, 2, 2, 126 }, { 2, 2, 2, 125 },
                              { 50, 50, 50, 50 } };
    for (size_t s = 0; s < sizeof (sizes) / sizeof (sizes [0]); s++) {
        size_t len = (size_t) sprintf (pattern, "{");
        size_t total = 1;
        for (int g = 0; g < 4; g++) {
            int n = sizes [s][g];
            if (n == 1)
                continue;
            total *= (size_t) n;
            len += (size_t) sprintf (pattern + len, "%s\"g%d\": {\"$or\": [", g? ", ": "", g);
            for (int i = 0; i < n; i++)
                len += (size_t) sprintf (pattern + len, "%s{\"f\": [%d]}", i? ", ": "", i);
            len += (size_t) sprintf (pattern + len, "]}");
        }
        len += (size_t) sprintf (pattern + len, "}");
        int rc = zb_patterns_add (set, "product", pattern, len, err, sizeof (err));
        assert_int_equal (rc, total <= 1000? 0: -1);
    }
    //  Nested: an alternative holding its own $or counts its expansions
    size_t len = (size_t) sprintf (pattern, "{\"$or\": [{\"a\": [1]}, {\"$or\": [");
    for (int i = 0; i < 1000; i++)
        len += (size_t) sprintf (pattern + len, "%s{\"f\": [%d]}", i? ", ": "", i);
    len += (size_t) sprintf (pattern + len, "]}]}");
    assert_int_equal (zb_patterns_add (set, "nested", pattern, len, err, sizeof (err)), -1);
    assert_string_equal (err, "pattern: more than 1000 combinations of \"$or\" alternatives");
    free (pattern);
    zb_patterns_destroy (&set);
}

static void
test_size_limit (void **state)
{
    (void) state;
    //  A valid pattern of exactly n bytes: {"a": ["xxx..."]}
    char *pattern = malloc (10000);
    char err [256];
    zb_patterns_t *set = zb_patterns_new ();
    for (size_t n = 2047; n <= 2049; n++) {
        memset (pattern, 'x', n);
        memcpy (pattern, "{\"a\": [\"", 8);
        memcpy (pattern + n - 3, "\"]}", 3);
        int rc = zb_patterns_add (set, "big", pattern, n, err, sizeof (err));
        if (n <= ZB_PATTERN_DEFAULT_MAX_SIZE)
            assert_int_equal (rc, 0);
        else {
            assert_int_equal (rc, -1);
            assert_string_equal (err, "pattern: 2049 bytes, more than the maximum of 2048");
        }
    }
    //  Adjustable, and 0 means no limit
    zb_patterns_set_max_size (set, 100);
    assert_int_equal (zb_patterns_add (set, "q", pattern, 2048, err, sizeof (err)), -1);
    assert_string_equal (err, "pattern: 2048 bytes, more than the maximum of 100");
    zb_patterns_set_max_size (set, 0);
    memset (pattern, 'x', 9999);
    memcpy (pattern, "{\"a\": [\"", 8);
    memcpy (pattern + 9999 - 3, "\"]}", 3);
    assert_int_equal (zb_patterns_add (set, "q", pattern, 9999, err, sizeof (err)), 0);
    assert_int_equal (zb_patterns_size (set), 2);
    free (pattern);
    zb_patterns_destroy (&set);
}

static void
test_errors_leave_the_set_alone (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "keep", "{\"a\": [1]}");
    char err [16];          //  a short buffer: the message is cut, not overflowed
    const char *bad = "{\"a\": [{\"numeric\": [\">\", 5, \"<\", 1]}]}";
    assert_int_equal (zb_patterns_add (set, "bad", bad, strlen (bad), err, sizeof (err)), -1);
    assert_int_equal (strlen (err), sizeof (err) - 1);
    assert_int_equal (zb_patterns_add (set, "bad", "{}", 2, NULL, 0), -1);
    assert_int_equal (zb_patterns_size (set), 1);
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "keep");
    zb_patterns_destroy (&set);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_not_json_or_not_an_object),
        cmocka_unit_test (test_fields),
        cmocka_unit_test (test_string_operators),
        cmocka_unit_test (test_wildcards),
        cmocka_unit_test (test_anything_but),
        cmocka_unit_test (test_numeric),
        cmocka_unit_test (test_cidr_and_exists),
        cmocka_unit_test (test_or),
        cmocka_unit_test (test_or_combination_limit),
        cmocka_unit_test (test_size_limit),
        cmocka_unit_test (test_errors_leave_the_set_alone),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
