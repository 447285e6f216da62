/* quant.h — ggml's Q8_0 and Q4_0 block formats, byte for byte, and their reference
 * quantize / dequantize (the rounding of ggml's quantize_row_q8_0_ref / _q4_0_ref, so a file
 * we write quantizes exactly as llama-quantize would from the same f32 values).
 *
 *   Q8_0: 32 weights = f16 d + int8 q[32];          w = q * d, d = amax / 127, q = round(w / d)
 *   Q4_0: 32 weights = f16 d + 16 bytes of nibbles; byte j holds element j (low nibble) and
 *         element j + 16 (high nibble); w = (q - 8) * d, d = -(signed value of largest |w|) / 8
 *
 * Blocks are 2-byte aligned (the f16 scale); rows of a quantized matrix are whole blocks. */
#ifndef GL_QUANT_H
#define GL_QUANT_H

#include "common.h"
#include "tensor.h"

#define GL_QK 32 /* weights per block */

typedef struct gl_block_q8_0 {
    uint16_t d; /* f16 */
    int8_t qs[GL_QK];
} gl_block_q8_0;

typedef struct gl_block_q4_0 {
    uint16_t d; /* f16 */
    uint8_t qs[GL_QK / 2];
} gl_block_q4_0;

_Static_assert(sizeof(gl_block_q8_0) == 34, "Q8_0 block is 34 bytes as in ggml");
_Static_assert(sizeof(gl_block_q4_0) == 18, "Q4_0 block is 18 bytes as in ggml");

/* n (a multiple of 32) floats -> n / 32 blocks of t (GL_Q8_0 or GL_Q4_0). */
void gl_quantize_row(gl_dtype t, const float *x, void *y, int64_t n);
/* n / 32 blocks of t -> n floats. */
void gl_dequantize_row(gl_dtype t, const void *x, float *y, int64_t n);
static inline bool gl_dtype_is_quant(gl_dtype t) { return t == GL_Q8_0 || t == GL_Q4_0; }

#endif
