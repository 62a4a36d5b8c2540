// Trial actions: what a researcher does with a chosen point of a search once the search is over. Recover it
// (LoftQ or LoRA fine-tune), evaluate it (perplexity slices and zero-shot tasks), export it (GGUF or Hugging Face,
// merging the recovered adapter) and look at the text it generates next to the uncompressed model's. Each action
// is a stage of the search run in the experiment store (name below, config {"trial": N, ...}), so the GUI that
// started it, the CLI (`qpruner trial`, `runs`, `pareto`) and a later session all see it. Torch-free header.
//
// Files live under the run's workdir, in trials/trial-<N>/: the adapter (adapter/, with its checkpoint while a
// recovery is interrupted) and nothing else unless an export is pointed there.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/model_export.h"
#include "qpruner/progress.h"
#include "qpruner/store.h"

namespace qpruner::pipeline {

inline constexpr const char* kTrialRecoverStage = "trial-recover";
inline constexpr const char* kTrialEvaluateStage = "trial-evaluate";
inline constexpr const char* kTrialExportStage = "trial-export";
inline constexpr const char* kTrialGenerateStage = "trial-generate";

// The trial a stage acted on (its config's "trial"); -1 for the pipeline's own stages. Inline: the UI's
// torch-free libraries read it from snapshots.
inline int stageTrial(const store::StageRecord& stage)
{
    if (stage.name.rfind("trial-", 0) != 0 || !stage.config.is_object() || !stage.config.contains("trial") ||
        !stage.config["trial"].is_number_integer())
        return -1;
    return stage.config["trial"].get<int>();
}

// Everything an action needs about one complete trial of a search run.
struct TrialTarget {
    int64_t runId = 0;
    int trial = 0;
    std::string modelPath;           // the checkpoint the map applies to: the pruned one when the run prunes
    std::string baseModel;           // the run's model before pruning (Generate's "base" side)
    std::string tokenizer;
    std::string dtype;               // the run's weight dtype ("fp32", ...)
    std::string computeDtype;        // the run's compute_dtype ("auto", "float32", "bfloat16")
    nlohmann::json map;              // the trial's precision map
    int64_t memoryBytes = 0;
    nlohmann::json objective;        // null when the trial has none
    std::filesystem::path dir;       // <workdir>/trials/trial-<N>
    std::filesystem::path adapter;   // dir/adapter once a recovery of this trial finished, else empty
    bool resumable = false;          // the latest recovery was cancelled or failed and left a checkpoint
};

// ConfigError naming the run and the trial when the run has no search, the trial does not exist or is not
// complete.
TrialTarget trialTarget(const store::Store& store, int64_t runId, int trial);

// --- Recover ---------------------------------------------------------------------------------------------------
// The normalised `finetune` object a recovery of this run's trials starts from: the settings of trial `trial`'s
// latest recovery when it has one (what a resume must repeat), else the run's own `finetune` when its config has
// one, else the defaults (LoftQ init, rank 8, ...). Every key as in pipeline.h.
nlohmann::json recoveryDefaults(const store::Store& store, int64_t runId, int trial = -1);

// Fine-tunes the trial's map (`finetune`: a partial or whole `finetune` object, normalised; errors name
// "finetune.<key>"). resume: continue the checkpoint an interrupted recovery left (ConfigError when there is
// none); otherwise an earlier adapter of this trial is replaced. Stage kTrialRecoverStage, artifacts "adapter"
// and "training"; the result is finetune's RecoveryResult JSON plus "trial" and "adapter_dir". Progress as
// `qpruner finetune`: "finetune" per step (values: loss, lr) and "finetune: validation" (val_loss at the end).
nlohmann::json recoverTrial(store::Store& store, int64_t runId, int trial, const nlohmann::json& finetune,
                            bool resume, const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// --- Evaluate --------------------------------------------------------------------------------------------------
// {"ppl": [slices], "tasks": [...], "task_limit", "batch_size": 8, "adapter": true}: the run's `evaluate` when it
// has one, else one tinystories slice and no tasks. adapter: with the trial's recovered adapter when there is one.
nlohmann::json evaluationDefaults(const store::Store& store, int64_t runId);

// Scores the trial's model (its map, plus its adapter when recovered and "adapter" is true) on every slice and
// task. Stage kTrialEvaluateStage; result {"trial", "adapter" (path or null), "memory", "ppl": [{"source",
// "windows", "seq_len", "ppl", "mean_nll"}], "tasks": [{"task", "items", "acc", "acc_stderr", "acc_norm",
// "acc_norm_stderr", "seconds"}], "average": {"acc", "acc_norm"} (null without tasks)}. The numbers are those of
// `qpruner eval-tasks --map/--adapter ... --batch-size B` on the same model.
nlohmann::json evaluateTrial(store::Store& store, int64_t runId, int trial, const nlohmann::json& evaluate,
                             const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// --- Export ----------------------------------------------------------------------------------------------------
// `options` with the trial's model, map, tokenizer and (mergeAdapter and recovered) adapter filled in; the
// caller's target, out, nf4Type, dtype, padUniform, strict and name are kept. Without a name the GGUF is named
// after the run and the trial.
ExportOptions trialExportOptions(const store::Store& store, int64_t runId, int trial, ExportOptions options,
                                 bool mergeAdapter);
// The dry run: every tensor's type and the exact size (nothing is loaded or written, nothing is recorded).
ExportPlan planTrialExport(const store::Store& store, int64_t runId, int trial, const ExportOptions& options,
                           bool mergeAdapter);
// Writes it. Stage kTrialExportStage, artifact "gguf" or "hf-model"; result exportPlanJson(plan) plus "trial",
// "out" and "adapter". The bytes equal `qpruner export` of the same model, map / adapter, tokenizer and name.
ExportPlan exportTrial(store::Store& store, int64_t runId, int trial, const ExportOptions& options,
                       bool mergeAdapter, const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// --- Generate --------------------------------------------------------------------------------------------------
struct TrialGenerateRequest {
    std::string prompt;        // BOS is prepended
    int steps = 64;            // positions, BOS and prompt included (qpruner generate --steps)
    double temperature = 0.0;  // 0: greedy
    double topP = 0.9;
    uint64_t seed = 0;
    bool base = true;          // also generate with the run's uncompressed model, for side-by-side reading
    bool adapter = true;       // with the trial's adapter when recovered
};

// Stage kTrialGenerateStage; result {"trial", "prompt", "steps", "temperature", "top_p", "seed",
// "compressed": SIDE, "base": SIDE or null}, SIDE = {"model", "adapter", "prompt_ids", "ids" (after BOS),
// "generated_ids", "logprobs", "text", "seconds", "tokens_per_second"}: the ids of `qpruner generate`.
nlohmann::json generateTrial(store::Store& store, int64_t runId, int trial, const TrialGenerateRequest& request,
                             const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

} // namespace qpruner::pipeline
