// Plain-loop reference of every quantized format (see reference_quant.h and the rules in formats.h).
#include "quant/reference_quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "qpruner/error.h"
#include "quant/formats.h"
#include "quant/half_bits.h"

namespace qpruner::quant::reference {

static_assert(std::endian::native == std::endian::little, "stored tensors are little-endian");

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

void checkFinite(float v, int64_t index, int64_t cols)
{
    if (!std::isfinite(v))
        throw FormatError("quantize: weight element [" + std::to_string(index / cols) + ", " +
                          std::to_string(index % cols) + "] is " + std::to_string(v) + ", not a finite number");
}

void checkShape(const std::vector<float>& w, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0 || int64_t(w.size()) != rows * cols)
        throw ConfigError("quantize: " + std::to_string(w.size()) + " values do not form a [" +
                          std::to_string(rows) + ", " + std::to_string(cols) + "] weight");
}

template <size_t N>
uint8_t nearestLevel(const std::array<float, N>& levels, float x)
{
    size_t best = 0;
    double bestDist = std::abs(double(x) - double(levels[0]));
    for (size_t i = 1; i < N; ++i) {
        const double d = std::abs(double(x) - double(levels[i]));
        if (d < bestDist) { // strict: an exact tie keeps the lower index
            best = i;
            bestDist = d;
        }
    }
    return static_cast<uint8_t>(best);
}

template <int Bits>
IntKGroups quantizeIntKImpl(const std::vector<float>& w, int64_t rows, int64_t cols, int group)
{
    using F = IntKFormat<Bits>;
    const int64_t groups = ceilDiv(cols, group);
    IntKGroups out;
    out.scale.resize(size_t(rows * groups));
    out.zero.resize(size_t(rows * groups));
    std::vector<uint8_t> codes(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * group, c1 = std::min(cols, c0 + group);
            float mn = 0.0f, mx = 0.0f; // the range always includes 0 (formats.h)
            for (int64_t c = c0; c < c1; ++c) {
                const float v = w[size_t(r * cols + c)];
                checkFinite(v, r * cols + c, cols);
                mn = std::min(mn, v);
                mx = std::max(mx, v);
            }
            const uint16_t s16 = roundUpToHalfBits((mx - mn) / float(F::kQMax));
            if (s16 == kHalfInfinityBits)
                throw ConfigError("quantize: row " + std::to_string(r) + " group " + std::to_string(g) +
                                  " spans [" + std::to_string(mn) + ", " + std::to_string(mx) +
                                  "], too wide for an fp16 scale");
            const float sf = halfBitsToFloat(s16);
            const float div = sf == 0.0f ? 1.0f : sf;
            const uint16_t z16 = floatToHalfBits((0.0f - mn) / div);
            const float zf = halfBitsToFloat(z16);
            out.scale[size_t(r * groups + g)] = s16;
            out.zero[size_t(r * groups + g)] = z16;
            for (int64_t c = c0; c < c1; ++c) {
                const float q = std::nearbyint(w[size_t(r * cols + c)] / div + zf);
                codes[size_t(r * cols + c)] = static_cast<uint8_t>(std::clamp(q, 0.0f, float(F::kQMax)));
            }
        }
    }
    out.packed = packRows(codes, rows, cols, Bits);
    return out;
}

template <typename T>
std::vector<uint8_t> bytesOf(const std::vector<T>& v)
{
    std::vector<uint8_t> b(v.size() * sizeof(T));
    if (!v.empty())
        std::memcpy(b.data(), v.data(), b.size());
    return b;
}

template <typename T>
std::vector<T> partAs(const PartBytes& parts, const std::string& suffix, int64_t count)
{
    const auto it = parts.find(suffix);
    if (it == parts.end())
        throw FormatError("dequantize: part '" + suffix + "' is missing");
    if (int64_t(it->second.size()) != count * int64_t(sizeof(T)))
        throw FormatError("dequantize: part '" + suffix + "' has " + std::to_string(it->second.size()) +
                          " bytes, expected " + std::to_string(count * int64_t(sizeof(T))));
    std::vector<T> v(static_cast<size_t>(count));
    std::memcpy(v.data(), it->second.data(), it->second.size());
    return v;
}

} // namespace

uint8_t nearestNf4Code(float x) { return nearestLevel(Nf4Format::kLevels, x); }

uint8_t nearestDynamicMapCode(float x) { return nearestLevel(dynamicMapLevels(), x); }

