// Randomly initialised models of standard LLaMA shapes, for measuring speed and memory at scale (weights do
// not change the cost). Presets follow published shapes: stories15M / stories110M (llama2.c), TinyLlama-1.1B,
// LLaMA-7B.
#pragma once

#include <string>
#include <vector>

#include "model/llama_model.h"

namespace qpruner::model {

struct RandomPreset {
    std::string name;
    std::string description;
    ModelConfig config;
};

const std::vector<RandomPreset>& randomPresets();
const RandomPreset& findRandomPreset(const std::string& name); // throws ConfigError listing the presets

// Weights ~ N(0, 0.02^2) (std scaled down for the output projections as in GPT-2), norms 1, seeded.
std::unique_ptr<LlamaModel> makeRandomModel(const ModelConfig& config, at::ScalarType dtype, uint64_t seed,
                                            at::Device device = at::Device(at::kCPU));

} // namespace qpruner::model
