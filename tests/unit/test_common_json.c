/*
 * test_common_json.c - unit tests of the JSON edge of skiff_value (src/common/json.c): every type
 * both ways, {"$bytes": ...} round trips, integers beyond int64, doubles, error positions in the
 * message, deep nesting, and allocation-failure runs.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/codec.h"
#include "common/mem.h"
#include "common/value.h"
#include "unit.h"

/* Parses text, which must succeed; the caller frees the value. */
static skiff_value *parse(const char *text)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_value_from_json(text, strlen(text), &v, &err);
    if (rc != SKIFF_OK)
        FAIL("parsing %s: %s: %s", text, skiff_code_name(rc), err.message);
    ASSERT_NOT_NULL(v);
    return v;
}

/* Parses text, which must fail with InvalidError; returns the message (caller frees). */
static char *parse_error(const char *text, size_t len)
{
    skiff_value *v = (skiff_value *)&v; /* a sentinel: must stay untouched */
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_value_from_json(text, len, &v, &err);
    if (rc != SKIFF_ERR_INVALID)
        FAIL("parsing %.*s: expected InvalidError, got %s", (int)len, text, skiff_code_name(rc));
    ASSERT(v == (skiff_value *)&v);
    ASSERT_EQ_INT(err.code, SKIFF_ERR_INVALID);
    ASSERT_NOT_NULL(err.message);
    char *msg = strdup(err.message);
    skiff_error_clear(&err);
    return msg;
}

/* text -> value -> text gives back expect (compact form). */
static void json_round(const char *text, const char *expect)
{
    skiff_value *v = parse(text);
    char *out = skiff_value_to_json(v);
    ASSERT_NOT_NULL(out);
    ASSERT_EQ_STR(out, expect);
    /* and the output parses to an equal value */
    skiff_value *again = parse(out);
    ASSERT(skiff_value_equal(v, again));
    skiff_value_free(again);
    free(out);
    skiff_value_free(v);
}

TEST(types_from_json)
{
    skiff_value *v = parse("null");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_NIL);
    skiff_value_free(v);
    v = parse("true");
    ASSERT(skiff_value_get_bool(v));
    skiff_value_free(v);
    v = parse("false");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_BOOL);
    ASSERT_FALSE(skiff_value_get_bool(v));
    skiff_value_free(v);
    v = parse("42");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_INT);
    ASSERT_EQ_INT(skiff_value_get_int(v), 42);
    skiff_value_free(v);
    v = parse("-1.5");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_DOUBLE);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(v), -1.5);
    skiff_value_free(v);
    v = parse("\"h\\u00e9\\n\"");
    ASSERT_EQ_STR(skiff_value_get_string(v, NULL), "h\xc3\xa9\n");
    skiff_value_free(v);
    v = parse(" [1, \"a\", [], {}] ");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_LIST);
    ASSERT_EQ_UINT(skiff_list_len(v), 4);
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(v, 3)), SKIFF_MAP);
    skiff_value_free(v);
    v = parse("{\"job_id\": \"job-1\", \"params\": {\"seconds\": 2}}");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_MAP);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(v, "job_id"), NULL), "job-1");
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(skiff_map_get(v, "params"), "seconds")), 2);
    skiff_value_free(v);
}

