/* The vector layer of the direct kernels (ecp_direct.h): per instruction set and element type, the
 * few vector types and operations the kernels use, as static inline functions named
 * ecp_v_<op>_<isa>_<suf> (isa avx512, avx2 or neon; suf f or d). The kernels (ecp_direct_*.h)
 * are written once over these and instantiated per (type, ISA).
 *
 * Per (ISA, type):
 *   V   a vector of VL lanes (a GCC vector type: + and * work on it, a scalar operand is
 *       broadcast), VU the same with the element's alignment (unaligned loads and stores by
 *       dereference), M a lane mask of V, H a half vector (VL/2 lanes, also a GCC vector type),
 *       HM a lane mask of H;
 *   mask(bits) / hmask(bits): M / HM from a bitmask (bit l: lane l); lanes(lo, hi): M of the
 *       lanes lo .. hi-1 (mask(ecp_lanes(lo, hi, VL))); on AVX-512 built by vector compares so
 *       that GCC keeps it in a k register rather than in memory;
 *   loadz(m, p): lanes of m from p, zeros elsewhere -- lanes outside m are never read, so p may
 *       point where only the masked lanes lie inside an array; loadm(v, m, p) the same with v's
 *       lanes elsewhere; storem(p, m, v): lanes of m only;
 *   store(p, v), zero(); hloadz, hstore, hzero for half vectors;
 *   even1(v): lanes 0 .. VL/2-1 = v[0], v[2], ... (the others unspecified);
 *   even2(a, b): a[0], a[2], ..., a[VL-2], b[0], b[2], ..., b[VL-2]; odd2(a, b) the same of
 *       lanes 1, 3, ..., VL-1;
 *   spread(v, m): lane l = v[l/2] where m has lane l, else 0 (m: the even or the odd lanes);
 *   ilv(e, o): e[0], o[0], e[1], o[1], ... (two half vectors interleaved into one vector);
 *   lo(v), hi(v): lanes 0 .. VL/2-1 and VL/2 .. VL-1 of v as a half vector;
 *   sum_planes: ecp_sum_planes (ecp_direct.h) for this ISA.
 * Every operation is exact (moves, and adds whose operand order the kernels fix), so the
 * results do not depend on the ISA except through the vector width where the kernels' sums
 * are grouped by it (noted there).
 */
#ifndef ECP_VEC_H
#define ECP_VEC_H

#include <stddef.h>

/* The lanes lo .. hi-1 of n (none when hi <= lo), as a bitmask */
static inline unsigned ecp_lanes(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n)
{
    if (lo < 0) lo = 0;
    if (hi > n) hi = n;
    return hi > lo ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0u;
}

/* ------------------------------------------------------------------------------------------ */
#if ECP_BUILD_AVX512

#include <immintrin.h>
#define ECP_TARGET_avx512 __attribute__((target("avx512f,avx512vl,fma")))
#define ECP_VL_avx512_f 16
#define ECP_VL_avx512_d 8
#define ECP_TP_avx512 8   /* tile rows per pass: 8 x 2 vectors = 16 of the 32 zmm registers */

typedef __m512 ecp_v_V_avx512_f;
typedef float ecp_v_VU_avx512_f __attribute__((vector_size(64), aligned(4)));
typedef __mmask16 ecp_v_M_avx512_f;
typedef __m256 ecp_v_H_avx512_f;
typedef __mmask8 ecp_v_HM_avx512_f;
typedef __m512d ecp_v_V_avx512_d;
typedef double ecp_v_VU_avx512_d __attribute__((vector_size(64), aligned(8)));
typedef __mmask8 ecp_v_M_avx512_d;
typedef __m256d ecp_v_H_avx512_d;
typedef __mmask8 ecp_v_HM_avx512_d;

