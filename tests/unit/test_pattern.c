/*  test_pattern.c - the event-pattern matcher (common/pattern.h): exact
    values, null vs "" vs missing, types, numbers by value, AND/OR, nesting,
    event arrays and array consistency, $or, the EventBridge documentation's
    own examples, and the set API (names, replace, remove, many patterns).
    Operators: test_pattern_ops.c; rejections: test_pattern_errors.c;
    random patterns against a reference matcher: test_pattern_random.c. */

#include "pattern_helpers.h"

//  The example event of the EventBridge / Event Ruler documentation
#define DOC_EVENT "{" \
    "\"version\": \"0\"," \
    "\"id\": \"ddddd4-aaaa-7777-4444-345dd43cc333\"," \
    "\"detail-type\": \"EC2 Instance State-change Notification\"," \
    "\"source\": \"aws.ec2\"," \
    "\"account\": \"012345679012\"," \
    "\"time\": \"2017-10-02T16:24:49Z\"," \
    "\"region\": \"us-east-1\"," \
    "\"resources\": [\"arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000\"]," \
    "\"detail\": {" \
        "\"c-count\": 5," \
        "\"d-count\": 3," \
        "\"x-limit\": 301.8," \
        "\"source-ip\": \"10.0.0.33\"," \
        "\"instance-id\": \"i-000000aaaaaa00000\"," \
        "\"state\": \"running\"" \
    "}}"

//  A store event as zbridge publishes it
#define STORE_EVENT "{" \
    "\"version\": \"0\", \"id\": \"69a11362-ce29-43c2-b0b8-34da43b56106\"," \
    "\"detail-type\": \"sales-events\", \"source\": \"zbridge.store-producer\"," \
    "\"account\": \"000000000000\", \"time\": \"2026-11-26T17:44:59Z\", \"region\": \"local\"," \
    "\"resources\": []," \
    "\"detail\": {\"request_id\": \"4a69db98\", \"name\": \"Sylvara Moonbrook\"," \
    "\"category\": \"Monitors\", \"store_id\": \"store_5\", \"sales\": 6.78, \"new_order\": true}}"

//  --------------------------------------------------------------------------
//  Exact values

static void
test_exact_strings (void **state)
{
    (void) state;
    T_MATCH ("{\"source\": [\"aws.ec2\"]}", DOC_EVENT);
    T_NO_MATCH ("{\"source\": [\"aws.ec\"]}", DOC_EVENT);
    T_NO_MATCH ("{\"source\": [\"AWS.EC2\"]}", DOC_EVENT);        //  case matters
    T_NO_MATCH ("{\"source\": [\"aws.ec2 \"]}", DOC_EVENT);
    T_MATCH ("{\"source\": [\"aws.s3\", \"aws.ec2\"]}", DOC_EVENT);   //  OR
    T_MATCH ("{\"detail\": {\"state\": [\"running\"]}}", DOC_EVENT);
    T_MATCH ("{\"a\": [\"caf\xc3\xa9\"]}", "{\"a\": \"caf\xc3\xa9\"}");   //  UTF-8 bytes
    T_NO_MATCH ("{\"a\": [\"cafe\"]}", "{\"a\": \"caf\xc3\xa9\"}");
    T_MATCH ("{\"a\": [\"x\\u0000y\"]}", "{\"a\": \"x\\u0000y\"}");     //  NUL inside
    T_NO_MATCH ("{\"a\": [\"x\"]}", "{\"a\": \"x\\u0000y\"}");
}

static void
test_exact_literals (void **state)
{
    (void) state;
    T_MATCH ("{\"a\": [true]}", "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [true]}", "{\"a\": false}");
    T_MATCH ("{\"a\": [false]}", "{\"a\": false}");
    T_NO_MATCH ("{\"a\": [true]}", "{\"a\": \"true\"}");
    T_NO_MATCH ("{\"a\": [\"true\"]}", "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [true]}", "{\"a\": 1}");
    T_MATCH ("{\"a\": [null]}", "{\"a\": null}");
    T_NO_MATCH ("{\"a\": [\"null\"]}", "{\"a\": null}");
    T_NO_MATCH ("{\"a\": [null]}", "{\"a\": \"null\"}");
    T_NO_MATCH ("{\"a\": [null]}", "{\"a\": false}");
    T_NO_MATCH ("{\"a\": [false]}", "{\"a\": null}");
    T_NO_MATCH ("{\"a\": [null]}", "{\"a\": 0}");
    T_MATCH ("{\"detail\": {\"new_order\": [true]}}", STORE_EVENT);
}

static void
test_null_empty_and_missing_are_distinct (void **state)
{
    (void) state;
    //  The documentation's example (matching null values and empty strings)
    const char *event = "{\"version\": \"0\", \"id\": \"3e3c153a-8339-4e30-8c35-687ebef853fe\","
        "\"detail-type\": \"EC2 Instance Launch Successful\", \"source\": \"aws.autoscaling\","
        "\"account\": \"123456789012\", \"time\": \"2015-11-11T21:31:47Z\", \"region\": \"us-east-1\","
        "\"resources\": [], \"detail\": {\"eventVersion\": \"\", \"responseElements\": null}}";
    T_MATCH ("{\"detail\": {\"eventVersion\": [\"\"]}}", event);
    T_MATCH ("{\"detail\": {\"responseElements\": [null]}}", event);
    T_NO_MATCH ("{\"detail\": {\"eventVersion\": [null]}}", event);
    T_NO_MATCH ("{\"detail\": {\"responseElements\": [\"\"]}}", event);
    //  Neither matches a missing field
    T_NO_MATCH ("{\"detail\": {\"other\": [\"\"]}}", event);
    T_NO_MATCH ("{\"detail\": {\"other\": [null]}}", event);
    T_NO_MATCH ("{\"detail\": {\"other\": [null, \"\"]}}", event);
    T_NO_MATCH ("{\"nodetail\": {\"x\": [null]}}", event);
    //  Nor an empty array, an empty object, or an object
    T_NO_MATCH ("{\"a\": [null]}", "{\"a\": []}");
    T_NO_MATCH ("{\"a\": [\"\"]}", "{\"a\": []}");
    T_NO_MATCH ("{\"a\": [null]}", "{\"a\": {}}");
    T_NO_MATCH ("{\"a\": [\"\"]}", "{\"a\": {\"b\": \"\"}}");
    //  Arrays holding them do
    T_MATCH ("{\"a\": [null]}", "{\"a\": [1, null]}");
    T_MATCH ("{\"a\": [\"\"]}", "{\"a\": [\"x\", \"\"]}");
}

static void
test_types_are_distinct (void **state)
{
    (void) state;
    T_MATCH ("{\"a\": [42]}", "{\"a\": 42}");
    T_NO_MATCH ("{\"a\": [42]}", "{\"a\": \"42\"}");
    T_NO_MATCH ("{\"a\": [\"42\"]}", "{\"a\": 42}");
    T_MATCH ("{\"a\": [\"42\"]}", "{\"a\": \"42\"}");
    T_NO_MATCH ("{\"a\": [0]}", "{\"a\": false}");
    T_NO_MATCH ("{\"a\": [1]}", "{\"a\": true}");
    T_NO_MATCH ("{\"a\": [\"\"]}", "{\"a\": 0}");
}

