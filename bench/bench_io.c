/* bench_io.c — how long opening big checkpoints takes.
 *
 *   bench_io [DIR] [MB]      (defaults: /tmp, 1536)
 *
 * Writes an LLM-shaped set of ~290 tensors (BF16 matrices, F32 norms/biases) of about MB
 * megabytes twice into DIR: bench_io.safetensors and bench_io.pt (a torch.save-style zip written
 * here: stored entries, <archive>/data.pkl, <archive>/data/<i>, <archive>/version, entry data
 * 64-byte aligned as torch's writer does). Then times gl_weights_open + reading every tensor's
 * metadata (no data pages), best of 5, for both; then, timed separately, compares every tensor's
 * bytes between the two files. The files are removed at the end (keep them with BENCH_IO_KEEP=1).
 * Target: open + all tensors addressable < 0.5 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "core/common.h"
#include "io/weights.h"

typedef struct bt { char name[96]; gl_dtype dt; int ndim; int64_t shape[2]; size_t nbytes; } bt;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t add(bt *t, size_t n, gl_dtype dt, int64_t a, int64_t b, const char *fmt, int layer) {
    snprintf(t[n].name, sizeof t[n].name, fmt, layer);
    t[n].dt = dt;
    t[n].ndim = b ? 2 : 1;
    t[n].shape[0] = a, t[n].shape[1] = b;
    t[n].nbytes = (size_t)a * (size_t)(b ? b : 1) * gl_dtype_size(dt);
    return n + 1;
}

/* Qwen2-like layout; hidden/intermediate scaled so the total is about mb megabytes. */
static size_t make_layout(bt *t, int mb) {
    int64_t h = 1536, inter = 4096, vocab = 32000;
    int layers = (int)((mb * 1048576.0 - vocab * h * 2.0) / (2.0 * (4 * h * h + 3 * h * inter)) + 0.5);
    if (layers < 1) layers = 1;
    size_t n = 0;
    n = add(t, n, GL_BF16, vocab, h, "model.embed_tokens.weight", 0);
    for (int l = 0; l < layers; l++) {
        n = add(t, n, GL_F32, h, 0, "model.layers.%d.input_layernorm.weight", l);
        n = add(t, n, GL_BF16, h, h, "model.layers.%d.self_attn.q_proj.weight", l);
        n = add(t, n, GL_F32, h, 0, "model.layers.%d.self_attn.q_proj.bias", l);
        n = add(t, n, GL_BF16, h, h, "model.layers.%d.self_attn.k_proj.weight", l);
        n = add(t, n, GL_F32, h, 0, "model.layers.%d.self_attn.k_proj.bias", l);
        n = add(t, n, GL_BF16, h, h, "model.layers.%d.self_attn.v_proj.weight", l);
        n = add(t, n, GL_F32, h, 0, "model.layers.%d.self_attn.v_proj.bias", l);
        n = add(t, n, GL_BF16, h, h, "model.layers.%d.self_attn.o_proj.weight", l);
        n = add(t, n, GL_F32, h, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        n = add(t, n, GL_BF16, inter, h, "model.layers.%d.mlp.gate_proj.weight", l);
        n = add(t, n, GL_BF16, inter, h, "model.layers.%d.mlp.up_proj.weight", l);
        n = add(t, n, GL_BF16, h, inter, "model.layers.%d.mlp.down_proj.weight", l);
    }
    n = add(t, n, GL_F32, h, 0, "model.norm.weight", 0);
    return n;
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)(i * 31);
}

/* ---- a torch.save-style zip ---- */
typedef struct zw { FILE *f; uint64_t pos; struct { char name[128]; uint64_t off, size; uint32_t crc; } *e; size_t n; } zw;

static void le(uint8_t *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static void zw_put(zw *z, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, z->f) != n) {
        perror("write");
        exit(1);
    }
    z->pos += n;
}

