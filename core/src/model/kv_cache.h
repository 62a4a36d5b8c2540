// Key/value cache for incremental decoding: per layer [B, n_kv_heads(layer), capacity, head_dim].
#pragma once

#include <vector>

#include <ATen/ATen.h>

namespace qpruner::model {

struct KvCache {
    std::vector<at::Tensor> keys;
    std::vector<at::Tensor> values;
    int64_t length = 0;   // tokens already stored
    int64_t capacity = 0; // tokens it can hold

    void reset() { length = 0; }
};

} // namespace qpruner::model
