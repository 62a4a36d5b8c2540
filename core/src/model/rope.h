// Rotary position embedding in the rotate-half layout: dimension i is paired with i + head_dim/2.
// cos/sin tables are computed in fp64->fp32 for positions on demand (llama3 frequency scaling supported).
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "qpruner/model_config.h"

namespace qpruner::model {

class RopeTable {
public:
    RopeTable() = default;
    RopeTable(int headDim, double theta, RopeScaling scaling, at::Device device);

    // cos/sin [T, head_dim] for absolute positions pos .. pos+T-1 in dtype `dt` (taken once per forward
    // pass and shared by every layer).
    struct Angles {
        at::Tensor cos, sin;
    };
    Angles angles(int64_t pos, int64_t length, at::ScalarType dt);

    // Rotates x: [B, H, T, head_dim] by angles for its T positions.
    static at::Tensor apply(const at::Tensor& x, const Angles& a);

    // Per frequency i < head_dim/2, the divisor `scaling` applies to theta^(-2i/head_dim): 1 without scaling,
    // `factor` for every frequency with "linear";
    // Llama-3.1's "llama3" type divides long wavelengths by `factor`, keeps short ones and blends the band
    // between. (llama.cpp stores these as the rope_freqs.weight tensor.)
    static std::vector<double> frequencyDivisors(int headDim, double theta, const RopeScaling& scaling);

    // Precomputes the tables for positions below `length` (they grow on demand beyond it).
    void ensure(int64_t length);

private:

    int headDim_ = 0;
    double theta_ = 10000.0;
    RopeScaling scaling_;
    at::Device device_{at::kCPU};
    at::Tensor invFreq_; // [head_dim/2] fp64
    at::Tensor cos_, sin_; // [len, head_dim] fp32
    int64_t length_ = 0;
};

// Row orders of a q/k weight [heads * hd, in] between the two RoPE layouts: `interleavedToHalfRows` gathers a
// Meta / llama2.c / llama.cpp weight (pairs (2i, 2i+1) rotate together) into our rotate-half layout (pairs
// (i, i + hd/2)), w.index_select(0, order); `halfToInterleavedRows` is its inverse.
at::Tensor interleavedToHalfRows(int64_t heads, int64_t hd);
at::Tensor halfToInterleavedRows(int64_t heads, int64_t hd);

} // namespace qpruner::model
