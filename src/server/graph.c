/*
 * graph.c - building and sending a call graph (see graph.h).
 *
 * The tree is built first (msgpack arrays announce their length, and a node's children are only
 * known once both memory and the store have been asked), then packed. Nodes are kept in one
 * growing pool and refer to their children by index, so building allocates rarely; the pool is
 * bounded by GRAPH_MAX_NODES and the depth by GRAPH_MAX_DEPTH, so a runaway fan-out or a cycle
 * made of reused ids cannot make one request unbounded.
 */
#include "graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "calls.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "store.h"

/* Inputs one graph may show: more than any person reads, few enough to answer in milliseconds. */
#define GRAPH_MAX_NODES 10000
/* Levels below the roots: deeper trees are cut (a call chain this deep is a loop). */
#define GRAPH_MAX_DEPTH 32

struct node {
    char input_id[ID_SIZE];
    char call_id[ID_SIZE];
    char container_id[ID_SIZE]; /* "" when none */
    char function[2 * 64 + 2];  /* "app.function" */
    uint32_t index;
    int status;         /* enum call_status */
    size_t first_child; /* children are nodes [first_child, first_child + n_children) */
    size_t n_children;
};

struct graph {
    struct node *nodes;
    size_t n, cap;
    bool nomem;
};

/* A new node (zeroed), or NULL when the pool is full or memory is out. Its index is g->n - 1. */
static struct node *node_new(struct graph *g)
{
    if (g->n == GRAPH_MAX_NODES)
        return NULL;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct node *p = mem_realloc(g->nodes, cap * sizeof *p);
        if (!p) {
            g->nomem = true;
            return NULL;
        }
        g->nodes = p;
        g->cap = cap;
    }
    struct node *nd = &g->nodes[g->n++];
    memset(nd, 0, sizeof *nd);
    return nd;
}

static void node_from_input(struct node *nd, const struct input *in)
{
    const struct call *call = in->call;
    snprintf(nd->input_id, sizeof nd->input_id, "%s", in->id);
    snprintf(nd->call_id, sizeof nd->call_id, "%s", call->id);
    snprintf(nd->container_id, sizeof nd->container_id, "%s", in->ran_on ? in->ran_on : "");
    snprintf(nd->function, sizeof nd->function, "%s.%s", call->fn->app->name, call->fn->name);
    nd->index = in->index;
    nd->status = in->status;
}

static void node_from_row(struct node *nd, const struct graph_row *row)
{
    snprintf(nd->input_id, sizeof nd->input_id, "%s", row->input_id);
    snprintf(nd->call_id, sizeof nd->call_id, "%s", row->call_id);
    snprintf(nd->container_id, sizeof nd->container_id, "%s",
             row->container_id ? row->container_id : "");
    const struct function *fn = row->function ? NULL : apps_function(row->function_id);
    if (row->function)
        snprintf(nd->function, sizeof nd->function, "%s", row->function);
    else
        snprintf(nd->function, sizeof nd->function, "%s.%s", fn ? fn->app->name : "?",
                 fn ? fn->name : "?");
    nd->index = row->index;
    nd->status = row->status;
}

/* Collecting rows from the store: which ones to take. */
struct collect {
    struct graph *g;
    const char *skip_in_memory; /* skip rows of calls still in memory (they are read there) */
};

static void take_row(void *arg, const struct graph_row *row)
{
    struct collect *k = arg;
    if (k->skip_in_memory) {
        const struct call *call = calls_find(row->call_id);
        if (call) {
            /* Still in memory: its inputs are read there, unless this one has left. */
            if (calls_input_at(call, row->index))
                return;
        }
    }
    struct node *nd = node_new(k->g);
    if (nd)
        node_from_row(nd, row);
}

/* Appends the nodes of call's inputs in memory (in index order). */
static void add_call_inputs(struct graph *g, const struct call *call)
{
    for (uint32_t i = call->base; i < call->n_inputs; i++) {
        const struct input *in = calls_input_at(call, i);
        if (!in)
            continue;
        struct node *nd = node_new(g);
        if (!nd)
            return;
        node_from_input(nd, in);
    }
}

