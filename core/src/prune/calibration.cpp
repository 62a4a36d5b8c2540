#include "prune/calibration.h"

#include <random>
#include <string>

#include "qpruner/error.h"

namespace qpruner::prune {

at::Tensor sampleCalibration(const std::vector<int32_t>& stream, const CalibrationOptions& options)
{
    if (options.samples < 1)
        throw ConfigError("calibration: --samples must be at least 1, got " + std::to_string(options.samples));
    if (options.seqLen < 2)
        throw ConfigError("calibration: --seq-len must be at least 2, got " + std::to_string(options.seqLen));
    const auto n = static_cast<int64_t>(stream.size());
    if (n < options.seqLen)
        throw ConfigError("calibration: the text has " + std::to_string(n) + " tokens, fewer than one window of " +
                          std::to_string(options.seqLen));
    std::mt19937_64 rng(options.seed);
    std::uniform_int_distribution<int64_t> offset(0, n - options.seqLen);
    auto out = at::empty({options.samples, options.seqLen}, at::kLong);
    auto* p = out.data_ptr<int64_t>();
    for (int s = 0; s < options.samples; ++s) {
        const int64_t o = offset(rng);
        for (int t = 0; t < options.seqLen; ++t)
            *p++ = stream[static_cast<size_t>(o + t)];
    }
    return out;
}

} // namespace qpruner::prune
