/*
 * main.c - skiff-worker, the container process skiffd starts for a function. Everything lives in
 * libskiff (src/worker/), so the worker and the app's shared object share one copy of it.
 */
#include "worker/worker.h"

int main(int argc, char **argv)
{
    return skiff__worker_main(argc, argv);
}
