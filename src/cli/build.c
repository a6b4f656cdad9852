/*
 * build.c - building a C app into a shared object (see build.h).
 *
 * The scan is a small tokenizer over the C text: it skips comments, string and character
 * literals and preprocessor lines, and looks for the identifier SKIFF_APP followed by '('. Inside
 * that argument list it reads `.pkgs = "..."` (adjacent literals are joined, as C does). The
 * compiled object says the same through skiff_app_options(); deploy compares the two, so an app
 * that builds its .pkgs some other way (a macro) gets a clear error instead of a missing library.
 *
 * Tools run with posix_spawnp and their stdout and stderr in files of the temporary directory,
 * read back and tidied (build_tidy) before they are shown.
 */
#include "build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mem.h"

extern char **environ;

/* Largest source file scanned, and largest tool output shown: far beyond any real app. */
#define SOURCE_MAX (16u << 20)
#define OUTPUT_MAX (1u << 20)
/* Sources of one app, and words of $CC or of pkg-config's output. */
#define SOURCES_MAX 1024
#define WORDS_MAX 256

int build_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *p = mem_alloc(n + 1);
    while (p && got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    p[got] = '\0';
    *out = p;
    if (len)
        *len = got;
    return 0;
}

/* --- sources ---------------------------------------------------------------------------------- */

static int add_source(struct app_build *b, const char *dir, const char *name)
{
    if (b->nsources == SOURCES_MAX) {
        fprintf(stderr, "skiff deploy: %s has more than %u .c files\n", b->path, SOURCES_MAX);
        return -1;
    }
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = mem_alloc(n);
    char **grown = mem_realloc(b->sources, (b->nsources + 1) * sizeof *grown);
    if (!s || !grown) {
        mem_free(s);
        if (grown)
            b->sources = grown;
        fputs("skiff deploy: out of memory\n", stderr);
        return -1;
    }
    snprintf(s, n, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    b->sources = grown;
    b->sources[b->nsources++] = s;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The .c files of path: itself, or every *.c of the directory. */
static int find_sources(struct app_build *b, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "skiff deploy: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!ends_with(path, ".c")) {
            fprintf(stderr, "skiff deploy: %s is not a .c file or a directory of them\n", path);
            return -1;
        }
        const char *slash = strrchr(path, '/');
        snprintf(b->incdir, sizeof b->incdir, "%.*s", slash ? (int)(slash - path) : 1,
                 slash ? path : ".");
        if (!b->incdir[0])
            snprintf(b->incdir, sizeof b->incdir, "/");
        return add_source(b, NULL, path);
    }
    snprintf(b->incdir, sizeof b->incdir, "%s", path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "skiff deploy: cannot read the directory %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    size_t dirlen = strlen(path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s",
             (int)(dirlen > 1 && path[dirlen - 1] == '/' ? dirlen - 1 : dirlen), path);
    while (rc == 0 && (e = readdir(d)))
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".c"))
            rc = add_source(b, dir, e->d_name);
    closedir(d);
    if (rc == 0 && b->nsources == 0) {
        fprintf(stderr, "skiff deploy: %s holds no .c file\n", path);
        return -1;
    }
    if (b->nsources > 1)
        qsort(b->sources, b->nsources, sizeof *b->sources, cmp_str);
    return rc;
}

/* --- the scan --------------------------------------------------------------------------------- */

struct scan {
    const char *file;
    const char *p, *end;
    int line;
};

/* Skips whitespace, comments and preprocessor lines. */
static void skip_space(struct scan *s)
{
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '\n') {
            s->line++;
            s->p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            s->p++;
        } else if (c == '/' && s->p + 1 < s->end && s->p[1] == '/') {
            while (s->p < s->end && *s->p != '\n')
                s->p++;
        } else if (c == '/' && s->p + 1 < s->end && s->p[1] == '*') {
            s->p += 2;
            while (s->p + 1 < s->end && !(s->p[0] == '*' && s->p[1] == '/')) {
                s->line += *s->p == '\n';
                s->p++;
            }
            s->p = s->p + 2 <= s->end ? s->p + 2 : s->end;
        } else {
            return;
        }
    }
}

