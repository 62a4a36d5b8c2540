// ggml's tensor types (ggml_types.h): the type table, row sizes, and row quantize/dequantize ported from ggml
// (ggml/src/ggml-quants.c, ggml-common.h, ggml-impl.h) so that every byte equals what ggml's reference quantizers
// write. Each port keeps ggml's float expressions term by term (the same operands, evaluation order and int/float
// conversions): float arithmetic is not associative, and the results must be identical, not merely close. That
// also needs IEEE single precision without fused multiply-adds, which is what this project's ISO C++ build gives
// (GCC contracts a*b+c only in GNU mode, and x86-64 without -march has no FMA anyway). ggml's C compiled with
// contraction (GNU C where FMA is available) rounds differently and writes other bytes for about a quarter of Q2_K
// super-blocks and occasionally for IQ4_NL, Q3_K and Q4_0 blocks; the uncontracted result is the one defined here.
//
// Every block format is quantized block by block, independently, so a tensor of rows x rowLength elements is
// simply rows * rowLength / blockSize consecutive blocks. Blocks are assembled in a local struct and copied out,
// as rows inside a GGUF data buffer need not be 2-byte aligned.
#include "export/ggml_types.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "qpruner/error.h"
#include "quant/half_bits.h"

namespace qpruner::gguf {

static_assert(std::endian::native == std::endian::little, "ggml blocks are stored little-endian");

namespace {

// ggml-common.h block structs (ggml_half = IEEE half bits). kElements is QK4_0 / QK4_1 / QK8_0 / QK4_NL or QK_K.
struct BlockQ8_0 {
    static constexpr int kElements = 32;
    uint16_t d;
    int8_t qs[32];
};
struct BlockQ4_0 {
    static constexpr int kElements = 32;
    uint16_t d;
    uint8_t qs[16];
};
struct BlockQ4_1 {
    static constexpr int kElements = 32;
    uint16_t d;
    uint16_t m;
    uint8_t qs[16];
};
struct BlockIq4Nl {
    static constexpr int kElements = 32;
    uint16_t d;
    uint8_t qs[16];
};
struct BlockQ2K {
    static constexpr int kElements = 256;
    uint8_t scales[16]; // low nibble: scale, high nibble: min of each 16-element sub-block
    uint8_t qs[64];
    uint16_t d;
    uint16_t dmin;
};
struct BlockQ3K {
    static constexpr int kElements = 256;
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12]; // sixteen 6-bit scales
    uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockIq4Nl) == 18 && sizeof(BlockQ2K) == 84 && sizeof(BlockQ3K) == 110);

// ggml-quants.c GROUP_MAX_EPS: a group whose largest magnitude is below this counts as all zero.
constexpr float kGroupMaxEps = 1e-15f;

// ggml-common.h kvalues_iq4nl: the 16 non-linear levels of IQ4_NL (sorted).
constexpr std::array<int8_t, 16> kValuesIq4nl = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                  1,    13,   25,  38,  53,  69,  89,  113};

uint16_t toHalf(float x) { return quant::floatToHalfBits(x); }
float fromHalf(uint16_t h) { return quant::halfBitsToFloat(h); }

// ggml-quants.c, nearest_int: round to nearest, ties to even, by adding 1.5 * 2^23 so that the integer lands in
// the low mantissa bits. Only meaningful for |fval| <= 4194303; beyond that it returns what ggml returns.
inline int nearestInt(float fval)
{
    const float val = fval + 12582912.f;
    const int i = std::bit_cast<int>(val);
    return (i & 0x007fffff) - 0x00400000;
}

// kvalues_iq4nl[j - 1] + kvalues_iq4nl[j] for j = 1..15 (exact in float).
constexpr std::array<float, 15> kIq4nlMidpointSums = [] {
    std::array<float, 15> m{};
    for (size_t j = 1; j < 16; ++j)
        m[j - 1] = float(kValuesIq4nl[j - 1] + kValuesIq4nl[j]);
    return m;
}();

