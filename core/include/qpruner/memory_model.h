// The exact memory model (torch-free): the bytes every stored tensor of a model occupies under a precision map,
// per layer and in total, and an estimate of the peak memory of a LoRA fine-tuning step on top of it. Used by
// the precision-map editor (live accounting), the budget constraint of the allocation and Bayesian search
// (method.md §5) and the reports (method.md §12).
//
// Stored tensors, named as the native checkpoint names them (HF LlamaForCausalLM names):
//   model.embed_tokens.weight                      [V, D] in the embedding format (fp32/bf16/fp16)
//   model.layers.N.input_layernorm.weight          F32 [D]
//   model.layers.N.self_attn.{q,k,v,o}_proj.<suffix>, model.layers.N.mlp.{gate,up,down}_proj.<suffix>
//                                                  exactly storedTensors(format, out, in) of quant_format.h
//   model.layers.N.self_attn.{q,k,v}_proj.bias     [out] in biasSpec(format) (attention_bias models only)
//   model.layers.N.post_attention_layernorm.weight F32 [D]
//   model.layers.N.{pre,post}_feedforward_layernorm.weight  F32 [D] (sandwich-norm families: Gemma 3)
//   model.layers.N.self_attn.{q,k}_norm.weight     F32 [head_dim] (q/k-norm families: Qwen3, Gemma 3)
//   model.norm.weight                              F32 [D]
//   lm_head.<suffix>                               storedTensors(lm_head format, V, D); absent when tied (the
//                                                  embedding matrix serves as the head and is counted once)
// Parameters count logical weights (out*in per linear, V*D, D per norm, out per bias), so
// MemoryReport::parameters == ModelConfig::parameterCount().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/quant_format.h"

namespace qpruner {

struct TensorMemory {
    std::string name;           // e.g. "model.layers.3.self_attn.q_proj.codes"
    int layer = -1;             // decoder layer, -1 for the embedding, the final norm and lm_head
    QuantSpec spec;             // format of the weight this tensor belongs to (fp32 for norms)
    std::string dtype;          // stored dtype: "F32", "BF16", "F16", "I8", "U8"
    std::vector<int64_t> shape;
    int64_t bytes = 0;
};

struct LayerMemory {
    int layer = 0;
    LayerSpecs specs;                                  // format of each linear
    std::array<int64_t, kLinearModuleCount> moduleBytes{}; // stored bytes of each linear's weight tensors
    int64_t linearParameters = 0;                      // sum of out*in over the seven linears
    int64_t linearBytes = 0;                           // sum of moduleBytes
    int64_t biasBytes = 0;
    int64_t normBytes = 0;                             // the two RMSNorm weights
    int64_t parameters = 0;                            // == ModelConfig::layerParameterCount(layer)
    int64_t bytes = 0;                                 // linear + bias + norm
    double linearBitsPerWeight = 0;                    // 8 * linearBytes / linearParameters
};

struct MemoryReport {
    std::vector<TensorMemory> tensors; // every stored tensor: embedding, layers (in module order), norm, head
    std::vector<LayerMemory> layers;
    int64_t embeddingBytes = 0;
    int64_t lmHeadBytes = 0;   // 0 when tied
    int64_t normBytes = 0;     // all RMSNorm weights, the final one included
    int64_t biasBytes = 0;
    int64_t linearBytes = 0;   // the decoder layers' seven linears, quantization metadata included
    int64_t totalBytes = 0;    // everything above
    int64_t parameters = 0;
    int64_t linearParameters = 0;
    double linearBitsPerWeight = 0; // 8 * linearBytes / linearParameters
    double bitsPerWeight = 0;       // 8 * totalBytes / parameters

