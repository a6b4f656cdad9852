/*
 * python.c - Python apps in the container runtime (docs/python.md, "Containers").
 *
 * A Python app's code, as `skiff deploy app.py` ships it, is a bundle: a zip archive of the app's
 * module and the modules it imports from its own directory, with a manifest (__skiff__.json).
 * skiffd stores and hands it to skiff-worker like a C app's shared object (--code PATH). When
 * skiff-worker finds a bundle there (a zip's magic instead of ELF's), it replaces itself with
 * Debian's python3 running `-m skiff._container` and the same arguments; that module imports the
 * app from the bundle, builds a struct skiff_app_def whose functions are C trampolines into the
 * Python bodies (skiff._skiff, src/python/worker.c), hands it to this runtime with
 * skiff__worker_preload and calls skiff__worker_main again. From there everything is the C
 * path: the container protocol, concurrency, batching, generators, classes, crash notes, logs.
 *
 * The skiff package is found relative to skiff-worker's own binary (PREFIX/bin/skiff-worker ->
 * PREFIX/lib/python3/dist-packages), so the build tree and an install both work; SKIFF_PYTHON
 * overrides the interpreter (tests, other distributions).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "worker.h"

/* The interpreter the package is built for (Debian's; python3-dev's headers). */
#define PYTHON_DEFAULT "/usr/bin/python3"
/* The first bytes of a zip archive (a local file header). */
static const char bundle_magic[4] = {'P', 'K', 3, 4};

/* An app built in this process (by skiff._skiff) that worker_load_app returns for any path. */
static const struct skiff_app_def *preloaded;

void skiff__worker_preload(const struct skiff_app_def *app)
{
    preloaded = app;
}

/* Why the Python app could not be built (its module failed to import), or code SKIFF_OK. */
static skiff_error preload_err = SKIFF_ERROR_INIT;

void skiff__worker_preload_failure(const char *message, const char *traceback)
{
    skiff_error_set(&preload_err, SKIFF_ERR_INIT_FAILURE, NULL, "%s", message);
    preload_err.traceback = traceback ? mem_strdup(traceback) : NULL;
}

const struct skiff_app_def *worker_preloaded(void)
{
    return preloaded;
}

bool worker_preload_failed(skiff_error *err)
{
    if (preload_err.code == SKIFF_OK)
        return false;
    skiff_error_set(err, preload_err.code, NULL, "%s", preload_err.message);
    if (err && preload_err.traceback)
        err->traceback = mem_strdup(preload_err.traceback);
    return true;
}

/* The embedding interpreter's fork handlers (the GIL and its thread states), or NULL. */
static void (*fork_before)(void), (*fork_child)(void), (*fork_parent)(void);

void skiff__worker_fork_hooks(void (*before)(void), void (*child)(void), void (*parent)(void))
{
    fork_before = before;
    fork_child = child;
    fork_parent = parent;
}

void worker_fork_before(void)
{
    if (fork_before)
        fork_before();
}

void worker_fork_after(bool child)
{
    void (*f)(void) = child ? fork_child : fork_parent;
    if (f)
        f();
}

bool worker_is_bundle(const char *path)
{
    char head[sizeof bundle_magic];
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return false;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    return n == (ssize_t)sizeof head && !memcmp(head, bundle_magic, sizeof head);
}

/* PREFIX/lib/python3/dist-packages for the running binary PREFIX/bin/NAME, into out. */
static int package_dir(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    int k = snprintf(out, size, "%s/lib/python3/dist-packages", exe);
    return k > 0 && (size_t)k < size ? 0 : -1;
}

int worker_exec_python(int argc, char **argv)
{
    char dir[PATH_MAX];
    if (package_dir(dir, sizeof dir) < 0) {
        fputs("skiff-worker: cannot find the skiff Python package next to this binary\n", stderr);
        return 1;
    }
    const char *old = getenv("PYTHONPATH");
    char path[2 * PATH_MAX + 2];
    snprintf(path, sizeof path, "%s%s%s", dir, old && *old ? ":" : "", old && *old ? old : "");
    const char *python = getenv("SKIFF_PYTHON");
    if (!python || !*python)
        python = PYTHON_DEFAULT;
    /* Output straight to the container's log (no stdio buffering), and no __pycache__ writes
     * into a read-only root. */
    if (setenv("PYTHONPATH", path, 1) < 0 || setenv("PYTHONUNBUFFERED", "1", 1) < 0 ||
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1) < 0) {
        fprintf(stderr, "skiff-worker: setenv: %s\n", strerror(errno));
        return 1;
    }
    char **av = calloc((size_t)argc + 4, sizeof *av);
    if (!av) {
        fputs("skiff-worker: out of memory\n", stderr);
        return 1;
    }
    int n = 0;
    av[n++] = (char *)python;
    av[n++] = "-m";
    av[n++] = "skiff._container";
    for (int i = 1; i < argc; i++)
        av[n++] = argv[i];
    av[n] = NULL;
    execv(python, av);
    fprintf(stderr, "skiff-worker: cannot run %s for a Python app: %s\n", python, strerror(errno));
    free(av);
    return 1;
}