// ggml-quants.c, best_index_int8(16, kvalues_iq4nl, x) as current ggml writes it: the level nearest to x, ties to
// the upper one. x picks level j once x + x reaches kvalues[j-1] + kvalues[j] (both sides exact), found by a
// branchless binary search. Older ggml searched with branches and compared x - kvalues[mu-1] with
// kvalues[mu] - x; for these levels that picks the same index for every non-NaN float (the differences are
// exact near each midpoint). The step is added through a mask: with `cond ? j : idx` GCC -O3 emits branches that
// mispredict on real weights and make IQ4_NL three times slower.
inline int bestIndexIq4nl(float x)
{
    const float x2 = x + x;
    int idx = 0;
    for (int step = 8; step > 0; step >>= 1)
        idx += step & -int(x2 >= kIq4nlMidpointSums[size_t(idx + step - 1)]);
    return idx;
}

// Packs four 2-bit planes of 32 values per 128 elements, as quantize_row_q2_K_ref and _q3_K_ref store qs.
template <class Level>
void packTwoBitPlanes(const Level* L, uint8_t* qs)
{
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                 (L[j + l + 96] << 6));
}

// --- Q8_0 ---------------------------------------------------------------------------------------------------

// ggml-quants.c, quantize_row_q8_0_ref (one block).
void quantizeBlockQ8_0(const float* x, BlockQ8_0& y)
{
    float amax = 0.0f; // absolute max
    for (int j = 0; j < 32; ++j) {
        const float a = std::fabs(x[j]);
        amax = amax > a ? amax : a; // MAX(amax, fabsf(v))
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y.d = toHalf(d);
    for (int j = 0; j < 32; ++j)
        y.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
}

// ggml-quants.c, dequantize_row_q8_0 (one block).
void dequantizeBlockQ8_0(const BlockQ8_0& x, float* y)
{
    const float d = fromHalf(x.d);
    for (int j = 0; j < 32; ++j)
        y[j] = x.qs[j] * d;
}

// --- Q4_0 ---------------------------------------------------------------------------------------------------

// ggml-quants.c, quantize_row_q4_0_ref (one block).
void quantizeBlockQ4_0(const float* x, BlockQ4_0& y)
{
    float amax = 0.0f; // absolute max
    float max = 0.0f;  // the element of largest magnitude, with its sign
    for (int j = 0; j < 32; ++j) {
        const float v = x[j];
        if (amax < std::fabs(v)) {
            amax = std::fabs(v);
            max = v;
        }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y.d = toHalf(d);
    for (int j = 0; j < 16; ++j) {
        const float x0 = x[j] * id;
        const float x1 = x[16 + j] * id;
        const auto xi0 = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(x0 + 8.5f))));
        const auto xi1 = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(x1 + 8.5f))));
        y.qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
}

// ggml-quants.c, dequantize_row_q4_0 (one block).
void dequantizeBlockQ4_0(const BlockQ4_0& x, float* y)
{
    const float d = fromHalf(x.d);
    for (int j = 0; j < 16; ++j) {
        const int x0 = (x.qs[j] & 0x0F) - 8;
        const int x1 = (x.qs[j] >> 4) - 8;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
    }
}

// --- Q4_1 ---------------------------------------------------------------------------------------------------

// ggml-quants.c, quantize_row_q4_1_ref (one block).
void quantizeBlockQ4_1(const float* x, BlockQ4_1& y)
{
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
        const float v = x[j];
        if (v < min)
            min = v;
        if (v > max)
            max = v;
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y.d = toHalf(d);
    y.m = toHalf(min);
    for (int j = 0; j < 16; ++j) {
        const float x0 = (x[j] - min) * id;
        const float x1 = (x[16 + j] - min) * id;
        const auto xi0 = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(x0 + 0.5f))));
        const auto xi1 = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(x1 + 0.5f))));
        y.qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
}

