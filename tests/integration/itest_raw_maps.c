/*
 * itest_raw_maps.c - the server's side of maps (docs/protocol.md, "Maps"), frame by frame
 * against a real skiffd: MAP_START / MAP_INPUTS / OUTPUTS for maps and spawn_maps, every output
 * delivered once with its index, failures in their input's place, inputs strictly in order, an
 * empty map, a map belongs to its connection, a map refuses inputs past a million unread ones,
 * cancel, GET by index of a spawn_map before and after a kill -9 restart, and a container
 * killed mid-map (its inputs run again elsewhere).
 */
#include "itest.h"

#include "rawproto.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

/* Starts a map (spawn for a spawn_map) of itest-probe's fn; writes its id to id. */
static void start_map(struct raw *r, const char *fn, bool spawn, char id[ID_SIZE])
{
    uint64_t rid = ++r->next_rid;
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_MAP_START, rid, 3);
    wire_str(&w, "app", "itest-probe");
    wire_str(&w, "function", fn);
    wire_bool(&w, "spawn", spawn);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(r);
    raw_expect_ok(r, rid);
    raw_str(r, "call_id", id, ID_SIZE);
    ASSERT_TRUE(id_valid(id, "fc"));
}

/* Sends MAP_INPUTS of n inputs from start, input i's arguments made by args_of(i) (NULL: [1]
 * for each); returns rid (the reply is not read). */
static uint64_t send_inputs(struct raw *r, const char *id, int start, int n, bool last,
                            void (*args_of)(int i, char *json, size_t size))
{
    uint64_t rid = ++r->next_rid;
    struct buf a;
    buf_init(&a, 0);
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_MAP_INPUTS, rid, 4);
    wire_str(&w, "call_id", id);
    wire_int(&w, "start", start);
    wire_bool(&w, "last", last);
    wire_key(&w, "args");
    wire_pack_array(&w, (size_t)n);
    for (int i = start; i < start + n; i++) {
        if (args_of || i == start) {
            char json[256] = "[1]";
            if (args_of)
                args_of(i, json, sizeof json);
            raw_args(json, &a);
        }
        msgpack_pack_bin_with_body(&w.pk, a.data, a.len);
    }
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    buf_deinit(&a);
    raw_send(r);
    return rid;
}

static uint64_t send_outputs(struct raw *r, const char *id, int from)
{
    uint64_t rid = ++r->next_rid;
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_OUTPUTS, rid, 2);
    wire_str(&w, "call_id", id);
    wire_int(&w, "from", from);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(r);
    return rid;
}

/* What a map's OUTPUTS stream delivered, by index. */
struct outs {
    int n;                /* inputs */
    int *seen;            /* times each index was delivered */
    int64_t *value;       /* the int result, or -1 */
    int *code;            /* 0 success, else the error code */
    int final_op;         /* OP_OK or OP_ERROR ending the stream */
    int64_t count;        /* the final OK's count */
    int final_code;       /* the final ERROR's code */
    uint64_t ack_rids[4]; /* replies to other requests that may come among the frames */
    int n_acks, acked;
};

/* Counts the items of the STREAM frame in r->msg into o. */
static void take_items(struct raw *r, struct outs *o)
{
    ASSERT_EQ_INT(r->msg.op, OP_STREAM);
    const msgpack_object *items = wire_get(&r->msg, "items");
    ASSERT_NOT_NULL(items);
    ASSERT_EQ_INT(items->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t k = 0; k < items->via.array.size; k++) {
        const msgpack_object *it = &items->via.array.ptr[k];
        ASSERT_EQ_INT(it->type, MSGPACK_OBJECT_ARRAY);
        ASSERT_GE_INT(it->via.array.size, 3);
        int64_t idx = (int64_t)it->via.array.ptr[0].via.u64;
        ASSERT_LT_INT(idx, o->n);
        o->seen[idx]++;
        o->code[idx] = (int)it->via.array.ptr[1].via.u64;
        if (o->code[idx] == 0) {
            skiff_value *v = NULL;
            skiff_error err = SKIFF_ERROR_INIT;
            const msgpack_object *b = &it->via.array.ptr[2];
            ASSERT_EQ_INT(b->type, MSGPACK_OBJECT_BIN);
            ASSERT_EQ_INT(codec_decode_value(b->via.bin.ptr, b->via.bin.size, &v, &err), SKIFF_OK);
            o->value[idx] = skiff_value_type(v) == SKIFF_INT ? skiff_value_get_int(v) : -1;
            skiff_value_free(v);
        } else {
            ASSERT_EQ_INT(it->via.array.size, 5);
        }
    }
}

