// From layer importance to an initial precision map under a memory budget (method.md §5), torch-free so the
// GUI's map editor can call it live. Stage 3 of QPruner; its samples seed the Bayesian search.
//
// Decision: one format per searched decoder layer (all seven linears of the layer take it), chosen from the
// candidate formats; everything else (embedding, lm_head, unsearched layers) keeps the base map's format.
// A searched layer's module overrides in the base map are dropped (the layer's format replaces them).
// Memory is the exact memory model (memory_model.h), so a map's bytes are exact, never estimated: the cost of
// a layer in a format is its linear bytes (+ its q/k/v bias bytes when the budget limits total bytes), taken
// from memoryReport once per candidate; every returned map is checked against a real memoryReport.
//
// Budgets (parseBudget; units case-insensitive, optional space between number and unit):
//   bytes             "123456", "123456 B", "350KiB", "1.5MiB", "2GB" (SI: kB/MB/GB/TB, binary:
//                     KiB/MiB/GiB/TiB; a fractional byte count rounds down)
//                     limits MemoryReport::totalBytes (the whole model as stored)
//   bits per weight   "4.5bpw" limits 8 * linearBytes / linearParameters over all decoder linears
//                     (MemoryReport::linearBitsPerWeight; embedding and head excluded), i.e.
//                     linearBytes <= floor(bpw * linearParameters / 8)
//   fraction          "0.4x" or "40%": totalBytes <= floor(fraction * totalBytes of the same model with every
//                     weight in bf16 (norms fp32)). Any positive fraction is accepted; one above 1 is simply
//                     not binding for bf16-or-cheaper candidates.
// Rejected: empty text, a sign, zero, NaN/inf, a number out of range, an unknown unit or trailing text.
// An impossible budget (below the map with every searched layer at its cheapest candidate) is a ConfigError
// that states the smallest feasible budget in the budget's own unit (bytes exactly; bpw and fractions rounded
// up at the 4th decimal, so that giving the stated value back is feasible).
//
// Objective of a map b (what greedy maximises and the reports show): U(b) = sum_l (s~_l + eps) * log2 bits(b_l)
// over searched layers, s~ the normalised importance, bits the format's code bits (bf16 16, int8 8, nf4 4, ...).
//
// Methods:
//   greedy         start every searched layer at the cheapest candidate; repeatedly apply the upgrade with the
//                  largest objective gain per extra byte that still fits the budget (upgrades along each layer's
//                  upper convex hull of (bytes, log2 bits), dominated candidates skipped, collinear points kept
//                  as separate steps; ties: the lower layer index first); stop when none fits. An upgrade that
//                  does not fit is skipped (its layer stays where it is) and smaller ones further down the
//                  order are still tried.
//                  Guarantees (tested): with the upgrades u_1, u_2, ... in that global order, at a budget equal
//                  to the bytes of a prefix map (u_1..u_k applied: a "breakpoint") the result is that prefix map
//                  and it is optimal (the LP relaxation of the multiple-choice knapsack is integral there);
//                  at any other budget U(greedy) >= U(optimum) - the largest single hull-step gain. The bytes
//                  and U of the result are non-decreasing in the budget, and so is every layer's format across
//                  breakpoint budgets. Between breakpoints a layer's format can get cheaper as the budget grows:
//                  an upgrade that starts to fit can take the room a later, smaller upgrade had used.
//   probabilistic  candidates get positions k_f in [0, 1] (log2 bits, min-max over the candidates; all 1 when
//                  the candidates have equal bits). Layer l takes format f with
//                  P(f | l) = softmax_f( -(k_f - clamp(s~_l + delta, 0, 1))^2 / T ), T the temperature; the
//                  shift delta in [-1, 1] is calibrated by bisection so the expected memory of a sampled map
//                  equals the budget (delta = 1 when even the expectation at delta = 1 fits, -1 when the one at
//                  delta = -1 does not). K maps are sampled (std::mt19937_64 seeded with `seed`; per draw, per
//                  searched layer in ascending order, one u = (next output >> 11) / 2^53 in [0, 1), inverted
//                  through the CDF of P(. | l) with the candidates in increasing bits). A map over budget by
//                  at most the repair slack (a fraction of the budget) is repaired: repeatedly the (layer,
//                  cheaper candidate) downgrade that loses the least importance per byte saved,
//                  (s~_l + eps) * (log2 bits before - after) / bytes saved, is applied (ties: the smaller step,
//                  then the lower layer index) until it fits; maps still over
//                  are rejected. The mode (per layer the most probable format; ties: fewer bits) is repaired the
//                  same way, without the slack limit, when over. The result is the feasible map of highest
//                  probability among the mode (repaired) and the samples (ties: the mode, then the earliest
//                  draw); all feasible samples are returned too, duplicates included (they seed the Bayesian
//                  search).
//                  Guarantees (tested): the shift is non-decreasing in the budget, and so is the expected
//                  memory when no candidate with more bits costs fewer bytes; the mode before repair gives a
//                  more important layer at least as many bits; for a fixed seed, a draw's per-layer bits are
//                  non-decreasing in the budget (common random numbers). The returned maps are not monotone in
//                  the budget (repair and rejection depend on it). With layers of equal shape and candidates on
//                  a concave hull (the default nf4, int8, bf16), the repaired mode keeps the importance order.
//   uniform        every searched layer in options.uniformFormat (the baseline; it need not be a candidate);
//                  ConfigError stating its memory in the budget's unit when over budget.
//   random         K >= 1 maps with each layer's format uniform over the candidates (seeded, one u per layer as
//                  above, candidate floor(u * C) in the sorted candidates); those over budget are rejected; the
//                  result is the feasible sample that uses most of the budget (ties: higher U, then the earliest
//                  draw). ConfigError when no sample fits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/quant_format.h"