ECP_TARGET_avx512 static inline __mmask16 ecp_v_mask_avx512_f(unsigned m) { return (__mmask16)m; }
ECP_TARGET_avx512 static inline __mmask8 ecp_v_hmask_avx512_f(unsigned m) { return (__mmask8)m; }
ECP_TARGET_avx512 static inline __mmask16 ecp_v_lanes_avx512_f(ptrdiff_t lo, ptrdiff_t hi)
{
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    return _mm512_mask_cmplt_epi32_mask(_mm512_cmpge_epi32_mask(iota, _mm512_set1_epi32((int)lo)),
                                        iota, _mm512_set1_epi32((int)hi));
}
ECP_TARGET_avx512 static inline __m512 ecp_v_loadz_avx512_f(__mmask16 m, const float *p)
{
    return _mm512_maskz_loadu_ps(m, p);
}
ECP_TARGET_avx512 static inline __m512 ecp_v_loadm_avx512_f(__m512 v, __mmask16 m, const float *p)
{
    return _mm512_mask_loadu_ps(v, m, p);
}
ECP_TARGET_avx512 static inline void ecp_v_storem_avx512_f(float *p, __mmask16 m, __m512 v)
{
    _mm512_mask_storeu_ps(p, m, v);
}
ECP_TARGET_avx512 static inline void ecp_v_store_avx512_f(float *p, __m512 v) { _mm512_storeu_ps(p, v); }
ECP_TARGET_avx512 static inline __m512 ecp_v_zero_avx512_f(void) { return _mm512_setzero_ps(); }
ECP_TARGET_avx512 static inline __m256 ecp_v_hloadz_avx512_f(__mmask8 m, const float *p)
{
    return _mm256_maskz_loadu_ps(m, p);
}
ECP_TARGET_avx512 static inline void ecp_v_hstore_avx512_f(float *p, __m256 v) { _mm256_storeu_ps(p, v); }
ECP_TARGET_avx512 static inline __m256 ecp_v_hzero_avx512_f(void) { return _mm256_setzero_ps(); }
ECP_TARGET_avx512 static inline __m512 ecp_v_even1_avx512_f(__m512 v)
{
    return _mm512_permutexvar_ps(
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0), v);
}
ECP_TARGET_avx512 static inline __m512 ecp_v_even2_avx512_f(__m512 a, __m512 b)
{
    return _mm512_permutex2var_ps(
        a, _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0), b);
}
ECP_TARGET_avx512 static inline __m512 ecp_v_odd2_avx512_f(__m512 a, __m512 b)
{
    return _mm512_permutex2var_ps(
        a, _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1), b);
}
ECP_TARGET_avx512 static inline __m512 ecp_v_spread_avx512_f(__m512 v, __mmask16 m)
{
    return _mm512_maskz_permutexvar_ps(
        m, _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), v);
}
ECP_TARGET_avx512 static inline __m512 ecp_v_ilv_avx512_f(__m256 e, __m256 o)
{
    return _mm512_permutex2var_ps(
        _mm512_zextps256_ps512(e),
        _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0),
        _mm512_zextps256_ps512(o));
}
ECP_TARGET_avx512 static inline __m256 ecp_v_lo_avx512_f(__m512 v) { return _mm512_castps512_ps256(v); }
ECP_TARGET_avx512 static inline __m256 ecp_v_hi_avx512_f(__m512 v)
{
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

ECP_TARGET_avx512 static inline __mmask8 ecp_v_mask_avx512_d(unsigned m) { return (__mmask8)m; }
ECP_TARGET_avx512 static inline __mmask8 ecp_v_hmask_avx512_d(unsigned m) { return (__mmask8)m; }
ECP_TARGET_avx512 static inline __mmask8 ecp_v_lanes_avx512_d(ptrdiff_t lo, ptrdiff_t hi)
{
    const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    lo = lo < 0 ? 0 : lo > 8 ? 8 : lo;
    hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    return _mm512_mask_cmplt_epi64_mask(_mm512_cmpge_epi64_mask(iota, _mm512_set1_epi64(lo)),
                                        iota, _mm512_set1_epi64(hi));
}
ECP_TARGET_avx512 static inline __m512d ecp_v_loadz_avx512_d(__mmask8 m, const double *p)
{
    return _mm512_maskz_loadu_pd(m, p);
}
ECP_TARGET_avx512 static inline __m512d ecp_v_loadm_avx512_d(__m512d v, __mmask8 m, const double *p)
{
    return _mm512_mask_loadu_pd(v, m, p);
}
ECP_TARGET_avx512 static inline void ecp_v_storem_avx512_d(double *p, __mmask8 m, __m512d v)
{
    _mm512_mask_storeu_pd(p, m, v);
}
ECP_TARGET_avx512 static inline void ecp_v_store_avx512_d(double *p, __m512d v) { _mm512_storeu_pd(p, v); }
ECP_TARGET_avx512 static inline __m512d ecp_v_zero_avx512_d(void) { return _mm512_setzero_pd(); }
ECP_TARGET_avx512 static inline __m256d ecp_v_hloadz_avx512_d(__mmask8 m, const double *p)
{
    return _mm256_maskz_loadu_pd(m, p);
}
ECP_TARGET_avx512 static inline void ecp_v_hstore_avx512_d(double *p, __m256d v) { _mm256_storeu_pd(p, v); }
ECP_TARGET_avx512 static inline __m256d ecp_v_hzero_avx512_d(void) { return _mm256_setzero_pd(); }
ECP_TARGET_avx512 static inline __m512d ecp_v_even1_avx512_d(__m512d v)
{
    return _mm512_permutexvar_pd(_mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), v);
}
ECP_TARGET_avx512 static inline __m512d ecp_v_even2_avx512_d(__m512d a, __m512d b)
{
    return _mm512_permutex2var_pd(a, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), b);
}
ECP_TARGET_avx512 static inline __m512d ecp_v_odd2_avx512_d(__m512d a, __m512d b)
{
    return _mm512_permutex2var_pd(a, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), b);
}
ECP_TARGET_avx512 static inline __m512d ecp_v_spread_avx512_d(__m512d v, __mmask8 m)
{
    return _mm512_maskz_permutexvar_pd(m, _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0), v);
}
ECP_TARGET_avx512 static inline __m512d ecp_v_ilv_avx512_d(__m256d e, __m256d o)
{
    return _mm512_permutex2var_pd(_mm512_zextpd256_pd512(e),
                                  _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0),
                                  _mm512_zextpd256_pd512(o));
}
ECP_TARGET_avx512 static inline __m256d ecp_v_lo_avx512_d(__m512d v) { return _mm512_castpd512_pd256(v); }
ECP_TARGET_avx512 static inline __m256d ecp_v_hi_avx512_d(__m512d v) { return _mm512_extractf64x4_pd(v, 1); }

