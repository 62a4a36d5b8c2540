// Bayesian optimisation of a precision map (method.md §6, stage S4): one candidate format per searched unit
// (a decoder layer), trials recorded in the experiment store, several workers (threads of one process or
// separate processes) sharing one study through the store.
//
// One iteration of a worker:
//   1. read the run's trials (a consistent snapshot: complete, running, failed);
//   2. stop when the running and complete trials reach `trials`;
//   3. propose, in this order of precedence:
//        - a retry: the earliest failed trial not yet retried (and not itself a retry of a retry) whose map is
//          neither running nor complete: the same map again (source "retry");
//        - the next initial-design map (in the given order) that no running/complete trial holds;
//        - else the acquisition: a GP (gaussian_process.h) fitted on the complete trials, inputs the encoded
//          map (features()), output the normalised objective; ParEGO weights drawn from (seed, trial number);
//          the scalarised EI (acquisition.h, memory known exactly) maximised over a pool of budget-feasible maps
//          not held by any running/complete trial: fresh samples (sampler callback, seeded from the seed and
//          trial number), uniform random feasible maps, every 1-edit and random 2-edit neighbours of the Pareto
//          front; ties go to the earlier pool entry. An empty pool ends the search (every feasible map tried).
//   4. claim it in the store (claimTrial refuses duplicates and surplus trials: on refusal go to 1);
//   5. evaluate it (the callback) and complete it, or mark it failed with the exception's message
//      (CancelledError fails the trial and is rethrown).
// Everything random derives from (seed, trial number), and proposals depend only on the stored trials, so a
// single-worker search is deterministic, and a killed one resumed with the same options proposes what an
// uninterrupted one would have up to the kill; afterwards the killed trial is retried first.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/progress.h"
#include "qpruner/store.h"

namespace qpruner::search {

using Choice = std::vector<int>; // candidate index per searched unit

struct SearchSpace {
    int units = 0;
    std::vector<std::string> candidates;          // names (for reports), at most 10
    std::vector<double> position;                 // per candidate, in [0, 1] (ordinal bits, e.g. log2 bits min-max)
    std::vector<std::vector<int64_t>> unitBytes;  // [unit][candidate]: budgeted bytes the unit costs
    int64_t fixedBytes = 0;                       // budgeted bytes of everything not searched
    int64_t budgetBytes = 0;                      // limit on bytes(choice)
    std::vector<double> importance;               // per unit, in [0, 1] (the importance-weighted feature)

    int64_t bytes(const Choice& c) const;
    int64_t minBytes() const;                     // every unit at its cheapest candidate
    bool feasible(const Choice& c) const { return bytes(c) <= budgetBytes; }
    std::string encode(const Choice& c) const;    // '0' + index per unit
    Choice decode(const std::string& encoding) const; // FormatError for a wrong length or character
    // GP inputs: position of each unit's candidate, then sum_l importance_l * position_l / units.
    std::vector<double> features(const Choice& c) const;
    void validate() const;                        // ConfigError naming the inconsistency
};

struct InitialPoint {
    Choice choice;
    std::string source; // "initial:importance", "initial:sample", "initial:uniform:nf4", ...
};

struct SearchOptions {
    int trials = 40;            // running + complete trials of the run to reach
    bool randomSearch = false;  // the baseline: uniform random feasible maps not tried yet (no initial design,
                                // no surrogate); retries as usual
    uint64_t seed = 0;
    bool logObjective = true;   // model log(objective) (ppl, KL > 0)
    bool parEgo = true;         // random scalarisations; false: EI on the objective alone (memory only constrains)
    int parEgoDivisions = 10;
    int poolSamples = 64;       // sampler maps per iteration
    int poolRandom = 64;        // uniform random feasible maps per iteration (rejection, at most 50x tries)
    int poolTwoEdits = 256;     // random 2-edit neighbours of the front per iteration
    int gpRestarts = 2;
    int gpIterations = 40;
    int workers = 1;            // threads of this process (each with its own evaluator)
    // Liveness across processes and hosts: this process heartbeats every heartbeatSeconds (0: not at all) while
    // it searches, and reclaims running trials of workers gone for staleSeconds (their process ended, or no
    // heartbeat) so that they are proposed again as retries.
    double heartbeatSeconds = 5;
    double staleSeconds = 60;
    // When every trial is claimed but some still run elsewhere: wait for them (reclaiming stale ones) rather than
    // return, so that a run's search ends when its study is complete.
    bool waitForRunning = true;
    int maxEvaluations = 0;     // > 0: this process evaluates at most this many trials, then returns (a worker)
};

struct EvaluationResult {
    double objective = 0;                          // minimised, finite
    nlohmann::json metrics = nlohmann::json::object();
    double secondsQuantize = 0;
    double secondsEvaluate = 0;
};

// What a worker thread evaluates with; called from that thread only. `worker` is 0..workers-1.
using Evaluator = std::function<EvaluationResult(const Choice& choice, const CancelToken* cancel)>;
using EvaluatorFactory = std::function<Evaluator(int worker)>;
// Fresh budget-feasible (or not: infeasible ones are dropped) samples for the pool, from a seed.
using Sampler = std::function<std::vector<Choice>(uint64_t seed, int count)>;
// The map JSON and total bytes of a choice, stored with the trial.
struct TrialDescription {
    nlohmann::json map;
    int64_t memoryBytes = 0;
    nlohmann::json metrics = nlohmann::json::object(); // known before evaluation (e.g. memory); merged into the
                                                       // trial's metrics on completion
};
using Describer = std::function<TrialDescription(const Choice& choice)>;

struct SearchProblem {
    SearchSpace space;
    std::vector<InitialPoint> initial;
    Sampler sampler;        // may be empty (then only random maps and neighbours)
    Describer describe;     // may be empty (then map = {"encoding": ...}, memoryBytes = budgeted bytes)
};

struct SearchSummary {
    int trialsComplete = 0;
    int trialsFailed = 0;
    int trialsRunning = 0;   // left by others
    int evaluatedHere = 0;   // trials this call evaluated
    bool exhausted = false;  // the pool ran dry before `trials`
};

// Runs workers until the run holds `options.trials` running/complete trials; returns when this process's
// workers are done. The run must exist in `store`. progress: stage "search", done = complete trials.
SearchSummary runSearch(store::Store& store, int64_t runId, const SearchProblem& problem,
                        const EvaluatorFactory& evaluators, const SearchOptions& options,
                        const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// Source of a trial evaluated by hand (pipeline::evaluateMap): proposals ignore such trials.
inline constexpr const char* kManualTrialSource = "manual";

// The next proposal for the run given its trials (exposed for tests); `number` is the trial number it would get.
struct Proposal {
    Choice choice;
    std::string source;
    std::optional<int> retryOf;
    double secondsSurrogate = 0;
    bool exhausted = false; // nothing left to propose
};
Proposal propose(const std::vector<store::TrialRecord>& trials, const SearchProblem& problem,
                 const SearchOptions& options, int number);

// Pareto front of the complete trials (memory bytes, objective), as indices into `trials`.
std::vector<size_t> trialFront(const std::vector<store::TrialRecord>& trials);

} // namespace qpruner::search
