// Shared helpers for torch tests: committed reference JSON, the shared models, and comparisons.
#pragma once

#include <QtTest/QtTest>

#include <fstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"
#include "test_data.h"

namespace qpruner::testing {

inline nlohmann::json referenceJson(const std::string& name)
{
    std::ifstream in(fixtureDir() / "reference" / name);
    return nlohmann::json::parse(in);
}

inline at::Tensor tokensTensor(const std::vector<int32_t>& ids)
{
    std::vector<int64_t> v(ids.begin(), ids.end());
    return at::tensor(v, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
}

// A small GQA model with q/k/v bias: 3 layers, 6 query heads over 2 KV heads (g = 3), head_dim 4, ffn 40.
inline ModelConfig tinyGqaConfig()
{
    ModelConfig c;
    c.hiddenSize = 24;
    c.headDim = 4;
    c.vocabSize = 50;
    c.maxSeqLen = 32;
    c.attentionBias = true;
    c.layers.assign(3, LayerShape{6, 2, 40});
    return c;
}

inline at::Tensor randomTokens(int64_t n, int64_t t, int64_t vocab, uint64_t seed)
{
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randint(vocab, {n, t}, gen, at::TensorOptions().dtype(at::kLong));
}

// fp32 N(0, sd^2) values of `shape` from a seeded generator.
inline at::Tensor normalTensor(std::vector<int64_t> shape, uint64_t seed, double sd = 1.0)
{
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::normal(0.0, sd, shape, gen, at::TensorOptions().dtype(at::kFloat));
}

inline double maxAbsDiff(const at::Tensor& a, const at::Tensor& b)
{
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

} // namespace qpruner::testing
