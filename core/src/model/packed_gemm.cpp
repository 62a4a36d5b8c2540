// packedGemm: the loops of a BLIS-style GEMM (Goto's algorithm) with the weight side filled by a row decoder.
//
//   x in 6-row panels: copied per k block into Ap[k][6] when deep, else read in place
//   per thread, for its blocks of nc weight rows (output columns jc .. jc + nc):
//     decode the block's rows into R[nc][K]                     (fill, once per block)
//     for each k block (kc):
//       pack R's columns into Bp[16-row panel][k][16]          (kc x nc, L2-resident)
//       for each mc block of x rows, each 16-wide panel of Bp, each 6 rows of x:
//         the 6x16 micro-kernel: 12 ymm accumulators, 2 loads and 6 broadcasts per k

//
// The first k block stores into y, later ones add to it, so y needs no zeroing; each y element is summed by
// the one thread that owns its column, in k order.
#include "model/packed_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/cpu_features.h"

namespace qpruner::model {

namespace {

constexpr int64_t kMr = 6;
constexpr int64_t kNr = 16;
// Depth up to which x is read in place rather than copied into panels (a copy costs a quarter of a depth-64
// product; beyond a few hundred columns the rows' cache-set conflicts cost more).
constexpr int64_t kInPlaceDepth = 128;
constexpr int64_t kSmallProduct = int64_t(1) << 24; // multiply-adds: BLAS's per-call cost dominates below

// A float buffer aligned to 64 bytes that only grows (one per thread and role; reused across calls, so no
// fresh pages per forward).
class ScratchBuffer {
public:
    float* get(int64_t n)
    {
        if (n > size_) {
            const size_t bytes = (size_t(n) * sizeof(float) + 63) / 64 * 64;
            void* p = std::aligned_alloc(64, bytes);
            if (!p)
                throw std::bad_alloc();
            data_.reset(static_cast<float*>(p));
            size_ = n;
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    int64_t size_ = 0;
};

#if defined(__x86_64__)

__attribute__((target("avx2,fma"))) inline void storeRow(float* p, __m256 v0, __m256 v1, bool accumulate)
{
    if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p + 8));
    }
    _mm256_storeu_ps(p, v0);
    _mm256_storeu_ps(p + 8, v1);
}

// C[6 x 16] (row stride ldc) = (accumulate ? C : 0) + A * B-panel over kc steps. Element k of A's row r is at
// a + r * lda + k * AStep: AStep 1 for rows read in place, 6 (lda 1) for panels interleaved k-major as BLIS packs
// them. `rows` x `cols` of the tile are valid; the rest (padding) is computed and dropped.
template <int AStep>
__attribute__((target("avx2,fma"))) void microKernel(int64_t kc, const float* __restrict a, int64_t lda,
                                                     const float* __restrict b, float* c, int64_t ldc, bool accumulate,
                                                     int64_t rows, int64_t cols)
{
    const float* a0 = a;
    const float* a1 = a + lda;
    const float* a2 = a + 2 * lda;
    const float* a3 = a + 3 * lda;
    const float* a4 = a + 4 * lda;
    const float* a5 = a + 5 * lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define QPRUNER_GEMM_STEP(K)                                                                                   \
    {                                                                                                          \
        const __m256 b0 = _mm256_load_ps(b + (K) * kNr);                                                       \
        const __m256 b1 = _mm256_load_ps(b + (K) * kNr + 8);                                                   \
        __m256 av = _mm256_broadcast_ss(a0 + (K) * AStep);                                                    \
        c00 = _mm256_fmadd_ps(av, b0, c00);                                                                    \
        c01 = _mm256_fmadd_ps(av, b1, c01);                                                                    \
        av = _mm256_broadcast_ss(a1 + (K) * AStep);                                                           \
        c10 = _mm256_fmadd_ps(av, b0, c10);                                                                    \
        c11 = _mm256_fmadd_ps(av, b1, c11);                                                                    \
        av = _mm256_broadcast_ss(a2 + (K) * AStep);                                                           \
        c20 = _mm256_fmadd_ps(av, b0, c20);                                                                    \
        c21 = _mm256_fmadd_ps(av, b1, c21);                                                                    \
        av = _mm256_broadcast_ss(a3 + (K) * AStep);                                                           \
        c30 = _mm256_fmadd_ps(av, b0, c30);                                                                    \
        c31 = _mm256_fmadd_ps(av, b1, c31);                                                                    \
        av = _mm256_broadcast_ss(a4 + (K) * AStep);                                                           \
        c40 = _mm256_fmadd_ps(av, b0, c40);                                                                    \
        c41 = _mm256_fmadd_ps(av, b1, c41);                                                                    \
        av = _mm256_broadcast_ss(a5 + (K) * AStep);                                                           \
        c50 = _mm256_fmadd_ps(av, b0, c50);                                                                    \
        c51 = _mm256_fmadd_ps(av, b1, c51);                                                                    \
    }
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        QPRUNER_GEMM_STEP(0)
        QPRUNER_GEMM_STEP(1)
        QPRUNER_GEMM_STEP(2)
        QPRUNER_GEMM_STEP(3)
        a0 += 4 * AStep, a1 += 4 * AStep, a2 += 4 * AStep, a3 += 4 * AStep, a4 += 4 * AStep, a5 += 4 * AStep;
        b += 4 * kNr;
    }
    for (; k < kc; ++k) {
        QPRUNER_GEMM_STEP(0)
        a0 += AStep, a1 += AStep, a2 += AStep, a3 += AStep, a4 += AStep, a5 += AStep;
        b += kNr;
    }
#undef QPRUNER_GEMM_STEP
    if (rows == kMr && cols == kNr) {
        storeRow(c, c00, c01, accumulate);
        storeRow(c + ldc, c10, c11, accumulate);
        storeRow(c + 2 * ldc, c20, c21, accumulate);
        storeRow(c + 3 * ldc, c30, c31, accumulate);
        storeRow(c + 4 * ldc, c40, c41, accumulate);
        storeRow(c + 5 * ldc, c50, c51, accumulate);
        return;
    }
    alignas(32) float tile[kMr * kNr];
    _mm256_store_ps(tile + 0, c00);
    _mm256_store_ps(tile + 8, c01);
    _mm256_store_ps(tile + 16, c10);
    _mm256_store_ps(tile + 24, c11);
    _mm256_store_ps(tile + 32, c20);
    _mm256_store_ps(tile + 40, c21);
    _mm256_store_ps(tile + 48, c30);
    _mm256_store_ps(tile + 56, c31);
    _mm256_store_ps(tile + 64, c40);
    _mm256_store_ps(tile + 72, c41);
    _mm256_store_ps(tile + 80, c50);
    _mm256_store_ps(tile + 88, c51);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j)
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + tile[r * kNr + j] : tile[r * kNr + j];
}

