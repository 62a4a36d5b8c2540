// The recovery stage end to end (QPruner's stage 5, method.md §7): a dense (pruned) model and a precision map in,
// a LoRA adapter trained on the quantized model out. Quantize with the map, attach adapters initialised by plain
// LoRA or LoftQ (per layer in its own format), train on text or Alpaca data, and write an adapter directory:
//   adapter_model.safetensors, adapter_config.json   the selected adapter (PEFT layout; best validation loss)
//   base/                                            LoftQ's quantized weights (init loftq only; native format)
//   checkpoint/                                      state to resume from
//   training.json                                    init report, data summary, curves, measured and predicted memory
//   merged/                                          with `merge`: base + adapter as dense weights (native format)
// Shared by `qpruner finetune` and the pipeline's finetune stage.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "finetune/loftq.h"
#include "finetune/train_data.h"
#include "finetune/trainer.h"
#include "model/llama_model.h"
#include "qpruner/memory_model.h"
#include "qpruner/precision_map.h"
#include "qpruner/progress.h"
#include "qpruner/tokenizer.h"

namespace qpruner::finetune {

struct RecoveryOptions {
    FinetuneSettings lora;     // rank, targets, dropout, adapter dtype (batch/seq fields are set from `train`)
    double alpha = 16.0;
    InitOptions init;
    std::filesystem::path dataFile;
    DataOptions data;
    TrainOptions train;
    std::filesystem::path outDir;  // required
    bool resume = false;           // continue from outDir/checkpoint
    bool merge = false;            // also write outDir/merged
    std::string baseModel;         // recorded as base_model_name_or_path
};

struct RecoveryResult {
    InitReport init;
    TrainResult train;
    int64_t trainExamples = 0, validationExamples = 0, trainTargets = 0, validationTargets = 0;
    FinetuneEstimate predicted;    // estimateFinetune for one micro-batch of the longest example
    double initSeconds = 0;
    std::filesystem::path adapterDir;
    std::filesystem::path mergedDir; // empty unless merged

    // {"init": InitReport, "data": {...}, "train": TrainResult, "memory": {"measured_peak_rss_bytes",
    //  "measured_peak_rss_delta_bytes", "peak_cuda_bytes", "predicted": FinetuneEstimate}, "init_seconds",
    //  "adapter_dir", "merged_dir"}
    nlohmann::ordered_json toJson() const;
};

// `model` holds dense weights on entry and the quantized, adapted model (at the selected adapter) on return.
// Throws ConfigError / FileError / FormatError for bad options, data or a checkpoint that does not fit; on
// cancel the checkpoint and the best adapter so far are written and the result says cancelled.
RecoveryResult runRecovery(model::LlamaModel& model, const PrecisionMap& map, const Tokenizer& tokenizer,
                           const RecoveryOptions& options, const ProgressSink& progress = {},
                           const CancelToken* cancel = nullptr);

// A short fine-tune of a model that already holds its precision map, in place and writing nothing: what a search
// trial runs before it is scored (AutoMixQ's per-trial recovery, method.md §6). `dense` are the linears before the
// map (captureLinears; LoftQ needs them). The adapters stay attached; the caller reassembles the model afterwards.
TrainResult recoverInPlace(model::LlamaModel& model, const LayerLinears& dense, const TrainData& data,
                           const FinetuneSettings& lora, double alpha, const InitOptions& init,
                           const TrainOptions& train, const CancelToken* cancel = nullptr);

} // namespace qpruner::finetune
