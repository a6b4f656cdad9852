/*
 * cli.h - the pieces of the `skiff` command shared between its files: exit statuses, option
 * parsing, argument parsing (JSON values from the command line), output and error reporting,
 * and the commands themselves.
 */
#ifndef SKIFF_CLI_CLI_H
#define SKIFF_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <skiff/skiff.h>

/* Exit statuses (DESIGN.md). */
#define CLI_OK 0     /* success */
#define CLI_FAILED 1 /* the call or request failed */
#define CLI_USAGE 2  /* bad command line or input */
#define CLI_TIMEOUT                                                                                \
    124 /* `get` timed out while the call still runs (the timeout(1) convention)                   \
         */

/* One option a command accepts, written --name VALUE or --name=VALUE (or just --name). */
struct cli_opt {
    const char *name;    /* with the dashes: "--timeout" */
    bool has_value;      /* takes a value */
    const char **values; /* has_value: every value given, in order (capacity argc), or NULL */
    int count;           /* OUT: how many times it was given */
    const char *value;   /* OUT: the last value given */
};

/* Set by cli_getopt when --json was given to a command that has no --json of its own: every
 * command takes it, for output meant for scripts (see cli_output_json). */
extern bool cli_json_requested;

/* Splits argv[0..argc) into options and positional arguments. Options are the ones in opts plus
 * --help / -h (sets *help), --json (sets cli_json_requested unless opts has its own) and, when
 * server is non-NULL, the global --server ADDR (sets
 * *server); "--" ends the options; every other word, including ones that start
 * with a single '-' such as the JSON value -1, is positional and goes to pos (capacity argc) in
 * order, counted in *npos. Returns 0, or -1 with the reason in why (an unknown --option, an
 * option missing its value, a value given to a flag, an option repeated that has no values
 * array). */
int cli_getopt(int argc, char **argv, struct cli_opt *opts, size_t nopts, bool *help,
               const char **server, const char **pos, int *npos, char *why, size_t why_size);

/* The positional ARGs of call/spawn (each one JSON value) and the --kwarg NAME=JSON values as a
 * new list in *args and map in *kwargs. Returns 0, or -1 with the reason in why (which ARG or
 * kwarg is bad JSON and where, a kwarg without '=', an empty or repeated name). Nothing is
 * written on failure. */
int cli_parse_call_args(const char *const *argv, int argc, const char *const *kwargs, int nkwargs,
                        skiff_value **args, skiff_value **kw, char *why, size_t why_size);

/* One line of `skiff map` input: a JSON array of positional arguments, as a new list in *args.
 * Returns 0, or -1 with the reason in why. */
int cli_parse_map_line(const char *line, size_t len, skiff_value **args, char *why,
                       size_t why_size);

/* The --param NAME=JSON values of a class method call as a new map in *params: each value an
 * int, string, bytes or bool. Returns 0, or -1 with the reason in why (as for kwargs, or a
 * value of another type). */
int cli_parse_params(const char *const *vals, int n, skiff_value **params, char *why,
                     size_t why_size);

/* A count or index (--index, --window, --tail): decimal digits only, at most INT64_MAX. 0 or
 * -1. */
int cli_parse_count(const char *s, uint64_t *out);

/* A --timeout value: a finite number of seconds >= 0. 0 or -1. */
int cli_parse_seconds(const char *s, double *out);

/* The global state of one run. */
struct cli {
    const char *server; /* --server, or NULL for the library's resolution */
};

/* Connects (printing the error and returning CLI_FAILED on failure) or returns CLI_OK. */
int cli_connect(const struct cli *cli, skiff_client **out);
/* Prints err as "TYPE: message" and its remote traceback on stderr; returns CLI_FAILED. */
int cli_fail(const skiff_error *err);
/* Prints "skiff CMD: reason" and the usage line on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints v as one line of compact JSON on stdout. CLI_OK, or CLI_FAILED when out of memory. */
int cli_print_json(const skiff_value *v);

/* --- interrupts (main.c) ------------------------------------------------------------------ */

/* From now until the process ends, Ctrl-C (SIGINT) prints "skiff: interrupted: " and what
 * (copied, at most 300 bytes) on stderr and exits with 130 at once. The process's connection
 * then closes, which is what cancels what the command started on the server (a blocking call
 * made with client_cancel_on_close, a map, a stream), so a second Ctrl-C is never needed. */
void cli_on_interrupt(const char *what);

/* --- output.c: tables for people, JSON for scripts ---------------------------------------- */

/* True when output should be JSON: --json was given, or stdout is not a terminal. */
bool cli_output_json(void);

/* How a column's values are shown in a table. */
enum cli_col_kind {
    CLI_COL_TEXT, /* strings as they are, other values as compact JSON, nil as "-" */
    CLI_COL_AGO,  /* a unix time in seconds, shown relative: "12s ago", "3h ago" */
    CLI_COL_LIST, /* a list, its items joined by ", " */
};

struct cli_column {
    const char *key;    /* the field of each row (a map) */
    const char *header; /* the column's title */
    enum cli_col_kind kind;
};

/* Prints rows (a list of maps) as JSON (cli_output_json) or as a table of the columns, with an
 * "(none)" line when empty. CLI_OK, or CLI_FAILED when out of memory or rows is not a list. */
int cli_print_rows(const skiff_value *rows, const struct cli_column *cols, size_t ncols);

/* Prints a map as JSON or, on a terminal, one "key: value" line per field (nested maps
 * indented). CLI_OK or CLI_FAILED. */
int cli_print_fields(const skiff_value *map);

/* A relative time for a unix time t seen at now: "just now", "42s ago", "5m ago", "3h ago",
 * "2d ago" (or "in 5m" for the future) into out. */
void cli_format_ago(int64_t t, int64_t now, char *out, size_t size);

/* The commands: each gets the words after its name and returns the exit status. */
int cmd_deploy(struct cli *cli, int argc, char **argv);
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_call(struct cli *cli, int argc, char **argv);
int cmd_spawn(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_map(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_app(struct cli *cli, int argc, char **argv);
int cmd_container(struct cli *cli, int argc, char **argv);
int cmd_token(struct cli *cli, int argc, char **argv);
int cmd_secret(struct cli *cli, int argc, char **argv);
int cmd_volume(struct cli *cli, int argc, char **argv);
int cmd_graph(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_url(struct cli *cli, int argc, char **argv);
int cmd_dashboard(struct cli *cli, int argc, char **argv);
int cmd_completion(struct cli *cli, int argc, char **argv);

/* A function named on the command line: APP FUNCTION, or APP Cls.method of an instance with the
 * --param values. */
struct cli_target {
    skiff_function *fn;
    skiff_cls *cls; /* a method's class, or NULL */
    skiff_obj *obj; /* its instance, or NULL */
};

/* Opens the target: with params (a map, NULL or empty: none) name must be Cls.method. Returns
 * SKIFF_OK, or the failure with err filled (SKIFF_ERR_INVALID: --param on a plain function;
 * SKIFF_ERR_NOT_FOUND: no such class or method; ...). */
int cli_target_open(skiff_client *c, const char *app, const char *name, const skiff_value *params,
                    struct cli_target *t, skiff_error *err);
void cli_target_close(struct cli_target *t);

/* Calls fn (hydrated) with args and kwargs and prints the result as one line of JSON, or a
 * generator's items one line each as they come (`skiff call`, `skiff run`). CLI_OK, or
 * CLI_FAILED with the error on stderr. */
int cli_call_print(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs);

#endif
