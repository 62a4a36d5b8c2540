// NF4, int8 and group-wise int4/int3/int2 decoding into fp32. Each element is one fp32 multiply (nf4: level *
// absmax; int8: code * scale) or a subtract and a multiply (intK: (code - zero) * scale), exactly the operations
// of the tensor kernels, so any instruction set gives the same bits (no FMA contraction: the two roundings of
// intK are kept apart by design of the source, and -ffp-contract=off is the ISO C++ default).
#include "quant/cpu_dequant.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/cpu_features.h"
#include "quant/formats.h"
#include "quant/half_bits.h"
#include "quant/tensor_kernels.h"

namespace qpruner::quant {

namespace {

constexpr int64_t kNf4Block = Nf4Format::kBlock;

bool useAvx2()
{
    static const bool on = [] {
        const char* env = std::getenv("QPRUNER_KERNELS");
        if (env && std::strcmp(env, "scalar") == 0)
            return false;
        const auto& f = model::hostCpuFeatures();
        return f.avx2 && f.fma && f.f16c;
    }();
    return on;
}

// ---- NF4 -------------------------------------------------------------------------------------------------

void nf4Scalar(const uint8_t* codes, const float* absmax, int64_t e0, int64_t e1, float* dst)
{
    for (int64_t e = e0; e < e1; ++e) {
        const uint8_t byte = codes[e >> 1];
        const int code = (e & 1) ? (byte >> 4) : (byte & 0xf);
        dst[e - e0] = Nf4Format::kLevels[size_t(code)] * absmax[e / kNf4Block - e0 / kNf4Block];
    }
}

#if defined(__x86_64__)
// 64 elements of one block from its 32 bytes: 8 bytes (16 codes, low nibble first) per step.
__attribute__((target("avx2,fma,f16c"))) void nf4BlockAvx2(const uint8_t* bytes, float scale, __m256 lo, __m256 hi,
                                                           float* out)
{
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i mask = _mm256_set1_epi32(0xf);
    for (int k = 0; k < 4; ++k) {
        __m128i b8;
        std::memcpy(&b8, bytes + 8 * k, 8); // low 8 bytes of the register, the rest unused
        const __m256i v = _mm256_cvtepu8_epi32(b8);
        const __m256i l = _mm256_and_si256(v, mask);
        const __m256i h = _mm256_srli_epi32(v, 4);
        // (l0 h0 l1 h1 | l4 h4 l5 h5) and (l2 h2 l3 h3 | l6 h6 l7 h7) -> element order l0 h0 ... l7 h7
        const __m256i a = _mm256_unpacklo_epi32(l, h);
        const __m256i b = _mm256_unpackhi_epi32(l, h);
        const __m256i first = _mm256_permute2x128_si256(a, b, 0x20);
        const __m256i second = _mm256_permute2x128_si256(a, b, 0x31);
        for (int j = 0; j < 2; ++j) {
            const __m256i idx = j == 0 ? first : second;
            const __m256 fromLo = _mm256_permutevar8x32_ps(lo, idx);
            const __m256 fromHi = _mm256_permutevar8x32_ps(hi, idx);
            // Codes 8..15 have bit 3 set: moved to the sign bit, it picks the high table.
            const __m256 level = _mm256_blendv_ps(fromLo, fromHi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
            _mm256_storeu_ps(out + 16 * k + 8 * j, _mm256_mul_ps(level, s));
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) void nf4Avx2(const uint8_t* codes, const float* absmax, int64_t e0,
                                                      int64_t e1, float* dst)
{
    const __m256 lo = _mm256_loadu_ps(Nf4Format::kLevels.data());
    const __m256 hi = _mm256_loadu_ps(Nf4Format::kLevels.data() + 8);
    const int64_t firstBlock = e0 / kNf4Block;
    int64_t e = e0;
    // Up to the first whole block, then whole blocks, then the tail.
    const int64_t wholeFrom = (e0 + kNf4Block - 1) / kNf4Block * kNf4Block;
    const int64_t wholeTo = e1 / kNf4Block * kNf4Block;
    if (wholeFrom >= wholeTo) {
        nf4Scalar(codes, absmax, e0, e1, dst);
        return;
    }
    if (e < wholeFrom) {
        nf4Scalar(codes, absmax, e, wholeFrom, dst);
        e = wholeFrom;
    }
    for (; e < wholeTo; e += kNf4Block)
        nf4BlockAvx2(codes + e / 2, absmax[e / kNf4Block - firstBlock], lo, hi, dst + (e - e0));
    if (e < e1)
        nf4Scalar(codes, absmax + (e / kNf4Block - firstBlock), e, e1, dst + (e - e0));
}
#endif

void dequantizeNf4(const QuantizedTensor& q, int64_t r0, int64_t r1, float* dst, bool avx2)
{
    const int64_t e0 = r0 * q.cols, e1 = r1 * q.cols;
    const int64_t b0 = e0 / kNf4Block, b1 = (e1 + kNf4Block - 1) / kNf4Block;
    const at::Tensor absmax = kernels::nf4BlockAbsmax(q, b0, b1).contiguous();
    const auto* codes = q.parts.at("codes").data_ptr<uint8_t>();
    const float* am = absmax.data_ptr<float>();
#if defined(__x86_64__)
    if (avx2) {
        nf4Avx2(codes, am, e0, e1, dst);
        return;
    }
#endif
    nf4Scalar(codes, am, e0, e1, dst);
}

// ---- int8 -------------------------------------------------------------------------------------------------

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) void int8Rows(const int8_t* qw, const float* scale, int64_t rows,
                                                       int64_t cols, float* dst)
{
    for (int64_t r = 0; r < rows; ++r) {
        const float s = scale[r];
        const __m256 vs = _mm256_set1_ps(s);
        const int8_t* in = qw + r * cols;
        float* out = dst + r * cols;
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m128i b8;
            std::memcpy(&b8, in + c, 8);
            _mm256_storeu_ps(out + c, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b8)), vs));
        }
        for (; c < cols; ++c)
            out[c] = float(in[c]) * s;
    }
}
#endif

