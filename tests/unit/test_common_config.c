/*
 * test_common_config.c - unit tests of ~/.skiff.toml handling (src/common/config.c): parsing,
 * the line number of a malformed line, environment overrides, defaults, and the O_EXCL write
 * that never replaces an existing file. Works in a temporary directory with HOME pointed at it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/config.h"
#include "unit.h"

/* A fresh temporary directory, made HOME; returns its path (static storage). */
static const char *temp_home(void)
{
    static char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/skiff-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ASSERT_NOT_NULL(mkdtemp(dir));
    ASSERT_EQ_INT(setenv("HOME", dir, 1), 0);
    unsetenv("SKIFF_SERVER");
    unsetenv("SKIFF_TOKEN_ID");
    unsetenv("SKIFF_TOKEN_SECRET");
    return dir;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ_INT(fputs(text, f) >= 0, 1);
    ASSERT_EQ_INT(fclose(f), 0);
}

static const char *path_in(const char *dir, const char *name)
{
    static char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

TEST(parse)
{
    const char *dir = temp_home();
    const char *p = path_in(dir, "a.toml");
    write_file(p, "# a comment\n"
                  "\n"
                  "   server = \"127.0.0.1:9999\"   # trailing comment\n"
                  "token_id=\"tk-1\"\n"
                  "\ttoken_secret  =  \"s\\\"e\\\\c\"\r\n"
                  "unknown_key = \"ignored\"\n");
    struct config c;
    int line = -1;
    ASSERT_EQ_INT(config_read(p, &c, &line), 0);
    ASSERT_EQ_STR(c.server, "127.0.0.1:9999");
    ASSERT_EQ_STR(c.token_id, "tk-1");
    ASSERT_EQ_STR(c.token_secret, "s\"e\\c");
    ASSERT_EQ_INT(line, -1); /* untouched on success */

    /* Absent keys read as "". */
    write_file(p, "server = \"unix:/tmp/s.sock\"\n");
    ASSERT_EQ_INT(config_read(p, &c, NULL), 0);
    ASSERT_EQ_STR(c.server, "unix:/tmp/s.sock");
    ASSERT_EQ_STR(c.token_id, "");
    ASSERT_EQ_STR(c.token_secret, "");

    /* An empty file and a last line without newline. */
    write_file(p, "");
    ASSERT_EQ_INT(config_read(p, &c, NULL), 0);
    write_file(p, "token_id = \"x\"");
    ASSERT_EQ_INT(config_read(p, &c, NULL), 0);
    ASSERT_EQ_STR(c.token_id, "x");
}

TEST(missing_file)
{
    const char *dir = temp_home();
    struct config c;
    errno = 0;
    ASSERT_EQ_INT(config_read(path_in(dir, "nope.toml"), &c, NULL), -1);
    ASSERT_EQ_INT(errno, ENOENT);
}

/* Each malformed file is reported with the number of its bad line. */
TEST(malformed_line_number)
{
    const char *dir = temp_home();
    const char *p = path_in(dir, "bad.toml");
    static const struct {
        const char *text;
        int line;
    } cases[] = {
        {"server = \"a\"\nthis is not toml\n", 2},
        {"# c\n\nserver = unquoted\n", 3},
        {"server = \"unterminated\n", 1},
        {"server \"a\"\n", 1},
        {"a = \"1\"\nb = \"2\"\nc = \"3\" junk\n", 3},
        {"server = \"bad \\n escape\"\n", 1},
        {"token_id = 'single'\n", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(p, cases[i].text);
        struct config c;
        int line = 0;
        int rc = config_read(p, &c, &line);
        if (rc != -2 || line != cases[i].line)
            FAIL("case %zu: rc %d line %d, expected -2 at line %d", i, rc, line, cases[i].line);
    }
    /* A value longer than the limit is malformed, not silently cut. */
    char big[CONFIG_VALUE_MAX + 64];
    int n = snprintf(big, sizeof big, "server = \"");
    memset(big + n, 'x', CONFIG_VALUE_MAX);
    snprintf(big + n + CONFIG_VALUE_MAX, sizeof big - (size_t)n - CONFIG_VALUE_MAX, "\"\n");
    write_file(p, big);
    struct config c;
    int line = 0;
    ASSERT_EQ_INT(config_read(p, &c, &line), -2);
    ASSERT_EQ_INT(line, 1);
}

TEST(write_new_is_exclusive)
{
    const char *dir = temp_home();
    char p[4200];
    snprintf(p, sizeof p, "%s", path_in(dir, ".skiff.toml"));
    struct config c = {0};
    snprintf(c.server, sizeof c.server, "127.0.0.1:7000");
    snprintf(c.token_id, sizeof c.token_id, "tk-01");
    snprintf(c.token_secret, sizeof c.token_secret, "0123456789abcdef");
    ASSERT_EQ_INT(config_write_new(p, &c), 0);

    struct stat st;
    ASSERT_EQ_INT(stat(p, &st), 0);
    ASSERT_EQ_INT(st.st_mode & 0777, 0600); /* a secret inside: owner only */

    struct config back;
    ASSERT_EQ_INT(config_read(p, &back, NULL), 0);
    ASSERT_EQ_STR(back.server, c.server);
    ASSERT_EQ_STR(back.token_id, c.token_id);
    ASSERT_EQ_STR(back.token_secret, c.token_secret);

    /* A second write never replaces the user's file. */
    struct config other = {0};
    snprintf(other.server, sizeof other.server, "10.0.0.1:1");
    errno = 0;
    ASSERT_EQ_INT(config_write_new(p, &other), -1);
    ASSERT_EQ_INT(errno, EEXIST);
    ASSERT_EQ_INT(config_read(p, &back, NULL), 0);
    ASSERT_EQ_STR(back.server, "127.0.0.1:7000");

    /* No directory: fails, leaves nothing. */
    ASSERT_EQ_INT(config_write_new(path_in(dir, "no/such/dir.toml"), &c), -1);
}

/* What config_write_new writes, config_read reads back, quotes and backslashes included. */
TEST(write_new_escapes)
{
    const char *dir = temp_home();
    char p[4200];
    snprintf(p, sizeof p, "%s", path_in(dir, "escaped.toml"));
    struct config c = {0};
    snprintf(c.server, sizeof c.server, "unix:/tmp/dir with \\ and \"/s.sock");
    snprintf(c.token_id, sizeof c.token_id, "tk-01");
    snprintf(c.token_secret, sizeof c.token_secret, "quote\"and\\slash");
    ASSERT_EQ_INT(config_write_new(p, &c), 0);
    struct config back;
    int line = 0;
    int rc = config_read(p, &back, &line);
    if (rc != 0)
        FAIL("config_read of a file config_write_new wrote: %d (line %d)", rc, line);
    ASSERT_EQ_STR(back.server, c.server);
    ASSERT_EQ_STR(back.token_secret, c.token_secret);
}

TEST(path_from_home)
{
    const char *dir = temp_home();
    char p[4200];
    ASSERT_EQ_INT(config_path(p, sizeof p), 0);
    ASSERT_EQ_STR(p, path_in(dir, ".skiff.toml"));
    char small[8];
    ASSERT_EQ_INT(config_path(small, sizeof small), -1); /* does not fit */
    unsetenv("HOME");
    ASSERT_EQ_INT(config_path(p, sizeof p), -1);
    setenv("HOME", "", 1);
    ASSERT_EQ_INT(config_path(p, sizeof p), -1);
}

TEST(resolve_order)
{
    const char *dir = temp_home();
    struct config c;

    /* Nothing anywhere: the default server, no token. */
    ASSERT_EQ_INT(config_resolve(NULL, NULL, NULL, &c, NULL), 0);
    ASSERT_EQ_STR(c.server, CONFIG_DEFAULT_SERVER);
    ASSERT_EQ_STR(c.token_id, "");

    /* The file. */
    write_file(path_in(dir, ".skiff.toml"),
               "server = \"file:1\"\ntoken_id = \"file-id\"\ntoken_secret = \"file-secret\"\n");
    ASSERT_EQ_INT(config_resolve(NULL, NULL, NULL, &c, NULL), 0);
    ASSERT_EQ_STR(c.server, "file:1");
    ASSERT_EQ_STR(c.token_id, "file-id");
    ASSERT_EQ_STR(c.token_secret, "file-secret");

    /* The environment beats the file, field by field. */
    setenv("SKIFF_SERVER", "env:2", 1);
    setenv("SKIFF_TOKEN_SECRET", "env-secret", 1);
    ASSERT_EQ_INT(config_resolve(NULL, NULL, NULL, &c, NULL), 0);
    ASSERT_EQ_STR(c.server, "env:2");
    ASSERT_EQ_STR(c.token_id, "file-id");
    ASSERT_EQ_STR(c.token_secret, "env-secret");
    /* An empty variable counts as unset. */
    setenv("SKIFF_TOKEN_ID", "", 1);
    ASSERT_EQ_INT(config_resolve(NULL, NULL, NULL, &c, NULL), 0);
    ASSERT_EQ_STR(c.token_id, "file-id");

    /* Explicit arguments beat both. */
    ASSERT_EQ_INT(config_resolve("arg:3", "arg-id", NULL, &c, NULL), 0);
    ASSERT_EQ_STR(c.server, "arg:3");
    ASSERT_EQ_STR(c.token_id, "arg-id");
    ASSERT_EQ_STR(c.token_secret, "env-secret");

    /* A malformed file is reported with its line. */
    write_file(path_in(dir, ".skiff.toml"), "server = \"ok\"\n\nbroken\n");
    int line = 0;
    ASSERT_EQ_INT(config_resolve(NULL, NULL, NULL, &c, &line), -2);
    ASSERT_EQ_INT(line, 3);
}