static void
test_numbers_compare_by_value (void **state)
{
    (void) state;
    const char *forms [] = { "300", "300.0", "3.0e2", "3e2", "3E+2", "30000e-2", "300.000" };
    size_t n = sizeof (forms) / sizeof (forms [0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            char pattern [64], event [64];
            snprintf (pattern, sizeof (pattern), "{\"a\": [%s]}", forms [i]);
            snprintf (event, sizeof (event), "{\"a\": %s}", forms [j]);
            T_MATCH (pattern, event);
        }
    T_NO_MATCH ("{\"a\": [300]}", "{\"a\": 300.5}");
    T_NO_MATCH ("{\"a\": [300]}", "{\"a\": 301}");
    T_MATCH ("{\"a\": [0]}", "{\"a\": -0.0}");
    T_MATCH ("{\"a\": [-0.0]}", "{\"a\": 0}");
    T_MATCH ("{\"a\": [-17]}", "{\"a\": -17.0}");
    T_MATCH ("{\"a\": [0.1]}", "{\"a\": 1e-1}");
    T_MATCH ("{\"x\": [301.8]}", "{\"x\": 3.018e2}");
    T_MATCH ("{\"detail\": {\"sales\": [6.78]}}", STORE_EVENT);
    //  Exactly: integers beyond 2^53 are not rounded to doubles
    T_MATCH ("{\"a\": [9007199254740993]}", "{\"a\": 9007199254740993}");
    T_NO_MATCH ("{\"a\": [9007199254740993]}", "{\"a\": 9007199254740992}");
    T_NO_MATCH ("{\"a\": [9007199254740993]}", "{\"a\": 9007199254740992.0}");
    T_MATCH ("{\"a\": [9007199254740992]}", "{\"a\": 9007199254740992.0}");
    T_MATCH ("{\"a\": [18446744073709551615]}", "{\"a\": 18446744073709551615}");
    T_NO_MATCH ("{\"a\": [18446744073709551615]}", "{\"a\": 18446744073709551614}");
    T_MATCH ("{\"a\": [9223372036854775808]}", "{\"a\": 9.223372036854775808e18}");
    T_MATCH ("{\"a\": [-9223372036854775808]}", "{\"a\": -9.223372036854775808e18}");
    T_MATCH ("{\"a\": [1e300]}", "{\"a\": 1.0e300}");
    T_MATCH ("{\"a\": [1.7976931348623157e308]}", "{\"a\": 1.7976931348623157e308}");
    T_MATCH ("{\"a\": [5e-324]}", "{\"a\": 4.9406564584124654e-324}");
}

//  A float32 in the event (not produced from JSON) is a number like any other.
static void
test_float32_values (void **state)
{
    (void) state;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "a", 1);
    msgpack_pack_float (&pk, 2.5f);
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&result, sbuf.data, sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "eq", "{\"a\": [2.5]}");
    t_add (set, "range", "{\"a\": [{\"numeric\": [\">\", 2, \"<\", 3]}]}");
    t_add (set, "not", "{\"a\": [{\"anything-but\": [2.5]}]}");
    const char *names [4];
    assert_int_equal (zb_patterns_match (set, &result.data, names, 4), 2);
    zb_patterns_destroy (&set);
    msgpack_unpacked_destroy (&result);
    msgpack_sbuffer_destroy (&sbuf);
}

//  --------------------------------------------------------------------------
//  Structure

static void
test_fields_are_anded_and_others_ignored (void **state)
{
    (void) state;
    T_MATCH ("{\"source\": [\"aws.ec2\"], \"detail-type\": [\"EC2 Instance State-change Notification\"]}",
             DOC_EVENT);
    T_NO_MATCH ("{\"source\": [\"aws.ec2\"], \"detail-type\": [\"other\"]}", DOC_EVENT);
    T_NO_MATCH ("{\"source\": [\"aws.ec2\"], \"missing\": [\"x\"]}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"state\": [\"running\"], \"c-count\": [5], \"d-count\": [3]}}", DOC_EVENT);
    T_NO_MATCH ("{\"detail\": {\"state\": [\"running\"], \"c-count\": [6]}}", DOC_EVENT);
}

