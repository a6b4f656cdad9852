/*
 * crash.c - a last line on stderr when user code kills the container with a fatal signal.
 *
 * A segfault, abort or similar in a function simply ends the worker: the server sees the process
 * die and fails the running input with a RemoteError naming the signal. These handlers only add
 * one line to the container's log first ("skiff-worker ta-...: function 'segv' crashed with
 * SIGSEGV (Segmentation fault) while running input in-..."), then die of the same signal with its
 * default action, so the exit status the server sees is unchanged and core dumps still happen.
 *
 * The handler is async-signal-safe: it only copies bytes from static buffers into a local array,
 * calls write(2) and raise(3). The handlers run on an alternate stack so that a stack overflow
 * can be reported too. A disposition someone else already set (a sanitizer's, typically) is left
 * alone.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/id.h"
#include "worker.h"

/* "skiff-worker ta-...: function 'name' ", written once at startup. */
static char prefix[256];
/* The running input's id, "" between inputs. A crash racing the copy may print a partial id:
 * acceptable for a diagnostic line. */
static char input[ID_SIZE];
/* The alternate signal stack; 64 KiB is well above MINSIGSTKSZ even with large vector state. */
static char altstack[65536];

static const struct {
    int sig;
    const char *name;
} fatal[] = {
    {SIGSEGV, "SIGSEGV (segmentation fault)"},
    {SIGBUS, "SIGBUS (bus error)"},
    {SIGFPE, "SIGFPE (arithmetic exception)"},
    {SIGILL, "SIGILL (illegal instruction)"},
    {SIGABRT, "SIGABRT (aborted)"},
};
#define NFATAL (sizeof fatal / sizeof fatal[0])

static size_t append(char *line, size_t n, size_t size, const char *s)
{
    while (*s && n < size)
        line[n++] = *s++;
    return n;
}

static void on_fatal(int sig)
{
    char line[512];
    size_t n = append(line, 0, sizeof line - 1, prefix);
    n = append(line, n, sizeof line - 1, "crashed with ");
    const char *name = "a fatal signal";
    for (size_t i = 0; i < NFATAL; i++)
        if (fatal[i].sig == sig)
            name = fatal[i].name;
    n = append(line, n, sizeof line - 1, name);
    if (input[0]) {
        n = append(line, n, sizeof line - 1, " while running input ");
        n = append(line, n, sizeof line - 1, input);
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    /* SA_RESETHAND restored the default action, and SA_NODEFER lets this deliver at once. */
    raise(sig);
}

void worker_crash_notes(const char *container_id, const char *function)
{
    snprintf(prefix, sizeof prefix, "skiff-worker %s: function '%s' ", container_id, function);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    bool have_stack = sigaltstack(&ss, NULL) == 0;
    for (size_t i = 0; i < NFATAL; i++) {
        struct sigaction old;
        if (sigaction(fatal[i].sig, NULL, &old) < 0)
            continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND | SA_NODEFER | (have_stack ? SA_ONSTACK : 0);
        sigaction(fatal[i].sig, &sa, NULL);
    }
}

void worker_crash_set_input(const char *input_id)
{
    if (!input_id) {
        input[0] = '\0';
        return;
    }
    size_t n = strnlen(input_id, sizeof input - 1);
    memcpy(input, input_id, n);
    input[n] = '\0';
}
