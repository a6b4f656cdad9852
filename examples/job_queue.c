/*
 * job_queue.c - the worked example of docs/client-api.md: a job queue's two handlers, submit
 * (spawns example.train_model from examples/jobs.c and prints the call id) and poll (the result,
 * "running", or the failure), each run from the command line:
 *
 *     build/examples/job_queue submit job-1 2     # fc-...
 *     build/examples/job_queue poll fc-...        # running, then {"job_id":"job-1",...}
 *
 * The functions are the docs' listing verbatim (tests/integration/readme_doc.sh checks it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

/* Submit: returns the call id to hand back to the user, or NULL. */
static char *submit(skiff_client *client, const char *job_id, double seconds)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *train;
    skiff_call *call;
    char *id = NULL;
    if (skiff_function_from_name(client, "example", "train_model", &train, &err) == SKIFF_OK) {
        skiff_value *params = skiff_value_map();
        skiff_map_set(params, "seconds", skiff_value_double(seconds));
        skiff_value *args = skiff_value_list_of(2, skiff_value_string(job_id), params);
        if (skiff_function_spawn(train, args, NULL, &call, &err) == SKIFF_OK) {
            id = strdup(skiff_call_id(call));
            skiff_call_free(call);
        }
        skiff_value_free(args);
        skiff_function_free(train);
    }
    if (!id)
        fprintf(stderr, "%s: %s\n", err.type, err.message);
    skiff_error_clear(&err);
    return id;
}

/* Poll: prints the result, "running", or the failure. */
static void poll_job(skiff_client *client, const char *id)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call;
    skiff_value *result;
    if (skiff_call_from_id(client, id, &call, &err) == SKIFF_OK) {
        int rc = skiff_call_get(call, 0, &result, &err);
        if (rc == SKIFF_OK) {
            char *json = skiff_value_to_json(result);
            printf("%s\n", json);
            free(json);
            skiff_value_free(result);
        } else if (rc == SKIFF_ERR_TIMEOUT) {
            printf("running\n");
        } else {
            printf("failed: %s: %s\n", err.type, err.message);
        }
        skiff_call_free(call);
    }
    skiff_error_clear(&err);
}

int main(int argc, char **argv)
{
    bool is_submit = argc == 4 && !strcmp(argv[1], "submit");
    if (!is_submit && !(argc == 3 && !strcmp(argv[1], "poll"))) {
        fprintf(stderr, "usage: job_queue submit JOB SECONDS | job_queue poll ID\n");
        return 2;
    }
    skiff_client *client;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_client_connect(NULL, &client, &err) != SKIFF_OK) {
        fprintf(stderr, "job_queue: %s\n", err.message);
        skiff_error_clear(&err);
        return 1;
    }
    int status = 0;
    if (is_submit) {
        char *id = submit(client, argv[2], atof(argv[3]));
        if (id)
            printf("%s\n", id);
        status = id ? 0 : 1;
        free(id);
    } else {
        poll_job(client, argv[2]);
    }
    skiff_client_close(client);
    return status;
}