/* Skips a string or character literal starting at s->p (the quote). */
static void skip_literal(struct scan *s)
{
    char q = *s->p++;
    while (s->p < s->end && *s->p != q && *s->p != '\n') {
        if (*s->p == '\\' && s->p + 1 < s->end)
            s->p++;
        s->p++;
    }
    if (s->p < s->end && *s->p == q)
        s->p++;
}

/* Reads a string literal at s->p into out (appending). -1 if there is none or it is bad. */
static int read_literal(struct scan *s, char *out, size_t size)
{
    if (s->p >= s->end || *s->p != '"')
        return -1;
    s->p++;
    size_t n = strlen(out);
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p++;
        if (c == '\n')
            return -1;
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            c = *s->p++;
            if (c != '"' && c != '\\')
                return -1; /* package names need no other escapes */
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    if (s->p >= s->end)
        return -1;
    s->p++;
    return 0;
}

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses SKIFF_APP's argument list at s->p (just after the '('); stores .pkgs. */
static int scan_app_args(struct app_build *b, struct scan *s)
{
    int depth = 1;
    while (s->p < s->end && depth > 0) {
        skip_space(s);
        if (s->p >= s->end)
            break;
        char c = *s->p;
        if (c == '"' || c == '\'') {
            skip_literal(s);
        } else if (c == '(') {
            depth++;
            s->p++;
        } else if (c == ')') {
            depth--;
            s->p++;
        } else if (c == '.' && depth == 1 && s->end - s->p > 5 && !strncmp(s->p, ".pkgs", 5) &&
                   !is_ident(s->p[5])) {
            int line = s->line;
            s->p += 5;
            skip_space(s);
            char pkgs[4096] = "";
            bool ok = s->p < s->end && *s->p == '=';
            if (ok) {
                s->p++;
                skip_space(s);
                ok = s->p < s->end && *s->p == '"';
                while (ok && s->p < s->end && *s->p == '"') {
                    ok = read_literal(s, pkgs, sizeof pkgs) == 0;
                    skip_space(s);
                }
            }
            for (const char *q = pkgs; ok && *q; q++)
                ok = is_ident(*q) || strchr(" .+-", *q);
            if (!ok) {
                fprintf(stderr,
                        "%s:%d: error: SKIFF_APP's .pkgs must be a string literal of pkg-config "
                        "names separated by spaces, like .pkgs = \"zlib libcurl\"\n",
                        s->file, line);
                return -1;
            }
            mem_free(b->pkgs);
            b->pkgs = mem_strdup(pkgs);
            if (!b->pkgs) {
                fputs("skiff deploy: out of memory\n", stderr);
                return -1;
            }
        } else {
            s->p++;
        }
    }
    return 0;
}

/* Scans one source for SKIFF_APP. */
static int scan_file(struct app_build *b, const char *file)
{
    char *text;
    size_t len;
    if (build_read_file(file, SOURCE_MAX, &text, &len) < 0) {
        fprintf(stderr, "skiff deploy: cannot read %s: %s\n", file, strerror(errno));
        return -1;
    }
    struct scan s = {file, text, text + len, 1};
    int rc = 0;
    bool at_line_start = true;
    while (rc == 0 && s.p < s.end) {
        const char *before = s.p;
        skip_space(&s);
        if (s.p != before && s.p > text && s.p[-1] == '\n')
            at_line_start = true;
        if (s.p >= s.end)
            break;
        char c = *s.p;
        if (c == '#' && at_line_start) {
            /* A preprocessor line, with its continuations. */
            while (s.p < s.end && *s.p != '\n') {
                if (*s.p == '\\' && s.p + 1 < s.end && s.p[1] == '\n') {
                    s.line++;
                    s.p++;
                }
                s.p++;
            }
            continue;
        }
        at_line_start = false;
        if (c == '"' || c == '\'') {
            skip_literal(&s);
        } else if (is_ident(c)) {
            const char *w = s.p;
            while (s.p < s.end && is_ident(*s.p))
                s.p++;
            if (s.p - w != 9 || strncmp(w, "SKIFF_APP", 9))
                continue;
            int line = s.line;
            skip_space(&s);
            if (s.p >= s.end || *s.p != '(')
                continue;
            s.p++;
            if (b->app_at[0]) {
                fprintf(stderr,
                        "%s:%d: error: a second SKIFF_APP (the first is at %s): an app declares "
                        "its name once\n",
                        file, line, b->app_at);
                rc = -1;
                break;
            }
            snprintf(b->app_at, sizeof b->app_at, "%s:%d", file, line);
            rc = scan_app_args(b, &s);
        } else {
            s.p++;
        }
    }
    mem_free(text);
    return rc;
}

int build_prepare(struct app_build *b, const char *path)
{
    b->path = path;
    if (find_sources(b, path) < 0)
        return -1;
    for (size_t i = 0; i < b->nsources; i++)
        if (scan_file(b, b->sources[i]) < 0)
            return -1;
    if (!b->app_at[0]) {
        fprintf(stderr,
                "skiff deploy: %s declares no app: add SKIFF_APP(\"app-name\"); (from "
                "<skiff/app.h>) to %s\n",
                path, b->nsources == 1 ? "it" : "one of its .c files");
        return -1;
    }
    return 0;
}

/* --- running the tools ------------------------------------------------------------------------ */

int build_run(char *const *argv, const char *out_file, const char *err_file)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_file)
        posix_spawn_file_actions_addopen(&fa, 1, out_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err_file)
        posix_spawn_file_actions_addopen(&fa, 2, err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        fprintf(stderr, "skiff deploy: cannot run %s: %s\n", argv[0], strerror(e));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "skiff deploy: %s was killed by signal %d (%s)\n", argv[0],
                WTERMSIG(status), strsignal(WTERMSIG(status)));
        return -1;
    }
    return WEXITSTATUS(status);
}