static void
test_nested_fields_at_any_depth (void **state)
{
    (void) state;
    const char *event = "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": \"deep\"}}}}, \"h\": 1}}}";
    T_MATCH ("{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": [\"deep\"]}}}}}}}", event);
    T_NO_MATCH ("{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": [\"shallow\"]}}}}}}}", event);
    T_MATCH ("{\"a\": {\"b\": {\"h\": [1]}}}", event);
    T_MATCH ("{\"a\": {\"b\": {\"h\": [1], \"c\": {\"d\": {\"e\": {\"f\": {\"g\": [\"deep\"]}}}}}}}", event);
    //  Structure must agree: an object is not a leaf, a leaf is not an object
    T_NO_MATCH ("{\"a\": {\"b\": [\"x\"]}}", event);
    T_NO_MATCH ("{\"a\": {\"b\": {\"h\": {\"i\": [1]}}}}", event);
    //  A dotted key is a key, not a path
    T_NO_MATCH ("{\"a.b\": {\"h\": [1]}}", event);
    T_MATCH ("{\"a.b\": [1]}", "{\"a.b\": 1}");
    T_NO_MATCH ("{\"a\": {\"b\": [1]}}", "{\"a.b\": 1}");
    T_MATCH ("{\"\": [1]}", "{\"\": 1}");        //  the empty key is a key too
}

static void
test_event_arrays (void **state)
{
    (void) state;
    //  Any element matches (documentation: matching multiple values)
    const char *event = "{\"resources\": ["
        "\"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b\","
        "\"arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f\"]}";
    T_MATCH ("{\"resources\": [\"arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f\","
             "\"arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f\","
             "\"arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f\"]}", event);
    T_NO_MATCH ("{\"resources\": [\"arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f\"]}", event);
    //  Nested arrays are crossed too, mixed types
    T_MATCH ("{\"a\": [3]}", "{\"a\": [[1, 2], [3, [4]]]}");
    T_MATCH ("{\"a\": [4]}", "{\"a\": [[1, 2], [3, [4]]]}");
    T_NO_MATCH ("{\"a\": [5]}", "{\"a\": [[1, 2], [3, [4]]]}");
    T_MATCH ("{\"a\": [\"x\"]}", "{\"a\": [1, null, true, \"x\"]}");
    //  Arrays of objects: the objects' fields
    T_MATCH ("{\"a\": {\"b\": [2]}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}");
    T_MATCH ("{\"a\": {\"b\": [2]}}", "{\"a\": [[{\"b\": 1}], [{\"b\": 2}]]}");
    T_NO_MATCH ("{\"a\": {\"b\": [3]}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}");
    T_NO_MATCH ("{\"a\": [{\"exists\": true}]}", "{\"a\": [{\"b\": 1}]}");
    //  Empty arrays hold no value
    T_NO_MATCH ("{\"resources\": [\"x\"]}", STORE_EVENT);
    //  Two fields in an array of scalars may use different elements
    T_MATCH ("{\"a\": [\"x\"], \"$or\": [{\"a\": [\"y\"]}, {\"b\": [1]}]}", "{\"a\": [\"x\", \"y\"]}");
}

static void
test_array_consistency (void **state)
{
    (void) state;
    //  Event Ruler's documented example
    const char *employees = "{\"employees\": ["
        "{\"firstName\": \"John\", \"lastName\": \"Doe\"},"
        "{\"firstName\": \"Anna\", \"lastName\": \"Smith\"},"
        "{\"firstName\": \"Peter\", \"lastName\": \"Jones\"}]}";
    T_MATCH ("{\"employees\": {\"firstName\": [\"Anna\"]}}", employees);
    T_MATCH ("{\"employees\": {\"firstName\": [\"Anna\"], \"lastName\": [\"Smith\"]}}", employees);
    T_NO_MATCH ("{\"employees\": {\"firstName\": [\"Anna\"], \"lastName\": [\"Jones\"]}}", employees);
    T_MATCH ("{\"employees\": {\"firstName\": [\"Anna\", \"Peter\"], \"lastName\": [\"Jones\"]}}", employees);
    //  Multi-level arrays are crossed, and stay consistent
    const char *multi = "{\"employees\": [["
        "{\"firstName\": \"John\", \"lastName\": \"Doe\"},"
        "{\"firstName\": \"Anna\", \"lastName\": \"Smith\"}],"
        "[{\"firstName\": \"Peter\", \"lastName\": \"Jones\"}]]}";
    T_MATCH ("{\"employees\": {\"firstName\": [\"Anna\"]}}", multi);
    T_MATCH ("{\"employees\": {\"firstName\": [\"Peter\"], \"lastName\": [\"Jones\"]}}", multi);
    T_NO_MATCH ("{\"employees\": {\"firstName\": [\"Anna\"], \"lastName\": [\"Jones\"]}}", multi);
    T_NO_MATCH ("{\"employees\": {\"firstName\": [\"John\"], \"lastName\": [\"Smith\"]}}", multi);
    //  Fields in different arrays are independent; outer fields go with any element
    const char *order = "{\"id\": 7, \"lines\": [{\"sku\": \"A\", \"qty\": 1}, {\"sku\": \"B\", \"qty\": 5}],"
        "\"notes\": [{\"by\": \"ann\"}, {\"by\": \"bob\"}]}";
    T_MATCH ("{\"id\": [7], \"lines\": {\"sku\": [\"B\"], \"qty\": [5]}, \"notes\": {\"by\": [\"ann\"]}}", order);
    T_NO_MATCH ("{\"id\": [7], \"lines\": {\"sku\": [\"B\"], \"qty\": [1]}}", order);
    T_MATCH ("{\"lines\": {\"sku\": [\"A\"], \"qty\": [{\"numeric\": [\"<\", 2]}]}}", order);
    T_NO_MATCH ("{\"lines\": {\"sku\": [\"A\"], \"qty\": [{\"numeric\": [\">\", 2]}]}}", order);
    //  Nested arrays of objects within one element
    const char *deep = "{\"a\": [{\"k\": 1, \"b\": [{\"x\": 1, \"y\": 2}, {\"x\": 3, \"y\": 4}]},"
                               "{\"k\": 2, \"b\": [{\"x\": 5, \"y\": 6}]}]}";
    T_MATCH ("{\"a\": {\"k\": [1], \"b\": {\"x\": [3], \"y\": [4]}}}", deep);
    T_NO_MATCH ("{\"a\": {\"k\": [1], \"b\": {\"x\": [3], \"y\": [2]}}}", deep);
    T_NO_MATCH ("{\"a\": {\"k\": [2], \"b\": {\"x\": [3]}}}", deep);
    T_MATCH ("{\"a\": {\"k\": [2], \"b\": {\"x\": [5], \"y\": [6]}}}", deep);
    //  Scalars straight in an array do not bind an element
    T_MATCH ("{\"a\": {\"b\": [1], \"c\": [\"q\"]}}", "{\"a\": [{\"b\": [1, 2], \"c\": [\"p\", \"q\"]}]}");
    //  Consistency holds through $or branches
    T_MATCH ("{\"e\": {\"$or\": [{\"f\": [\"Anna\"], \"l\": [\"Smith\"]}, {\"f\": [\"X\"]}]}}",
             "{\"e\": [{\"f\": \"Anna\", \"l\": \"Doe\"}, {\"f\": \"Anna\", \"l\": \"Smith\"}]}");
    T_NO_MATCH ("{\"e\": {\"$or\": [{\"f\": [\"Anna\"], \"l\": [\"Smith\"]}, {\"f\": [\"X\"]}]}}",
                "{\"e\": [{\"f\": \"Anna\", \"l\": \"Doe\"}, {\"f\": \"Bo\", \"l\": \"Smith\"}]}");
}

static void
test_exists_false_in_arrays (void **state)
{
    (void) state;
    const char *event = "{\"items\": [{\"sku\": \"A\"}, {\"sku\": \"B\", \"gift\": true}]}";
    //  The element with sku A has no gift
    T_MATCH ("{\"items\": {\"sku\": [\"A\"], \"gift\": [{\"exists\": false}]}}", event);
    T_NO_MATCH ("{\"items\": {\"sku\": [\"B\"], \"gift\": [{\"exists\": false}]}}", event);
    T_MATCH ("{\"items\": {\"sku\": [\"B\"], \"gift\": [{\"exists\": true}]}}", event);
    T_NO_MATCH ("{\"items\": {\"sku\": [\"A\"], \"gift\": [{\"exists\": true}]}}", event);
    //  Nothing else to anchor it: some element has a gift
    T_NO_MATCH ("{\"items\": {\"gift\": [{\"exists\": false}]}}", event);
    T_MATCH ("{\"items\": {\"wrap\": [{\"exists\": false}]}}", event);
    //  exists:false mixed with a value: either
    T_MATCH ("{\"items\": {\"sku\": [\"B\"], \"gift\": [false, {\"exists\": false}]}}",
             "{\"items\": [{\"sku\": \"B\"}]}");
    T_MATCH ("{\"items\": {\"sku\": [\"B\"], \"gift\": [false, {\"exists\": false}]}}",
             "{\"items\": [{\"sku\": \"B\", \"gift\": false}]}");
    T_NO_MATCH ("{\"items\": {\"sku\": [\"B\"], \"gift\": [false, {\"exists\": false}]}}",
                "{\"items\": [{\"sku\": \"B\", \"gift\": true}]}");
    //  Two absent fields, each free in the element the match uses
    T_MATCH ("{\"x\": {\"k\": [1], \"a\": [{\"exists\": false}], \"b\": [{\"exists\": false}]}}",
             "{\"x\": [{\"k\": 1, \"a\": 1}, {\"k\": 1, \"b\": 1}, {\"k\": 1}]}");
    T_NO_MATCH ("{\"x\": {\"k\": [1], \"a\": [{\"exists\": false}], \"b\": [{\"exists\": false}]}}",
                "{\"x\": [{\"k\": 1, \"a\": 1}, {\"k\": 1, \"b\": 1}, {\"k\": 2}]}");
    //  A value outside the array sees every element
    T_NO_MATCH ("{\"top\": [1], \"x\": {\"a\": [{\"exists\": false}]}}",
                "{\"top\": 1, \"x\": [{\"a\": 1}]}");
    T_MATCH ("{\"top\": [1], \"x\": {\"a\": [{\"exists\": false}]}}", "{\"top\": 1, \"x\": [{\"b\": 1}]}");
}

//  --------------------------------------------------------------------------
//  $or

static void
test_or (void **state)
{
    (void) state;
    //  Event Ruler's documented forms: "source" && ("metricName" || "namespace")
    const char *p1 = "{\"source\": [\"aws.cloudwatch\"], \"$or\": ["
        "{\"metricName\": [\"CPUUtilization\", \"ReadLatency\"]},"
        "{\"namespace\": [\"AWS/EC2\", \"AWS/ES\"]}]}";
    T_MATCH (p1, "{\"source\": \"aws.cloudwatch\", \"metricName\": \"ReadLatency\"}");
    T_MATCH (p1, "{\"source\": \"aws.cloudwatch\", \"namespace\": \"AWS/ES\"}");
    T_MATCH (p1, "{\"source\": \"aws.cloudwatch\", \"metricName\": \"CPUUtilization\", \"namespace\": \"AWS/ES\"}");
    T_NO_MATCH (p1, "{\"source\": \"aws.cloudwatch\", \"metricName\": \"Other\"}");
    T_NO_MATCH (p1, "{\"source\": \"aws.s3\", \"metricName\": \"ReadLatency\"}");
    //  Parallel $or at two levels
    const char *p2 = "{\"$or\": [{\"metricName\": [\"CPUUtilization\"]}, {\"namespace\": [\"AWS/EC2\"]}],"
        "\"detail\": {\"$or\": [{\"source\": [\"aws.cloudwatch\"]},"
        "{\"detail-type\": [\"CloudWatch Alarm State Change\"]}]}}";
    T_MATCH (p2, "{\"namespace\": \"AWS/EC2\", \"detail\": {\"source\": \"aws.cloudwatch\"}}");
    T_MATCH (p2, "{\"metricName\": \"CPUUtilization\", \"detail\": {\"detail-type\": \"CloudWatch Alarm State Change\"}}");
    T_NO_MATCH (p2, "{\"namespace\": \"AWS/EC2\"}");
    T_NO_MATCH (p2, "{\"detail\": {\"source\": \"aws.cloudwatch\"}}");
    //  "Or" with an "And" inside
    const char *p3 = "{\"source\": [\"aws.cloudwatch\"], \"$or\": ["
        "{\"metricName\": [\"CPUUtilization\", \"ReadLatency\"]},"
        "{\"metricType\": [\"MetricType\"], \"namespace\": [\"AWS/EC2\", \"AWS/ES\"]},"
        "{\"scope\": [\"Service\"]}]}";
    T_MATCH (p3, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\", \"namespace\": \"AWS/EC2\"}");
    T_NO_MATCH (p3, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\"}");
    T_MATCH (p3, "{\"source\": \"aws.cloudwatch\", \"scope\": \"Service\"}");
    //  Nested $or and And
    const char *p4 = "{\"source\": [\"aws.cloudwatch\"], \"$or\": ["
        "{\"metricName\": [\"CPUUtilization\", \"ReadLatency\"]},"
        "{\"metricType\": [\"MetricType\"], \"namespace\": [\"AWS/EC2\", \"AWS/ES\"],"
        " \"$or\": [{\"metricId\": [1234]}, {\"spaceId\": [1000]}]},"
        "{\"scope\": [\"Service\"]}]}";
    T_MATCH (p4, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\", \"namespace\": \"AWS/ES\", \"spaceId\": 1000}");
    T_MATCH (p4, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\", \"namespace\": \"AWS/ES\", \"metricId\": 1234}");
    T_NO_MATCH (p4, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\", \"namespace\": \"AWS/ES\"}");
    T_NO_MATCH (p4, "{\"source\": \"aws.cloudwatch\", \"metricType\": \"MetricType\", \"spaceId\": 1000}");
    T_MATCH (p4, "{\"source\": \"aws.cloudwatch\", \"metricName\": \"ReadLatency\"}");
    //  $or inside a nested object, alternatives relative to it
    T_MATCH ("{\"detail\": {\"$or\": [{\"category\": [\"Books\"]}, {\"sales\": [{\"numeric\": [\"<\", 10]}]}]}}",
             STORE_EVENT);
    T_NO_MATCH ("{\"detail\": {\"$or\": [{\"category\": [\"Books\"]}, {\"sales\": [{\"numeric\": [\">\", 10]}]}]}}",
                STORE_EVENT);
    //  Alternatives with exists:false only
    T_MATCH ("{\"$or\": [{\"a\": [{\"exists\": false}]}, {\"b\": [1]}]}", "{\"b\": 2}");
    T_NO_MATCH ("{\"$or\": [{\"a\": [{\"exists\": false}]}, {\"b\": [1]}]}", "{\"a\": 1, \"b\": 2}");
    T_MATCH ("{\"$or\": [{\"a\": [{\"exists\": false}]}, {\"b\": [1]}]}", "{\"a\": 1, \"b\": 1}");
    //  Deep nesting of $or inside $or
    const char *p5 = "{\"$or\": [{\"a\": [1]}, {\"$or\": [{\"b\": [2]}, {\"$or\": [{\"c\": [3]}, {\"d\": [4]}]}]}]}";
    T_MATCH (p5, "{\"d\": 4}");
    T_MATCH (p5, "{\"b\": 2}");
    T_NO_MATCH (p5, "{\"e\": 5}");
}

static void
test_or_with_many_combinations (void **state)
{
    (void) state;
    //  10 x 10 x 10 = 1000 combinations: allowed, and all reachable
    char pattern [4096];
    size_t n = 0;
    n += (size_t) snprintf (pattern + n, sizeof (pattern) - n, "{");
    for (int g = 0; g < 3; g++) {
        n += (size_t) snprintf (pattern + n, sizeof (pattern) - n, "%s\"g%d\": {\"$or\": [",
                                g? ", ": "", g);
        for (int a = 0; a < 10; a++)
            n += (size_t) snprintf (pattern + n, sizeof (pattern) - n, "%s{\"f%d\": [%d]}",
                                    a? ", ": "", a, a);
        n += (size_t) snprintf (pattern + n, sizeof (pattern) - n, "]}");
    }
    snprintf (pattern + n, sizeof (pattern) - n, "}");
    zb_patterns_t *set = zb_patterns_new ();
    zb_patterns_set_max_size (set, 0);
    t_add (set, "big", pattern);
    assert_string_equal (t_match_set (set, "{\"g0\": {\"f3\": 3}, \"g1\": {\"f9\": 9}, \"g2\": {\"f0\": 0}}"), "big");
    assert_string_equal (t_match_set (set, "{\"g0\": {\"f3\": 3}, \"g1\": {\"f9\": 8}, \"g2\": {\"f0\": 0}}"), "");
    assert_string_equal (t_match_set (set, "{\"g0\": {\"f3\": 3}, \"g1\": {\"f9\": 9}}"), "");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  The EventBridge documentation's examples (content filtering)

static void
test_documentation_examples (void **state)
{
    (void) state;
    //  Simple matching
    T_MATCH ("{\"detail-type\": [\"EC2 Instance State-change Notification\"],"
             "\"resources\": [\"arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000\"],"
             "\"detail\": {\"state\": [\"initializing\", \"running\"]}}", DOC_EVENT);
    //  Prefix, suffix, equals-ignore-case, wildcard
    T_MATCH ("{\"time\": [{\"prefix\": \"2017-10-02\"}]}", DOC_EVENT);
    T_MATCH ("{\"source\": [{\"suffix\": \"ec2\"}]}", DOC_EVENT);
    T_MATCH ("{\"source\": [{\"equals-ignore-case\": \"AWS.EC2\"}]}", DOC_EVENT);
    T_MATCH ("{\"source\": [{\"wildcard\": \"Simple*Service\"}]}", "{\"source\": \"SimpleQueueService\"}");
    //  Anything-but
    T_MATCH ("{\"detail\": {\"state\": [{\"anything-but\": \"initializing\"}]}}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"x-limit\": [{\"anything-but\": 123}]}}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"state\": [{\"anything-but\": [\"stopped\", \"overloaded\"]}]}}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"x-limit\": [{\"anything-but\": [100, 200, 300]}]}}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"state\": [{\"anything-but\": {\"prefix\": \"init\"}}]}}", DOC_EVENT);
    //  Numeric
    T_MATCH ("{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \"<=\", 5]}],"
             "\"d-count\": [{\"numeric\": [\"<\", 10]}],"
             "\"x-limit\": [{\"numeric\": [\"=\", 3.018e2]}]}}", DOC_EVENT);
    //  IP address
    T_MATCH ("{\"detail\": {\"source-ip\": [{\"cidr\": \"10.0.0.0/24\"}]}}", DOC_EVENT);
    //  Exists
    T_MATCH ("{\"detail\": {\"c-count\": [{\"exists\": true}]}}", DOC_EVENT);
    T_NO_MATCH ("{\"detail\": {\"c-count\": [{\"exists\": false}]}}", DOC_EVENT);
    T_MATCH ("{\"detail\": {\"c-count\": [{\"exists\": false}]}}",
             "{\"detail-type\": \"EC2 Instance State-change Notification\","
             "\"detail\": {\"state\": [\"initializing\", \"running\"]}}");
    //  ... also when c-count is an object: exists works on leaves only
    T_MATCH ("{\"detail\": {\"c-count\": [{\"exists\": false}]}}",
             "{\"detail\": {\"state\": [\"initializing\", \"running\"], \"c-count\": {\"c1\": 100}}}");
    T_NO_MATCH ("{\"detail\": {\"state\": [{\"exists\": true}]}}",
                "{\"detail\": {\"c-count\": {\"c1\": 100}}}");
    T_MATCH ("{\"detail\": {\"state\": [{\"exists\": true}]}}",
             "{\"version\": \"0\", \"id\": \"7bf73129-1428-4cd3-a780-95db273d1602\","
             "\"detail-type\": \"EC2 Instance State-change Notification\", \"source\": \"aws.ec2\","
             "\"account\": \"123456789012\", \"time\": \"2015-11-11T21:29:54Z\", \"region\": \"us-east-1\","
             "\"resources\": [\"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111\"],"
             "\"detail\": {\"instance-id\": \"i-abcd1111\", \"state\": \"pending\"}}");
    //  Complex example
    const char *complex = "{\"time\": [{\"prefix\": \"2017-10-02\"}], \"detail\": {"
        "\"state\": [{\"anything-but\": \"initializing\"}],"
        "\"c-count\": [{\"numeric\": [\">\", 0, \"<=\", 5]}],"
        "\"d-count\": [{\"numeric\": [\"<\", 10]}],"
        "\"x-limit\": [{\"anything-but\": [100, 200, 300]}],"
        "\"source-ip\": [{\"cidr\": \"10.0.0.0/8\"}]}}";
    T_MATCH (complex, DOC_EVENT);
    T_NO_MATCH (complex, "{\"time\": \"2017-10-02T16:24:49Z\", \"detail\": {\"state\": \"initializing\","
                "\"c-count\": 5, \"d-count\": 3, \"x-limit\": 301.8, \"source-ip\": \"10.0.0.33\"}}");
    T_NO_MATCH (complex, "{\"time\": \"2017-10-02T16:24:49Z\", \"detail\": {\"state\": \"running\","
                "\"c-count\": 5, \"d-count\": 3, \"x-limit\": 300, \"source-ip\": \"10.0.0.33\"}}");
    T_NO_MATCH (complex, "{\"time\": \"2017-10-02T16:24:49Z\", \"detail\": {\"state\": \"running\","
                "\"c-count\": 5, \"d-count\": 3, \"x-limit\": 301.8, \"source-ip\": \"11.0.0.33\"}}");
    //  Operator table of the current documentation
    T_MATCH ("{\"Region\": [{\"anything-but\": {\"prefix\": \"us-\"}}]}", "{\"Region\": \"eu-west-1\"}");
    T_NO_MATCH ("{\"Region\": [{\"anything-but\": {\"prefix\": \"us-\"}}]}", "{\"Region\": \"us-east-1\"}");
    T_MATCH ("{\"FileName\": [{\"anything-but\": {\"suffix\": \".png\"}}]}", "{\"FileName\": \"a.jpg\"}");
    T_NO_MATCH ("{\"FileName\": [{\"anything-but\": {\"suffix\": \".png\"}}]}", "{\"FileName\": \"a.png\"}");
    T_NO_MATCH ("{\"state\": [{\"anything-but\": {\"equals-ignore-case\": \"initializing\"}}]}",
                "{\"state\": \"INITIALIZING\"}");
    T_MATCH ("{\"FilePath\": [{\"anything-but\": {\"wildcard\": \"*/lib/*\"}}]}", "{\"FilePath\": \"/usr/bin/x\"}");
    T_NO_MATCH ("{\"FilePath\": [{\"anything-but\": {\"wildcard\": \"*/lib/*\"}}]}", "{\"FilePath\": \"/usr/lib/x\"}");
    T_MATCH ("{\"service\": [{\"prefix\": {\"equals-ignore-case\": \"eventb\"}}]}", "{\"service\": \"EventBridge\"}");
    T_MATCH ("{\"LastName\": [\"\"]}", "{\"LastName\": \"\"}");
    T_MATCH ("{\"Name\": [{\"equals-ignore-case\": \"alice\"}]}", "{\"Name\": \"Alice\"}");
    T_MATCH ("{\"service\": [{\"suffix\": {\"equals-ignore-case\": \"tbridge\"}}]}", "{\"service\": \"EVENTBRIDGE\"}");
    T_MATCH ("{\"Location\": [\"New York\"], \"Day\": [\"Monday\"]}", "{\"Location\": \"New York\", \"Day\": \"Monday\"}");
    T_NO_MATCH ("{\"Location\": [\"New York\"], \"Day\": [\"Monday\"]}", "{\"Location\": \"New York\", \"Day\": \"Friday\"}");
}

//  The store domain, as zbridge's users will write it
static void
test_store_examples (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "big-sales", "{\"detail-type\": [\"sales-events\"], \"detail\": {\"sales\": [{\"numeric\": [\">\", 50]}]}}");
    t_add (set, "store-5", "{\"detail\": {\"store_id\": [\"store_5\"]}}");
    t_add (set, "returns", "{\"detail\": {\"new_order\": [false]}}");
    t_add (set, "not-groceries", "{\"detail\": {\"category\": [{\"anything-but\": [\"Groceries\"]}]}}");
    t_add (set, "no-store", "{\"detail\": {\"store_id\": [{\"exists\": false}]}}");
    t_add (set, "sales", "{\"detail-type\": [\"sales-events\"]}");
    t_add (set, "mon-or-books", "{\"detail\": {\"category\": [{\"prefix\": \"Mon\"}, \"Books\"]}}");
    assert_int_equal (zb_patterns_size (set), 7);
    assert_string_equal (t_match_set (set, STORE_EVENT), "mon-or-books not-groceries sales store-5");
    assert_string_equal (t_match_set (set,
        "{\"detail-type\": \"sales-events\", \"detail\": {\"category\": \"Groceries\", \"sales\": 81.6,"
        "\"new_order\": false}}"), "big-sales no-store returns sales");
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"inventory-events\"}"), "no-store");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  The set

static void
test_set_names_replace_remove (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    assert_int_equal (zb_patterns_size (set), 0);
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "");
    t_add (set, "one", "{\"a\": [1]}");
    t_add (set, "two", "{\"a\": [2]}");
    t_add (set, "any", "{\"a\": [{\"exists\": true}]}");
    assert_int_equal (zb_patterns_size (set), 3);
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "any one");
    assert_string_equal (t_match_set (set, "{\"a\": [1, 2]}"), "any one two");
    //  Replace: same name, new pattern; the set does not grow
    t_add (set, "one", "{\"a\": [3]}");
    assert_int_equal (zb_patterns_size (set), 3);
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "any");
    assert_string_equal (t_match_set (set, "{\"a\": 3}"), "any one");
    //  A rejected replacement leaves the old pattern in place
    char err [256];
    assert_int_equal (zb_patterns_add (set, "one", "{\"a\": 3}", 8, err, sizeof (err)), -1);
    assert_string_equal (t_match_set (set, "{\"a\": 3}"), "any one");
    //  Remove
    assert_int_equal (zb_patterns_remove (set, "one"), 0);
    assert_int_equal (zb_patterns_remove (set, "one"), -1);
    assert_int_equal (zb_patterns_remove (set, "never"), -1);
    assert_int_equal (zb_patterns_remove (set, NULL), -1);
    assert_int_equal (zb_patterns_size (set), 2);
    assert_string_equal (t_match_set (set, "{\"a\": [1, 2, 3]}"), "any two");
    assert_int_equal (zb_patterns_remove (set, "any"), 0);
    assert_int_equal (zb_patterns_remove (set, "two"), 0);
    assert_string_equal (t_match_set (set, "{\"a\": 2}"), "");
    t_add (set, "back", "{\"a\": [2]}");
    assert_string_equal (t_match_set (set, "{\"a\": 2}"), "back");
    //  A name is needed
    assert_int_equal (zb_patterns_add (set, "", "{\"a\": [1]}", 10, err, sizeof (err)), -1);
    assert_string_equal (err, "a pattern needs a name");
    assert_int_equal (zb_patterns_add (set, NULL, "{\"a\": [1]}", 10, err, sizeof (err)), -1);
    zb_patterns_destroy (&set);
    assert_null (set);
    zb_patterns_destroy (&set);     //  twice is harmless
}

