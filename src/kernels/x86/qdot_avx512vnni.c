/* qdot_avx512vnni.c — the quantized dot kernels (decode and small batches) with 512-bit
 * AVX512-VNNI: two 32-value blocks per instruction where qgemm_x86.h does one.
 *
 * Per pair of blocks (k, k+1), one zmm of weights against one of activations, one vpdpbusd
 * (u8 x s8, 4 products per int32 lane):
 *   Q8_0: weights w ^ 0x80 = w + 128 as u8 (no sign tricks), so a lane sums (w + 128)·a; the
 *         128·Σa of each block is known (kn_block_q8a.sum) and starts the lane accumulator
 *         negated, so the int32 lanes end exact. Lanes 0-7 block k, 8-15 block k+1.
 *   Q4_0: the nibbles (0..15) as u8: low halves of both blocks, then high halves; the
 *         activations are permuted to match ([a_k 0-15 | a_k+1 0-15 | a_k 16-31 | a_k+1 16-31])
 *         and -8·Σa starts the lanes (Σ(q - 8)a = Σqa - 8Σa).
 * Then int32 -> f32 and one FMA with a vector of d_w·d_a laid out like the lanes. Activation
 * vectors (permuted bytes, corrections, scales) are built once per pair and shared by the rows
 * a call runs. Even pairs go to one accumulator, odd to another (two FMA chains); out = the sum
 * of both's 16 lanes. Every output's arithmetic is the same however many rows or activation
 * rows share the call, so dot4 and dot with nx > 1 equal dot row by row, bit for bit.
 * Built with -mavx512vnni; only used where cpu.avx512vnni (kn_quant_pick). */
#include <immintrin.h>

#include "kernels/qgemm.h"

/* The activation side of a pair (b = 1 when block k+1 does not exist: zeros, scale 0). */
typedef struct xpair {
    __m512i q, corr;
    __m512 d;
} xpair;

static inline __attribute__((always_inline)) xpair x_pair(const kn_block_q8a *x, int64_t k, int two, const int q4) {
    xpair p;
    __m256i a0 = _mm256_loadu_si256((const __m256i *)x[k].qs);
    __m256i a1 = two ? _mm256_loadu_si256((const __m256i *)x[k + 1].qs) : _mm256_setzero_si256();
    float d1 = two ? x[k + 1].d : 0.0f;
    int32_t s1 = two ? x[k + 1].sum : 0;
    if (q4) {
        const __m512i idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        p.q = _mm512_permutex2var_epi64(_mm512_castsi256_si512(a0), idx, _mm512_castsi256_si512(a1));
        p.corr = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -8 * x[k].sum), 0x0010, -8 * s1);
        p.d = _mm512_mask_blend_ps(0xF0F0, _mm512_set1_ps(x[k].d), _mm512_set1_ps(d1));
    } else {
        p.q = _mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1);
        p.corr = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -128 * x[k].sum), 0x0100, -128 * s1);
        p.d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(x[k].d), _mm512_set1_ps(d1));
    }
    return p;
}

/* The weight side of a pair starting at block pointer b (bs bytes per block): the u8 operand
 * and the f16 scales laid out like the lanes. */
static inline __attribute__((always_inline)) __m512i w_pair(const char *b, size_t bs, int two, const int q4, __m512 *dw) {
    __m256i h0 = _mm256_set1_epi16(*(const short *)b), h1 = two ? _mm256_set1_epi16(*(const short *)(b + bs)) : _mm256_setzero_si256();
    *dw = _mm512_cvtph_ps(_mm256_mask_blend_epi16(q4 ? 0xF0F0 : 0xFF00, h0, h1));
    if (q4) {
        __m128i r0 = _mm_loadu_si128((const __m128i *)(b + 2));
        __m128i r1 = two ? _mm_loadu_si128((const __m128i *)(b + bs + 2)) : _mm_setzero_si128();
        __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(r0), r1, 1);
        __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1);
        return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
    }
    __m256i w0 = _mm256_loadu_si256((const __m256i *)(b + 2));
    /* a missing second block: w = -128 so that w ^ 0x80 = 0 */
    __m256i w1 = two ? _mm256_loadu_si256((const __m256i *)(b + bs + 2)) : _mm256_set1_epi8((char)0x80);
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1), _mm512_set1_epi8((char)0x80));
}

/* acc += (int32 lanes of w . x, corrected) as f32 * d_w * d_a */
static inline __attribute__((always_inline)) __m512 pair_fma(__m512i w, const xpair *x, __m512 dw, __m512 acc) {
    __m512i s = _mm512_dpbusd_epi32(x->corr, w, x->q);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, x->d), acc);
}

/* R weight rows (row r at w + r * rb) x NX activation rows (row i at x + i * xs), R * NX <= 4;
 * out[r * NX + i]. Pair p goes to the even (E) or odd (O) accumulators. */
