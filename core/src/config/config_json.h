// ModelConfig <-> config.json. Reads the Hugging Face configs of the decoder families in kArchitectures (Llama,
// Mistral, Qwen2, Qwen3, Phi-3, Gemma 3 text) and our native format, which is an HF config of the same family
// plus a "qpruner" object holding the per-layer shapes of pruned models.
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

// transformers' model class of a family ("Qwen3ForCausalLM", ...).
std::string hfArchitectureClass(const std::string& architecture);

// The native config.json: HF-compatible top-level fields (first layer's shapes) plus "qpruner".
nlohmann::json toNativeConfigJson(const ModelConfig& c, const std::string& dtype);

} // namespace qpruner::config
