/*
 * crash.c - last words when user code kills the container: W_CRASH to the server and a line on
 * stderr.
 *
 * A segfault, abort or similar in a function ends the worker. Before it does, the fatal-signal
 * handler (best effort) sends the outputs already completed but held back, then W_CRASH {slot,
 * signal, message} naming the input the dying thread was running, so the server fails exactly
 * that input with a RemoteError and runs the others it held again elsewhere; it writes one line
 * to the container's log ("skiff-worker ta-...: function 'segv' crashed with SIGSEGV
 * (segmentation fault) while running input in-... (slot 3)") and then dies of the same signal with
 * its default action, so the exit status the server sees is unchanged and core dumps still
 * happen. A function calling exit() is reported the same way from an on_exit handler (signal 0,
 * the message naming the status); the worker's own exit is not (worker_crash_exiting).
 *
 * The handler is async-signal-safe: it packs the frame by hand into a local array, takes the
 * socket with an atomic flag (bounded spinning with nanosleep; a write in progress on another
 * thread finishes first), and calls only write(2)/send(2), nanosleep(2) and raise(3). Which input
 * a thread runs is kept in initial-exec thread-local storage, readable from a signal handler. The
 * handlers run on an alternate stack so that a stack overflow can be reported too. A disposition
 * someone else already set (a sanitizer's, typically) is left alone.
 */
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/id.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "worker.h"

/* What the calling thread runs: slot (-1: nothing), input id and function name. */
struct running {
    int64_t slot;
    char input[ID_SIZE];
    char function[2 * 64];
};
static __thread struct running cur __attribute__((tls_model("initial-exec"))) = {.slot = -1};

static int sock_fd = -1;
static bool sock_is_socket;
/* "skiff-worker ta-...: ", written once at startup. */
static char prefix[128];
/* 0 free, 1 a writer holds the socket, 2 a dying thread does (for good). */
static int sock_busy;
static bool exiting;
/* The held-back outputs (run.c). */
static char *const *pending_data;
static const size_t *pending_len;
static const uint32_t *pending_count;
static int *pending_busy;
static size_t pending_count_at;
/* The main thread's alternate signal stack; 64 KiB is well above MINSIGSTKSZ even with large
 * vector state. Pool threads get one of the same size each (worker_crash_thread_stack). */
#define ALTSTACK_SIZE 65536
static char altstack[ALTSTACK_SIZE];
/* How long a dying thread waits for the socket or the held outputs (in 1 ms steps). */
#define CRASH_WAIT_STEPS 200

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

void worker_crash_setup(int fd, const char *container_id)
{
    sock_fd = fd;
    int type;
    socklen_t tlen = sizeof type;
    sock_is_socket = fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    snprintf(prefix, sizeof prefix, "skiff-worker %s: ", container_id);
}

void worker_crash_pending(char *const *data, const size_t *len, const uint32_t *count,
                          size_t count_at, int *busy)
{
    pending_count_at = count_at;
    pending_data = data;
    pending_len = len;
    pending_count = count;
    pending_busy = busy;
}

void worker_crash_exiting(void)
{
    __atomic_store_n(&exiting, true, __ATOMIC_RELEASE);
}

void worker_crash_set_input(int64_t slot, const char *input_id, const char *function)
{
    cur.slot = -1;
    if (slot < 0)
        return;
    snprintf(cur.input, sizeof cur.input, "%s", input_id ? input_id : "");
    snprintf(cur.function, sizeof cur.function, "%s", function ? function : "?");
    __atomic_store_n(&cur.slot, slot, __ATOMIC_RELEASE);
}

