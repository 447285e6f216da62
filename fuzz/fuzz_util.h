/* fuzz_util.h — the weights readers take paths: write each input to a per-process tmpfs file. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "io/weights.h"

/* Called with the opened weights before they are closed (may be NULL). */
typedef void (*fuzz_weights_fn)(const gl_weights *w, const char *path);

static int fuzz_open_bytes_cb(const uint8_t *data, size_t size, const char *suffix, fuzz_weights_fn cb) {
    static char path[128];
    if (!path[0])
        snprintf(path, sizeof path, "%s/glimpse_fuzz_%d%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    gl_weights *w;
    gl_err err;
    int rc = gl_weights_open(path, &w, &err);
    if (rc == 0) {
        /* touch every byte of every tensor: views must lie inside the file */
        volatile uint8_t acc = 0;
        for (size_t i = 0; i < gl_weights_count(w); i++) {
            const gl_tensor *t = gl_weights_at(w, i);
            for (size_t k = 0; k < t->nbytes; k++) acc ^= ((const uint8_t *)t->data)[k];
            if (gl_weights_find(w, t->name) == NULL) __builtin_trap();
        }
        (void)acc;
        if (cb) cb(w, path);
        gl_weights_close(w);
    }
    return rc;
}

static inline int fuzz_open_bytes(const uint8_t *data, size_t size, const char *suffix) {
    return fuzz_open_bytes_cb(data, size, suffix, NULL);
}

#endif