static void
test_each_name_once_and_the_count (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    //  Matches through several branches and several values: reported once
    t_add (set, "multi", "{\"$or\": [{\"a\": [1, 2]}, {\"b\": [{\"exists\": true}]}, {\"c\": [{\"prefix\": \"\"}]}]}");
    t_add (set, "other", "{\"a\": [{\"numeric\": [\">\", 0]}]}");
    t_add (set, "third", "{\"b\": [{\"anything-but\": 0}]}");
    assert_string_equal (t_match_set (set, "{\"a\": [1, 2], \"b\": [5, 6], \"c\": \"x\"}"), "multi other third");
    //  max_names smaller than the count: the count is still right
    t_event_t ev;
    t_event_init (&ev, "{\"a\": [1, 2], \"b\": [5, 6], \"c\": \"x\"}");
    const char *names [2] = { NULL, NULL };
    assert_int_equal (zb_patterns_match (set, &ev.result.data, names, 1), 3);
    assert_non_null (names [0]);
    assert_null (names [1]);
    assert_int_equal (zb_patterns_match (set, &ev.result.data, NULL, 0), 3);
    t_event_fini (&ev);
    //  Not a map: nothing matches
    t_event_init (&ev, "[1, 2]");
    assert_int_equal (zb_patterns_match (set, &ev.result.data, names, 2), 0);
    t_event_fini (&ev);
    assert_int_equal (zb_patterns_match (set, NULL, names, 2), 0);
    zb_patterns_destroy (&set);
}