Nf4Blocks quantizeNf4(const std::vector<float>& w, int64_t rows, int64_t cols)
{
    checkShape(w, rows, cols);
    const int64_t n = rows * cols;
    Nf4Blocks out;
    out.codes.assign(size_t(ceilDiv(n, 2)), 0);
    out.absmax.resize(size_t(ceilDiv(n, Nf4Format::kBlock)));
    for (size_t b = 0; b < out.absmax.size(); ++b) {
        const int64_t i0 = int64_t(b) * Nf4Format::kBlock, i1 = std::min(n, i0 + Nf4Format::kBlock);
        float m = 0.0f;
        for (int64_t i = i0; i < i1; ++i) {
            checkFinite(w[size_t(i)], i, cols);
            m = std::max(m, std::abs(w[size_t(i)]));
        }
        out.absmax[b] = m;
        const float div = m == 0.0f ? 1.0f : m; // an all-zero block: every x is 0, code 7
        for (int64_t i = i0; i < i1; ++i)
            out.codes[size_t(i / 2)] |= uint8_t(nearestNf4Code(w[size_t(i)] / div) << (4 * (i & 1)));
    }
    return out;
}

std::vector<float> dequantizeNf4(const std::vector<uint8_t>& codes, const std::vector<float>& absmax, int64_t n)
{
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const int code = (codes[size_t(i / 2)] >> (4 * (i & 1))) & 0xf;
        out[size_t(i)] = absmax[size_t(i / Nf4Format::kBlock)] * Nf4Format::kLevels[size_t(code)];
    }
    return out;
}

DoubleQuantAbsmax quantizeAbsmax(const std::vector<float>& absmax)
{
    const auto nb = int64_t(absmax.size());
    constexpr int B = Nf4DoubleQuantFormat::kBlock;
    DoubleQuantAbsmax out;
    out.offset = orderIndependentMean(absmax.data(), nb);
    out.q.resize(size_t(nb));
    out.scale.resize(size_t(ceilDiv(nb, B)));
    for (size_t b = 0; b < out.scale.size(); ++b) {
        const int64_t i0 = int64_t(b) * B, i1 = std::min(nb, i0 + B);
        float s = 0.0f;
        for (int64_t i = i0; i < i1; ++i)
            s = std::max(s, std::abs(absmax[size_t(i)] - out.offset));
        out.scale[b] = s;
        const float div = s == 0.0f ? 1.0f : s;
        for (int64_t i = i0; i < i1; ++i)
            out.q[size_t(i)] = nearestDynamicMapCode((absmax[size_t(i)] - out.offset) / div);
    }
    return out;
}

std::vector<float> dequantizeAbsmax(const DoubleQuantAbsmax& d)
{
    const auto& levels = dynamicMapLevels();
    std::vector<float> out(d.q.size());
    for (size_t i = 0; i < d.q.size(); ++i)
        out[i] = levels[d.q[i]] * d.scale[i / Nf4DoubleQuantFormat::kBlock] + d.offset;
    return out;
}

Int8Rows quantizeInt8(const std::vector<float>& w, int64_t rows, int64_t cols)
{
    checkShape(w, rows, cols);
    Int8Rows out;
    out.q.resize(w.size());
    out.scale.resize(size_t(rows));
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = w.data() + r * cols;
        float m = 0.0f;
        for (int64_t c = 0; c < cols; ++c) {
            checkFinite(row[c], r * cols + c, cols);
            m = std::max(m, std::abs(row[c]));
        }
        const float s = m / float(Int8Format::kQMax);
        out.scale[size_t(r)] = s;
        const float div = s == 0.0f ? 1.0f : s;
        for (int64_t c = 0; c < cols; ++c) {
            const float q = std::nearbyint(row[c] / div);
            out.q[size_t(r * cols + c)] =
                static_cast<int8_t>(std::clamp(q, -float(Int8Format::kQMax), float(Int8Format::kQMax)));
        }
    }
    return out;
}

std::vector<float> dequantizeInt8(const Int8Rows& q, int64_t rows, int64_t cols)
{
    std::vector<float> out(size_t(rows * cols));
    for (int64_t i = 0; i < rows * cols; ++i)
        out[size_t(i)] = float(q.q[size_t(i)]) * q.scale[size_t(i / cols)];
    return out;
}

IntKGroups quantizeIntK(const std::vector<float>& w, int64_t rows, int64_t cols, int bits, int group)
{
    checkShape(w, rows, cols);
    if (!Int4Format::validGroup(group))
        throw ConfigError("quantize: int" + std::to_string(bits) + " needs group size 64 or 128, got " +
                          std::to_string(group));
    switch (bits) {
    case 4: return quantizeIntKImpl<4>(w, rows, cols, group);
    case 3: return quantizeIntKImpl<3>(w, rows, cols, group);
    case 2: return quantizeIntKImpl<2>(w, rows, cols, group);
    default: throw ConfigError("quantize: no int" + std::to_string(bits) + " format (2, 3 or 4 bits)");
    }
}

std::vector<float> dequantizeIntK(const IntKGroups& q, int64_t rows, int64_t cols, int bits, int group)
{
    const int64_t groups = ceilDiv(cols, group);
    const auto codes = unpackRows(q.packed, rows, cols, bits);
    std::vector<float> out(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const size_t g = size_t(r * groups + c / group);
            out[size_t(r * cols + c)] =
                (float(codes[size_t(r * cols + c)]) - halfBitsToFloat(q.zero[g])) * halfBitsToFloat(q.scale[g]);
        }
    return out;
}

