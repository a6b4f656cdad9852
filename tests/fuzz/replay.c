/*
 * replay.c - a main for the fuzz targets that replays a corpus, so the normal test run exercises
 * every saved input without clang or libFuzzer (the Makefile links each fuzz_X.c with this file).
 *
 *     fuzz_frame [PATH ...]
 *
 * Each PATH is a file or a directory of files. Without arguments the target replays
 * $SKIFF_SRC/tests/fuzz/corpus/NAME/ (SKIFF_SRC defaults to the current directory), NAME being
 * the program's name without its "fuzz_" prefix. Each input is copied into a buffer of exactly
 * its size, so the sanitizers catch reads past the end. A crash or sanitizer report fails the
 * run; finding no input at all fails it too.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replayed, unreadable;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        unreadable++;
        return;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        unreadable++;
        return;
    }
    /* An exact-size copy: one byte past the input is outside the allocation. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        unreadable++;
        return;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    replayed++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        unreadable++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        unreadable++;
        return;
    }
    /* In name order, so a failure reproduces the same way every time. */
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char **more = realloc(names, (count + 1) * sizeof *names);
        if (!more)
            break;
        names = more;
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        replay_path(full);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            replay_path(argv[i]);
    } else {
        const char *name = strrchr(argv[0], '/');
        name = name ? name + 1 : argv[0];
        if (!strncmp(name, "fuzz_", 5))
            name += 5;
        const char *src = getenv("SKIFF_SRC");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src && *src ? src : ".", name);
        replay_path(dir);
    }
    printf("replayed %d inputs%s\n", replayed, unreadable ? " (some unreadable)" : "");
    printf("%d passed, %d failed\n", replayed, unreadable);
    if (replayed == 0)
        fprintf(stderr, "replay: no input found\n");
    return replayed > 0 && unreadable == 0 ? 0 : 1;
}