// ggml-quants.c, dequantize_row_q4_1 (one block).
void dequantizeBlockQ4_1(const BlockQ4_1& x, float* y)
{
    const float d = fromHalf(x.d);
    const float m = fromHalf(x.m);
    for (int j = 0; j < 16; ++j) {
        const int x0 = x.qs[j] & 0x0F;
        const int x1 = x.qs[j] >> 4;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

// --- IQ4_NL -------------------------------------------------------------------------------------------------

// ggml-quants.c, quantize_row_iq4_nl_impl as quantize_iq4_nl calls it for one block without an importance matrix:
// super_block_size = block_size = 32, values = kvalues_iq4nl, quant_weights = NULL, ntry = 7. With a single
// block per super-block and no quant_weights, sigma2 and the super-block scale bookkeeping have no effect, and
// the levels of the first pass are recomputed from the final scale, so only the scale search is kept.
void quantizeBlockIq4Nl(const float* x, BlockIq4Nl& y)
{
    constexpr int ntry = 7;
    const int8_t* values = kValuesIq4nl.data();
    float weight[32];
    for (int j = 0; j < 32; ++j)
        weight[j] = x[j] * x[j];
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
        const float ax = std::fabs(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    float scale = 0; // scales[0]
    if (!(amax < kGroupMaxEps)) {
        float d = -max / values[0]; // ntry > 0
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
            const float al = id * x[j];
            const int l = bestIndexIq4nl(al);
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; ++j) {
                const float al = id * x[j];
                const int l = bestIndexIq4nl(al);
                const float q = values[l];
                const float w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scale = d;
    }
    y.d = toHalf(scale);
    const float id = scale != 0.0f ? 1 / scale : 0;
    uint8_t L[32];
    for (int j = 0; j < 32; ++j)
        L[j] = static_cast<uint8_t>(bestIndexIq4nl(id * x[j]));
    for (int j = 0; j < 16; ++j)
        y.qs[j] = static_cast<uint8_t>(L[j] | (L[16 + j] << 4));
}

// ggml-quants.c, dequantize_row_iq4_nl (one block).
void dequantizeBlockIq4Nl(const BlockIq4Nl& x, float* y)
{
    const float d = fromHalf(x.d);
    for (int j = 0; j < 16; ++j) {
        y[j] = d * kValuesIq4nl[x.qs[j] & 0xf];
        y[j + 16] = d * kValuesIq4nl[x.qs[j] >> 4];
    }
}

// --- Q2_K ---------------------------------------------------------------------------------------------------

// ggml-quants.c, make_qkx2_quants: levels 0..nmax with a scale and a (non-positive) min for n values, searching
// nstep + 1 candidate scales for the least weighted error (absolute error when useMad). Returns the scale and
// stores -min in *theMin. (The original's early return for nstep < 1 is left out: Q2_K searches 15 steps.)
float makeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* theMin, uint8_t* Laux,
                     float rmin, float rdelta, int nstep, bool useMad)
{
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t(0));
        *theMin = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearestInt(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
        float diff = scale * L[i] + min - x[i];
        diff = useMad ? std::fabs(diff) : diff * diff;
        const float w = weights[i];
        best_error += w * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearestInt(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = useMad ? std::fabs(diff) : diff * diff;
                const float w = weights[i];
                cur_error += w * diff;
            }
            if (cur_error < best_error) {
                std::copy(Laux, Laux + n, L);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *theMin = -min;
    return scale;
}

// ggml-quants.c, quantize_row_q2_K_ref (one super-block).
void quantizeBlockQ2K(const float* x, BlockQ2K& y)
{
    uint8_t L[256];
    uint8_t Laux[16];
    float weights[16];
    float mins[16];
    float scales[16];
    const float q4scale = 15.f;

    float max_scale = 0; // as we are deducting the min, scales are always positive
    float max_min = 0;
    for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 16; ++l)
            weights[l] = std::fabs(x[16 * j + l]);
        scales[j] = makeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
        const float scale = scales[j];
        if (scale > max_scale)
            max_scale = scale;
        const float min = mins[j];
        if (min > max_min)
            max_min = min;
    }

    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j)
            y.scales[j] = static_cast<uint8_t>(nearestInt(iscale * scales[j]));
        y.d = toHalf(max_scale / q4scale);
    } else {
        std::fill(std::begin(y.scales), std::end(y.scales), uint8_t(0));
        y.d = toHalf(0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j)
            y.scales[j] = static_cast<uint8_t>(y.scales[j] | (nearestInt(iscale * mins[j]) << 4));
        y.dmin = toHalf(max_min / q4scale);
    } else {
        y.dmin = toHalf(0.f);
    }
    for (int j = 0; j < 16; ++j) {
        const float d = fromHalf(y.d) * (y.scales[j] & 0xF);
        if (d == 0.0f)
            continue;
        const float dm = fromHalf(y.dmin) * (y.scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearestInt((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = static_cast<uint8_t>(std::clamp(l, 0, 3));
        }
    }
    packTwoBitPlanes(L, y.qs);
}

// ggml-quants.c, dequantize_row_q2_K (one super-block).
void dequantizeBlockQ2K(const BlockQ2K& x, float* y)
{
    const float d = fromHalf(x.d);
    const float min = fromHalf(x.dmin);
    const uint8_t* q = x.qs;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            uint8_t sc = x.scales[is++];
            float dl = d * (sc & 0xF), ml = min * (sc >> 4);
            for (int l = 0; l < 16; ++l)
                *y++ = dl * static_cast<int8_t>((q[l] >> shift) & 3) - ml;

            sc = x.scales[is++];
            dl = d * (sc & 0xF);
            ml = min * (sc >> 4);
            for (int l = 0; l < 16; ++l)
                *y++ = dl * static_cast<int8_t>((q[l + 16] >> shift) & 3) - ml;

            shift += 2;
        }
        q += 32;
    }
}

