// Loading and saving models. Readers: llama2.c `.bin` (legacy header format), Hugging Face directories
// (config.json + model.safetensors or a sharded index; F32/F16/BF16, memory-mapped), our native format (an
// HF-style directory whose config.json also records per-layer shapes), and GGUF files (llama, deci and qwen2
// architectures; quantized tensors are dequantized at load). Writer: the native format, atomically.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "model/llama_model.h"

namespace qpruner::model {

struct LoadOptions {
    std::optional<at::ScalarType> dtype; // default: the checkpoint's own dtype
    at::Device device{at::kCPU};
};

// Detects the format from the path (a file is GGUF by its magic, else llama2.c; a directory HF or native) and
// loads it.
// Throws FileError / FormatError naming the file and tensor or field at fault.
std::unique_ptr<LlamaModel> loadModel(const std::filesystem::path& path, const LoadOptions& options = {});

std::unique_ptr<LlamaModel> loadLlama2c(const std::filesystem::path& file, const LoadOptions& options);
std::unique_ptr<LlamaModel> loadSafetensorsDir(const std::filesystem::path& dir, const LoadOptions& options);
// GGUF: F32/F16/BF16 tensors keep their values, quantized ones are dequantized (ggml's dequantize_row_*); every
// weight is held dense in options.dtype (default: the token embedding's type when it is F32/F16/BF16, else fp32),
// q/k rows back in the rotate-half layout.
std::unique_ptr<LlamaModel> loadGguf(const std::filesystem::path& file, const LoadOptions& options);

// Writes the native format into `dir` (config.json + model.safetensors), replacing an existing directory only
// once the new one is complete. `extra` is merged into config.json's "qpruner" object (provenance, reports).
void saveNativeModel(const LlamaModel& model, const std::filesystem::path& dir,
                     const nlohmann::json& extra = nlohmann::json::object());
// The same two files written into the existing directory `dir` (each atomically), for callers that stage a
// directory with more files in it.
void writeNativeModelFiles(const LlamaModel& model, const std::filesystem::path& dir,
                           const nlohmann::json& extra = nlohmann::json::object());

// HF tensor names of one decoder layer's parts.
std::string layerTensorName(int layer, const std::string& part);

} // namespace qpruner::model
