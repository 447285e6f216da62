/* bench_tok.c — tokenizer load time and encode throughput.
 *   ./build/bench_tok [REPO_ROOT]   (default: the current directory; reads ../shared/data/)
 * Prints wall and CPU time, best of N; on a shared machine CPU time is the steadier number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/clip_tok.h"
#include "text/qwen2_tok.h"

static double clk(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct { double wall, cpu; } span;
static span start(void) { return (span){clk(CLOCK_MONOTONIC), clk(CLOCK_PROCESS_CPUTIME_ID)}; }
static span since(span s) {
    return (span){clk(CLOCK_MONOTONIC) - s.wall, clk(CLOCK_PROCESS_CPUTIME_ID) - s.cpu};
}
static void keep_best(span *best, span x) {
    if (x.wall < best->wall) best->wall = x.wall;
    if (x.cpu < best->cpu) best->cpu = x.cpu;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char qdir[4096], cgz[4096], cases[4096];
    snprintf(qdir, sizeof qdir, "%s/../shared/data/qwen2", root);
    snprintf(cgz, sizeof cgz, "%s/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz", root);
    snprintf(cases, sizeof cases, "%s/tools/tokref/cases.json", root);
    gl_err e;
    tok_qwen2 *q = NULL;
    tok_clip *c = NULL;
    span bq = {1e9, 1e9}, bc = {1e9, 1e9};
    for (int r = 0; r < 7; r++) {
        span s = start();
        if (tok_qwen2_load(qdir, &q, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        keep_best(&bq, since(s));
        s = start();
        if (tok_clip_load_gz(cgz, &c, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        keep_best(&bc, since(s));
        if (r < 6) tok_qwen2_free(q), tok_clip_free(c);
    }
    printf("load qwen2 (151,643 tokens + 151,387 merges): %.1f ms wall, %.1f ms cpu (best of 7)\n", bq.wall * 1e3,
           bq.cpu * 1e3);
    printf("load clip  (gz, 48,894 merges):             %.1f ms wall, %.1f ms cpu (best of 7)\n", bc.wall * 1e3,
           bc.cpu * 1e3);

    /* varied text: the test strings (JSON-escaped, so mostly ASCII with scripts mixed in) x N */
    FILE *f = fopen(cases, "rb");
    if (!f) return fprintf(stderr, "%s: cannot open\n", cases), 1;
    char *one = malloc(1 << 20);
    size_t n1 = fread(one, 1, 1 << 20, f);
    fclose(f);
    size_t total = 0, cap = 4u << 20;
    char *big = malloc(cap);
    while (total + n1 <= cap) memcpy(big + total, one, n1), total += n1;
    size_t nq = 0, nc = 0;
    span eq = {1e9, 1e9}, ec = {1e9, 1e9};
    for (int r = 0; r < 3; r++) {
        span s = start();
        tok_qwen2_encode(q, big, total, NULL, 0, &nq, &e);
        keep_best(&eq, since(s));
        s = start();
        tok_clip_encode_raw(c, big, total, NULL, 0, &nc, &e);
        keep_best(&ec, since(s));
    }
    printf("encode %.1f MB: qwen2 %.1f MB/s wall, %.1f MB/s cpu (%zu tokens)\n", total / 1e6, total / 1e6 / eq.wall,
           total / 1e6 / eq.cpu, nq);
    printf("encode %.1f MB: clip  %.1f MB/s wall, %.1f MB/s cpu (%zu tokens, no truncation)\n", total / 1e6,
           total / 1e6 / ec.wall, total / 1e6 / ec.cpu, nc);
    int32_t ids[77];
    const char *cap77 = "a photo of a golden retriever puppy playing in the snow";
    span s = start();
    for (int r = 0; r < 10000; r++) tok_clip_encode(c, cap77, strlen(cap77), ids, 77, &e);
    span d = since(s);
    printf("clip 77-token encode of a caption: %.2f us wall, %.2f us cpu\n", d.wall * 1e2, d.cpu * 1e2);
    free(one);
    free(big);
    tok_qwen2_free(q);
    tok_clip_free(c);
    return 0;
}
