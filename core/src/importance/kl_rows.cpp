#include "importance/kl_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>

#include "model/cpu_features.h"
#include "model/simd_exp.h"

namespace qpruner::importance {

namespace {

// One row: logsumexp(z) - sum p z, in float64.
double rowScalar(const float* z, const double* p, int64_t V)
{
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t v = 0; v < V; ++v)
        mx = std::max(mx, z[v]);
    double s = 0, pz = 0;
    for (int64_t v = 0; v < V; ++v) {
        s += std::exp(double(z[v]) - double(mx));
        pz += p[v] * double(z[v]);
    }
    return double(mx) + std::log(s) - pz;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double hsum4d(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

__attribute__((target("avx2,fma"))) double rowAvx2(const float* z, const double* p, int64_t V)
{
    __m256 m8 = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    int64_t v = 0;
    for (; v + 8 <= V; v += 8)
        m8 = _mm256_max_ps(m8, _mm256_loadu_ps(z + v));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m8);
    float mx = *std::max_element(lanes, lanes + 8);
    for (; v < V; ++v)
        mx = std::max(mx, z[v]);
    const __m256d m = _mm256_set1_pd(double(mx));
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    v = 0;
    for (; v + 8 <= V; v += 8) {
        const __m256d z0 = _mm256_cvtps_pd(_mm_loadu_ps(z + v)), z1 = _mm256_cvtps_pd(_mm_loadu_ps(z + v + 4));
        s0 = _mm256_add_pd(s0, model::exp4d(_mm256_sub_pd(z0, m)));
        s1 = _mm256_add_pd(s1, model::exp4d(_mm256_sub_pd(z1, m)));
        q0 = _mm256_fmadd_pd(_mm256_loadu_pd(p + v), z0, q0);
        q1 = _mm256_fmadd_pd(_mm256_loadu_pd(p + v + 4), z1, q1);
    }
    double s = hsum4d(_mm256_add_pd(s0, s1)), pz = hsum4d(_mm256_add_pd(q0, q1));
    if (v < V) { // the tail through the same exp, zero-weighted padding
        alignas(32) double zt[8], pt[8] = {}, et[8];
        for (int i = 0; i < 8; ++i)
            zt[i] = v + i < V ? double(z[v + i]) - double(mx) : -1000.0;
        for (int64_t i = 0; v + i < V; ++i)
            pt[i] = p[v + i];
        _mm256_store_pd(et, model::exp4d(_mm256_load_pd(zt)));
        _mm256_store_pd(et + 4, model::exp4d(_mm256_load_pd(zt + 4)));
        for (int64_t i = 0; v + i < V; ++i) {
            s += et[i];
            pz += pt[i] * double(z[v + i]);
        }
    }
    return double(mx) + std::log(s) - pz;
}
#endif

} // namespace

double klRowsSum(const float* z, const double* p, const double* pLogP, int64_t n, int64_t V)
{
    std::vector<double> rows(size_t(std::max<int64_t>(n, 0)));
#if defined(__x86_64__)
    const auto& f = model::hostCpuFeatures();
    const bool avx2 = f.avx2 && f.fma;
#else
    const bool avx2 = false;
#endif
    at::parallel_for(0, n, std::max<int64_t>(1, 65536 / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
#if defined(__x86_64__)
            const double t = avx2 ? rowAvx2(z + r * V, p + r * V, V) : rowScalar(z + r * V, p + r * V, V);
#else
            const double t = rowScalar(z + r * V, p + r * V, V);
#endif
            rows[size_t(r)] = pLogP[r] + t;
        }
    });
    double total = 0;
    for (const double r : rows)
        total += r;
    return total;
}

} // namespace qpruner::importance
