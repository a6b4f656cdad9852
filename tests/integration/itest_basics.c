/*
 * itest_basics.c - integration tests of issue 2, points 1-3, 5 (errors) and 9 through the C
 * API against a real skiffd: deploy and call (square, the shipped call_square program), a call
 * from one app into another (cube), lazy and eager lookup and hydrate, errors that reach the
 * caller whole (type, message, traceback; wrong arguments; unknown app or function), and
 * authentication.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("examples/square.c");
    itest_deploy("examples/another_app.c");
    itest_deploy("examples/jobs.c");
}

TEST(square_remote)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "my-shared-app", "square");
    const char *id = skiff_function_id(fn);
    ASSERT_NOT_NULL(id);
    ASSERT(!strncmp(id, "fu-", 3));
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(42)), *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, args, NULL, &res, &err), &err);
    ASSERT_EQ_INT(skiff_value_type(res), SKIFF_INT);
    ASSERT_EQ_INT(skiff_value_get_int(res), 1764);
    skiff_value_free(res);
    /* By keyword, and with negative numbers; the same handle many times. */
    char *json = itest_call_json(fn, "[]", "{\"x\": -7}");
    ASSERT_EQ_STR(json, "49");
    free(json);
    for (int i = 0; i < 50; i++) {
        skiff_value *a = skiff_value_list_of(1, skiff_value_int(i));
        ASSERT_SKIFF_OK(skiff_function_remote(fn, a, NULL, &res, &err), &err);
        ASSERT_EQ_INT(skiff_value_get_int(res), i * i);
        skiff_value_free(res);
        skiff_value_free(a);
    }
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(call_square_example_program)
{
    char prog[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/examples/call_square", itest_build());
    const char *argv[] = {prog, NULL};
    struct itest_run r = itest_exec(argv, NULL, 60);
    if (r.status != 0)
        FAIL("call_square: exit %d\nstdout: %s\nstderr: %s", r.status, r.out, r.err);
    ASSERT_STR_CONTAINS(r.out, "1764");
    itest_run_free(&r);
}

TEST(cross_app_cube)
{
    skiff_client *c = itest_connect();
    skiff_function *cube = itest_lookup(c, "another-app", "cube");
    char *json = itest_call_json(cube, "[42]", NULL);
    ASSERT_EQ_STR(json, "74088");
    free(json);
    json = itest_call_json(cube, "[-3]", NULL);
    ASSERT_EQ_STR(json, "-27");
    free(json);
    skiff_function_free(cube);
    skiff_client_close(c);
}

/* The not-found error of a lookup names both the app and the function. */
static void expect_not_found(int rc, skiff_error *err, const char *app, const char *fn)
{
    ASSERT_SKIFF(rc, SKIFF_ERR_NOT_FOUND, err);
    ASSERT_EQ_INT(err->code, SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_STR(err->type, "NotFoundError");
    ASSERT_STR_CONTAINS(err->message, app);
    ASSERT_STR_CONTAINS(err->message, fn);
    skiff_error_clear(err);
}

TEST(eager_lookup_not_found)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = (skiff_function *)&c; /* a sentinel: must stay untouched */
    skiff_error err = SKIFF_ERROR_INIT;
    expect_not_found(skiff_function_lookup(c, "no-such-app", "square", &fn, &err), &err,
                     "no-such-app", "square");
    expect_not_found(skiff_function_lookup(c, "my-shared-app", "no_such_fn", &fn, &err), &err,
                     "my-shared-app", "no_such_fn");
    ASSERT(fn == (skiff_function *)&c);
    /* Empty names are misuse, not a lookup. */
    ASSERT_SKIFF(skiff_function_lookup(c, "", "square", &fn, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    skiff_client_close(c);
}

TEST(lazy_from_name_and_hydrate)
{
    skiff_client *c = itest_connect();
    skiff_error err = SKIFF_ERROR_INIT;

    /* A missing function: the handle is made without asking; the first use fails. */
    skiff_function *missing = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "cubed", &missing, &err), &err);
    ASSERT_NULL(skiff_function_id(missing));
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(2)), *res = NULL;
    expect_not_found(skiff_function_remote(missing, args, NULL, &res, &err), &err, "my-shared-app",
                     "cubed");
    expect_not_found(skiff_function_hydrate(missing, &err), &err, "my-shared-app", "cubed");
    skiff_call *call = NULL;
    expect_not_found(skiff_function_spawn(missing, args, NULL, &call, &err), &err, "my-shared-app",
                     "cubed");
    skiff_function_free(missing);

    skiff_function *noapp = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "ghost-app", "square", &noapp, &err), &err);
    expect_not_found(skiff_function_hydrate(noapp, &err), &err, "ghost-app", "square");
    skiff_function_free(noapp);

    /* An existing one: hydrate fills the id; calling afterwards works; hydrating twice too. */
    skiff_function *fn = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "square", &fn, &err), &err);
    ASSERT_NULL(skiff_function_id(fn));
    ASSERT_SKIFF_OK(skiff_function_hydrate(fn, &err), &err);
    ASSERT_NOT_NULL(skiff_function_id(fn));
    ASSERT(!strncmp(skiff_function_id(fn), "fu-", 3));
    ASSERT_SKIFF_OK(skiff_function_hydrate(fn, &err), &err);
    ASSERT_SKIFF_OK(skiff_function_remote(fn, args, NULL, &res, &err), &err);
    ASSERT_EQ_INT(skiff_value_get_int(res), 4);
    skiff_value_free(res);

    /* A lazy handle that is simply called looks itself up on the way (and keeps the id). */
    skiff_function *lazy = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "square", &lazy, &err), &err);
    ASSERT_SKIFF_OK(skiff_function_remote(lazy, args, NULL, &res, &err), &err);
    ASSERT_EQ_INT(skiff_value_get_int(res), 4);
    skiff_value_free(res);
    ASSERT_EQ_STR(skiff_function_id(lazy), skiff_function_id(fn));

    skiff_value_free(args);
    skiff_function_free(lazy);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(failing_function_error_whole)
{
    skiff_client *c = itest_connect();
    skiff_function *train = itest_lookup(c, "example", "train_model");
    skiff_error err = itest_call_fails(train, "[\"job-err\", {\"seconds\": 0, \"fail\": true}]",
                                       NULL, SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT(strlen(err.message) > 0);
    /* Where it failed: the app's source file, in the remote traceback. */
    ASSERT_NOT_NULL(err.traceback);
    ASSERT_STR_CONTAINS(err.traceback, "jobs.c");
    ASSERT_STR_CONTAINS(err.traceback, "train_model");
    skiff_error_clear(&err);

    /* The same error through spawn + get, every time it is asked. */
    skiff_call *call =
        itest_spawn_json(train, "[\"job-err2\", {\"seconds\": 0, \"fail\": true}]", NULL);
    for (int i = 0; i < 2; i++) {
        skiff_value *v = NULL;
        ASSERT_SKIFF(skiff_call_get(call, SKIFF_WAIT_FOREVER, &v, &err), SKIFF_ERR_USER, &err);
        ASSERT_NULL(v);
        ASSERT_EQ_STR(err.type, "ValueError");
        ASSERT_STR_CONTAINS(err.traceback, "jobs.c");
        skiff_error_clear(&err);
    }
    skiff_call_free(call);
    skiff_function_free(train);
    skiff_client_close(c);
}

TEST(wrong_arguments)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    static const struct {
        const char *args, *kwargs;
    } bad[] = {
        {"[]", NULL},          /* missing x */
        {"[1, 2]", NULL},      /* one too many */
        {"[\"seven\"]", NULL}, /* wrong type (square takes int or float) */
        {"[[2]]", NULL},       /* a list */
        {"[]", "{\"y\": 1}"},  /* unknown keyword */
        {"[1]", "{\"x\": 1}"}, /* x twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        skiff_error err = itest_call_fails(sq, bad[i].args, bad[i].kwargs, SKIFF_ERR_USER);
        if (strcmp(err.type, "TypeError"))
            FAIL("square(%s, %s): type %s (%s), expected TypeError", bad[i].args,
                 bad[i].kwargs ? bad[i].kwargs : "", err.type, err.message);
        skiff_error_clear(&err);
    }
    /* And the function still works. */
    char *json = itest_call_json(sq, "[3]", NULL);
    ASSERT_EQ_STR(json, "9");
    free(json);

    /* Arguments that are not a list / kwargs not a map: misuse, refused by the library. */
    skiff_value *notlist = skiff_value_int(1), *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF(skiff_function_remote(sq, notlist, NULL, &res, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    ASSERT_SKIFF(skiff_function_remote(sq, NULL, notlist, &res, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    skiff_value_free(notlist);
    skiff_function_free(sq);
    skiff_client_close(c);
}

TEST(unknown_app_or_function_by_call)
{
    skiff_client *c = itest_connect();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *fn = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "nope-app", "nope_fn", &fn, &err), &err);
    err = itest_call_fails(fn, "[1]", NULL, SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(err.message, "nope-app");
    ASSERT_STR_CONTAINS(err.message, "nope_fn");
    skiff_error_clear(&err);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(auth_bad_token_refused)
{
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client_options o = {0};
    o.server = itest_server.addr;
    o.token_id = "tk-00000000000000000000000000";
    o.token_secret = "not-the-secret";
    ASSERT_SKIFF(skiff_client_connect(&o, &c, &err), SKIFF_ERR_AUTH, &err);
    ASSERT_NULL(c);
    ASSERT_EQ_STR(err.type, "AuthError");
    ASSERT(strlen(err.message) > 0);
    skiff_error_clear(&err);

    /* A right id with a wrong secret. */
    char *toml = NULL;
    {
        char path[ITEST_FILE];
        snprintf(path, sizeof path, "%s/.skiff.toml", itest_server.home);
        toml = itest_read_file(path);
    }
    const char *idp = strstr(toml, "token_id");
    ASSERT_NOT_NULL(idp);
    idp = strchr(idp, '"');
    ASSERT_NOT_NULL(idp);
    char id[128];
    ASSERT_EQ_INT(sscanf(idp + 1, "%127[^\"]", id), 1);
    o.token_id = id;
    ASSERT_SKIFF(skiff_client_connect(&o, &c, &err), SKIFF_ERR_AUTH, &err);
    skiff_error_clear(&err);
    free(toml);
}

TEST(auth_missing_token_refused)
{
    /* No ~/.skiff.toml and no environment: nothing to present. */
    setenv("HOME", itest_tmpdir("emptyhome"), 1);
    unsetenv("SKIFF_TOKEN_ID");
    unsetenv("SKIFF_TOKEN_SECRET");
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client_options o = {0};
    o.server = itest_server.addr;
    ASSERT_SKIFF(skiff_client_connect(&o, &c, &err), SKIFF_ERR_AUTH, &err);
    ASSERT_NULL(c);
    ASSERT(strlen(err.message) > 0);
    skiff_error_clear(&err);

    /* The CLI says so too, with exit status 1. */
    struct itest_run r = itest_cli(NULL, "call", "my-shared-app", "square", "2", NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "Auth");
    itest_run_free(&r);
}

TEST(token_file_written_on_first_start)
{
    char path[ITEST_FILE];
    snprintf(path, sizeof path, "%s/.skiff.toml", itest_server.home);
    struct stat st;
    ASSERT_EQ_INT(stat(path, &st), 0);
    ASSERT_EQ_INT(st.st_mode & 077, 0); /* holds a secret: not readable by others */
    char *toml = itest_read_file(path);
    ASSERT_STR_CONTAINS(toml, "token_id");
    ASSERT_STR_CONTAINS(toml, "token_secret");
    ASSERT_STR_CONTAINS(toml, itest_server.addr);
    free(toml);
    /* With only that file (no SKIFF_SERVER), clients find the server and authenticate. */
    unsetenv("SKIFF_SERVER");
    skiff_client *c = itest_connect();
    skiff_client_close(c);
    /* The secret is stored hashed: it does not appear in the server's database. */
    toml = itest_read_file(path);
    char secret[256] = "";
    const char *sp = strstr(toml, "token_secret");
    ASSERT_NOT_NULL(sp);
    ASSERT_EQ_INT(sscanf(strchr(sp, '"') + 1, "%255[^\"]", secret), 1);
    ASSERT(strlen(secret) >= 16);
    static const char *const files[] = {"skiff.db", "skiff.db-wal"};
    for (size_t i = 0; i < 2; i++) {
        char db[ITEST_FILE];
        snprintf(db, sizeof db, "%s/%s", itest_server.data, files[i]);
        size_t n;
        char *dbtext = itest_read_file_n(db, &n);
        if (i == 0)
            ASSERT_GT_INT(n, 0);
        if (memmem(dbtext, n, secret, strlen(secret)))
            FAIL("the token secret is stored in clear in %s", db);
        free(dbtext);
    }
    free(toml);
}

/* Signature binding with typed parameters (tests/apps/faulty.c: typed(i:int, f:float, s:str,
 * b:bytes?, flag:bool?)): the runtime binds positional and keyword arguments and refuses wrong
 * counts and types with a TypeError before the function runs. */
TEST(typed_signature_binding)
{
    itest_deploy("tests/apps/faulty.c");
    skiff_client *c = itest_connect();
    skiff_function *typed = itest_lookup(c, "faulty", "typed");
    skiff_value *args = itest_json("[1, 2.5, \"s\"]"), *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(typed, args, NULL, &res, &err), &err);
    ASSERT_JSON(res, "{\"i\": 1, \"f\": 2.5, \"s\": \"s\", \"b\": null, \"flag\": false}");
    skiff_value_free(res);
    skiff_value_free(args);
    /* float accepts an int; keywords bind by name; optional ones may be given. */
    args = itest_json("[7]");
    skiff_value *kwargs = itest_json("{\"s\": \"k\", \"f\": 2, \"flag\": true, "
                                     "\"b\": {\"$bytes\": \"AQI=\"}}");
    ASSERT_SKIFF_OK(skiff_function_remote(typed, args, kwargs, &res, &err), &err);
    ASSERT_JSON(res, "{\"i\": 7, \"f\": 2.0, \"s\": \"k\", \"b\": {\"$bytes\": \"AQI=\"}, "
                     "\"flag\": true}");
    skiff_value_free(res);
    skiff_value_free(args);
    skiff_value_free(kwargs);

    static const struct {
        const char *args, *kwargs;
    } bad[] = {
        {"[\"1\", 2.5, \"s\"]", NULL},                          /* str for int */
        {"[1, \"x\", \"s\"]", NULL},                            /* str for float */
        {"[1, 2.5, 3]", NULL},                                  /* int for str */
        {"[1, 2.5]", NULL},                                     /* s missing */
        {"[1, 2.5, \"s\", {\"$bytes\": \"\"}, true, 9]", NULL}, /* one too many */
        {"[1, 2.5, \"s\"]", "{\"nope\": 1}"},                   /* unknown keyword */
        {"[1, 2.5, \"s\"]", "{\"b\": \"not bytes\"}"},          /* wrong optional type */
        {"[1, 2.5, \"s\"]", "{\"i\": 2}"},                      /* i twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = itest_call_fails(typed, bad[i].args, bad[i].kwargs, SKIFF_ERR_USER);
        if (strcmp(err.type, "TypeError"))
            FAIL("typed(%s, %s): %s (%s), expected TypeError", bad[i].args,
                 bad[i].kwargs ? bad[i].kwargs : "", err.type, err.message);
        skiff_error_clear(&err);
    }
    skiff_function_free(typed);
    skiff_client_close(c);
}
