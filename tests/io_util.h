/* io_util.h — helpers shared by the test_io*.c tests: temp files, fixture paths, reading files. */
#ifndef TEST_IO_UTIL_H
#define TEST_IO_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_FIX GLIMPSE_SOURCE_DIR "/tests/data/io/"

__attribute__((unused)) static unsigned char *tio_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

__attribute__((unused)) static void tio_write(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (n && fwrite(p, 1, n, f) != n) { perror(path); exit(2); }
    fclose(f);
}

/* A per-process temp path ending in suffix (the readers pick formats by magic, but a
 * ".safetensors" suffix lets a too-short file still reach the safetensors reader). */
__attribute__((unused)) static const char *tio_tmp(char *buf, size_t n, const char *suffix) {
    /* /dev/shm when there is one: these tests write thousands of small files */
    const char *d = getenv("TMPDIR");
    if (!d || !*d) d = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, n, "%s/glimpse_io_%d%s", d, (int)getpid(), suffix);
    return buf;
}

#endif

/* A minimal stored-entry zip writer (no CRC checks in our reader; CRCs written as 0). */
#include <stdint.h>
static void tio_put_le(unsigned char **p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) *(*p)++ = (unsigned char)(v >> (8 * i));
}
__attribute__((unused)) static size_t tio_zip(unsigned char *out, const char *const *names, const void *const *data,
                                              const size_t *lens, int n) {
    unsigned char *p = out, *cd_start;
    size_t offs[64];
    for (int i = 0; i < n; i++) {
        offs[i] = (size_t)(p - out);
        size_t nl = strlen(names[i]);
        tio_put_le(&p, 0x04034b50, 4), tio_put_le(&p, 20, 2), tio_put_le(&p, 0, 2), tio_put_le(&p, 0, 2);
        tio_put_le(&p, 0, 4), tio_put_le(&p, 0, 4), tio_put_le(&p, lens[i], 4), tio_put_le(&p, lens[i], 4);
        tio_put_le(&p, nl, 2), tio_put_le(&p, 0, 2);
        memcpy(p, names[i], nl), p += nl;
        if (lens[i]) memcpy(p, data[i], lens[i]);
        p += lens[i];
    }
    cd_start = p;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        tio_put_le(&p, 0x02014b50, 4), tio_put_le(&p, 20, 2), tio_put_le(&p, 20, 2), tio_put_le(&p, 0, 2);
        tio_put_le(&p, 0, 2), tio_put_le(&p, 0, 4), tio_put_le(&p, 0, 4), tio_put_le(&p, lens[i], 4);
        tio_put_le(&p, lens[i], 4), tio_put_le(&p, nl, 2), tio_put_le(&p, 0, 2), tio_put_le(&p, 0, 2);
        tio_put_le(&p, 0, 2), tio_put_le(&p, 0, 2), tio_put_le(&p, 0, 4), tio_put_le(&p, offs[i], 4);
        memcpy(p, names[i], nl), p += nl;
    }
    size_t cd_len = (size_t)(p - cd_start);
    tio_put_le(&p, 0x06054b50, 4), tio_put_le(&p, 0, 4), tio_put_le(&p, (uint64_t)n, 2), tio_put_le(&p, (uint64_t)n, 2);
    tio_put_le(&p, cd_len, 4), tio_put_le(&p, (size_t)(cd_start - out), 4), tio_put_le(&p, 0, 2);
    return (size_t)(p - out);
}
