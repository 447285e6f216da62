/* fuzz_safetensors.c — libFuzzer target: a .safetensors file through gl_weights_open. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open_bytes(data, size, ".safetensors");
    return 0;
}
