/*
 * test_common_codec.c - unit tests of the msgpack codec (src/common/codec.c): round trips of
 * every value type, the nesting limit in both directions, malformed and hostile input (each a
 * DeserializationError, never a crash), the [args, kwargs] payload shape, the buffer size cap,
 * and allocation-failure runs.
 */
#include <math.h>
#include <stdint.h>

#include "common/codec.h"
#include "common/mem.h"
#include "common/value.h"
#include "unit.h"

/* Encodes v into a fresh unlimited buffer; the caller frees b.data. */
static struct buf encode(const skiff_value *v)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = codec_encode_value(&b, v);
    if (rc != SKIFF_OK)
        FAIL("codec_encode_value: %s", skiff_code_name(rc));
    return b;
}

/* Encodes and decodes v and checks that the result equals v. */
static void round_trip(skiff_value *v)
{
    ASSERT_NOT_NULL(v);
    struct buf b = encode(v);
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = codec_decode_value(b.data, b.len, &out, &err);
    if (rc != SKIFF_OK)
        FAIL("decode: %s: %s", skiff_code_name(rc), err.message);
    if (!skiff_value_equal(v, out)) {
        char *a = skiff_value_to_json(v), *c = skiff_value_to_json(out);
        FAIL("round trip changed the value: %s became %s", a, c);
    }
    skiff_value_free(out);
    skiff_value_free(v);
    buf_deinit(&b);
}