//  Binary and extension values (not JSON) are ignored as values.
static void
test_non_json_values (void **state)
{
    (void) state;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    msgpack_pack_str_with_body (&pk, "bin", 3);
    msgpack_pack_bin_with_body (&pk, "xy", 2);
    msgpack_pack_int (&pk, 7);          //  a non-string key: skipped
    msgpack_pack_int (&pk, 7);
    msgpack_pack_str_with_body (&pk, "s", 1);
    msgpack_pack_str_with_body (&pk, "xy", 2);
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&result, sbuf.data, sbuf.size, &off), MSGPACK_UNPACK_SUCCESS);
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "bin-exists", "{\"bin\": [{\"exists\": true}]}");
    t_add (set, "bin-absent", "{\"bin\": [{\"exists\": false}]}");
    t_add (set, "bin-not", "{\"bin\": [{\"anything-but\": \"q\"}]}");
    t_add (set, "s", "{\"s\": [\"xy\"]}");
    const char *names [8];
    size_t n = zb_patterns_match (set, &result.data, names, 8);
    qsort (names, n, sizeof (char *), t_cmp_str);
    assert_int_equal (n, 2);
    assert_string_equal (names [0], "bin-absent");
    assert_string_equal (names [1], "s");
    zb_patterns_destroy (&set);
    msgpack_unpacked_destroy (&result);
    msgpack_sbuffer_destroy (&sbuf);
}

