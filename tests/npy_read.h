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
    else { free(h); fclose(f); return -3; }
    if (strstr(h, "'fortran_order': True")) { free(h); fclose(f); return -3; }
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
    return got == a->n ? 0 : -4;
}

static void npy_free(npy_arr *a) { free(a->data); a->data = NULL; }

#endif
