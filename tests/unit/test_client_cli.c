/*
 * test_client_cli.c - unit tests of the `skiff` command line's parsing (src/cli/args.c): options
 * and positionals (negative numbers stay arguments, "--" ends options, unknown options and
 * missing values are errors), JSON arguments and --kwarg NAME=JSON with their error messages,
 * `skiff map` input lines, and --timeout values.
 *
 * The Makefile links unit tests against src/common and src/client only, so the CLI's parsing
 * file is compiled in here directly; it has no other dependencies.
 */
#include "cli/args.c"

#include "common/mem.h"
#include "unit.h"

/* Splits a NULL-terminated word list for cli_getopt. */
#define WORDS(...) ((char *[]){__VA_ARGS__, NULL})
static int count_words(char **w)
{
    int n = 0;
    while (w[n])
        n++;
    return n;
}

TEST(getopt_positionals_and_options)
{
    char **w = WORDS("app", "fn", "-1", "--kwarg", "a=1", "--kwarg=b=2", "[1]", "--flag");
    int argc = count_words(w);
    const char *pos[16], *kws[16];
    struct cli_opt opts[] = {{.name = "--kwarg", .has_value = true, .values = kws},
                             {.name = "--flag"}};
    bool help = true;
    int npos = -1;
    char why[256] = "";
    ASSERT_EQ_INT(cli_getopt(argc, w, opts, 2, &help, NULL, pos, &npos, why, sizeof why), 0);
    ASSERT_FALSE(help);
    ASSERT_EQ_INT(npos, 4);
    ASSERT_EQ_STR(pos[0], "app");
    ASSERT_EQ_STR(pos[1], "fn");
    ASSERT_EQ_STR(pos[2], "-1"); /* a negative number is a JSON value, not an option */
    ASSERT_EQ_STR(pos[3], "[1]");
    ASSERT_EQ_INT(opts[0].count, 2);
    ASSERT_EQ_STR(kws[0], "a=1");
    ASSERT_EQ_STR(kws[1], "b=2");
    ASSERT_EQ_INT(opts[1].count, 1);
}

TEST(getopt_double_dash_ends_options)
{
    char **w = WORDS("x", "--", "--kwarg", "--help");
    const char *pos[8];
    struct cli_opt opts[] = {{.name = "--kwarg", .has_value = true}};
    bool help;
    int npos;
    char why[256];
    ASSERT_EQ_INT(cli_getopt(count_words(w), w, opts, 1, &help, NULL, pos, &npos, why, sizeof why),
                  0);
    ASSERT_FALSE(help);
    ASSERT_EQ_INT(npos, 3);
    ASSERT_EQ_STR(pos[1], "--kwarg");
    ASSERT_EQ_STR(pos[2], "--help");
    ASSERT_EQ_INT(opts[0].count, 0);
}

