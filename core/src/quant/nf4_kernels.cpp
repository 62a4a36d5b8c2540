// NF4 (and its double-quantized absmax) with tensor ops: the fast path of reference::quantizeNf4 /
// quantizeAbsmax and their inverses. Nearest codes come from formats.h's thresholds (through the NF4 code grid,
// or at::bucketize for the dynamic map), which reproduce the reference's "nearest level, ties to the lower
// index" exactly for every float input.
#include <cmath>

#include "qpruner/error.h"
#include "quant/formats.h"
#include "quant/tensor_kernels.h"

namespace qpruner::quant::kernels {

namespace {

constexpr int64_t kBlock = Nf4Format::kBlock;
constexpr int64_t kDqBlock = Nf4DoubleQuantFormat::kBlock;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <size_t N>
at::Tensor cpuTable(const std::array<float, N>& values)
{
    return at::tensor(at::ArrayRef<float>(values.data(), N), at::kFloat);
}

// [cells, 2]: (lower code, threshold) of each cell of formats.h's NF4 code grid.
const at::Tensor& nf4GridTable()
{
    static const at::Tensor t = [] {
        const auto& g = nf4CodeGrid();
        return at::stack({cpuTable(g.lower), cpuTable(g.threshold)}, 1);
    }();
    return t;
}

const at::Tensor& dynamicThresholdTable()
{
    static const at::Tensor t = cpuTable(dynamicMapThresholds());
    return t;
}

const at::Tensor& dynamicLevelTable()
{
    static const at::Tensor t = cpuTable(dynamicMapLevels());
    return t;
}

// [256, 2]: the two NF4 levels a code byte holds (low nibble first), so decoding is one gather per byte.
const at::Tensor& nf4PairTable()
{
    static const at::Tensor t = [] {
        auto lut = at::empty({256, 2}, at::kFloat);
        auto* p = lut.data_ptr<float>();
        for (int b = 0; b < 256; ++b) {
            p[2 * b] = Nf4Format::kLevels[size_t(b & 0xf)];
            p[2 * b + 1] = Nf4Format::kLevels[size_t(b >> 4)];
        }
        return lut;
    }();
    return t;
}

// Pads a 1-D tensor with zeros to `length`.
at::Tensor padTo(const at::Tensor& x, int64_t length)
{
    return x.size(0) == length ? x : at::constant_pad_nd(x, {0, length - x.size(0)}, 0);
}

// Nearest NF4 level of each x in [-1, 1] (1-D), as uint8: one grid lookup and one comparison per element.
at::Tensor nearestNf4Codes(const at::Tensor& x)
{
    constexpr double half = Nf4CodeGrid::kCells / 2;
    const auto cell = (x + 1.0).mul_(half).floor_().clamp_(0, Nf4CodeGrid::kCells - 1).to(at::kLong);
    const auto entry = tableOn(nf4GridTable(), x.device()).index_select(0, cell);
    return entry.select(1, 0).add(at::gt(x, entry.select(1, 1))).to(at::kByte);
}

// Nearest level of the dynamic map (levels down to 1e-6 apart: a binary search, on one value per 64 weights).
at::Tensor nearestDynamicMapCodes(const at::Tensor& x)
{
    return at::bucketize(x, tableOn(dynamicThresholdTable(), x.device()), /*out_int32=*/true, /*right=*/false)
        .to(at::kByte);
}

Parts doubleQuantize(const at::Tensor& absmax)
{
    const int64_t nb = absmax.size(0);
    // Offset: the order-independent mean of formats.h, from the same fixed-point integers.
    const float maxValue = absmax.max().item<float>();
    float offset = 0.0f;
    if (maxValue > 0.0f) {
        const int s = fixedPointExponent(maxValue, nb);
        const int64_t sum = (absmax.to(at::kDouble) * std::ldexp(1.0, s)).to(at::kLong).sum().item<int64_t>();
        offset = fixedPointMean(sum, s, nb);
    }
    const auto opts = absmax.options();
    const int64_t n2 = ceilDiv(nb, kDqBlock);
    const auto centred = padTo(absmax - offset, n2 * kDqBlock).view({n2, kDqBlock}); // padding cannot raise a max
    const auto scale = centred.abs().amax(1);
    const auto q = nearestDynamicMapCodes(centred / scale.masked_fill(scale == 0, 1.0).unsqueeze(1));
    return {{"absmax_q", q.view(-1).narrow(0, 0, nb).contiguous()},
            {"absmax_scale", scale},
            {"absmax_offset", at::full({1}, offset, opts)}};
}

} // namespace

at::Tensor nf4BlockAbsmax(const QuantizedTensor& q, int64_t b0, int64_t b1)
{
    if (!q.spec.doubleQuant)
        return q.parts.at("absmax").narrow(0, b0, b1 - b0);
    const auto levels = tableOn(dynamicLevelTable(), q.device())
                            .index_select(0, q.parts.at("absmax_q").narrow(0, b0, b1 - b0).to(at::kLong));
    const int64_t s0 = b0 / kDqBlock, s1 = ceilDiv(b1, kDqBlock);
    const auto scale = q.parts.at("absmax_scale")
                           .narrow(0, s0, s1 - s0)
                           .repeat_interleave(kDqBlock)
                           .narrow(0, b0 - s0 * kDqBlock, b1 - b0);
    return levels * scale + q.parts.at("absmax_offset");
}

Parts quantizeNf4(const at::Tensor& weight, bool doubleQuant)
{
    const int64_t cols = weight.size(1);
    const auto w = weight.view(-1);
    const int64_t n = w.size(0), nb = ceilDiv(n, kBlock), nBytes = ceilDiv(n, 2);
    auto codes = at::empty({nBytes}, w.options().dtype(at::kByte));
    auto absmax = at::empty({nb}, w.options());
    const int64_t stepBlocks = kStepElements / kBlock;
    for (int64_t b0 = 0; b0 < nb; b0 += stepBlocks) {
        const int64_t b1 = std::min(nb, b0 + stepBlocks);
        const int64_t e0 = b0 * kBlock, e1 = std::min(n, b1 * kBlock);
        const auto blocks = padTo(w.narrow(0, e0, e1 - e0), (b1 - b0) * kBlock).view({b1 - b0, kBlock});
        const auto m = blocks.abs().amax(1);
        requireFinite(m, [&](int64_t i) { // before the code lookup, which needs x in [-1, 1]
            const int64_t e = (b0 + i) * kBlock;
            return "NF4 block " + std::to_string(b0 + i) + " (from weight [" + std::to_string(e / cols) + ", " +
                   std::to_string(e % cols) + "])";
        });
        absmax.narrow(0, b0, b1 - b0).copy_(m);
        // An all-zero block divides by 1: every x is 0, which is code 7.
        auto c = nearestNf4Codes((blocks / m.masked_fill(m == 0, 1.0).unsqueeze(1)).view(-1));
        if (e1 - e0 < c.size(0))
            c.narrow(0, e1 - e0, c.size(0) - (e1 - e0)).zero_(); // an odd count leaves a zero high nibble
        const auto pairs = c.view({-1, 2});
        const auto packed = pairs.select(1, 0) + pairs.select(1, 1) * 16;
        const int64_t byte0 = e0 / 2, byte1 = ceilDiv(e1, 2);
        codes.narrow(0, byte0, byte1 - byte0).copy_(packed.narrow(0, 0, byte1 - byte0));
    }
    if (!doubleQuant)
        return {{"codes", codes}, {"absmax", absmax}};
    Parts parts = doubleQuantize(absmax);
    parts.emplace("codes", codes);
    return parts;
}

at::Tensor dequantizeNf4Elements(const QuantizedTensor& q, int64_t e0, int64_t e1)
{
    const int64_t n = q.rows * q.cols;
    const int64_t b0 = e0 / kBlock, b1 = ceilDiv(e1, kBlock);
    const int64_t byte0 = b0 * kBlock / 2, byte1 = std::min(ceilDiv(n, 2), b1 * kBlock / 2);
    const auto bytes = q.parts.at("codes").narrow(0, byte0, byte1 - byte0).to(at::kLong);
    auto levels = padTo(tableOn(nf4PairTable(), q.device()).index_select(0, bytes).view(-1),
                              (b1 - b0) * kBlock);
    levels.view({b1 - b0, kBlock}).mul_(nf4BlockAbsmax(q, b0, b1).unsqueeze(1)); // levels is a fresh tensor
    return levels.narrow(0, e0 - b0 * kBlock, e1 - e0);
}

} // namespace qpruner::quant::kernels
