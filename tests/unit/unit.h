/*
 * unit.h - a tiny test framework for skiff's C tests (unit and integration).
 *
 * In the spirit of libuv's test runner: each test is a function declared with TEST(name), which
 * registers itself before main runs; typed assertions print both sides when they fail. The main
 * defined here runs every test (or only those whose name contains argv[1]) in its own forked
 * process with an alarm, so a crash, a hang or a leak (LeakSanitizer reports at the child's exit)
 * fails that test alone, then prints `N passed, N failed` and exits non-zero if any failed.
 *
 *     #include "unit.h"
 *
 *     TEST(addition)
 *     {
 *         ASSERT_EQ_INT(1 + 1, 2);
 *     }
 *
 * Environment: UNIT_NOFORK=1 runs the tests in the runner's own process (for a debugger; the
 * first failure then ends the run); UNIT_TIMEOUT=SECONDS changes the per-test alarm (default 120).
 *
 * A file that wants its own main defines UNIT_NO_MAIN before including this header and calls
 * unit_run(argc, argv). unit_fail_hook, when set, runs in the failing process before it exits
 * (integration tests use it to dump and stop the servers they started).
 */
#ifndef SKIFF_TESTS_UNIT_H
#define SKIFF_TESTS_UNIT_H

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*unit_fn)(void);

struct unit_test {
    const char *name; /* as written in TEST(name) */
    unit_fn fn;
};

/* Room for every test of one file; a file with more is a file to split. */
#define UNIT_MAX_TESTS 256

static struct unit_test unit_tests[UNIT_MAX_TESTS];
static int unit_ntests;
/* Runs in the failing test's process just before it exits. */
static void (*unit_fail_hook)(void);

static inline void unit_register(const char *name, unit_fn fn)
{
    if (unit_ntests == UNIT_MAX_TESTS) {
        fprintf(stderr, "unit.h: more than %d tests in one file\n", UNIT_MAX_TESTS);
        abort();
    }
    unit_tests[unit_ntests].name = name;
    unit_tests[unit_ntests].fn = fn;
    unit_ntests++;
}

#define TEST(name)                                                                                 \
    static void unit_test_##name(void);                                                            \
    __attribute__((constructor)) static void unit_reg_##name(void)                                 \
    {                                                                                              \
        unit_register(#name, unit_test_##name);                                                    \
    }                                                                                              \
    static void unit_test_##name(void)

/* Reports a failed assertion and ends the test's process. _exit, not exit: a failing test leaves
 * objects behind, and a leak report on top of the failure would only be noise. */
__attribute__((noreturn, format(printf, 3, 4))) static inline void
unit_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: assertion failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    fflush(stdout);
    if (unit_fail_hook) {
        void (*hook)(void) = unit_fail_hook;
        unit_fail_hook = NULL; /* a failing assertion inside the hook must not loop */
        hook();
    }
    _exit(1);
}

#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (!(expr))                                                                               \
            unit_fail(__FILE__, __LINE__, "%s", #expr);                                            \
    } while (0)

#define ASSERT_TRUE(expr) ASSERT(expr)
#define ASSERT_FALSE(expr) ASSERT(!(expr))

/* Integer comparisons: both sides are evaluated once, as int64_t (or uint64_t for _UINT). */
#define UNIT_CMP_INT(a, op, b)                                                                     \
    do {                                                                                           \
        int64_t unit_a_ = (int64_t)(a), unit_b_ = (int64_t)(b);                                    \
        if (!(unit_a_ op unit_b_))                                                                 \
            unit_fail(__FILE__, __LINE__, "%s %s %s (%" PRId64 " vs %" PRId64 ")", #a, #op, #b,    \
                      unit_a_, unit_b_);                                                           \
    } while (0)

#define UNIT_CMP_UINT(a, op, b)                                                                    \
    do {                                                                                           \
        uint64_t unit_a_ = (uint64_t)(a), unit_b_ = (uint64_t)(b);                                 \
        if (!(unit_a_ op unit_b_))                                                                 \
            unit_fail(__FILE__, __LINE__, "%s %s %s (%" PRIu64 " vs %" PRIu64 ")", #a, #op, #b,    \
                      unit_a_, unit_b_);                                                           \
    } while (0)

#define ASSERT_EQ_INT(a, b) UNIT_CMP_INT(a, ==, b)
#define ASSERT_NE_INT(a, b) UNIT_CMP_INT(a, !=, b)
#define ASSERT_LT_INT(a, b) UNIT_CMP_INT(a, <, b)
#define ASSERT_LE_INT(a, b) UNIT_CMP_INT(a, <=, b)
#define ASSERT_GT_INT(a, b) UNIT_CMP_INT(a, >, b)
#define ASSERT_GE_INT(a, b) UNIT_CMP_INT(a, >=, b)
#define ASSERT_EQ_UINT(a, b) UNIT_CMP_UINT(a, ==, b)
#define ASSERT_LE_UINT(a, b) UNIT_CMP_UINT(a, <=, b)