TEST(getopt_help_and_server)
{
    char **w = WORDS("-h", "--server", "unix:/tmp/s", "a");
    const char *pos[8], *server = NULL;
    bool help = false;
    int npos;
    char why[256];
    ASSERT_EQ_INT(
        cli_getopt(count_words(w), w, NULL, 0, &help, &server, pos, &npos, why, sizeof why), 0);
    ASSERT_TRUE(help);
    ASSERT_EQ_STR(server, "unix:/tmp/s");
    ASSERT_EQ_INT(npos, 1);

    char **w2 = WORDS("--server=127.0.0.1:9");
    ASSERT_EQ_INT(
        cli_getopt(count_words(w2), w2, NULL, 0, &help, &server, pos, &npos, why, sizeof why), 0);
    ASSERT_FALSE(help);
    ASSERT_EQ_STR(server, "127.0.0.1:9");

    /* Without a place for it, --server is an unknown option. */
    ASSERT_EQ_INT(
        cli_getopt(count_words(w2), w2, NULL, 0, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "unknown option --server");
}

TEST(getopt_errors)
{
    const char *pos[8];
    bool help;
    int npos;
    char why[256];
    struct cli_opt opts[] = {{.name = "--timeout", .has_value = true}, {.name = "--flag"}};

    char **w = WORDS("--nope");
    ASSERT_EQ_INT(cli_getopt(1, w, opts, 2, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "unknown option --nope");

    w = WORDS("--timeout");
    opts[0].count = 0;
    ASSERT_EQ_INT(cli_getopt(1, w, opts, 2, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--timeout needs a value");

    w = WORDS("--flag=yes");
    ASSERT_EQ_INT(cli_getopt(1, w, opts, 2, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--flag takes no value");

    w = WORDS("--timeout", "1", "--timeout", "2");
    opts[0].count = 0;
    ASSERT_EQ_INT(cli_getopt(4, w, opts, 2, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "more than once");
}

TEST(call_args_all_json_types)
{
    const char *argv[] = {"42",   "-1.5",    "\"text\"",   "true",
                          "null", "[1,[2]]", "{\"k\":{}}", "{\"$bytes\":\"aGk=\"}"};
    const char *kw[] = {"n=7", "s=\"x=y\"", "e={}"};
    skiff_value *args = NULL, *kwargs = NULL;
    char why[256] = "";
    ASSERT_EQ_INT(cli_parse_call_args(argv, 8, kw, 3, &args, &kwargs, why, sizeof why), 0);
    ASSERT_EQ_UINT(skiff_list_len(args), 8);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(args, 0)), 42);
    ASSERT_EQ_DOUBLE(skiff_value_get_double(skiff_list_get(args, 1)), -1.5);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_list_get(args, 2), NULL), "text");
    ASSERT_TRUE(skiff_value_get_bool(skiff_list_get(args, 3)));
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(args, 4)), SKIFF_NIL);
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(args, 5)), SKIFF_LIST);
    ASSERT_EQ_INT(skiff_value_type(skiff_list_get(args, 6)), SKIFF_MAP);
    size_t n = 0;
    const char *b = skiff_value_get_bytes(skiff_list_get(args, 7), &n);
    ASSERT_EQ_UINT(n, 2);
    ASSERT_EQ_MEM(b, "hi", 2);
    ASSERT_EQ_UINT(skiff_map_len(kwargs), 3);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(kwargs, "n")), 7);
    /* Only the first '=' separates the name. */
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(kwargs, "s"), NULL), "x=y");
    ASSERT_EQ_INT(skiff_value_type(skiff_map_get(kwargs, "e")), SKIFF_MAP);
    skiff_value_free(args);
    skiff_value_free(kwargs);
}

TEST(call_args_none)
{
    skiff_value *args = NULL, *kwargs = NULL;
    char why[64];
    ASSERT_EQ_INT(cli_parse_call_args(NULL, 0, NULL, 0, &args, &kwargs, why, sizeof why), 0);
    ASSERT_EQ_UINT(skiff_list_len(args), 0);
    ASSERT_EQ_UINT(skiff_map_len(kwargs), 0);
    skiff_value_free(args);
    skiff_value_free(kwargs);
}

/* Parses one bad command line and checks that nothing is returned and why mentions text. */
static void expect_bad(const char *const *argv, int argc, const char *const *kw, int nkw,
                       const char *text)
{
    skiff_value *args = NULL, *kwargs = NULL;
    char why[512] = "";
    ASSERT_EQ_INT(cli_parse_call_args(argv, argc, kw, nkw, &args, &kwargs, why, sizeof why), -1);
    ASSERT_NULL(args);
    ASSERT_NULL(kwargs);
    ASSERT_STR_CONTAINS(why, text);
}

