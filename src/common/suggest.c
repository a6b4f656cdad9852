/*
 * suggest.c - "did you mean" (see suggest.h): Levenshtein distance on one row, for the short
 * names of commands, functions and methods.
 */
#include "suggest.h"

#include <stdbool.h>
#include <string.h>

/* Names are short; longer ones are never suggested (and cost nothing). */
#define SUGGEST_MAX_LEN 64

size_t suggest_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[SUGGEST_MAX_LEN + 1];
    if (la >= SUGGEST_MAX_LEN || lb >= SUGGEST_MAX_LEN)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void suggest_init(struct suggest *s, const char *name)
{
    s->name = name;
    s->best = NULL;
    s->best_d = (size_t)-1;
}

void suggest_offer(struct suggest *s, const char *candidate)
{
    size_t n = strlen(s->name);
    size_t d = suggest_distance(s->name, candidate);
    size_t limit = n >= 4 ? 2 : 1;
    bool prefix = n >= 2 && !strncmp(s->name, candidate, n);
    if (d == (size_t)-1 || (d > limit && !prefix) || d >= s->best_d)
        return;
    s->best = candidate;
    s->best_d = d;
}
