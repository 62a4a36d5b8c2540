// Shared helpers for torch tests: committed reference JSON, the shared models, and comparisons.
#pragma once

#include <QtTest/QtTest>

#include <fstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

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

inline double maxAbsDiff(const at::Tensor& a, const at::Tensor& b)
{
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

} // namespace qpruner::testing