TEST(call_args_bad_json)
{
    const char *a1[] = {"1", "{bad"};
    expect_bad(a1, 2, NULL, 0, "argument 2 is not valid JSON");
    expect_bad(a1, 2, NULL, 0, "{bad");
    const char *a2[] = {"hello"};
    expect_bad(a2, 1, NULL, 0, "a string needs JSON quotes"); /* the usual mistake, explained */
    const char *a3[] = {""};
    expect_bad(a3, 1, NULL, 0, "argument 1 is not valid JSON");
    const char *a4[] = {"1 2"};
    expect_bad(a4, 1, NULL, 0, "argument 1");
    /* A long bad argument is cut short in the message. */
    char longarg[200];
    memset(longarg, 'z', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = '\0';
    const char *a5[] = {longarg};
    expect_bad(a5, 1, NULL, 0, "...");
}

TEST(call_args_bad_kwargs)
{
    const char *k1[] = {"novalue"};
    expect_bad(NULL, 0, k1, 1, "is not NAME=JSON");
    const char *k2[] = {"=1"};
    expect_bad(NULL, 0, k2, 1, "empty name");
    const char *k3[] = {"a=1", "a=2"};
    expect_bad(NULL, 0, k3, 2, "--kwarg a is given more than once");
    const char *k4[] = {"a=nope"};
    expect_bad(NULL, 0, k4, 1, "--kwarg a is not valid JSON");
    const char *k5[] = {"\xff\xfe=1"};
    expect_bad(NULL, 0, k5, 1, "not valid UTF-8");
}

TEST(call_args_out_of_memory)
{
    const char *argv[] = {"[1,2,3]", "{\"a\":\"b\"}"};
    const char *kw[] = {"x=[1]"};
    for (long n = 0; n < 40; n++) {
        skiff_value *args = NULL, *kwargs = NULL;
        char why[256];
        mem_fail_after(n);
        int rc = cli_parse_call_args(argv, 2, kw, 1, &args, &kwargs, why, sizeof why);
        mem_fail_after(-1);
        if (rc == 0) {
            ASSERT_EQ_UINT(skiff_list_len(args), 2);
            skiff_value_free(args);
            skiff_value_free(kwargs);
        } else {
            ASSERT_NULL(args);
            ASSERT_NULL(kwargs);
        }
    }
}

TEST(map_lines)
{
    skiff_value *args = NULL;
    char why[256] = "";
    const char *line = "[1, \"two\", {\"k\": null}]\n";
    ASSERT_EQ_INT(cli_parse_map_line(line, strlen(line), &args, why, sizeof why), 0);
    ASSERT_EQ_UINT(skiff_list_len(args), 3);
    skiff_value_free(args);

    args = NULL;
    line = "{\"a\": 1}";
    ASSERT_EQ_INT(cli_parse_map_line(line, strlen(line), &args, why, sizeof why), -1);
    ASSERT_NULL(args);
    ASSERT_STR_CONTAINS(why, "expected a JSON array of arguments, got a map");

    line = "[1,";
    ASSERT_EQ_INT(cli_parse_map_line(line, strlen(line), &args, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "not valid JSON");
}

TEST(seconds)
{
    double d = -1;
    ASSERT_EQ_INT(cli_parse_seconds("0", &d), 0);
    ASSERT_EQ_DOUBLE(d, 0.0);
    ASSERT_EQ_INT(cli_parse_seconds("2.5", &d), 0);
    ASSERT_EQ_DOUBLE(d, 2.5);
    ASSERT_EQ_INT(cli_parse_seconds("", &d), -1);
    ASSERT_EQ_INT(cli_parse_seconds("-1", &d), -1);
    ASSERT_EQ_INT(cli_parse_seconds("1s", &d), -1);
    ASSERT_EQ_INT(cli_parse_seconds("inf", &d), -1);
    ASSERT_EQ_INT(cli_parse_seconds("nan", &d), -1);
    ASSERT_EQ_DOUBLE(d, 2.5); /* untouched on failure */
}

TEST(params_typed_and_named)
{
    const char *ok[] = {"name=\"alice\"", "n=3", "on=true", "blob={\"$bytes\": \"AAE=\"}"};
    skiff_value *p = NULL;
    char why[256] = "";
    ASSERT_EQ_INT(cli_parse_params(ok, 4, &p, why, sizeof why), 0);
    ASSERT_EQ_UINT(skiff_map_len(p), 4);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(p, "name"), NULL), "alice");
    ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(p, "n")), 3);
    ASSERT_TRUE(skiff_value_get_bool(skiff_map_get(p, "on")));
    ASSERT_EQ_INT(skiff_value_type(skiff_map_get(p, "blob")), SKIFF_BYTES);
    skiff_value_free(p);

    struct {
        const char *arg, *why;
    } bad[] = {
        {"x=1.5", "--param x is a float: class parameters are int, string, bytes or bool"},
        {"x=[1]", "--param x is a list"},
        {"x=null", "--param x is a nil"},
        {"noequals", "--param 'noequals' is not NAME=JSON"},
        {"=1", "--param '=1' has an empty name"},
        {"x=alice", "--param x is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = NULL;
        ASSERT_EQ_INT(cli_parse_params(&bad[i].arg, 1, &p, why, sizeof why), -1);
        ASSERT_NULL(p);
        ASSERT_STR_CONTAINS(why, bad[i].why);
    }
    const char *twice[] = {"n=1", "n=2"};
    ASSERT_EQ_INT(cli_parse_params(twice, 2, &p, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--param n is given more than once");
    ASSERT_EQ_INT(cli_parse_params(NULL, 0, &p, why, sizeof why), 0); /* none: an empty map */
    ASSERT_EQ_UINT(skiff_map_len(p), 0);
    skiff_value_free(p);
}

TEST(counts)
{
    uint64_t n = 7;
    ASSERT_EQ_INT(cli_parse_count("0", &n), 0);
    ASSERT_EQ_UINT(n, 0);
    ASSERT_EQ_INT(cli_parse_count("1000", &n), 0);
    ASSERT_EQ_UINT(n, 1000);
    ASSERT_EQ_INT(cli_parse_count("9223372036854775807", &n), 0);
    const char *bad[] = {
        "", "-1", "+1", " 1", "1.5", "1e3", "abc", "9223372036854775808", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cli_parse_count(bad[i], &n) != -1)
            FAIL("'%s' was accepted as a count", bad[i]);
    ASSERT_EQ_UINT(n, 9223372036854775807ull); /* untouched on failure */
}

TEST(getopt_new_options_of_map_get_logs)
{
    char **w = WORDS("app", "Cls.fn", "--unordered", "--return-exceptions", "--window=10",
                     "--param", "n=1", "--kwarg", "k=2", "--param=s=\"x\"");
    const char *pos[16], *kws[16], *prs[16];
    struct cli_opt opts[] = {{.name = "--unordered"},
                             {.name = "--return-exceptions"},
                             {.name = "--window", .has_value = true},
                             {.name = "--kwarg", .has_value = true, .values = kws},
                             {.name = "--param", .has_value = true, .values = prs}};
    bool help;
    int npos;
    char why[256];
    ASSERT_EQ_INT(cli_getopt(count_words(w), w, opts, 5, &help, NULL, pos, &npos, why, sizeof why),
                  0);
    ASSERT_EQ_INT(npos, 2);
    ASSERT_EQ_STR(pos[1], "Cls.fn");
    ASSERT_EQ_INT(opts[0].count, 1);
    ASSERT_EQ_INT(opts[1].count, 1);
    ASSERT_EQ_STR(opts[2].value, "10");
    ASSERT_EQ_INT(opts[4].count, 2);
    ASSERT_EQ_STR(prs[0], "n=1");
    ASSERT_EQ_STR(prs[1], "s=\"x\"");
    ASSERT_EQ_STR(kws[0], "k=2");
    char **again = WORDS("--window", "1", "--window", "2");
    struct cli_opt o2[] = {{.name = "--window", .has_value = true}};
    ASSERT_EQ_INT(cli_getopt(4, again, o2, 1, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--window is given more than once");
    char **flag = WORDS("--follow=yes");
    struct cli_opt o3[] = {{.name = "--follow"}};
    ASSERT_EQ_INT(cli_getopt(1, flag, o3, 1, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--follow takes no value");
    char **miss = WORDS("--index");
    struct cli_opt o4[] = {{.name = "--index", .has_value = true}};
    ASSERT_EQ_INT(cli_getopt(1, miss, o4, 1, &help, NULL, pos, &npos, why, sizeof why), -1);
    ASSERT_STR_CONTAINS(why, "--index needs a value");
}
