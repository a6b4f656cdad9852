/*
 * itest_graph.c - the call graph (CALL_GRAPH) through the C API and `skiff graph` against a real
 * skiffd: a spawned call of another-app.cube, which calls my-shared-app.square from inside, has
 * one root input (SUCCESS, the container that ran it) whose child is square's input, across the
 * two apps; a spawn_map's roots are its inputs in order; unknown and malformed ids fail clearly.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("examples/square.c");
    itest_deploy("examples/another_app.c");
}

TEST(nested_call_across_two_apps)
{
    skiff_client *c = itest_connect();
    skiff_function *cube = itest_lookup(c, "another-app", "cube");
    skiff_call *call = itest_spawn_json(cube, "[3]", NULL);
    skiff_value *v = itest_get(call, 30);
    ASSERT_EQ_INT(skiff_value_get_int(v), 27);
    skiff_value_free(v);
    skiff_input_info *roots = NULL;
    size_t n = 0;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_get_call_graph(call, &roots, &n, &err), &err);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(roots[0].call_id, skiff_call_id(call));
    ASSERT_EQ_STR(roots[0].function, "another-app.cube");
    ASSERT_EQ_INT(roots[0].status, SKIFF_INPUT_SUCCESS);
    ASSERT_NOT_NULL(roots[0].container_id);
    ASSERT_EQ_INT(strncmp(roots[0].container_id, "ta-", 3), 0);
    ASSERT_EQ_INT(strncmp(roots[0].input_id, "in-", 3), 0);
    ASSERT_EQ_INT(roots[0].nchildren, 1);
    const skiff_input_info *kid = &roots[0].children[0];
    ASSERT_EQ_STR(kid->function, "my-shared-app.square");
    ASSERT_EQ_INT(kid->status, SKIFF_INPUT_SUCCESS);
    ASSERT_NE_STR(kid->call_id, roots[0].call_id);
    ASSERT_NOT_NULL(kid->container_id);
    ASSERT_NE_STR(kid->container_id, roots[0].container_id);
    ASSERT_EQ_INT(kid->nchildren, 0);
    skiff_call_graph_free(roots, n);

    /* The CLI draws the same tree. */
    struct itest_run r = itest_cli(NULL, "graph", skiff_call_id(call), NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_STR_CONTAINS(r.out, "another-app.cube");
    ASSERT_STR_CONTAINS(r.out, "my-shared-app.square");
    ASSERT_STR_CONTAINS(r.out, "SUCCESS");
    itest_run_free(&r);
    skiff_call_free(call);
    skiff_function_free(cube);
    skiff_client_close(c);
}

TEST(spawn_map_roots_in_order)
{
    skiff_client *c = itest_connect();
    skiff_function *square = itest_lookup(c, "my-shared-app", "square");
    skiff_value *xs = itest_json("[1, 2, 3, 4]");
    const skiff_value *lists[] = {xs};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_map(square, lists, 1, NULL, &call, &err), &err);
    skiff_value *v = NULL;
    ASSERT_SKIFF_OK(skiff_call_get_index(call, 3, 30, &v, &err), &err);
    skiff_value_free(v);
    skiff_input_info *roots = NULL;
    size_t n = 0;
    ASSERT_SKIFF_OK(skiff_call_get_call_graph(call, &roots, &n, &err), &err);
    ASSERT_EQ_INT(n, 4);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(roots[i].index, i);
        ASSERT_EQ_STR(roots[i].function, "my-shared-app.square");
    }
    skiff_call_graph_free(roots, n);
    skiff_call_free(call);
    skiff_value_free(xs);
    skiff_function_free(square);
    skiff_client_close(c);
}

TEST(unknown_and_malformed_ids)
{
    struct itest_run r = itest_cli(NULL, "graph", "fc-01ARZ3NDEKTSV4RRFFQ69G5FAV", NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "NotFoundError");
    itest_run_free(&r);
    r = itest_cli(NULL, "graph", "nope", NULL);
    ASSERT_NE_INT(r.status, 0);
    itest_run_free(&r);
}
