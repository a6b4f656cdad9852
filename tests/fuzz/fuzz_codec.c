/*
 * fuzz_codec.c - fuzz target for the msgpack codec (src/common/codec.c).
 *
 * Decodes the input as one value and as an argument payload; whatever decodes must encode, and
 * decode again to the same value (a value one side accepts, the other side must accept too).
 * Violations abort, so libFuzzer (scripts/fuzz.sh) and the corpus replay report them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_codec: %s\n", what);
        abort();
    }
}

static void round_trip_value(const skiff_value *v)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = codec_encode_value(&b, v);
    check(rc == SKIFF_OK, "a decoded value does not encode");
    skiff_value *again = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    rc = codec_decode_value(b.data, b.len, &again, &err);
    if (rc != SKIFF_OK)
        fprintf(stderr, "fuzz_codec: re-decode: %s\n", err.message ? err.message : "?");
    check(rc == SKIFF_OK, "an encoded value does not decode");
    /* Compared as encodings, not with skiff_value_equal: a NaN is a valid value that is not
     * equal to itself. */
    struct buf b2;
    buf_init(&b2, 0);
    check(codec_encode_value(&b2, again) == SKIFF_OK, "a re-decoded value does not encode");
    check(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0, "decode(encode(v)) != v");
    buf_deinit(&b2);
    skiff_value_free(again);
    skiff_error_clear(&err);
    buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *v = NULL;
    int rc = codec_decode_value(p, size, &v, &err);
    if (rc == SKIFF_OK) {
        round_trip_value(v);
        skiff_value_free(v);
    } else {
        check(rc == SKIFF_ERR_DESERIALIZATION || rc == SKIFF_ERR_NOMEM, "unexpected error code");
        check((int)err.code == rc, "err not filled");
    }
    skiff_error_clear(&err);

    skiff_value *args = NULL, *kwargs = NULL;
    rc = codec_decode_args(p, size, &args, &kwargs, &err);
    skiff_error_clear(&err);
    if (rc == SKIFF_OK) {
        check(skiff_value_type(args) == SKIFF_LIST && skiff_value_type(kwargs) == SKIFF_MAP,
              "args payload is not [list, map]");
        struct buf b;
        buf_init(&b, 0);
        check(codec_encode_args(&b, args, kwargs) == SKIFF_OK, "decoded args do not encode");
        skiff_value *a2 = NULL, *k2 = NULL;
        check(codec_decode_args(b.data, b.len, &a2, &k2, &err) == SKIFF_OK,
              "encoded args do not decode");
        /* Compared as encodings (a NaN is not equal to itself, see round_trip_value). */
        struct buf b2;
        buf_init(&b2, 0);
        check(codec_encode_args(&b2, a2, k2) == SKIFF_OK, "re-decoded args do not encode");
        check(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0, "args changed");
        buf_deinit(&b2);
        skiff_value_free(a2);
        skiff_value_free(k2);
        skiff_error_clear(&err);
        buf_deinit(&b);
        skiff_value_free(args);
        skiff_value_free(kwargs);
    }
    return 0;
}
