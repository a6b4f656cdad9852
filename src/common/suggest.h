/*
 * suggest.h - "did you mean": the nearest of some candidate names to a name that matched none.
 *
 *     struct suggest s;
 *     suggest_init(&s, typed);
 *     for (each candidate) suggest_offer(&s, candidate);
 *     if (s.best) ... "did you mean '%s'?", s.best
 *
 * Near means at most two edits (insert, delete, substitute) for names of four or more
 * characters, one for shorter ones, or the typed name being a prefix of the candidate: a typo
 * or an abbreviation, not another word. Ties keep the first candidate offered.
 */
#ifndef SKIFF_COMMON_SUGGEST_H
#define SKIFF_COMMON_SUGGEST_H

#include <stddef.h>

struct suggest {
    const char *name; /* what was typed (borrowed) */
    const char *best; /* OUT: the nearest candidate so far (borrowed from the caller), or NULL */
    size_t best_d;    /* its distance */
};

/* Starts a search for names near name (borrowed until the search is done). */
void suggest_init(struct suggest *s, const char *name);
/* Considers one candidate (borrowed: s->best may point at it). */
void suggest_offer(struct suggest *s, const char *candidate);
/* The edit distance of a and b, or (size_t)-1 when either is 64 bytes or longer. */
size_t suggest_distance(const char *a, const char *b);

#endif
