/*
 * async_fanout.c - the reference pages' fan-out, `asyncio.gather(*[f.remote.aio(i) for i in
 * range(100)])`, in C: N concurrent remote calls of my-shared-app's square (examples/square.c)
 * from one thread, driven by a plain poll() loop on the client's descriptor, gathered in
 * argument order.
 *
 *     skiff deploy examples/square.c
 *     build/examples/async_fanout               # 100 calls
 *     build/examples/async_fanout 1000 --compare
 *
 * Prints one JSON line: {"calls": N, "sum": sum of i*i, "async_ms": ...} and with --compare
 * also the time of the same N calls made one after another with the blocking
 * skiff_function_remote ("sequential_ms"). Exit status 0 when every result is i*i, 1 when a call
 * fails (its error on stderr), 2 on bad usage.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skiff/skiff.h>

/* One call's place in the gathered results. */
struct slot {
    int64_t value;
    bool done;
};

/* What the callbacks share with main. */
struct fanout {
    struct slot *slots;
    size_t left;       /* calls not yet answered */
    int failed;        /* the first failure's code, or SKIFF_OK */
    char message[512]; /* and its message */
};

/* Where a callback writes: the slot and the fan-out it belongs to. */
struct place {
    struct fanout *f;
    size_t i;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Completion of call i: runs inside skiff_client_process, on main's thread. */
static void on_result(void *userdata, int rc, skiff_value *result, const skiff_error *err)
{
    struct place *p = userdata;
    struct fanout *f = p->f;
    f->left--;
    if (rc != SKIFF_OK) {
        if (f->failed == SKIFF_OK) {
            f->failed = rc;
            snprintf(f->message, sizeof f->message, "call %zu: %s: %s", p->i,
                     err && err->type ? err->type : "Error",
                     err && err->message ? err->message : "");
        }
        return;
    }
    f->slots[p->i].value = skiff_value_get_int(result);
    f->slots[p->i].done = true;
    skiff_value_free(result);
}

/* Starts n calls of fn at once and runs the event loop until all have answered. */
static int fan_out(skiff_client *c, skiff_function *fn, size_t n, struct fanout *f,
                   struct place *places, skiff_error *err)
{
    for (size_t i = 0; i < n; i++) {
        skiff_value *args = skiff_value_list_of(1, skiff_value_int((int64_t)i));
        if (!args)
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
        places[i].f = f;
        places[i].i = i;
        int rc = skiff_function_remote_async(fn, args, NULL, on_result, &places[i], err);
        skiff_value_free(args); /* encoded already: the call borrowed it */
        if (rc != SKIFF_OK)
            return rc;
        f->left++;
    }
    int fd;
    int rc = skiff_client_fd(c, &fd, err);
    while (rc == SKIFF_OK && f->left > 0) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, -1) < 0)
            continue; /* EINTR: look again */
        rc = skiff_client_process(c, NULL, err);
    }
    return rc;
}

int main(int argc, char **argv)
{
    size_t n = 100;
    bool compare = false;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--compare")) {
            compare = true;
        } else if (argv[i][0] != '-' && (n = strtoul(argv[i], &end, 10)) > 0 && !*end) {
            continue;
        } else {
            fprintf(stderr, "usage: async_fanout [N (default 100)] [--compare]\n");
            return 2;
        }
    }
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client *c = NULL;
    skiff_function *fn = NULL;
    struct fanout f = {calloc(n, sizeof *f.slots), 0, SKIFF_OK, ""};
    struct place *places = calloc(n, sizeof *places);
    int status = 1;
    if (!f.slots || !places) {
        fprintf(stderr, "async_fanout: out of memory\n");
        goto out;
    }
    if (skiff_client_connect(NULL, &c, &err) != SKIFF_OK ||
        skiff_function_lookup(c, "my-shared-app", "square", &fn, &err) != SKIFF_OK) {
        fprintf(stderr, "async_fanout: %s: %s\n", err.type, err.message);
        goto out;
    }
    double t0 = now_ms();
    if (fan_out(c, fn, n, &f, places, &err) != SKIFF_OK) {
        fprintf(stderr, "async_fanout: %s: %s\n", err.type, err.message);
        goto out;
    }
    double async_ms = now_ms() - t0;
    if (f.failed != SKIFF_OK) {
        fprintf(stderr, "async_fanout: %s\n", f.message);
        goto out;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!f.slots[i].done || f.slots[i].value != (int64_t)(i * i)) {
            fprintf(stderr, "async_fanout: result %zu is wrong\n", i);
            goto out;
        }
        sum += f.slots[i].value;
    }
    printf("{\"calls\": %zu, \"sum\": %lld, \"async_ms\": %.2f", n, (long long)sum, async_ms);
    if (compare) {
        t0 = now_ms();
        for (size_t i = 0; i < n; i++) {
            skiff_value *args = skiff_value_list_of(1, skiff_value_int((int64_t)i)), *r = NULL;
            int rc = skiff_function_remote(fn, args, NULL, &r, &err);
            skiff_value_free(args);
            skiff_value_free(r);
            if (rc != SKIFF_OK) {
                fprintf(stderr, "\nasync_fanout: %s: %s\n", err.type, err.message);
                goto out;
            }
        }
        printf(", \"sequential_ms\": %.2f", now_ms() - t0);
    }
    printf("}\n");
    status = 0;
out:
    skiff_error_clear(&err);
    skiff_function_free(fn);
    skiff_client_close(c);
    free(f.slots);
    free(places);
    return status;
}
