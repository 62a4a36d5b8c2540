#include "model/rope.h"

#include <cmath>
#include <vector>

namespace qpruner::model {

RopeTable::RopeTable(int headDim, double theta, RopeScaling scaling, at::Device device)
    : headDim_(headDim), theta_(theta), scaling_(std::move(scaling)), device_(device)
{
    std::vector<double> inv = frequencyDivisors(headDim_, theta_, scaling_);
    for (size_t i = 0; i < inv.size(); ++i)
        inv[i] = 1.0 / std::pow(theta_, (2.0 * static_cast<double>(i)) / headDim_) / inv[i];
    invFreq_ = at::tensor(inv, at::TensorOptions().dtype(at::kDouble));
}

std::vector<double> RopeTable::frequencyDivisors(int headDim, double theta, const RopeScaling& scaling)
{
    const int half = headDim / 2;
    std::vector<double> div(static_cast<size_t>(half), 1.0);
    if (scaling.type == "linear")
        div.assign(static_cast<size_t>(half), scaling.factor); // positions divided by factor (Gemma 3 global layers)
    if (scaling.type != "llama3")
        return div;
    // Llama-3.1: long wavelengths are divided by `factor`, short ones kept, the band between blended.
    const double lowWave = scaling.originalMaxPositions / scaling.lowFreqFactor;
    const double highWave = scaling.originalMaxPositions / scaling.highFreqFactor;
    for (int i = 0; i < half; ++i) {
        const double wave = 2.0 * M_PI * std::pow(theta, (2.0 * i) / headDim);
        double& d = div[static_cast<size_t>(i)];
        if (wave > lowWave) {
            d = scaling.factor;
        } else if (wave >= highWave) {
            const double smooth = (scaling.originalMaxPositions / wave - scaling.lowFreqFactor) /
                                  (scaling.highFreqFactor - scaling.lowFreqFactor);
            d = 1.0 / ((1.0 - smooth) / scaling.factor + smooth);
        }
    }
    return div;
}

at::Tensor interleavedToHalfRows(int64_t heads, int64_t hd)
{
    std::vector<int64_t> idx;
    idx.reserve(static_cast<size_t>(heads * hd));
    for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < hd; i += 2)
            idx.push_back(h * hd + i);
        for (int64_t i = 1; i < hd; i += 2)
            idx.push_back(h * hd + i);
    }
    return at::tensor(idx, at::TensorOptions().dtype(at::kLong));
}

at::Tensor halfToInterleavedRows(int64_t heads, int64_t hd)
{
    return at::argsort(interleavedToHalfRows(heads, hd));
}

void RopeTable::ensure(int64_t length)
{
    if (length <= length_)
        return;
    int64_t n = std::max<int64_t>(length, std::max<int64_t>(2 * length_, 256));
    const auto pos = at::arange(n, at::TensorOptions().dtype(at::kDouble));
    const auto freqs = at::outer(pos, invFreq_);        // [n, half]
    const auto emb = at::cat({freqs, freqs}, -1);       // [n, head_dim]
    cos_ = emb.cos().to(at::kFloat).to(device_);
    sin_ = emb.sin().to(at::kFloat).to(device_);
    length_ = n;
}

RopeTable::Angles RopeTable::angles(int64_t pos, int64_t length, at::ScalarType dt)
{
    ensure(pos + length);
    return {cos_.narrow(0, pos, length).to(dt), sin_.narrow(0, pos, length).to(dt)};
}

at::Tensor RopeTable::apply(const at::Tensor& x, const Angles& a)
{
    const int64_t half = x.size(-1) / 2;
    const auto x1 = x.narrow(-1, 0, half);
    const auto x2 = x.narrow(-1, half, half);
    return x * a.cos + at::cat({-x2, x1}, -1) * a.sin;
}

} // namespace qpruner::model
