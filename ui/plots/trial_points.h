// What the search plots show of a run's trials: the complete trials in scatter order, the Pareto front, the
// marked starting points, the budget line, the best trial within budget and the hypervolume per completed
// trial. Computed from a compact copy of the trials (TrialInput), so a live update can be held until the
// coalescing timer fires without keeping a whole RunSnapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <QString>
#include <QVector>

#include "qpruner/pareto.h"
#include "qpruner/store.h"

namespace qpruner::ui {

struct RunSnapshot;

// One trial, as far as the plots need it.
struct TrialSample {
    int number = 0;
    store::TrialState state = store::TrialState::Running;
    int64_t memoryBytes = 0;
    int64_t budgetedBytes = 0;
    double objective = 0;      // minimised; meaningful when complete and hasObjective
    bool hasObjective = false;
    int64_t finishOrder = 0;
    std::string source;        // kept for "initial:*" and "manual" only
    double fidelity = 1;       // fraction of the validation slice scored (multi-fidelity searches score some at < 1)
};

struct TrialInput {
    int64_t runId = 0;
    std::string objective = "ppl"; // "ppl", "kl", "accuracy" (the stored objective is 1 - accuracy)
    std::string budget;            // as written, e.g. "7 bpw"
    int64_t budgetBytes = 0;       // limit on budgetedBytes; 0: none known
    int trialsAsked = 0;
    bool exhausted = false; // the search stage ended because no feasible map was left to try
    std::vector<TrialSample> trials;

    // Changes whenever a trial appears, changes state or completes, or the budget or objective changes.
    uint64_t signature() const;
};

TrialInput trialInput(const RunSnapshot& snapshot);

struct TrialMarker {
    size_t index = 0; // into TrialPoints' arrays
    QString label;
};

struct TrialPoints {
    std::string objective = "ppl";
    // The complete trials with an objective, by ascending memory, then objective, then number.
    QVector<double> memory;        // bytes
    QVector<double> shown;         // y as plotted: shownObjective()
    std::vector<double> minimised; // the stored objective
    std::vector<int> number;
    std::vector<size_t> front;     // paretoFront over (memory, minimised): indices, ascending memory
    std::optional<size_t> importance;  // source "initial:importance"
    std::vector<TrialMarker> uniform;  // source "initial:uniform:<format>", labelled <format>
    std::vector<size_t> manual;        // source "manual"
    // Hypervolume (pareto.h hypervolumeTrace) after each completed trial, in finish order. Reference point:
    // 1.1 x the largest memory and 1.1 x the worst objective of the complete trials. The plot shows
    // hypervolume / hypervolumeScale, the fraction of the box from the ideal point (least memory, best
    // objective) to the reference, so it reads 0..1 whatever the units.
    std::vector<double> hypervolume;
    ObjectivePoint reference;
    double hypervolumeScale = 1;
    // Total memory at the budget: budgetBytes + (memoryBytes - budgetedBytes) of any trial (the offset, the
    // bytes the budget does not count, is the same for every trial of a run).
    std::optional<double> budgetMemory;
    long bestInBudget = -1; // index of the best complete trial within the budget (of all when none is known)
    int complete = 0;
    int running = 0;
    int failed = 0;
    int lowFidelity = 0;    // complete trials scored on part of the validation slice: counted, not plotted

    int size() const { return int(memory.size()); }
};

TrialPoints trialPoints(const TrialInput& input);

// The value plotted for a stored objective: 1 - value for "accuracy", else the value.
double shownObjective(const std::string& objective, double value);
// "Perplexity (lower is better)", "Accuracy (higher is better)", "KL divergence (lower is better)".
QString objectiveAxisLabel(const std::string& objective);
// "ppl", "accuracy", "KL".
QString objectiveShortName(const std::string& objective);

} // namespace qpruner::ui
