// IEEE binary16 conversions on raw bits, for the reference quantizer (which must not lean on libtorch's own
// conversion it is checked against). Round to nearest even, subnormals and infinities as IEEE 754 defines them,
// the same results as at::Tensor::to(at::kHalf) on CPU and CUDA.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace qpruner::quant {

inline uint16_t floatToHalfBits(float f)
{
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00u; // NaN
    if (ax >= 0x477ff000u)
        return sign | 0x7c00u; // >= 65520 rounds to infinity
    if (ax < 0x38800000u) {    // below 2^-14: a subnormal half (or zero), in units of 2^-24
        const float units = std::bit_cast<float>(ax) * 16777216.0f; // exact: scaling by a power of two
        return sign | static_cast<uint16_t>(std::nearbyint(units));  // 1024 becomes the smallest normal
    }
    uint32_t h = ((((ax >> 23) - 127u + 15u) << 10) | ((ax >> 13) & 0x3ffu));
    const uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        ++h; // a carry into the exponent is the correct rounding
    return sign | static_cast<uint16_t>(h);
}

inline float halfBitsToFloat(uint16_t h)
{
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0) {
        const float v = static_cast<float>(m) * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (e == 31)
        return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
    return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

// The smallest half >= f for f > 0 (+0 for f <= 0): the int4/3/2 scale. Infinity when f exceeds 65504.
inline uint16_t roundUpToHalfBits(float f)
{
    if (!(f > 0.0f))
        return 0;
    uint16_t h = floatToHalfBits(f);
    if (halfBitsToFloat(h) < f)
        ++h; // positive halves are ordered like their bits
    return h;
}

inline constexpr uint16_t kHalfInfinityBits = 0x7c00u;

} // namespace qpruner::quant
