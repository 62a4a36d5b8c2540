// Searching a precision map (method.md §6, stage S4): one candidate format per searched unit (a decoder layer, a
// layer's attention or MLP group, or one linear), trials recorded in the experiment store, several workers
// (threads of one process or separate processes) sharing one study through the store. The strategy decides what
// to evaluate next (Strategy below); everything else is shared: the store's trial protocol, retries, workers,
// liveness, the token budget.
//
// One iteration of a worker:
//   1. read the run's trials (a consistent snapshot: complete, running, failed);
//   2. stop when the running and complete trials reach `trials`, or their tokens reach `tokenBudget`;
//   3. propose (propose()): first a retry: the earliest failed trial not yet retried (and not itself a retry of a
//      retry, unless interrupted) whose map is neither running nor complete at its fidelity: the same map again
//      (source "retry"); then the strategy's next map and fidelity, or "wait" (the strategy needs results still
//      running elsewhere, e.g. the rest of an evolution stage), or "exhausted" (nothing left to propose);
//   4. claim it in the store (claimTrial refuses duplicates and surplus trials: on refusal go to 1);
//   5. evaluate it (the callback) at its fidelity and complete it, or mark it failed with the exception's message
//      (CancelledError fails the trial and is rethrown).
// Everything random derives from (seed, trial number) or (seed, generation), and every strategy's proposals
// depend only on the stored trials (a strategy's state, e.g. an evolution's parent, is replayed from them), so a
// single-worker search is deterministic, and a killed one resumed with the same options proposes what an
// uninterrupted one would have up to the kill; afterwards the killed trial is retried first.
//
// bayes (the default): a GP (gaussian_process.h) fitted on the complete trials, inputs the encoded map
//   (features()) and, when multi-fidelity, the fidelity; output the normalised objective; ParEGO weights drawn
//   from (seed, trial number); the scalarised EI (acquisition.h, memory known exactly, predicted at full
//   fidelity) maximised over a pool of budget-feasible maps not held by any trial: fresh samples (sampler
//   callback), uniform random feasible maps, every 1-edit and random 2-edit neighbours of the Pareto front; ties
//   go to the earlier pool entry. The initial design (importance allocations, uniform maps) comes first.
//   Multi-fidelity (fidelities {f_0 < ... < 1}): new maps are scored at f_0; asynchronous successive halving
//   promotes a map from f_k to f_k+1 when it is among the best floor(n_k / eta_k) of the n_k maps scored at
//   f_k (eta_k = round(f_k+1 / f_k)); promotions come before new maps.
// random: uniform random feasible maps not tried yet (no initial design, no surrogate); under a tight budget, where
//   uniform maps rarely fit, random maps repaired into the budget (random units lowered until it fits).
// evopress: (1 + lambda) evolution (EvoPress, Sieberling et al. 2025). The parent starts as the first initial
//   map; each generation draws lambda offspring by level-switch mutations (1-3 switches, each raising one unit
//   one level and lowering another one level, or, one time in four each, only raising or only lowering one, as
//   unit costs differ; kept only when within budget), scores them at the first fidelity,
//   keeps the best survivors[0] for the second, ..., and the best of the last stage (full fidelity) replaces the
//   parent when strictly better. A (map, fidelity) scored before is not scored again.
// nsga2: NSGA-II over (objective, budgeted bytes) with a surrogate pre-filter (QR-Adaptor): generation 0 is the
//   initial design filled up with random feasible maps; each next generation's `population` offspring are the
//   non-dominated-sorting-and-crowding best, by the GP's predicted objective, of prefilter x population
//   candidates bred by binary tournaments, uniform crossover and random-reset mutation, repaired into the budget.
//   The population is the NSGA-II selection of parents and offspring.
// lagrangian: a per-unit error table (SearchProblem::unitErrors, e.g. quant-kl of each unit at each format) and
//   the multiple-choice knapsack: minimise the summed error within the budget (solveKnapsack: exact), first at
//   the run's budget, then the knapsack's front (knapsackFront) at up to 64 budgets spread down to the cheapest
//   map, then the rest of that front; no surrogate.
// ap-ratio: arithmetic-progression layer ratios: each unit's precision position rises linearly with its depth
//   (slope s, offset the largest that fits the budget); one map per slope of `apSlopes`.
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

enum class Strategy { Bayes, Random, EvoPress, Nsga2, Lagrangian, ApRatio };
Strategy parseStrategy(const std::string& name); // "bayes", "random", ...; ConfigError listing the names
std::string strategyName(Strategy s);
const std::vector<std::string>& strategyNames();

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

struct EvoPressOptions {
    int offspring = 16;                          // lambda
    std::vector<double> fidelities = {0.125, 0.5, 1}; // selection stages (ascending, the last 1)
    std::vector<int> survivors = {4, 1};         // kept after each stage but the last (one fewer than fidelities)
    int maxSwitches = 3;                         // level switches per offspring: 1..maxSwitches
};

