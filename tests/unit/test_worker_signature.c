/*
 * test_worker_signature.c - unit tests of app function signatures (src/common/signature.c), the
 * parser and the argument binder the container runtime uses: the grammar and its error messages,
 * Python's TypeErrors for too many / missing / unexpected / repeated arguments, type checks,
 * optional parameters, and allocation failures while parsing.
 */
#include "common/mem.h"
#include "common/signature.h"
#include "unit.h"

/* Parses text, which must be valid. */
static void parse_ok(struct signature *sig, const char *text)
{
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = signature_parse(sig, text, &err);
    if (rc != SKIFF_OK)
        FAIL("signature \"%s\" refused: %s", text, err.message);
    skiff_error_clear(&err);
}

/* Parses text, which must be refused with a message containing want. */
static void parse_bad(const char *text, const char *want)
{
    struct signature sig;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(signature_parse(&sig, text, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_UINT(sig.n, 0);
    ASSERT_NULL(sig.params);
    ASSERT_STR_CONTAINS(err.message, want);
    skiff_error_clear(&err);
}

/* A list from JSON. */
static skiff_value *json(const char *text)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_value_from_json(text, strlen(text), &v, &err) != SKIFF_OK)
        FAIL("bad JSON in the test: %s", err.message);
    return v;
}

/* Binds args/kwargs (JSON; NULL: none) to text's parameters as function fname; returns the
 * message of the TypeError, or NULL when binding succeeded (then bound holds the result; the
 * values stay alive in *keep_args / *keep_kwargs). */
static char *bind(const char *text, const char *fname, const char *args, const char *kwargs,
                  const skiff_value **bound, skiff_value **keep_args, skiff_value **keep_kwargs)
{
    struct signature sig;
    parse_ok(&sig, text);
    *keep_args = args ? json(args) : NULL;
    *keep_kwargs = kwargs ? json(kwargs) : NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = signature_bind(&sig, fname, *keep_args, *keep_kwargs, bound, &err);
    signature_deinit(&sig);
    if (rc == SKIFF_OK) {
        ASSERT_NULL(err.message);
        return NULL;
    }
    ASSERT_EQ_INT(rc, SKIFF_ERR_USER);
    ASSERT_EQ_INT(err.code, SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "TypeError");
    char *msg = err.message;
    err.message = NULL;
    skiff_error_clear(&err);
    return msg;
}

/* Binding must fail with exactly message want. */
static void bind_fails(const char *text, const char *args, const char *kwargs, const char *want)
{
    const skiff_value *bound[SIG_MAX_PARAMS];
    skiff_value *a, *k;
    char *msg = bind(text, "f", args, kwargs, bound, &a, &k);
    if (!msg)
        FAIL("binding %s / %s to \"%s\" succeeded; expected: %s", args, kwargs, text, want);
    ASSERT_EQ_STR(msg, want);
    mem_free(msg);
    skiff_value_free(a);
    skiff_value_free(k);
}

/* Binding must succeed. */
static void bind_works(const char *text, const char *args, const char *kwargs)
{
    const skiff_value *bound[SIG_MAX_PARAMS];
    skiff_value *a, *k;
    char *msg = bind(text, "f", args, kwargs, bound, &a, &k);
    if (msg)
        FAIL("binding %s / %s to \"%s\" failed: %s", args, kwargs, text, msg);
    skiff_value_free(a);
    skiff_value_free(k);
}

