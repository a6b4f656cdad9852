/*
 * fuzz_json.c - fuzz target for the JSON edge (skiff_value_from_json / skiff_value_to_json in
 * src/common/json.c).
 *
 * Whatever parses must print, the printed text must parse to an equal value, and the value must
 * survive msgpack (the CLI turns JSON arguments into msgpack payloads). Violations abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *detail)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_value_from_json((const char *)data, size, &v, &err);
    if (rc != SKIFF_OK) {
        check(rc == SKIFF_ERR_INVALID || rc == SKIFF_ERR_NOMEM, "unexpected error code", NULL);
        check(err.message != NULL, "no error message", NULL);
        skiff_error_clear(&err);
        return 0;
    }
    char *text = skiff_value_to_json(v);
    check(text != NULL, "a parsed value does not print", NULL);
    skiff_value *again = NULL;
    rc = skiff_value_from_json(text, strlen(text), &again, &err);
    check(rc == SKIFF_OK, "printed JSON does not parse", err.message);
    check(skiff_value_equal(v, again), "parse(print(v)) != v", text);

    struct buf b;
    buf_init(&b, 0);
    rc = codec_encode_value(&b, v);
    check(rc == SKIFF_OK, "a JSON value does not encode as msgpack", text);
    skiff_value *back = NULL;
    rc = codec_decode_value(b.data, b.len, &back, &err);
    check(rc == SKIFF_OK, "msgpack of a JSON value does not decode", err.message);
    check(skiff_value_equal(v, back), "msgpack round trip changed a JSON value", text);

    skiff_value_free(back);
    buf_deinit(&b);
    skiff_value_free(again);
    free(text);
    skiff_value_free(v);
    skiff_error_clear(&err);
    return 0;
}
