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

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    if (expected > ((size_t)1 << 28)) return GLIMPSE_ERR_TOO_LARGE;
    size_t slots = pow2_at_least(expected * 2 + 1);
    m->mask = slots - 1;
    m->cap = expected ? expected : 16;
    m->slots = gl_calloc(slots, sizeof *m->slots);
    m->hash = gl_malloc(m->cap * sizeof *m->hash);
    m->off = gl_malloc(m->cap * sizeof *m->off);
    m->len = gl_malloc(m->cap * sizeof *m->len);
    m->val = gl_malloc(m->cap * sizeof *m->val);
    m->pool_cap = 1024;
    m->pool = gl_malloc(m->pool_cap);
    if (!m->slots || !m->hash || !m->off || !m->len || !m->val || !m->pool) {
        tok_strmap_free(m);
        return GLIMPSE_ERR_NOMEM;
    }
    return GLIMPSE_OK;
}

void tok_strmap_free(tok_strmap *m) {
    gl_free(m->slots);
    gl_free(m->hash);
    gl_free(m->off);
    gl_free(m->len);
    gl_free(m->val);
    gl_free(m->pool);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const tok_strmap *m, uint64_t h, const void *key, size_t len) {
    size_t i = (size_t)h & m->mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (!e) return i;
        e--;
        if (m->hash[e] == h && m->len[e] == len && !memcmp(m->pool + m->off[e], key, len)) return i;
        i = (i + 1) & m->mask;
    }
}

static int strmap_grow(tok_strmap *m) {
    size_t cap = m->cap * 2;
    uint64_t *h = gl_realloc(m->hash, cap * sizeof *h);
    if (h) m->hash = h;
    uint32_t *o = gl_realloc(m->off, cap * sizeof *o);
    if (o) m->off = o;
    uint32_t *l = gl_realloc(m->len, cap * sizeof *l);
    if (l) m->len = l;
    int32_t *v = gl_realloc(m->val, cap * sizeof *v);
    if (v) m->val = v;
    if (!h || !o || !l || !v) return GLIMPSE_ERR_NOMEM;
    m->cap = cap;
    /* keep the load factor at or below one half */
    size_t slots = pow2_at_least(cap * 2 + 1);
    if (slots - 1 != m->mask) {
        uint32_t *s = gl_calloc(slots, sizeof *s);
        if (!s) return GLIMPSE_ERR_NOMEM;
        gl_free(m->slots);
        m->slots = s;
        m->mask = slots - 1;
        for (size_t e = 0; e < m->n; e++) {
            size_t i = (size_t)m->hash[e] & m->mask;
            while (s[i]) i = (i + 1) & m->mask;
            s[i] = (uint32_t)(e + 1);
        }
    }
    return GLIMPSE_OK;
}

int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t val) {
    if (len > 0xFFFFFF) return GLIMPSE_ERR_TOO_LARGE;
    uint64_t h = hash_bytes(key, len);
    size_t i = strmap_find(m, h, key, len);
    if (m->slots[i]) {
        m->val[m->slots[i] - 1] = val;
        return GLIMPSE_OK;
    }
    if (m->n == m->cap) {
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
    size_t e = m->n++;
    m->hash[e] = h;
    m->off[e] = (uint32_t)m->pool_n;
    m->len[e] = (uint32_t)len;
    m->val[e] = val;
    m->pool_n += len;
    m->slots[i] = (uint32_t)(e + 1);
    return GLIMPSE_OK;
}

int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len) {
    if (!m->slots) return -1;
    size_t i = strmap_find(m, hash_bytes(key, len), key, len);
    return m->slots[i] ? m->val[m->slots[i] - 1] : -1;
}

/* ---- tok_pairmap ---- */

static inline size_t pair_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

int tok_pairmap_init(tok_pairmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    if (expected > ((size_t)1 << 28)) return GLIMPSE_ERR_TOO_LARGE;
    size_t slots = pow2_at_least(expected * 2 + 1);
    m->mask = slots - 1;
    m->keys = gl_calloc(slots, sizeof *m->keys);
    m->rank = gl_malloc(slots * sizeof *m->rank);
    m->merged = gl_malloc(slots * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) {
        tok_pairmap_free(m);
        return GLIMPSE_ERR_NOMEM;
    }
    return GLIMPSE_OK;
}

void tok_pairmap_free(tok_pairmap *m) {
    gl_free(m->keys);
    gl_free(m->rank);
    gl_free(m->merged);
    memset(m, 0, sizeof *m);
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    if ((m->n + 1) * 2 > m->mask + 1) { /* grow: rare, only when the hint was too small */
        tok_pairmap g;
        int rc = tok_pairmap_init(&g, (m->n + 1) * 2);
        if (rc) return rc;
        for (size_t i = 0; i <= m->mask; i++) {
            if (!m->keys[i]) continue;
            size_t j = pair_slot(m->keys[i], g.mask);
            while (g.keys[j]) j = (j + 1) & g.mask;
            g.keys[j] = m->keys[i];
            g.rank[j] = m->rank[i];
            g.merged[j] = m->merged[i];
        }
        g.n = m->n;
        tok_pairmap_free(m);
        *m = g;
    }
    size_t i = pair_slot(key, m->mask);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & m->mask;
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
    return GLIMPSE_OK;
}

/* Returns the slot of (a, b) or SIZE_MAX. */
static inline size_t pair_get(const tok_pairmap *m, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = pair_slot(key, m->mask);
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) return i;
        if (!k) return SIZE_MAX;
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

int tok_bpe_merge(const tok_pairmap *m, int32_t *syms, size_t n, size_t *n_out, tok_bpe_scratch *s) {
    *n_out = n;
    if (n < 2 || !m->n) return GLIMPSE_OK;
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
            size_t k = pair_get(m, syms[i], syms[i + 1]);
            if (k != SIZE_MAX) heap_push(heap, &hn, ((uint64_t)(uint32_t)m->rank[k] << 32) | i);
        }
    }
    size_t count = n;
    while (hn) {
        uint64_t top = heap_pop(heap, &hn);
        int32_t i = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        if (syms[i] < 0) continue; /* merged into its left neighbour already */
        int32_t j = next[i];
        if (j < 0) continue;
        size_t k = pair_get(m, syms[i], syms[j]);
        if (k == SIZE_MAX || m->rank[k] != rank) continue; /* stale entry */
        syms[i] = m->merged[k];
        syms[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        count--;
        if (prev[i] >= 0 && (k = pair_get(m, syms[prev[i]], syms[i])) != SIZE_MAX)
            heap_push(heap, &hn, ((uint64_t)(uint32_t)m->rank[k] << 32) | (uint32_t)prev[i]);
        if (next[i] >= 0 && (k = pair_get(m, syms[i], syms[next[i]])) != SIZE_MAX)
            heap_push(heap, &hn, ((uint64_t)(uint32_t)m->rank[k] << 32) | (uint32_t)i);
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (syms[i] >= 0) syms[w++] = syms[i];
    *n_out = count;
    return GLIMPSE_OK;
}