/* Reads STREAM frames for rid until its final reply (other rids' frames must not come). */
static void read_outputs(struct raw *r, uint64_t rid, struct outs *o, double seconds)
{
    for (;;) {
        if (!raw_read(r, seconds))
            FAIL("the OUTPUTS stream did not end");
        bool other = false;
        for (int k = 0; k < o->n_acks; k++)
            if (r->msg.rid == o->ack_rids[k])
                other = true;
        if (other) {
            ASSERT_EQ_INT(r->msg.op, OP_OK);
            o->acked++;
            continue;
        }
        ASSERT_EQ_INT((long long)r->msg.rid, (long long)rid);
        if (r->msg.op == OP_OK) {
            o->final_op = OP_OK;
            ASSERT_TRUE(wire_get_int(&r->msg, "count", &o->count));
            return;
        }
        if (r->msg.op == OP_ERROR) {
            skiff_error err = SKIFF_ERROR_INIT;
            wire_get_error(&r->msg, &err);
            o->final_op = OP_ERROR;
            o->final_code = err.code;
            skiff_error_clear(&err);
            return;
        }
        take_items(r, o);
    }
}

static void outs_init(struct outs *o, int n)
{
    memset(o, 0, sizeof *o);
    o->n = n;
    o->seen = calloc((size_t)n + 1, sizeof *o->seen);
    o->value = calloc((size_t)n + 1, sizeof *o->value);
    o->code = calloc((size_t)n + 1, sizeof *o->code);
}

static void outs_free(struct outs *o)
{
    free(o->seen);
    free(o->value);
    free(o->code);
}

static void args_echo_i(int i, char *json, size_t size)
{
    snprintf(json, size, "[%d]", i);
}

/* Odd inputs have no argument: the signature binding fails them with a TypeError. */
static void args_echo_or_nothing(int i, char *json, size_t size)
{
    snprintf(json, size, i % 2 ? "[]" : "[%d]", i);
}

TEST(map_delivers_every_output_once_with_its_index)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    uint64_t out = send_outputs(&r, id, 0); /* subscribe first: outputs stream as they come */
    const int n = 300;
    uint64_t a = send_inputs(&r, id, 0, 100, false, args_echo_i);
    uint64_t b = send_inputs(&r, id, 100, 150, false, args_echo_i);
    uint64_t c = send_inputs(&r, id, 250, 50, true, args_echo_i);
    struct outs o;
    outs_init(&o, n);
    o.ack_rids[0] = a;
    o.ack_rids[1] = b;
    o.ack_rids[2] = c;
    o.n_acks = 3;
    read_outputs(&r, out, &o, 20);
    ASSERT_EQ_INT(o.acked, 3);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, n);
    for (int i = 0; i < n; i++) {
        if (o.seen[i] != 1)
            FAIL("output %d delivered %d times", i, o.seen[i]);
        ASSERT_EQ_INT(o.value[i], i);
    }
    outs_free(&o);
    raw_close(&r);
}

TEST(map_values_and_failures_in_place)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    const int n = 40;
    raw_expect_ok(&r, send_inputs(&r, id, 0, n, true, args_echo_or_nothing));
    struct outs o;
    outs_init(&o, n);
    read_outputs(&r, send_outputs(&r, id, 0), &o, 20);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, n);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(o.seen[i], 1);
        if (i % 2) {
            ASSERT_EQ_INT(o.code[i], SKIFF_ERR_USER);
        } else {
            ASSERT_EQ_INT(o.code[i], 0);
            ASSERT_EQ_INT(o.value[i], i);
        }
    }
    outs_free(&o);
    raw_close(&r);
}

