// Row-wise int8 and group-wise int4/int3/int2 with tensor ops: the fast path of reference::quantizeInt8 /
// quantizeIntK, their inverses and the LSB-first row packing. Each float operation is the reference's, in the
// same order (divisions by a constant divide by a device tensor, never by a host scalar, which CUDA would turn
// into a multiplication by the reciprocal).
#include "qpruner/error.h"
#include "quant/formats.h"
#include "quant/half_bits.h"
#include "quant/tensor_kernels.h"

namespace qpruner::quant::kernels {

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t stepRows(int64_t cols) { return std::max<int64_t>(1, kStepElements / cols); }

at::Tensor constantOn(float v, const at::Tensor& like) { return at::full({1}, v, like.options()); }

// [256, 8 / bits]: the codes one byte holds as floats, lowest bits first (int4 and int2 decode by one gather).
const at::Tensor& byteCodeTable(int bits)
{
    static const auto build = [](int b) {
        const int per = 8 / b;
        auto lut = at::empty({256, per}, at::kFloat);
        auto* p = lut.data_ptr<float>();
        for (int v = 0; v < 256; ++v)
            for (int j = 0; j < per; ++j)
                p[v * per + j] = float((v >> (b * j)) & ((1 << b) - 1));
        return lut;
    };
    static const at::Tensor t4 = build(4), t2 = build(2);
    return bits == 4 ? t4 : t2;
}

// Codes of rows as fp32 [rows, cols].
at::Tensor unpackRowsAsFloat(const at::Tensor& packed, int64_t cols, int bits)
{
    if (8 % bits != 0)
        return unpackRows(packed, cols, bits).to(at::kFloat);
    const int64_t rows = packed.size(0), rowBytes = packed.size(1);
    return tableOn(byteCodeTable(bits), packed.device())
        .index_select(0, packed.reshape(-1).to(at::kLong))
        .view({rows, rowBytes * (8 / bits)})
        .narrow(1, 0, cols);
}

} // namespace

at::Tensor packRows(const at::Tensor& codes, int bits)
{
    const int64_t rows = codes.size(0), cols = codes.size(1), rowBytes = ceilDiv(cols * bits, 8);
    if (8 % bits == 0) { // int4, int2: 8 / bits codes per byte
        const int64_t per = 8 / bits;
        const auto v = at::constant_pad_nd(codes, {0, rowBytes * per - cols}, 0).view({rows, rowBytes, per});
        auto out = v.select(2, 0).clone();
        for (int64_t j = 1; j < per; ++j)
            out += v.select(2, j) * (1 << (bits * j)); // disjoint bits: + is |
        return out;
    }
    // int3: 8 codes make a 24-bit word, stored as 3 little-endian bytes.
    const int64_t words = ceilDiv(cols, 8);
    const auto v = at::constant_pad_nd(codes, {0, words * 8 - cols}, 0).view({rows, words, 8}).to(at::kInt);
    const auto shifts = at::arange(0, 8 * bits, bits, v.options());
    const auto word = at::bitwise_left_shift(v, shifts).sum(at::IntArrayRef{2}, /*keepdim=*/false, at::kInt);
    const auto byteShifts = at::arange(0, 8 * bits, 8, v.options());
    const auto bytes = at::bitwise_and(at::bitwise_right_shift(word.unsqueeze(2), byteShifts), 0xff);
    return bytes.to(at::kByte).view({rows, words * bits}).narrow(1, 0, rowBytes).contiguous();
}

at::Tensor unpackRows(const at::Tensor& packed, int64_t cols, int bits)
{
    const int64_t rows = packed.size(0), rowBytes = packed.size(1);
    if (8 % bits == 0) {
        const int64_t per = 8 / bits;
        const auto shifts = at::arange(0, 8, bits, packed.options());
        const auto codes = at::bitwise_and(at::bitwise_right_shift(packed.unsqueeze(2), shifts), (1 << bits) - 1);
        return codes.view({rows, rowBytes * per}).narrow(1, 0, cols);
    }
    const int64_t words = ceilDiv(cols, 8);
    const auto b =
        at::constant_pad_nd(packed, {0, words * bits - rowBytes}, 0).view({rows, words, bits}).to(at::kInt);
    const auto byteShifts = at::arange(0, 8 * bits, 8, b.options());
    const auto word = at::bitwise_left_shift(b, byteShifts).sum(at::IntArrayRef{2}, false, at::kInt);
    const auto shifts = at::arange(0, 8 * bits, bits, b.options());
    const auto codes = at::bitwise_and(at::bitwise_right_shift(word.unsqueeze(2), shifts), (1 << bits) - 1);
    return codes.to(at::kByte).view({rows, words * 8}).narrow(1, 0, cols);
}

