#include "model/rope.h"

#include <cmath>
#include <vector>

namespace qpruner::model {

RopeTable::RopeTable(int headDim, double theta, RopeScaling scaling, at::Device device)
    : headDim_(headDim), theta_(theta), scaling_(std::move(scaling)), device_(device)
{
    const int half = headDim_ / 2;
    std::vector<double> inv(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i)
        inv[static_cast<size_t>(i)] = 1.0 / std::pow(theta_, (2.0 * i) / headDim_);
    if (scaling_.type == "llama3") {
        // Llama-3.1: long wavelengths are divided by `factor`, short ones kept, the band between blended.
        const double lowWave = scaling_.originalMaxPositions / scaling_.lowFreqFactor;
        const double highWave = scaling_.originalMaxPositions / scaling_.highFreqFactor;
        for (auto& f : inv) {
            const double wave = 2.0 * M_PI / f;
            if (wave > lowWave) {
                f /= scaling_.factor;
            } else if (wave >= highWave) {
                const double smooth = (scaling_.originalMaxPositions / wave - scaling_.lowFreqFactor) /
                                      (scaling_.highFreqFactor - scaling_.lowFreqFactor);
                f = (1.0 - smooth) * f / scaling_.factor + smooth * f;
            }
        }
    }
    invFreq_ = at::tensor(inv, at::TensorOptions().dtype(at::kDouble));
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
