/*
 * test_common_value.c - unit tests of skiff_value (src/common/value.c): constructors, UTF-8
 * checks, list and map building, accessors, copy and equality, the error helpers, and
 * allocation-failure ("torture") runs that fail each allocation in turn.
 */
#include <stdint.h>

#include "common/mem.h"
#include "common/value.h"
#include "unit.h"

TEST(scalars)
{
    skiff_value *v = skiff_value_nil();
    ASSERT_NOT_NULL(v);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_NIL);
    skiff_value_free(v);

    v = skiff_value_bool(true);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_BOOL);
    ASSERT(skiff_value_get_bool(v));
    skiff_value_free(v);

    v = skiff_value_int(INT64_MIN);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_INT);
    ASSERT_EQ_INT(skiff_value_get_int(v), INT64_MIN);
    skiff_value_free(v);
    v = skiff_value_int(INT64_MAX);
    ASSERT_EQ_INT(skiff_value_get_int(v), INT64_MAX);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(v), (double)INT64_MAX); /* ints read as doubles */
    skiff_value_free(v);

    v = skiff_value_double(-2.5);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_DOUBLE);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(v), -2.5);
    ASSERT_EQ_INT(skiff_value_get_int(v), 0); /* a double is not an int */
    skiff_value_free(v);
}

TEST(strings_and_bytes)
{
    size_t n = 99;
    skiff_value *v = skiff_value_string("héllo");
    ASSERT_NOT_NULL(v);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_STRING);
    ASSERT_EQ_STR(skiff_value_get_string(v, &n), "héllo");
    ASSERT_EQ_UINT(n, 6);
    ASSERT_NULL(skiff_value_get_bytes(v, &n)); /* a string is not bytes */
    skiff_value_free(v);

    /* NUL is valid UTF-8: stringn keeps it and the length. */
    v = skiff_value_stringn("a\0b", 3);
    ASSERT_NOT_NULL(v);
    ASSERT_EQ_MEM(skiff_value_get_string(v, &n), "a\0b", 3);
    ASSERT_EQ_UINT(n, 3);
    skiff_value_free(v);

    v = skiff_value_string("");
    ASSERT_EQ_STR(skiff_value_get_string(v, NULL), "");
    skiff_value_free(v);

    ASSERT_NULL(skiff_value_string(NULL));

    const unsigned char raw[] = {0, 0xff, 0xc0, 0x80, 0};
    v = skiff_value_bytes(raw, sizeof raw);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_BYTES);
    const void *p = skiff_value_get_bytes(v, &n);
    ASSERT_EQ_UINT(n, sizeof raw);
    ASSERT_EQ_MEM(p, raw, sizeof raw);
    ASSERT_NULL(skiff_value_get_string(v, NULL));
    skiff_value_free(v);

    v = skiff_value_bytes(NULL, 0); /* empty bytes are fine */
    ASSERT_NOT_NULL(v);
    ASSERT_NOT_NULL(skiff_value_get_bytes(v, &n));
    ASSERT_EQ_UINT(n, 0);
    skiff_value_free(v);
    ASSERT_NULL(skiff_value_bytes(NULL, 3));
}

