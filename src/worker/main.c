/*
 * main.c - skiff-worker, the container process skiffd starts for a function. Everything lives in
 * libskiff (src/worker/), so the worker and the app's shared object share one copy of it.
 */
#include <sys/stat.h>

#include "worker/worker.h"

int main(int argc, char **argv)
{
    /* skiffd runs with umask 077 (its data is private); functions get the usual 022. */
    umask(022);
    return skiff__worker_main(argc, argv);
}