/* The sum, in double, of count planes of n values, stride apart: eight values converted per step
 * into four accumulators kept over all the planes, reduced once (see ecp_sum_planes) */
#define ECP_LOAD8_F(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define ECP_LOADM8_F(m, p) _mm512_cvtps_pd(_mm256_maskz_loadu_ps((m), (p)))
ECP_TARGET_avx512 static inline double ecp_v_sum_planes_avx512_f(const float *src, ptrdiff_t n,
                                                                 ptrdiff_t count, ptrdiff_t stride)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
    const __mmask8 tail = (__mmask8)((1u << (n % 8)) - 1);
    for (ptrdiff_t c = 0; c < count; c++) {
        const float *p = src + c * stride;
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            a0 = _mm512_add_pd(a0, ECP_LOAD8_F(p + i));
            a1 = _mm512_add_pd(a1, ECP_LOAD8_F(p + i + 8));
            a2 = _mm512_add_pd(a2, ECP_LOAD8_F(p + i + 16));
            a3 = _mm512_add_pd(a3, ECP_LOAD8_F(p + i + 24));
        }
        for (; i + 8 <= n; i += 8) a0 = _mm512_add_pd(a0, ECP_LOAD8_F(p + i));
        if (i < n) a1 = _mm512_add_pd(a1, ECP_LOADM8_F(tail, p + i));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}
ECP_TARGET_avx512 static inline double ecp_v_sum_planes_avx512_d(const double *src, ptrdiff_t n,
                                                                 ptrdiff_t count, ptrdiff_t stride)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
    const __mmask8 tail = (__mmask8)((1u << (n % 8)) - 1);
    for (ptrdiff_t c = 0; c < count; c++) {
        const double *p = src + c * stride;
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            a0 = _mm512_add_pd(a0, _mm512_loadu_pd(p + i));
            a1 = _mm512_add_pd(a1, _mm512_loadu_pd(p + i + 8));
            a2 = _mm512_add_pd(a2, _mm512_loadu_pd(p + i + 16));
            a3 = _mm512_add_pd(a3, _mm512_loadu_pd(p + i + 24));
        }
        for (; i + 8 <= n; i += 8) a0 = _mm512_add_pd(a0, _mm512_loadu_pd(p + i));
        if (i < n) a1 = _mm512_add_pd(a1, _mm512_maskz_loadu_pd(tail, p + i));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

/* r[i][j] <- r[j][i]: a 16 x 16 block of floats transposed in registers */
ECP_TARGET_avx512 static inline void ecp_v_transpose16_avx512_f(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
}

/* ecp_transpose_f (ecp_direct.h) by 16 x 16 blocks transposed in registers (the backward's
 * k-major dW slots into dW, whose scalar move wrote each value a row of dW apart) */