Parts quantizeInt8(const at::Tensor& weight)
{
    const int64_t rows = weight.size(0), cols = weight.size(1);
    auto qweight = at::empty({rows, cols}, weight.options().dtype(at::kChar));
    auto scale = at::empty({rows}, weight.options());
    const auto qmax = constantOn(float(Int8Format::kQMax), weight);
    for (int64_t r0 = 0; r0 < rows; r0 += stepRows(cols)) {
        const int64_t n = std::min(rows - r0, stepRows(cols));
        const auto w = weight.narrow(0, r0, n);
        const auto s = w.abs().amax(1) / qmax;
        requireFinite(s, [&](int64_t r) { return "row " + std::to_string(r0 + r); });
        scale.narrow(0, r0, n).copy_(s);
        const auto q = w.div(s.masked_fill(s == 0, 1.0).unsqueeze(1)).round_();
        qweight.narrow(0, r0, n).copy_(q.clamp_(-Int8Format::kQMax, Int8Format::kQMax));
    }
    return {{"qweight", qweight}, {"scale", scale}};
}

at::Tensor dequantizeInt8Rows(const QuantizedTensor& q, int64_t r0, int64_t r1)
{
    // One new tensor, scaled in place (on the CPU, fresh allocations cost more than the arithmetic).
    return q.parts.at("qweight").narrow(0, r0, r1 - r0).to(at::kFloat).mul_(
        q.parts.at("scale").narrow(0, r0, r1 - r0).unsqueeze(1));
}

Parts quantizeIntK(const at::Tensor& weight, int bits, int group)
{
    const int64_t rows = weight.size(0), cols = weight.size(1), groups = ceilDiv(cols, group);
    const int qmax = (1 << bits) - 1;
    auto qweight = at::empty({rows, ceilDiv(cols * bits, 8)}, weight.options().dtype(at::kByte));
    auto scale = at::empty({rows, groups}, weight.options().dtype(at::kHalf));
    auto zero = at::empty({rows, groups}, weight.options().dtype(at::kHalf));
    const auto qmaxT = constantOn(float(qmax), weight);
    for (int64_t r0 = 0; r0 < rows; r0 += stepRows(cols)) {
        const int64_t n = std::min(rows - r0, stepRows(cols));
        // Padding with zeros changes no range: every range includes 0 (formats.h).
        const auto w = at::constant_pad_nd(weight.narrow(0, r0, n), {0, groups * group - cols}, 0)
                           .view({n, groups, group});
        const auto lo = w.amin(2), hi = w.amax(2);
        requireFinite(at::cat({lo, hi}, 1), [&](int64_t i) {
            const int64_t g = (i % (2 * groups)) % groups;
            return "row " + std::to_string(r0 + i / (2 * groups)) + ", columns from " + std::to_string(g * group);
        });
        const auto mn = lo.clamp_max(0), mx = hi.clamp_min(0);
        // scale: (max - min) / qmax rounded up to fp16; +0 for an all-zero group.
        const auto s = (mx - mn) / qmaxT;
        const auto nearest = s.to(at::kHalf);
        const auto bits16 = (nearest.view(at::kShort) + (nearest.to(at::kFloat) < s).to(at::kShort))
                                .masked_fill_((s > 0).logical_not(), 0);
        if ((bits16 == int(kHalfInfinityBits)).any().item<bool>())
            throw ConfigError("quantize: a group of rows " + std::to_string(r0) + ".." + std::to_string(r0 + n - 1) +
                              " spans more than an fp16 scale can (" + std::to_string(65504.0 * qmax) + ")");
        const auto s16 = bits16.view(at::kHalf);
        const auto sf = s16.to(at::kFloat);
        const auto div = sf.masked_fill(sf == 0, 1.0);
        const auto z16 = (at::rsub(mn, 0) / div).to(at::kHalf); // 0 - min: +0, never -0
        const auto q = w.div(div.unsqueeze(2)).add_(z16.to(at::kFloat).unsqueeze(2)).round_().clamp_(0, qmax);
        const auto codes = q.to(at::kByte).view({n, groups * group}).narrow(1, 0, cols);
        qweight.narrow(0, r0, n).copy_(packRows(codes, bits));
        scale.narrow(0, r0, n).copy_(s16);
        zero.narrow(0, r0, n).copy_(z16);
    }
    return {{"qweight", qweight}, {"scale", scale}, {"zero", zero}};
}

at::Tensor dequantizeIntKRows(const QuantizedTensor& q, int64_t r0, int64_t r1)
{
    const int bits = q.spec.codeBits();
    const int64_t n = r1 - r0, cols = q.cols, group = q.spec.groupSize, groups = ceilDiv(cols, group);
    auto codes = unpackRowsAsFloat(q.parts.at("qweight").narrow(0, r0, n), cols, bits); // a fresh tensor
    if (codes.size(1) != groups * group || !codes.is_contiguous())
        codes = at::constant_pad_nd(codes, {0, groups * group - cols}, 0);
    const auto zero = q.parts.at("zero").narrow(0, r0, n).to(at::kFloat).unsqueeze(2);
    const auto scale = q.parts.at("scale").narrow(0, r0, n).to(at::kFloat).unsqueeze(2);
    return codes.view({n, groups, group}).sub_(zero).mul_(scale).view({n, groups * group}).narrow(1, 0, cols);
}

} // namespace qpruner::quant::kernels
