// Model configuration (torch-free): the shapes of a LLaMA-family decoder, which may differ per layer
// after pruning, and closed-form parameter counts. Used by the CLI, the GUI and every stage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qpruner {

// Shapes of one decoder layer. Query heads must be a multiple of KV heads (grouped-query attention).
struct LayerShape {
    int numHeads = 0;
    int numKvHeads = 0;
    int ffnDim = 0;
    bool operator==(const LayerShape&) const = default;
};

// RoPE frequency scaling from config.json's `rope_scaling` (Llama-3.1's "llama3" type); "none" otherwise.
struct RopeScaling {
    std::string type = "none";
    double factor = 1.0;
    double lowFreqFactor = 1.0;
    double highFreqFactor = 4.0;
    int originalMaxPositions = 8192;
    bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
    std::string architecture = "llama";
    int hiddenSize = 0;
    int headDim = 0;
    int vocabSize = 0;
    int maxSeqLen = 0;
    double normEps = 1e-5;
    double ropeTheta = 10000.0;
    RopeScaling ropeScaling;
    bool tiedEmbeddings = false;
    bool attentionBias = false; // q/k/v bias (Qwen2-style)
    int bosId = 1;
    int eosId = 2;
    std::vector<LayerShape> layers;

    int numLayers() const { return static_cast<int>(layers.size()); }
    bool homogeneous() const;

    // Parameters of one decoder layer (norms, projections, biases).
    int64_t layerParameterCount(int layer) const;
    // All parameters; the output head counts once when tied to the embeddings.
    int64_t parameterCount() const;
    // Multiply-accumulates per token of a forward pass at context length `contextLen` (projections,
    // attention scores/values and the output head).
    int64_t macsPerToken(int contextLen = 1) const;

    // Throws ConfigError naming the field when a value is out of range or inconsistent.
    void validate() const;
    bool operator==(const ModelConfig&) const = default;
};

// What a checkpoint is, read from its headers only (no weights are loaded): for `qpruner info` and the
// GUI's "Open model".
struct ModelSummary {
    std::filesystem::path path;
    std::string format;  // "llama2c", "hf", "native" or "gguf"
    std::string dtype;   // storage dtype of the weights: "float32", "float16", "bfloat16", a ggml type of a GGUF
                         // file ("q8_0"), or "mixed"
    ModelConfig config;
    int64_t parameterCount = 0;
    int64_t weightBytes = 0; // bytes of the stored weights
};

// Reads a checkpoint's configuration: a llama2.c `.bin`, a GGUF file, or a directory with `config.json` (Hugging
// Face or native). Throws FileError / FormatError naming the file and field at fault.
ModelSummary inspectModel(const std::filesystem::path& path);

} // namespace qpruner
