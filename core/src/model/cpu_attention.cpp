// fusedCausalAttention: per (batch, head, query row), scores against the visible keys read from a transposed
// copy of K (so 8 keys' scores are hd FMAs, no horizontal sums), a max, exp and sum over them, then the
// probability-weighted sum of the value rows, normalised once at the end.
#include "model/cpu_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/cpu_features.h"
#include "model/simd_exp.h"
#include "qpruner/error.h"

namespace qpruner::model {

namespace {

#if defined(__x86_64__)

__attribute__((target("avx2,fma"))) void vectorExpAvx2(const float* in, float* out, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(in + i)));
    if (i < n) {
        alignas(32) float t[8] = {};
        std::copy(in + i, in + n, t);
        _mm256_store_ps(t, exp8(_mm256_load_ps(t)));
        std::copy(t, t + (n - i), out + i);
    }
}

__attribute__((target("avx2,fma"))) inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

struct Views {
    const float* q;
    const float* kt; // [B, nkv, hd, sPad]
    const float* v;
    float* out;      // [B, T, nh, hd]
    int64_t qsb, qsh, qst;
    int64_t vsb, vsh, vss;
    int64_t nh, nkv, T, S, sPad, hd;
};

constexpr int64_t kMaxChunks = 64; // head dims up to 512

// acc[c] = sum over j < n of p[j] * v[j * vs + 8c .. 8c + 8), for C chunks of 8 dims, with U keys' products in
// separate accumulators (U * C chains in flight instead of C: a head dim of 8 would otherwise wait on one chain).
template <int C, int U>
__attribute__((target("avx2,fma"))) inline void weightedRows(const float* p, int64_t n, const float* v, int64_t vs,
                                                            __m256* acc)
{
    // (The unroll pragmas keep part[][] in registers: -O2 leaves these loops rolled and part[][] in memory.)
    __m256 part[U][C];
#pragma GCC unroll 16
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c)
            part[u][c] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + U <= n; j += U)
#pragma GCC unroll 16
        for (int u = 0; u < U; ++u) {
            const __m256 pj = _mm256_broadcast_ss(p + j + u);
            const float* row = v + (j + u) * vs;
#pragma GCC unroll 16
            for (int c = 0; c < C; ++c)
                part[u][c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 8 * c), part[u][c]);
        }
    for (; j < n; ++j) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c)
            part[0][c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + j * vs + 8 * c), part[0][c]);
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
        __m256 sum = part[0][c];
#pragma GCC unroll 16
        for (int u = 1; u < U; ++u)
            sum = _mm256_add_ps(sum, part[u][c]);
        acc[c] = sum;
    }
}

__attribute__((target("avx2,fma"))) void weightedRowsAny(int64_t chunks, const float* p, int64_t n, const float* v,
                                                         int64_t vs, __m256* acc)
{
    for (int64_t c = 0; c < chunks; ++c)
        acc[c] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
        for (int64_t c = 0; c < chunks; ++c)
            acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + j * vs + 8 * c), acc[c]);
    }
}

// One query row: (b, h, t) sees keys [lo, hi].
__attribute__((target("avx2,fma"))) void attendRow(const Views& w, int64_t b, int64_t h, int64_t t, int64_t lo,
                                                   int64_t hi, float scale, float* scores)
{
    const int64_t hd = w.hd, kvh = h / (w.nh / w.nkv);
    const float* q = w.q + b * w.qsb + h * w.qsh + t * w.qst;
    const float* kt = w.kt + (b * w.nkv + kvh) * hd * w.sPad;
    const float* v = w.v + b * w.vsb + kvh * w.vsh;
    const int64_t n = hi - lo + 1;
    // Scores, 8 keys per lane group: sum over d of q[d] * K^T[d, s .. s+8), four groups at a time so that four
    // FMA chains are in flight. Lanes past hi are overwritten below.
    const __m256 vscale = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 32 <= n + 7; j += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const float* col = kt + lo + j;
        for (int64_t d = 0; d < hd; ++d, col += w.sPad) {
            const __m256 qd = _mm256_broadcast_ss(q + d);
            a0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(col), a0);
            a1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(col + 8), a1);
            a2 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(col + 16), a2);
            a3 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(col + 24), a3);
        }
        _mm256_storeu_ps(scores + j, _mm256_mul_ps(a0, vscale));
        _mm256_storeu_ps(scores + j + 8, _mm256_mul_ps(a1, vscale));
        _mm256_storeu_ps(scores + j + 16, _mm256_mul_ps(a2, vscale));
        _mm256_storeu_ps(scores + j + 24, _mm256_mul_ps(a3, vscale));
    }
    for (; j < n; j += 8) {
        __m256 acc = _mm256_setzero_ps();
        const float* col = kt + lo + j;
        for (int64_t d = 0; d < hd; ++d)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d), _mm256_loadu_ps(col + d * w.sPad), acc);
        _mm256_storeu_ps(scores + j, _mm256_mul_ps(acc, vscale));
    }
    // Whole 8-lane blocks throughout: the last block's lanes past n become -inf, so their exp is 0.
    const int64_t blocks = (n + 7) / 8, last = (blocks - 1) * 8;
    const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - last)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_ps(scores + last, _mm256_blendv_ps(ninf, _mm256_loadu_ps(scores + last), _mm256_castsi256_ps(valid)));
    __m256 vmax = ninf;
    for (int64_t j = 0; j < blocks * 8; j += 8)
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(scores + j));
    // exp(s - m) and its sum.
    const __m256 vm = _mm256_set1_ps(hmax8(vmax));
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < blocks * 8; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vm));
        _mm256_storeu_ps(scores + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    const float sum = hsum8(vsum);
    // The weighted sum of the value rows, 8 dims per accumulator (see weightedRows).
    __m256 acc[kMaxChunks];
    const float* vrow = v + lo * w.vss;
    switch (hd / 8) {
    case 1: weightedRows<1, 8>(scores, n, vrow, w.vss, acc); break;
    case 2: weightedRows<2, 4>(scores, n, vrow, w.vss, acc); break;
    case 3: weightedRows<3, 4>(scores, n, vrow, w.vss, acc); break;
    case 4: weightedRows<4, 2>(scores, n, vrow, w.vss, acc); break;
    case 8: weightedRows<8, 1>(scores, n, vrow, w.vss, acc); break;
    case 16: weightedRows<16, 1>(scores, n, vrow, w.vss, acc); break;
    default: weightedRowsAny(hd / 8, scores, n, vrow, w.vss, acc); break;
    }
    const int64_t chunks = hd / 8;
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    float* out = w.out + ((b * w.T + t) * w.nh + h) * hd;
    for (int64_t c = 0; c < chunks; ++c)
        _mm256_storeu_ps(out + 8 * c, _mm256_mul_ps(acc[c], inv));
}

