// The quantized weight formats of qpruner/quant_format.h as plain structs: block and group sizes, code books,
// packing constants and the invariants between them. The reference quantizer (reference_quant.cpp) and the
// tensor fast path (nf4_kernels.cpp, int_kernels.cpp) both take every constant from here.
//
// Rounding rules, shared by both paths so that they agree bit for bit:
//   * nearest code (NF4 levels, the 8-bit dynamic map): the level closest to x, ties to the lower index
//     (bitsandbytes' NF4 decision tree also sends a value exactly on a midpoint down);
//   * integer rounding (int8, int4/3/2): round half to even (std::nearbyint, at::round on CPU and CUDA);
//   * fp16 parameters: float -> half rounds to nearest even, except the int4/3/2 scale, which rounds up
//     (see IntKFormat).
#pragma once

#include <array>
#include <cstdint>

#include "qpruner/quant_format.h"

namespace qpruner::quant {

namespace detail {
template <size_t N>
constexpr bool strictlyIncreasing(const std::array<float, N>& a)
{
    for (size_t i = 1; i < N; ++i)
        if (!(a[i - 1] < a[i]))
            return false;
    return true;
}
} // namespace detail

// QLoRA's NormalFloat4: blocks of 64 consecutive weights of the row-major flattened matrix share one fp32
// absmax; each weight is the 4-bit index of the level nearest to w / absmax. Two codes per byte, element 2i in
// the low nibble; an odd element count leaves the last high nibble 0.
struct Nf4Format {
    static constexpr int kBlock = kNf4BlockSize;
    static constexpr int kBits = 4;
    static constexpr int kCodesPerByte = 8 / kBits;
    static constexpr int kLevelCount = 1 << kBits;
    static constexpr uint8_t kZeroCode = 7;
    // bitsandbytes create_normal_map(offset=0.9677083, use_extra_value=True), method.md §8.
    static constexpr std::array<float, kLevelCount> kLevels = {
        -1.0f,
        -0.6961928009986877f,
        -0.5250730514526367f,
        -0.39491748809814453f,
        -0.28444138169288635f,
        -0.18477343022823334f,
        -0.09105003625154495f,
        0.0f,
        0.07958029955625534f,
        0.16093020141124725f,
        0.24611230194568634f,
        0.33791524171829224f,
        0.44070982933044434f,
        0.5626170039176941f,
        0.7229568362236023f,
        1.0f};