ECP_TARGET_avx512 static void ecp_v_transpose_avx512_f(const float *restrict src, ptrdiff_t lds,
                                                       ptrdiff_t rows, ptrdiff_t cols,
                                                       float *restrict dst, ptrdiff_t ldd)
{
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 16)
        for (ptrdiff_t j0 = 0; j0 < cols; j0 += 16) {
            const __mmask16 jm = (__mmask16)ecp_lanes(0, cols - j0, 16);
            const __mmask16 im = (__mmask16)ecp_lanes(0, rows - i0, 16);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i0 + i < rows ? _mm512_maskz_loadu_ps(jm, src + (i0 + i) * lds + j0)
                                     : _mm512_setzero_ps();
            ecp_v_transpose16_avx512_f(r);
            for (int j = 0; j < 16 && j0 + j < cols; j++)
                _mm512_mask_storeu_ps(dst + (j0 + j) * ldd + i0, im, r[j]);
        }
}

/* ecp_pack_weights_v_f for nr a multiple of 16: each block of 16 filters transposed by
 * ecp_v_transpose_avx512_f (rather than a scalar copy, whose writes lie a row of nr apart: every
 * thread packs its own copy in every call) */
ECP_TARGET_avx512 static void ecp_v_pack_weights_v_avx512_f(const float *restrict w, ptrdiff_t O,
                                                            ptrdiff_t K, ptrdiff_t nr,
                                                            float *restrict wv)
{
    const ptrdiff_t nov = (O + nr - 1) / nr;
    for (ptrdiff_t ob = 0; ob < nov; ob++)
        for (ptrdiff_t l0 = 0; l0 < nr; l0 += 16) {
            const ptrdiff_t o0 = ob * nr + l0, on = O - o0 < 16 ? O - o0 : 16;
            float *d = wv + ob * K * nr + l0;
            if (on < 16)   /* lanes of filters past O: zeros */
                for (ptrdiff_t k = 0; k < K; k++) memset(d + k * nr, 0, 16 * sizeof(float));
            if (on > 0) ecp_v_transpose_avx512_f(w + o0 * K, K, on, K, d, nr);
        }
}

#endif  /* ECP_BUILD_AVX512 */

/* ------------------------------------------------------------------------------------------ */
#if ECP_BUILD_AVX2

#include <immintrin.h>
#define ECP_TARGET_avx2 __attribute__((target("avx2,fma")))
#define ECP_VL_avx2_f 8
#define ECP_VL_avx2_d 4
/* tile rows per pass: 4 x 2 vectors = 8 accumulators + 2 of B + 1 broadcast of the 16 ymm
 * registers (8 x 2 would need 19 and spill); the 8-row tile runs as two passes over l */
#define ECP_TP_avx2 4

typedef __m256 ecp_v_V_avx2_f;
typedef float ecp_v_VU_avx2_f __attribute__((vector_size(32), aligned(4)));
typedef __m256i ecp_v_M_avx2_f;
typedef __m128 ecp_v_H_avx2_f;
typedef __m128i ecp_v_HM_avx2_f;
typedef __m256d ecp_v_V_avx2_d;
typedef double ecp_v_VU_avx2_d __attribute__((vector_size(32), aligned(8)));
typedef __m256i ecp_v_M_avx2_d;
typedef __m128d ecp_v_H_avx2_d;
typedef __m128i ecp_v_HM_avx2_d;

