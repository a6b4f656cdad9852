/*
 * id.c - sortable unique identifiers (see id.h).
 */
#include "id.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned char last_rand[10]; /* the 80-bit tail of the last id */
/* Kernel randomness fetched ahead, so a busy server does not make a getrandom call for each new
 * millisecond's id (one call fills 25 of them). Guarded by lock. */
static unsigned char pool[250];
static size_t pool_left;

int id_random(void *p, size_t n)
{
    unsigned char *c = p;
    while (n) {
        ssize_t r = getrandom(c, n, 0);
        if (r < 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

void id_new(char out[ID_SIZE], const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    unsigned char r[10];

    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        /* Same (or an earlier: the clock stepped back) millisecond: count up from the last. */
        ms = last_ms;
        for (int i = 9; i >= 0 && ++last_rand[i] == 0; i--)
            ;
    } else {
        if (pool_left < sizeof last_rand) {
            if (id_random(pool, sizeof pool) < 0)
                memset(pool, 0, sizeof pool); /* never: getrandom does not fail here */
            pool_left = sizeof pool;
        }
        memcpy(last_rand, pool + sizeof pool - pool_left, sizeof last_rand);
        pool_left -= sizeof last_rand;
        last_rand[0] &= 0x7f; /* room to count up before overflowing */
        last_ms = ms;
    }
    memcpy(r, last_rand, sizeof r);
    pthread_mutex_unlock(&lock);

    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    out[p++] = '-';
    /* 48-bit time: 10 characters of 5 bits (the first holds 3). */
    for (int i = 9; i >= 0; i--) {
        out[p + (size_t)i] = alphabet[ms & 31];
        ms >>= 5;
    }
    p += 10;
    /* 80 random bits: 16 characters. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = hi << 8 | r[i];
    for (int i = 5; i < 10; i++)
        lo = lo << 8 | r[i];
    for (int i = 7; i >= 0; i--) {
        out[p + (size_t)i] = alphabet[hi & 31];
        hi >>= 5;
        out[p + 8 + (size_t)i] = alphabet[lo & 31];
        lo >>= 5;
    }
    out[p + 16] = '\0';
}

bool id_valid(const char *s, const char *prefix)
{
    if (!s)
        return false;
    size_t p = strlen(prefix);
    if (strncmp(s, prefix, p) || s[p] != '-' || strlen(s + p + 1) != ID_SUFFIX_LEN)
        return false;
    for (const char *c = s + p + 1; *c; c++)
        if (!strchr(alphabet, *c))
            return false;
    return true;
}
