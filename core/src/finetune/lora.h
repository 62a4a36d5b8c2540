// LoRA adapters (Hu et al. 2021; PEFT's LoraLayer) on frozen, possibly quantized base layers: the seed of the
// recovery fine-tuning stage (method.md §7). A wrapped layer computes
//     y = base(x) + scale * (drop(x) A^T) B^T,    scale = alpha / rank,
// where only A [rank, in] and B [out, rank] are trained. attachLora() wraps the targeted linears of every
// decoder layer as FinetuneSettings (qpruner/memory_model.h) names them; detachLora() puts the bases back.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "model/linear.h"
#include "model/llama_model.h"
#include "qpruner/memory_model.h"

namespace qpruner::finetune {

// What FinetuneSettings leaves open about the adapters.
struct LoraOptions {
    double alpha = 16.0; // scale = alpha / rank (PEFT's lora_alpha; method.md §7 uses 16 with rank 8)
    uint64_t seed = 0;   // A's initialisation and the dropout masks (each layer derives its own stream)
    // Backward of the frozen base recomputes dL/dx = dL/dy W from the stored weight (re-dequantizing a packed
    // one block of rows at a time) instead of letting autograd keep the dense weight the forward made: see
    // LoraLinear. Off only to measure what that saves.
    bool recomputeBaseGradient = true;
};

class LoraLinear final : public model::Linear {
public:
    struct Options {
        int rank = 8;
        double alpha = 16.0;
        double dropout = 0.0;                    // on the adapter input, in [0, 1)
        at::ScalarType adapterDtype = at::kFloat; // of A and B (and so of their gradients)
        bool recomputeBaseGradient = true;
        uint64_t seed = 0;
    };

    // A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_(a = sqrt(5)), nn.Linear's default, as PEFT), B = 0, so
    // the wrapped layer starts out equal to its base; both on the base's device, requiring grad. Throws
    // ConfigError for rank < 1, dropout outside [0, 1), alpha not positive, a non-floating adapter dtype or a
    // base that already is a LoraLinear.
    LoraLinear(model::LinearPtr base, const Options& options);

    // The adapter computes in x's dtype (A and B are cast for the product; their gradients flow back to A and B
    // in the adapter dtype). Dropout applies only while grad mode is on, i.e. in a training forward; evaluation
    // runs under InferenceMode and sees the deterministic layer.
    //
    // Memory of the frozen part: with recomputeBaseGradient and x requiring grad, base(x) runs without autograd
    // and a custom backward node (holding only the base layer) computes dL/dx from the stored weight again. Plain
    // autograd would instead keep every dense weight block a quantized base dequantized for its matmul (a
    // compute-dtype copy of the whole weight per layer) until backward. Nothing of x is kept for the base.
    at::Tensor forward(const at::Tensor& x) const override;
    int64_t inFeatures() const override { return base_->inFeatures(); }
    int64_t outFeatures() const override { return base_->outFeatures(); }
    bool hasBias() const override { return base_->hasBias(); }
    // The merged weight base + scale * B A, for export: computed in fp32, returned in the dtype of the base's
    // own denseWeight() (fp32 for a quantized base).
    at::Tensor denseWeight() const override;
    std::optional<at::Tensor> bias() const override { return base_->bias(); }
    // The base's stored bytes plus A's and B's.
    int64_t storageBytes() const override;
    // The base's format with the rank, e.g. "nf4+lora8".
    std::string formatName() const override;

    const model::LinearPtr& base() const { return base_; }
    // Replaces the frozen base (LoftQ's Q_T), keeping A and B. Throws ConfigError when `base` is null, already a
    // LoraLinear, or has other in/out features.
    void setBase(model::LinearPtr base);
    // Restarts the dropout masks' stream at `seed` (a trainer reseeds per step, so a resumed run draws the same
    // masks as an uninterrupted one). No effect without dropout.
    void setDropoutSeed(uint64_t seed);
    const at::Tensor& loraA() const { return a_; } // [rank, in]
    const at::Tensor& loraB() const { return b_; } // [out, rank]
    at::Tensor& loraA() { return a_; }
    at::Tensor& loraB() { return b_; }
    int rank() const { return rank_; }
    double scale() const { return scale_; }
    double dropout() const { return dropout_; }

private:
    model::LinearPtr base_;
    at::Tensor a_, b_;
    int rank_;
    double scale_;
    double dropout_;
    bool recomputeBaseGradient_;
    at::Generator dropoutGenerator_; // defined only when dropout > 0
};

// dL/dx = dL/dy W of a linear, from its stored weight: a quantized weight is dequantized one block of rows at a
// time (QuantLinear::chunkRows), the partial products summed in fp32; `gradOut` [..., out] -> [..., in], same
// dtype. What the custom backward of LoraLinear computes; exposed for tests.
at::Tensor linearInputGradient(const model::Linear& layer, const at::Tensor& gradOut);

// Wraps settings.targets (names or HF aliases) of every decoder layer in a LoraLinear with settings.rank,
// settings.dropout, settings.adapterDtype and `options`. Returns the trainable tensors, A then B of each wrapped
// layer in layer, module order. Throws ConfigError (before changing anything) for rank < 1, dropout outside
// [0, 1), alpha not positive, a quantized adapter dtype, no / unknown / repeated targets, or a model that
// already has LoRA layers. Batch, sequence length, compute dtype and checkpointing are not used here.
std::vector<at::Tensor> attachLora(model::LlamaModel& model, const FinetuneSettings& settings,
                                   const LoraOptions& options = {});

// Puts every LoraLinear's base back in its place (adapters are dropped, not merged). Returns how many layers were
// unwrapped.
int detachLora(model::LlamaModel& model);

} // namespace qpruner::finetune