void int8RowsScalar(const int8_t* qw, const float* scale, int64_t rows, int64_t cols, float* dst)
{
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            dst[r * cols + c] = float(qw[r * cols + c]) * scale[r];
}

// ---- int4 / int2 / int3 -----------------------------------------------------------------------------------

#if defined(__x86_64__)
// 32 int4 codes from 16 bytes (low nibble first) per step; returns the columns done.
__attribute__((target("avx2,fma,f16c"))) int64_t unpackInt4Avx2(const uint8_t* packed, int64_t cols, uint8_t* codes)
{
    const __m128i mask = _mm_set1_epi8(0xf);
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + c / 2));
        const __m128i lo = _mm_and_si128(b, mask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c), _mm_unpacklo_epi8(lo, hi));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + c + 16), _mm_unpackhi_epi8(lo, hi));
    }
    return c;
}
#endif

// One row's codes (LSB-first packing) as bytes 0..2^bits-1.
void unpackRow(const uint8_t* packed, int64_t cols, int bits, uint8_t* codes, bool avx2)
{
    if (bits == 4) {
        int64_t done = 0;
#if defined(__x86_64__)
        if (avx2)
            done = unpackInt4Avx2(packed, cols, codes);
#endif
        for (int64_t c = done; c + 1 < cols; c += 2) {
            const uint8_t b = packed[c / 2];
            codes[c] = b & 0xf;
            codes[c + 1] = b >> 4;
        }
        if (cols & 1)
            codes[cols - 1] = packed[cols / 2] & 0xf;
    } else if (bits == 2) {
        for (int64_t c = 0; c < cols; ++c)
            codes[c] = (packed[c / 4] >> (2 * (c % 4))) & 3;
    } else { // 3 bits: 8 codes per 3 little-endian bytes
        const int64_t rowBytes = (cols * 3 + 7) / 8;
        for (int64_t c = 0; c < cols; c += 8) {
            const int64_t byte = c / 8 * 3;
            uint32_t word = 0;
            for (int k = 0; k < 3 && byte + k < rowBytes; ++k)
                word |= uint32_t(packed[byte + k]) << (8 * k);
            for (int64_t j = 0; j < 8 && c + j < cols; ++j)
                codes[c + j] = (word >> (3 * j)) & 7;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) void groupDecode(const uint8_t* codes, int64_t n, float zero, float scale,
                                                          float* out)
{
    const __m256 vz = _mm256_set1_ps(zero), vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b8;
        std::memcpy(&b8, codes + i, 8);
        const __m256 d = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)), vz);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(d, vs));
    }
    for (; i < n; ++i) {
        const float d = float(codes[i]) - zero;
        out[i] = d * scale;
    }
}
#endif

void groupDecodeScalar(const uint8_t* codes, int64_t n, float zero, float scale, float* out)
{
    for (int64_t i = 0; i < n; ++i)
        out[i] = (float(codes[i]) - zero) * scale;
}

void dequantizeIntK(const QuantizedTensor& q, int64_t r0, int64_t r1, float* dst, bool avx2)
{
    const int bits = q.spec.codeBits();
    const int64_t cols = q.cols, group = q.spec.groupSize, groups = (cols + group - 1) / group;
    const at::Tensor& packed = q.parts.at("qweight");
    const int64_t rowBytes = packed.size(1);
    const auto* pk = packed.data_ptr<uint8_t>();
    const auto* sc = reinterpret_cast<const uint16_t*>(q.parts.at("scale").data_ptr<at::Half>());
    const auto* zr = reinterpret_cast<const uint16_t*>(q.parts.at("zero").data_ptr<at::Half>());
#if defined(__x86_64__)
    const auto decode = avx2 ? groupDecode : groupDecodeScalar;
#else
    const auto decode = groupDecodeScalar;
#endif
    thread_local std::vector<uint8_t> codes;
    codes.resize(size_t(cols));
    for (int64_t r = r0; r < r1; ++r) {
        unpackRow(pk + r * rowBytes, cols, bits, codes.data(), avx2);
        float* out = dst + (r - r0) * cols;
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * group, n = std::min(group, cols - c0);
            decode(codes.data() + c0, n, halfBitsToFloat(zr[r * groups + g]), halfBitsToFloat(sc[r * groups + g]),
                        out + c0);
        }
    }
}

} // namespace

const char* cpuDequantKernel() { return useAvx2() ? "avx2" : "scalar"; }

void dequantizeRowsCpu(const QuantizedTensor& q, int64_t r0, int64_t r1, float* dst, bool vectorised)
{
    const bool avx2 = vectorised && useAvx2();
    switch (q.spec.kind) {
    case QuantKind::NF4: dequantizeNf4(q, r0, r1, dst, avx2); return;
    case QuantKind::Int8: {
        const auto* qw = q.parts.at("qweight").data_ptr<int8_t>() + r0 * q.cols;
        const float* scale = q.parts.at("scale").data_ptr<float>() + r0;
#if defined(__x86_64__)
        if (avx2) {
            int8Rows(qw, scale, r1 - r0, q.cols, dst);
            return;
        }
#endif
        int8RowsScalar(qw, scale, r1 - r0, q.cols, dst);
        return;
    }
    default: dequantizeIntK(q, r0, r1, dst, avx2); return;
    }
}

} // namespace qpruner::quant
