#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int io_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, gl_err *err) {
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[i];
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* magic(6) + version(2) + len(2) + header, padded with spaces to a multiple of 64, ending in \n */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return gl_err_set(err, GLIMPSE_ERR_IO, "%s: %s", path, strerror(errno));
    uint16_t hl = (uint16_t)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, sizeof(float), count, f) == count;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : gl_err_set(err, GLIMPSE_ERR_IO, "%s: write failed", path);
}
