// LoRA adapter directories as PEFT saves them, so other tools load ours: adapter_model.safetensors with PEFT's
// tensor names ("base_model.model.model.layers.<l>.self_attn.q_proj.lora_A.weight" [rank, in] and
// "....lora_B.weight" [out, rank]) and adapter_config.json (PEFT's LoraConfig fields, plus a "qpruner" object: the
// precision map of the base, the initialisation, where the base is). Also merging adapters into dense weights.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "finetune/loftq.h"
#include "model/checkpoint.h"
#include "model/llama_model.h"

namespace qpruner::finetune {

struct AdapterConfig {
    int rank = 8;
    double alpha = 16.0;
    double dropout = 0.0;
    std::vector<LinearModule> targets; // in kLinearModules order
    LoraInit init = LoraInit::Lora;
    int loftqIterations = 0;           // loftq only
    std::string baseModel;             // base_model_name_or_path: the model the run started from
    nlohmann::json precisionMap;       // PrecisionMap JSON of the formats the base holds (null: unknown)
    nlohmann::json extra = nlohmann::json::object(); // more of "qpruner" (provenance, reports)

    // PEFT's keys (peft_type "LORA", task_type "CAUSAL_LM", r, lora_alpha, lora_dropout, target_modules as
    // "q_proj"..., bias "none", fan_in_fan_out false, inference_mode true, init_lora_weights true or "loftq",
    // loftq_config, base_model_name_or_path, ...) and "qpruner": {"init", "loftq_iterations", "precision_map",
    // ...extra}.
    nlohmann::ordered_json toJson() const;
    // Throws FormatError naming `source` and the key for a config this build cannot use (peft_type other than LORA,
    // rank < 1, alpha <= 0, unknown target module, bias other than "none", fan_in_fan_out true, use_dora or
    // use_rslora true, rank_pattern / alpha_pattern entries).
    static AdapterConfig fromJson(const nlohmann::json& j, const std::string& source);
};

// The modules `names` (names or HF aliases) target, in kLinearModules order (parseLoraTargets' checks).
std::vector<LinearModule> canonicalTargets(const std::vector<std::string>& names);

inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
// The quantized base an adapter was trained on, saved beside it when it cannot be remade from the model and the
// map (LoftQ changes the quantized weights).
inline constexpr const char* kAdapterBaseDir = "base";

// PEFT's name of layer `layer`'s module `m`'s A ('A') or B ('B') matrix.
std::string adapterTensorName(int layer, LinearModule m, char which);

// The adapters' tensors of every LoraLinear of `model`, under PEFT's names.
std::map<std::string, at::Tensor> adapterTensors(const model::LlamaModel& model);

// Writes adapter_model.safetensors and adapter_config.json into `dir` (created), each file atomically. Throws
// ConfigError when the model has no LoRA layers or they differ from `config` (targets, rank).
void saveAdapter(const model::LlamaModel& model, const std::filesystem::path& dir, const AdapterConfig& config);

// adapter_config.json of `dir`. Throws FileError when missing, FormatError as AdapterConfig::fromJson.
AdapterConfig readAdapterConfig(const std::filesystem::path& dir);

// Copies PEFT-named A/B tensors into the model's LoraLinear layers (same rank and targets), e.g. from a
// checkpoint. Throws FormatError naming the tensor for one that is missing, extra or of the wrong shape; nothing
// is changed then.
void setAdapterTensors(model::LlamaModel& model, const std::map<std::string, at::Tensor>& tensors,
                       const std::string& source);

// Attaches LoRA layers as `dir`'s config says (rank, alpha, targets, dropout; the adapter dtype is the stored
// tensors') and loads its weights. Returns the trainable tensors (A then B per layer, layer and
// module order). Throws as readAdapterConfig and setAdapterTensors, ConfigError when the model already has LoRA.
// The second form takes the directory's config already read.
std::vector<at::Tensor> loadAdapter(model::LlamaModel& model, const std::filesystem::path& dir);
std::vector<at::Tensor> loadAdapter(model::LlamaModel& model, const std::filesystem::path& dir,
                                    const AdapterConfig& config);

// The model `dir`'s adapter was trained on, with the adapter attached: `dir`/base when present (LoftQ's
// quantized weights), else `modelPath` loaded and quantized with the adapter's precision map. Throws as the
// loaders, and ConfigError when the adapter records no precision map and has no base.
std::unique_ptr<model::LlamaModel> loadModelWithAdapter(const std::filesystem::path& modelPath,
                                                        const std::filesystem::path& dir,
                                                        const model::LoadOptions& options = {});

// A DenseLinear holding `layer`'s merged weight deq(base) + scale * B A (computed in fp32) in `dtype`, bias kept.
model::LinearPtr mergedLinear(const LoraLinear& layer, at::ScalarType dtype);

// Replaces every LoraLinear by a DenseLinear holding its merged weight deq(base) + scale * B A (computed in fp32)
// in `dtype`, bias kept. Returns how many layers were merged.
int mergeAdapters(model::LlamaModel& model, at::ScalarType dtype);

} // namespace qpruner::finetune