ECP_TARGET_avx2 static inline __m256i ecp_v_mask_avx2_f(unsigned m)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
}
ECP_TARGET_avx2 static inline __m256i ecp_v_lanes_avx2_f(ptrdiff_t lo, ptrdiff_t hi)
{
    return ecp_v_mask_avx2_f(ecp_lanes(lo, hi, 8));
}
ECP_TARGET_avx2 static inline __m128i ecp_v_hmask_avx2_f(unsigned m)
{
    const __m128i bits = _mm_setr_epi32(1, 2, 4, 8);
    return _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32((int)m), bits), bits);
}
ECP_TARGET_avx2 static inline __m256 ecp_v_loadz_avx2_f(__m256i m, const float *p)
{
    return _mm256_maskload_ps(p, m);
}
ECP_TARGET_avx2 static inline __m256 ecp_v_loadm_avx2_f(__m256 v, __m256i m, const float *p)
{
    return _mm256_blendv_ps(v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
ECP_TARGET_avx2 static inline void ecp_v_storem_avx2_f(float *p, __m256i m, __m256 v)
{
    _mm256_maskstore_ps(p, m, v);
}
ECP_TARGET_avx2 static inline void ecp_v_store_avx2_f(float *p, __m256 v) { _mm256_storeu_ps(p, v); }
ECP_TARGET_avx2 static inline __m256 ecp_v_zero_avx2_f(void) { return _mm256_setzero_ps(); }
ECP_TARGET_avx2 static inline __m128 ecp_v_hloadz_avx2_f(__m128i m, const float *p)
{
    return _mm_maskload_ps(p, m);
}
ECP_TARGET_avx2 static inline void ecp_v_hstore_avx2_f(float *p, __m128 v) { _mm_storeu_ps(p, v); }
ECP_TARGET_avx2 static inline __m128 ecp_v_hzero_avx2_f(void) { return _mm_setzero_ps(); }
ECP_TARGET_avx2 static inline __m256 ecp_v_even1_avx2_f(__m256 v)
{
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
}
ECP_TARGET_avx2 static inline __m256 ecp_v_even2_avx2_f(__m256 a, __m256 b)
{
    /* a0 a2 b0 b2 | a4 a6 b4 b6, then the 64-bit pairs reordered */
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
ECP_TARGET_avx2 static inline __m256 ecp_v_odd2_avx2_f(__m256 a, __m256 b)
{
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
ECP_TARGET_avx2 static inline __m256 ecp_v_spread_avx2_f(__m256 v, __m256i m)
{
    const __m256 s = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    return _mm256_and_ps(s, _mm256_castsi256_ps(m));
}
ECP_TARGET_avx2 static inline __m256 ecp_v_ilv_avx2_f(__m128 e, __m128 o)
{
    return _mm256_set_m128(_mm_unpackhi_ps(e, o), _mm_unpacklo_ps(e, o));
}
ECP_TARGET_avx2 static inline __m128 ecp_v_lo_avx2_f(__m256 v) { return _mm256_castps256_ps128(v); }
ECP_TARGET_avx2 static inline __m128 ecp_v_hi_avx2_f(__m256 v) { return _mm256_extractf128_ps(v, 1); }

ECP_TARGET_avx2 static inline __m256i ecp_v_mask_avx2_d(unsigned m)
{
    const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x((long long)m), bits), bits);
}
ECP_TARGET_avx2 static inline __m256i ecp_v_lanes_avx2_d(ptrdiff_t lo, ptrdiff_t hi)
{
    return ecp_v_mask_avx2_d(ecp_lanes(lo, hi, 4));
}
ECP_TARGET_avx2 static inline __m128i ecp_v_hmask_avx2_d(unsigned m)
{
    const __m128i bits = _mm_set_epi64x(2, 1);
    return _mm_cmpeq_epi64(_mm_and_si128(_mm_set1_epi64x((long long)m), bits), bits);
}
ECP_TARGET_avx2 static inline __m256d ecp_v_loadz_avx2_d(__m256i m, const double *p)
{
    return _mm256_maskload_pd(p, m);
}
ECP_TARGET_avx2 static inline __m256d ecp_v_loadm_avx2_d(__m256d v, __m256i m, const double *p)
{
    return _mm256_blendv_pd(v, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
ECP_TARGET_avx2 static inline void ecp_v_storem_avx2_d(double *p, __m256i m, __m256d v)
{
    _mm256_maskstore_pd(p, m, v);
}
ECP_TARGET_avx2 static inline void ecp_v_store_avx2_d(double *p, __m256d v) { _mm256_storeu_pd(p, v); }
ECP_TARGET_avx2 static inline __m256d ecp_v_zero_avx2_d(void) { return _mm256_setzero_pd(); }
ECP_TARGET_avx2 static inline __m128d ecp_v_hloadz_avx2_d(__m128i m, const double *p)
{
    return _mm_maskload_pd(p, m);
}
ECP_TARGET_avx2 static inline void ecp_v_hstore_avx2_d(double *p, __m128d v) { _mm_storeu_pd(p, v); }
ECP_TARGET_avx2 static inline __m128d ecp_v_hzero_avx2_d(void) { return _mm_setzero_pd(); }
ECP_TARGET_avx2 static inline __m256d ecp_v_even1_avx2_d(__m256d v)
{
    return _mm256_permute4x64_pd(v, _MM_SHUFFLE(2, 0, 2, 0));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_even2_avx2_d(__m256d a, __m256d b)
{
    /* a0 b0 | a2 b2, then the lanes reordered */
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_odd2_avx2_d(__m256d a, __m256d b)
{
    return _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_spread_avx2_d(__m256d v, __m256i m)
{
    return _mm256_and_pd(_mm256_permute4x64_pd(v, _MM_SHUFFLE(1, 1, 0, 0)), _mm256_castsi256_pd(m));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_ilv_avx2_d(__m128d e, __m128d o)
{
    return _mm256_set_m128d(_mm_unpackhi_pd(e, o), _mm_unpacklo_pd(e, o));
}
ECP_TARGET_avx2 static inline __m128d ecp_v_lo_avx2_d(__m256d v) { return _mm256_castpd256_pd128(v); }
ECP_TARGET_avx2 static inline __m128d ecp_v_hi_avx2_d(__m256d v) { return _mm256_extractf128_pd(v, 1); }

/* ecp_v_sum_planes_avx512: the same sums in the same order (each 8-lane accumulator as two
 * 4-lane halves, the final reduction as _mm512_reduce_add_pd's), so the same bits */
ECP_TARGET_avx2 static inline __m256d ecp_v_cvt4_avx2_f(const float *p)
{
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_cvt4_avx2_d(const double *p) { return _mm256_loadu_pd(p); }
ECP_TARGET_avx2 static inline __m256d ecp_v_cvt4m_avx2_f(unsigned m, const float *p)
{
    return _mm256_cvtps_pd(_mm_maskload_ps(p, ecp_v_hmask_avx2_f(m)));
}
ECP_TARGET_avx2 static inline __m256d ecp_v_cvt4m_avx2_d(unsigned m, const double *p)
{
    return _mm256_maskload_pd(p, ecp_v_mask_avx2_d(m));
}
ECP_TARGET_avx2 static inline double ecp_v_hsum8_avx2(__m256d lo, __m256d hi)
{
    const __m256d t3 = hi + lo;
    const __m128d t6 = _mm256_extractf128_pd(t3, 1) + _mm256_castpd256_pd128(t3);
    return t6[0] + t6[1];
}
ECP_TARGET_avx2 static inline double ecp_v_sum_planes_avx2_f(const float *src, ptrdiff_t n,
                                                             ptrdiff_t count, ptrdiff_t stride)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const unsigned tail = (1u << (n % 8)) - 1;
    for (ptrdiff_t c = 0; c < count; c++) {
        const float *p = src + c * stride;
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            a0 += ecp_v_cvt4_avx2_f(p + i); b0 += ecp_v_cvt4_avx2_f(p + i + 4);
            a1 += ecp_v_cvt4_avx2_f(p + i + 8); b1 += ecp_v_cvt4_avx2_f(p + i + 12);
            a2 += ecp_v_cvt4_avx2_f(p + i + 16); b2 += ecp_v_cvt4_avx2_f(p + i + 20);
            a3 += ecp_v_cvt4_avx2_f(p + i + 24); b3 += ecp_v_cvt4_avx2_f(p + i + 28);
        }
        for (; i + 8 <= n; i += 8) {
            a0 += ecp_v_cvt4_avx2_f(p + i);
            b0 += ecp_v_cvt4_avx2_f(p + i + 4);
        }
        if (i < n) {
            a1 += ecp_v_cvt4m_avx2_f(tail & 15u, p + i);
            b1 += ecp_v_cvt4m_avx2_f(tail >> 4, p + i + 4);
        }
    }
    return ecp_v_hsum8_avx2((a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3));
}
ECP_TARGET_avx2 static inline double ecp_v_sum_planes_avx2_d(const double *src, ptrdiff_t n,
                                                             ptrdiff_t count, ptrdiff_t stride)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const unsigned tail = (1u << (n % 8)) - 1;
    for (ptrdiff_t c = 0; c < count; c++) {
        const double *p = src + c * stride;
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            a0 += ecp_v_cvt4_avx2_d(p + i); b0 += ecp_v_cvt4_avx2_d(p + i + 4);
            a1 += ecp_v_cvt4_avx2_d(p + i + 8); b1 += ecp_v_cvt4_avx2_d(p + i + 12);
            a2 += ecp_v_cvt4_avx2_d(p + i + 16); b2 += ecp_v_cvt4_avx2_d(p + i + 20);
            a3 += ecp_v_cvt4_avx2_d(p + i + 24); b3 += ecp_v_cvt4_avx2_d(p + i + 28);
        }
        for (; i + 8 <= n; i += 8) {
            a0 += ecp_v_cvt4_avx2_d(p + i);
            b0 += ecp_v_cvt4_avx2_d(p + i + 4);
        }
        if (i < n) {
            a1 += ecp_v_cvt4m_avx2_d(tail & 15u, p + i);
            b1 += ecp_v_cvt4m_avx2_d(tail >> 4, p + i + 4);
        }
    }
    return ecp_v_hsum8_avx2((a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3));
}

#endif  /* ECP_BUILD_AVX2 */

/* ------------------------------------------------------------------------------------------ */
#if ECP_BUILD_NEON

/* Correctness first: GCC vector types of 128 bits (NEON registers) and lane loops for the masked
 * moves and permutes (no NEON form of them written yet). */
#define ECP_TARGET_neon
#define ECP_VL_neon_f 4
#define ECP_VL_neon_d 2
#define ECP_TP_neon 8   /* 16 accumulators + 2 + 1 of the 32 NEON registers */

typedef float ecp_v_V_neon_f __attribute__((vector_size(16)));
typedef float ecp_v_VU_neon_f __attribute__((vector_size(16), aligned(sizeof(float))));
typedef unsigned ecp_v_M_neon_f;
typedef float ecp_v_H_neon_f __attribute__((vector_size(8)));
typedef unsigned ecp_v_HM_neon_f;
static inline unsigned ecp_v_mask_neon_f(unsigned m) { return m; }
static inline unsigned ecp_v_lanes_neon_f(ptrdiff_t lo, ptrdiff_t hi) { return ecp_lanes(lo, hi, 4); }
static inline unsigned ecp_v_hmask_neon_f(unsigned m) { return m; }
static inline ecp_v_V_neon_f ecp_v_loadz_neon_f(unsigned m, const float *p)
{
    ecp_v_V_neon_f v = {0};
    for (int l = 0; l < 4; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline ecp_v_V_neon_f ecp_v_loadm_neon_f(ecp_v_V_neon_f v, unsigned m, const float *p)
{
    for (int l = 0; l < 4; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline void ecp_v_storem_neon_f(float *p, unsigned m, ecp_v_V_neon_f v)
{
    for (int l = 0; l < 4; l++)
        if (m >> l & 1u) p[l] = v[l];
}
static inline void ecp_v_store_neon_f(float *p, ecp_v_V_neon_f v)
{
    *(ecp_v_VU_neon_f *)p = v;
}
static inline ecp_v_V_neon_f ecp_v_zero_neon_f(void)
{
    const ecp_v_V_neon_f z = {0};
    return z;
}
static inline ecp_v_H_neon_f ecp_v_hloadz_neon_f(unsigned m, const float *p)
{
    ecp_v_H_neon_f v = {0};
    for (int l = 0; l < 4 / 2; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline void ecp_v_hstore_neon_f(float *p, ecp_v_H_neon_f v)
{
    for (int l = 0; l < 4 / 2; l++) p[l] = v[l];
}
static inline ecp_v_H_neon_f ecp_v_hzero_neon_f(void)
{
    const ecp_v_H_neon_f z = {0};
    return z;
}
static inline ecp_v_V_neon_f ecp_v_even1_neon_f(ecp_v_V_neon_f v)
{
    ecp_v_V_neon_f r = {0};
    for (int l = 0; l < 4 / 2; l++) r[l] = v[2 * l];
    return r;
}
static inline ecp_v_V_neon_f ecp_v_even2_neon_f(ecp_v_V_neon_f a, ecp_v_V_neon_f b)
{
    ecp_v_V_neon_f r;
    for (int l = 0; l < 4 / 2; l++) {
        r[l] = a[2 * l];
        r[4 / 2 + l] = b[2 * l];
    }
    return r;
}
static inline ecp_v_V_neon_f ecp_v_odd2_neon_f(ecp_v_V_neon_f a, ecp_v_V_neon_f b)
{
    ecp_v_V_neon_f r;
    for (int l = 0; l < 4 / 2; l++) {
        r[l] = a[2 * l + 1];
        r[4 / 2 + l] = b[2 * l + 1];
    }
    return r;
}
static inline ecp_v_V_neon_f ecp_v_spread_neon_f(ecp_v_V_neon_f v, unsigned m)
{
    ecp_v_V_neon_f r = {0};
    for (int l = 0; l < 4; l++)
        if (m >> l & 1u) r[l] = v[l / 2];
    return r;
}
static inline ecp_v_V_neon_f ecp_v_ilv_neon_f(ecp_v_H_neon_f e, ecp_v_H_neon_f o)
{
    ecp_v_V_neon_f r;
    for (int l = 0; l < 4 / 2; l++) {
        r[2 * l] = e[l];
        r[2 * l + 1] = o[l];
    }
    return r;
}
static inline ecp_v_H_neon_f ecp_v_lo_neon_f(ecp_v_V_neon_f v)
{
    ecp_v_H_neon_f r;
    for (int l = 0; l < 4 / 2; l++) r[l] = v[l];
    return r;
}
static inline ecp_v_H_neon_f ecp_v_hi_neon_f(ecp_v_V_neon_f v)
{
    ecp_v_H_neon_f r;
    for (int l = 0; l < 4 / 2; l++) r[l] = v[4 / 2 + l];
    return r;
}

typedef double ecp_v_V_neon_d __attribute__((vector_size(16)));
typedef double ecp_v_VU_neon_d __attribute__((vector_size(16), aligned(sizeof(double))));
typedef unsigned ecp_v_M_neon_d;
typedef double ecp_v_H_neon_d __attribute__((vector_size(8)));
typedef unsigned ecp_v_HM_neon_d;
static inline unsigned ecp_v_mask_neon_d(unsigned m) { return m; }
static inline unsigned ecp_v_lanes_neon_d(ptrdiff_t lo, ptrdiff_t hi) { return ecp_lanes(lo, hi, 2); }
static inline unsigned ecp_v_hmask_neon_d(unsigned m) { return m; }
static inline ecp_v_V_neon_d ecp_v_loadz_neon_d(unsigned m, const double *p)
{
    ecp_v_V_neon_d v = {0};
    for (int l = 0; l < 2; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline ecp_v_V_neon_d ecp_v_loadm_neon_d(ecp_v_V_neon_d v, unsigned m, const double *p)
{
    for (int l = 0; l < 2; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline void ecp_v_storem_neon_d(double *p, unsigned m, ecp_v_V_neon_d v)
{
    for (int l = 0; l < 2; l++)
        if (m >> l & 1u) p[l] = v[l];
}
static inline void ecp_v_store_neon_d(double *p, ecp_v_V_neon_d v)
{
    *(ecp_v_VU_neon_d *)p = v;
}
static inline ecp_v_V_neon_d ecp_v_zero_neon_d(void)
{
    const ecp_v_V_neon_d z = {0};
    return z;
}
static inline ecp_v_H_neon_d ecp_v_hloadz_neon_d(unsigned m, const double *p)
{
    ecp_v_H_neon_d v = {0};
    for (int l = 0; l < 2 / 2; l++)
        if (m >> l & 1u) v[l] = p[l];
    return v;
}
static inline void ecp_v_hstore_neon_d(double *p, ecp_v_H_neon_d v)
{
    for (int l = 0; l < 2 / 2; l++) p[l] = v[l];
}
static inline ecp_v_H_neon_d ecp_v_hzero_neon_d(void)
{
    const ecp_v_H_neon_d z = {0};
    return z;
}
static inline ecp_v_V_neon_d ecp_v_even1_neon_d(ecp_v_V_neon_d v)
{
    ecp_v_V_neon_d r = {0};
    for (int l = 0; l < 2 / 2; l++) r[l] = v[2 * l];
    return r;
}
static inline ecp_v_V_neon_d ecp_v_even2_neon_d(ecp_v_V_neon_d a, ecp_v_V_neon_d b)
{
    ecp_v_V_neon_d r;
    for (int l = 0; l < 2 / 2; l++) {
        r[l] = a[2 * l];
        r[2 / 2 + l] = b[2 * l];
    }
    return r;
}
static inline ecp_v_V_neon_d ecp_v_odd2_neon_d(ecp_v_V_neon_d a, ecp_v_V_neon_d b)
{
    ecp_v_V_neon_d r;
    for (int l = 0; l < 2 / 2; l++) {
        r[l] = a[2 * l + 1];
        r[2 / 2 + l] = b[2 * l + 1];
    }
    return r;
}
static inline ecp_v_V_neon_d ecp_v_spread_neon_d(ecp_v_V_neon_d v, unsigned m)
{
    ecp_v_V_neon_d r = {0};
    for (int l = 0; l < 2; l++)
        if (m >> l & 1u) r[l] = v[l / 2];
    return r;
}
static inline ecp_v_V_neon_d ecp_v_ilv_neon_d(ecp_v_H_neon_d e, ecp_v_H_neon_d o)
{
    ecp_v_V_neon_d r;
    for (int l = 0; l < 2 / 2; l++) {
        r[2 * l] = e[l];
        r[2 * l + 1] = o[l];
    }
    return r;
}
static inline ecp_v_H_neon_d ecp_v_lo_neon_d(ecp_v_V_neon_d v)
{
    ecp_v_H_neon_d r;
    for (int l = 0; l < 2 / 2; l++) r[l] = v[l];
    return r;
}
static inline ecp_v_H_neon_d ecp_v_hi_neon_d(ecp_v_V_neon_d v)
{
    ecp_v_H_neon_d r;
    for (int l = 0; l < 2 / 2; l++) r[l] = v[2 / 2 + l];
    return r;
}

#endif  /* ECP_BUILD_NEON */

#endif
