// What the pipeline's stages and the trial actions (trial_actions.cpp) share: config normalisation of the
// `finetune` and `evaluate` objects, recovery options from a normalised `finetune`, validation/evaluation text
// windows and the model a run's precision maps apply to.
#pragma once

#include "search/bayes_search.h"

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "finetune/recovery.h"
#include "model/dtype.h"
#include "qpruner/store.h"
#include "qpruner/tokenizer.h"

namespace qpruner::pipeline::internal {

// A `finetune` object (null: all defaults) with every default filled and checked; errors name `path`'s keys.
// trial: the search trials' short recovery defaults. Relative paths are taken from the working directory.
nlohmann::json normalizedFinetune(const nlohmann::json& fc, bool trial, const std::filesystem::path& dataDir,
                                  const std::string& path);

// An `evaluate` object ({"ppl", "tasks", "task_limit"}; null: the defaults) with `extra` keys allowed and left
// to the caller.
nlohmann::json normalizedEvaluate(const nlohmann::json& ec, std::initializer_list<const char*> extra,
                                  const std::filesystem::path& dataDir, const std::string& path);

finetune::RecoveryOptions recoveryOptions(const nlohmann::json& fc, const std::filesystem::path& dataDir,
                                          uint64_t seed);

// `windows` consecutive windows of seq_len tokens of a normalised text slice after skipping `skip`: [N, T] int64.
at::Tensor textWindows(const nlohmann::json& slice, bool evaluation, const Tokenizer& tok,
                       const std::filesystem::path& dataDir);

// The checkpoint a run's precision maps apply to: its pruned model when the run prunes, else its model.
// ConfigError ("<what>: the run has not finished pruning yet") before pruning is done.
// The strategy settings of a normalised `search` object (strategy, fidelities, token budget, evopress, nsga2,
// ap_slopes, pools) as search options; seed, workers and liveness are left at their defaults.
search::SearchOptions searchOptions(const nlohmann::json& sc);

std::string runModelPath(const store::Store& store, int64_t runId, const std::string& what);

// A run's compute_dtype held on this thread while the scope lives (model::ScopedComputeDtype); "auto" or absent
// holds nothing, so the process's choice (the CPU's, or --compute-dtype) applies. The search's worker threads
// take the spawning thread's choice.
class RunComputeScope {
public:
    explicit RunComputeScope(const nlohmann::json& config);
    explicit RunComputeScope(const std::string& setting); // a compute_dtype value

private:
    std::optional<model::ScopedComputeDtype> scope_;
};

} // namespace qpruner::pipeline::internal
