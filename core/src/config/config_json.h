// ModelConfig <-> config.json. Reads Hugging Face LlamaForCausalLM / Qwen2ForCausalLM configs and our native
// format, which is an HF config plus a "qpruner" object holding the per-layer shapes of pruned models.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"

namespace qpruner::config {

inline constexpr int kNativeFormatVersion = 1;

// Parses a config.json document (HF or native); `file` names the source in errors.
ModelConfig fromConfigJson(const nlohmann::json& j, const std::filesystem::path& file);

// True when the document carries our native-format marker.
bool isNativeConfig(const nlohmann::json& j);

// The native config.json: HF-compatible top-level fields (first layer's shapes) plus "qpruner".
nlohmann::json toNativeConfigJson(const ModelConfig& c, const std::string& dtype);

} // namespace qpruner::config