    static_assert(kBlock % kCodesPerByte == 0, "every NF4 block must start on a byte boundary");
    static_assert(kLevels[kZeroCode] == 0.0f, "all-zero blocks rely on an exact zero level");
    static_assert(kLevels.front() == -1.0f && kLevels.back() == 1.0f, "levels must span [-1, 1]");
    static_assert(detail::strictlyIncreasing(kLevels), "nearest-code thresholds need sorted levels");
};

// NF4 double quantization (bitsandbytes compress_statistics): offset = mean of the block absmax values; the
// centred values absmax - offset are quantized in blocks of 256 to the signed 8-bit dynamic map with one fp32
// scale (the block's max |absmax - offset|) each. absmax ≈ map[q] * scale + offset.
struct Nf4DoubleQuantFormat {
    static constexpr int kBlock = kNf4DoubleQuantBlockSize;
    static constexpr int kBits = 8;
    static constexpr int kLevelCount = 1 << kBits;
    static constexpr uint8_t kZeroCode = 127; // 127 negative levels sort below 0.0
    // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): one level per exponent/fraction
    // combination; with 7 exponent bits there are no extra linear items, so 2 * 127 + {0, 1} = 256 levels.
    static constexpr int kMaxExponentBits = 7;
    static_assert(2 * ((1 << kMaxExponentBits) - 1) + 2 == kLevelCount, "dynamic map must fill 8 bits");
};

// LLM.int8-style symmetric row-wise int8: scale[r] = absmax(row r) / 127, q = clamp(round(w / scale), ±127).
struct Int8Format {
    static constexpr int kQMax = 127;
    static_assert(kQMax == (1 << 7) - 1, "symmetric int8 leaves -128 unused");
};

// Asymmetric group-wise int4/int3/int2 along each row, groups of 64 or 128 columns (the last may be short).
// Per group the range [min(w, 0), max(w, 0)] is mapped to 0..2^Bits-1, as GPTQ's quantizer does: keeping 0
// inside the range keeps zero in [0, 2^Bits-1], so the fp16 zero can neither overflow nor lose its integer
// part on near-constant groups. scale = (max - min) / (2^Bits - 1) rounded UP to fp16 (so the rounded scale
// still covers the range and no code is clamped by more than half a step), zero = -min / scale16 rounded to
// the nearest fp16, q = clamp(round(w / scale16 + zero16), 0, 2^Bits - 1), w ≈ (q - zero16) * scale16.
// An all-zero group gets scale 0, zero 0, codes 0 and dequantizes to exact zeros.
// Codes are packed LSB-first along each row; 8 codes fill exactly Bits bytes, rows are padded to whole bytes
// with zero bits.
template <int Bits>
struct IntKFormat {
    static_assert(Bits >= 2 && Bits <= 4, "group-wise formats are int2, int3 and int4");
    static constexpr int kBits = Bits;
    static constexpr int kQMax = (1 << Bits) - 1;
    static constexpr int kCodesPerWord = 8;
    static constexpr int kBytesPerWord = Bits;
    static_assert(kCodesPerWord * kBits == 8 * kBytesPerWord, "a word of 8 codes is a whole number of bytes");
    static_assert(64 % kCodesPerWord == 0, "full groups of 64 or 128 codes are whole words");
    static_assert(kQMax <= 255, "codes are unpacked into uint8");
    static constexpr bool validGroup(int g) { return g == 64 || g == 128; }
};
using Int4Format = IntKFormat<4>;
using Int3Format = IntKFormat<3>;
using Int2Format = IntKFormat<2>;

// The 256 levels of the dynamic map, sorted ascending (level 127 is 0.0, level 255 is 1.0). bitsandbytes builds
// them in float32 torch arithmetic; here each is computed in double and rounded once to float32.
const std::array<float, Nf4DoubleQuantFormat::kLevelCount>& dynamicMapLevels();

// Thresholds t[k] (k = 0..n-2) such that, for every float x, "x > t[k]" holds exactly when x lies above the
// midpoint of levels k and k+1 (computed exactly in double). The nearest level index is the number of
// thresholds below x, i.e. at::bucketize(x, t) with right=false: the fast path's nearest-code rule.
const std::array<float, Nf4Format::kLevelCount - 1>& nf4Thresholds();
const std::array<float, Nf4DoubleQuantFormat::kLevelCount - 1>& dynamicMapThresholds();

// NF4's nearest code by table lookup instead of a search, for the tensor path: x in [-1, 1] falls in cell
// floor((x + 1) * kCells / 2) of a uniform grid. Each cell, widened by more than the rounding of x + 1 can move
// x, holds at most one threshold (cells of 1/16 against thresholds at least 0.08 apart), so the nearest code is
// lower[cell] + (x > threshold[cell]) exactly; a cell without a threshold has threshold 2, above every x.
struct Nf4CodeGrid {
    static constexpr int kCells = 32;
    std::array<float, kCells> lower{};     // thresholds below the widened cell: the code of its lower end
    std::array<float, kCells> threshold{}; // the widened cell's one threshold, or 2
};
const Nf4CodeGrid& nf4CodeGrid();

// Mean of non-negative finite values, bit-identical whatever the summation order (the double-quantization
// offset): each value is truncated to a fixed-point integer trunc(v * 2^s), with s chosen from the largest value
// so that the sum of n of them stays below 2^62; the integers are summed exactly and the mean is rounded once
// to float. The fast path sums the same integers with at::sum and finishes with fixedPointMean().
float orderIndependentMean(const float* values, int64_t n);
int fixedPointExponent(float maxValue, int64_t n);
float fixedPointMean(int64_t sum, int exponent, int64_t n);

} // namespace qpruner::quant
