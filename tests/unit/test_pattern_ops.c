/*  test_pattern_ops.c - every operator of the event-pattern language, with
    events that match and events that do not: prefix, suffix (and their
    equals-ignore-case forms), equals-ignore-case, wildcard, anything-but in
    all its forms, numeric, cidr, exists. */

#include "pattern_helpers.h"

//  --------------------------------------------------------------------------
//  prefix, suffix

static void
test_prefix (void **state)
{
    (void) state;
    const char *p = "{\"time\": [{\"prefix\": \"2017-10-02\"}]}";
    T_MATCH (p, "{\"time\": \"2017-10-02T18:43:48Z\"}");
    T_MATCH (p, "{\"time\": \"2017-10-02\"}");               //  the whole value
    T_NO_MATCH (p, "{\"time\": \"2017-10-0\"}");             //  shorter
    T_NO_MATCH (p, "{\"time\": \"2017-10-03T18:43:48Z\"}");
    T_NO_MATCH (p, "{\"time\": \" 2017-10-02\"}");
    T_NO_MATCH (p, "{\"other\": \"2017-10-02\"}");
    T_MATCH (p, "{\"time\": [\"x\", \"2017-10-02Z\"]}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"Us-\"}]}", "{\"a\": \"us-east\"}");    //  case matters
    //  Only strings
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"1\"}]}", "{\"a\": 123}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"tr\"}]}", "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"n\"}]}", "{\"a\": null}");
    //  The empty prefix: every string, "" included, and nothing else
    T_MATCH ("{\"a\": [{\"prefix\": \"\"}]}", "{\"a\": \"anything\"}");
    T_MATCH ("{\"a\": [{\"prefix\": \"\"}]}", "{\"a\": \"\"}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"\"}]}", "{\"a\": 0}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"\"}]}", "{\"a\": null}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"\"}]}", "{\"b\": \"x\"}");
    //  UTF-8 is compared bytewise
    T_MATCH ("{\"a\": [{\"prefix\": \"\xc3\xa9t\"}]}", "{\"a\": \"\xc3\xa9t\xc3\xa9\"}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": \"\xc3\xa9t\"}]}", "{\"a\": \"et\xc3\xa9\"}");
    //  Prefixes of several lengths on one field
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "s", "{\"a\": [{\"prefix\": \"s\"}]}");
    t_add (set, "st", "{\"a\": [{\"prefix\": \"st\"}]}");
    t_add (set, "store", "{\"a\": [{\"prefix\": \"store\"}]}");
    t_add (set, "store_1", "{\"a\": [{\"prefix\": \"store_1\"}]}");
    t_add (set, "shop", "{\"a\": [{\"prefix\": \"shop\"}]}");
    t_add (set, "empty", "{\"a\": [{\"prefix\": \"\"}]}");
    assert_string_equal (t_match_set (set, "{\"a\": \"store_12\"}"), "empty s st store store_1");
    assert_string_equal (t_match_set (set, "{\"a\": \"stor\"}"), "empty s st");
    assert_string_equal (t_match_set (set, "{\"a\": \"x\"}"), "empty");
    zb_patterns_destroy (&set);
}

static void
test_suffix (void **state)
{
    (void) state;
    const char *p = "{\"FileName\": [{\"suffix\": \".png\"}]}";
    T_MATCH (p, "{\"FileName\": \"image.png\"}");
    T_MATCH (p, "{\"FileName\": \".png\"}");
    T_NO_MATCH (p, "{\"FileName\": \"png\"}");
    T_NO_MATCH (p, "{\"FileName\": \"image.PNG\"}");
    T_NO_MATCH (p, "{\"FileName\": \"image.png.gz\"}");
    T_MATCH ("{\"source\": [{\"suffix\": \"ec2\"}]}", "{\"source\": \"aws.ec2\"}");
    T_NO_MATCH ("{\"a\": [{\"suffix\": \"3\"}]}", "{\"a\": 123}");
    T_MATCH ("{\"a\": [{\"suffix\": \"\"}]}", "{\"a\": \"\"}");
    T_NO_MATCH ("{\"a\": [{\"suffix\": \"\"}]}", "{\"a\": false}");
    T_MATCH ("{\"a\": [{\"suffix\": \"\xc3\xa9\"}]}", "{\"a\": \"caf\xc3\xa9\"}");
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "g", "{\"a\": [{\"suffix\": \"g\"}]}");
    t_add (set, "png", "{\"a\": [{\"suffix\": \".png\"}]}");
    t_add (set, "jpg", "{\"a\": [{\"suffix\": \".jpg\"}]}");
    t_add (set, "a.png", "{\"a\": [{\"suffix\": \"a.png\"}]}");
    assert_string_equal (t_match_set (set, "{\"a\": \"data.png\"}"), "a.png g png");
    assert_string_equal (t_match_set (set, "{\"a\": \"x.jpg\"}"), "g jpg");
    assert_string_equal (t_match_set (set, "{\"a\": \"g\"}"), "g");
    zb_patterns_destroy (&set);
}

