/* bpe.c — hash maps for vocabularies and merges, and the heap-driven merge loop (see bpe.h). */
#include "text/bpe.h"

#include <string.h>

#include "core/common.h"

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: loading hashes each key once, so simple is fine */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    /* FNV's multiply only carries upward, so mix the high bits down before masking */
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ---- tok_strmap ---- */

#define EMPTY_LEN UINT32_MAX

static tok_strmap_slot *strmap_slots(size_t n) {
    tok_strmap_slot *s = gl_malloc(n * sizeof *s);
    if (s)
        for (size_t i = 0; i < n; i++) s[i].len = EMPTY_LEN;
    return s;
}

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    if (expected > ((size_t)1 << 28)) return GLIMPSE_ERR_TOO_LARGE;
    size_t slots = pow2_at_least(expected + expected / 2 + 1); /* load factor <= 2/3 */
    m->mask = slots - 1;
    m->slots = strmap_slots(slots);
    m->pool_cap = 1 << 16;
    m->pool = gl_malloc(m->pool_cap);
    if (!m->slots || !m->pool) {
        tok_strmap_free(m);
        return GLIMPSE_ERR_NOMEM;
    }
    return GLIMPSE_OK;
}

void tok_strmap_free(tok_strmap *m) {
    gl_free(m->slots);
    gl_free(m->pool);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const tok_strmap *m, uint64_t h, const void *key, size_t len) {
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & m->mask;
    for (;;) {
        const tok_strmap_slot *s = &m->slots[i];
        if (s->len == EMPTY_LEN) return i;
        if (s->hash == tag && s->len == len && !memcmp(m->pool + s->off, key, len)) return i;
        i = (i + 1) & m->mask;
    }
}

static int strmap_grow(tok_strmap *m) {
    size_t slots = (m->mask + 1) * 2;
    tok_strmap_slot *ns = strmap_slots(slots);
    if (!ns) return GLIMPSE_ERR_NOMEM;
    for (size_t i = 0; i <= m->mask; i++) {
        tok_strmap_slot s = m->slots[i];
        if (s.len == EMPTY_LEN) continue;
        size_t j = (size_t)hash_bytes(m->pool + s.off, s.len) & (slots - 1);
        while (ns[j].len != EMPTY_LEN) j = (j + 1) & (slots - 1);
        ns[j] = s;
    }
    gl_free(m->slots);
    m->slots = ns;
    m->mask = slots - 1;
    return GLIMPSE_OK;
}

static int strmap_put_h(tok_strmap *m, uint64_t h, const void *key, size_t len, int32_t val) {
    if (len >= 0xFFFFFF) return GLIMPSE_ERR_TOO_LARGE;
    size_t i = strmap_find(m, h, key, len);
    if (m->slots[i].len != EMPTY_LEN) {
        m->slots[i].val = val;
        return GLIMPSE_OK;
    }
    if ((m->n + 1) * 3 > (m->mask + 1) * 2) {
        int rc = strmap_grow(m);
        if (rc) return rc;
        i = strmap_find(m, h, key, len);
    }
    if (m->pool_n + len > m->pool_cap) {
        size_t cap = m->pool_cap;
        while (cap < m->pool_n + len) cap *= 2;
        if (cap > 0xFFFFFFFFu) return GLIMPSE_ERR_TOO_LARGE;
        char *p = gl_realloc(m->pool, cap);
        if (!p) return GLIMPSE_ERR_NOMEM;
        m->pool = p;
        m->pool_cap = cap;
    }
    if (len) memcpy(m->pool + m->pool_n, key, len);
    m->slots[i] = (tok_strmap_slot){(uint32_t)(h >> 32), (uint32_t)len, (uint32_t)m->pool_n, val};
    m->pool_n += len;
    m->n++;
    return GLIMPSE_OK;
}

int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t val) {
    return strmap_put_h(m, hash_bytes(key, len), key, len, val);
}

