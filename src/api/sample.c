/* sample.c — next-token choice: greedy, or temperature with top-k / top-p / min-p, after a
 * repetition penalty (divide positive logits, multiply negative ones, as CTRL and llama.cpp). */
#include <math.h>
#include <stdlib.h>

#include "api.h"

typedef struct { float p; int32_t id; } cand;

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->p, y = ((const cand *)b)->p;
    return (x < y) - (x > y);
}

static uint64_t next_u64(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int32_t api_sample(float *logits, int n, const glimpse_gen_params *p, const int32_t *recent, int n_recent,
                   uint64_t *rng) {
    if (p->repeat_penalty > 0 && p->repeat_penalty != 1.0f)
        for (int i = 0; i < n_recent; i++) {
            int32_t id = recent[i];
            if (id < 0 || id >= n) continue;
            float *l = &logits[id];
            /* apply once per distinct id: mark by checking earlier occurrences */
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) seen = recent[j] == id;
            if (!seen) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        }
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (!(p->temperature > 0)) return best;

    cand *c = malloc(sizeof(cand) * (size_t)n);
    if (!c) return best;
    float mx = logits[best], inv_t = 1.0f / p->temperature;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(logits[i])) c[m++] = (cand){expf((logits[i] - mx) * inv_t), i};
    qsort(c, (size_t)m, sizeof *c, cmp_desc);
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    double sum = 0;
    for (int i = 0; i < m; i++) sum += c[i].p;
    if (p->top_p > 0 && p->top_p < 1) {
        double acc = 0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            acc += c[i].p / sum;
            if (acc >= p->top_p) { keep = i + 1; break; }
        }
        m = keep;
    }
    if (p->min_p > 0) {
        int keep = 1;
        while (keep < m && c[keep].p >= p->min_p * c[0].p) keep++;
        m = keep;
    }
    sum = 0;
    for (int i = 0; i < m; i++) sum += c[i].p;
    double r = (next_u64(rng) >> 11) * (1.0 / 9007199254740992.0) * sum, acc = 0;
    int32_t pick = c[m - 1].id;
    for (int i = 0; i < m; i++) {
        acc += c[i].p;
        if (r < acc) { pick = c[i].id; break; }
    }
    free(c);
    return pick;
}
