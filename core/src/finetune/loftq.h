// Initialising LoRA adapters on quantized weights (method.md §7): plain LoRA (A random, B zero, so the layer
// starts at the quantized weight Q = q(W)) or LoftQ (Li et al. 2023), which alternates T times
//     Q_t = q(W - L_{t-1} R_{t-1}),   L_t R_t = best rank-r approximation of W - deq(Q_t)   (SVD),   L_0 R_0 = 0,
// each layer in its own format from the precision map, so the layer starts at deq(Q_T) + L_T R_T, closer to W
// (the best of the T iterates, see LoftqLayer::errors).
#pragma once

#include <array>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "finetune/lora.h"
#include "model/llama_model.h"
#include "qpruner/memory_model.h"
#include "qpruner/progress.h"
#include "qpruner/quant_format.h"

namespace qpruner::finetune {

// The result for one linear (T: the best iterate). With scale = alpha / rank, the adapter holds A = R_T and B = L_T / scale, so the
// wrapped layer y = Q_T x + scale * B A x starts out exactly at deq(Q_T) + L_T R_T whatever alpha is.
struct LoftqLayer {
    model::LinearPtr base;      // Q_T in the layer's format (its dense bias kept)
    at::Tensor a;               // [rank, in], fp32
    at::Tensor b;               // [out, rank], fp32
    double loraInitError = 0;   // ||W - deq(q(W))||_F / ||W||_F: where plain LoRA init starts (B = 0)
    // iterateErrors[t-1] = ||W - (deq(Q_t) + L_t R_t)||_F / ||W||_F, t = 1..T. Re-quantizing recomputes the block
    // scales, so an iterate can be worse than the previous one; the result is the best iterate, and errors[t-1] =
    // min over s <= t of iterateErrors[s-1] is the error of what T = t steps return (non-increasing in T).
    std::vector<double> iterateErrors;
    std::vector<double> errors;
    double weightNormSq = 0;    // ||W||_F^2 (to aggregate errors over a layer)
};

// LoftQ for one linear: `dense` holds W; `quantized` is q(W) in `spec` (what the precision map made of W; reused
// as Q_1, so nothing is quantized twice). A rank above min(out, in) is clamped to it. The SVD runs in fp32 on the
// weight's device. A 16-bit `spec` works the same way (q is the rounding); for fp32 every error is 0. Throws
// ConfigError for rank < 1, iterations < 1, scale <= 0 or shapes that differ.
LoftqLayer loftqDecompose(const model::Linear& dense, const model::LinearPtr& quantized, const QuantSpec& spec,
                          int rank, int iterations, double scale);

// The linears of every decoder layer (shared pointers, in kLinearModules order), captured before a precision map
// replaces them: what LoftQ needs to see W once the model holds Q.
using LayerLinears = std::vector<std::array<model::LinearPtr, kLinearModuleCount>>;
LayerLinears captureLinears(const model::LlamaModel& model);

enum class LoraInit { Lora, Loftq };
LoraInit parseLoraInit(const std::string& name); // "lora" | "loftq"; ConfigError otherwise
std::string loraInitName(LoraInit init);

struct InitOptions {
    LoraInit init = LoraInit::Loftq;
    int loftqIterations = 1; // T (peft's loftq_iter; the LoftQ README uses 5)
    // Also compute LoftQ's errors when init is lora (the report then compares both initialisations; costs the
    // SVDs). With init loftq the plain-LoRA error is always known (it is Q_1's).
    bool reportBoth = true;
};

// Initial error per linear and per layer, for both initialisations.
struct InitReport {
    struct Entry {
        int layer = 0;
        LinearModule module = LinearModule::Q;
        std::string format;          // the layer's format (spec name)
        double loraInitError = 0;    // as LoftqLayer
        std::vector<double> loftqErrors; // empty when not computed
        double weightNormSq = 0;
    };
    LoraInit init = LoraInit::Loftq;
    int loftqIterations = 0;
    std::vector<Entry> entries; // targets, in layer, module order
    // Per decoder layer over its targets: sqrt(sum ||residual||^2 / sum ||W||^2) for plain LoRA init and for LoftQ
    // after each iteration.
    std::vector<double> layerLoraInitError;
    std::vector<std::vector<double>> layerLoftqErrors;

    // {"init", "loftq_iterations", "layers": [{"layer", "lora_init_error", "loftq_errors": [...],
    //   "modules": {"q": {"format", "lora_init_error", "loftq_errors"}, ...}}], "model": {"lora_init_error",
    //   "loftq_errors"}} (the whole model's aggregate over every target).
    nlohmann::ordered_json toJson() const;
};

struct PreparedLora {
    std::vector<at::Tensor> params; // trainable: A then B of each wrapped layer, in layer, module order
    InitReport report;
};

// Wraps settings.targets of every decoder layer of `model` (which already holds its precision map's formats)
// in LoraLinear adapters (attachLora), initialised as `init` says: lora keeps attachLora's A and B = 0 on the
// held weight; loftq replaces each target's base by LoftQ's Q_T (in the held format, quant::heldSpec) and sets A
// and B. `dense` are the linears captureLinears() took before the map was applied. Throws ConfigError as
// attachLora and when `dense` does not match the model's layers and shapes; nothing is changed then. Progress is
// reported per initialised linear ("lora-init"); a cancel between linears (LoftQ's SVDs take minutes on 1B+ models)
// or a failure leaves the model as it was and throws (CancelledError for the cancel).
PreparedLora attachLoraWithInit(model::LlamaModel& model, const LayerLinears& dense, const FinetuneSettings& settings,
                                const LoraOptions& lora, const InitOptions& init, const ProgressSink& progress = {},
                                const CancelToken* cancel = nullptr);

} // namespace qpruner::finetune