TEST(utf8_rejection)
{
    static const char *const bad[] = {
        "\x80",                 /* lone continuation byte */
        "\xc0\x80",             /* overlong NUL */
        "\xc1\xbf",             /* overlong 2-byte */
        "\xe0\x80\xaf",         /* overlong 3-byte '/' */
        "\xf0\x80\x80\xaf",     /* overlong 4-byte '/' */
        "\xed\xa0\x80",         /* UTF-16 surrogate U+D800 */
        "\xed\xbf\xbf",         /* surrogate U+DFFF */
        "\xf4\x90\x80\x80",     /* U+110000, past the last code point */
        "\xe2\x82",             /* truncated 3-byte sequence */
        "abc\xe2",              /* truncated at the end */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
        "\xff",
        "a\xc3(", /* continuation byte missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (skiff_value_string(bad[i]))
            FAIL("invalid UTF-8 #%zu accepted", i);
        ASSERT_FALSE(utf8_valid(bad[i], strlen(bad[i])));
    }
    static const char *const good[] = {
        "plain ascii",
        "\xc2\x80",
        "\xe2\x82\xac" /* euro */,
        "\xef\xbf\xbf" /* U+FFFF */,
        "\xf0\x9f\x98\x80" /* emoji */,
        "\xf4\x8f\xbf\xbf" /* U+10FFFF */,
        "\xed\x9f\xbf",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        skiff_value *v = skiff_value_string(good[i]);
        if (!v)
            FAIL("valid UTF-8 #%zu rejected", i);
        ASSERT_EQ_STR(skiff_value_get_string(v, NULL), good[i]);
        skiff_value_free(v);
    }
    /* stringn checks exactly len bytes: a bad byte past len does not matter. */
    skiff_value *v = skiff_value_stringn("ok\xff", 2);
    ASSERT_NOT_NULL(v);
    skiff_value_free(v);
}

TEST(accessors_on_other_types)
{
    skiff_value *s = skiff_value_string("x");
    ASSERT_FALSE(skiff_value_get_bool(s));
    ASSERT_EQ_INT(skiff_value_get_int(s), 0);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(s), 0.0);
    ASSERT_EQ_UINT(skiff_list_len(s), 0);
    ASSERT_NULL(skiff_list_get(s, 0));
    ASSERT_EQ_UINT(skiff_map_len(s), 0);
    ASSERT_NULL(skiff_map_get(s, "x"));
    ASSERT_NULL(skiff_map_key(s, 0));
    skiff_value_free(s);

    ASSERT_EQ_INT(skiff_value_type(NULL), SKIFF_NIL);
    ASSERT_EQ_STR(skiff_type_name(SKIFF_NIL), "nil");
    ASSERT_EQ_STR(skiff_type_name(SKIFF_INT), "int");
    ASSERT_EQ_STR(skiff_type_name(SKIFF_MAP), "map");
    ASSERT_NOT_NULL(skiff_type_name((skiff_type)99));
    skiff_value_free(NULL); /* harmless */
}

TEST(lists)
{
    skiff_value *l = skiff_value_list();
    ASSERT_EQ_UINT(skiff_list_len(l), 0);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ_INT(skiff_list_append(l, skiff_value_int(i)), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_list_len(l), 100);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(l, (size_t)i)), i);
    ASSERT_NULL(skiff_list_get(l, 100));

    /* Misuse: the item is taken (freed) anyway; ASan would report a leak otherwise. */
    ASSERT_EQ_INT(skiff_list_append(l, NULL), SKIFF_ERR_INVALID);
    skiff_value *m = skiff_value_map();
    ASSERT_EQ_INT(skiff_list_append(m, skiff_value_int(1)), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_list_append(NULL, skiff_value_string("lost")), SKIFF_ERR_INVALID);
    skiff_value_free(m);
    skiff_value_free(l);

    l = skiff_value_list_of(3, skiff_value_int(1), skiff_value_string("a"), skiff_value_nil());
    ASSERT_EQ_UINT(skiff_list_len(l), 3);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_list_get(l, 1), NULL), "a");
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(l, 2)), SKIFF_NIL);
    skiff_value_free(l);

    /* A NULL item (e.g. a failed constructor) fails the whole list and frees the others. */
    ASSERT_NULL(skiff_value_list_of(3, skiff_value_int(1), skiff_value_string("\xff"),
                                    skiff_value_string("freed")));
    l = skiff_value_list_of(0);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ_UINT(skiff_list_len(l), 0);
    skiff_value_free(l);
}

