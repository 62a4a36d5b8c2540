// Rotary position embedding in the rotate-half layout: dimension i is paired with i + head_dim/2.
// cos/sin tables are computed in fp64->fp32 for positions on demand (llama3 frequency scaling supported).
#pragma once

#include <ATen/ATen.h>

#include "qpruner/model_config.h"

namespace qpruner::model {

class RopeTable {
public:
    RopeTable() = default;
    RopeTable(int headDim, double theta, RopeScaling scaling, at::Device device);

    // Applies the rotation to x: [B, H, T, head_dim] at absolute positions pos .. pos+T-1.
    at::Tensor apply(const at::Tensor& x, int64_t pos);

private:
    void ensure(int64_t length);

    int headDim_ = 0;
    double theta_ = 10000.0;
    RopeScaling scaling_;
    at::Device device_{at::kCPU};
    at::Tensor invFreq_; // [head_dim/2] fp64
    at::Tensor cos_, sin_; // [len, head_dim] fp32
    int64_t length_ = 0;
};

} // namespace qpruner::model