struct Nsga2Options {
    int population = 16;
    int prefilter = 4;          // candidates bred per offspring kept (the surrogate ranks them); 1: no surrogate
    double mutation = 0;        // per-unit random-reset probability; 0: 1 / units
};

struct SearchOptions {
    int trials = 40;            // running + complete trials of the run to reach (every fidelity counts)
    Strategy strategy = Strategy::Bayes;
    uint64_t seed = 0;
    // Cost: stop when the tokens of the run's running and complete trials (TrialRecord::tokens) plus
    // spentTokens (e.g. the lagrangian's error table) reach tokenBudget; 0: no token limit.
    int64_t tokenBudget = 0;
    int64_t spentTokens = 0;
    std::vector<double> fidelities = {1}; // bayes: ascending fractions of the validation tokens ending at 1
    EvoPressOptions evopress;
    Nsga2Options nsga2;
    std::vector<double> apSlopes = {0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3};
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

// What a worker thread evaluates with; called from that thread only. `worker` is 0..workers-1. `fidelity`: the
// fraction of the validation tokens to score (1: all; SearchProblem::tokensAt says how many tokens that is).
using Evaluator =
    std::function<EvaluationResult(const Choice& choice, double fidelity, const CancelToken* cancel)>;
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
    // Tokens an evaluation at a fidelity scores (recorded with the trial when claimed: the study's cost); empty: 0.
    std::function<int64_t(double fidelity)> tokensAt;
    // lagrangian: [unit][candidate] error of the model with only that unit at that candidate (>= 0, additive
    // model of the objective); ap-ratio: each unit's depth in [0, 1] (empty: unit index / (units - 1)).
    std::vector<std::vector<double>> unitErrors;
    std::vector<double> unitDepth;
};

struct SearchSummary {
    int trialsComplete = 0;
    int trialsFailed = 0;
    int trialsRunning = 0;   // left by others
    int evaluatedHere = 0;   // trials this call evaluated
    bool exhausted = false;  // the pool ran dry before `trials`
    int64_t tokens = 0;      // tokens of the run's complete trials (plus spentTokens)
    bool tokenBudgetReached = false;
};

// ConfigError naming the first inconsistent option (fidelities, evopress stages, nsga2 sizes, slopes).
void validateSearchOptions(const SearchOptions& options);

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
    double fidelity = 1;
    bool wait = false;      // the strategy needs results still running (propose again later)
};
Proposal propose(const std::vector<store::TrialRecord>& trials, const SearchProblem& problem,
                 const SearchOptions& options, int number);

// How many of n validation windows (task items) a fidelity scores: the first ceil(fidelity * n), at least one.
int64_t fidelityCount(double fidelity, int64_t n);

// Pareto front of the complete full-fidelity trials (memory bytes, objective), as indices into `trials`.
std::vector<size_t> trialFront(const std::vector<store::TrialRecord>& trials);

// The multiple-choice knapsack of the lagrangian strategy: one candidate per unit minimising the summed
// error[u][k] subject to the summed bytes[u][k] <= budget. Exact: a dynamic programme over the Pareto-optimal
// (bytes, error) partial sums (ties: fewer bytes, then the lexicographically smaller choice). Empty choice when
// nothing fits; ConfigError on ragged or negative input, or beyond maxStates partial sums.
struct KnapsackSolution {
    Choice choice;
    double error = 0;
    int64_t bytes = 0;
};
KnapsackSolution solveKnapsack(const std::vector<std::vector<double>>& error,
                               const std::vector<std::vector<int64_t>>& bytes, int64_t budget,
                               size_t maxStates = 2000000);
// The Lagrangian relaxation: per unit argmin error + lambda * bytes (ties: fewer bytes, lower index). Optimal for
// the knapsack at its own byte total (a point of the lower convex hull).
// Every Pareto-optimal solution within the budget (no other fits with fewer bytes and no more error), ascending
// bytes and descending error; the last is solveKnapsack's.
std::vector<KnapsackSolution> knapsackFront(const std::vector<std::vector<double>>& error,
                                            const std::vector<std::vector<int64_t>>& bytes, int64_t budget,
                                            size_t maxStates = 2000000);
Choice lagrangianChoice(const std::vector<std::vector<double>>& error, const std::vector<std::vector<int64_t>>& bytes,
                        double lambda);
// ap-ratio: the map whose unit u takes the most precise candidate at or below position c + slope * (depth_u -
// 0.5), c the largest offset that fits the budget (bisection); the cheapest map when none does.
Choice apRatioChoice(const SearchSpace& space, const std::vector<double>& depth, double slope);

} // namespace qpruner::search
