/*
 * bench.h - timing helpers shared by skiff's benchmarks (bench_skiff.c, bench_gearman.c).
 *
 * Latencies are collected in a growable array of doubles (microseconds) and summarised as
 * percentiles; results are printed as `RESULT key value unit` lines, which bench/run.sh reads to
 * build its side-by-side table, plus a human-readable line each.
 */
#ifndef SKIFF_BENCH_H
#define SKIFF_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic time in seconds. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bench_samples {
    double *us; /* one latency per operation, microseconds */
    size_t n, cap;
};

static inline void bench_add(struct bench_samples *s, double us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->us = realloc(s->us, s->cap * sizeof *s->us);
        if (!s->us) {
            perror("bench: realloc");
            exit(1);
        }
    }
    s->us[s->n++] = us;
}

static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) by nearest rank; sorts the samples. 0 when empty. */
static inline double bench_percentile(struct bench_samples *s, double p)
{
    if (!s->n)
        return 0;
    qsort(s->us, s->n, sizeof *s->us, bench_cmp);
    size_t rank = (size_t)(p / 100.0 * (double)s->n + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return s->us[rank - 1];
}

static inline void bench_free(struct bench_samples *s)
{
    free(s->us);
    s->us = NULL;
    s->n = s->cap = 0;
}

/* Prints one machine-readable result line. */
static inline void bench_result(const char *key, double value, const char *unit)
{
    printf("RESULT %s %.1f %s\n", key, value, unit);
    fflush(stdout);
}

/* A payload of n bytes (the same bytes every run). */
static inline void bench_payload(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
}

/* Reads "--name value" integer options; returns def when absent. */
static inline long bench_opt(int argc, char **argv, const char *name, long def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return strtol(argv[i + 1], NULL, 10);
    return def;
}

#endif