//  Many patterns sharing paths and values: each finds exactly its events.
static void
test_many_patterns (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    char name [32], pattern [256];
    for (int i = 0; i < 500; i++) {
        snprintf (name, sizeof (name), "exact-%d", i);
        snprintf (pattern, sizeof (pattern), "{\"detail\": {\"store_id\": [\"store_%d\"]}}", i);
        t_add (set, name, pattern);
        snprintf (name, sizeof (name), "prefix-%d", i);
        snprintf (pattern, sizeof (pattern), "{\"detail\": {\"store_id\": [{\"prefix\": \"store_%d\"}]}}", i);
        t_add (set, name, pattern);
        snprintf (name, sizeof (name), "range-%d", i);
        snprintf (pattern, sizeof (pattern), "{\"detail\": {\"sales\": [{\"numeric\": [\">=\", %d, \"<\", %d]}]}}",
                  i, i + 10);
        t_add (set, name, pattern);
    }
    assert_int_equal (zb_patterns_size (set), 1500);
    assert_string_equal (t_match_set (set, "{\"detail\": {\"store_id\": \"store_42\", \"sales\": 12}}"),
        "exact-42 prefix-4 prefix-42 range-10 range-11 range-12 range-3 range-4 range-5 range-6 range-7 range-8 range-9");
    assert_string_equal (t_match_set (set, "{\"detail\": {\"store_id\": \"store_499\", \"sales\": 0}}"),
        "exact-499 prefix-4 prefix-49 prefix-499 range-0");
    assert_string_equal (t_match_set (set, "{\"detail\": {\"store_id\": \"shop\", \"sales\": -1}}"), "");
    for (int i = 0; i < 500; i++) {
        snprintf (name, sizeof (name), "prefix-%d", i);
        assert_int_equal (zb_patterns_remove (set, name), 0);
    }
    assert_string_equal (t_match_set (set, "{\"detail\": {\"store_id\": \"store_499\", \"sales\": 508.5}}"),
        "exact-499 range-499");
    zb_patterns_destroy (&set);
}