TEST(map_set_get_replace)
{
    skiff_value *m = skiff_value_map();
    ASSERT_EQ_INT(skiff_map_set(m, "a", skiff_value_int(1)), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_set(m, "b", skiff_value_int(2)), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_set(m, "c", skiff_value_int(3)), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_map_len(m), 3);

    /* Replacing keeps the entry's place and the count; the old value is freed (ASan). */
    ASSERT_EQ_INT(skiff_map_set(m, "b", skiff_value_string("two")), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_map_len(m), 3);
    ASSERT_EQ_STR(skiff_map_key(m, 1), "b");
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_value(m, 1), NULL), "two");
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(m, "b"), NULL), "two");
    ASSERT_EQ_STR(skiff_map_key(m, 0), "a");
    ASSERT_EQ_STR(skiff_map_key(m, 2), "c");
    ASSERT_NULL(skiff_map_key(m, 3));
    ASSERT_NULL(skiff_map_value(m, 3));
    ASSERT_NULL(skiff_map_get(m, "zz"));
    ASSERT_NULL(skiff_map_get(m, NULL));

    /* Keys that are prefixes of each other are different keys. */
    ASSERT_EQ_INT(skiff_map_set(m, "ab", skiff_value_int(12)), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(m, "a")), 1);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(m, "ab")), 12);

    /* Many keys force the arrays to grow. */
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ_INT(skiff_map_set(m, key, skiff_value_int(i)), SKIFF_OK);
    }
    ASSERT_EQ_UINT(skiff_map_len(m), 204);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(m, "k150")), 150);

    /* Misuse: item taken, error returned. */
    ASSERT_EQ_INT(skiff_map_set(m, "bad\xff", skiff_value_int(0)), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_map_set(m, NULL, skiff_value_int(0)), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_map_set(m, "x", NULL), SKIFF_ERR_INVALID);
    skiff_value *l = skiff_value_list();
    ASSERT_EQ_INT(skiff_map_set(l, "x", skiff_value_int(0)), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(value_map_setn(m, "a\0b", 3, skiff_value_int(0)), SKIFF_ERR_INVALID);
    ASSERT_EQ_UINT(skiff_map_len(m), 204);
    skiff_value_free(l);
    skiff_value_free(m);
}

/* {"name": "skiff", "n": [1, 2.5, true, nil, b"\0\1", {"deep": [[]]}], "e": {}} */
static skiff_value *sample(void)
{
    skiff_value *inner = skiff_value_map();
    if (skiff_map_set(inner, "deep", skiff_value_list_of(1, skiff_value_list())) != SKIFF_OK) {
        skiff_value_free(inner);
        return NULL;
    }
    skiff_value *n =
        skiff_value_list_of(6, skiff_value_int(1), skiff_value_double(2.5), skiff_value_bool(true),
                            skiff_value_nil(), skiff_value_bytes("\0\1", 2), inner);
    skiff_value *m = skiff_value_map();
    /* Each set takes its item even when it fails, so all three run before checking. */
    int r1 = skiff_map_set(m, "name", skiff_value_string("skiff"));
    int r2 = skiff_map_set(m, "n", n);
    int r3 = skiff_map_set(m, "e", skiff_value_map());
    if (r1 != SKIFF_OK || r2 != SKIFF_OK || r3 != SKIFF_OK) {
        skiff_value_free(m);
        return NULL;
    }
    return m;
}