int tok_strmap_put_many(tok_strmap *m, const char *base, const uint32_t *off, const uint32_t *len,
                        const int32_t *vals, size_t n) {
    enum { AHEAD = 8 };
    uint64_t ring[AHEAD];
    for (size_t i = 0; i < n + AHEAD; i++) {
        if (i >= AHEAD) {
            size_t j = i - AHEAD;
            int rc = strmap_put_h(m, ring[j % AHEAD], base + off[j], len[j], vals[j]);
            if (rc) return rc;
        }
        if (i < n) {
            uint64_t h = hash_bytes(base + off[i], len[i]);
            ring[i % AHEAD] = h;
            __builtin_prefetch(&m->slots[(size_t)h & m->mask], 1);
        }
    }
    return GLIMPSE_OK;
}

int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len) {
    if (!m->slots) return -1;
    size_t i = strmap_find(m, hash_bytes(key, len), key, len);
    return m->slots[i].len != EMPTY_LEN ? m->slots[i].val : -1;
}

void tok_strmap_get_many(const tok_strmap *m, const char *base, const uint32_t *off, const uint32_t *len,
                         size_t n, int32_t *vals) {
    enum { AHEAD = 16 }; /* keys in flight: slot prefetch at +16, key prefetch at +8 */
    uint64_t ring[AHEAD];
    for (size_t i = 0; i < n + AHEAD; i++) {
        if (i >= AHEAD) { /* finish key i - AHEAD before its ring entry is reused */
            size_t j = i - AHEAD;
            size_t k = strmap_find(m, ring[j % AHEAD], base + off[j], len[j]);
            vals[j] = m->slots[k].len != EMPTY_LEN ? m->slots[k].val : -1;
        }
        if (i >= AHEAD / 2 && i - AHEAD / 2 < n) {
            const tok_strmap_slot *s = &m->slots[(size_t)ring[(i - AHEAD / 2) % AHEAD] & m->mask];
            if (s->len != EMPTY_LEN) __builtin_prefetch(m->pool + s->off);
        }
        if (i < n) {
            uint64_t h = hash_bytes(base + off[i], len[i]);
            ring[i % AHEAD] = h;
            __builtin_prefetch(&m->slots[(size_t)h & m->mask]);
        }
    }
}

/* ---- tok_pairmap ---- */

static inline size_t pair_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

int tok_pairmap_init(tok_pairmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    if (expected > ((size_t)1 << 28)) return GLIMPSE_ERR_TOO_LARGE;
    size_t slots = pow2_at_least(expected + expected / 2 + 1);
    m->mask = slots - 1;
    m->slots = gl_calloc(slots, sizeof *m->slots);
    return m->slots ? GLIMPSE_OK : GLIMPSE_ERR_NOMEM;
}

void tok_pairmap_free(tok_pairmap *m) {
    gl_free(m->slots);
    memset(m, 0, sizeof *m);
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    if ((m->n + 1) * 3 > (m->mask + 1) * 2) { /* grow: only when the size hint was too small */
        tok_pairmap g;
        int rc = tok_pairmap_init(&g, (m->n + 1) * 2);
        if (rc) return rc;
        for (size_t i = 0; i <= m->mask; i++) {
            if (!m->slots[i].key) continue;
            size_t j = pair_slot(m->slots[i].key, g.mask);
            while (g.slots[j].key) j = (j + 1) & g.mask;
            g.slots[j] = m->slots[i];
        }
        g.n = m->n;
        tok_pairmap_free(m);
        *m = g;
    }
    size_t i = pair_slot(key, m->mask);
    while (m->slots[i].key && m->slots[i].key != key) i = (i + 1) & m->mask;
    if (!m->slots[i].key) m->n++;
    m->slots[i] = (tok_pair_slot){key, rank, merged};
    return GLIMPSE_OK;
}

void tok_pairmap_prefetch(const tok_pairmap *m, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    __builtin_prefetch(&m->slots[pair_slot(key, m->mask)], 1);
}

/* Returns the slot of (a, b), or NULL. */
static inline const tok_pair_slot *pair_get(const tok_pairmap *m, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = pair_slot(key, m->mask);
    for (;;) {
        const tok_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (!s->key) return NULL;
        i = (i + 1) & m->mask;
    }
}

/* ---- merge loop ---- */

