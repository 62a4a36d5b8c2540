// One LoRA training step on a frozen model: the causal-LM loss, AdamW, gradient accumulation over micro-batches,
// and a measurement of the step's real peak memory to set beside estimateFinetune() (qpruner/memory_model.h,
// method.md §12).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "finetune/lora.h"
#include "model/llama_model.h"
#include "qpruner/memory_model.h"

namespace qpruner::finetune {

struct StepResult {
    double loss = 0;     // mean NLL of the batch's targets, before the update
    double seconds = 0;  // wall time: forward, backward and the optimizer update
    double gradNorm = 0; // global L2 norm of the trainable tensors' gradients, before clipping
    int64_t targets = 0; // predicted tokens the loss averages over
};

struct AdamWOptions {
    double lr = 1e-4;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weightDecay = 0.0; // decoupled: p <- p * (1 - lr * weightDecay) before the Adam update
};

// AdamW as torch.optim.AdamW computes it (bias-corrected moments, eps added to sqrt(v_hat)), with fp32 moments m
// and v per tensor whatever the tensors' dtype; a tensor of another dtype is updated in fp32 and rounded back.
class AdamW {
public:
    // Throws ConfigError for an undefined or non-floating tensor, lr or weight decay < 0, betas outside [0, 1)
    // or eps <= 0.
    explicit AdamW(std::vector<at::Tensor> params, const AdamWOptions& options = {});

    // One update of every tensor that has a gradient (the others are left alone and their step count too).
    void step();
    // Drops the gradients (sets them undefined, as zero_grad(set_to_none=True)), freeing their memory.
    void zeroGrad();
    // The learning rate of the next steps (a schedule sets it before each step). Throws ConfigError when < 0.
    void setLr(double lr);

    // The moments and step counts as named tensors, for a checkpoint: "m.<i>" and "v.<i>" (fp32, only for
    // tensors updated at least once) and "steps" (int64 [n]). loadState() puts such a state back; it throws
    // FormatError naming the entry whose presence, dtype or shape does not fit these parameters.
    std::map<std::string, at::Tensor> state() const;
    void loadState(const std::map<std::string, at::Tensor>& state);

