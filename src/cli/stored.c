/*
 * stored.c - `skiff secret` and `skiff volume`: what the server stores for functions besides
 * their code. Secrets are sets of KEY=VALUE pairs a function sees as environment variables;
 * volumes are directories a function mounts. Lists print a table on a terminal, else JSON;
 * `volume put` and `volume get` move one file in chunks (the server takes 4 MiB a request).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client/ops.h"
#include "common/mem.h"
#include "common/resources.h"

static const char secret_usage[] =
    "usage: skiff secret create NAME KEY=VALUE... [--from-env KEY]... [--force]\n"
    "       skiff secret list [--json]\n"
    "       skiff secret delete NAME\n"
    "\n"
    "create stores secret NAME: each KEY=VALUE pair, and each --from-env KEY with the value\n"
    "of KEY in this shell's environment (keeps the value out of the command line and the\n"
    "shell's history). A function that declares .secrets = \"NAME\" sees every pair as an\n"
    "environment variable. KEY is an environment variable name (not SKIFF_*). An existing\n"
    "secret is an error unless --force, which replaces all its pairs (new containers see them).\n"
    "list prints the secrets' names, keys and times: never their values.\n"
    "delete removes a secret; a function that still declares it then fails to start\n"
    "(InitFailureError naming the secret).\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such secret); 2 usage.\n";

static const char volume_usage[] =
    "usage: skiff volume create NAME\n"
    "       skiff volume list [--json]\n"
    "       skiff volume delete NAME\n"
    "       skiff volume put NAME LOCAL_FILE REMOTE_PATH\n"
    "       skiff volume get NAME REMOTE_PATH LOCAL_FILE|-\n"
    "       skiff volume ls NAME [PATH] [--json]\n"
    "\n"
    "A volume is a directory on the server that functions mount read-write with\n"
    ".volumes = \"/data=NAME\"; its files outlive containers and server restarts.\n"
    "create makes an empty volume; list prints name, size (bytes of its files), files and\n"
    "created; delete removes it and its files (refused while a running app mounts it).\n"
    "put copies LOCAL_FILE (- : stdin) to REMOTE_PATH in the volume, making its directories;\n"
    "the file appears whole when complete. get copies REMOTE_PATH to LOCAL_FILE (- : stdout).\n"
    "ls lists a directory of the volume (default its top): name, type, size, modified.\n"
    "Exit status: 0 success; 1 the request failed (e.g. no such volume or file); 2 usage.\n";

/* The bytes a put or get moves per request (the server's largest chunk). */
#define CHUNK (4u << 20)

static const struct cli_column secret_cols[] = {
    {"name", "SECRET", CLI_COL_TEXT},
    {"keys", "KEYS", CLI_COL_LIST},
    {"created", "CREATED", CLI_COL_AGO},
    {"updated", "UPDATED", CLI_COL_AGO},
};
static const struct cli_column volume_cols[] = {
    {"name", "VOLUME", CLI_COL_TEXT},
    {"size", "SIZE", CLI_COL_TEXT},
    {"files", "FILES", CLI_COL_TEXT},
    {"created", "CREATED", CLI_COL_AGO},
};
static const struct cli_column entry_cols[] = {
    {"name", "NAME", CLI_COL_TEXT},
    {"type", "TYPE", CLI_COL_TEXT},
    {"size", "SIZE", CLI_COL_TEXT},
    {"mtime", "MODIFIED", CLI_COL_AGO},
};
#define NCOLS(a) (sizeof a / sizeof a[0])

/* Parses argv (after the verb) with opts into pos; checks the count is min..max. CLI_OK (with
 * *help: usage printed), or CLI_USAGE. pos must hold argc entries. */
static int parse(struct cli *cli, int argc, char **argv, struct cli_opt *opts, size_t nopts,
                 const char *usage, const char *what, int min, int max, const char **pos, int *npos,
                 bool *help)
{
    char why[512];
    if (cli_getopt(argc, argv, opts, nopts, help, &cli->server, pos, npos, why, sizeof why) < 0)
        return cli_usage_error(usage, "%s", why);
    if (*help) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (*npos < min || *npos > max)
        return cli_usage_error(usage, "%s takes %s%d argument%s, not %d", what,
                               min == max ? "" : "at least ", min, min == 1 ? "" : "s", *npos);
    return CLI_OK;
}

