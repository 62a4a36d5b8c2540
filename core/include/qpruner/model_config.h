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

// RoPE frequency scaling from config.json's `rope_scaling`: Llama-3.1's "llama3" type, "linear" (every frequency
// divided by `factor`, Gemma 3's global layers), "none" otherwise.
struct RopeScaling {
    std::string type = "none";
    double factor = 1.0;
    double lowFreqFactor = 1.0;
    double highFreqFactor = 4.0;
    int originalMaxPositions = 8192;
    bool operator==(const RopeScaling&) const = default;
};

// The decoder families read and written (config.json's model_type). All are the same pre-norm decoder with
// RoPE, grouped-query attention and a gated MLP; they differ in what the flags below describe:
//   llama, mistral   the base shape (Mistral: sliding-window attention in every layer)
//   qwen2            q/k/v biases
//   qwen3            per-head RMSNorm of queries and keys before RoPE (q_norm / k_norm, [head_dim])
//   phi3             q/k/v and gate/up fused in the files (qkv_proj, gate_up_proj); split at load, fused back
//                    when written
//   gemma3_text      q/k norms, norms after attention and after the MLP too, GeGLU (tanh GELU), embeddings scaled
//                    by sqrt(hidden_size), norms applied as (1 + w), queries scaled by query_pre_attn_scalar^-0.5,
//                    sliding-window layers with their own RoPE base between global ones
inline constexpr const char* kArchitectures[] = {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma3_text"};

struct ModelConfig {
    std::string architecture = "llama"; // one of kArchitectures
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
    bool qkNorm = false;             // per-head RMSNorm of q and k before RoPE (qwen3, gemma3_text)
    bool sandwichNorms = false;      // RMSNorm of the attention and MLP outputs before the residual add (gemma3_text)
    std::string hiddenAct = "silu";  // the MLP gate's activation: "silu" or "gelu_pytorch_tanh"
    double queryPreAttnScalar = 0.0; // attention scores scaled by its ^-0.5 when > 0, else by head_dim^-0.5
    int slidingWindow = 0;           // keys a query of a sliding layer sees, itself included; 0: no sliding layers
    std::vector<bool> slidingLayers; // per layer, whether it is a sliding-window layer (empty: none)
    double ropeLocalTheta = 0.0;     // RoPE base of the sliding layers when > 0 (gemma3's rope_local_base_freq);
                                     // they use no frequency scaling
    std::vector<LayerShape> layers;

    // Norm weights stored as w and applied as (1 + w) (Gemma).
    bool unitOffsetNorms() const { return architecture == "gemma3_text"; }
    // What the embedded tokens are multiplied by (Gemma: sqrt(hidden_size)), else 1.
    double embeddingScale() const;
    // The attention scores' scale: queryPreAttnScalar^-0.5 or head_dim^-0.5.
    double attentionScale() const;
    // What the family adds to the LLaMA decoder, in words ("q/k norms", "sliding window 512 on 22 of 26 layers", ...),
    // for `info` and the GUI; empty for a plain LLaMA model.
    std::vector<std::string> familyFeatures() const;
    // Whether layer `layer` attends within slidingWindow only.
    bool slidingLayer(int layer) const
    {
        return slidingWindow > 0 && static_cast<size_t>(layer) < slidingLayers.size() &&
               slidingLayers[static_cast<size_t>(layer)];
    }

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
    std::string dtype;   // storage dtype of the weight matrices (embedding, linears, head; norms and biases are
                         // often kept in float32 beside bf16 weights and do not count): "float32", "float16",
                         // "bfloat16", a ggml type of a GGUF file ("q8_0"), or "mixed"
    ModelConfig config;
    int64_t parameterCount = 0;
    int64_t weightBytes = 0; // bytes of the stored weights
};

// Reads a checkpoint's configuration: a llama2.c `.bin`, a GGUF file, or a directory with `config.json` (Hugging
// Face or native). Throws FileError / FormatError naming the file and field at fault.
ModelSummary inspectModel(const std::filesystem::path& path);

} // namespace qpruner