static void
test_affixes_ignoring_case (void **state)
{
    (void) state;
    const char *p = "{\"detail\": {\"service\": [{\"prefix\": {\"equals-ignore-case\": \"EventB\"}}]}}";
    T_MATCH (p, "{\"detail\": {\"service\": \"EventBridge\"}}");
    T_MATCH (p, "{\"detail\": {\"service\": \"EVENTBRIDGE\"}}");
    T_MATCH (p, "{\"detail\": {\"service\": \"eventb\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"service\": \"Event\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"service\": \"SNS\"}}");
    const char *s = "{\"detail\": {\"FileName\": [{\"suffix\": {\"equals-ignore-case\": \".png\"}}]}}";
    T_MATCH (s, "{\"detail\": {\"FileName\": \"image.PNG\"}}");
    T_MATCH (s, "{\"detail\": {\"FileName\": \"image.Png\"}}");
    T_NO_MATCH (s, "{\"detail\": {\"FileName\": \"image.PNJ\"}}");
    T_NO_MATCH (s, "{\"detail\": {\"FileName\": 5}}");
    //  Beyond ASCII: É/é, Σ/σ/ς, Kelvin sign K -> k (a shorter folding)
    T_MATCH ("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"\xc3\x89t\xc3\xa9\"}}]}",
             "{\"a\": \"\xc3\xa9T\xc3\x89 indien\"}");
    T_MATCH ("{\"a\": [{\"suffix\": {\"equals-ignore-case\": \"\xce\xbf\xcf\x82\"}}]}",    //  "ος"
             "{\"a\": \"\xce\x9f\xce\x94\xce\x9f\xce\xa3\"}");                            //  "ΟΔΟΣ"
    T_MATCH ("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"k\"}}]}", "{\"a\": \"\xe2\x84\xaa" "elvin\"}");
    T_MATCH ("{\"a\": [{\"suffix\": {\"equals-ignore-case\": \"\xe2\x84\xaa\"}}]}", "{\"a\": \"OK\"}");
    //  Empty: any string
    T_MATCH ("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"\"}}]}", "{\"a\": \"Q\"}");
    T_NO_MATCH ("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"\"}}]}", "{\"a\": null}");
}

//  --------------------------------------------------------------------------
//  equals-ignore-case

static void
test_equals_ignore_case (void **state)
{
    (void) state;
    const char *p = "{\"Name\": [{\"equals-ignore-case\": \"alice\"}]}";
    T_MATCH (p, "{\"Name\": \"Alice\"}");
    T_MATCH (p, "{\"Name\": \"ALICE\"}");
    T_MATCH (p, "{\"Name\": \"aLiCe\"}");
    T_NO_MATCH (p, "{\"Name\": \"Alice \"}");
    T_NO_MATCH (p, "{\"Name\": \"Alic\"}");
    T_NO_MATCH (p, "{\"Name\": \"Alicia\"}");
    T_NO_MATCH (p, "{\"Name\": null}");
    T_NO_MATCH (p, "{\"Other\": \"alice\"}");
    T_MATCH ("{\"source\": [{\"equals-ignore-case\": \"EC2\"}]}", "{\"source\": \"ec2\"}");
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"1\"}]}", "{\"a\": 1}");
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"true\"}]}", "{\"a\": true}");
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\"}]}", "{\"a\": \"\"}");
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\"}]}", "{\"a\": \"x\"}");
    //  Unicode simple case folding
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2\"}]}",
             "{\"a\": \"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\"}");                 //  ПРИВЕТ / привет
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"stra\xc3\x9f" "e\"}]}",
             "{\"a\": \"STRA\xe1\xba\x9e" "E\"}");                                             //  ß / ẞ (U+1E9E)
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"stra\xc3\x9f" "e\"}]}",
                "{\"a\": \"STRASSE\"}");                                                      //  no full folding
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"i\"}]}", "{\"a\": \"\xc4\xb0\"}");        //  İ has no simple folding
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\xc8\xba\"}]}", "{\"a\": \"\xe2\xb1\xa5\"}");    //  Ⱥ (2 bytes) / ⱥ (3 bytes)
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\xf0\x90\x90\x80\"}]}", "{\"a\": \"\xf0\x90\x90\xa8\"}");  //  Deseret 𐐀 / 𐐨
    T_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\xe6\x97\xa5\xe6\x9c\xac\"}]}", "{\"a\": \"\xe6\x97\xa5\xe6\x9c\xac\"}");  //  no case
    T_NO_MATCH ("{\"a\": [{\"equals-ignore-case\": \"\xe6\x97\xa5\"}]}", "{\"a\": \"\xe6\x9c\xac\"}");
}

//  --------------------------------------------------------------------------
//  wildcard

