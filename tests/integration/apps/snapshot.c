/*
 * snapshot.c - the app the snapshot-start tests deploy (app "itest-snapshot"): a class whose
 * enter_snap hook builds a table once per pool, in the snapshot template, and whose plain enter
 * hook runs in every container forked from it. Each hook appends a line with its pid to a file
 * in the directory given as the `dir` parameter, so a test can count where and how often each
 * ran; the methods report what the container sees.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("itest-snapshot");

#define TABLE_SIZE 4096

struct snap {
    int64_t table[TABLE_SIZE]; /* built by the enter_snap hook */
    int64_t sum;               /* of the table */
    int64_t snap_pid;          /* the process the enter_snap hook ran in */
    int64_t enter_pid;         /* the process the enter hook ran in */
};

/* Appends "what pid" to dir/name. 0, or the raise of the failure. */
static int note(skiff_ctx *ctx, const char *name, const char *what)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", skiff_param_string(ctx, "dir"), name);
    FILE *f = fopen(path, "a");
    if (!f)
        return skiff_raise(ctx, "OSError", "cannot open %s", path);
    fprintf(f, "%s %d\n", what, (int)getpid());
    fclose(f);
    return 0;
}

static int build(skiff_ctx *ctx)
{
    struct snap *self = skiff_self(ctx);
    const skiff_value *mode = skiff_param(ctx, "mode");
    if (mode && !strcmp(skiff_value_get_string(mode, NULL), "fail"))
        return skiff_raise(ctx, "ValueError", "the snapshot refused to build");
    for (int i = 0; i < TABLE_SIZE; i++) {
        self->table[i] = (int64_t)i * i;
        self->sum += self->table[i];
    }
    self->snap_pid = getpid();
    return note(ctx, "snap.log", "snap");
}

static int warm(skiff_ctx *ctx)
{
    struct snap *self = skiff_self(ctx);
    if (self->snap_pid == 0)
        return skiff_raise(ctx, "AssertionError", "enter ran without the snapshot's state");
    self->enter_pid = getpid();
    return note(ctx, "enter.log", "enter");
}

SKIFF_CLASS(Snap, struct snap, .params = "dir:str, mode:str?", .enter_snap = {build},
            .enter = {warm});

/* [sum of the table, the snapshot's pid, the enter hook's pid, this process's pid], after
 * sleeping ms milliseconds (so that several containers run at once). */
static int info(skiff_ctx *ctx, skiff_value **out)
{
    struct snap *self = skiff_self(ctx);
    const skiff_value *ms = skiff_arg(ctx, "ms");
    int64_t wait = ms ? skiff_value_get_int(ms) : 0;
    struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    skiff_value *l = skiff_value_list();
    skiff_list_append(l, skiff_value_int(self->sum));
    skiff_list_append(l, skiff_value_int(self->snap_pid));
    skiff_list_append(l, skiff_value_int(self->enter_pid));
    skiff_list_append(l, skiff_value_int(getpid()));
    *out = l;
    return 0;
}
SKIFF_METHOD(Snap, info, .signature = "ms:int?");

/* Dies of SIGABRT. */
static int die(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    abort();
}
SKIFF_METHOD(Snap, die, .signature = "");