// Bp[panel][k][16] from rows [0, nc) of R (row stride K), columns [pc, pc + kc); rows past nc are zero.
// 8 x 8 blocks are transposed in registers.
__attribute__((target("avx2,fma"))) void packWeightPanels(const float* rows, int64_t K, int64_t nc, int64_t pc,
                                                          int64_t kc, float* bp)
{
    const int64_t panels = (nc + kNr - 1) / kNr;
    for (int64_t p = 0; p < panels; ++p) {
        float* dst = bp + p * kc * kNr;
        for (int64_t half = 0; half < 2; ++half) {
            const int64_t r0 = p * kNr + half * 8;
            const int64_t valid = std::clamp<int64_t>(nc - r0, 0, 8);
            if (valid == 8) {
                const float* src[8];
                for (int64_t i = 0; i < 8; ++i)
                    src[i] = rows + (r0 + i) * K + pc;
                int64_t k = 0;
                for (; k + 8 <= kc; k += 8) {
                    __m256 r[8];
                    for (int i = 0; i < 8; ++i)
                        r[i] = _mm256_loadu_ps(src[i] + k);
                    // 8 x 8 transpose: t[j] holds column j (k + j) of the 8 rows.
                    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
                    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
                    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
                    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
                    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    const __m256 o0 = _mm256_permute2f128_ps(s0, s4, 0x20), o4 = _mm256_permute2f128_ps(s0, s4, 0x31);
                    const __m256 o1 = _mm256_permute2f128_ps(s1, s5, 0x20), o5 = _mm256_permute2f128_ps(s1, s5, 0x31);
                    const __m256 o2 = _mm256_permute2f128_ps(s2, s6, 0x20), o6 = _mm256_permute2f128_ps(s2, s6, 0x31);
                    const __m256 o3 = _mm256_permute2f128_ps(s3, s7, 0x20), o7 = _mm256_permute2f128_ps(s3, s7, 0x31);
                    float* d = dst + k * kNr + half * 8;
                    _mm256_store_ps(d + 0 * kNr, o0);
                    _mm256_store_ps(d + 1 * kNr, o1);
                    _mm256_store_ps(d + 2 * kNr, o2);
                    _mm256_store_ps(d + 3 * kNr, o3);
                    _mm256_store_ps(d + 4 * kNr, o4);
                    _mm256_store_ps(d + 5 * kNr, o5);
                    _mm256_store_ps(d + 6 * kNr, o6);
                    _mm256_store_ps(d + 7 * kNr, o7);
                }
                for (; k < kc; ++k)
                    for (int64_t i = 0; i < 8; ++i)
                        dst[k * kNr + half * 8 + i] = src[i][k];
            } else {
                for (int64_t k = 0; k < kc; ++k)
                    for (int64_t i = 0; i < 8; ++i)
                        dst[k * kNr + half * 8 + i] = i < valid ? rows[(r0 + i) * K + pc + k] : 0.0f;
            }
        }
    }
}