static void
test_wildcard (void **state)
{
    (void) state;
    const char *p = "{\"source\": [{\"wildcard\": \"Simple*Service\"}]}";
    T_MATCH (p, "{\"source\": \"SimpleQueueService\"}");
    T_MATCH (p, "{\"source\": \"SimpleService\"}");               //  '*' matches nothing too
    T_NO_MATCH (p, "{\"source\": \"SimpleQueueServices\"}");
    T_NO_MATCH (p, "{\"source\": \"simpleQueueService\"}");
    T_NO_MATCH (p, "{\"source\": \"SimpleServic\"}");
    //  '*' alone: any string, "" included, nothing else
    T_MATCH ("{\"a\": [{\"wildcard\": \"*\"}]}", "{\"a\": \"\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*\"}]}", "{\"a\": \"xyz\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*\"}]}", "{\"a\": 1}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*\"}]}", "{\"a\": null}");
    //  Leading, trailing, several
    T_MATCH ("{\"a\": [{\"wildcard\": \"*.png\"}]}", "{\"a\": \"dir/x.png\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*.png\"}]}", "{\"a\": \"dir/x.png.bak\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"dir/*\"}]}", "{\"a\": \"dir/\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*/lib/*\"}]}", "{\"a\": \"/usr/lib/x.so\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*/lib/*\"}]}", "{\"a\": \"/usr/lib\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"a*b*c\"}]}", "{\"a\": \"abc\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"a*b*c\"}]}", "{\"a\": \"aXbYbZc\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"a*b*c\"}]}", "{\"a\": \"acb\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*a*b*\"}]}", "{\"a\": \"xaxb\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*a*b*\"}]}", "{\"a\": \"xbxa\"}");
    //  Prefix and suffix must not overlap
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"ab*ab\"}]}", "{\"a\": \"aba\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"ab*ab\"}]}", "{\"a\": \"abab\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"a*a\"}]}", "{\"a\": \"a\"}");
    //  No '*': exact
    T_MATCH ("{\"a\": [{\"wildcard\": \"plain\"}]}", "{\"a\": \"plain\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"plain\"}]}", "{\"a\": \"plainer\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"\"}]}", "{\"a\": \"\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"\"}]}", "{\"a\": \"x\"}");
    //  Escapes: \* a literal star, \\ a backslash
    T_MATCH ("{\"a\": [{\"wildcard\": \"2\\\\*3\"}]}", "{\"a\": \"2*3\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"2\\\\*3\"}]}", "{\"a\": \"2x3\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"2\\\\*3\"}]}", "{\"a\": \"23\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"c:\\\\\\\\*\"}]}", "{\"a\": \"c:\\\\windows\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"c:\\\\\\\\*\"}]}", "{\"a\": \"c:/windows\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"*\\\\**\"}]}", "{\"a\": \"a*b\"}");      //  contains a star
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"*\\\\**\"}]}", "{\"a\": \"ab\"}");
    T_MATCH ("{\"a\": [{\"wildcard\": \"\\\\*\"}]}", "{\"a\": \"*\"}");
    T_NO_MATCH ("{\"a\": [{\"wildcard\": \"\\\\*\"}]}", "{\"a\": \"x\"}");
    //  Many wildcards on one field, indexed by literal start or end
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "start", "{\"a\": [{\"wildcard\": \"store_*_eu\"}]}");
    t_add (set, "start2", "{\"a\": [{\"wildcard\": \"store_1*\"}]}");
    t_add (set, "end", "{\"a\": [{\"wildcard\": \"*_eu\"}]}");
    t_add (set, "middle", "{\"a\": [{\"wildcard\": \"*re_1*\"}]}");
    t_add (set, "nope", "{\"a\": [{\"wildcard\": \"shop*_eu\"}]}");
    assert_string_equal (t_match_set (set, "{\"a\": \"store_12_eu\"}"), "end middle start start2");
    assert_string_equal (t_match_set (set, "{\"a\": \"store_22_us\"}"), "");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  anything-but

static void
test_anything_but_values (void **state)
{
    (void) state;
    const char *p = "{\"detail\": {\"state\": [{\"anything-but\": \"initializing\"}]}}";
    T_MATCH (p, "{\"detail\": {\"state\": \"running\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"state\": \"initializing\"}}");
    T_MATCH (p, "{\"detail\": {\"state\": \"Initializing\"}}");
    T_MATCH (p, "{\"detail\": {\"state\": \"\"}}");
    //  Any other value is "anything but", null included (EventBridge's own behaviour)
    T_MATCH (p, "{\"detail\": {\"state\": null}}");
    T_MATCH (p, "{\"detail\": {\"state\": 5}}");
    T_MATCH (p, "{\"detail\": {\"state\": false}}");
    //  ... but a missing field, an object or an empty array has no value
    T_NO_MATCH (p, "{\"detail\": {}}");
    T_NO_MATCH (p, "{\"detail\": {\"state\": {\"x\": 1}}}");
    T_NO_MATCH (p, "{\"detail\": {\"state\": []}}");
    T_NO_MATCH (p, "{}");
    //  Event arrays: some element other than the excluded
    T_MATCH (p, "{\"detail\": {\"state\": [\"initializing\", \"running\"]}}");
    T_NO_MATCH (p, "{\"detail\": {\"state\": [\"initializing\", \"initializing\"]}}");
    //  Numbers, by value
    const char *n = "{\"x-limit\": [{\"anything-but\": 123}]}";
    T_MATCH (n, "{\"x-limit\": 124}");
    T_NO_MATCH (n, "{\"x-limit\": 123}");
    T_NO_MATCH (n, "{\"x-limit\": 123.0}");
    T_NO_MATCH (n, "{\"x-limit\": 1.23e2}");
    T_MATCH (n, "{\"x-limit\": \"123\"}");
    T_MATCH (n, "{\"x-limit\": 123.5}");
    //  Lists
    const char *ls = "{\"state\": [{\"anything-but\": [\"stopped\", \"overloaded\"]}]}";
    T_MATCH (ls, "{\"state\": \"running\"}");
    T_NO_MATCH (ls, "{\"state\": \"stopped\"}");
    T_NO_MATCH (ls, "{\"state\": \"overloaded\"}");
    T_MATCH (ls, "{\"state\": null}");
    const char *ln = "{\"x\": [{\"anything-but\": [100, 200, 300]}]}";
    T_MATCH (ln, "{\"x\": 301.8}");
    T_NO_MATCH (ln, "{\"x\": 300}");
    T_NO_MATCH (ln, "{\"x\": 3e2}");
    T_NO_MATCH (ln, "{\"x\": 200.0}");
    T_MATCH (ln, "{\"x\": \"100\"}");
    T_MATCH ("{\"x\": [{\"anything-but\": [\"\"]}]}", "{\"x\": null}");
    T_NO_MATCH ("{\"x\": [{\"anything-but\": [\"\"]}]}", "{\"x\": \"\"}");
    //  Two anything-but alternatives are OR'ed: every value passes one
    T_MATCH ("{\"x\": [{\"anything-but\": \"a\"}, {\"anything-but\": \"b\"}]}", "{\"x\": \"a\"}");
    //  With an exact value beside it
    T_MATCH ("{\"x\": [\"a\", {\"anything-but\": [\"a\", \"b\"]}]}", "{\"x\": \"a\"}");
    T_NO_MATCH ("{\"x\": [\"a\", {\"anything-but\": [\"a\", \"b\"]}]}", "{\"x\": \"b\"}");
    //  Many anything-but patterns on one field
    zb_patterns_t *set = zb_patterns_new ();
    for (int i = 0; i < 20; i++) {
        char name [16], pattern [64];
        snprintf (name, sizeof (name), "not-%02d", i);
        snprintf (pattern, sizeof (pattern), "{\"n\": [{\"anything-but\": [%d, %d]}]}", i, i + 1);
        t_add (set, name, pattern);
    }
    assert_string_equal (t_match_set (set, "{\"n\": 17}"),
        "not-00 not-01 not-02 not-03 not-04 not-05 not-06 not-07 not-08 not-09 not-10 not-11 "
        "not-12 not-13 not-14 not-15 not-18 not-19");
    zb_patterns_destroy (&set);
}

static void
test_anything_but_string_forms (void **state)
{
    (void) state;
    //  prefix
    const char *p = "{\"state\": [{\"anything-but\": {\"prefix\": \"init\"}}]}";
    T_MATCH (p, "{\"state\": \"running\"}");
    T_NO_MATCH (p, "{\"state\": \"initializing\"}");
    T_NO_MATCH (p, "{\"state\": \"init\"}");
    T_MATCH (p, "{\"state\": \"ini\"}");
    T_MATCH (p, "{\"state\": \"INIT\"}");
    T_MATCH (p, "{\"state\": null}");             //  not a string: passes
    T_MATCH (p, "{\"state\": 7}");
    T_NO_MATCH (p, "{}");
    T_MATCH ("{\"a\": [{\"anything-but\": {\"prefix\": [\"us-\", \"eu-\"]}}]}", "{\"a\": \"ap-south-1\"}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"prefix\": [\"us-\", \"eu-\"]}}]}", "{\"a\": \"eu-west-1\"}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"prefix\": \"\"}}]}", "{\"a\": \"x\"}");  //  every string
    T_MATCH ("{\"a\": [{\"anything-but\": {\"prefix\": \"\"}}]}", "{\"a\": 1}");
    //  suffix
    const char *s = "{\"a\": [{\"anything-but\": {\"suffix\": \".png\"}}]}";
    T_MATCH (s, "{\"a\": \"x.jpg\"}");
    T_NO_MATCH (s, "{\"a\": \"x.png\"}");
    T_MATCH (s, "{\"a\": \"x.PNG\"}");
    T_MATCH (s, "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"suffix\": [\".png\", \".jpg\"]}}]}", "{\"a\": \"x.jpg\"}");
    T_MATCH ("{\"a\": [{\"anything-but\": {\"suffix\": [\".png\", \".jpg\"]}}]}", "{\"a\": \"x.gif\"}");
    //  equals-ignore-case
    const char *e = "{\"state\": [{\"anything-but\": {\"equals-ignore-case\": \"initializing\"}}]}";
    T_NO_MATCH (e, "{\"state\": \"INITIALIZING\"}");
    T_NO_MATCH (e, "{\"state\": \"initializing\"}");
    T_MATCH (e, "{\"state\": \"initialized\"}");
    T_MATCH (e, "{\"state\": null}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": [\"A\", \"b\"]}}]}", "{\"a\": \"B\"}");
    T_MATCH ("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": [\"A\", \"b\"]}}]}", "{\"a\": \"c\"}");
    //  wildcard
    const char *w = "{\"FilePath\": [{\"anything-but\": {\"wildcard\": \"*/lib/*\"}}]}";
    T_MATCH (w, "{\"FilePath\": \"/usr/bin/ls\"}");
    T_NO_MATCH (w, "{\"FilePath\": \"/usr/lib/libc.so\"}");
    T_MATCH (w, "{\"FilePath\": 12}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"wildcard\": [\"*.png\", \"img*\"]}}]}", "{\"a\": \"img.gif\"}");
    T_NO_MATCH ("{\"a\": [{\"anything-but\": {\"wildcard\": [\"*.png\", \"img*\"]}}]}", "{\"a\": \"x.png\"}");
    T_MATCH ("{\"a\": [{\"anything-but\": {\"wildcard\": [\"*.png\", \"img*\"]}}]}", "{\"a\": \"x.gif\"}");
    //  Arrays: one element that passes is enough
    T_MATCH (p, "{\"state\": [\"init-1\", \"running\"]}");
    T_NO_MATCH (p, "{\"state\": [\"init-1\", \"init-2\"]}");
}

//  --------------------------------------------------------------------------
//  numeric

static void
test_numeric_comparisons (void **state)
{
    (void) state;
    struct { const char *op; double bound; double value; bool match; } cases [] = {
        { "=", 5, 5, true }, { "=", 5, 5.0000001, false }, { "=", 5, 4.9999999, false },
        { "<", 10, 9.999, true }, { "<", 10, 10, false }, { "<", 10, 11, false }, { "<", 10, -1e300, true },
        { "<=", 10, 10, true }, { "<=", 10, 10.0001, false }, { "<=", 10, -3, true },
        { ">", 0, 0, false }, { ">", 0, 1e-300, true }, { ">", 0, -1e-300, false }, { ">", 0, 1e308, true },
        { ">=", 0, 0, true }, { ">=", 0, -0.0, true }, { ">=", 0, -1, false },
        { ">", -5.5, -5.4, true }, { ">", -5.5, -5.5, false }, { "<", -5.5, -5.6, true },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        char pattern [128], event [64];
        snprintf (pattern, sizeof (pattern), "{\"a\": [{\"numeric\": [\"%s\", %.17g]}]}", cases [i].op, cases [i].bound);
        snprintf (event, sizeof (event), "{\"a\": %.17g}", cases [i].value);
        if (cases [i].match)
            T_MATCH (pattern, event);
        else
            T_NO_MATCH (pattern, event);
    }
    //  Only JSON numbers
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 0]}]}", "{\"a\": \"5\"}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 0]}]}", "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\"<\", 1]}]}", "{\"a\": null}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\"<\", 1]}]}", "{}");
    //  "=" by value, like exact numbers
    T_MATCH ("{\"x\": [{\"numeric\": [\"=\", 3.018e2]}]}", "{\"x\": 301.8}");
    T_MATCH ("{\"x\": [{\"numeric\": [\"=\", 300]}]}", "{\"x\": 3e2}");
    //  Integers and doubles against each other, exactly
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 9007199254740992]}]}", "{\"a\": 9007199254740993}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 9007199254740992.0]}]}", "{\"a\": 9007199254740992}");
    T_MATCH ("{\"a\": [{\"numeric\": [\"<\", 0.5]}]}", "{\"a\": 0}");
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 1.5]}]}", "{\"a\": 2}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 2.5]}]}", "{\"a\": 2}");
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 18446744073709551614]}]}", "{\"a\": 18446744073709551615}");
    T_MATCH ("{\"a\": [{\"numeric\": [\"<\", -9223372036854775807]}]}", "{\"a\": -9223372036854775808}");
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 1e19]}]}", "{\"a\": 18446744073709551615}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 1e20]}]}", "{\"a\": 18446744073709551615}");
    T_MATCH ("{\"a\": [{\"numeric\": [\"<\", -1e19]}]}", "{\"a\": -1.5e19}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\"<\", -1e19]}]}", "{\"a\": -9223372036854775808}");
    //  Full double range (beyond EventBridge's +-5e9)
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 1e300]}]}", "{\"a\": 1.7976931348623157e308}");
    T_MATCH ("{\"a\": [{\"numeric\": [\"<\", -1e300]}]}", "{\"a\": -1.7976931348623157e308}");
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 0, \"<\", 1e-320]}]}", "{\"a\": 5e-324}");
    //  Arrays: any element in range
    T_MATCH ("{\"a\": [{\"numeric\": [\">\", 10]}]}", "{\"a\": [1, 2, 30]}");
    T_NO_MATCH ("{\"a\": [{\"numeric\": [\">\", 10]}]}", "{\"a\": [1, 2, \"30\"]}");
}

static void
test_numeric_ranges (void **state)
{
    (void) state;
    const char *p = "{\"c\": [{\"numeric\": [\">\", 0, \"<=\", 5]}]}";
    T_NO_MATCH (p, "{\"c\": 0}");
    T_MATCH (p, "{\"c\": 0.000001}");
    T_MATCH (p, "{\"c\": 5}");
    T_NO_MATCH (p, "{\"c\": 5.000001}");
    T_MATCH (p, "{\"c\": 3}");
    T_NO_MATCH (p, "{\"c\": -3}");
    const char *q = "{\"c\": [{\"numeric\": [\">=\", -1.5, \"<\", 2.5]}]}";
    T_MATCH (q, "{\"c\": -1.5}");
    T_NO_MATCH (q, "{\"c\": -1.5000001}");
    T_MATCH (q, "{\"c\": 2.4999}");
    T_NO_MATCH (q, "{\"c\": 2.5}");
    T_MATCH ("{\"c\": [{\"numeric\": [\">=\", 1, \"<=\", 2]}]}", "{\"c\": 1}");
    T_MATCH ("{\"c\": [{\"numeric\": [\">=\", 1, \"<=\", 2]}]}", "{\"c\": 2}");
    T_NO_MATCH ("{\"c\": [{\"numeric\": [\">\", 1, \"<\", 2]}]}", "{\"c\": 1}");
    T_NO_MATCH ("{\"c\": [{\"numeric\": [\">\", 1, \"<\", 2]}]}", "{\"c\": 2}");
    //  Several ranges in one leaf: OR
    const char *two = "{\"c\": [{\"numeric\": [\"<\", 0]}, {\"numeric\": [\">\", 100]}]}";
    T_MATCH (two, "{\"c\": -1}");
    T_MATCH (two, "{\"c\": 101}");
    T_NO_MATCH (two, "{\"c\": 50}");
    //  Overlapping ranges from many patterns, bounds shared
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "lt5", "{\"v\": [{\"numeric\": [\"<\", 5]}]}");
    t_add (set, "le5", "{\"v\": [{\"numeric\": [\"<=\", 5]}]}");
    t_add (set, "eq5", "{\"v\": [{\"numeric\": [\"=\", 5]}]}");
    t_add (set, "ge5", "{\"v\": [{\"numeric\": [\">=\", 5]}]}");
    t_add (set, "gt5", "{\"v\": [{\"numeric\": [\">\", 5]}]}");
    t_add (set, "0-10", "{\"v\": [{\"numeric\": [\">\", 0, \"<\", 10]}]}");
    t_add (set, "5-10", "{\"v\": [{\"numeric\": [\">=\", 5, \"<=\", 10]}]}");
    t_add (set, "x", "{\"w\": [{\"numeric\": [\">=\", 5]}]}");
    assert_string_equal (t_match_set (set, "{\"v\": 5}"), "0-10 5-10 eq5 ge5 le5");
    assert_string_equal (t_match_set (set, "{\"v\": 4.99}"), "0-10 le5 lt5");
    assert_string_equal (t_match_set (set, "{\"v\": 10}"), "5-10 ge5 gt5");
    assert_string_equal (t_match_set (set, "{\"v\": 0}"), "le5 lt5");
    assert_string_equal (t_match_set (set, "{\"v\": 1e10}"), "ge5 gt5");
    assert_string_equal (t_match_set (set, "{\"v\": 5, \"w\": 5}"), "0-10 5-10 eq5 ge5 le5 x");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  cidr

static void
test_cidr (void **state)
{
    (void) state;
    const char *p = "{\"detail\": {\"sourceIPAddress\": [{\"cidr\": \"10.0.0.0/24\"}]}}";
    T_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"10.0.0.0\"}}");
    T_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"10.0.0.255\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"10.0.1.0\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"9.255.255.255\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"10.0.0\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"10.0.0.1 \"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"not an address\"}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": 167772161}}");
    T_NO_MATCH (p, "{\"detail\": {\"sourceIPAddress\": \"::ffff:10.0.0.1\"}}");   //  IPv6 is IPv6
    T_MATCH (p, "{\"detail\": {\"sourceIPAddress\": [\"192.168.0.1\", \"10.0.0.7\"]}}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}", "{\"ip\": \"10.200.3.4\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"0.0.0.0/0\"}]}", "{\"ip\": \"255.255.255.255\"}");
    T_NO_MATCH ("{\"ip\": [{\"cidr\": \"0.0.0.0/0\"}]}", "{\"ip\": \"::1\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"192.168.1.7/32\"}]}", "{\"ip\": \"192.168.1.7\"}");
    T_NO_MATCH ("{\"ip\": [{\"cidr\": \"192.168.1.7/32\"}]}", "{\"ip\": \"192.168.1.6\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"192.168.2.0/23\"}]}", "{\"ip\": \"192.168.3.200\"}");
    T_NO_MATCH ("{\"ip\": [{\"cidr\": \"192.168.2.0/23\"}]}", "{\"ip\": \"192.168.4.0\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"10.0.0.77/24\"}]}", "{\"ip\": \"10.0.0.1\"}");   //  host bits ignored
    //  IPv6
    const char *v6 = "{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}";
    T_MATCH (v6, "{\"ip\": \"2001:db8::1\"}");
    T_MATCH (v6, "{\"ip\": \"2001:0DB8:0000:0000:0000:0000:0000:0001\"}");
    T_MATCH (v6, "{\"ip\": \"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\"}");
    T_NO_MATCH (v6, "{\"ip\": \"2001:db9::1\"}");
    T_NO_MATCH (v6, "{\"ip\": \"10.0.0.1\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"::1/128\"}]}", "{\"ip\": \"0:0:0:0:0:0:0:1\"}");
    T_NO_MATCH ("{\"ip\": [{\"cidr\": \"::1/128\"}]}", "{\"ip\": \"::2\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"fe80::/10\"}]}", "{\"ip\": \"febf::1\"}");
    T_NO_MATCH ("{\"ip\": [{\"cidr\": \"fe80::/10\"}]}", "{\"ip\": \"fec0::1\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"::/0\"}]}", "{\"ip\": \"1:2:3:4:5:6:7:8\"}");
    T_MATCH ("{\"ip\": [{\"cidr\": \"::ffff:10.0.0.0/104\"}]}", "{\"ip\": \"::ffff:10.1.2.3\"}");
    //  Blocks of several lengths on one field
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "8", "{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}");
    t_add (set, "16", "{\"ip\": [{\"cidr\": \"10.1.0.0/16\"}]}");
    t_add (set, "24", "{\"ip\": [{\"cidr\": \"10.1.2.0/24\"}]}");
    t_add (set, "other", "{\"ip\": [{\"cidr\": \"10.2.0.0/16\"}]}");
    t_add (set, "v6", "{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}");
    assert_string_equal (t_match_set (set, "{\"ip\": \"10.1.2.3\"}"), "16 24 8");
    assert_string_equal (t_match_set (set, "{\"ip\": \"10.1.3.3\"}"), "16 8");
    assert_string_equal (t_match_set (set, "{\"ip\": \"2001:db8::5\"}"), "v6");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  exists

static void
test_exists (void **state)
{
    (void) state;
    const char *t = "{\"detail\": {\"c-count\": [{\"exists\": true}]}}";
    const char *f = "{\"detail\": {\"c-count\": [{\"exists\": false}]}}";
    const char *values [] = { "5", "\"\"", "\"x\"", "null", "false", "true", "0", "[1]", "[null]" };
    for (size_t i = 0; i < sizeof (values) / sizeof (values [0]); i++) {
        char event [128];
        snprintf (event, sizeof (event), "{\"detail\": {\"c-count\": %s}}", values [i]);
        T_MATCH (t, event);
        T_NO_MATCH (f, event);
    }
    //  No value: missing, empty array, object, array of objects
    const char *none [] = { "{\"detail\": {}}", "{\"detail\": {\"c-count\": []}}",
        "{\"detail\": {\"c-count\": {\"c1\": 100}}}", "{\"detail\": {\"c-count\": [{\"c1\": 1}]}}",
        "{\"detail\": {\"c-count\": [[]]}}", "{}", "{\"detail\": 5}", "{\"detail\": [1, 2]}",
        "{\"detail\": null}" };
    for (size_t i = 0; i < sizeof (none) / sizeof (none [0]); i++) {
        T_NO_MATCH (t, none [i]);
        T_MATCH (f, none [i]);
    }
    //  exists:false deep under a missing or non-object parent
    const char *deep = "{\"a\": {\"b\": {\"c\": [{\"exists\": false}]}}}";
    T_MATCH (deep, "{}");
    T_MATCH (deep, "{\"a\": \"str\"}");
    T_MATCH (deep, "{\"a\": {\"b\": {}}}");
    T_NO_MATCH (deep, "{\"a\": {\"b\": {\"c\": 1}}}");
    T_NO_MATCH (deep, "{\"a\": [{\"b\": {\"c\": 1}}]}");
    //  With other fields
    T_MATCH ("{\"source\": [\"s\"], \"detail\": {\"store_id\": [{\"exists\": false}]}}",
             "{\"source\": \"s\", \"detail\": {\"x\": 1}}");
    T_NO_MATCH ("{\"source\": [\"s\"], \"detail\": {\"store_id\": [{\"exists\": false}]}}",
                "{\"source\": \"t\", \"detail\": {\"x\": 1}}");
    T_NO_MATCH ("{\"source\": [\"s\"], \"detail\": {\"store_id\": [{\"exists\": false}]}}",
                "{\"source\": \"s\", \"detail\": {\"store_id\": \"\"}}");
    //  Both in one leaf: always
    T_MATCH ("{\"a\": [{\"exists\": true}, {\"exists\": false}]}", "{}");
    T_MATCH ("{\"a\": [{\"exists\": true}, {\"exists\": false}]}", "{\"a\": 1}");
    //  exists:false beside a value: the value, or nothing
    const char *either = "{\"a\": [\"x\", {\"exists\": false}]}";
    T_MATCH (either, "{\"a\": \"x\"}");
    T_MATCH (either, "{\"b\": 1}");
    T_NO_MATCH (either, "{\"a\": \"y\"}");
    //  Many exists:false patterns
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "no-a", "{\"a\": [{\"exists\": false}]}");
    t_add (set, "no-b", "{\"b\": [{\"exists\": false}]}");
    t_add (set, "no-ab", "{\"a\": [{\"exists\": false}], \"b\": [{\"exists\": false}]}");
    t_add (set, "a", "{\"a\": [{\"exists\": true}]}");
    assert_string_equal (t_match_set (set, "{}"), "no-a no-ab no-b");
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "a no-b");
    assert_string_equal (t_match_set (set, "{\"a\": 1, \"b\": 1}"), "a");
    zb_patterns_destroy (&set);
}

//  Every operator in one leaf and in one pattern.
static void
test_operators_together (void **state)
{
    (void) state;
    const char *leaf = "{\"v\": [\"exact\", {\"prefix\": \"pre\"}, {\"suffix\": \"suf\"},"
        "{\"equals-ignore-case\": \"CASE\"}, {\"wildcard\": \"w*d\"}, {\"numeric\": [\">\", 100]},"
        "{\"cidr\": \"10.0.0.0/8\"}, 42, null, true]}";
    const char *yes [] = { "\"exact\"", "\"prefix\"", "\"asuf\"", "\"case\"", "\"wild\"", "101",
                           "\"10.9.9.9\"", "42", "42.0", "null", "true" };
    const char *no [] = { "\"exac\"", "\"xpre\"", "\"sufx\"", "\"cases\"", "\"wil\"", "100",
                          "\"11.0.0.1\"", "43", "false", "\"42\"", "{}" };
    for (size_t i = 0; i < sizeof (yes) / sizeof (yes [0]); i++) {
        char event [64];
        snprintf (event, sizeof (event), "{\"v\": %s}", yes [i]);
        T_MATCH (leaf, event);
    }
    for (size_t i = 0; i < sizeof (no) / sizeof (no [0]); i++) {
        char event [64];
        snprintf (event, sizeof (event), "{\"v\": %s}", no [i]);
        T_NO_MATCH (leaf, event);
    }
}

//  Numeric ranges and anything-but beside a narrower field are LAZY
//  (pattern.c): the walk keeps the values, a candidate evaluates them. The
//  same operators as anchors are eager. Both kinds in one set, every form,
//  with arrays of objects.
static void
test_lazy_conditions (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    assert_non_null (set);
    t_add (set, "r1", "{\"id\": [\"A\"], \"total\": [{\"numeric\": [\">\", 100]}]}");
    t_add (set, "r2", "{\"id\": [\"A\"], \"total\": [{\"numeric\": [\">=\", 0, \"<\", 50]}, \"free\"]}");
    t_add (set, "r3", "{\"total\": [{\"numeric\": [\">\", 1000]}]}");
    t_add (set, "r4", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": {\"prefix\": \"st\"}}]}");
    t_add (set, "r5", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": {\"suffix\": \"9\"}}]}");
    t_add (set, "r6", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": {\"equals-ignore-case\": \"X\"}}]}");
    t_add (set, "r7", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": [\"s1\", \"s2\"]}]}");
    t_add (set, "r12", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": [5, 7]}]}");
    t_add (set, "r8", "{\"id\": [\"A\"], \"store\": [{\"anything-but\": {\"wildcard\": \"s*1\"}}]}");
    t_add (set, "r9", "{\"store\": [{\"anything-but\": \"s1\"}]}");
    t_add (set, "r10", "{\"items\": {\"sku\": [\"K\"], \"qty\": [{\"numeric\": [\">\", 2]}]}}");
    t_add (set, "r11", "{\"items\": {\"sku\": [\"K\"], \"tag\": [{\"anything-but\": \"old\"}]}}");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"total\": 150, \"store\": \"x\"}"),
                         "r1 r12 r4 r5 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"total\": \"free\", \"store\": \"s1\"}"),
                         "r12 r2 r4 r5 r6");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"total\": [20, 2000], \"store\": [5, \"st9\"]}"),
                         "r1 r12 r2 r3 r4 r5 r6 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"B\", \"total\": 2000, \"store\": \"q\"}"), "r3 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"store\": 5}"), "r4 r5 r6 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"store\": 5.0}"), "r4 r5 r6 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"store\": \"ST\"}"), "r12 r4 r5 r6 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"store\": null, \"total\": 50}"),
                         "r12 r4 r5 r6 r7 r8 r9");
    assert_string_equal (t_match_set (set, "{\"id\": \"A\", \"total\": 100, \"store\": \"s19\"}"),
                         "r12 r4 r6 r7 r8 r9");
    //  Array consistency: the lazy value must come from the anchor's element
    assert_string_equal (t_match_set (set, "{\"items\": [{\"sku\": \"K\", \"qty\": 1, \"tag\": \"old\"},"
                                           " {\"sku\": \"L\", \"qty\": 5, \"tag\": \"new\"}]}"), "");
    assert_string_equal (t_match_set (set, "{\"items\": [{\"sku\": \"L\", \"qty\": 1},"
                                           " {\"sku\": \"K\", \"qty\": 3, \"tag\": \"new\"}]}"), "r10 r11");
    zb_patterns_destroy (&set);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_prefix),
        cmocka_unit_test (test_suffix),
        cmocka_unit_test (test_affixes_ignoring_case),
        cmocka_unit_test (test_equals_ignore_case),
        cmocka_unit_test (test_wildcard),
        cmocka_unit_test (test_anything_but_values),
        cmocka_unit_test (test_anything_but_string_forms),
        cmocka_unit_test (test_numeric_comparisons),
        cmocka_unit_test (test_numeric_ranges),
        cmocka_unit_test (test_cidr),
        cmocka_unit_test (test_exists),
        cmocka_unit_test (test_operators_together),
        cmocka_unit_test (test_lazy_conditions),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
