/*
 * bench_gearman.c - the peer's side of the benchmark: Gearman (gearmand from Debian, run by
 * bench/run.sh in single-thread mode) with libgearman, measured the same way as bench_skiff.c.
 *
 *     bench_gearman --port PORT [--n N] [--payload BYTES] [--batch B]
 *
 * A worker process (forked here) registers a trivial function "echo" that returns its
 * workload. Then, from one client:
 *   (a) sync:   N gearman_client_do round trips, one at a time: p50, p99, calls/s;
 *   (b) submit: N gearman_client_add_task_background in pipelined batches of B, each batch sent
 *               with one gearman_client_run_tasks: submits/s (the queue is drained, untimed,
 *               before the next part); and N/10 gearman_client_do_background one at a time;
 *   (c) batch:  N foreground tasks added with gearman_client_add_task and run together with
 *               gearman_client_run_tasks, every result collected: results/s.
 * Prints RESULT lines (bench.h) for bench/run.sh.
 */
#include <libgearman/gearman.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void *echo_fn(gearman_job_st *job, void *context, size_t *size, gearman_return_t *ret)
{
    (void)context;
    size_t n = gearman_job_workload_size(job);
    void *out = malloc(n ? n : 1);
    if (out)
        memcpy(out, gearman_job_workload(job), n);
    *size = n;
    *ret = out ? GEARMAN_SUCCESS : GEARMAN_WORK_FAIL;
    return out;
}

static void run_worker(int port)
{
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w || gearman_worker_add_server(w, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS ||
        gearman_worker_add_function(w, "echo", 0, echo_fn, NULL) != GEARMAN_SUCCESS) {
        fprintf(stderr, "bench_gearman: worker set-up failed\n");
        _exit(1);
    }
    for (;;) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc != GEARMAN_SUCCESS && rc != GEARMAN_IO_WAIT && rc != GEARMAN_NO_JOBS) {
            fprintf(stderr, "bench_gearman: worker: %s\n", gearman_worker_error(w));
            _exit(1);
        }
    }
}

static size_t completed;

static gearman_return_t on_complete(gearman_task_st *task)
{
    (void)task;
    completed++;
    return GEARMAN_SUCCESS;
}

static void die(gearman_client_st *c, const char *what)
{
    fprintf(stderr, "bench_gearman: %s: %s\n", what, gearman_client_error(c));
    exit(1);
}

int main(int argc, char **argv)
{
    int port = (int)bench_opt(argc, argv, "--port", 4730);
    long n = bench_opt(argc, argv, "--n", 5000);
    long size = bench_opt(argc, argv, "--payload", 64);
    long batch = bench_opt(argc, argv, "--batch", 1000);
    char *payload = malloc((size_t)size);
    bench_payload(payload, (size_t)size);

    pid_t worker = fork();
    if (worker < 0) {
        perror("fork");
        return 1;
    }
    if (worker == 0)
        run_worker(port);

    gearman_client_st *c = gearman_client_create(NULL);
    if (!c || gearman_client_add_server(c, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS)
        die(c, "client set-up");
    gearman_client_set_complete_fn(c, on_complete);

    /* Warm up: connections made, the worker registered and answering. */
    for (int i = 0; i < 100; i++) {
        size_t rs;
        gearman_return_t rc;
        void *r = gearman_client_do(c, "echo", NULL, payload, (size_t)size, &rs, &rc);
        if (rc != GEARMAN_SUCCESS || rs != (size_t)size)
            die(c, "warm-up call");
        free(r);
    }

    /* (a) sync round trips */
    struct bench_samples s = {0};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        size_t rs;
        gearman_return_t rc;
        double a = bench_now();
        void *r = gearman_client_do(c, "echo", NULL, payload, (size_t)size, &rs, &rc);
        bench_add(&s, (bench_now() - a) * 1e6);
        if (rc != GEARMAN_SUCCESS || rs != (size_t)size)
            die(c, "gearman_client_do");
        free(r);
    }
    double took = bench_now() - t0;
    bench_result("sync_p50_us", bench_percentile(&s, 50), "us");
    bench_result("sync_p99_us", bench_percentile(&s, 99), "us");
    bench_result("sync_per_s", (double)n / took, "calls/s");
    bench_free(&s);

    /* Warm up the batch paths as the sync one was: a batch of 1,000 background and 1,000
     * foreground tasks first, untimed. */
    for (int i = 0; i < 1000; i++) {
        gearman_return_t rc;
        if (!gearman_client_add_task_background(c, NULL, NULL, "echo", NULL, payload, (size_t)size,
                                                &rc) ||
            rc != GEARMAN_SUCCESS)
            die(c, "add_task_background (warm-up)");
    }
    if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
        die(c, "run_tasks (warm-up)");
    gearman_client_task_free_all(c);
    completed = 0;
    for (int i = 0; i < 1000; i++) {
        gearman_return_t rc;
        if (!gearman_client_add_task(c, NULL, NULL, "echo", NULL, payload, (size_t)size, &rc) ||
            rc != GEARMAN_SUCCESS)
            die(c, "add_task (warm-up)");
    }
    if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
        die(c, "run_tasks (warm-up batch)");
    gearman_client_task_free_all(c);

    /* (b) pipelined background submits */
    t0 = bench_now();
    for (long done = 0; done < n;) {
        long k = n - done < batch ? n - done : batch;
        for (long i = 0; i < k; i++) {
            gearman_return_t rc;
            if (!gearman_client_add_task_background(c, NULL, NULL, "echo", NULL, payload,
                                                    (size_t)size, &rc) ||
                rc != GEARMAN_SUCCESS)
                die(c, "add_task_background");
        }
        if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
            die(c, "run_tasks (background)");
        gearman_client_task_free_all(c);
        done += k;
    }
    took = bench_now() - t0;
    bench_result("submit_per_s", (double)n / took, "submits/s");
    /* Drain: a foreground job queues behind the background ones (FIFO, one worker). */
    {
        size_t rs;
        gearman_return_t rc;
        free(gearman_client_do(c, "echo", NULL, payload, (size_t)size, &rs, &rc));
    }

    /* (b') background submits one at a time, N/10 of them */
    long n1 = n / 10 > 0 ? n / 10 : 1;
    t0 = bench_now();
    for (long i = 0; i < n1; i++) {
        char handle[GEARMAN_JOB_HANDLE_SIZE];
        if (gearman_client_do_background(c, "echo", NULL, payload, (size_t)size, handle) !=
            GEARMAN_SUCCESS)
            die(c, "gearman_client_do_background");
    }
    took = bench_now() - t0;
    bench_result("spawn1_per_s", (double)n1 / took, "submits/s");
    {
        size_t rs;
        gearman_return_t rc;
        free(gearman_client_do(c, "echo", NULL, payload, (size_t)size, &rs, &rc));
    }

    /* (c) a batch of N foreground tasks, results collected */
    completed = 0;
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        gearman_return_t rc;
        if (!gearman_client_add_task(c, NULL, NULL, "echo", NULL, payload, (size_t)size, &rc) ||
            rc != GEARMAN_SUCCESS)
            die(c, "add_task");
    }
    if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS)
        die(c, "run_tasks (batch)");
    took = bench_now() - t0;
    if (completed != (size_t)n) {
        fprintf(stderr, "bench_gearman: %zu of %ld tasks completed\n", completed, n);
        return 1;
    }
    gearman_client_task_free_all(c);
    bench_result("map_per_s", (double)n / took, "results/s");

    gearman_client_free(c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    free(payload);
    return 0;
}
