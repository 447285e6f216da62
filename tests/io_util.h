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
    const char *d = getenv("TMPDIR");
    snprintf(buf, n, "%s/glimpse_io_%d%s", d && *d ? d : "/tmp", (int)getpid(), suffix);
    return buf;
}

#endif