/* Exact double equality (round trips must be exact). */
#define ASSERT_EQ_DOUBLE(a, b)                                                                     \
    do {                                                                                           \
        double unit_a_ = (a), unit_b_ = (b);                                                       \
        if (!(unit_a_ == unit_b_))                                                                 \
            unit_fail(__FILE__, __LINE__, "%s == %s (%.17g vs %.17g)", #a, #b, unit_a_, unit_b_);  \
    } while (0)

/* String equality; NULL equals only NULL. */
#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *unit_a_ = (a), *unit_b_ = (b);                                                 \
        if (!((!unit_a_ && !unit_b_) || (unit_a_ && unit_b_ && !strcmp(unit_a_, unit_b_))))        \
            unit_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b,                   \
                      unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)");                 \
    } while (0)

#define ASSERT_NE_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *unit_a_ = (a), *unit_b_ = (b);                                                 \
        if (unit_a_ && unit_b_ && !strcmp(unit_a_, unit_b_))                                       \
            unit_fail(__FILE__, __LINE__, "%s != %s (both \"%s\")", #a, #b, unit_a_);              \
    } while (0)

/* haystack holds needle (a NULL haystack holds nothing). */
#define ASSERT_STR_CONTAINS(haystack, needle)                                                      \
    do {                                                                                           \
        const char *unit_h_ = (haystack), *unit_n_ = (needle);                                     \
        if (!unit_h_ || !strstr(unit_h_, unit_n_))                                                 \
            unit_fail(__FILE__, __LINE__, "%s contains %s (\"%s\" does not hold \"%s\")",          \
                      #haystack, #needle, unit_h_ ? unit_h_ : "(null)", unit_n_);                  \
    } while (0)

/* n bytes equal; prints the first differing offset. */
#define ASSERT_EQ_MEM(a, b, n)                                                                     \
    do {                                                                                           \
        const unsigned char *unit_a_ = (const unsigned char *)(a);                                 \
        const unsigned char *unit_b_ = (const unsigned char *)(b);                                 \
        size_t unit_n_ = (n);                                                                      \
        for (size_t unit_i_ = 0; unit_i_ < unit_n_; unit_i_++)                                     \
            if (unit_a_[unit_i_] != unit_b_[unit_i_])                                              \
                unit_fail(__FILE__, __LINE__, "%s == %s (%zu bytes; byte %zu: 0x%02x vs 0x%02x)",  \
                          #a, #b, unit_n_, unit_i_, unit_a_[unit_i_], unit_b_[unit_i_]);           \
    } while (0)

#define ASSERT_NULL(p)                                                                             \
    do {                                                                                           \
        const void *unit_p_ = (const void *)(p);                                                   \
        if (unit_p_)                                                                               \
            unit_fail(__FILE__, __LINE__, "%s is NULL (it is %p)", #p, unit_p_);                   \
    } while (0)

#define ASSERT_NOT_NULL(p)                                                                         \
    do {                                                                                           \
        if (!(p))                                                                                  \
            unit_fail(__FILE__, __LINE__, "%s is not NULL", #p);                                   \
    } while (0)

/* Unconditional failure with a printf-style reason. */
#define FAIL(...) unit_fail(__FILE__, __LINE__, __VA_ARGS__)

static inline double unit_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs test t in a child process; true if it passed. */
static inline bool unit_run_forked(const struct unit_test *t, unsigned timeout)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("unit.h: fork");
        return false;
    }
    if (pid == 0) {
        alarm(timeout); /* SIGALRM's default action kills a hung test */
        t->fn();
        fflush(stdout);
        exit(0); /* exit, not _exit: LeakSanitizer checks the test's leaks here */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d (%s)%s\n", t->name, WTERMSIG(status),
                strsignal(WTERMSIG(status)),
                WTERMSIG(status) == SIGALRM ? ": the test timed out" : "");
    else
        fprintf(stderr, "  %s: exit status %d\n", t->name, WEXITSTATUS(status));
    return false;
}

/* Runs the registered tests whose name contains filter (NULL: all). Returns the exit status. */
static inline int unit_run(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *nofork = getenv("UNIT_NOFORK");
    const char *tmo = getenv("UNIT_TIMEOUT");
    unsigned timeout = tmo && atoi(tmo) > 0 ? (unsigned)atoi(tmo) : 120;
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < unit_ntests; i++) {
        const struct unit_test *t = &unit_tests[i];
        if (filter && !strstr(t->name, filter))
            continue;
        double t0 = unit_now();
        bool ok;
        if (nofork && *nofork && strcmp(nofork, "0")) {
            t->fn();
            ok = true;
        } else {
            ok = unit_run_forked(t, timeout);
        }
        printf("%s %s (%.0f ms)\n", ok ? "ok  " : "FAIL", t->name, (unit_now() - t0) * 1e3);
        if (ok)
            passed++;
        else
            failed++;
    }
    if (filter && passed + failed == 0) {
        fprintf(stderr, "no test matches \"%s\"\n", filter);
        failed = 1;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#ifndef UNIT_NO_MAIN
int main(int argc, char **argv)
{
    return unit_run(argc, argv);
}
#endif

#endif /* SKIFF_TESTS_UNIT_H */