#define QZ_PAIR(p, A0, A1, A2, A3)                                                                     \
    do {                                                                                               \
        int two = 2 * (p) + 1 < nb;                                                                    \
        size_t off = (size_t)(2 * (p)) * bs;                                                           \
        __m512 dw;                                                                                     \
        if (NX == 1) {                                                                                 \
            xpair xp = x_pair(x0, 2 * (p), two, q4);                                                   \
            { __m512i wv = w_pair(b0 + off, bs, two, q4, &dw); A0 = pair_fma(wv, &xp, dw, A0); }                            \
            if (R > 1) { __m512i wv = w_pair(b1 + off, bs, two, q4, &dw); A1 = pair_fma(wv, &xp, dw, A1); }                 \
            if (R > 2) { __m512i wv = w_pair(b2 + off, bs, two, q4, &dw); A2 = pair_fma(wv, &xp, dw, A2); }                 \
            if (R > 3) { __m512i wv = w_pair(b3 + off, bs, two, q4, &dw); A3 = pair_fma(wv, &xp, dw, A3); }                 \
        } else {                                                                                       \
            __m512i wv = w_pair(b0 + off, bs, two, q4, &dw);                                           \
            xpair xp = x_pair(x0, 2 * (p), two, q4);                                                   \
            A0 = pair_fma(wv, &xp, dw, A0);                                                            \
            xp = x_pair(x1, 2 * (p), two, q4);                                                         \
            A1 = pair_fma(wv, &xp, dw, A1);                                                            \
            if (NX > 2) { xp = x_pair(x2, 2 * (p), two, q4); A2 = pair_fma(wv, &xp, dw, A2); }         \
            if (NX > 3) { xp = x_pair(x3, 2 * (p), two, q4); A3 = pair_fma(wv, &xp, dw, A3); }         \
        }                                                                                              \
    } while (0)

static inline __attribute__((always_inline)) void dots(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x,
                                                       int64_t xs, float *out, const int R, const int NX, const int q4) {
    const size_t bs = q4 ? sizeof(gl_block_q4_0) : sizeof(gl_block_q8_0);
    const char *b0 = w, *b1 = b0 + (R > 1 ? rb : 0), *b2 = b0 + (R > 2 ? 2 * rb : 0), *b3 = b0 + (R > 3 ? 3 * rb : 0);
    const kn_block_q8a *x0 = x, *x1 = x + (NX > 1 ? xs : 0), *x2 = x + (NX > 2 ? 2 * xs : 0), *x3 = x + (NX > 3 ? 3 * xs : 0);
    __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
    /* R = 4: the next 4 rows (contiguous after these) are prefetched a little per step, so
     * memory sees one long read; pf is an address, not an access (no fault past the end) */
    const char *pf = (const char *)w + 4 * rb, *pf_end = pf + 4 * rb;
    const size_t pf_step = ((4 * rb) / (size_t)(nb / 4 + 1) + 63) & ~(size_t)63;
    int64_t np = (nb + 1) / 2, p = 0;
    for (; p + 2 <= np; p += 2) {
        if (R == 4 && pf < pf_end)
            for (size_t o = 0; o < pf_step; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        pf += pf_step;
        QZ_PAIR(p, e0, e1, e2, e3);
        QZ_PAIR(p + 1, o0, o1, o2, o3);
    }
    if (p < np) QZ_PAIR(p, e0, e1, e2, e3);
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(e0, o0));
    if (R * NX > 1) out[1] = _mm512_reduce_add_ps(_mm512_add_ps(e1, o1));
    if (R * NX > 2) out[2] = _mm512_reduce_add_ps(_mm512_add_ps(e2, o2));
    if (R * NX > 3) out[3] = _mm512_reduce_add_ps(_mm512_add_ps(e3, o3));
}
#undef QZ_PAIR

#define QZ_FNS(NAME, Q4)                                                                                   \
    static void NAME##_r4(int64_t nb, const void *w, size_t rb, const kn_block_q8a *x, float *out) {    \
        dots(nb, w, rb, x, 0, out, 4, 1, Q4);                                                            \
    }                                                                                                    \
    static void NAME(int64_t nb, const void *w, const kn_block_q8a *x, int64_t xs, int nx, float *out) { \
        switch (nx) {                                                                                    \
        case 4: dots(nb, w, 0, x, xs, out, 1, 4, Q4); break;                                             \
        case 3: dots(nb, w, 0, x, xs, out, 1, 3, Q4); break;                                             \
        case 2: dots(nb, w, 0, x, xs, out, 1, 2, Q4); break;                                             \
        default: dots(nb, w, 0, x, xs, out, 1, 1, Q4); break;                                            \
        }                                                                                                \
    }
QZ_FNS(zv_dot_q8_0, 0)
QZ_FNS(zv_dot_q4_0, 1)

const kn_quant_isa kn_quant_isa_avx512vnni = {"avx512-vnni", kn_quantize_act_avx2, zv_dot_q8_0, zv_dot_q4_0,
                                              zv_dot_q8_0_r4, zv_dot_q4_0_r4};