/* Local header with an extra field ("FB", as torch) that pads the data start to 64 bytes. */
static void zw_entry(zw *z, const char *name, const void *data, size_t size) {
    size_t nl = strlen(name);
    uint64_t hdr_end = z->pos + 30 + nl + 4;
    size_t pad = (size_t)((64 - hdr_end % 64) % 64);
    uint32_t crc = (uint32_t)crc32(0, data, 0);
    for (size_t o = 0; o < size;) {
        uInt k = (uInt)GL_MIN(size - o, (size_t)1 << 30);
        crc = (uint32_t)crc32(crc, (const Bytef *)data + o, k);
        o += k;
    }
    uint8_t h[34];
    le(h, 0x04034b50, 4), le(h + 4, 20, 2), le(h + 6, 0, 2), le(h + 8, 0, 2), le(h + 10, 0, 2), le(h + 12, 0, 2);
    le(h + 14, crc, 4), le(h + 18, size, 4), le(h + 22, size, 4), le(h + 26, nl, 2), le(h + 28, 4 + pad, 2);
    z->e = realloc(z->e, sizeof *z->e * (z->n + 1));
    snprintf(z->e[z->n].name, sizeof z->e[z->n].name, "%s", name);
    z->e[z->n].off = z->pos, z->e[z->n].size = size, z->e[z->n].crc = crc;
    z->n++;
    zw_put(z, h, 30);
    zw_put(z, name, nl);
    uint8_t x[4 + 64] = {'F', 'B'};
    le(x + 2, pad, 2);
    zw_put(z, x, 4 + pad);
    zw_put(z, data, size);
}

static void zw_finish(zw *z) {
    uint64_t cd = z->pos;
    for (size_t i = 0; i < z->n; i++) {
        uint8_t h[46];
        size_t nl = strlen(z->e[i].name);
        memset(h, 0, sizeof h);
        le(h, 0x02014b50, 4), le(h + 4, 20, 2), le(h + 6, 20, 2), le(h + 16, z->e[i].crc, 4);
        le(h + 20, z->e[i].size, 4), le(h + 24, z->e[i].size, 4), le(h + 28, nl, 2), le(h + 42, z->e[i].off, 4);
        zw_put(z, h, 46);
        zw_put(z, z->e[i].name, nl);
    }
    uint8_t e[22] = {0};
    le(e, 0x06054b50, 4), le(e + 8, z->n, 2), le(e + 10, z->n, 2), le(e + 12, z->pos - cd, 4), le(e + 16, cd, 4);
    zw_put(z, e, 22);
}

/* Protocol-2 pickle of an OrderedDict name -> _rebuild_tensor_v2(storage i, 0, size, stride, False, OrderedDict()). */
typedef struct pb { uint8_t *p; size_t n, cap; } pb;
static void pb_put(pb *b, const void *s, size_t n) {
    if (b->n + n > b->cap) b->p = realloc(b->p, b->cap = (b->n + n) * 2 + 256);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
#define PS(b, s) pb_put(b, s, sizeof s - 1)
static void pb_str(pb *b, const char *s) {
    uint8_t h[5] = {'X'};
    le(h + 1, strlen(s), 4);
    pb_put(b, h, 5);
    pb_put(b, s, strlen(s));
}
static void pb_int(pb *b, int64_t v) {
    uint8_t h[10] = {0x8a, 8};
    le(h + 2, (uint64_t)v, 8);
    pb_put(b, h, 10);
}
static void make_pickle(pb *b, const bt *t, size_t n) {
    PS(b, "\x80\x02" "ccollections\nOrderedDict\n)R(");
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%zu", i);
        pb_str(b, t[i].name);
        PS(b, "ctorch._utils\n_rebuild_tensor_v2\n((");
        pb_str(b, "storage");
        if (t[i].dt == GL_BF16) PS(b, "ctorch\nBFloat16Storage\n");
        else PS(b, "ctorch\nFloatStorage\n");
        pb_str(b, key);
        pb_str(b, "cpu");
        pb_int(b, (int64_t)(t[i].nbytes / gl_dtype_size(t[i].dt)));
        PS(b, "tQ");
        pb_int(b, 0);
        PS(b, "(");
        for (int d = 0; d < t[i].ndim; d++) pb_int(b, t[i].shape[d]);
        PS(b, "t(");
        if (t[i].ndim == 2) pb_int(b, t[i].shape[1]);
        pb_int(b, 1);
        PS(b, "t\x89" "ccollections\nOrderedDict\n)RtR");
    }
    PS(b, "u.");
}

