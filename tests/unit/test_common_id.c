/*
 * test_common_id.c - unit tests of identifiers (src/common/id.c): the format, validation, the
 * embedded timestamp, uniqueness and creation-order sorting of 100k ids, and uniqueness across
 * threads.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common/id.h"
#include "unit.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

TEST(format)
{
    static const char *const prefixes[] = {"ap", "fu", "fc", "in", "ta", "tk"};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
        char id[ID_SIZE];
        memset(id, '#', sizeof id);
        id_new(id, prefixes[k]);
        ASSERT_EQ_UINT(strlen(id), strlen(prefixes[k]) + 1 + ID_SUFFIX_LEN);
        ASSERT_LT_INT(strlen(id), ID_SIZE);
        ASSERT(!strncmp(id, prefixes[k], 2));
        ASSERT_EQ_INT(id[2], '-');
        for (const char *c = id + 3; *c; c++)
            if (!strchr(crockford, *c))
                FAIL("%s: '%c' is not Crockford base32", id, *c);
        ASSERT(id_valid(id, prefixes[k]));
        ASSERT_FALSE(id_valid(id, k ? "ap" : "fu")); /* another prefix */
    }
}

TEST(validation)
{
    char id[ID_SIZE];
    id_new(id, "fc");
    ASSERT(id_valid(id, "fc"));
    ASSERT_FALSE(id_valid(NULL, "fc"));
    ASSERT_FALSE(id_valid("", "fc"));
    ASSERT_FALSE(id_valid("fc-", "fc"));
    ASSERT_FALSE(id_valid("fc", "fc"));

    char bad[ID_SIZE + 2];
    snprintf(bad, sizeof bad, "%s", id);
    bad[strlen(bad) - 1] = '\0'; /* one short */
    ASSERT_FALSE(id_valid(bad, "fc"));
    snprintf(bad, sizeof bad, "%sA", id); /* one long */
    ASSERT_FALSE(id_valid(bad, "fc"));
    static const char notbase32[] = {'I', 'L', 'O', 'U', 'a', 'z', '-', '_', ' '};
    for (size_t i = 0; i < sizeof notbase32; i++) {
        snprintf(bad, sizeof bad, "%s", id);
        bad[10] = notbase32[i];
        if (id_valid(bad, "fc"))
            FAIL("%s accepted", bad);
    }
    snprintf(bad, sizeof bad, "%s", id);
    bad[2] = '_';
    ASSERT_FALSE(id_valid(bad, "fc"));
    ASSERT_FALSE(id_valid("fc-00000000000000000000000000", "f"));
    ASSERT(id_valid("fc-00000000000000000000000000", "fc"));
    ASSERT(id_valid("fc-ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "fc"));
}

/* The first 10 suffix characters are the creation time in milliseconds. */
TEST(timestamp)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t before = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    char id[ID_SIZE];
    id_new(id, "in");
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t after = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t ms = 0;
    for (int i = 0; i < 10; i++)
        ms = ms << 5 | (uint64_t)(strchr(crockford, id[3 + i]) - crockford);
    ASSERT_LE_UINT(before, ms);
    ASSERT_LE_UINT(ms, after);
}

#define MANY 100000

TEST(unique_and_sorted_100k)
{
    char(*ids)[ID_SIZE] = malloc(sizeof *ids * MANY);
    ASSERT_NOT_NULL(ids);
    for (int i = 0; i < MANY; i++)
        id_new(ids[i], "fc");
    /* Strictly increasing in creation order: hence also all different. */
    for (int i = 1; i < MANY; i++)
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            FAIL("id %d (%s) does not sort after id %d (%s)", i, ids[i], i - 1, ids[i - 1]);
    free(ids);
}

struct batch {
    char (*ids)[ID_SIZE];
    int n;
};

static void *make_ids(void *arg)
{
    struct batch *b = arg;
    for (int i = 0; i < b->n; i++)
        id_new(b->ids[i], "in");
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

TEST(unique_across_threads)
{
    enum { THREADS = 4, PER = 20000 };
    char(*ids)[ID_SIZE] = malloc(sizeof *ids * THREADS * PER);
    ASSERT_NOT_NULL(ids);
    pthread_t t[THREADS];
    struct batch b[THREADS];
    for (int k = 0; k < THREADS; k++) {
        b[k].ids = ids + k * PER;
        b[k].n = PER;
        ASSERT_EQ_INT(pthread_create(&t[k], NULL, make_ids, &b[k]), 0);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < THREADS; k++) /* each thread's ids are in order */
        for (int i = 1; i < PER; i++)
            ASSERT_LT_INT(strcmp(b[k].ids[i - 1], b[k].ids[i]), 0);
    qsort(ids, THREADS * PER, sizeof *ids, cmp_id);
    for (int i = 1; i < THREADS * PER; i++)
        if (!strcmp(ids[i - 1], ids[i]))
            FAIL("duplicate id %s", ids[i]);
    free(ids);
}

TEST(random_bytes)
{
    unsigned char a[32] = {0}, b[32] = {0};
    ASSERT_EQ_INT(id_random(a, sizeof a), 0);
    ASSERT_EQ_INT(id_random(b, sizeof b), 0);
    ASSERT(memcmp(a, b, sizeof a) != 0);
    ASSERT_EQ_INT(id_random(a, 0), 0);
}