TEST(parse_forms)
{
    struct signature sig;
    parse_ok(&sig, "job_id:str, params:map?");
    ASSERT_EQ_UINT(sig.n, 2);
    ASSERT_EQ_UINT(sig.nrequired, 1);
    ASSERT_EQ_STR(sig.params[0].name, "job_id");
    ASSERT_EQ_INT(sig.params[0].type, SIG_STR);
    ASSERT_FALSE(sig.params[0].optional);
    ASSERT_EQ_STR(sig.params[1].name, "params");
    ASSERT_EQ_INT(sig.params[1].type, SIG_MAP);
    ASSERT_TRUE(sig.params[1].optional);
    ASSERT_EQ_INT(signature_find(&sig, "params"), 1);
    ASSERT_EQ_INT(signature_find(&sig, "nope"), -1);
    signature_deinit(&sig);

    parse_ok(&sig, "  x ,y?,  _z9 : float ? , w:any?\n");
    ASSERT_EQ_UINT(sig.n, 4);
    ASSERT_EQ_UINT(sig.nrequired, 1);
    ASSERT_EQ_INT(sig.params[0].type, SIG_ANY);
    ASSERT_EQ_INT(sig.params[1].type, SIG_ANY);
    ASSERT_TRUE(sig.params[1].optional);
    ASSERT_EQ_STR(sig.params[2].name, "_z9");
    ASSERT_EQ_INT(sig.params[2].type, SIG_FLOAT);
    signature_deinit(&sig);

    parse_ok(&sig, "");
    ASSERT_EQ_UINT(sig.n, 0);
    signature_deinit(&sig);
    parse_ok(&sig, "   ");
    ASSERT_EQ_UINT(sig.n, 0);
    signature_deinit(&sig);

    parse_ok(&sig, "a:any, b:nil, c:bool, d:int, e:float, f:str, g:bytes, h:list, i:map");
    for (size_t i = 0; i < sig.n; i++)
        ASSERT_EQ_INT(sig.params[i].type, (int)i);
    ASSERT_EQ_STR(signature_type_name(SIG_BYTES), "bytes");
    signature_deinit(&sig);
}