static void pause_ms(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* Takes the flag *p from 0 to v, waiting a bounded time. */
static bool take(int *p, int v, int steps)
{
    for (int i = 0; i < steps; i++) {
        int zero = 0;
        if (__atomic_compare_exchange_n(p, &zero, v, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return true;
        pause_ms();
    }
    return false;
}

void worker_sock_lock(void)
{
    /* Writers are few and writes short; a dying thread keeps it forever (the process ends). */
    int zero = 0;
    while (!__atomic_compare_exchange_n(&sock_busy, &zero, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
        zero = 0;
        sched_yield();
    }
}

void worker_sock_unlock(void)
{
    __atomic_store_n(&sock_busy, 0, __ATOMIC_RELEASE);
}

static void put_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = sock_is_socket ? send(sock_fd, p, n, MSG_NOSIGNAL) : write(sock_fd, p, n);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static size_t append(char *out, size_t n, size_t size, const char *s)
{
    while (*s && n < size)
        out[n++] = *s++;
    return n;
}

/* Appends the decimal digits of v. */
static size_t append_int(char *out, size_t n, size_t size, int64_t v)
{
    char digits[24];
    size_t k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0 && n < size)
        out[n++] = '-';
    while (k > 0 && n < size)
        out[n++] = digits[--k];
    return n;
}

/* msgpack by hand: a fixstr key, an int64, a str8. */
static size_t pack_key(char *f, size_t n, const char *key)
{
    size_t len = strlen(key);
    f[n++] = (char)(0xa0 | len);
    memcpy(f + n, key, len);
    return n + len;
}

static size_t pack_i64(char *f, size_t n, int64_t v)
{
    f[n++] = (char)0xd3;
    for (int i = 7; i >= 0; i--)
        f[n++] = (char)((uint64_t)v >> (8 * i));
    return n;
}

/* Sends what run.c holds back, then W_CRASH {slot, signal, message}; message is at most 255
 * bytes. */
static void send_crash(int64_t slot, int sig, const char *message, size_t mlen)
{
    if (sock_fd < 0 || !take(&sock_busy, 2, CRASH_WAIT_STEPS))
        return;
    if (pending_busy && take(pending_busy, 2, CRASH_WAIT_STEPS) && *pending_count > 0) {
        char *data = *pending_data;
        size_t len = *pending_len;
        uint32_t count = *pending_count;
        size_t body = len - WIRE_HEADER;
        /* The same patching as run.c's out_seal: length, then the array count at its end. */
        data[0] = (char)(body >> 24);
        data[1] = (char)(body >> 16);
        data[2] = (char)(body >> 8);
        data[3] = (char)body;
        char *c = data + pending_count_at;
        c[0] = (char)(count >> 24);
        c[1] = (char)(count >> 16);
        c[2] = (char)(count >> 8);
        c[3] = (char)count;
        put_all(data, len);
    }
    char f[512];
    size_t n = WIRE_HEADER;
    f[n++] = (char)0x85;
    n = pack_key(f, n, "op");
    f[n++] = (char)OP_W_CRASH;
    n = pack_key(f, n, "rid");
    f[n++] = 0;
    n = pack_key(f, n, "slot");
    n = pack_i64(f, n, slot);
    n = pack_key(f, n, "signal");
    n = pack_i64(f, n, sig);
    n = pack_key(f, n, "message");
    f[n++] = (char)0xd9;
    f[n++] = (char)mlen;
    memcpy(f + n, message, mlen);
    n += mlen;
    size_t body = n - WIRE_HEADER;
    f[0] = 0;
    f[1] = 0;
    f[2] = (char)(body >> 8);
    f[3] = (char)body;
    put_all(f, n);
}

/* "function 'name' <what> while running input in-... (slot N)" for the calling thread. */
static size_t describe(char *line, size_t size, const char *what)
{
    size_t n = append(line, 0, size, "function '");
    n = append(line, n, size, cur.function);
    n = append(line, n, size, "' ");
    n = append(line, n, size, what);
    n = append(line, n, size, " while running input ");
    n = append(line, n, size, cur.input);
    n = append(line, n, size, " (slot ");
    n = append_int(line, n, size, cur.slot);
    n = append(line, n, size, ")");
    return n;
}

static void note(const char *message, size_t n)
{
    char line[512];
    size_t k = append(line, 0, sizeof line - 1, prefix);
    for (size_t i = 0; i < n && k < sizeof line - 1; i++)
        line[k++] = message[i];
    line[k++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, k);
    (void)r;
}

static void on_fatal(int sig)
{
    const char *name = "a fatal signal";
    for (size_t i = 0; i < NFATAL; i++)
        if (fatal[i].sig == sig)
            name = fatal[i].name;
    char what[64];
    size_t w = append(what, 0, sizeof what - 1, "crashed with ");
    w = append(what, w, sizeof what - 1, name);
    what[w] = '\0';
    char message[255];
    int64_t slot = __atomic_load_n(&cur.slot, __ATOMIC_ACQUIRE);
    if (slot >= 0) {
        size_t n = describe(message, sizeof message, what);
        send_crash(slot, sig, message, n);
        note(message, n);
    } else {
        note(what, w);
    }
    /* SA_RESETHAND restored the default action, and SA_NODEFER lets this deliver at once. */
    raise(sig);
}

static void on_exit_note(int status, void *arg)
{
    (void)arg;
    if (__atomic_load_n(&exiting, __ATOMIC_ACQUIRE) || cur.slot < 0)
        return;
    char what[48];
    size_t w = append(what, 0, sizeof what - 1, "called exit(");
    w = append_int(what, w, sizeof what - 1, status);
    w = append(what, w, sizeof what - 1, ")");
    what[w] = '\0';
    char message[255];
    size_t n = describe(message, sizeof message, what);
    send_crash(cur.slot, 0, message, n);
    note(message, n);
}

void *worker_crash_thread_stack(void)
{
    void *stack = mem_alloc(ALTSTACK_SIZE);
    if (!stack)
        return NULL;
    stack_t ss = {.ss_sp = stack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        mem_free(stack);
        return NULL;
    }
    return stack;
}

void worker_crash_thread_stack_free(void *stack)
{
    if (!stack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    mem_free(stack);
}

void worker_crash_notes(void)
{
    on_exit(on_exit_note, NULL);
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