/* Adds the children of node at index at (and theirs, to depth). */
static void add_children(struct graph *g, size_t at, int depth)
{
    if (depth > GRAPH_MAX_DEPTH)
        return;
    char parent[ID_SIZE];
    snprintf(parent, sizeof parent, "%s", g->nodes[at].input_id);
    size_t first = g->n;
    const struct list_node *kids = calls_children(parent);
    if (kids)
        for (const struct list_node *p = kids->next; p != kids; p = p->next)
            add_call_inputs(g, container_of(p, struct call, sibling));
    struct collect k = {g, parent};
    if (store_each_graph(NULL, parent, take_row, &k) < 0)
        log_warn("call graph: cannot read the children of %s", parent);
    /* g->nodes may have moved: index, never hold pointers across node_new. */
    g->nodes[at].first_child = first;
    g->nodes[at].n_children = g->n - first;
    size_t end = g->n;
    for (size_t i = first; i < end; i++)
        add_children(g, i, depth + 1);
}

/* Status names of docs/protocol.md ("Input nodes"). */
static const char *status_name(int st)
{
    switch (st) {
    case ST_SUCCESS:
        return "SUCCESS";
    case ST_FAILURE:
        return "FAILURE";
    case ST_TERMINATED:
        return "TERMINATED";
    case ST_TIMEOUT:
        return "TIMEOUT";
    case ST_INIT_FAILURE:
        return "INIT_FAILURE";
    default:
        return "PENDING";
    }
}

static void pack_nodes(struct wire_writer *w, const struct graph *g, size_t first, size_t n)
{
    wire_pack_array(w, n);
    for (size_t i = first; i < first + n; i++) {
        const struct node *nd = &g->nodes[i];
        wire_pack_map(w, 7);
        wire_pack_str(w, "input_id");
        wire_pack_str(w, nd->input_id);
        wire_pack_str(w, "call_id");
        wire_pack_str(w, nd->call_id);
        wire_pack_str(w, "index");
        wire_pack_int(w, nd->index);
        wire_pack_str(w, "container_id");
        wire_pack_str(w, nd->container_id[0] ? nd->container_id : NULL);
        wire_pack_str(w, "status");
        wire_pack_str(w, status_name(nd->status));
        wire_pack_str(w, "function");
        wire_pack_str(w, nd->function);
        wire_pack_str(w, "children");
        pack_nodes(w, g, nd->first_child, nd->n_children);
    }
}

static int by_index(const void *a, const void *b)
{
    const struct node *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Appends an ERROR reply for rid to out. */
static void fail(struct buf *out, uint64_t rid, skiff_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct buf *out, uint64_t rid, skiff_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (wire_error_msg(out, rid, code, NULL, msg) != SKIFF_OK)
        log_warn("no room for the error reply \"%s\"", msg);
}

void graph_build(struct buf *out, uint64_t rid, const char *call_id)
{
    if (!id_valid(call_id, "fc")) {
        fail(out, rid, SKIFF_ERR_INVALID, "'%s' is not a function call id (fc-...)", call_id);
        return;
    }
    store_flush(); /* rows queued this iteration become readable */
    struct graph g = {0};
    const struct call *call = calls_find(call_id);
    if (call)
        add_call_inputs(&g, call);
    struct collect k = {&g, call ? call_id : NULL};
    if (store_each_graph(call_id, NULL, take_row, &k) < 0) {
        mem_free(g.nodes);
        fail(out, rid, SKIFF_ERR_INTERNAL, "the server could not read the graph of %s", call_id);
        return;
    }
    if (!call && g.n == 0) {
        struct stored_call sc;
        int found = store_get_call(call_id, &sc);
        if (found > 0)
            store_call_clear(&sc);
        mem_free(g.nodes);
        if (found == 0)
            fail(out, rid, SKIFF_ERR_NOT_FOUND, "function call %s does not exist", call_id);
        else
            fail(out, rid, SKIFF_ERR_INTERNAL, "function call %s has no recorded inputs", call_id);
        return;
    }
    size_t roots = g.n;
    qsort(g.nodes, roots, sizeof *g.nodes, by_index);
    for (size_t i = 0; i < roots; i++)
        add_children(&g, i, 1);
    if (g.nomem) {
        mem_free(g.nodes);
        fail(out, rid, SKIFF_ERR_NOMEM, "out of memory building the graph of %s", call_id);
        return;
    }
    struct wire_writer w;
    wire_begin(&w, out, OP_OK, rid, 1);
    wire_key(&w, "inputs");
    pack_nodes(&w, &g, 0, roots);
    if (wire_end(&w) != SKIFF_OK)
        fail(out, rid, SKIFF_ERR_NOMEM, "out of memory sending the graph of %s", call_id);
    mem_free(g.nodes);
}

void graph_request(struct conn *c, uint64_t rid, const char *call_id)
{
    graph_build(conn_out(c), rid, call_id);
}