// --- Q3_K ---------------------------------------------------------------------------------------------------

// ggml-quants.c, make_q3_quants with do_rmse = true (Q3_K's only use): signed levels -nmax..nmax-1 for n values
// by an x^2-weighted fit refined coordinate-wise; L receives level + nmax, the return value is the scale.
float makeQ3Quants(int n, int nmax, const float* x, int8_t* L)
{
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) { // all zero
        std::fill(L, L + n, int8_t(0));
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::clamp(nearestInt(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                const int new_l = std::clamp(nearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<int8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// The signed scale of sub-block j (-32..31) from Q3_K's 12 packed bytes: the low nibble in scales[j] (j < 8) or
// the high nibble of scales[j - 8], the top two bits in scales[8 + j % 4] at bit 2 * (j / 4). This is the
// decoding of quantize_row_q3_K_ref; dequantize_row_q3_K's kmask shuffle yields the same numbers.
inline int q3kScale(const uint8_t* scales, int j)
{
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// ggml-quants.c, quantize_row_q3_K_ref (one super-block).
void quantizeBlockQ3K(const float* x, BlockQ3K& y)
{
    int8_t L[256];
    float scales[16];

    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < 16; ++j) {
        scales[j] = makeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
        const float scale = std::fabs(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }

    std::fill(std::begin(y.scales), std::end(y.scales), uint8_t(0));
    if (max_scale != 0.0f) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
            auto l = static_cast<int8_t>(nearestInt(iscale * scales[j]));
            l = static_cast<int8_t>(std::clamp(int(l), -32, 31) + 32);
            if (j < 8)
                y.scales[j] = static_cast<uint8_t>(l & 0xF);
            else
                y.scales[j - 8] = static_cast<uint8_t>(y.scales[j - 8] | ((l & 0xF) << 4));
            l = static_cast<int8_t>(l >> 4);
            y.scales[j % 4 + 8] = static_cast<uint8_t>(y.scales[j % 4 + 8] | (l << (2 * (j / 4))));
        }
        y.d = toHalf(1 / iscale);
    } else {
        y.d = toHalf(0.f);
    }

    for (int j = 0; j < 16; ++j) {
        const float d = fromHalf(y.d) * q3kScale(y.scales, j);
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = std::clamp(nearestInt(x[16 * j + ii] / d), -4, 3);
            L[16 * j + ii] = static_cast<int8_t>(l + 4);
        }
    }

    // The high bit of the first 32 levels goes to bit 0 of hmask[0..31], of the next 32 to bit 1, etc.
    std::fill(std::begin(y.hmask), std::end(y.hmask), uint8_t(0));
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < 256; ++j) {
        if (L[j] > 3) {
            y.hmask[m] |= hm;
            L[j] = static_cast<int8_t>(L[j] - 4);
        }
        if (++m == 32) {
            m = 0;
            hm = static_cast<uint8_t>(hm << 1);
        }
    }
    packTwoBitPlanes(L, y.qs);
}

// ggml-quants.c, dequantize_row_q3_K (one super-block).
void dequantizeBlockQ3K(const BlockQ3K& x, float* y)
{
    const float d_all = fromHalf(x.d);
    const uint8_t* q = x.qs;
    const uint8_t* hm = x.hmask;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            float dl = d_all * q3kScale(x.scales, is++);
            for (int l = 0; l < 16; ++l)
                *y++ = dl * (static_cast<int8_t>((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));

            dl = d_all * q3kScale(x.scales, is++);
            for (int l = 0; l < 16; ++l)
                *y++ = dl * (static_cast<int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));

            shift += 2;
            m = static_cast<uint8_t>(m << 1);
        }
        q += 32;
    }
}

