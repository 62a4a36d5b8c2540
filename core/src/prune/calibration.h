// Calibration data for importance estimation: N windows of L tokens drawn at seeded random offsets from a
// tokenized text (LLM-Pruner uses 10 windows of 64 tokens).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace qpruner::prune {

struct CalibrationOptions {
    int samples = 10;
    int seqLen = 64;
    uint64_t seed = 0;
};

// [samples, seqLen] int64 token windows. The same stream and options always give the same windows.
// Throws ConfigError when the stream is shorter than one window or an option is out of range.
at::Tensor sampleCalibration(const std::vector<int32_t>& stream, const CalibrationOptions& options);

} // namespace qpruner::prune
