/*
 * output.c - what `skiff` prints for lists and records: aligned tables with relative times on a
 * terminal, JSON for scripts (see cli.h).
 *
 * JSON is chosen by --json or when stdout is not a terminal, so pipes and $(...) always get JSON
 * and people at a terminal get a table; the JSON of a list is one array on one line, as before.
 * A table holds every row in memory (lists of apps and containers are small) to size its
 * columns; a cell is cut at CELL_MAX bytes with "...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/mem.h"

/* Widest cell: a long function list or parameter set stays readable. */
#define CELL_MAX 60

bool cli_output_json(void)
{
    return cli_json_requested || !isatty(STDOUT_FILENO);
}

void cli_format_ago(int64_t t, int64_t now, char *out, size_t size)
{
    int64_t d = now - t;
    bool future = d < 0;
    if (future)
        d = -d;
    if (d < 2) {
        snprintf(out, size, "just now");
        return;
    }
    static const struct {
        int64_t secs;
        const char *unit;
    } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (d >= units[i].secs) {
            snprintf(out, size, future ? "in %lld%s" : "%lld%s ago", (long long)(d / units[i].secs),
                     units[i].unit);
            return;
        }
}

/* One cell's text (mem_alloc'd), or NULL when out of memory. */
static char *cell_text(const skiff_value *v, enum cli_col_kind kind, int64_t now)
{
    char buf[64];
    if (!v || skiff_value_type(v) == SKIFF_NIL)
        return mem_strdup("-");
    if (kind == CLI_COL_AGO && skiff_value_type(v) == SKIFF_INT) {
        cli_format_ago(skiff_value_get_int(v), now, buf, sizeof buf);
        return mem_strdup(buf);
    }
    if (skiff_value_type(v) == SKIFF_STRING)
        return mem_strdup(skiff_value_get_string(v, NULL));
    if (kind == CLI_COL_LIST && skiff_value_type(v) == SKIFF_LIST) {
        size_t n = skiff_list_len(v), len = 1;
        char **items = mem_calloc(n + 1, sizeof *items);
        if (!items)
            return NULL;
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            items[i] = cell_text(skiff_list_get(v, i), CLI_COL_TEXT, now);
            ok = items[i] != NULL;
            len += ok ? strlen(items[i]) + 2 : 0;
        }
        char *s = ok ? mem_alloc(len) : NULL;
        if (s) {
            s[0] = '\0';
            for (size_t i = 0; i < n; i++) {
                if (i)
                    strcat(s, ", ");
                strcat(s, items[i]);
            }
        }
        for (size_t i = 0; i < n; i++)
            mem_free(items[i]);
        mem_free(items);
        return s;
    }
    char *json = skiff_value_to_json(v); /* malloc'd */
    char *s = json ? mem_strdup(json) : NULL;
    free(json);
    return s;
}

/* Cuts s to CELL_MAX bytes (on a UTF-8 boundary) with "...". */
static void cut(char *s)
{
    size_t n = strlen(s);
    if (n <= CELL_MAX)
        return;
    size_t k = CELL_MAX - 3;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(s + k, "...", 4);
}

/* Display width of a UTF-8 string: its code points (close enough for names and times). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

int cli_print_rows(const skiff_value *rows, const struct cli_column *cols, size_t ncols)
{
    if (skiff_value_type(rows) != SKIFF_LIST) {
        fputs("skiff: the server's reply is not a list\n", stderr);
        return CLI_FAILED;
    }
    if (cli_output_json())
        return cli_print_json(rows);
    size_t nrows = skiff_list_len(rows);
    if (nrows == 0) {
        puts("(none)");
        return CLI_OK;
    }
    char **cells = mem_calloc(nrows * ncols, sizeof *cells);
    size_t *w = mem_calloc(ncols, sizeof *w);
    int rc = cells && w ? CLI_OK : CLI_FAILED;
    int64_t now = (int64_t)time(NULL);
    for (size_t c = 0; c < ncols && rc == CLI_OK; c++)
        w[c] = width(cols[c].header);
    for (size_t r = 0; r < nrows && rc == CLI_OK; r++)
        for (size_t c = 0; c < ncols && rc == CLI_OK; c++) {
            const skiff_value *row = skiff_list_get(rows, r);
            char *t = cell_text(skiff_map_get(row, cols[c].key), cols[c].kind, now);
            if (!t) {
                rc = CLI_FAILED;
                break;
            }
            for (char *p = t; *p; p++)
                if (*p == '\n' || *p == '\t')
                    *p = ' ';
            cut(t);
            cells[r * ncols + c] = t;
            if (width(t) > w[c])
                w[c] = width(t);
        }
    if (rc == CLI_OK) {
        for (size_t c = 0; c < ncols; c++)
            printf("%s%-*s", c ? "  " : "", c + 1 < ncols ? (int)w[c] : 0, cols[c].header);
        putchar('\n');
        for (size_t r = 0; r < nrows; r++) {
            for (size_t c = 0; c < ncols; c++) {
                const char *t = cells[r * ncols + c];
                /* printf pads by bytes: pad by display width instead. */
                printf("%s%s", c ? "  " : "", t);
                if (c + 1 < ncols)
                    printf("%*s", (int)(w[c] - width(t)), "");
            }
            putchar('\n');
        }
    } else {
        fputs("skiff: out of memory printing the table\n", stderr);
    }
    for (size_t i = 0; cells && i < nrows * ncols; i++)
        mem_free(cells[i]);
    mem_free(cells);
    mem_free(w);
    return rc;
}

/* Prints map's fields at indent. */
static int print_fields_at(const skiff_value *map, int indent)
{
    size_t keyw = 0;
    for (size_t i = 0; i < skiff_map_len(map); i++)
        if (strlen(skiff_map_key(map, i)) > keyw)
            keyw = strlen(skiff_map_key(map, i));
    for (size_t i = 0; i < skiff_map_len(map); i++) {
        const char *k = skiff_map_key(map, i);
        const skiff_value *v = skiff_map_value(map, i);
        if (skiff_value_type(v) == SKIFF_MAP) {
            printf("%*s%s:\n", indent, "", k);
            if (print_fields_at(v, indent + 2) != CLI_OK)
                return CLI_FAILED;
            continue;
        }
        char *t = cell_text(v, CLI_COL_TEXT, 0);
        if (!t) {
            fputs("skiff: out of memory\n", stderr);
            return CLI_FAILED;
        }
        printf("%*s%s:%*s %s\n", indent, "", k, (int)(keyw - strlen(k)), "", t);
        mem_free(t);
    }
    return CLI_OK;
}

int cli_print_fields(const skiff_value *map)
{
    if (cli_output_json() || skiff_value_type(map) != SKIFF_MAP)
        return cli_print_json(map);
    return print_fields_at(map, 0);
}
