// Everything the run tabs show about one run, read from a workspace database in one go (on a worker thread:
// a run with 100,000 trials takes ~0.2 s to read). Plain data: the panels take a snapshot and never touch
// the store themselves, so they can be tested with hand-made snapshots.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <QString>

#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/store.h"

namespace qpruner::ui {

// The search stage's setting, as far as the plots need it.
struct SearchSettings {
    std::string objective = "ppl";        // "ppl", "kl", "accuracy" (the trial objective is 1 - accuracy)
    std::string budget;                   // as written in the config, e.g. "6bpw"
    int64_t budgetBytes = 0;              // limit on TrialRecord::budgetedBytes (0: unknown)
    std::vector<std::string> candidates;  // candidate format names of the search
    int trials = 0;                       // trials asked for
    std::string strategy = "bayes";       // bayes, random, evopress, nsga2, lagrangian, ap-ratio
    std::string granularity = "layer";    // layer, group, module
    int64_t tokenBudget = 0;              // the study's cost limit in scored tokens (0: none)
};

struct RunSnapshot {
    QString dbPath;                       // the workspace database it was read from
    store::RunRecord run;
    std::vector<store::StageRecord> stages;
    std::vector<store::ArtifactRecord> artifacts;
    std::vector<store::LayerScoreRow> scores;   // every metric, by metric, layer, module
    std::vector<store::TrialRecord> trials;     // summaries: map and metrics are null (store::trialSummaries)

    // The model as given (base) and the model the maps apply to (the pruned checkpoint when the run pruned,
    // else the base); absent when the file cannot be read any more (the reason in modelError).
    std::optional<ModelConfig> baseModel;
    std::optional<ModelConfig> model;
    QString modelPath;                    // path of `model`
    QString modelError;

    std::optional<PrecisionMap> initialMap;  // the allocate stage's importance-aware map
    std::optional<PrecisionMap> chosenMap;   // the search's choice (else the initial map), when present
    std::optional<SearchSettings> search;    // runs with a search stage

    // Metric names present in `scores`, in the order first seen.
    std::vector<std::string> metrics() const;
    // Per layer, the metric's normalised layer score (module ""), empty when the metric is absent.
    std::vector<double> layerScores(const std::string& metric, bool normalized = true) const;
    // [layer][module] normalised module scores; empty when the metric has none per module.
    std::vector<std::array<double, kLinearModuleCount>> moduleScores(const std::string& metric,
                                                                    bool normalized = true) const;
    const store::StageRecord* stage(const std::string& name) const; // the last stage of that name, or null
    // The search stage ended because no feasible map was left to try (its result's "exhausted").
    bool searchExhausted() const;
};

// Opens the workspace database at `dbPath` for reading only: no migration, no creation (a reader never changes
// what it looks at); FileError / FormatError as store::Store. Every UI reader goes through this. An SQLite file
// is opened afresh each time (a replaced file is seen as it is now); a PostgreSQL workspace's read-only
// connection is opened once and shared by every reader of the process (a Store serialises its callers), so a
// run followed live does not connect to the server on every poll.
std::shared_ptr<store::Store> openWorkspaceReadOnly(const QString& dbPath);

// Reads run `runId` from the database at `dbPath` (its own read connection; call from any thread).
// Throws qpruner::Error (FileError, FormatError, ConfigError) with a message naming the file or run.
RunSnapshot loadRunSnapshot(const QString& dbPath, int64_t runId);

// Re-reads only what changes while a run is running (the run record, stages and trial summaries) into `s`.
void refreshRunSnapshot(RunSnapshot& s);

} // namespace qpruner::ui
