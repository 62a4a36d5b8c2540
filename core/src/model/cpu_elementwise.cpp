// Fused RMSNorm, RoPE and SiLU-times-up for fp32 CPU inference: one pass over each row with AVX2/FMA, rows
// split over the intra-op threads in chunks of at least ~16K floats (smaller work stays on the calling thread).
#include "model/cpu_elementwise.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include <ATen/Parallel.h>

#include "model/cpu_features.h"
#include "model/simd_exp.h"
#include "qpruner/error.h"

namespace qpruner::model {

namespace {

std::atomic<bool> fusedEnabled{true};

constexpr int64_t kGrainFloats = 16384; // per parallel chunk

int64_t grainRows(int64_t rowLength) { return std::max<int64_t>(1, kGrainFloats / std::max<int64_t>(1, rowLength)); }

std::string shapeText(const at::Tensor& t)
{
    std::string s = "[";
    for (int64_t d = 0; d < t.dim(); ++d)
        s += (d ? ", " : "") + std::to_string(t.size(d));
    return s + "]";
}

#if defined(__x86_64__)

// y[r] = x[r] * inv_rms(x[r]) * w for rows [r0, r1) of length d.
__attribute__((target("avx2,fma"))) void rmsRows(const float* x, float* y, const float* w, int64_t r0, int64_t r1,
                                                 int64_t d, float eps)
{
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * d;
        float* yr = y + r * d;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= d; i += 16) {
            const __m256 v0 = _mm256_loadu_ps(xr + i), v1 = _mm256_loadu_ps(xr + i + 8);
            a0 = _mm256_fmadd_ps(v0, v0, a0);
            a1 = _mm256_fmadd_ps(v1, v1, a1);
        }
        for (; i + 8 <= d; i += 8) {
            const __m256 v0 = _mm256_loadu_ps(xr + i);
            a0 = _mm256_fmadd_ps(v0, v0, a0);
        }
        float ss = hsum8(_mm256_add_ps(a0, a1));
        for (; i < d; ++i)
            ss += xr[i] * xr[i];
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
        const __m256 vi = _mm256_set1_ps(inv);
        i = 0;
        for (; i + 8 <= d; i += 8)
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vi), _mm256_loadu_ps(w + i)));
        for (; i < d; ++i)
            yr[i] = xr[i] * inv * w[i];
    }
}

// out[i] = x[i] c[i] - x[i + h] s[i], out[i + h] = x[i + h] c[i + h] + x[i] s[i + h] over i < h = hd / 2.
__attribute__((target("avx2,fma"))) inline void ropeRow(const float* x, const float* c, const float* s, float* out,
                                                        int64_t half)
{
    int64_t i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 x1 = _mm256_loadu_ps(x + i), x2 = _mm256_loadu_ps(x + half + i);
        _mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_mul_ps(x1, _mm256_loadu_ps(c + i)),
                                                _mm256_mul_ps(x2, _mm256_loadu_ps(s + i))));
        _mm256_storeu_ps(out + half + i, _mm256_add_ps(_mm256_mul_ps(x2, _mm256_loadu_ps(c + half + i)),
                                                       _mm256_mul_ps(x1, _mm256_loadu_ps(s + half + i))));
    }
    for (; i < half; ++i) {
        const float x1 = x[i], x2 = x[half + i];
        out[i] = x1 * c[i] - x2 * s[i];
        out[half + i] = x2 * c[half + i] + x1 * s[half + i];
    }
}

// g[i] = g[i] * u[i] / (1 + exp(-g[i])) for i < n.
__attribute__((target("avx2,fma"))) void siluMulRun(float* g, const float* u, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 e = exp8(_mm256_sub_ps(zero, v));
        _mm256_storeu_ps(g + i, _mm256_div_ps(_mm256_mul_ps(v, _mm256_loadu_ps(u + i)), _mm256_add_ps(one, e)));
    }
    if (i < n) { // the same exp as the vector steps, so an element's value does not depend on its offset
        alignas(32) float tg[8] = {}, tu[8] = {};
        std::copy(g + i, g + n, tg);
        std::copy(u + i, u + n, tu);
        const __m256 v = _mm256_load_ps(tg);
        const __m256 e = exp8(_mm256_sub_ps(zero, v));
        _mm256_store_ps(tg, _mm256_div_ps(_mm256_mul_ps(v, _mm256_load_ps(tu)), _mm256_add_ps(one, e)));
        std::copy(tg, tg + (n - i), g + i);
    }
}

#endif

void requireAvx2(const char* what)
{
    const auto& f = hostCpuFeatures();
    if (!(f.avx2 && f.fma))
        throw ConfigError(std::string(what) + ": needs an x86-64 CPU with AVX2/FMA");
}