    // {"total_bytes", "embedding_bytes", "lm_head_bytes", "norm_bytes", "bias_bytes", "linear_bytes",
    //  "parameters", "linear_parameters", "linear_bits_per_weight", "bits_per_weight",
    //  "layers": [{"layer", "formats": {"q": ..., ...}, "module_bytes": {"q": ..., ...}, "linear_parameters",
    //              "linear_bytes", "bias_bytes", "norm_bytes", "parameters", "bytes", "linear_bits_per_weight"}],
    //  "tensors": [{"name", "format", "dtype", "shape", "bytes"}]}
    nlohmann::ordered_json toJson() const;
};

// Validates `config` and the map against it (ConfigError), then accounts every stored tensor.
MemoryReport memoryReport(const ModelConfig& config, const PrecisionMap& map);

// Fine-tuning memory estimate: LoRA adapters on the frozen (quantized) base, AdamW.
struct FinetuneSettings {
    int rank = 8;
    // Modules that get an adapter (names or HF aliases, see parseLinearModule); default all seven.
    std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
    int batchSize = 4;
    int seqLen = 256;
    QuantSpec adapterDtype{QuantKind::F32, 0, false}; // LoRA A/B and their gradients: fp32, bf16 or fp16
    QuantSpec computeDtype{QuantKind::BF16, 0, false}; // activations: fp32, bf16 or fp16
    double dropout = 0.0;                              // LoRA dropout on the adapter input, in [0, 1)
    bool gradientCheckpointing = false;
};

// Peak memory of one training step, estimated analytically, to compare with a measured peak (peak RSS on the
// CPU, max_memory_reserved on CUDA). Bytes; B = batchSize, T = seqLen, D = hidden, V = vocab, r = rank,
// c = bytes of computeDtype, a = bytes of adapterDtype; per layer l: H heads, q = H*headDim,
// kv = kvHeads*headDim, F = ffn, targets S with in_m/out_m their shapes.
//   loraParams     = sum_l sum_{m in S} r * (in_m + out_m)
//   loraBytes      = a * loraParams;  gradientBytes = a * loraParams
//   optimizerBytes = 8 * loraParams                       (AdamW: two fp32 moments per LoRA parameter)
//   baseWeightBytes = memoryReport(config, map).totalBytes
//   activationBytes: what autograd keeps for backward in our decoder (core/src/model/llama_model.cpp),
//     per layer  A_l = B*T*( 4*D              attention-RMSNorm input, its fp32 copy of the residual
//                          + c*D              normalised input of q/k/v (and of their adapters)
//                          + c*(q + 2*kv)     q and k after RoPE, v: the attention matmul operands
//                          + c*q              attention output, input of o
//                          + 4*D              FFN-RMSNorm input, fp32
//                          + c*D              normalised input of gate/up
//                          + 4*c*F            gate, up, silu(gate), silu(gate)*up (input of down)
//                          + sum_{m in S} c*r                          x*A^T of each adapter
//                          + (dropout > 0 ? sum_{m in S} (c+1)*in_m : 0)  dropped adapter input + bool mask )
//              + B*H*T*T*(4 + (c == 4 ? 0 : c))    softmax probabilities in fp32 and their compute-dtype copy
//     head       Hd  = B*T*(4*D + c*D + 8*V)       final-norm input fp32, lm_head input, fp32 logits and
//                                                   their log-softmax
//     activationBytes = sum_l A_l + Hd, or with gradient checkpointing
//                       sum_l c*B*T*D (each layer's input) + max_l A_l (one layer recomputed) + Hd
//   transientBytes = c * max over quantized linears of out*in: one weight dequantized for its matmul at a time
//                    (0 when nothing is quantized). This assumes the quantized layer re-dequantizes in backward;
//                    if it kept its dequantized weight for backward instead, add c * sum of their out*in.
//   totalBytes = baseWeightBytes + loraBytes + gradientBytes + optimizerBytes + activationBytes + transientBytes
// The adapters are assumed to compute in the compute dtype. Left out (small or allocator-dependent): the
// per-row RMS factors (4*B*T per norm), the causal mask, the RoPE tables, the compute-dtype logits before their
// fp32 conversion, activation gradients live during backward, workspaces and allocator slack.
struct FinetuneEstimate {
    int64_t loraParams = 0;
    int64_t loraBytes = 0;
    int64_t gradientBytes = 0;
    int64_t optimizerBytes = 0;
    int64_t activationBytes = 0;
    int64_t headActivationBytes = 0;             // Hd, included in activationBytes
    std::vector<int64_t> layerActivationBytes;   // A_l
    int64_t transientBytes = 0;
    int64_t baseWeightBytes = 0;
    int64_t totalBytes = 0;

    // {"lora_params", "lora_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes",
    //  "head_activation_bytes", "layer_activation_bytes": [...], "transient_bytes", "base_weight_bytes",
    //  "total_bytes"}
    nlohmann::ordered_json toJson() const;
};

// The adapter targets of `names` (module names or HF aliases), in the given order. Throws ConfigError for an
// empty list, an unknown module or one listed twice.
std::vector<LinearModule> parseLoraTargets(const std::vector<std::string>& names);

// Throws ConfigError naming the setting at fault (rank, batch, sequence length, dropout, dtypes, targets).
FinetuneEstimate estimateFinetune(const ModelConfig& config, const PrecisionMap& map,
                                  const FinetuneSettings& settings = {});

} // namespace qpruner