    const std::vector<at::Tensor>& params() const { return params_; }
    const AdamWOptions& options() const { return options_; }

private:
    std::vector<at::Tensor> params_;
    std::vector<at::Tensor> m_, v_; // fp32, allocated at a tensor's first update
    std::vector<int64_t> steps_;
    AdamWOptions options_;
};

// Mean NLL (fp32 scalar, differentiable) of predicting tokens[:, t] from tokens[:, <t] for t = 1..T-1 of a batch
// [B, T] (int64). `lossMask` [B, T] (bool or 0/1) keeps only the targets where it is true (mask[:, 0] is unused),
// e.g. to leave prompts out. Logits are computed for positions 0..T-2 only. Throws ConfigError for a batch that
// is not [B, T >= 2], a mask of another shape, or a mask that keeps no target.
at::Tensor causalLmLoss(const model::LlamaModel& model, const at::Tensor& tokens,
                        const std::optional<at::Tensor>& lossMask = std::nullopt);

// Sequences of one forward/backward pass: token ids [b, T] (int64) and an optional loss mask of the same shape.
struct MicroBatch {
    at::Tensor tokens;
    std::optional<at::Tensor> lossMask;
};

// One optimizer step over micro-batches (each may have its own length): the gradients of the mean loss over all
// their targets (each micro-batch's summed NLL divided by the total target count, so the result equals one pass
// over everything), the global gradient norm clipped to `maxGradNorm` (> 0; as torch.nn.utils.clip_grad_norm_:
// scaled by maxGradNorm / (norm + 1e-6) when that is below 1), then optimizer.step(). Throws ConfigError for no
// micro-batch, a model with nothing to train, and as causalLmLoss.
StepResult trainStep(const model::LlamaModel& model, AdamW& optimizer, const std::vector<MicroBatch>& microBatches,
                     double maxGradNorm = 0.0);

// One optimizer step on `tokens` [B, T]: the gradients of the batch's mean loss (as causalLmLoss) accumulated
// over micro-batches of `microBatch` sequences (the last may be shorter; each is weighted by its share of the
// targets, so the result equals one pass over the whole batch), then optimizer.step(). Gradients are dropped at
// the start, so the forward never runs beside the previous step's gradients. Throws ConfigError for
// microBatch < 1, a model with nothing to train, and as causalLmLoss.
StepResult trainStep(const model::LlamaModel& model, AdamW& optimizer, const at::Tensor& tokens, int64_t microBatch,
                     const std::optional<at::Tensor>& lossMask = std::nullopt);

// The peak memory of a stretch of work: constructing it hands the allocator's free memory back to the system
// (glibc malloc_trim, so the growth seen is the work's own), records the resident set and resets the kernel's peak
// RSS (VmHWM, via clear_refs 5; Linux >= 4.0) and, on a CUDA device, the caching allocator's peak statistics.
class PeakMemory {
public:
    explicit PeakMemory(const at::Device& device);
    int64_t rssBeforeBytes() const { return rssBefore_; }
    // Peak RSS since construction: VmHWM, or where the reset failed ru_maxrss (the whole process's peak, an upper
    // bound). `source` receives "VmHWM" or "ru_maxrss".
    int64_t peakRssBytes(std::string* source = nullptr) const;
    // Max reserved CUDA memory since construction (0 on the CPU or without CUDA).
    int64_t peakCudaBytes() const;

private:
    at::Device device_;
    int64_t rssBefore_ = 0;
    bool hwm_ = false;
};

// On the CPU the peak RSS is what the process really occupies, allocator slack included: with glibc's default
// (dynamic) mmap threshold, tensors up to 32 MiB come from the heap, whose freed holes stay resident, so the
// forward's peak lies well above the live tensors (a 110M model, batch 4 x 256, fp32: 1.6x the growth measured
// with a fixed threshold, GLIBC_TUNABLES=glibc.malloc.mmap_threshold=262144, under which the peak comes at the
// start of backward).
struct MemoryMeasurement {
    // Resident set just before the adapters were attached (model loaded), after handing the allocator's free
    // memory back to the system (glibc malloc_trim), so the peak's growth is the step's own.
    int64_t rssBeforeBytes = 0;
    int64_t peakRssBytes = 0; // peak resident set during the steps (see peakRssSource)
    // "VmHWM": the kernel's peak RSS, reset just before attaching (clear_refs 5, Linux >= 4.0), read after the
    // steps. "ru_maxrss": the fallback where that reset fails, the peak over the whole process's life (an upper
    // bound when the process was larger before).
    std::string peakRssSource;
    int64_t peakCudaBytes = 0; // max reserved CUDA memory over the steps (0 on the CPU or without CUDA)
    int64_t loraParams = 0;
    int steps = 0;
    double secondsPerStep = 0;
    double lossBefore = 0; // loss of the first step (before any update)
    double lossAfter = 0;  // loss of the same batch after the last update, evaluated without dropout

    // {"rss_before_bytes", "peak_rss_bytes", "peak_rss_delta_bytes", "peak_rss_source", "peak_cuda_bytes",
    //  "lora_params", "steps", "seconds_per_step", "loss_before", "loss_after"}
    nlohmann::ordered_json toJson() const;
};

// Attaches LoRA as `settings` say (LoRA init and the random batch from `seed`; `lora.seed` is not used), trains
// `steps` steps on one random batch [batchSize, seqLen] of token ids < vocab in one pass (no micro-batching,
// as the estimate assumes), measures, and detaches the adapters again (also when it throws). Throws ConfigError
// for settings attachLora rejects, batch < 1, seqLen outside [2, maxSeqLen], steps < 1, gradient
// checkpointing (not implemented yet) or a compute dtype other than the model's.
MemoryMeasurement measureFinetuneStep(model::LlamaModel& model, const FinetuneSettings& settings, uint64_t seed,
                                      int steps = 1, const LoraOptions& lora = {}, const AdamWOptions& adam = {});

} // namespace qpruner::finetune
