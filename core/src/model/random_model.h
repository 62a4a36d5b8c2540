// Randomly initialised models of standard LLaMA shapes, for measuring speed and memory at scale (weights do
// not change the cost). Presets follow published shapes and configs: stories15M / stories110M (llama2.c),
// TinyLlama-1.1B, LLaMA-7B, Llama-3.2-1B, Qwen3-0.6B, Qwen2.5-0.5B, Gemma-3-1B, Phi-3-mini, Mistral-7B; and
// test-sized models of each family's structure ("tiny-<family>").
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

// Weights ~ N(0, 0.02^2) (std scaled down for the output projections as in GPT-2), seeded; norms 1 for the plain
// LLaMA shapes, 1 + N(0, 0.01) (as applied) for the other families.
std::unique_ptr<LlamaModel> makeRandomModel(const ModelConfig& config, at::ScalarType dtype, uint64_t seed,
                                            at::Device device = at::Device(at::kCPU));

} // namespace qpruner::model