std::vector<uint8_t> packRows(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols, int bits)
{
    const int64_t rowBytes = ceilDiv(cols * bits, 8);
    std::vector<uint8_t> out(size_t(rows * rowBytes), 0);
    for (int64_t r = 0; r < rows; ++r) {
        uint8_t* row = out.data() + r * rowBytes;
        for (int64_t c = 0; c < cols; ++c) {
            const unsigned code = codes[size_t(r * cols + c)];
            const int64_t bit = c * bits;
            const int shift = int(bit % 8);
            row[bit / 8] |= uint8_t(code << shift);
            if (shift + bits > 8) // int3: the code continues in the next byte
                row[bit / 8 + 1] |= uint8_t(code >> (8 - shift));
        }
    }
    return out;
}

std::vector<uint8_t> unpackRows(const std::vector<uint8_t>& packed, int64_t rows, int64_t cols, int bits)
{
    const int64_t rowBytes = ceilDiv(cols * bits, 8);
    std::vector<uint8_t> out(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = packed.data() + r * rowBytes;
        for (int64_t c = 0; c < cols; ++c) {
            const int64_t bit = c * bits;
            const int shift = int(bit % 8);
            unsigned v = unsigned(row[bit / 8]) >> shift;
            if (shift + bits > 8)
                v |= unsigned(row[bit / 8 + 1]) << (8 - shift);
            out[size_t(r * cols + c)] = uint8_t(v & ((1u << bits) - 1));
        }
    }
    return out;
}

PartBytes quantize(const std::vector<float>& w, int64_t rows, int64_t cols, const QuantSpec& spec)
{
    checkShape(w, rows, cols);
    switch (spec.kind) {
    case QuantKind::Int8: {
        const auto q = quantizeInt8(w, rows, cols);
        return {{"qweight", bytesOf(q.q)}, {"scale", bytesOf(q.scale)}};
    }
    case QuantKind::NF4: {
        const auto q = quantizeNf4(w, rows, cols);
        if (!spec.doubleQuant)
            return {{"codes", q.codes}, {"absmax", bytesOf(q.absmax)}};
        const auto d = quantizeAbsmax(q.absmax);
        return {{"codes", q.codes},
                {"absmax_q", d.q},
                {"absmax_scale", bytesOf(d.scale)},
                {"absmax_offset", bytesOf(std::vector<float>{d.offset})}};
    }
    case QuantKind::Int4:
    case QuantKind::Int3:
    case QuantKind::Int2: {
        const auto q = quantizeIntK(w, rows, cols, spec.codeBits(), spec.groupSize);
        return {{"qweight", q.packed}, {"scale", bytesOf(q.scale)}, {"zero", bytesOf(q.zero)}};
    }
    case QuantKind::F32:
    case QuantKind::BF16:
    case QuantKind::F16: break;
    }
    throw ConfigError("quantize: " + spec.name() + " is a dense format, not a quantized one");
}

std::vector<float> dequantize(const PartBytes& parts, int64_t rows, int64_t cols, const QuantSpec& spec)
{
    const int64_t n = rows * cols;
    switch (spec.kind) {
    case QuantKind::Int8:
        return dequantizeInt8({partAs<int8_t>(parts, "qweight", n), partAs<float>(parts, "scale", rows)}, rows,
                              cols);
    case QuantKind::NF4: {
        const int64_t nb = ceilDiv(n, Nf4Format::kBlock);
        const auto codes = partAs<uint8_t>(parts, "codes", ceilDiv(n, 2));
        if (!spec.doubleQuant)
            return dequantizeNf4(codes, partAs<float>(parts, "absmax", nb), n);
        DoubleQuantAbsmax d;
        d.q = partAs<uint8_t>(parts, "absmax_q", nb);
        d.scale = partAs<float>(parts, "absmax_scale", ceilDiv(nb, Nf4DoubleQuantFormat::kBlock));
        d.offset = partAs<float>(parts, "absmax_offset", 1)[0];
        return dequantizeNf4(codes, dequantizeAbsmax(d), n);
    }
    case QuantKind::Int4:
    case QuantKind::Int3:
    case QuantKind::Int2: {
        const int bits = spec.codeBits();
        const int64_t groups = ceilDiv(cols, spec.groupSize);
        IntKGroups q;
        q.packed = partAs<uint8_t>(parts, "qweight", rows * ceilDiv(cols * bits, 8));
        q.scale = partAs<uint16_t>(parts, "scale", rows * groups);
        q.zero = partAs<uint16_t>(parts, "zero", rows * groups);
        return dequantizeIntK(q, rows, cols, bits, spec.groupSize);
    }
    case QuantKind::F32:
    case QuantKind::BF16:
    case QuantKind::F16: break;
    }
    throw ConfigError("dequantize: " + spec.name() + " is a dense format, not a quantized one");
}

} // namespace qpruner::quant::reference
