/*
 * graph.h - the call graph of a function call (CALL_GRAPH, docs/protocol.md "Input nodes").
 *
 * The roots are the inputs of the call asked for; below each input are the inputs of the calls
 * made while it ran (their parent_input_id), across apps, to any depth. What is still in memory
 * (pending and running inputs, calls in progress) is read from calls.c; what has finished and
 * left memory from the store: its graph table, where every input of a call made from inside a
 * function is recorded when it ends, and a durable call's own tables (which keep the container
 * that ran each input) for the roots. Best effort: bounded in depth and size.
 */
#ifndef SKIFF_SERVER_GRAPH_H
#define SKIFF_SERVER_GRAPH_H

#include <stdint.h>

#include "common/buf.h"

struct conn;

/* Appends to out the reply frame to CALL_GRAPH for call_id with request id rid: OK {inputs:
 * [node...]}, or ERROR (NotFoundError, InvalidError, ...). For in-process askers (HTTP). */
void graph_build(struct buf *out, uint64_t rid, const char *call_id);

/* Answers CALL_GRAPH for call_id on c: OK {inputs: [node...]}, or NotFoundError. */
void graph_request(struct conn *c, uint64_t rid, const char *call_id);

#endif
