/* npy_read.h — test-only reader for the float32 / int64 / int32 .npy goldens. */
#ifndef GL_NPY_READ_H
#define GL_NPY_READ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct npy_arr {
    int ndim;
    long long shape[8];
    size_t n;
    char type;   /* 'f' float32, 'i' int64, 'j' int32 */
    void *data;  /* malloc'd */
} npy_arr;

/* Returns 0 on success. */
static int npy_load(const char *path, npy_arr *a) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) { fclose(f); return -2; }
    size_t hl = pre[8] | (pre[9] << 8);
    if (pre[6] >= 2) { unsigned char x[2]; if (fread(x, 1, 2, f) != 2) { fclose(f); return -2; } hl |= (size_t)(x[0] | (x[1] << 8)) << 16; }
    char *h = calloc(1, hl + 1);
    if (fread(h, 1, hl, f) != hl) { free(h); fclose(f); return -2; }
    size_t es;
    if (strstr(h, "'<f4'")) a->type = 'f', es = 4;
    else if (strstr(h, "'<i8'")) a->type = 'i', es = 8;
    else if (strstr(h, "'<i4'")) a->type = 'j', es = 4;
    else if (strstr(h, "'|u1'")) a->type = 'u', es = 1;
    else { free(h); fclose(f); return -3; }
    int fortran = strstr(h, "'fortran_order': True") != NULL;
    char *s = strchr(strstr(h, "'shape'"), '(') + 1;
    a->n = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        long long v = strtoll(s, &s, 10);
        a->shape[a->ndim++] = v;
        a->n *= (size_t)v;
    }
    free(h);
    a->data = malloc(a->n * es + 1);
    size_t got = fread(a->data, es, a->n, f);
    fclose(f);
    if (got != a->n) return -4;
    if (fortran && a->ndim > 1) { /* column-major -> row-major */
        char *src = a->data, *dst = malloc(a->n * es + 1);
        long long idx[8] = {0};
        for (size_t r = 0; r < a->n; r++) {
            size_t off = 0, mul = 1;
            for (int d = 0; d < a->ndim; d++) { off += (size_t)idx[d] * mul; mul *= (size_t)a->shape[d]; }
            memcpy(dst + r * es, src + off * es, es);
            for (int d = a->ndim - 1; d >= 0; d--) { if (++idx[d] < a->shape[d]) break; idx[d] = 0; }
        }
        free(src);
        a->data = dst;
    }
    return 0;
}

static void npy_free(npy_arr *a) { free(a->data); a->data = NULL; }

#endif