TEST(map_inputs_in_order_only)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    free(raw_expect_error(&r, send_inputs(&r, id, 5, 1, false, args_echo_i), SKIFF_ERR_INVALID));
    raw_expect_ok(&r, send_inputs(&r, id, 0, 2, false, args_echo_i));
    /* A repeat of the same range is refused: inputs are never repeated. */
    free(raw_expect_error(&r, send_inputs(&r, id, 0, 2, false, args_echo_i), SKIFF_ERR_INVALID));
    raw_expect_ok(&r, send_inputs(&r, id, 2, 1, true, args_echo_i));
    char *m =
        raw_expect_error(&r, send_inputs(&r, id, 3, 1, false, args_echo_i), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(m, "no more");
    free(m);
    /* Unknown and malformed call ids. */
    free(raw_expect_error(
        &r, send_inputs(&r, "fc-01ARZ3NDEKTSV4RRFFQ69G5FAV", 0, 1, false, args_echo_i),
        SKIFF_ERR_NOT_FOUND));
    free(
        raw_expect_error(&r, send_inputs(&r, "nope", 0, 1, false, args_echo_i), SKIFF_ERR_INVALID));
    struct outs o;
    outs_init(&o, 3);
    read_outputs(&r, send_outputs(&r, id, 0), &o, 20);
    ASSERT_EQ_INT(o.count, 3);
    outs_free(&o);
    raw_close(&r);
}

TEST(live_map_holds_a_bounded_number_of_unread_inputs)
{
    /* PROTO_MAP_HELD_MAX inputs (a million) without reading a single output: the next is
     * refused with a clear error, and nothing already added is lost. */
    enum { chunk = 100000, held = PROTO_MAP_HELD_MAX };
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    for (int start = 0; start < held; start += chunk)
        raw_expect_ok(&r, send_inputs(&r, id, start, chunk, false, NULL));
    char *m = raw_expect_error(&r, send_inputs(&r, id, held, 1, true, NULL),
                               SKIFF_ERR_RESOURCE_EXHAUSTED);
    ASSERT_STR_CONTAINS(m, "read OUTPUTS before adding more");
    free(m);
    /* Reading outputs makes room: once the first ones came, the last input is taken. */
    struct outs o;
    outs_init(&o, held + 1);
    uint64_t out = send_outputs(&r, id, 0);
    ASSERT_TRUE(raw_read(&r, 30));
    ASSERT_EQ_INT((long long)r.msg.rid, (long long)out);
    take_items(&r, &o);
    o.ack_rids[o.n_acks++] = send_inputs(&r, id, held, 1, true, NULL);
    read_outputs(&r, out, &o, 60);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, held + 1);
    ASSERT_EQ_INT(o.acked, 1);
    for (int i = 0; i <= held; i++)
        if (o.seen[i] != 1 || o.value[i] != 1)
            FAIL("output %d: delivered %d times, value %lld", i, o.seen[i], (long long)o.value[i]);
    outs_free(&o);
    raw_close(&r);
}

TEST(map_args_must_be_bin_payloads)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    uint64_t rid = ++r.next_rid;
    struct wire_writer w;
    wire_begin(&w, &r.out, OP_MAP_INPUTS, rid, 3);
    wire_str(&w, "call_id", id);
    wire_int(&w, "start", 0);
    wire_key(&w, "args");
    wire_pack_array(&w, 1);
    wire_pack_str(&w, "not a payload");
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(&r);
    free(raw_expect_error(&r, rid, SKIFF_ERR_INVALID));
    raw_close(&r);
}

TEST(empty_map_ends_at_once)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    raw_expect_ok(&r, send_inputs(&r, id, 0, 0, true, args_echo_i));
    struct outs o;
    outs_init(&o, 1);
    read_outputs(&r, send_outputs(&r, id, 0), &o, 5);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, 0);
    outs_free(&o);
    raw_close(&r);
}

