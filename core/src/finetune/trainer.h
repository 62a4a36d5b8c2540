// The recovery fine-tuning loop (method.md §3.4, §7): LoRA adapters on a frozen (quantized) model trained with
// AdamW under a warmup + cosine/linear learning-rate schedule, gradient accumulation to an effective batch,
// gradient clipping, periodic validation with best-adapter selection, checkpoints to resume from, progress with
// ETA and cancellation that leaves a usable checkpoint.
//
// Determinism: the order of the training examples is a function of the seed and the epoch only, and the LoRA
// dropout masks of step k are drawn from streams seeded by (seed, k, layer), so a run resumed from a checkpoint at
// step k continues exactly as the uninterrupted run would.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "finetune/adapter_io.h"
#include "finetune/train_data.h"
#include "finetune/train_step.h"
#include "model/llama_model.h"
#include "qpruner/progress.h"

namespace qpruner::finetune {

enum class LrSchedule { Constant, Linear, Cosine };
LrSchedule parseLrSchedule(const std::string& name); // "constant" | "linear" | "cosine"; ConfigError otherwise
std::string lrScheduleName(LrSchedule s);

struct TrainOptions {
    int64_t steps = 0;       // optimizer steps; 0: as many as `epochs` passes over the training set take
    double epochs = 1.0;     // used when steps == 0
    int batchSize = 64;      // sequences per optimizer step (the effective batch)
    int microBatch = 4;      // sequences per forward/backward pass (gradients accumulate over them)
    double lr = 1e-4;
    double weightDecay = 0.0;
    int64_t warmupSteps = 100; // linear warmup from 0 (clamped to the run's steps)
    LrSchedule schedule = LrSchedule::Cosine;
    double maxGradNorm = 1.0;  // 0: no clipping
    int64_t evalEvery = 100;   // validation every this many steps (and at the end); 0: at the end only
    int64_t saveEvery = 200;   // checkpoint every this many steps (and at the end or on cancel); 0: end only
    int64_t maxValidationExamples = -1; // validate on at most this many (the first ones); -1: all
    uint64_t seed = 42;
    int padId = 0;             // token id that fills padded positions (never a loss target)
    // Measure the peak memory of run() (PeakMemory: trims the allocator and resets the process's peak RSS, so
    // off where several trainers share a process, as search trials do).
    bool measureMemory = true;
};

// The learning rate of optimizer step `step` (0-based) of `total`: HF get_{constant,linear,cosine}_schedule_with_
// warmup, i.e. lr * step / warmup during warmup, then constant, linear to 0, or 0.5 (1 + cos(pi * progress)).
double scheduledLr(const TrainOptions& options, int64_t step, int64_t total);

struct TrainPoint {
    int64_t step = 0; // 1-based: the loss of the batch that step `step` trained on
    double loss = 0;
    double lr = 0;
    double gradNorm = 0;
    double seconds = 0;
};
struct ValidationPoint {
    int64_t step = 0; // after this many steps (0: before training)
    double loss = 0;  // mean NLL over the validation targets
    double ppl = 0;
};

struct TrainResult {
    int64_t totalSteps = 0;
    int64_t steps = 0;          // steps done (== totalSteps unless cancelled)
    int64_t resumedFrom = 0;    // step the run continued from (0: a fresh run)
    bool cancelled = false;
    std::vector<TrainPoint> train;
    std::vector<ValidationPoint> validation;
    int64_t bestStep = -1;      // step of the lowest validation loss (-1 without validation)
    double bestValidationLoss = 0;
    double seconds = 0;         // training time of this process (resumed runs: since the resume)
    int64_t trainTargets = 0;   // predicted tokens trained on in this process
    int64_t peakRssBytes = 0;   // measured over this process's training (PeakMemory)
    int64_t rssBeforeBytes = 0;
    std::string peakRssSource;
    int64_t peakCudaBytes = 0;

    // {"total_steps", "steps", "resumed_from", "cancelled", "best_step", "best_validation_loss",
    //  "seconds", "train_tokens_per_second", "peak_rss_bytes", "rss_before_bytes", "peak_rss_source",
    //  "peak_cuda_bytes", "train": [{"step", "loss", "lr", "grad_norm", "seconds"}], "validation": [{...}]}
    nlohmann::ordered_json toJson() const;
};

// Where the trainer writes (all optional: an empty path writes nothing):
//   <outDir>/adapter_model.safetensors + adapter_config.json: the selected adapter, rewritten whenever the
//       validation loss improves (the last one when there is no validation set), so the directory always holds a
//       usable adapter;
//   <outDir>/checkpoint/: adapter, optimizer state and trainer_state.json, to resume from.
struct TrainOutput {
    std::filesystem::path outDir;
    AdapterConfig adapter; // written with the adapters
};

class Trainer {
public:
    // `model` carries the LoRA layers whose tensors `params` are (attachLoraWithInit / loadAdapter order).
    // Throws ConfigError for options out of range (batch or micro-batch < 1, lr < 0, steps < 0, epochs <= 0 when
    // steps is 0, negative intervals), an empty training set or examples longer than the model's context.
    Trainer(model::LlamaModel& model, std::vector<at::Tensor> params, const TrainData& data, TrainOptions options,
            TrainOutput output = {});

    // Continues from <outDir>/checkpoint: adapters, optimizer, step, curves and best validation loss. Throws
    // FileError/FormatError for a missing or damaged checkpoint, ConfigError when it was written with other
    // options (batch, steps, schedule, seed, data size) than this trainer's.
    void resume();

    // Trains to the end (or until `cancel`), validating and checkpointing as the options say (a fresh run with a
    // validation set validates the initialisation first, as step 0). Progress: done/total steps, message with loss,
    // lr and ETA. At the end, and on cancel (which returns with `cancelled` set, no exception), the checkpoint is
    // written and the model is left holding the selected adapter: the best validation loss's, else the last.
    TrainResult run(const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

    // Mean NLL of the validation set (eval mode: no dropout, no gradients).
    // Reports progress per micro-batch as stage "finetune: validation"; NaN when cancelled part-way.
    double validationLoss(const ProgressSink& progress = {}, const CancelToken* cancel = nullptr) const;

    int64_t totalSteps() const { return totalSteps_; }
    int64_t step() const { return step_; }

private:
    std::vector<MicroBatch> batchForStep(int64_t step) const;
    const std::vector<int64_t>& epochOrder(int64_t epoch) const;
    void reseedDropout(int64_t step);
    void writeCheckpoint(const TrainResult& r) const;
    void writeAdapter() const;

    model::LlamaModel& model_;
    const TrainData& data_;
    TrainOptions options_;
    TrainOutput output_;
    AdamW optimizer_;
    int64_t totalSteps_ = 0;
    int64_t step_ = 0;
    TrainResult history_; // curves and best so far (restored by resume())
    std::map<std::string, at::Tensor> bestAdapter_; // adapter tensors at the best validation loss so far
    mutable int64_t orderEpoch_ = -1;               // the epoch whose example order order_ holds
    mutable std::vector<int64_t> order_;
};

} // namespace qpruner::finetune
