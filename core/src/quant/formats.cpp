// The computed tables of formats.h: bitsandbytes' 8-bit dynamic map, the nearest-code thresholds of both code
// books, and the order-independent mean used as the double-quantization offset.
#include "quant/formats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace qpruner::quant {

namespace {

// Largest float t with t <= (a + b) / 2. The sum of two adjacent levels is exact in double (their exponents
// differ by far less than 29 bits, or one of them is 0), so for any float x: x > t exactly when x lies above
// the true midpoint, and a value exactly on the midpoint goes to the lower level.
template <size_t N>
std::array<float, N - 1> thresholdsFor(const std::array<float, N>& levels)
{
    std::array<float, N - 1> t{};
    for (size_t k = 0; k + 1 < N; ++k) {
        const double mid = (double(levels[k]) + double(levels[k + 1])) / 2.0;
        float f = static_cast<float>(mid);
        if (double(f) > mid)
            f = std::nextafter(f, -std::numeric_limits<float>::infinity());
        t[k] = f;
    }
    return t;
}

std::array<float, Nf4DoubleQuantFormat::kLevelCount> buildDynamicMap()
{
    // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent i = 0..6 the decade
    // [0.1, 1] * 10^(i-6) is split into 2^i equal bins and each bin's centre is a level, with both signs.
    constexpr int nonSignBits = Nf4DoubleQuantFormat::kBits - 1;
    constexpr int maxExp = Nf4DoubleQuantFormat::kMaxExponentBits;
    std::vector<double> data;
    for (int i = 0; i < maxExp; ++i) {
        const int items = (1 << (i + nonSignBits - maxExp)) + 1;
        const double scale = std::pow(10.0, double(i - (maxExp - 1)));
        for (int j = 0; j + 1 < items; ++j) {
            const double lo = 0.1 + 0.9 * double(j) / double(items - 1);
            const double hi = 0.1 + 0.9 * double(j + 1) / double(items - 1);
            const double mean = (lo + hi) / 2.0;
            data.push_back(scale * mean);
            data.push_back(-scale * mean);
        }
    }
    data.push_back(0.0);
    data.push_back(1.0);
    std::sort(data.begin(), data.end());
    std::array<float, Nf4DoubleQuantFormat::kLevelCount> out{};
    std::transform(data.begin(), data.end(), out.begin(), [](double v) { return static_cast<float>(v); });
    return out;
}

} // namespace

const std::array<float, Nf4DoubleQuantFormat::kLevelCount>& dynamicMapLevels()
{
    static const auto levels = buildDynamicMap();
    return levels;
}

const std::array<float, Nf4Format::kLevelCount - 1>& nf4Thresholds()
{
    static const auto t = thresholdsFor(Nf4Format::kLevels);
    return t;
}

const std::array<float, Nf4DoubleQuantFormat::kLevelCount - 1>& dynamicMapThresholds()
{
    static const auto t = thresholdsFor(dynamicMapLevels());
    return t;
}

const Nf4CodeGrid& nf4CodeGrid()
{
    static const Nf4CodeGrid grid = [] {
        Nf4CodeGrid g;
        const auto& t = nf4Thresholds();
        const double widen = 0x1.0p-22; // x + 1 in [0, 2] is off by at most 2^-24 before the scaling by 16
        for (int j = 0; j < Nf4CodeGrid::kCells; ++j) {
            const double lo = -1.0 + 2.0 * j / Nf4CodeGrid::kCells - widen;
            const double hi = -1.0 + 2.0 * (j + 1) / Nf4CodeGrid::kCells + widen;
            int below = 0, inside = 0;
            g.threshold[size_t(j)] = 2.0f;
            for (float v : t) {
                if (double(v) < lo) {
                    ++below;
                } else if (double(v) <= hi) {
                    ++inside;
                    g.threshold[size_t(j)] = v;
                }
            }
            if (inside > 1)
                throw std::logic_error("NF4 code grid: cell " + std::to_string(j) + " holds " +
                                       std::to_string(inside) + " thresholds");
            g.lower[size_t(j)] = float(below);
        }
        return g;
    }();
    return grid;
}

int fixedPointExponent(float maxValue, int64_t n)
{
    int e = 0;
    std::frexp(maxValue, &e); // maxValue < 2^e
    return 62 - std::bit_width(static_cast<uint64_t>(n)) - e;
}

float fixedPointMean(int64_t sum, int exponent, int64_t n)
{
    return static_cast<float>(std::ldexp(static_cast<double>(sum), -exponent) / static_cast<double>(n));
}

float orderIndependentMean(const float* values, int64_t n)
{
    const float maxValue = n > 0 ? *std::max_element(values, values + n) : 0.0f;
    if (!(maxValue > 0.0f))
        return 0.0f;
    const int s = fixedPointExponent(maxValue, n);
    int64_t sum = 0;
    for (int64_t i = 0; i < n; ++i)
        sum += static_cast<int64_t>(std::ldexp(static_cast<double>(values[i]), s));
    return fixedPointMean(sum, s, n);
}

} // namespace qpruner::quant