/* Shows the tidied contents of a tool's stderr file. */
static void show_output(const struct app_build *b, const char *file)
{
    char *text;
    if (build_read_file(file, OUTPUT_MAX, &text, NULL) < 0)
        return;
    build_tidy(b, &text);
    /* collect2's summary adds nothing to the linker's own lines. */
    char *c = strstr(text, "collect2: error: ld returned");
    if (c && (c == text || c[-1] == '\n'))
        *c = '\0';
    fputs(text, stderr);
    mem_free(text);
}

/* Splits s (modified) on blanks into words appended to argv at *n (capacity max). */
static int split_words(char *s, char **argv, int *n, int max)
{
    for (char *tok = strtok(s, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
        if (*n >= max)
            return -1;
        argv[(*n)++] = tok;
    }
    return 0;
}

/* pkg-config's --cflags or --libs of b's packages into a mem_alloc'd *out. */
static int pkg_flags(const struct app_build *b, const char *which, char **out)
{
    char of[PATH_MAX + 32], ef[PATH_MAX + 32];
    snprintf(of, sizeof of, "%s/pkg.out", b->workdir);
    snprintf(ef, sizeof ef, "%s/pkg.err", b->workdir);
    char *argv[WORDS_MAX + 4];
    int n = 0;
    argv[n++] = "pkg-config";
    argv[n++] = (char *)which;
    char *names = mem_strdup(b->pkgs);
    if (!names || split_words(names, argv, &n, WORDS_MAX) < 0) {
        mem_free(names);
        fputs("skiff deploy: too many packages in .pkgs\n", stderr);
        return -1;
    }
    argv[n] = NULL;
    int st = build_run(argv, of, ef);
    mem_free(names);
    if (st != 0 || build_read_file(of, OUTPUT_MAX, out, NULL) < 0) {
        show_output(b, ef);
        fprintf(stderr, "skiff deploy: pkg-config %s %s failed\n", which, b->pkgs);
        return -1;
    }
    return 0;
}

/* Checks that pkg-config knows every package of .pkgs; names the first it does not. */
static int pkg_check(const struct app_build *b)
{
    char *names = mem_strdup(b->pkgs);
    if (!names) {
        fputs("skiff deploy: out of memory\n", stderr);
        return -1;
    }
    char ef[PATH_MAX + 32];
    snprintf(ef, sizeof ef, "%s/pkg.err", b->workdir);
    int rc = 0;
    for (char *tok = strtok(names, " "); tok && rc == 0; tok = strtok(NULL, " ")) {
        char *argv[] = {"pkg-config", "--exists", tok, NULL};
        int st = build_run(argv, "/dev/null", ef);
        if (st == 0)
            continue;
        rc = -1;
        if (st > 0)
            fprintf(stderr,
                    "%s: error: the package '%s' of .pkgs is not installed (pkg-config has no "
                    "%s.pc): install its development package, e.g. apt-get install lib%s-dev, "
                    "or correct the name (pkg-config --list-all lists them)\n",
                    b->app_at, tok, tok, tok);
    }
    mem_free(names);
    return rc;
}

/* The object file of source i: "<workdir>/<i>.o". */
static void object_path(const struct app_build *b, size_t i, char *out, size_t size)
{
    snprintf(out, size, "%s/%zu.o", b->workdir, i);
}

/* The compiler words: $CC (else cc) split on blanks, into argv at *n. */
static int cc_words(char *ccbuf, size_t size, char **argv, int *n)
{
    const char *env_cc = getenv("CC");
    snprintf(ccbuf, size, "%s", env_cc && *env_cc ? env_cc : "cc");
    if (split_words(ccbuf, argv, n, 16) < 0 || *n == 0) {
        fputs("skiff deploy: $CC is blank or has too many words\n", stderr);
        return -1;
    }
    return 0;
}

/* C mistakes that compile with a warning but fail when the app is loaded or run. */
static char *const strict_flags[] = {"-Werror=implicit-function-declaration",
                                     "-Werror=implicit-int", "-Werror=int-conversion",
                                     "-Werror=incompatible-pointer-types", "-Werror=return-type"};

static int compile_one(struct app_build *b, const char *prefix, size_t i, char *cflags)
{
    char ccbuf[1024], inc[PATH_MAX + 16], appinc[PATH_MAX + 16], obj[PATH_MAX + 32],
        ef[PATH_MAX + 32];
    char *argv[WORDS_MAX + 64];
    int n = 0;
    if (cc_words(ccbuf, sizeof ccbuf, argv, &n) < 0)
        return -1;
    snprintf(inc, sizeof inc, "-I%s/include", prefix);
    snprintf(appinc, sizeof appinc, "-I%s", b->incdir);
    object_path(b, i, obj, sizeof obj);
    snprintf(ef, sizeof ef, "%s/cc.err", b->workdir);
    char *fixed[] = {"-c", "-fPIC", "-O2", "-g", "-Wall", appinc, inc};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        argv[n++] = fixed[k];
    for (size_t k = 0; k < sizeof strict_flags / sizeof strict_flags[0]; k++)
        argv[n++] = strict_flags[k];
    char *copy = cflags ? mem_strdup(cflags) : NULL;
    if (cflags && (!copy || split_words(copy, argv, &n, WORDS_MAX + 40) < 0)) {
        mem_free(copy);
        fputs("skiff deploy: the packages' --cflags have too many words\n", stderr);
        return -1;
    }
    argv[n++] = b->sources[i];
    argv[n++] = "-o";
    argv[n++] = obj;
    argv[n] = NULL;
    int st = build_run(argv, NULL, ef);
    mem_free(copy);
    show_output(b, ef);
    if (st != 0) {
        if (st > 0)
            fprintf(stderr, "skiff deploy: %s does not compile\n", b->sources[i]);
        return -1;
    }
    return 0;
}

static int link_all(struct app_build *b, const char *prefix, char *libs)
{
    char ccbuf[1024], lib[PATH_MAX + 16], rpath[PATH_MAX + 32], ef[PATH_MAX + 32];
    char *argv[WORDS_MAX + SOURCES_MAX + 32];
    char(*objs)[PATH_MAX + 32] = mem_calloc(b->nsources, sizeof *objs);
    int n = 0;
    if (!objs || cc_words(ccbuf, sizeof ccbuf, argv, &n) < 0) {
        mem_free(objs);
        return -1;
    }
    snprintf(lib, sizeof lib, "-L%s/lib", prefix);
    snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s/lib", prefix);
    snprintf(ef, sizeof ef, "%s/ld.err", b->workdir);
    argv[n++] = "-shared";
    argv[n++] = "-Wl,--no-undefined";
    argv[n++] = "-o";
    argv[n++] = b->so;
    for (size_t i = 0; i < b->nsources; i++) {
        object_path(b, i, objs[i], sizeof objs[i]);
        argv[n++] = objs[i];
    }
    argv[n++] = lib;
    argv[n++] = "-lskiff";
    argv[n++] = rpath;
    char *copy = libs ? mem_strdup(libs) : NULL;
    if (libs && (!copy || split_words(copy, argv, &n, WORDS_MAX + (int)b->nsources + 16) < 0)) {
        mem_free(copy);
        mem_free(objs);
        fputs("skiff deploy: the packages' --libs have too many words\n", stderr);
        return -1;
    }
    argv[n] = NULL;
    int st = build_run(argv, NULL, ef);
    mem_free(copy);
    mem_free(objs);
    show_output(b, ef);
    if (st != 0) {
        if (st > 0)
            fprintf(stderr, "skiff deploy: %s does not link%s\n", b->path,
                    b->pkgs
                        ? ""
                        : " (a library it uses? name it: SKIFF_APP(\"app\", .pkgs = \"zlib\"))");
        return -1;
    }
    return 0;
}

int build_workdir(struct app_build *b)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    int k = snprintf(b->workdir, sizeof b->workdir, "%s/skiff-deploy-XXXXXX", tmp);
    if (k < 0 || (size_t)k >= sizeof b->workdir || !mkdtemp(b->workdir)) {
        fprintf(stderr, "skiff deploy: cannot make a temporary directory in %s: %s\n", tmp,
                strerror(errno));
        b->workdir[0] = '\0';
        return -1;
    }
    snprintf(b->so, sizeof b->so, "%s/app.so", b->workdir);
    return 0;
}

