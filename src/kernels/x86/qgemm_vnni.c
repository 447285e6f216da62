/* qgemm_vnni.c — the quantized dot kernels with AVX-VNNI (Zen 4+, Alder Lake+): dpbusd sums 4
 * adjacent u8 x s8 products into each int32 lane in one instruction, where AVX2 needs maddubs
 * then madd. The integer sums are exact either way, so results equal qgemm_avx2.c's bit for
 * bit. Built with -mavxvnni; only called where the CPU has it (kn_quant_pick). */
#include <immintrin.h>

#include "kernels/qgemm.h"

#define QX_PREFIX vnni_
#define QX_DOT4(w, a) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, a)
#include "qgemm_x86.h"

const kn_quant_isa kn_quant_isa_vnni = {"avx-vnni", kn_quantize_act_avx2, vnni_dot_q8_0, vnni_dot_q4_0, vnni_dot_q8_0_r4,
                                        vnni_dot_q4_0_r4};