TEST(copy_and_equal)
{
    skiff_value *a = sample();
    ASSERT_NOT_NULL(a);
    skiff_value *b = skiff_value_copy(a);
    ASSERT_NOT_NULL(b);
    ASSERT(a != b);
    ASSERT(skiff_value_equal(a, b));
    ASSERT(skiff_value_equal(b, a));
    /* The copy is deep: changing it leaves the original alone. */
    ASSERT_EQ_INT(skiff_list_append(skiff_map_get(b, "n"), skiff_value_int(7)), SKIFF_OK);
    ASSERT_FALSE(skiff_value_equal(a, b));
    ASSERT_EQ_UINT(skiff_list_len(skiff_map_get(a, "n")), 6);
    skiff_value_free(b);

    /* Map equality does not depend on insertion order. */
    skiff_value *m1 = skiff_value_map(), *m2 = skiff_value_map();
    skiff_map_set(m1, "x", skiff_value_int(1));
    skiff_map_set(m1, "y", skiff_value_int(2));
    skiff_map_set(m2, "y", skiff_value_int(2));
    skiff_map_set(m2, "x", skiff_value_int(1));
    ASSERT(skiff_value_equal(m1, m2));
    skiff_map_set(m2, "x", skiff_value_int(3));
    ASSERT_FALSE(skiff_value_equal(m1, m2));
    skiff_value_free(m1);
    skiff_value_free(m2);

    /* int 1 and double 1.0 differ; string and bytes with the same content differ. */
    skiff_value *i = skiff_value_int(1), *d = skiff_value_double(1.0);
    ASSERT_FALSE(skiff_value_equal(i, d));
    skiff_value *s = skiff_value_string("ab"), *y = skiff_value_bytes("ab", 2);
    ASSERT_FALSE(skiff_value_equal(s, y));
    skiff_value *s2 = skiff_value_string("ac");
    ASSERT_FALSE(skiff_value_equal(s, s2));
    skiff_value *l1 = skiff_value_list_of(1, skiff_value_int(1));
    skiff_value *l2 = skiff_value_list_of(2, skiff_value_int(1), skiff_value_int(1));
    ASSERT_FALSE(skiff_value_equal(l1, l2));

    /* NULL reads as nil. */
    skiff_value *nil = skiff_value_nil();
    ASSERT(skiff_value_equal(NULL, NULL));
    ASSERT(skiff_value_equal(nil, NULL));
    ASSERT_FALSE(skiff_value_equal(i, NULL));
    ASSERT_NULL(skiff_value_copy(NULL));

    skiff_value *c = skiff_value_copy(y);
    ASSERT(skiff_value_equal(c, y));
    skiff_value_free(c);

    skiff_value *vals[] = {a, i, d, s, y, s2, l1, l2, nil};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        skiff_value_free(vals[k]);
}