int build_compile(struct app_build *b, const char *prefix)
{
    if (build_workdir(b) < 0)
        return -1;
    char *cflags = NULL, *libs = NULL;
    int rc = 0;
    if (b->pkgs && *b->pkgs)
        rc = pkg_check(b) < 0 || pkg_flags(b, "--cflags", &cflags) < 0 ||
                     pkg_flags(b, "--libs", &libs) < 0
                 ? -1
                 : 0;
    for (size_t i = 0; rc == 0 && i < b->nsources; i++)
        rc = compile_one(b, prefix, i, cflags);
    if (rc == 0)
        rc = link_all(b, prefix, libs);
    mem_free(cflags);
    mem_free(libs);
    return rc;
}

/* --- messages --------------------------------------------------------------------------------- */

/* Replaces every occurrence of from by to in *text. */
static void replace_all(char **text, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), count = 0;
    if (!fl)
        return;
    for (const char *p = strstr(*text, from); p; p = strstr(p + fl, from))
        count++;
    if (!count)
        return;
    size_t n = strlen(*text) + count * tl - count * fl;
    char *out = mem_alloc(n + 1), *o = out;
    if (!out)
        return;
    const char *p = *text, *hit;
    while ((hit = strstr(p, from))) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, to, tl);
        o += tl;
        p = hit + fl;
    }
    strcpy(o, p);
    mem_free(*text);
    *text = out;
}

void build_tidy(const struct app_build *b, char **text)
{
    if (!b->workdir[0])
        return;
    char from[PATH_MAX + 32];
    for (size_t i = 0; i < b->nsources; i++) {
        object_path(b, i, from, sizeof from);
        replace_all(text, from, b->sources[i]);
    }
    replace_all(text, b->so, b->path);
    snprintf(from, sizeof from, "%s/", b->workdir);
    replace_all(text, from, "");
}

void build_free(struct app_build *b)
{
    if (b->workdir[0]) {
        DIR *d = opendir(b->workdir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[PATH_MAX + 300];
            snprintf(p, sizeof p, "%s/%s", b->workdir, e->d_name);
            unlink(p);
        }
        if (d)
            closedir(d);
        rmdir(b->workdir);
        b->workdir[0] = '\0';
    }
    for (size_t i = 0; i < b->nsources; i++)
        mem_free(b->sources[i]);
    mem_free(b->sources);
    mem_free(b->pkgs);
    b->sources = NULL;
    b->nsources = 0;
    b->pkgs = NULL;
}