#endif

} // namespace

bool packedGemmAvailable()
{
#if defined(__x86_64__)
    const auto& f = hostCpuFeatures();
    return f.avx2 && f.fma && ownCpuKernelsEnabled();
#else
    return false;
#endif
}

namespace {

// The body of both entry points: weight rows from `fill` (into a per-thread buffer) or read in place from
// `dense` (row stride K).
void gemm(const float* x, int64_t M, int64_t K, int64_t N, const WeightRowsFill* fill, const float* dense, float* y,
          const PackedGemmBlocking& blocking)
{
#if defined(__x86_64__)
    if (!packedGemmAvailable())
        throw std::logic_error("packedGemm: this CPU lacks AVX2/FMA");
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        std::fill(y, y + M * N, 0.0f);
        return;
    }
    const int64_t KC = std::max<int64_t>(1, blocking.kc);
    const int64_t NC = std::max<int64_t>(kNr, blocking.nc / kNr * kNr);
    const int64_t MC = std::max<int64_t>(kMr, blocking.mc / kMr * kMr);

    // x's rows in 6-row panels. Deep rows are copied per k block into Ap[k block][panel][k][6] (BLIS's layout:
    // one stream per panel; rows read in place 8 KiB or more apart would share L1 sets). Shallow ones
    // (K <= kInPlaceDepth) are read in place, the last panel's missing rows from a zero-padded copy.
    const int64_t mPanels = (M + kMr - 1) / kMr;
    const int64_t mPad = mPanels * kMr;
    const bool inPlace = K <= kInPlaceDepth;
    thread_local ScratchBuffer apBuffer;
    float* ap = nullptr;
    const int64_t tailRows = M % kMr;
    if (inPlace && tailRows) {
        ap = apBuffer.get(kMr * K);
        std::memcpy(ap, x + (M - tailRows) * K, size_t(tailRows * K) * sizeof(float));
        std::fill(ap + tailRows * K, ap + kMr * K, 0.0f);
    } else if (!inPlace) {
        ap = apBuffer.get(mPad * K);
        const int64_t kBlocks = (K + KC - 1) / KC;
        at::parallel_for(0, kBlocks * mPanels, 16, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t pc = (t / mPanels) * KC, i = t % mPanels;
                const int64_t kc = std::min(KC, K - pc);
                float* dst = ap + pc * mPad + i * kMr * kc;
                for (int64_t r = 0; r < kMr; ++r) {
                    if (i * kMr + r < M) {
                        const float* src = x + (i * kMr + r) * K + pc;
                        for (int64_t k = 0; k < kc; ++k)
                            dst[k * kMr + r] = src[k];
                    } else {
                        for (int64_t k = 0; k < kc; ++k)
                            dst[k * kMr + r] = 0.0f;
                    }
                }
            }
        });
    }

    // Tasks: blocks of nc weight rows, and, when there are fewer of those than threads, ranges of x's panels
    // too (each such task fills its block itself).
    const int64_t nBlocks = (N + NC - 1) / NC;
    const int64_t threads = at::get_num_threads();
    const int64_t mParts = nBlocks >= threads ? 1 : std::min(mPanels, (threads + nBlocks - 1) / nBlocks);
    const int64_t panelsPerPart = (mPanels + mParts - 1) / mParts;
    const at::ThreadLocalState callerState; // fill may use tensors: give the workers the caller's modes
    at::parallel_for(0, nBlocks * mParts, 1, [&](int64_t t0, int64_t t1) {
        const at::ThreadLocalStateGuard tls(callerState);
        thread_local ScratchBuffer rowBuffer, panelBuffer;
        float* bp = panelBuffer.get(NC * KC);
        for (int64_t task = t0; task < t1; ++task) {
            const int64_t blk = task / mParts, part = task % mParts;
            const int64_t iBegin = part * panelsPerPart, iEnd = std::min(mPanels, iBegin + panelsPerPart);
            const int64_t jc = blk * NC;
            const int64_t nc = std::min(NC, N - jc);
            const float* rows = dense ? dense + jc * K : nullptr;
            if (!rows) {
                float* buf = rowBuffer.get(NC * K);
                at::Tensor dst = at::from_blob(buf, {nc, K}, at::TensorOptions().dtype(at::kFloat));
                (*fill)(jc, jc + nc, dst);
                rows = buf;
            }
            const int64_t nPanels = (nc + kNr - 1) / kNr;
            for (int64_t pc = 0; pc < K; pc += KC) {
                const int64_t kc = std::min(KC, K - pc);
                packWeightPanels(rows, K, nc, pc, kc, bp);
                for (int64_t ic = iBegin; ic < iEnd; ic += MC / kMr) {
                    const int64_t icEnd = std::min(iEnd, ic + MC / kMr);
                    for (int64_t j = 0; j < nPanels; ++j) {
                        const float* bpanel = bp + j * kc * kNr;
                        const int64_t cols = std::min(kNr, nc - j * kNr);
                        for (int64_t i = ic; i < icEnd; ++i) {
                            const int64_t rowsValid = std::min(kMr, M - i * kMr);
                            float* c = y + i * kMr * N + jc + j * kNr;
                            if (!inPlace)
                                microKernel<kMr>(kc, ap + pc * mPad + i * kMr * kc, 1, bpanel, c, N, pc > 0,
                                                 rowsValid, cols);
                            else if (rowsValid == kMr)
                                microKernel<1>(kc, x + i * kMr * K + pc, K, bpanel, c, N, pc > 0, rowsValid, cols);
                            else
                                microKernel<1>(kc, ap + pc, K, bpanel, c, N, pc > 0, rowsValid, cols);
                        }
                    }
                }
            }
        }
    });
#else
    (void)x, (void)M, (void)K, (void)N, (void)fill, (void)dense, (void)y, (void)blocking;
    throw std::logic_error("packedGemm: this CPU lacks AVX2/FMA");
#endif
}

} // namespace

bool preferPackedGemm(int64_t M, int64_t K, int64_t N)
{
    return M <= 256 || K <= kInPlaceDepth || (N > 0 && M * K * N <= kSmallProduct);
}

void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const WeightRowsFill& fill, float* y,
                const PackedGemmBlocking& blocking)
{
    gemm(x, M, K, N, &fill, nullptr, y, blocking);
}

void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const float* w, float* y,
                const PackedGemmBlocking& blocking)
{
    gemm(x, M, K, N, nullptr, w, y, blocking);
}

} // namespace qpruner::model
