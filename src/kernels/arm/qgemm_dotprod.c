/* qgemm_dotprod.c — quantized products with Armv8.2 sdot (4 int8 products summed into each
 * int32 lane per instruction). Built with +dotprod (CMake: *_dotprod.c); only called where
 * cpu.dotprod says the core has it. See qgemm_neon.h. */
#define KN_Q_PREFIX dot_
#define KN_Q_MUL32(w0, w1, a0, a1) vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1)
#include "qgemm_neon.h"

const kn_quant_isa kn_quant_isa_dotprod = {"neon+dotprod", dot_quantize_act, dot_dot_q8_0,
                                           dot_dot_q4_0, dot_dot_q8_0_r4, dot_dot_q4_0_r4};
