/* bpe.h — the parts both BPE tokenizers share: a byte-string -> id hash map, a merge table
 * keyed by id pairs, and the merge loop itself.
 *
 * Symbols are token ids throughout; strings are only needed while loading. The merge loop
 * applies the lowest-ranked adjacent pair first (leftmost on ties), which is what Hugging Face's
 * BPE does and what OpenCLIP's "merge every occurrence of the best pair" pass amounts to for
 * well-formed merge files. It runs in O(n log n) with a binary heap. */
#ifndef TOK_BPE_H
#define TOK_BPE_H

#include <stddef.h>
#include <stdint.h>

/* Open-addressing map from byte strings to int32 values. Keys are copied into an internal pool.
 * A slot carries the hash, key location and value, so a lookup touches one slot and the key. */
typedef struct tok_strmap_slot {
    uint32_t hash; /* upper hash bits, compared before the key */
    uint32_t len;  /* UINT32_MAX = empty */
    uint32_t off;  /* key offset in pool */
    int32_t val;
} tok_strmap_slot;

typedef struct tok_strmap {
    tok_strmap_slot *slots;
    size_t mask, n; /* slot count - 1 (power of two); entries */
    char *pool;
    size_t pool_n, pool_cap;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t expected);
/* Inserts or overwrites (the last value for a key wins, as in a Python dict built in order). */
int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t val);
/* Returns the value, or -1 if absent. */
int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len);
void tok_strmap_free(tok_strmap *m);
/* Looks up n keys (base + off[i], len[i] bytes) into vals[i] (-1 if absent), prefetching ahead
 * so that the cache misses of a large table overlap; used when loading vocabularies. */
void tok_strmap_get_many(const tok_strmap *m, const char *base, const uint32_t *off, const uint32_t *len,
                         size_t n, int32_t *vals);

/* Inserts n keys in order (later duplicates win), prefetching ahead like tok_strmap_get_many. */
int tok_strmap_put_many(tok_strmap *m, const char *base, const uint32_t *off, const uint32_t *len,
                        const int32_t *vals, size_t n);

/* Merge table: (left id, right id) -> (rank, merged id). */
typedef struct tok_pair_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank, merged;
} tok_pair_slot;

typedef struct tok_pairmap {
    tok_pair_slot *slots;
    size_t mask, n;
} tok_pairmap;

int tok_pairmap_init(tok_pairmap *m, size_t expected);
/* Inserts or overwrites (a repeated pair keeps its last rank, like dict(zip(merges, ranks))). */
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
void tok_pairmap_free(tok_pairmap *m);
/* Hint that (a, b) will be inserted or looked up soon. */
void tok_pairmap_prefetch(const tok_pairmap *m, int32_t a, int32_t b);

/* Reusable scratch for tok_bpe_merge; zero-initialise, free with tok_bpe_scratch_free. */
typedef struct tok_bpe_scratch {
    int32_t *prev, *next;
    uint64_t *heap; /* (rank << 32 | position) */
    size_t cap, heap_cap;
} tok_bpe_scratch;
void tok_bpe_scratch_free(tok_bpe_scratch *s);

/* Merges syms[0..n) in place; returns the new count through *n_out. GLIMPSE_OK or NOMEM. */
int tok_bpe_merge(const tok_pairmap *m, int32_t *syms, size_t n, size_t *n_out, tok_bpe_scratch *s);

#endif
