/* cpu.h — run-time CPU feature detection. GLIMPSE_ISA=scalar forces the reference kernels,
 * GLIMPSE_ISA=avx2 the plain AVX2 ones on a CPU with more (AVX-512, AVX-VNNI; for comparisons). */
#ifndef GL_CPU_H
#define GL_CPU_H

#include <stdbool.h>

typedef struct gl_cpu {
    bool avx2, fma, f16c;   /* x86-64: the AVX2 path needs all three */
    bool avx512f;           /* x86-64: AVX-512 F + BW + DQ + VL (every AVX-512 CPU since Skylake-X),
                             * with the OS saving the zmm state */
    bool avx512vnni;        /* x86-64: AVX512-VNNI (512-bit dpbusd), besides avx512f */
    bool avxvnni;           /* x86-64: AVX-VNNI (256-bit dpbusd), used by the int8 kernels */
    bool neon, dotprod;     /* arm64 */
    bool forced_scalar;     /* GLIMPSE_ISA=scalar */
} gl_cpu;

/* Detects features (cheap; call once per model or context). */
gl_cpu gl_cpu_detect(void);
/* "avx512", "avx2", "neon", "neon+dotprod" or "scalar". */
const char *gl_cpu_isa_name(const gl_cpu *c);
static inline bool gl_cpu_has_avx2(const gl_cpu *c) { return c->avx2 && c->fma && c->f16c; }
/* Kernels that use AVX-512 (only where they pay: the GEMM microkernel) also use AVX2 code. */
static inline bool gl_cpu_has_avx512(const gl_cpu *c) { return gl_cpu_has_avx2(c) && c->avx512f; }
static inline bool gl_cpu_has_avx512vnni(const gl_cpu *c) { return gl_cpu_has_avx512(c) && c->avx512vnni; }

#endif