static double time_open(const char *path, size_t expect) {
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        gl_weights *w;
        gl_err err;
        if (gl_weights_open(path, &w, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        size_t bytes = 0, dims = 0;
        for (size_t i = 0; i < gl_weights_count(w); i++) {
            const gl_tensor *t = gl_weights_find(w, gl_weights_at(w, i)->name);
            bytes += t->nbytes;
            dims += (size_t)t->ndim + (t->data != NULL);
        }
        double dt = now() - t0;
        gl_weights_close(w);
        if (bytes != expect) {
            fprintf(stderr, "%s: %zu bytes, expected %zu\n", path, bytes, expect);
            exit(1);
        }
        (void)dims;
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int mb = argc > 2 ? atoi(argv[2]) : 1536;
    static bt t[4096];
    size_t n = make_layout(t, mb), total = 0, maxb = 0;
    for (size_t i = 0; i < n; i++) total += t[i].nbytes, maxb = GL_MAX(maxb, t[i].nbytes);
    char st_path[512], pt_path[512];
    snprintf(st_path, sizeof st_path, "%s/bench_io.safetensors", dir);
    snprintf(pt_path, sizeof pt_path, "%s/bench_io.pt", dir);
    printf("bench_io: %zu tensors, %.1f MB, in %s\n", n, total / 1048576.0, dir);

    /* safetensors header */
    size_t hcap = n * 200 + 64, hl = 0, off = 0;
    char *hdr = malloc(hcap);
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        hl += (size_t)snprintf(hdr + hl, hcap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t[i].name,
                               gl_dtype_name(t[i].dt), (long long)t[i].shape[0]);
        if (t[i].ndim == 2) hl += (size_t)snprintf(hdr + hl, hcap - hl, ",%lld", (long long)t[i].shape[1]);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';

    double t0 = now();
    FILE *fs = fopen(st_path, "wb");
    zw z = {.f = fopen(pt_path, "wb")};
    if (!fs || !z.f) {
        perror(dir);
        return 1;
    }
    uint8_t len8[8];
    le(len8, hl, 8);
    fwrite(len8, 1, 8, fs);
    fwrite(hdr, 1, hl, fs);
    pb pk = {0};
    make_pickle(&pk, t, n);
    zw_entry(&z, "archive/data.pkl", pk.p, pk.n);
    uint8_t *buf = malloc(maxb);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        fill(buf, t[i].nbytes, i + 1);
        if (fwrite(buf, 1, t[i].nbytes, fs) != t[i].nbytes) {
            perror(st_path);
            return 1;
        }
        snprintf(name, sizeof name, "archive/data/%zu", i);
        zw_entry(&z, name, buf, t[i].nbytes);
    }
    zw_entry(&z, "archive/version", "3\n", 2);
    zw_finish(&z);
    fclose(fs);
    fclose(z.f);
    printf("write both files: %.2f s\n", now() - t0);

    double a = time_open(st_path, total), b = time_open(pt_path, total);
    printf("open + all tensor metadata (best of 5, page cache warm): safetensors %.2f ms, pt %.2f ms\n", a * 1e3,
           b * 1e3);

    t0 = now();
    gl_weights *ws, *wp;
    gl_err err;
    if (gl_weights_open(st_path, &ws, &err) || gl_weights_open(pt_path, &wp, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const gl_tensor *x = gl_weights_find(ws, t[i].name), *y = gl_weights_find(wp, t[i].name);
        if (!x || !y || x->nbytes != y->nbytes || x->dtype != y->dtype || memcmp(x->data, y->data, x->nbytes)) bad++;
    }
    double cmp = now() - t0;
    printf("compare all bytes (reads %.1f MB twice): %.2f s, %zu tensors differ\n", total / 1048576.0, cmp, bad);
    gl_weights_close(ws);
    gl_weights_close(wp);
    if (!getenv("BENCH_IO_KEEP")) remove(st_path), remove(pt_path);
    free(buf);
    free(hdr);
    free(pk.p);
    free(z.e);
    printf("target open < 500 ms: %s\n", a < 0.5 && b < 0.5 ? "met" : "MISSED");
    return bad != 0;
}