//  Conditions shared by many patterns (one condition in the index), and
//  patterns filed under a condition whose other conditions fail.
static void
test_shared_conditions (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    char name [32], pattern [512];
    for (int i = 0; i < 200; i++) {
        snprintf (name, sizeof (name), "r%03d", i);
        snprintf (pattern, sizeof (pattern), "{\"detail-type\": [\"sales-events\"], \"detail\": {"
                  "\"store_id\": [\"store_%d\"], \"$or\": [{\"sales\": [{\"numeric\": [\">\", %d]}]},"
                  "{\"category\": [\"Books\"]}, {\"new_order\": [false]}]}}", i % 20, i % 10);
        t_add (set, name, pattern);
    }
    //  store_5: r005 r025 ... r185 (10 patterns), sales 7.5 > i % 10 = 5
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"sales-events\", \"detail\": {"
        "\"store_id\": \"store_5\", \"sales\": 7.5, \"category\": \"Toys\", \"new_order\": true}}"),
        "r005 r025 r045 r065 r085 r105 r125 r145 r165 r185");
    //  store_7 (i % 10 = 7): 7.5 > 7 holds; store_9: 7.5 > 9 fails
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"sales-events\", \"detail\": {"
        "\"store_id\": [\"store_7\", \"store_9\"], \"sales\": 7.5, \"category\": \"Toys\", \"new_order\": true}}"),
        "r007 r027 r047 r067 r087 r107 r127 r147 r167 r187");
    //  Books: all of store_9's
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"sales-events\", \"detail\": {"
        "\"store_id\": \"store_9\", \"sales\": 0, \"category\": \"Books\"}}"),
        "r009 r029 r049 r069 r089 r109 r129 r149 r169 r189");
    //  The shared detail-type fails: nothing
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"inventory-events\", \"detail\": {"
        "\"store_id\": \"store_9\", \"category\": \"Books\"}}"), "");
    //  Remove half: the shared conditions stay right for the others
    for (int i = 0; i < 200; i += 2) {
        snprintf (name, sizeof (name), "r%03d", i);
        assert_int_equal (zb_patterns_remove (set, name), 0);
    }
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"sales-events\", \"detail\": {"
        "\"store_id\": \"store_5\", \"new_order\": false}}"),
        "r005 r025 r045 r065 r085 r105 r125 r145 r165 r185");
    assert_string_equal (t_match_set (set, "{\"detail-type\": \"sales-events\", \"detail\": {"
        "\"store_id\": \"store_4\", \"new_order\": false}}"), "");
    //  The same field twice in one branch is one condition used twice
    t_add (set, "twice", "{\"a\": [1], \"$or\": [{\"a\": [1]}, {\"b\": [2]}]}");
    assert_string_equal (t_match_set (set, "{\"a\": 1}"), "twice");
    assert_string_equal (t_match_set (set, "{\"b\": 2}"), "");
    zb_patterns_destroy (&set);
}


//  --------------------------------------------------------------------------
//  anything-but as a filter beside a narrower field: evaluated lazily, when
//  a branch asks (pattern.c), with the same answers

static void
test_anything_but_as_a_filter (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    char name [16], pattern [256];
    //  Many distinct anything-but conditions on one path, each beside an
    //  exact customer: the customer anchors, the anything-but filters
    for (int i = 0; i < 300; i++) {
        snprintf (name, sizeof (name), "c%03d", i);
        snprintf (pattern, sizeof (pattern),
                  "{\"customer\": [\"C%d\"], \"store\": [{\"anything-but\": [\"s%d\", \"s%d\"]}]}",
                  i, i % 7, i % 5);
        t_add (set, name, pattern);
    }
    t_add (set, "wild", "{\"customer\": [\"C1\"], \"sku\": [{\"anything-but\": {\"wildcard\": \"X*-9\"}}]}");
    t_add (set, "items", "{\"customer\": [\"C2\"], \"items\": {\"sku\": [{\"anything-but\": {\"prefix\": \"A\"}}],"
           " \"qty\": [{\"numeric\": [\">\", 2]}]}}");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": \"s1\"}"), "c003");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": \"s3\"}"), "");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": null}"), "c003");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": 3}"), "c003");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\"}"), "");
    //  Several values: one not excluded is enough
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": [\"s3\", \"s4\"]}"), "c003");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C3\", \"store\": [\"s3\", \"s3\"]}"), "");
    //  Wildcard exclusions
    assert_string_equal (t_match_set (set, "{\"customer\": \"C1\", \"sku\": \"X1-9\"}"), "");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C1\", \"sku\": \"X1-8\", \"store\": \"s9\"}"),
                         "c001 wild");
    //  Array consistency: the sku and the qty of one item
    assert_string_equal (t_match_set (set, "{\"customer\": \"C2\", \"items\": [{\"sku\": \"A1\", \"qty\": 5},"
                                           " {\"sku\": \"B1\", \"qty\": 1}]}"), "");
    assert_string_equal (t_match_set (set, "{\"customer\": \"C2\", \"items\": [{\"sku\": \"A1\", \"qty\": 1},"
                                           " {\"sku\": \"B1\", \"qty\": 3}]}"), "items");
    zb_patterns_destroy (&set);
}