#endif

} // namespace

void vectorExp(const float* in, float* out, int64_t n)
{
#if defined(__x86_64__)
    const auto& f = hostCpuFeatures();
    if (f.avx2 && f.fma) {
        vectorExpAvx2(in, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; ++i)
        out[i] = std::exp(in[i]);
}

namespace {
std::atomic<bool> fusedEnabled{true};
} // namespace

void setFusedAttentionEnabled(bool enabled) { fusedEnabled = enabled; }

namespace {
bool supported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v)
{
#if defined(__x86_64__)
    const auto& f = hostCpuFeatures();
    if (!(f.avx2 && f.fma && ownCpuKernelsEnabled()))
        return false;
    const bool grad = c10::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
    const int64_t hd = q.size(-1);
    return !grad && q.is_cpu() && k.is_cpu() && v.is_cpu() && q.scalar_type() == at::kFloat &&
           k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat && hd % 8 == 0 && hd <= 512;
#else
    (void)q, (void)k, (void)v;
    return false;
#endif
}
} // namespace

bool fusedAttentionApplies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v)
{
    return fusedEnabled && supported(q, k, v);
}

at::Tensor fusedCausalAttention(const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, int64_t pos,
                                double scale, int64_t window)
{
#if defined(__x86_64__)
    if (!supported(q0, k0, v0))
        throw ConfigError("fused attention: needs fp32 CPU tensors, head dim a multiple of 8 and no autograd");
    const int64_t B = q0.size(0), nh = q0.size(1), T = q0.size(2), hd = q0.size(3);
    const int64_t nkv = k0.size(1), S = k0.size(2);
    if (k0.sizes() != v0.sizes() || k0.size(0) != B || k0.size(3) != hd || nkv == 0 || nh % nkv != 0 ||
        pos + T > S)
        throw ConfigError("fused attention: q, k and v shapes do not match");
    const at::Tensor q = q0.stride(3) == 1 ? q0 : q0.contiguous();
    const at::Tensor v = v0.stride(3) == 1 ? v0 : v0.contiguous();
    // K^T with the key axis padded by zeros, so every 8-key step reads in bounds.
    const int64_t sPad = (S + 15) / 8 * 8; // 8-key steps may start anywhere up to S - 1
    at::Tensor kt = at::zeros({B, nkv, hd, sPad}, q.options());
    kt.narrow(3, 0, S).copy_(k0.transpose(2, 3));
    auto out = at::empty({B, T, nh * hd}, q.options());
    Views w{q.data_ptr<float>(), kt.data_ptr<float>(), v.data_ptr<float>(), out.data_ptr<float>(),
            q.stride(0), q.stride(1), q.stride(2), v.stride(0), v.stride(1), v.stride(2), nh, nkv, T, S, sPad, hd};
    const float s = float(scale);
    // Rows of one (b, h) cost more the later they are (causal), so each task is a row range of all heads.
    at::parallel_for(0, B * nh * T, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, S * hd)),
                     [&](int64_t r0, int64_t r1) {
        thread_local std::vector<float> scores;
        if (int64_t(scores.size()) < sPad + 8)
            scores.resize(size_t(sPad + 8));
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t t = r % T, h = (r / T) % nh, b = r / (T * nh);
            const int64_t p = pos + t;
            const int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
            attendRow(w, b, h, t, lo, p, s, scores.data());
        }
    });
    return out;
#else
    (void)q0, (void)k0, (void)v0, (void)pos, (void)scale, (void)window;
    throw ConfigError("fused attention: needs an x86-64 CPU with AVX2/FMA");
#endif
}

} // namespace qpruner::model