void requireFloatCpu(const at::Tensor& t, const char* what, const char* name)
{
    if (!t.defined() || !t.is_cpu() || t.scalar_type() != at::kFloat)
        throw ConfigError(std::string(what) + ": " + name + " must be an fp32 CPU tensor");
}

} // namespace

void setFusedElementwiseEnabled(bool enabled) { fusedEnabled = enabled; }

bool fusedElementwiseApplies(const at::Tensor& x, const at::Tensor& other)
{
#if defined(__x86_64__)
    const auto& f = hostCpuFeatures();
    if (!(fusedEnabled && f.avx2 && f.fma && ownCpuKernelsEnabled()))
        return false;
    if (!x.defined() || !x.is_cpu() || x.scalar_type() != at::kFloat)
        return false;
    if (other.defined() && !other.is_cpu())
        return false;
    const bool grad =
        c10::GradMode::is_enabled() && (x.requires_grad() || (other.defined() && other.requires_grad()));
    return !grad;
#else
    (void)x, (void)other;
    return false;
#endif
}

at::Tensor fusedRmsNorm(const at::Tensor& x0, const at::Tensor& weight, double eps, bool unitOffset)
{
    requireAvx2("fused RMSNorm");
    requireFloatCpu(x0, "fused RMSNorm", "x");
    const int64_t d = x0.dim() ? x0.size(-1) : 0;
    if (x0.dim() == 0 || weight.numel() != d)
        throw ConfigError("fused RMSNorm: weight has " + std::to_string(weight.numel()) + " elements, x is " +
                          shapeText(x0) + " (the last dimension must match)");
    const at::Tensor x = x0.contiguous();
    at::Tensor w = weight.to(at::kFloat).reshape({d}).contiguous();
    if (unitOffset)
        w = w + 1.0;
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    const int64_t rows = d ? x.numel() / d : 0;
#if defined(__x86_64__)
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const auto e = static_cast<float>(eps);
    at::parallel_for(0, rows, grainRows(d), [&](int64_t r0, int64_t r1) { rmsRows(xp, yp, wp, r0, r1, d, e); });
#endif
    return y;
}

at::Tensor fusedRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin)
{
    requireAvx2("fused RoPE");
    requireFloatCpu(x, "fused RoPE", "x");
    requireFloatCpu(cos, "fused RoPE", "cos");
    requireFloatCpu(sin, "fused RoPE", "sin");
    if (x.dim() != 4 || x.size(3) % 2 != 0 || cos.dim() != 2 || cos.sizes() != sin.sizes() ||
        cos.size(0) != x.size(1) || cos.size(1) != x.size(3))
        throw ConfigError("fused RoPE: x must be [B, T, H, head_dim] with an even head_dim and cos, sin [T, head_dim]; "
                          "got x " + shapeText(x) + ", cos " + shapeText(cos) + ", sin " + shapeText(sin));
    const int64_t B = x.size(0), T = x.size(1), H = x.size(2), hd = x.size(3);
    const at::Tensor xs = x.stride(3) == 1 ? x : x.contiguous();
    const at::Tensor c = cos.contiguous(), s = sin.contiguous();
    at::Tensor out = at::empty({B, T, H, hd}, x.options());
#if defined(__x86_64__)
    const float* xp = xs.data_ptr<float>();
    const float* cp = c.data_ptr<float>();
    const float* sp = s.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const int64_t sb = xs.stride(0), st = xs.stride(1), sh = xs.stride(2);
    at::parallel_for(0, B * T * H, grainRows(hd), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t h = r % H, t = (r / H) % T, b = r / (H * T);
            ropeRow(xp + b * sb + t * st + h * sh, cp + t * hd, sp + t * hd, op + r * hd, hd / 2);
        }
    });
#endif
    return out;
}

void siluMulInPlace(at::Tensor& gate, const at::Tensor& up0)
{
    requireAvx2("fused SiLU");
    requireFloatCpu(gate, "fused SiLU", "gate");
    requireFloatCpu(up0, "fused SiLU", "up");
    if (!gate.is_contiguous() || gate.sizes() != up0.sizes())
        throw ConfigError("fused SiLU: gate must be contiguous and up of its shape; got gate " + shapeText(gate) +
                          ", up " + shapeText(up0));
    const at::Tensor up = up0.contiguous();
    const int64_t n = gate.numel();
#if defined(__x86_64__)
    float* g = gate.data_ptr<float>();
    const float* u = up.data_ptr<float>();
    at::parallel_for(0, (n + 7) / 8, kGrainFloats / 8, [&](int64_t c0, int64_t c1) {
        const int64_t i0 = c0 * 8, i1 = std::min(n, c1 * 8);
        siluMulRun(g + i0, u + i0, i1 - i0);
    });
#else
    (void)n;
#endif
}

} // namespace qpruner::model