//  --------------------------------------------------------------------------
//  zb_patterns_match_packed on what msgpack_unpack would not take

static size_t
s_packed (zb_patterns_t *set, const void *data, size_t size)
{
    const char *names [8];
    return zb_patterns_match_packed (set, data, size, names, 8);
}

static void
test_packed_garbage (void **state)
{
    (void) state;
    zb_patterns_t *set = zb_patterns_new ();
    t_add (set, "p", "{\"a\": [1], \"b\": {\"c\": [\"x\"]}}");
    t_add (set, "q", "{\"d\": [{\"exists\": false}]}");
    t_event_t ev;
    t_event_init (&ev, "{\"z\": [1, {\"y\": [[2]]}], \"a\": 1, \"b\": {\"c\": [\"x\", \"w\"], \"e\": {}}}");
    assert_int_equal (s_packed (set, ev.sbuf.data, ev.sbuf.size), 2);
    //  Bytes after the map are ignored
    char longer [256];
    memcpy (longer, ev.sbuf.data, ev.sbuf.size);
    memset (longer + ev.sbuf.size, 0xc1, 8);
    assert_int_equal (s_packed (set, longer, ev.sbuf.size + 8), 2);
    //  Every truncation matches nothing, and reads nothing past the end
    //  (ASan checks: each copy is exactly that long)
    for (size_t len = 0; len < ev.sbuf.size; len++) {
        char *copy = malloc (len? len: 1);
        memcpy (copy, ev.sbuf.data, len);
        assert_int_equal (s_packed (set, copy, len), 0);
        free (copy);
    }
    //  Not a map, NULL, the never-used byte, counts beyond the data
    assert_int_equal (s_packed (set, NULL, 4), 0);
    assert_int_equal (s_packed (set, "\x91\x01", 2), 0);
    assert_int_equal (s_packed (set, "\xa1x", 2), 0);
    assert_int_equal (s_packed (set, "\x81\xa1\x61\xc1", 4), 0);
    assert_int_equal (s_packed (set, "\xdf\xff\xff\xff\xff\xa1\x61\x01", 8), 0);
    assert_int_equal (s_packed (set, "\x82\xa1\x7a\xdd\xff\xff\xff\xff", 8), 0);
    assert_int_equal (s_packed (set, "\x81\xa1\x7a\xdb\xff\xff\xff\xff", 8), 0);
    //  Keys that are not strings, bin and ext values, signed encodings of
    //  positive numbers, float32: as msgpack_unpack makes them
    static const unsigned char odd [] = {
        0x86,
        0x01, 0xa1, 'x',                            //  1: "x"
        0x91, 0x01, 0xc0,                           //  [1]: nil (a key that is an array)
        0xa1, 'a', 0xd0, 0x01,                      //  "a": int8 1
        0xa1, 'd', 0xc4, 0x01, 0x00,                //  "d": bin (no value: exists false holds)
        0xa1, 'b', 0x81, 0xa1, 'c', 0xd4, 0x01, 0x02,   //  "b": {"c": fixext1}
        0xa1, 'e', 0xca, 0x40, 0x20, 0x00, 0x00,    //  "e": float32 2.5
    };
    t_add (set, "e", "{\"e\": [2.5]}");
    t_add (set, "neg", "{\"e\": [{\"numeric\": [\"<\", 0]}]}");
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&unpacked, (const char *) odd, sizeof (odd), &off), MSGPACK_UNPACK_SUCCESS);
    const char *names [8];
    size_t n = zb_patterns_match (set, &unpacked.data, names, 8);
    assert_int_equal (n, 2);                    //  q and e (p: b.c is an ext, no value)
    assert_int_equal (s_packed (set, odd, sizeof (odd)), n);
    msgpack_unpacked_destroy (&unpacked);
    //  Random bytes behind a map header: no crash, and the same answer as
    //  msgpack_unpack when it takes them
    uint64_t rng = 88172645463325252ULL;
    for (int round = 0; round < 20000; round++) {
        unsigned char buf [24];
        size_t len = 1 + (size_t) (round % 23);
        buf [0] = (unsigned char) (0x81 + round % 3);
        for (size_t i = 1; i < len; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            buf [i] = (unsigned char) (i % 2? 0xa1: rng);
        }
        unsigned char *copy = malloc (len);
        memcpy (copy, buf, len);
        size_t packed = s_packed (set, copy, len);
        msgpack_unpacked_init (&unpacked);
        off = 0;
        msgpack_unpack_return rc = msgpack_unpack_next (&unpacked, (const char *) copy, len, &off);
        if (rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES)
            assert_int_equal (packed, zb_patterns_match (set, &unpacked.data, names, 8));
        msgpack_unpacked_destroy (&unpacked);
        free (copy);
    }
    t_event_fini (&ev);
    zb_patterns_destroy (&set);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_exact_strings),
        cmocka_unit_test (test_exact_literals),
        cmocka_unit_test (test_null_empty_and_missing_are_distinct),
        cmocka_unit_test (test_types_are_distinct),
        cmocka_unit_test (test_numbers_compare_by_value),
        cmocka_unit_test (test_float32_values),
        cmocka_unit_test (test_fields_are_anded_and_others_ignored),
        cmocka_unit_test (test_nested_fields_at_any_depth),
        cmocka_unit_test (test_event_arrays),
        cmocka_unit_test (test_array_consistency),
        cmocka_unit_test (test_exists_false_in_arrays),
        cmocka_unit_test (test_or),
        cmocka_unit_test (test_or_with_many_combinations),
        cmocka_unit_test (test_documentation_examples),
        cmocka_unit_test (test_store_examples),
        cmocka_unit_test (test_set_names_replace_remove),
        cmocka_unit_test (test_each_name_once_and_the_count),
        cmocka_unit_test (test_non_json_values),
        cmocka_unit_test (test_many_patterns),
        cmocka_unit_test (test_shared_conditions),
        cmocka_unit_test (test_anything_but_as_a_filter),
        cmocka_unit_test (test_packed_garbage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