TEST(map_belongs_to_its_connection)
{
    struct raw r, other;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    raw_open(&other);
    raw_expect_ok(&other, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", false, id);
    free(raw_expect_error(&other, send_outputs(&other, id, 0), SKIFF_ERR_INVALID));
    free(raw_expect_error(&other, send_inputs(&other, id, 0, 1, true, args_echo_i),
                          SKIFF_ERR_INVALID));
    raw_close(&other);
    raw_close(&r);
}

static void args_sleep_200(int i, char *json, size_t size)
{
    (void)i;
    snprintf(json, size, "[200]");
}

TEST(cancelled_map_ends_its_stream_with_cancelled)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "sleep_ms", false, id);
    raw_expect_ok(&r, send_inputs(&r, id, 0, 20, true, args_sleep_200));
    uint64_t out = send_outputs(&r, id, 0);
    uint64_t rid = ++r.next_rid;
    struct wire_writer w;
    wire_begin(&w, &r.out, OP_CANCEL, rid, 1);
    wire_str(&w, "call_id", id);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(&r);
    bool ended = false, acked = false;
    while (!ended || !acked) {
        ASSERT_TRUE(raw_read(&r, 20));
        if (r.msg.rid == rid) {
            ASSERT_EQ_INT(r.msg.op, OP_OK);
            acked = true;
        } else {
            ASSERT_EQ_INT((long long)r.msg.rid, (long long)out);
            if (r.msg.op == OP_ERROR) {
                skiff_error err = SKIFF_ERROR_INIT;
                wire_get_error(&r.msg, &err);
                ASSERT_EQ_INT(err.code, SKIFF_ERR_CANCELLED);
                skiff_error_clear(&err);
                ended = true;
            } else {
                ASSERT_EQ_INT(r.msg.op, OP_STREAM);
            }
        }
    }
    /* The server carries on. */
    start_map(&r, "echo", false, id);
    raw_expect_ok(&r, send_inputs(&r, id, 0, 3, true, args_echo_i));
    struct outs o;
    outs_init(&o, 3);
    read_outputs(&r, send_outputs(&r, id, 0), &o, 20);
    ASSERT_EQ_INT(o.count, 3);
    outs_free(&o);
    raw_close(&r);
}

/* GET input index of call id on r: the int result. */
static int64_t get_index(struct raw *r, const char *id, int64_t index)
{
    uint64_t rid = ++r->next_rid;
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_GET, rid, 3);
    wire_str(&w, "call_id", id);
    wire_int(&w, "timeout_ms", -1);
    wire_int(&w, "index", index);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(r);
    raw_expect_ok(r, rid);
    const char *p;
    size_t n;
    ASSERT_TRUE(wire_get_bin(&r->msg, "value", &p, &n));
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(codec_decode_value(p, n, &v, &err), SKIFF_OK);
    int64_t x = skiff_value_get_int(v);
    skiff_value_free(v);
    return x;
}