/* Prints the reply's field (NULL: the reply) as rows of cols (ncols 0: as fields). */
static int show(const skiff_value *reply, const char *field, const struct cli_column *cols,
                size_t ncols)
{
    const skiff_value *v = field ? skiff_map_get(reply, field) : reply;
    if (!v) {
        fprintf(stderr, "skiff: the server's reply has no '%s'\n", field);
        return CLI_FAILED;
    }
    return ncols ? cli_print_rows(v, cols, ncols) : cli_print_fields(v);
}

/* Ends a request: prints its error, or its reply as show does. */
static int finish(int rc, skiff_error *err, skiff_value *reply, const char *field,
                  const struct cli_column *cols, size_t ncols)
{
    int out = rc != SKIFF_OK ? cli_fail(err) : reply ? show(reply, field, cols, ncols) : CLI_OK;
    skiff_value_free(reply);
    skiff_error_clear(err);
    return out;
}

/* Adds KEY=VALUE (pair) or KEY with the value of $KEY (from_env) to map. CLI_OK or CLI_USAGE. */
static int add_pair(skiff_value *map, const char *pair, bool from_env)
{
    char key[RES_KEY_MAX + 2];
    const char *eq = from_env ? pair + strlen(pair) : strchr(pair, '=');
    if (!eq) {
        return cli_usage_error(secret_usage,
                               "'%s' is not KEY=VALUE (use --from-env KEY for a value from "
                               "the environment)",
                               pair);
    }
    size_t n = (size_t)(eq - pair);
    if (n >= sizeof key)
        n = sizeof key - 1;
    memcpy(key, pair, n);
    key[n] = '\0';
    if (!res_valid_key(key))
        return cli_usage_error(secret_usage,
                               "'%s' is not a key: an environment variable name (a letter or "
                               "'_', then letters, digits and '_'), not SKIFF_*",
                               key);
    if (skiff_map_get(map, key))
        return cli_usage_error(secret_usage, "key %s is given twice", key);
    const char *value = from_env ? getenv(key) : eq + 1;
    if (!value)
        return cli_usage_error(secret_usage, "--from-env %s: $%s is not set", key, key);
    if (skiff_map_set(map, key, skiff_value_string(value)) != SKIFF_OK) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int secret_create(struct cli *cli, int argc, char **argv, const char **pos)
{
    const char **envs = mem_calloc((size_t)argc + 1, sizeof *envs);
    struct cli_opt opts[] = {{.name = "--from-env", .has_value = true, .values = envs},
                             {.name = "--force"}};
    int npos = 0;
    bool help = false;
    int rc = envs ? parse(cli, argc, argv, opts, 2, secret_usage, "secret create", 1, argc, pos,
                          &npos, &help)
                  : CLI_FAILED;
    if (rc != CLI_OK || help) {
        mem_free(envs);
        return rc;
    }
    skiff_value *values = skiff_value_map();
    if (!values)
        rc = CLI_FAILED;
    for (int i = 1; rc == CLI_OK && i < npos; i++)
        rc = add_pair(values, pos[i], false);
    for (int i = 0; rc == CLI_OK && i < opts[0].count; i++)
        rc = add_pair(values, envs[i], true);
    mem_free(envs);
    if (rc == CLI_OK && skiff_map_len(values) == 0)
        rc = cli_usage_error(secret_usage, "secret create needs at least one KEY=VALUE or "
                                           "--from-env KEY");
    skiff_client *c = NULL;
    if (rc == CLI_OK)
        rc = cli_connect(cli, &c);
    if (rc == CLI_OK) {
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_value *reply = NULL;
        rc = client_secret_create(c, pos[0], values, opts[1].count > 0, &reply, &err);
        rc = finish(rc, &err, reply, NULL, NULL, 0);
        skiff_client_close(c);
    }
    skiff_value_free(values);
    return rc;
}

/* Runs one of the simple verbs: list (no argument) or delete/create NAME. */
static int simple(struct cli *cli, int argc, char **argv, const char *usage, const char *what,
                  int nargs, const char **pos,
                  int (*fn)(skiff_client *, const char *, skiff_value **, skiff_error *),
                  const char *field, const struct cli_column *cols, size_t ncols)
{
    int npos = 0;
    bool help = false;
    int rc = parse(cli, argc, argv, NULL, 0, usage, what, nargs, nargs, pos, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    skiff_client *c;
    if ((rc = cli_connect(cli, &c)) != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    rc = fn(c, pos[0], &reply, &err);
    rc = finish(rc, &err, reply, field, cols, ncols);
    skiff_client_close(c);
    return rc;
}

static int secret_list_fn(skiff_client *c, const char *a, skiff_value **r, skiff_error *e)
{
    (void)a;
    return client_secret_list(c, r, e);
}

static int secret_delete_fn(skiff_client *c, const char *a, skiff_value **r, skiff_error *e)
{
    *r = NULL;
    return client_secret_delete(c, a, e);
}

static int volume_create_fn(skiff_client *c, const char *a, skiff_value **r, skiff_error *e)
{
    return client_volume_create(c, a, r, e);
}

static int volume_list_fn(skiff_client *c, const char *a, skiff_value **r, skiff_error *e)
{
    (void)a;
    return client_volume_list(c, r, e);
}

static int volume_delete_fn(skiff_client *c, const char *a, skiff_value **r, skiff_error *e)
{
    *r = NULL;
    return client_volume_delete(c, a, e);
}

/* The first word that is not an option (the verb), or NULL; *help if --help/-h comes first. */
static const char *verb_of(int argc, char **argv, bool *help)
{
    *help = argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
    return argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
}

int cmd_secret(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(secret_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(secret_usage, "secret needs a subcommand: create, list or delete");
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int rc;
    if (!strcmp(verb, "create"))
        rc = secret_create(cli, argc - 1, argv + 1, pos);
    else if (!strcmp(verb, "list"))
        rc = simple(cli, argc - 1, argv + 1, secret_usage, "secret list", 0, pos, secret_list_fn,
                    "secrets", secret_cols, NCOLS(secret_cols));
    else if (!strcmp(verb, "delete"))
        rc = simple(cli, argc - 1, argv + 1, secret_usage, "secret delete", 1, pos,
                    secret_delete_fn, NULL, NULL, 0);
    else
        rc = cli_usage_error(secret_usage, "unknown subcommand 'secret %s'", verb);
    mem_free(pos);
    return rc;
}

/* Reads up to n bytes of fd into buf (short only at the end). Bytes read, or -1. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int volume_put(skiff_client *c, const char *name, const char *local, const char *remote)
{
    int fd = strcmp(local, "-") ? open(local, O_RDONLY | O_CLOEXEC) : 0;
    char *buf = fd >= 0 ? mem_alloc(CHUNK) : NULL;
    if (!buf) {
        fprintf(stderr, "skiff volume put: %s: %s\n", local,
                fd < 0 ? strerror(errno) : "no memory");
        if (fd > 0)
            close(fd);
        return CLI_FAILED;
    }
    int64_t offset = 0;
    int rc = CLI_OK;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    for (;;) {
        ssize_t n = read_full(fd, buf, CHUNK);
        if (n < 0) {
            fprintf(stderr, "skiff volume put: %s: %s\n", local, strerror(errno));
            rc = CLI_FAILED;
            break;
        }
        bool last = (size_t)n < CHUNK;
        skiff_value_free(reply);
        reply = NULL;
        if (client_volume_put(c, name, remote, buf, (size_t)n, offset, last, &reply, &err) !=
            SKIFF_OK) {
            rc = cli_fail(&err);
            break;
        }
        offset += n;
        if (last)
            break;
    }
    if (fd > 0)
        close(fd);
    mem_free(buf);
    if (rc == CLI_OK) {
        skiff_value *out = skiff_value_map();
        if (out && skiff_map_set(out, "volume", skiff_value_string(name)) == SKIFF_OK &&
            skiff_map_set(out, "path", skiff_value_string(remote)) == SKIFF_OK &&
            skiff_map_set(out, "size", skiff_value_int(offset)) == SKIFF_OK)
            rc = cli_print_fields(out);
        skiff_value_free(out);
    }
    skiff_value_free(reply);
    skiff_error_clear(&err);
    return rc;
}

static int volume_get(skiff_client *c, const char *name, const char *remote, const char *local)
{
    bool to_stdout = !strcmp(local, "-");
    int fd = -1;
    int64_t offset = 0, size = 0;
    int rc = CLI_OK;
    skiff_error err = SKIFF_ERROR_INIT;
    do {
        skiff_value *reply = NULL;
        if (client_volume_get(c, name, remote, offset, CHUNK, &reply, &err) != SKIFF_OK) {
            rc = cli_fail(&err);
            break;
        }
        size_t len = 0;
        const char *data = skiff_value_get_bytes(skiff_map_get(reply, "data"), &len);
        size = skiff_value_get_int(skiff_map_get(reply, "size"));
        if (fd < 0)
            fd = to_stdout ? 1 : open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "skiff volume get: %s: %s\n", local, strerror(errno));
            rc = CLI_FAILED;
        }
        for (size_t done = 0; rc == CLI_OK && done < len;) {
            ssize_t w = write(fd, data + done, len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fprintf(stderr, "skiff volume get: %s: %s\n", local, strerror(errno));
                rc = CLI_FAILED;
            } else {
                done += (size_t)w;
            }
        }
        skiff_value_free(reply);
        offset += (int64_t)len;
        if (len == 0)
            break; /* the file shrank meanwhile */
    } while (rc == CLI_OK && offset < size);
    if (fd > 1 && close(fd) < 0 && rc == CLI_OK) {
        fprintf(stderr, "skiff volume get: %s: %s\n", local, strerror(errno));
        rc = CLI_FAILED;
    }
    skiff_error_clear(&err);
    return rc;
}

/* volume put / get / ls, which take several arguments. */
static int volume_files(struct cli *cli, int argc, char **argv, const char *verb, const char **pos)
{
    int npos = 0;
    bool help = false;
    bool ls = !strcmp(verb, "ls");
    char what[32];
    snprintf(what, sizeof what, "volume %s", verb);
    int rc = parse(cli, argc, argv, NULL, 0, volume_usage, what, ls ? 1 : 3, ls ? 2 : 3, pos, &npos,
                   &help);
    if (rc != CLI_OK || help)
        return rc;
    skiff_client *c;
    if ((rc = cli_connect(cli, &c)) != CLI_OK)
        return rc;
    if (!strcmp(verb, "put")) {
        rc = volume_put(c, pos[0], pos[1], pos[2]);
    } else if (!strcmp(verb, "get")) {
        rc = volume_get(c, pos[0], pos[1], pos[2]);
    } else {
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_value *reply = NULL;
        rc = client_volume_ls(c, pos[0], npos > 1 ? pos[1] : NULL, &reply, &err);
        rc = finish(rc, &err, reply, "entries", entry_cols, NCOLS(entry_cols));
    }
    skiff_client_close(c);
    return rc;
}

int cmd_volume(struct cli *cli, int argc, char **argv)
{
    bool help;
    const char *verb = verb_of(argc, argv, &help);
    if (help) {
        fputs(volume_usage, stdout);
        return CLI_OK;
    }
    if (!verb)
        return cli_usage_error(volume_usage,
                               "volume needs a subcommand: create, list, delete, put, get or ls");
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int rc;
    if (!strcmp(verb, "create"))
        rc = simple(cli, argc - 1, argv + 1, volume_usage, "volume create", 1, pos,
                    volume_create_fn, NULL, NULL, 0);
    else if (!strcmp(verb, "list"))
        rc = simple(cli, argc - 1, argv + 1, volume_usage, "volume list", 0, pos, volume_list_fn,
                    "volumes", volume_cols, NCOLS(volume_cols));
    else if (!strcmp(verb, "delete"))
        rc = simple(cli, argc - 1, argv + 1, volume_usage, "volume delete", 1, pos,
                    volume_delete_fn, NULL, NULL, 0);
    else if (!strcmp(verb, "put") || !strcmp(verb, "get") || !strcmp(verb, "ls"))
        rc = volume_files(cli, argc - 1, argv + 1, verb, pos);
    else
        rc = cli_usage_error(volume_usage, "unknown subcommand 'volume %s'", verb);
    mem_free(pos);
    return rc;
}