void tok_bpe_scratch_free(tok_bpe_scratch *s) {
    gl_free(s->prev);
    gl_free(s->next);
    gl_free(s->heap);
    memset(s, 0, sizeof *s);
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (v <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = v;
    return top;
}

/* Short words (nearly all of them): keep each adjacent pair's rank in a small array and
 * rescan it; same order as the heap (lowest rank, then leftmost). */
enum { SMALL_WORD = 32 };

static size_t merge_small(const tok_pairmap *m, int32_t *syms, size_t n) {
    int32_t rank[SMALL_WORD], merged[SMALL_WORD];
    for (size_t k = 0; k + 1 < n; k++) {
        const tok_pair_slot *p = pair_get(m, syms[k], syms[k + 1]);
        rank[k] = p ? p->rank : INT32_MAX;
        merged[k] = p ? p->merged : -1;
    }
    while (n > 1) {
        size_t best = 0;
        for (size_t k = 1; k + 1 < n; k++)
            if (rank[k] < rank[best]) best = k;
        if (rank[best] == INT32_MAX) break;
        syms[best] = merged[best];
        for (size_t k = best + 1; k + 1 < n; k++) {
            syms[k] = syms[k + 1];
            rank[k] = rank[k + 1];
            merged[k] = merged[k + 1];
        }
        n--;
        for (size_t k = best ? best - 1 : 0; k <= best && k + 1 < n; k++) {
            const tok_pair_slot *p = pair_get(m, syms[k], syms[k + 1]);
            rank[k] = p ? p->rank : INT32_MAX;
            merged[k] = p ? p->merged : -1;
        }
    }
    return n;
}

int tok_bpe_merge(const tok_pairmap *m, int32_t *syms, size_t n, size_t *n_out, tok_bpe_scratch *s) {
    *n_out = n;
    if (n < 2 || !m->n) return GLIMPSE_OK;
    if (n <= SMALL_WORD) {
        *n_out = merge_small(m, syms, n);
        return GLIMPSE_OK;
    }
    if (n > 0x7FFFFFFF) return GLIMPSE_ERR_TOO_LARGE;
    if (s->cap < n) {
        gl_free(s->prev);
        gl_free(s->next);
        s->prev = gl_malloc(n * sizeof *s->prev);
        s->next = gl_malloc(n * sizeof *s->next);
        s->cap = (s->prev && s->next) ? n : 0;
        if (!s->cap) return GLIMPSE_ERR_NOMEM;
    }
    /* Each merge pushes at most two entries, so n-1 + 2(n-1) bounds the heap. */
    size_t hcap = 3 * n;
    if (s->heap_cap < hcap) {
        gl_free(s->heap);
        s->heap = gl_malloc(hcap * sizeof *s->heap);
        s->heap_cap = s->heap ? hcap : 0;
        if (!s->heap) return GLIMPSE_ERR_NOMEM;
    }
    int32_t *prev = s->prev, *next = s->next;
    uint64_t *heap = s->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = (i + 1 < n) ? (int32_t)i + 1 : -1;
        if (i + 1 < n) {
            const tok_pair_slot *p = pair_get(m, syms[i], syms[i + 1]);
            if (p) heap_push(heap, &hn, ((uint64_t)(uint32_t)p->rank << 32) | i);
        }
    }
    size_t count = n;
    while (hn) {
        uint64_t top = heap_pop(heap, &hn);
        int32_t i = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        if (syms[i] < 0) continue; /* merged into its left neighbour already */
        int32_t j = next[i];
        if (j < 0) continue;
        const tok_pair_slot *p = pair_get(m, syms[i], syms[j]);
        if (!p || p->rank != rank) continue; /* stale entry */
        syms[i] = p->merged;
        syms[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        count--;
        if (prev[i] >= 0 && (p = pair_get(m, syms[prev[i]], syms[i])))
            heap_push(heap, &hn, ((uint64_t)(uint32_t)p->rank << 32) | (uint32_t)prev[i]);
        if (next[i] >= 0 && (p = pair_get(m, syms[i], syms[next[i]])))
            heap_push(heap, &hn, ((uint64_t)(uint32_t)p->rank << 32) | (uint32_t)i);
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (syms[i] >= 0) syms[w++] = syms[i];
    *n_out = count;
    return GLIMPSE_OK;
}