TEST(error_helpers)
{
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_error_set(&err, SKIFF_ERR_NOT_FOUND, NULL, "no app '%s'", "x"),
                  SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(err.code, SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_STR(err.type, "NotFoundError");
    ASSERT_EQ_STR(err.message, "no app 'x'");
    ASSERT_NULL(err.traceback);
    /* Setting again replaces (and frees) the previous contents. */
    skiff_error_set(&err, SKIFF_ERR_USER, "ValueError", "bad %d", 7);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_EQ_STR(err.message, "bad 7");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(err.code, SKIFF_OK);
    ASSERT_NULL(err.type);
    ASSERT_NULL(err.message);
    skiff_error_clear(&err); /* twice is fine */
    skiff_error_clear(NULL);
    ASSERT_EQ_INT(skiff_error_set(NULL, SKIFF_ERR_AUTH, NULL, "x"), SKIFF_ERR_AUTH);

    /* A message longer than the internal buffer is cut, not overflowed. */
    char big[3000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    skiff_error_set(&err, SKIFF_ERR_INVALID, NULL, "%s", big);
    ASSERT_NOT_NULL(err.message);
    ASSERT(strlen(err.message) < sizeof big);
    skiff_error_clear(&err);

    ASSERT_EQ_STR(skiff_code_name(SKIFF_ERR_OUTPUT_EXPIRED), "OutputExpiredError");
    ASSERT_EQ_STR(skiff_code_name(SKIFF_ERR_FUNCTION_TIMEOUT), "FunctionTimeoutError");
    ASSERT_EQ_STR(skiff_code_name(SKIFF_ERR_CANCELLED), "CancelledError");
    ASSERT_EQ_STR(skiff_code_name(SKIFF_ERR_DESERIALIZATION), "DeserializationError");
    ASSERT_EQ_STR(skiff_code_name(SKIFF_ERR_REQUEST_SIZE), "RequestSizeError");
    ASSERT_NOT_NULL(skiff_code_name((skiff_code)12345));
    ASSERT_NOT_NULL(skiff_code_name((skiff_code)-1));
}

/* Torture: fail the first, second, ... allocation while building, copying and comparing the
 * sample value. Each failing run must return NULL without crashing or leaking (ASan checks the
 * leaks at the test's exit); the loop ends when a run needs no failing allocation. */
TEST(torture_build_and_copy)
{
    int runs = 0;
    for (long n = 0;; n++, runs++) {
        mem_fail_after(n);
        skiff_value *v = sample();
        mem_fail_after(-1);
        if (v) {
            skiff_value_free(v);
            break;
        }
        ASSERT_LT_INT(n, 10000);
    }
    ASSERT_GT_INT(runs, 10); /* the sample needs more than ten allocations */

    skiff_value *v = sample();
    ASSERT_NOT_NULL(v);
    for (long n = 0;; n++) {
        mem_fail_after(n);
        skiff_value *c = skiff_value_copy(v);
        mem_fail_after(-1);
        if (c) {
            ASSERT(skiff_value_equal(c, v));
            skiff_value_free(c);
            break;
        }
        ASSERT_LT_INT(n, 10000);
    }
    skiff_value_free(v);

    /* skiff_error_set under failure leaves a usable (possibly empty) error. */
    for (long n = 0; n < 3; n++) {
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        ASSERT_EQ_INT(skiff_error_set(&err, SKIFF_ERR_INVALID, NULL, "m"), SKIFF_ERR_INVALID);
        mem_fail_after(-1);
        ASSERT_EQ_INT(err.code, SKIFF_ERR_INVALID);
        skiff_error_clear(&err);
    }
}

TEST(torture_map_replace_and_append)
{
    skiff_value *m = skiff_value_map();
    skiff_value *l = skiff_value_list();
    ASSERT_NOT_NULL(m);
    ASSERT_NOT_NULL(l);
    char key[16];
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "k%d", i);
        skiff_value *item = skiff_value_int(i);
        ASSERT_NOT_NULL(item);
        mem_fail_after(0); /* the next allocation (growing or copying the key) fails */
        int rc = skiff_map_set(m, key, item);
        mem_fail_after(-1);
        ASSERT(rc == SKIFF_OK || rc == SKIFF_ERR_NOMEM);
        if (rc == SKIFF_ERR_NOMEM)
            ASSERT_NULL(skiff_map_get(m, key));
        ASSERT_EQ_INT(skiff_map_set(m, key, skiff_value_int(i)), SKIFF_OK);

        item = skiff_value_int(i);
        mem_fail_after(0);
        rc = skiff_list_append(l, item);
        mem_fail_after(-1);
        ASSERT(rc == SKIFF_OK || rc == SKIFF_ERR_NOMEM);
        if (rc == SKIFF_ERR_NOMEM)
            ASSERT_EQ_INT(skiff_list_append(l, skiff_value_int(i)), SKIFF_OK);
    }
    ASSERT_EQ_UINT(skiff_map_len(m), 64);
    ASSERT_EQ_UINT(skiff_list_len(l), 64);
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(m, key)), i);
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(l, (size_t)i)), i);
    }
    /* Replacing an existing key needs no allocation at all. */
    mem_fail_after(0);
    skiff_value *nil = skiff_value_nil(); /* this one fails: */
    ASSERT_NULL(nil);
    mem_fail_after(-1);
    skiff_value *two = skiff_value_int(2);
    mem_fail_after(0);
    ASSERT_EQ_INT(skiff_map_set(m, "k3", two), SKIFF_OK);
    mem_fail_after(-1);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(m, "k3")), 2);
    skiff_value_free(m);
    skiff_value_free(l);
}
