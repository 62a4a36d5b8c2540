// blockedLinear and the exact bf16/fp16 -> fp32 row conversion it uses for dense weights.
#include "model/blocked_linear.h"

#include <algorithm>
#include <cstring>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/cpu_features.h"
#include "model/packed_gemm.h"

namespace qpruner::model {

namespace {

#if defined(__x86_64__)
// bf16 -> fp32 is a 16-bit shift: exact, 8 values per step.
__attribute__((target("avx2"))) void bf16ToFloatAvx2(const uint16_t* in, int64_t n, float* out)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
    for (; i < n; ++i) {
        const uint32_t bits = uint32_t(in[i]) << 16;
        std::memcpy(out + i, &bits, 4);
    }
}

// fp16 -> fp32 with F16C (exact, subnormals included).
__attribute__((target("avx2,f16c"))) void halfToFloatF16c(const uint16_t* in, int64_t n, float* out)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    if (i < n) {
        uint16_t tail[8] = {};
        float f[8];
        std::memcpy(tail, in + i, size_t(n - i) * 2);
        _mm256_storeu_ps(f, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail))));
        std::memcpy(out + i, f, size_t(n - i) * 4);
    }
}
#endif

} // namespace

void copyRowsAsFloat(const at::Tensor& weight, int64_t r0, int64_t r1, at::Tensor& dst)
{
#if defined(__x86_64__)
    const auto& cpu = hostCpuFeatures();
    const auto st = weight.scalar_type();
    if (weight.is_cpu() && weight.is_contiguous() && dst.is_cpu() && dst.is_contiguous() &&
        dst.scalar_type() == at::kFloat && cpu.avx2 && (st == at::kBFloat16 || (st == at::kHalf && cpu.f16c))) {
        const int64_t cols = weight.size(1);
        const auto* in = reinterpret_cast<const uint16_t*>(weight.data_ptr()) + r0 * cols;
        (st == at::kBFloat16 ? bf16ToFloatAvx2 : halfToFloatF16c)(in, (r1 - r0) * cols, dst.data_ptr<float>());
        return;
    }
#endif
    dst.copy_(weight.narrow(0, r0, r1 - r0));
}

int64_t linearBlockRows(int64_t cols, at::ScalarType dt, int64_t blockBytes)
{
    return std::max<int64_t>(1, blockBytes / (cols * int64_t(c10::elementSize(dt))));
}

at::Tensor blockedLinear(const at::Tensor& x, int64_t rows, int64_t cols, const WeightRowsFill& fill,
                         const std::optional<at::Tensor>& bias, int64_t blockBytes, LinearKernel kernel)
{
    const auto dt = x.scalar_type();
    const at::Tensor x2 = x.reshape({-1, cols}).contiguous();
    auto outShape = x.sizes().vec();
    outShape.back() = rows;
    auto out = at::empty({x2.size(0), rows}, x2.options());
    if (kernel != LinearKernel::Blas && x2.device().is_cpu() && dt == at::kFloat && packedGemmAvailable() &&
        (kernel == LinearKernel::Packed || preferPackedGemm(x2.size(0), cols, rows))) {
        packedGemm(x2.data_ptr<float>(), x2.size(0), cols, rows, fill, out.data_ptr<float>());
        if (bias)
            out.add_(bias->scalar_type() == dt ? *bias : bias->to(dt));
        return out.view(outShape);
    }
    const int64_t step = std::min(rows, linearBlockRows(cols, dt, blockBytes));
    // The block buffer: reused across calls on the CPU (a fresh multi-MiB allocation per call costs page faults
    // comparable to the decoding itself).
    thread_local at::Tensor scratch;
    at::Tensor w;
    if (x2.device().is_cpu() && dt == at::kFloat) {
        if (!scratch.defined() || scratch.numel() < step * cols)
            scratch = at::empty({step * cols}, x2.options());
        w = scratch.narrow(0, 0, step * cols).view({step, cols});
    } else {
        w = at::empty({step, cols}, x2.options());
    }
    // One block at a time: its rows decoded by all threads, then one matmul that BLAS threads itself. (Threads
    // each decoding and multiplying blocks of their own were measured slower: single-threaded products of a
    // narrow block repack the activations per block.)
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / cols);
    const at::ThreadLocalState callerState;
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        const int64_t n = std::min(step, rows - r0);
        at::Tensor wb = n == step ? w : w.narrow(0, 0, n);
        if (x2.device().is_cpu() && n > grain) {
            at::parallel_for(0, n, grain, [&](int64_t a, int64_t b) {
                const at::ThreadLocalStateGuard tls(callerState); // inference/no-grad mode on worker threads too
                at::Tensor part = wb.narrow(0, a, b - a);
                fill(r0 + a, r0 + b, part);
            });
        } else {
            fill(r0, r0 + n, wb);
        }
        auto dst = out.narrow(1, r0, n);
        at::mm_out(dst, x2, wb.t());
    }
    if (bias)
        out.add_(bias->scalar_type() == dt ? *bias : bias->to(dt));
    return out.view(outShape);
}

} // namespace qpruner::model
