/* fuzz_ptzip.c — libFuzzer target: a PyTorch zip checkpoint (zip + pickle) via gl_weights_open,
 * and the pickle interpreter on the raw bytes as well. */
#include "fuzz_util.h"
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open_bytes(data, size, ".pt");
    io_pickle *p;
    const io_pk_val *root;
    gl_err err;
    if (io_pickle_load(data, size, "fuzz", &p, &root, &err) == 0) io_pickle_free(p);
    return 0;
}