TEST(round_trips)
{
    json_round("null", "null");
    json_round("[true,false]", "[true,false]");
    json_round("[0,-1,9223372036854775807,-9223372036854775808]",
               "[0,-1,9223372036854775807,-9223372036854775808]");
    json_round("\"\"", "\"\"");
    json_round("\"\\u20ac \\ud83d\\ude00\"", "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
    json_round("\"quote \\\" backslash \\\\ tab \\t\"", "\"quote \\\" backslash \\\\ tab \\t\"");
    /* Maps keep insertion order. */
    json_round("{\"z\":1,\"a\":[{\"b\":null}],\"m\":{}}",
               "{\"z\":1,\"a\":[{\"b\":null}],\"m\":{}}");
}

TEST(bytes_round_trip)
{
    /* All 256 byte values, at lengths 0..4 mod 3 to exercise the padding. */
    unsigned char raw[259];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof raw; n += (n < 8 ? 1 : 61)) {
        skiff_value *v = skiff_value_bytes(raw, n);
        char *text = skiff_value_to_json(v);
        ASSERT_NOT_NULL(text);
        ASSERT(!strncmp(text, "{\"$bytes\":\"", 11));
        skiff_value *back = parse(text);
        if (!skiff_value_equal(v, back))
            FAIL("%zu bytes did not survive %s", n, text);
        skiff_value_free(back);
        free(text);
        skiff_value_free(v);
    }
    skiff_value *v = parse("{\"$bytes\": \"aGVsbG8=\"}");
    size_t n;
    const void *p = skiff_value_get_bytes(v, &n);
    ASSERT_EQ_UINT(n, 5);
    ASSERT_EQ_MEM(p, "hello", 5);
    skiff_value_free(v);
    /* Only the one-key object is bytes; with other keys it is an ordinary map. */
    v = parse("{\"$bytes\": \"aGVsbG8=\", \"x\": 1}");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_MAP);
    ASSERT_EQ_UINT(skiff_map_len(v), 2);
    skiff_value_free(v);
    /* Bytes nested in a list and a map. */
    json_round("[{\"k\":{\"$bytes\":\"AAEC\"}}]", "[{\"k\":{\"$bytes\":\"AAEC\"}}]");
}

TEST(bad_bytes)
{
    free(parse_error("{\"$bytes\": 5}", 13));
    free(parse_error("{\"$bytes\": \"abc\"}", 17));  /* length not a multiple of 4 */
    free(parse_error("{\"$bytes\": \"!!!!\"}", 18)); /* not the alphabet */
    free(parse_error("{\"$bytes\": \"a\"}", 15));
}

/* Padding in the middle or at the front is not base64: refused, not decoded to zero bytes. */
TEST(bad_bytes_misplaced_padding)
{
    free(parse_error("{\"$bytes\": \"=AAA\"}", 18));
    free(parse_error("{\"$bytes\": \"aGVsbA=a\"}", 22));
    free(parse_error("{\"$bytes\": \"aG==bG8=\"}", 22));
}

TEST(doubles)
{
    skiff_value *v = parse("[0.5, 1e10, -2.5e-7, 1.0, 0.1]");
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(v, 3)), SKIFF_DOUBLE); /* 1.0 stays a double */
    ASSERT_EQ_DOUBLE(skiff_value_get_double(skiff_list_get(v, 1)), 1e10);
    char *text = skiff_value_to_json(v);
    skiff_value *back = parse(text);
    ASSERT(skiff_value_equal(v, back)); /* exact: no precision lost */
    free(text);
    skiff_value_free(back);
    skiff_value_free(v);

    /* A double that happens to be whole must come back as a double, not an int. */
    v = skiff_value_double(3.0);
    text = skiff_value_to_json(v);
    back = parse(text);
    ASSERT_EQ_INT(skiff_value_type(back), SKIFF_DOUBLE);
    free(text);
    skiff_value_free(back);
    skiff_value_free(v);

    /* Non-finite doubles have no JSON form: null. */
    skiff_value *l = skiff_value_list_of(3, skiff_value_double(NAN), skiff_value_double(INFINITY),
                                         skiff_value_double(-INFINITY));
    text = skiff_value_to_json(l);
    ASSERT_EQ_STR(text, "[null,null,null]");
    free(text);
    skiff_value_free(l);
}

/* skiff.h: "integers that fit in 64 bits [become] ints, other numbers doubles". */
TEST(big_integers_become_doubles)
{
    skiff_value *v = parse("9223372036854775807");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_INT);
    skiff_value_free(v);
    v = parse("-9223372036854775808");
    ASSERT_EQ_INT(skiff_value_get_int(v), INT64_MIN);
    skiff_value_free(v);

    v = parse("9223372036854775808");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_DOUBLE);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(v), 9223372036854775808.0);
    skiff_value_free(v);
    v = parse("-9223372036854775809");
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_DOUBLE);
    skiff_value_free(v);
    v = parse("[100000000000000000000000]");
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(v, 0)), SKIFF_DOUBLE);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(skiff_list_get(v, 0)), 1e23);
    skiff_value_free(v);
}