namespace qpruner {

enum class BudgetUnit { Bytes, BitsPerWeight, Fraction };

struct MemoryBudget {
    BudgetUnit unit = BudgetUnit::Bytes;
    double value = 0;
    std::string text() const; // "1048576 B", "4.5 bpw", "0.40x"
};

// Throws ConfigError naming the text and the accepted forms.
MemoryBudget parseBudget(std::string_view text);

// ap-ratio: arithmetic-progression layer ratios: each searched layer takes the most precise candidate at or below
// the position c + apSlope * (depth - 1/2) (position: the candidate's log2 code bits, min-max scaled to [0, 1];
// depth: layer / (layers - 1)), c the largest offset that fits the budget; deeper layers keep more precision.
enum class AllocationMethod { Greedy, Probabilistic, Uniform, Random, ApRatio };
AllocationMethod parseAllocationMethod(const std::string& name); // case-insensitive; ConfigError listing the names
std::string allocationMethodName(AllocationMethod m);

struct AllocationProblem {
    ModelConfig config;
    PrecisionMap base{QuantSpec{QuantKind::BF16, 0, false}}; // formats of everything not searched
    std::vector<int> layers;            // searched decoder layers; empty = all
    std::vector<QuantSpec> candidates;  // empty = {nf4, int8, bf16}
    std::vector<double> importance;     // normalised importance, one per decoder layer, in [0, 1]
    MemoryBudget budget;
};

struct AllocationOptions {
    AllocationMethod method = AllocationMethod::Greedy;
    int samples = 16;           // K (probabilistic, random)
    double temperature = 0.1;   // T (probabilistic)
    double repairSlack = 0.1;   // probabilistic: repair maps over budget by at most this fraction of it
    double epsilon = 1e-3;      // eps in the objective (so a layer scored 0 still prefers more bits)
    uint64_t seed = 0;
    QuantSpec uniformFormat{QuantKind::NF4, 64, false}; // uniform
    double apSlope = 1.0;       // ap-ratio: positions gained from the first to the last layer
};

struct Allocation {
    // One per decoder layer; an unsearched layer shows the base map's format of the layer (the most frequent
    // of its seven linears, ties: the first in module order).
    std::vector<QuantSpec> layerSpecs;
    PrecisionMap map;                  // base map with the searched layers set
    int64_t budgetedBytes = 0;         // the quantity the budget limits (total or linear bytes)
    int64_t totalBytes = 0;            // MemoryReport::totalBytes
    double linearBitsPerWeight = 0;
    double objective = 0;              // U(b)
    double logProbability = 0;         // probabilistic only: sum over searched l of log P(b_l | l)
    bool repaired = false;             // probabilistic only
    int draw = -1;                     // probabilistic / random samples: the draw's index in 0..K-1; else -1
};

struct AllocationResult {
    AllocationMethod method = AllocationMethod::Greedy;
    MemoryBudget budget;
    int64_t budgetBytes = 0;         // the budget as a limit on budgetedBytes
    int64_t minFeasibleBytes = 0;    // every searched layer at its cheapest candidate
    int64_t maxBytes = 0;            // every searched layer at its most expensive candidate
    std::vector<int> layers;         // searched layers
    std::vector<QuantSpec> candidates; // sorted by bytes over the searched layers, cheapest first (ties: fewer
                                       // bits, then the name)
    Allocation best;
    std::vector<Allocation> samples; // probabilistic / random: the feasible samples, in draw order
    int rejected = 0;                // samples over budget even after repair
    double shift = 0;                // probabilistic: calibrated delta
    double expectedBytes = 0;        // probabilistic: expected budgetedBytes of a sampled map at `shift`
    Allocation mode;                 // probabilistic: the mode (repaired when over budget)
    // {"method", "budget", "budget_bytes", "min_feasible_bytes", "max_bytes", "layers", "candidates",
    //  "best": {"formats": [...], "map": {...}, "budgeted_bytes", "total_bytes", "linear_bits_per_weight",
    //           "objective", "log_probability", "repaired", "draw"},
    //  "samples": [same as best], "rejected", "shift", "expected_bytes", "mode": same as best or null}
    nlohmann::ordered_json toJson() const;
};

// Validates the problem (config, importance size and range, layers in range and unique, candidates distinct,
// base map against the config, budget positive) and the options (samples >= 0, >= 1 for random; temperature
// > 0; repair slack and eps >= 0), then runs the method. Throws ConfigError.
AllocationResult allocate(const AllocationProblem& problem, const AllocationOptions& options = {});

} // namespace qpruner
