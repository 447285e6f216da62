/* fp16.h — scalar f16 / bf16 <-> f32 conversions (the reference for SIMD converters). */
#ifndef GL_FP16_H
#define GL_FP16_H

#include <stdint.h>
#include <string.h>

static inline float gl_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t gl_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* IEEE half -> float, exact for all inputs including subnormals, inf and NaN. */
static inline float gl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 is exact in f32 */
        float f = (float)man * gl_bits_f32(0x33800000u); /* 2^-24 */
        return gl_bits_f32(gl_f32_bits(f) | sign);
    }
    if (exp == 31) return gl_bits_f32(sign | 0x7f800000u | (man << 13));
    return gl_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* float -> IEEE half, round to nearest even (as numpy/torch .half()). */
static inline uint16_t gl_f32_to_f16(float f) {
    uint32_t x = gl_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {
        /* result is subnormal or zero: add 0.5 so the FPU rounds the mantissa for us */
        float v = gl_bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (gl_f32_bits(v) - 0x3f000000u));
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + mant_odd; /* rebias exponent (-112<<23) and round half to even */
    return (uint16_t)(sign | (ax >> 13));
}

static inline float gl_bf16_to_f32(uint16_t b) { return gl_bits_f32((uint32_t)b << 16); }

/* float -> bf16, round to nearest even, NaN kept quiet (as torch). */
static inline uint16_t gl_f32_to_bf16(float f) {
    uint32_t x = gl_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