TEST(spawn_map_get_by_index_and_read_from_anywhere)
{
    struct raw r, other;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "echo", true, id);
    raw_expect_ok(&r, send_inputs(&r, id, 0, 6, false, args_echo_i));
    int64_t count = 0;
    ASSERT_TRUE(wire_get_int(&r.msg, "count", &count));
    ASSERT_EQ_INT(count, 6);
    raw_expect_ok(&r, send_inputs(&r, id, 6, 4, true, args_echo_i));
    ASSERT_EQ_INT(get_index(&r, id, 7), 7);
    /* GET needs an index, in range. */
    uint64_t rid = ++r.next_rid;
    struct wire_writer w;
    wire_begin(&w, &r.out, OP_GET, rid, 2);
    wire_str(&w, "call_id", id);
    wire_int(&w, "timeout_ms", -1);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(&r);
    free(raw_expect_error(&r, rid, SKIFF_ERR_INVALID));
    rid = ++r.next_rid;
    wire_begin(&w, &r.out, OP_GET, rid, 3);
    wire_str(&w, "call_id", id);
    wire_int(&w, "timeout_ms", -1);
    wire_int(&w, "index", 10);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(&r);
    free(raw_expect_error(&r, rid, SKIFF_ERR_NOT_FOUND));
    /* Another connection reads every output, from an index on. */
    raw_open(&other);
    raw_expect_ok(&other, 1);
    struct outs o;
    outs_init(&o, 10);
    read_outputs(&other, send_outputs(&other, id, 2), &o, 20);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, 10);
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ_INT(o.seen[i], i >= 2 ? 1 : 0);
        if (i >= 2)
            ASSERT_EQ_INT(o.value[i], i);
    }
    outs_free(&o);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ_INT(get_index(&other, id, i), i);
    raw_close(&other);
    raw_close(&r);
}

static void args_sleep_50_i(int i, char *json, size_t size)
{
    snprintf(json, size, "[50]");
    (void)i;
}

/* A server of the test's own: it is killed and restarted (the file's server is shared with the
 * other tests, which run in processes of their own). */
static struct itest_server own;

TEST(spawn_map_survives_kill9)
{
    itest_server_start(&own, NULL);
    itest_deploy("tests/integration/apps/probe.c");
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "sleep_ms", true, id);
    raw_expect_ok(&r, send_inputs(&r, id, 0, 40, true, args_sleep_50_i));
    raw_close(&r);
    itest_server_kill9(&own);
    itest_server_start(&own, NULL);
    raw_open(&r);
    raw_expect_ok(&r, 1);
    struct outs o;
    outs_init(&o, 40);
    read_outputs(&r, send_outputs(&r, id, 0), &o, 60);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, 40);
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ_INT(o.seen[i], 1);
        ASSERT_EQ_INT(o.code[i], 0);
        ASSERT_GT_INT(o.value[i], 1); /* the pid of the container that ran it */
    }
    outs_free(&o);
    ASSERT_GT_INT(get_index(&r, id, 39), 1);
    raw_close(&r);
    itest_server_stop(&own);
}

static void args_sleep_100(int i, char *json, size_t size)
{
    (void)i;
    snprintf(json, size, "[100]");
}

TEST(container_killed_mid_map_loses_nothing)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    char id[ID_SIZE];
    start_map(&r, "sleep_ms", false, id);
    const int n = 40;
    raw_expect_ok(&r, send_inputs(&r, id, 0, n, true, args_sleep_100));
    uint64_t out = send_outputs(&r, id, 0);
    /* Once containers run, kill one from outside. */
    skiff_value *list = NULL;
    int64_t victim = 0;
    for (int tries = 0; tries < 200 && !victim; tries++) {
        list = itest_container_list();
        for (size_t i = 0; i < skiff_list_len(list) && !victim; i++) {
            skiff_value *ct = skiff_list_get(list, i);
            const char *fn = skiff_value_get_string(skiff_map_get(ct, "function"), NULL);
            const char *state = skiff_value_get_string(skiff_map_get(ct, "state"), NULL);
            if (fn && !strcmp(fn, "sleep_ms") && state && !strcmp(state, "busy"))
                victim = skiff_value_get_int(skiff_map_get(ct, "pid"));
        }
        skiff_value_free(list);
        if (!victim)
            itest_sleep(0.02);
    }
    ASSERT_GT_INT(victim, 1);
    ASSERT_EQ_INT(kill((pid_t)victim, SIGKILL), 0);
    struct outs o;
    outs_init(&o, n);
    read_outputs(&r, out, &o, 60);
    ASSERT_EQ_INT(o.final_op, OP_OK);
    ASSERT_EQ_INT(o.count, n);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(o.seen[i], 1);
        if (o.code[i] != 0)
            FAIL("input %d failed with code %d after a container was killed", i, o.code[i]);
    }
    outs_free(&o);
    raw_close(&r);
}
