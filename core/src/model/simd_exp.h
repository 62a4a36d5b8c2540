// Vectorised exp with AVX2 + FMA, shared by the fused CPU kernels: 8 floats (attention's soft-max, SwiGLU's SiLU)
// and 4 doubles (quant-kl's log-sum-exp); and a lane sum.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

namespace qpruner::model {

// Cephes expf: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-5 polynomial, 2^n through the exponent.
// Within 2 ulp of std::exp over [-87, 88]; below -87.3 it returns 0, above 88.4 exp(88.4).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 tooSmall = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.37626f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x - n ln2, ln2 split in two for precision.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n: n + 127 into the exponent field. n ranges over [-126, 127] after the clamp.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(tooSmall, result);
}

// exp(x) for 4 doubles with AVX2 + FMA (Cephes' exp: x = n ln2 + r, exp(r) = 1 + 2r P(r^2) / (Q(r^2) - r P(r^2)),
// 2^n through the exponent): within 2 ulp of std::exp over [-708, 709]; inputs below -708 give exp(-708).
__attribute__((target("avx2,fma"))) inline __m256d exp4d(__m256d x)
{
    x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-708.0)), _mm256_set1_pd(709.0));
    const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634073599)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125E-1), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212E-6), r);
    const __m256d rr = _mm256_mul_pd(r, r);
    __m256d p = _mm256_fmadd_pd(_mm256_set1_pd(1.26177193074810590878E-4), rr,
                                _mm256_set1_pd(3.02994407707441961300E-2));
    p = _mm256_mul_pd(_mm256_fmadd_pd(p, rr, _mm256_set1_pd(9.99999999999999999910E-1)), r);
    __m256d q = _mm256_fmadd_pd(_mm256_set1_pd(3.00198505138664455042E-6), rr,
                                _mm256_set1_pd(2.52448340349684104192E-3));
    q = _mm256_fmadd_pd(q, rr, _mm256_set1_pd(2.27265548208155028766E-1));
    q = _mm256_fmadd_pd(q, rr, _mm256_set1_pd(2.00000000000000000009E0));
    const __m256d e = _mm256_fmadd_pd(_mm256_set1_pd(2.0), _mm256_div_pd(p, _mm256_sub_pd(q, p)), _mm256_set1_pd(1.0));
    // 2^n: n + 1023 into the exponent field (n in [-1022, 1023] after the clamp).
    const __m256i bits = _mm256_slli_epi64(
        _mm256_cvtepi32_epi64(_mm_add_epi32(_mm256_cvtpd_epi32(n), _mm_set1_epi32(1023))), 52);
    return _mm256_mul_pd(e, _mm256_castsi256_pd(bits));
}

// The sum of 8 floats' lanes.
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

} // namespace qpruner::model
#endif