TEST(parse_errors)
{
    parse_bad("x:integer", "parameter 'x' has unknown type 'integer'");
    parse_bad("x:integer", "(at character 3)");
    parse_bad("x,,y", "a parameter name is missing");
    parse_bad("x,", "a parameter is missing after the last ','");
    parse_bad(",x", "a parameter name is missing (at character 1)");
    parse_bad("1x", "parameter name '1x' must start with a letter or '_'");
    parse_bad("x y", "unexpected 'y' after parameter 'x'");
    parse_bad("x:", "parameter 'x' has ':' but no type");
    parse_bad("x, x", "parameter 'x' appears twice");
    parse_bad("a?, b", "required parameter 'b' follows optional parameter 'a'");
    parse_bad("x-y", "unexpected '-' after parameter 'x'");
    parse_bad("x??", "unexpected '?' after parameter 'x'");
    parse_bad("*args", "expected a parameter name, found '*'");
    parse_bad("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm",
              "is longer than 63 characters");
    /* The whole signature is quoted so its author can find it. */
    parse_bad("job_id:str, params:dict?", "signature \"job_id:str, params:dict?\": ");

    char many[SIG_MAX_PARAMS * 8 + 16] = "";
    for (int i = 0; i <= SIG_MAX_PARAMS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sp%d", i ? "," : "", i);
    parse_bad(many, "more than 64 parameters");

    skiff_error err = SKIFF_ERROR_INIT;
    struct signature sig;
    ASSERT_EQ_INT(signature_parse(&sig, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
}

TEST(bind_positional_and_keyword)
{
    const skiff_value *bound[SIG_MAX_PARAMS];
    skiff_value *a, *k;
    ASSERT_NULL(bind("job_id:str, params:map?", "train", "[\"j1\"]", NULL, bound, &a, &k));
    ASSERT_EQ_STR(skiff_value_get_string(bound[0], NULL), "j1");
    ASSERT_NULL(bound[1]);
    skiff_value_free(a);
    skiff_value_free(k);

    ASSERT_NULL(bind("a, b?, c?", "f", "[1]", "{\"c\": 3}", bound, &a, &k));
    ASSERT_EQ_INT(skiff_value_get_int(bound[0]), 1);
    ASSERT_NULL(bound[1]);
    ASSERT_EQ_INT(skiff_value_get_int(bound[2]), 3);
    skiff_value_free(a);
    skiff_value_free(k);

    ASSERT_NULL(bind("a, b", "f", NULL, "{\"b\": 2, \"a\": 1}", bound, &a, &k));
    ASSERT_EQ_INT(skiff_value_get_int(bound[0]), 1);
    ASSERT_EQ_INT(skiff_value_get_int(bound[1]), 2);
    skiff_value_free(a);
    skiff_value_free(k);

    bind_works("", "[]", "{}");
    bind_works("", NULL, NULL);
}

TEST(bind_python_type_errors)
{
    bind_fails("x", "[1, 2]", NULL, "f() takes 1 positional argument but 2 were given");
    bind_fails("x, y", "[1, 2, 3]", NULL, "f() takes 2 positional arguments but 3 were given");
    bind_fails("", "[1]", NULL, "f() takes 0 positional arguments but 1 was given");
    bind_fails("x, y?", "[1, 2, 3]", NULL,
               "f() takes from 1 to 2 positional arguments but 3 were given");
    bind_fails("x", "[]", NULL, "f() missing 1 required argument: 'x'");
    bind_fails("a, b", "[]", NULL, "f() missing 2 required arguments: 'a' and 'b'");
    bind_fails("a, b, c", "[]", "{\"b\": 1}", "f() missing 2 required arguments: 'a' and 'c'");
    bind_fails("a, b, c, d?", NULL, NULL, "f() missing 3 required arguments: 'a', 'b', and 'c'");
    bind_fails("x", "[]", "{\"y\": 3}", "f() got an unexpected keyword argument 'y'");
    bind_fails("x", "[3]", "{\"x\": 3}", "f() got multiple values for argument 'x'");
    /* Python's order: too many positional first, then keywords, then missing, then (skiff's)
     * types. */
    bind_fails("x:int", "[1, 2]", "{\"zz\": 1}",
               "f() takes 1 positional argument but 2 were given");
    bind_fails("x:int, y", "[]", "{\"zz\": 1}", "f() got an unexpected keyword argument 'zz'");
    bind_fails("x:int, y", "[\"s\"]", NULL, "f() missing 1 required argument: 'y'");
}

TEST(bind_types)
{
    bind_fails("x:int", "[\"s\"]", NULL, "f() argument 'x' must be int, not str");
    bind_fails("x:int", "[1.5]", NULL, "f() argument 'x' must be int, not float");
    bind_fails("x:str", "[null]", NULL, "f() argument 'x' must be str, not nil");
    bind_fails("x:bool", "[1]", NULL, "f() argument 'x' must be bool, not int");
    bind_fails("x:bytes", "[\"s\"]", NULL, "f() argument 'x' must be bytes, not str");
    bind_fails("x:list", "[{}]", NULL, "f() argument 'x' must be list, not map");
    bind_fails("x:map", "[[]]", NULL, "f() argument 'x' must be map, not list");
    bind_fails("x:nil", "[0]", NULL, "f() argument 'x' must be nil, not int");
    bind_fails("x, y:float", "[1]", "{\"y\": \"2\"}", "f() argument 'y' must be float, not str");
    bind_works("x:float", "[1]", NULL); /* float accepts int */
    bind_works("x:float", "[1.5]", NULL);
    bind_works("x:any", "[{\"a\": [1]}]", NULL);
    bind_works("x:nil", "[null]", NULL);
    bind_works("x:bytes", "[{\"$bytes\": \"AAE=\"}]", NULL);
    bind_works("x:bool, y:list, z:map", "[true, [], {}]", NULL);
    /* An optional parameter also accepts an explicit nil. */
    bind_works("x:int?", "[null]", NULL);
    bind_works("x:int, y:map?", "[1]", "{\"y\": null}");
    bind_fails("x:int?", "[\"1\"]", NULL, "f() argument 'x' must be int, not str");
}

TEST(parse_out_of_memory)
{
    /* Every allocation of a parse failing in turn gives SKIFF_ERR_NOMEM, never a crash or leak. */
    for (long n = 0; n < 8; n++) {
        struct signature sig;
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        int rc = signature_parse(&sig, "a:int, b:str, c:map?", &err);
        mem_fail_after(-1);
        if (rc == SKIFF_OK) {
            ASSERT_EQ_UINT(sig.n, 3);
            signature_deinit(&sig);
            skiff_error_clear(&err);
            return;
        }
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_EQ_UINT(sig.n, 0);
        skiff_error_clear(&err);
    }
    FAIL("parsing still failed with 8 allocations allowed");
}