TEST(error_position_in_message)
{
    char *msg = parse_error("[1, 2", 5);
    ASSERT_STR_CONTAINS(msg, "line 1");
    free(msg);
    msg = parse_error("[1,\n 2,\n oops]", 14);
    ASSERT_STR_CONTAINS(msg, "line 3");
    free(msg);
    msg = parse_error("{\"a\": }", 7);
    ASSERT_STR_CONTAINS(msg, "column 7");
    free(msg);
    free(parse_error("", 0));
    free(parse_error("1 2", 3));
    free(parse_error("nul", 3));
    free(parse_error("'single'", 8));
    free(parse_error("{\"a\":1,\"a\":2}", 13)); /* duplicate key */
    free(parse_error("\"\\ud800\"", 8));        /* lone surrogate */
    free(parse_error("\"\xff\"", 3));           /* invalid UTF-8 */
    free(parse_error("[1,]", 4));
    /* len is honoured: the text is not read past it, a NUL-free prefix fails on its own. */
    free(parse_error("[1, 2]", 4));
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_value_from_json("[1, 2]garbage", 6, &v, &err), SKIFF_OK);
    skiff_value_free(v);
}

TEST(deep_nesting)
{
    char text[2 * 5000 + 1];
    /* At the limit: fine. */
    int depth = CODEC_MAX_DEPTH;
    memset(text, '[', (size_t)depth);
    memset(text + depth, ']', (size_t)depth);
    skiff_value *v = parse((text[2 * depth] = '\0', text));
    skiff_value_free(v);
    /* Beyond: an error naming the problem, not a crash; far beyond too. */
    int depths[] = {CODEC_MAX_DEPTH + 2, 5000};
    for (size_t i = 0; i < 2; i++) {
        depth = depths[i];
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        free(parse_error(text, (size_t)(2 * depth)));
    }
    /* Objects count as levels too. */
    char obj[400] = "";
    for (int k = 0; k < 40; k++)
        strcat(obj, "{\"a\":");
    strcat(obj, "1");
    for (int k = 0; k < 40; k++)
        strcat(obj, "}");
    free(parse_error(obj, strlen(obj)));
}

/* A string holding NUL is a valid skiff string; its JSON form (\u0000) must read back. */
TEST(nul_in_string_round_trips)
{
    skiff_value *v = skiff_value_stringn("a\0b", 3);
    char *text = skiff_value_to_json(v);
    ASSERT_EQ_STR(text, "\"a\\u0000b\"");
    skiff_value *back = parse(text);
    ASSERT(skiff_value_equal(v, back));
    skiff_value_free(back);
    free(text);
    skiff_value_free(v);
}

TEST(torture_from_json)
{
    const char *text = "{\"a\": [1, 2.5, \"s\", {\"$bytes\": \"AAEC\"}, null, true], "
                       "\"b\": {\"c\": {\"d\": []}}}";
    skiff_value *ref = parse(text);
    int failures = 0;
    for (long n = 0;; n++) {
        skiff_value *v = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        int rc = skiff_value_from_json(text, strlen(text), &v, &err);
        mem_fail_after(-1);
        skiff_error_clear(&err);
        if (rc == SKIFF_OK) {
            ASSERT(skiff_value_equal(v, ref));
            skiff_value_free(v);
            break;
        }
        failures++;
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_LT_INT(n, 1000);
    }
    ASSERT_GT_INT(failures, 5);
    /* to_json under failure: NULL or the right text. */
    char *good = skiff_value_to_json(ref);
    for (long n = 0; n < 20; n++) {
        mem_fail_after(n);
        char *out = skiff_value_to_json(ref);
        mem_fail_after(-1);
        if (out)
            ASSERT_EQ_STR(out, good);
        free(out);
    }
    free(good);
    skiff_value_free(ref);
}