/* Decodes raw bytes that must be rejected as malformed, and checks the error. */
#define ASSERT_MALFORMED(bytes, len)                                                               \
    do {                                                                                           \
        skiff_value *out_ = NULL;                                                                  \
        skiff_error err_ = SKIFF_ERROR_INIT;                                                       \
        int rc_ = codec_decode_value((const char *)(bytes), (len), &out_, &err_);                  \
        if (rc_ != SKIFF_ERR_DESERIALIZATION)                                                      \
            FAIL("%s: expected DeserializationError, got %s", #bytes, skiff_code_name(rc_));       \
        ASSERT_NULL(out_);                                                                         \
        ASSERT_EQ_INT(err_.code, SKIFF_ERR_DESERIALIZATION);                                       \
        ASSERT_EQ_STR(err_.type, "DeserializationError");                                          \
        ASSERT_NOT_NULL(err_.message);                                                             \
        ASSERT(strlen(err_.message) > 0);                                                          \
        skiff_error_clear(&err_);                                                                  \
    } while (0)

TEST(round_trip_scalars)
{
    round_trip(skiff_value_nil());
    round_trip(skiff_value_bool(true));
    round_trip(skiff_value_bool(false));
    static const int64_t ints[] = {
        0,         1,         -1,        127,          128,
        -32,       -33,       255,       256,          65535,
        65536,     -32768,    -32769,    UINT32_MAX,   (int64_t)UINT32_MAX + 1,
        INT32_MIN, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        round_trip(skiff_value_int(ints[i]));
    static const double dbls[] = {
        0.0, -0.0, 1.5, -2.25, 1e300, -1e-300, 3.141592653589793, INFINITY, -INFINITY, 5e-324};
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
        round_trip(skiff_value_double(dbls[i]));
}

TEST(round_trip_strings_and_bytes)
{
    round_trip(skiff_value_string(""));
    round_trip(skiff_value_string("héllo wörld \xf0\x9f\x98\x80"));
    round_trip(skiff_value_stringn("nul\0inside", 10));
    round_trip(skiff_value_bytes(NULL, 0));
    round_trip(skiff_value_bytes("\0\xff\x80", 3));
    /* Sizes around the str8/str16/str32 and bin8/bin16/bin32 boundaries. */
    static const size_t sizes[] = {31, 32, 255, 256, 65535, 65536, 100000};
    char *big = malloc(100000);
    ASSERT_NOT_NULL(big);
    memset(big, 'x', 100000);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(skiff_value_stringn(big, sizes[i]));
        round_trip(skiff_value_bytes(big, sizes[i]));
    }
    free(big);
}

/* The empty string is a valid map key (msgpack packs it as a zero-length fixstr). */
TEST(round_trip_empty_key)
{
    skiff_value *m = skiff_value_map();
    ASSERT_EQ_INT(skiff_map_set(m, "", skiff_value_int(1)), SKIFF_OK);
    round_trip(m);
    m = skiff_value_map();
    ASSERT_EQ_INT(skiff_map_set(m, "x", skiff_value_int(1)), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_set(m, "", skiff_value_string("")), SKIFF_OK);
    round_trip(skiff_value_list_of(1, m));
}

TEST(round_trip_containers)
{
    round_trip(skiff_value_list());
    round_trip(skiff_value_map());
    skiff_value *l = skiff_value_list();
    for (int i = 0; i < 70000; i++) /* array32 */
        ASSERT_EQ_INT(skiff_list_append(l, skiff_value_int(i)), SKIFF_OK);
    round_trip(l);

    skiff_value *m = skiff_value_map();
    char key[16];
    for (int i = 0; i < 20; i++) { /* map16 */
        snprintf(key, sizeof key, "key%d", i);
        ASSERT_EQ_INT(
            skiff_map_set(m, key,
                          skiff_value_list_of(2, skiff_value_int(i), skiff_value_string(key))),
            SKIFF_OK);
    }
    ASSERT_EQ_INT(skiff_map_set(m, "", skiff_value_nil()), SKIFF_OK); /* empty key */
    ASSERT_EQ_INT(skiff_map_set(m, "bytes", skiff_value_bytes("\1\2", 2)), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_set(m, "nested", skiff_value_list_of(1, skiff_value_map())), SKIFF_OK);
    round_trip(m);
}

/* A list holding a list ... depth levels of lists, the innermost holding the int 1. */
static skiff_value *nested(int depth)
{
    skiff_value *v = skiff_value_int(1);
    for (int i = 0; i < depth; i++)
        v = skiff_value_list_of(1, v);
    return v;
}

/* depth nested msgpack arrays (0x91 each) around the int 1. */
static size_t nested_raw(char *out, int depth)
{
    memset(out, 0x91, (size_t)depth);
    out[depth] = 0x01;
    return (size_t)depth + 1;
}

/* depth levels of lists, the innermost one empty; and its msgpack. */
static skiff_value *nested_empty(int depth)
{
    skiff_value *v = skiff_value_list();
    for (int i = 1; i < depth; i++)
        v = skiff_value_list_of(1, v);
    return v;
}

static size_t nested_empty_raw(char *out, int depth)
{
    memset(out, 0x91, (size_t)depth - 1);
    out[depth - 1] = (char)0x90;
    return (size_t)depth;
}

TEST(nesting_at_limit_round_trips)
{
    round_trip(nested(CODEC_MAX_DEPTH));
    round_trip(nested(CODEC_MAX_DEPTH - 1));
}

TEST(nesting_beyond_limit_refused_on_encode)
{
    skiff_value *deep = nested(CODEC_MAX_DEPTH + 10);
    ASSERT_NOT_NULL(deep);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(codec_encode_value(&b, deep), SKIFF_ERR_SERIALIZATION);
    ASSERT_EQ_UINT(b.len, 0); /* the partial encoding was dropped */
    skiff_value *args = skiff_value_list_of(1, deep);
    ASSERT_EQ_INT(codec_encode_args(&b, args, NULL), SKIFF_ERR_SERIALIZATION);
    ASSERT_EQ_UINT(b.len, 0);
    buf_deinit(&b);
    skiff_value_free(args);
}

/* Whatever depth the encoder accepts, the decoder accepts too (a value one side can send must
 * not be refused by the other), and the other way round: with a scalar at the bottom, and with
 * an empty list there (JSON input such as [[[...[]...]]] makes those). */
static void same_both_ways(bool empty_leaf)
{
    char raw[64];
    for (int depth = CODEC_MAX_DEPTH - 2; depth <= CODEC_MAX_DEPTH + 3; depth++) {
        skiff_value *v = empty_leaf ? nested_empty(depth) : nested(depth);
        struct buf b;
        buf_init(&b, 0);
        int enc = codec_encode_value(&b, v);
        size_t n = empty_leaf ? nested_empty_raw(raw, depth) : nested_raw(raw, depth);
        skiff_value *out = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        int dec = codec_decode_value(raw, n, &out, &err);
        if ((enc == SKIFF_OK) != (dec == SKIFF_OK))
            FAIL("depth %d%s: encode says %s, decode says %s (%s)", depth,
                 empty_leaf ? " (empty leaf)" : "", skiff_code_name(enc), skiff_code_name(dec),
                 err.message ? err.message : "");
        if (enc == SKIFF_OK)
            ASSERT_EQ_MEM(b.data, raw, n);
        skiff_value_free(out);
        skiff_error_clear(&err);
        skiff_value_free(v);
        buf_deinit(&b);
    }
}

TEST(nesting_limit_same_both_ways)
{
    same_both_ways(false);
}

TEST(nesting_limit_same_both_ways_empty_leaf)
{
    same_both_ways(true);
}

/* protocol.md: nesting deeper than 32 levels is a DeserializationError (not out-of-memory, which
 * would tell the caller to retry). */
TEST(nesting_beyond_limit_refused_on_decode)
{
    static char raw[4096];
    size_t n = nested_raw(raw, CODEC_MAX_DEPTH + 1);
    ASSERT_MALFORMED(raw, n);
    n = nested_raw(raw, 4000); /* far deeper: must not recurse 4000 times either */
    ASSERT_MALFORMED(raw, n);
}

TEST(malformed_input)
{
    ASSERT_MALFORMED("", 0);         /* nothing */
    ASSERT_MALFORMED("\xc1", 1);     /* the never-used byte */
    ASSERT_MALFORMED("\x01\x02", 2); /* trailing bytes */
    ASSERT_MALFORMED("\xa5"
                     "abc",
                     4); /* str cut short */
    ASSERT_MALFORMED("\xc4\x05"
                     "ab",
                     4);                 /* bin cut short */
    ASSERT_MALFORMED("\x92\x01", 2);     /* array cut short */
    ASSERT_MALFORMED("\xd4\x01\x00", 3); /* fixext 1 */
    ASSERT_MALFORMED("\xc7\x02\x05"
                     "ab",
                     5);                             /* ext 8 */
    ASSERT_MALFORMED("\xd6\xff\x00\x00\x00\x01", 6); /* timestamp ext */
    ASSERT_MALFORMED("\x91\xd4\x01\x00", 4);         /* ext nested in a list */
    ASSERT_MALFORMED("\xa2\xc3\x28", 3);             /* invalid UTF-8 string */
    ASSERT_MALFORMED("\xa3\xed\xa0\x80", 4);         /* surrogate in a string */
    ASSERT_MALFORMED("\x81\x01\x02", 3);             /* int key */
    ASSERT_MALFORMED("\x81\xc0\x02", 3);             /* nil key */
    ASSERT_MALFORMED("\x81\xc4\x01"
                     "k\x02",
                     5);                         /* bin key */
    ASSERT_MALFORMED("\x81\x91\x01\x02", 4);     /* array key */
    ASSERT_MALFORMED("\x81\xa2\xff\xfe\x01", 5); /* key not UTF-8 */
    ASSERT_MALFORMED("\x81\xa3"
                     "a\0b\x01",
                     6);                     /* key holding NUL */
    ASSERT_MALFORMED("\x91\x81\x01\x02", 4); /* int key, nested */
    /* uint64 values beyond int64 */
    ASSERT_MALFORMED("\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9);
    ASSERT_MALFORMED("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    ASSERT_MALFORMED("\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 10);
}

TEST(integer_edges_decode)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    /* uint64 INT64_MAX is the largest accepted; int64 INT64_MIN the smallest. */
    ASSERT_EQ_INT(codec_decode_value("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, &v, &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(v), INT64_MAX);
    skiff_value_free(v);
    ASSERT_EQ_INT(codec_decode_value("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, &v, &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(v), INT64_MIN);
    skiff_value_free(v);
    /* Any width of the same number decodes to the same int. */
    ASSERT_EQ_INT(codec_decode_value("\xcd\x00\x07", 3, &v, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(v), 7);
    skiff_value_free(v);
    ASSERT_EQ_INT(codec_decode_value("\xd0\xf9", 2, &v, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(v), -7);
    skiff_value_free(v);
    /* float32 reads as a double. */
    ASSERT_EQ_INT(codec_decode_value("\xca\x3f\xc0\x00\x00", 5, &v, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_DOUBLE);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(v), 1.5);
    skiff_value_free(v);
    /* A duplicate key: the later value wins, the map holds it once. */
    ASSERT_EQ_INT(codec_decode_value("\x82\xa1k\x01\xa1k\x02", 7, &v, &err), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_map_len(v), 1);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(v, "k")), 2);
    skiff_value_free(v);
    ASSERT_EQ_INT(err.code, SKIFF_OK); /* never touched on success */
}

/* A header announcing far more elements than the input holds must fail cleanly and quickly
 * (not try to allocate room for billions of objects first). */
TEST(hostile_counts)
{
    ASSERT_MALFORMED("\xdd\x00\x00\x00\x10", 5);          /* array32 of 16, empty */
    ASSERT_MALFORMED("\xdd\x00\x10\x00\x00\x01", 6);      /* array32 of 1M, one item */
    ASSERT_MALFORMED("\xdf\x00\x10\x00\x00\xa1k\x01", 8); /* map32 of 1M, one pair */
    ASSERT_MALFORMED("\xdb\x00\x10\x00\x00"
                     "abc",
                     8); /* str32 of 1M, 3 bytes */
    ASSERT_MALFORMED("\xc6\x7f\xff\xff\xff"
                     "abc",
                     8); /* bin32 of 2G, 3 bytes */
}

/* The largest counts a header can announce, in 5 bytes: a hostile peer must not make the reader
 * try to allocate room for 4 billion objects (over 100 GiB) before it sees the input end. */
TEST(hostile_counts_huge)
{
    ASSERT_MALFORMED("\xdd\xff\xff\xff\xff", 5);     /* array32 of 2^32-1 */
    ASSERT_MALFORMED("\xdf\xff\xff\xff\xff", 5);     /* map32 of 2^32-1 */
    ASSERT_MALFORMED("\x91\xdd\x0f\xff\xff\xff", 6); /* nested, 268M */
}

TEST(truncated_input)
{
    skiff_value *m = skiff_value_map();
    skiff_map_set(m, "s", skiff_value_string("a string of some length"));
    skiff_map_set(m, "l",
                  skiff_value_list_of(3, skiff_value_int(1), skiff_value_int(-70000),
                                      skiff_value_double(0.5)));
    skiff_map_set(m, "b", skiff_value_bytes("\0\1\2\3", 4));
    skiff_map_set(m, "i", skiff_value_int(INT64_MIN));
    struct buf b = encode(m);
    for (size_t n = 0; n < b.len; n++)
        ASSERT_MALFORMED(b.data, n);
    /* And with a byte too many. */
    ASSERT_EQ_INT(buf_append(&b, "\xc0", 1), 0);
    ASSERT_MALFORMED(b.data, b.len);
    buf_deinit(&b);
    skiff_value_free(m);
}

TEST(args_payload)
{
    skiff_value *args = skiff_value_list_of(2, skiff_value_string("job-1"), skiff_value_int(2));
    skiff_value *kwargs = skiff_value_map();
    skiff_map_set(kwargs, "fail", skiff_value_bool(true));
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(codec_encode_args(&b, args, kwargs), SKIFF_OK);
    /* It is the encoding of the value [args, kwargs]. */
    skiff_value *whole = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(codec_decode_value(b.data, b.len, &whole, &err), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_list_len(whole), 2);
    ASSERT(skiff_value_equal(skiff_list_get(whole, 0), args));
    ASSERT(skiff_value_equal(skiff_list_get(whole, 1), kwargs));
    skiff_value_free(whole);

    skiff_value *a = NULL, *k = NULL;
    ASSERT_EQ_INT(codec_decode_args(b.data, b.len, &a, &k, &err), SKIFF_OK);
    ASSERT(skiff_value_equal(a, args));
    ASSERT(skiff_value_equal(k, kwargs));
    skiff_value_free(a);
    skiff_value_free(k);
    buf_deinit(&b);

    /* NULL args / kwargs mean empty ones. */
    buf_init(&b, 0);
    ASSERT_EQ_INT(codec_encode_args(&b, NULL, NULL), SKIFF_OK);
    ASSERT_EQ_UINT(b.len, 3);
    ASSERT_EQ_MEM(b.data, "\x92\x90\x80", 3);
    ASSERT_EQ_INT(codec_decode_args(b.data, b.len, &a, &k, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_type(a), SKIFF_LIST);
    ASSERT_EQ_INT(skiff_value_type(k), SKIFF_MAP);
    ASSERT_EQ_UINT(skiff_list_len(a), 0);
    ASSERT_EQ_UINT(skiff_map_len(k), 0);
    skiff_value_free(a);
    skiff_value_free(k);

    /* Wrong types are refused before anything is written. */
    size_t before = b.len;
    ASSERT_EQ_INT(codec_encode_args(&b, kwargs, NULL), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(codec_encode_args(&b, NULL, args), SKIFF_ERR_INVALID);
    ASSERT_EQ_UINT(b.len, before);
    buf_deinit(&b);

    /* Shapes other than [list, map] are DeserializationErrors, and out params stay untouched. */
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"\x92\x80\x90", 3},         /* [map, list] */
        {"\x91\x90", 2},             /* [list] */
        {"\x93\x90\x80\xc0", 4},     /* [list, map, nil] */
        {"\x90", 1},                 /* [] */
        {"\x80", 1},                 /* {} */
        {"\x01", 1},                 /* 1 */
        {"\x92\xc0\x80", 3},         /* [nil, map] */
        {"\x92\x90\xc0", 3},         /* [list, nil] */
        {"\x92\x90\x81\x01\x02", 5}, /* kwargs with an int key */
        {"\x92\x90", 2},             /* truncated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        skiff_value *sa = (skiff_value *)&err, *sk = (skiff_value *)&err; /* sentinels */
        int rc = codec_decode_args(bad[i].p, bad[i].n, &sa, &sk, &err);
        if (rc != SKIFF_ERR_DESERIALIZATION)
            FAIL("bad args #%zu: got %s", i, skiff_code_name(rc));
        ASSERT(sa == (skiff_value *)&err && sk == (skiff_value *)&err);
        ASSERT_EQ_INT(err.code, SKIFF_ERR_DESERIALIZATION);
        skiff_error_clear(&err);
    }
    skiff_value_free(args);
    skiff_value_free(kwargs);
}

TEST(request_size_cap)
{
    struct buf b;
    buf_init(&b, 64);
    ASSERT_EQ_INT(buf_append(&b, "hdr", 3), 0);
    char text[200];
    memset(text, 'a', sizeof text);
    skiff_value *small = skiff_value_stringn(text, 40);
    skiff_value *big = skiff_value_stringn(text, sizeof text);
    /* Too big: RequestSizeError, and the buffer is as it was. */
    ASSERT_EQ_INT(codec_encode_value(&b, big), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_EQ_UINT(b.len, 3);
    ASSERT_EQ_MEM(b.data, "hdr", 3);
    skiff_value *args = skiff_value_list_of(1, skiff_value_copy(big));
    ASSERT_EQ_INT(codec_encode_args(&b, args, NULL), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_EQ_UINT(b.len, 3);
    /* What fits still goes in afterwards. */
    ASSERT_EQ_INT(codec_encode_value(&b, small), SKIFF_OK);
    ASSERT_LE_UINT(b.len, 64);
    /* And then the buffer is full: the next one fails and leaves it alone. */
    size_t len = b.len;
    ASSERT_EQ_INT(codec_encode_value(&b, small), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_EQ_UINT(b.len, len);
    /* A value exactly filling the cap fits. */
    buf_deinit(&b);
    buf_init(&b, 42); /* str8 header (2 bytes) + 40 */
    ASSERT_EQ_INT(codec_encode_value(&b, small), SKIFF_OK);
    ASSERT_EQ_UINT(b.len, 42);
    buf_deinit(&b);
    skiff_value_free(args);
    skiff_value_free(small);
    skiff_value_free(big);
}

TEST(from_object)
{
    /* The server and client read values nested in frames through msgpack objects. */
    msgpack_zone zone;
    ASSERT(msgpack_zone_init(&zone, 1024));
    msgpack_object obj;
    size_t off = 0;
    ASSERT_EQ_INT(msgpack_unpack("\x82\xa1"
                                 "a\x01\xa1"
                                 "b\x92\xc3\xa0",
                                 9, &off, &zone, &obj),
                  MSGPACK_UNPACK_SUCCESS);
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(codec_from_object(&obj, &v, &err), SKIFF_OK);
    char *json = skiff_value_to_json(v);
    ASSERT_EQ_STR(json, "{\"a\":1,\"b\":[true,\"\"]}");
    free(json);
    skiff_value_free(v);
    msgpack_zone_destroy(&zone);
}

/* Torture: fail each allocation in turn while encoding and decoding. Encoding may return only
 * SKIFF_OK or SKIFF_ERR_NOMEM (nothing left in the buffer); decoding the same, with no leak. */
TEST(torture_encode_decode)
{
    skiff_value *m = skiff_value_map();
    skiff_map_set(
        m, "list",
        skiff_value_list_of(3, skiff_value_int(1), skiff_value_string("x"), skiff_value_map()));
    skiff_map_set(m, "bytes", skiff_value_bytes("abcdefgh", 8));
    char text[1000];
    memset(text, 'y', sizeof text);
    skiff_map_set(m, "long", skiff_value_stringn(text, sizeof text));
    struct buf ref = encode(m);

    for (long n = 0;; n++) {
        struct buf b;
        buf_init(&b, 0);
        mem_fail_after(n);
        int rc = codec_encode_value(&b, m);
        mem_fail_after(-1);
        if (rc == SKIFF_OK) {
            ASSERT_EQ_UINT(b.len, ref.len);
            ASSERT_EQ_MEM(b.data, ref.data, ref.len);
            buf_deinit(&b);
            break;
        }
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_EQ_UINT(b.len, 0);
        buf_deinit(&b);
        ASSERT_LT_INT(n, 1000);
    }

    int failures = 0;
    for (long n = 0;; n++) {
        skiff_value *out = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        int rc = codec_decode_value(ref.data, ref.len, &out, &err);
        mem_fail_after(-1);
        if (rc == SKIFF_OK) {
            ASSERT(skiff_value_equal(out, m));
            skiff_value_free(out);
            break;
        }
        failures++;
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_NULL(out);
        skiff_error_clear(&err);
        ASSERT_LT_INT(n, 1000);
    }
    ASSERT_GT_INT(failures, 5);

    struct buf args;
    buf_init(&args, 0);
    skiff_value *l = skiff_value_list_of(1, skiff_value_copy(m));
    ASSERT_EQ_INT(codec_encode_args(&args, l, m), SKIFF_OK);
    for (long n = 0;; n++) {
        skiff_value *a = NULL, *k = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        int rc = codec_decode_args(args.data, args.len, &a, &k, &err);
        mem_fail_after(-1);
        skiff_error_clear(&err);
        if (rc == SKIFF_OK) {
            ASSERT(skiff_value_equal(a, l));
            ASSERT(skiff_value_equal(k, m));
            skiff_value_free(a);
            skiff_value_free(k);
            break;
        }
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_LT_INT(n, 1000);
    }
    buf_deinit(&args);
    skiff_value_free(l);
    buf_deinit(&ref);
    skiff_value_free(m);
}

/* A repeated key keeps its first place and its last value, as setting it again would; a map of
 * many keys decodes in O(n log n) (this one would take minutes with a check at each key). */
TEST(map_keys_repeated_and_many)
{
    struct buf b;
    buf_init(&b, 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, codec_buf_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_int(&pk, 4);
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(codec_decode_value(b.data, b.len, &v, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_len(v), 3);
    ASSERT_EQ_STR(skiff_map_key(v, 0), "a");
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_value(v, 0)), 3);
    ASSERT_EQ_STR(skiff_map_key(v, 1), "b");
    ASSERT_EQ_STR(skiff_map_key(v, 2), "c");
    skiff_value_free(v);

    const uint32_t n = 300000;
    b.len = 0;
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%u", i % (n - 1)); /* one key twice */
        msgpack_pack_str_with_body(&pk, key, (size_t)len);
        msgpack_pack_uint32(&pk, i);
    }
    double t0 = unit_now();
    ASSERT_EQ_INT(codec_decode_value(b.data, b.len, &v, &err), SKIFF_OK);
    ASSERT_LT_INT((unit_now() - t0) * 1000, 5000);
    ASSERT_EQ_INT(skiff_map_len(v), n - 1);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(v, "k0")), n - 1);
    skiff_value_free(v);
    buf_deinit(&b);
}

/* codec_scan counts objects without allocating, and refuses lies, depth and excess. */
TEST(scan_counts_and_limits)
{
    size_t used = 0;
    ASSERT_EQ_INT(codec_scan("\x93\x01\xc0\xa1x", 5, 100, 32, &used), 4);
    ASSERT_EQ_UINT(used, 5);
    ASSERT_EQ_INT(codec_scan("\x81\xa1k\x92\x01\x02", 7, 100, 32, NULL), 5);
    ASSERT_EQ_INT(codec_scan("\x93\x01\xc0\xa1x", 5, 3, 32, NULL), CODEC_SCAN_TOO_MANY);
    ASSERT_EQ_INT(codec_scan("\x91\x91\x91\x90", 4, 100, 3, NULL), CODEC_SCAN_TOO_DEEP);
    ASSERT_EQ_INT(codec_scan("\x91\x91\x91\x01", 4, 100, 3, NULL), 4);
    ASSERT_EQ_INT(codec_scan("\x91\x91\x91\x90", 4, 100, 4, NULL), 4);
    ASSERT_EQ_INT(codec_scan("\xdd\xff\xff\xff\xff", 5, 100, 32, NULL), CODEC_SCAN_MALFORMED);
    ASSERT_EQ_INT(codec_scan("\xc6\x00\x00\x00\x09xyz", 8, 100, 32, NULL), CODEC_SCAN_MALFORMED);
    ASSERT_EQ_INT(codec_scan("\xc1", 1, 100, 32, NULL), CODEC_SCAN_MALFORMED);
    ASSERT_EQ_INT(codec_scan("\xd7\x01"
                             "12345678",
                             10, 100, 32, NULL),
                  1); /* fixext8 */
}

/* Deep nesting is a DeserializationError naming the depth limit, however deep (no recursion,
 * no allocation); more values than CODEC_MAX_VALUES one naming that limit. */
TEST(decode_budgets)
{
    size_t depth = 100000;
    char *p = mem_alloc(depth + 1);
    ASSERT_NOT_NULL(p);
    memset(p, 0x91, depth);
    p[depth] = (char)0x90;
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(codec_decode_value(p, depth + 1, &v, &err), SKIFF_ERR_DESERIALIZATION);
    ASSERT_STR_CONTAINS(err.message, "depth limit");
    mem_free(p);
    size_t n = CODEC_MAX_VALUES + 1;
    p = mem_alloc(n + 5);
    ASSERT_NOT_NULL(p);
    p[0] = (char)0xdd;
    p[1] = (char)(n >> 24), p[2] = (char)(n >> 16), p[3] = (char)(n >> 8), p[4] = (char)n;
    memset(p + 5, 0xc0, n);
    ASSERT_EQ_INT(codec_decode_value(p, n + 5, &v, &err), SKIFF_ERR_DESERIALIZATION);
    ASSERT_STR_CONTAINS(err.message, "decoding limit");
    mem_free(p);
    skiff_error_clear(&err);
}

TEST(json_value_count)
{
    ASSERT_EQ_UINT(codec_json_values("{\"a\": [1, -2.5e3, true, null, \"x,y\"]}", 37, 100), 8);
    ASSERT_EQ_UINT(codec_json_values("\"a\\\"b\"", 6, 100), 1);
    ASSERT_EQ_UINT(codec_json_values("[[[[]]]]", 8, 100), 4);
    ASSERT_EQ_UINT(codec_json_values("[0,0,0,0,0,0,0,0]", 17, 3), 4); /* stops past max */
}