// --- rows ---------------------------------------------------------------------------------------------------

template <class Block, void (*QuantizeBlock)(const float*, Block&)>
void quantizeBlocks(const float* src, int64_t elements, uint8_t* out)
{
    const int64_t blocks = elements / Block::kElements;
    for (int64_t i = 0; i < blocks; ++i) {
        Block b;
        QuantizeBlock(src + i * Block::kElements, b);
        std::memcpy(out + i * int64_t(sizeof(Block)), &b, sizeof(Block));
    }
}

template <class Block, void (*DequantizeBlock)(const Block&, float*)>
void dequantizeBlocks(const uint8_t* src, int64_t elements, float* out)
{
    const int64_t blocks = elements / Block::kElements;
    for (int64_t i = 0; i < blocks; ++i) {
        Block b;
        std::memcpy(&b, src + i * int64_t(sizeof(Block)), sizeof(Block));
        DequantizeBlock(b, out + i * Block::kElements);
    }
}

template <uint16_t (*Convert)(float)>
void storeHalves(const float* src, int64_t elements, uint8_t* out)
{
    for (int64_t i = 0; i < elements; ++i) {
        const uint16_t h = Convert(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
    }
}

template <float (*Convert)(uint16_t)>
void loadHalves(const uint8_t* src, int64_t elements, float* out)
{
    for (int64_t i = 0; i < elements; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = Convert(h);
    }
}

struct TypeEntry {
    GgmlType type;
    GgmlTypeTraits traits;
};

// In id order (ggmlTypes() lists them so).
constexpr std::array<TypeEntry, 9> kTypes = {{
    {GgmlType::F32, {"f32", 1, 4, false}},
    {GgmlType::F16, {"f16", 1, 2, false}},
    {GgmlType::Q4_0, {"q4_0", BlockQ4_0::kElements, int(sizeof(BlockQ4_0)), true}},
    {GgmlType::Q4_1, {"q4_1", BlockQ4_1::kElements, int(sizeof(BlockQ4_1)), true}},
    {GgmlType::Q8_0, {"q8_0", BlockQ8_0::kElements, int(sizeof(BlockQ8_0)), true}},
    {GgmlType::Q2_K, {"q2_K", BlockQ2K::kElements, int(sizeof(BlockQ2K)), true}},
    {GgmlType::Q3_K, {"q3_K", BlockQ3K::kElements, int(sizeof(BlockQ3K)), true}},
    {GgmlType::IQ4_NL, {"iq4_nl", BlockIq4Nl::kElements, int(sizeof(BlockIq4Nl)), true}},
    {GgmlType::BF16, {"bf16", 1, 2, false}},
}};

std::string lowerAscii(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The element count of `rows` rows of `rowLength`, after checking that they fit `type`.
int64_t checkedElements(GgmlType type, int64_t rows, int64_t rowLength)
{
    (void)ggmlTensorBytes(type, rows, rowLength);
    return rows * rowLength;
}

} // namespace

const GgmlTypeTraits& ggmlTypeTraits(GgmlType type)
{
    for (const TypeEntry& e : kTypes)
        if (e.type == type)
            return e.traits;
    throw ConfigError("unknown ggml type id " + std::to_string(static_cast<uint32_t>(type)));
}

std::optional<GgmlType> ggmlTypeFromId(uint32_t id)
{
    for (const TypeEntry& e : kTypes)
        if (static_cast<uint32_t>(e.type) == id)
            return e.type;
    return std::nullopt;
}

std::optional<GgmlType> ggmlTypeFromName(std::string_view name)
{
    const std::string wanted = lowerAscii(name);
    for (const TypeEntry& e : kTypes)
        if (lowerAscii(e.traits.name) == wanted)
            return e.type;
    return std::nullopt;
}

const std::vector<GgmlType>& ggmlTypes()
{
    static const std::vector<GgmlType> types = [] {
        std::vector<GgmlType> v;
        for (const TypeEntry& e : kTypes)
            v.push_back(e.type);
        return v;
    }();
    return types;
}

double ggmlBitsPerElement(GgmlType type)
{
    const GgmlTypeTraits& t = ggmlTypeTraits(type);
    return 8.0 * t.blockBytes / t.blockSize;
}

bool ggmlRowFits(GgmlType type, int64_t rowLength)
{
    return rowLength >= 0 && rowLength % ggmlTypeTraits(type).blockSize == 0;
}

int64_t ggmlRowBytes(GgmlType type, int64_t rowLength)
{
    const GgmlTypeTraits& t = ggmlTypeTraits(type);
    if (!ggmlRowFits(type, rowLength))
        throw ConfigError(std::string("ggml type ") + t.name + " cannot store a row of " + std::to_string(rowLength) +
                          " elements: its rows are made of blocks of " + std::to_string(t.blockSize) +
                          " elements, so the length must be a multiple of " + std::to_string(t.blockSize));
    return rowLength / t.blockSize * t.blockBytes;
}

int64_t ggmlTensorBytes(GgmlType type, int64_t rows, int64_t rowLength)
{
    const int64_t rowBytes = ggmlRowBytes(type, rowLength);
    if (rows < 0)
        throw ConfigError(std::string("ggml type ") + ggmlTypeName(type) + ": a tensor cannot have " +
                          std::to_string(rows) + " rows");
    return rowBytes * rows;
}

void quantizeRows(GgmlType type, const float* src, int64_t rows, int64_t rowLength, uint8_t* out)
{
    const int64_t n = checkedElements(type, rows, rowLength);
    switch (type) {
    case GgmlType::F32:
        if (n > 0)
            std::memcpy(out, src, size_t(n) * sizeof(float));
        return;
    case GgmlType::F16: return storeHalves<toHalf>(src, n, out);
    case GgmlType::BF16: return storeHalves<fp32ToBf16>(src, n, out);
    case GgmlType::Q4_0: return quantizeBlocks<BlockQ4_0, quantizeBlockQ4_0>(src, n, out);
    case GgmlType::Q4_1: return quantizeBlocks<BlockQ4_1, quantizeBlockQ4_1>(src, n, out);
    case GgmlType::Q8_0: return quantizeBlocks<BlockQ8_0, quantizeBlockQ8_0>(src, n, out);
    case GgmlType::Q2_K: return quantizeBlocks<BlockQ2K, quantizeBlockQ2K>(src, n, out);
    case GgmlType::Q3_K: return quantizeBlocks<BlockQ3K, quantizeBlockQ3K>(src, n, out);
    case GgmlType::IQ4_NL: return quantizeBlocks<BlockIq4Nl, quantizeBlockIq4Nl>(src, n, out);
    }
}

void dequantizeRows(GgmlType type, const uint8_t* src, int64_t rows, int64_t rowLength, float* out)
{
    const int64_t n = checkedElements(type, rows, rowLength);
    switch (type) {
    case GgmlType::F32:
        if (n > 0)
            std::memcpy(out, src, size_t(n) * sizeof(float));
        return;
    case GgmlType::F16: return loadHalves<fromHalf>(src, n, out);
    case GgmlType::BF16: return loadHalves<bf16ToFp32>(src, n, out);
    case GgmlType::Q4_0: return dequantizeBlocks<BlockQ4_0, dequantizeBlockQ4_0>(src, n, out);
    case GgmlType::Q4_1: return dequantizeBlocks<BlockQ4_1, dequantizeBlockQ4_1>(src, n, out);
    case GgmlType::Q8_0: return dequantizeBlocks<BlockQ8_0, dequantizeBlockQ8_0>(src, n, out);
    case GgmlType::Q2_K: return dequantizeBlocks<BlockQ2K, dequantizeBlockQ2K>(src, n, out);
    case GgmlType::Q3_K: return dequantizeBlocks<BlockQ3K, dequantizeBlockQ3K>(src, n, out);
    case GgmlType::IQ4_NL: return dequantizeBlocks<BlockIq4Nl, dequantizeBlockIq4Nl>(src, n, out);
    }
}

// ggml-impl.h, ggml_compute_fp32_to_bf16: round to nearest even on the bits; a NaN keeps its sign and top payload
// bits and is made quiet. Subnormals are rounded like any other value (older ggml flushed them to zero).
uint16_t fp32ToBf16(float x)
{
    const uint32_t u = std::bit_cast<uint32_t>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return static_cast<uint16_t>((u >> 16) | 64); // force to quiet
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// ggml-impl.h, ggml_compute_bf16_to_fp32.
float bf16ToFp32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

} // namespace qpruner::gguf
