// The LLaMA-family decoder: RMSNorm, RoPE (rotate-half layout inside; llama2.c's interleaved pairs are
// converted at load), grouped-query attention, SwiGLU MLP, tied or separate output head, optional q/k/v bias,
// and what the other families add (ModelConfig: q/k norms, sandwich norms, GeGLU, (1 + w) norms, scaled
// embeddings, sliding-window layers with their own RoPE base). Per-layer shapes may differ (query heads, KV heads,
// FFN width), as pruned models have them.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/rope.h"
#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"

namespace qpruner::model {

struct DecoderLayer {
    at::Tensor attnNorm;    // [D], fp32: before attention
    at::Tensor ffnNorm;     // [D], fp32: before the MLP
    at::Tensor qNorm;       // [head_dim], fp32, shared by the query heads (config.qkNorm; undefined otherwise)
    at::Tensor kNorm;       // [head_dim], fp32
    at::Tensor postAttnNorm; // [D], fp32, on the attention output (config.sandwichNorms; undefined otherwise)
    at::Tensor postFfnNorm; // [D], fp32, on the MLP output
    LinearPtr q, k, v, o;
    LinearPtr gate, up, down;
};

// A norm weight of a decoder layer and its names in the files: every reader and writer walks this list, so a
// family's extra norms are loaded, saved and exported in one place. Norm weights are held as the files store
// them (Gemma's as w, applied as 1 + w; GGUF stores 1 + w, see ggufOffset).
struct LayerNormSlot {
    at::Tensor DecoderLayer::*member;
    const char* hfName;   // under model.layers.N.
    const char* ggufName; // under blk.N.
    bool perHead;         // [head_dim] rather than [hidden_size]
};
std::vector<LayerNormSlot> layerNormSlots(const ModelConfig& config);
// Phi-3's fused projections split into the layer's linears: qkv = [q; k; v] rows (q of `qRows`, k and v of
// `kvRows` each), gateUp = [gate; up] rows (`ffnRows` each). Each part is cloned, so that pruning slices it alone.
void setFusedProjections(DecoderLayer& layer, const at::Tensor& qkv, const at::Tensor& gateUp, int64_t qRows,
                         int64_t kvRows, int64_t ffnRows);
// What GGUF files add to every norm weight of this family (llama.cpp's converter writes Gemma's as 1 + w).
inline float ggufNormOffset(const ModelConfig& config) { return config.unitOffsetNorms() ? 1.0f : 0.0f; }

// Module names of a decoder layer's linears, in the order the precision map and reports use.
inline constexpr const char* kLayerModules[] = {"q", "k", "v", "o", "gate", "up", "down"};

// The slot of a decoder layer holding module `m`'s linear.
inline LinearPtr& layerLinear(DecoderLayer& layer, LinearModule m)
{
    switch (m) {
    case LinearModule::Q: return layer.q;
    case LinearModule::K: return layer.k;
    case LinearModule::V: return layer.v;
    case LinearModule::O: return layer.o;
    case LinearModule::Gate: return layer.gate;
    case LinearModule::Up: return layer.up;
    case LinearModule::Down: return layer.down;
    }
    return layer.q;
}
inline const LinearPtr& layerLinear(const DecoderLayer& layer, LinearModule m)
{
    return layerLinear(const_cast<DecoderLayer&>(layer), m);
}

class LlamaModel {
public:
    LlamaModel(ModelConfig config, at::ScalarType weightDtype, at::Device device);

    const ModelConfig& config() const { return config_; }
    ModelConfig& mutableConfig() { return config_; }
    at::ScalarType weightDtype() const { return weightDtype_; }
    at::ScalarType computeDtype() const { return computeDtype_; }
    const at::Device& device() const { return device_; }

    // Final hidden states [B, T, D] (after the final norm, fp32) for tokens [B, T] (int64). With a cache the
    // tokens continue at cache->length(); without one they start at position 0. With `residuals`, it receives
    // the residual stream [B, T, D] in the compute dtype: entry 0 the embedded tokens (the first layer's input),
    // entry l + 1 the output of decoder layer l (the last one before the final norm).
    at::Tensor forwardHidden(const at::Tensor& tokens, KvCache* cache = nullptr,
                             std::vector<at::Tensor>* residuals = nullptr) const;
    // Continues a pass without cache from the residual stream entering layer `firstLayer` ([B, T, D], compute
    // dtype, positions 0..T-1): what forwardHidden() returns for the same tokens when the layers before are
    // unchanged, computed from there on only (quant-kl scores each layer from cached states this way).
    at::Tensor forwardHiddenFrom(const at::Tensor& residual, int firstLayer) const;
    // The residual stream around every sublayer for tokens [B, T] (int64, positions 0..T-1, compute dtype): entry
    // 2l is the input of layer l's attention block, 2l + 1 its output (the MLP block's input), 2L the last layer's
    // output. (The cosine importance metric compares each block's input and output.)
    std::vector<at::Tensor> sublayerStates(const at::Tensor& tokens) const;
    // fp32 logits [..., V] of final hidden states.
    at::Tensor logits(const at::Tensor& hidden) const;
    // Convenience: logits [B, T, V] (fp32).
    at::Tensor forward(const at::Tensor& tokens, KvCache* cache = nullptr) const;

    // A cache sized for `batch` sequences of up to `maxLen` tokens.
    KvCache makeCache(int64_t batch, int64_t maxLen) const;

    // Weights (mutable: loaders fill them, pruning slices them).
    at::Tensor embedding;  // [V, D], weight dtype
    at::Tensor finalNorm;  // [D], fp32
    LinearPtr lmHead;      // shares `embedding` when the config ties them
    std::vector<DecoderLayer> layers;

    // Moves/converts every weight (dense layers only) to `dtype` on `device`.
    void to(at::ScalarType dtype, at::Device device);

    // After weights were replaced (quantization): `dtype` is the dtype of the dense parts (the embedding), from
    // which the compute dtype follows.
    void setWeightDtype(at::ScalarType dtype);

    // Bytes held by all weights in their stored form (tied head counted once).
    int64_t weightBytes() const;

private:
    // `future` [T, S] is true where a query (row) must not see a key (column): the causal mask.
    at::Tensor attention(const DecoderLayer& layer, int layerIndex, const at::Tensor& x, int64_t pos,
                         const RopeTable::Angles& angles, const at::Tensor& future, KvCache* cache) const;
    at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
    at::Tensor mlp(const DecoderLayer& layer, const at::Tensor& h) const;
    // Layers [first, end) on x at positions pos.., then the final norm (fp32).
    at::Tensor runLayers(at::Tensor x, int first, int64_t pos, KvCache* cache, std::vector<at::Tensor>* residuals,
                         std::vector<at::Tensor>* sublayers = nullptr) const;

    ModelConfig config_;
    at::ScalarType weightDtype_;
    at::ScalarType computeDtype_;
    at::Device device_;
    mutable RopeTable rope_;
    mutable RopeTable localRope_; // sliding layers' (ropeLocalTheta > 0)
};

} // namespace qpruner::model
