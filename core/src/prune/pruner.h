// Structured pruning in the LLM-Pruner block-wise style (method.md §3): coupled groups per decoder layer,
// Taylor (or magnitude/random) importance from calibration data, a uniform ratio per pruned layer, and physical
// slicing of the weight matrices so the result is a smaller dense model with per-layer shapes.
//
// Groups. Attention units are KV groups: KV head j with its g = numHeads/numKvHeads query heads (q rows, k and
// v rows, o_proj input columns of those heads). Without grouped-query attention a unit is one head, as in
// LLM-Pruner; with it, whole KV groups go so every layer keeps numHeads a multiple of numKvHeads. MLP units are
// intermediate channels (gate and up rows, down_proj input column). The hidden size is never pruned.
//
// Scores. Per element of a member weight (grad g of the mean LM loss over the calibration tokens, weight w):
//   taylor-first   |g·w|                        (LLM-Pruner param_first, the default)
//   taylor-vector  |Σ_row g·w| per row/column   (vectorize: the sum runs over the channel, then |.|)
//   taylor-second  |½·w²·F|, F = (1/N) Σ_n g_n² the Fisher diagonal from N per-sample gradients (param_second)
//   taylor-mix     |g·w − ½·w²·F|               (param_mix)
//   l1 |w|, l2 w², random (uniform per unit, seeded).
// A member's score for a unit is the sum over its elements (or channels) in that unit; the unit's score
// aggregates its members (q, k, v, o or gate, up, down) by sum (default; equal to LLM-Pruner's sum), mean,
// max, prod, or last (the consumer only: o_proj / down_proj). Biases are sliced but not scored.
//
// Count. In a layer with C units and ratio r, n = C − int(C·(1−r)) lowest-scoring units go (LLM-Pruner's
// rule; ties remove the lower index first), at least one unit stays. With a channel multiple m > 1 the number
// of kept MLP channels is rounded to the nearest multiple of m (at least m, at most C).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "model/llama_model.h"
#include "qpruner/precision_map.h"
#include "qpruner/progress.h"

namespace qpruner::prune {

enum class Criterion { TaylorFirst, TaylorVector, TaylorSecond, TaylorMix, L1, L2, Random };
enum class Aggregation { Sum, Mean, Max, Prod, Last };

Criterion parseCriterion(const std::string& name);   // throws ConfigError listing the valid names
Aggregation parseAggregation(const std::string& name); // throws ConfigError listing the valid names
std::string criterionName(Criterion c);
std::string aggregationName(Aggregation a);
bool needsGradients(Criterion c);

// [begin, end) of decoder layers; begin < 0 or end < 0 means "the default".
struct LayerRange {
    int begin = -1;
    int end = -1;
};

struct PruneOptions {
    double ratio = 0.25;            // fraction of units removed in every pruned layer
    std::vector<double> layerRatios; // optional: one ratio per decoder layer (overrides `ratio`)
    // Layers whose attention / MLP is pruned. Default: all but the first and the last layer (LLM-Pruner keeps
    // them dense); with layerRatios, all layers.
    LayerRange attentionLayers;
    LayerRange mlpLayers;
    Criterion criterion = Criterion::TaylorFirst;
    Aggregation aggregation = Aggregation::Sum;
    int channelMultiple = 1; // round kept MLP channels to a multiple of this
    int microBatch = 4;      // calibration samples per forward/backward pass
    uint64_t seed = 0;       // for the random criterion
};

// Importance of every unit of one layer (empty where that part is not pruned).
struct LayerScores {
    std::vector<double> attention; // per KV group (= per head without GQA)
    std::vector<double> mlp;       // per intermediate channel
};

// What happens to one layer: sorted kept and removed unit indices.
struct LayerPlan {
    bool attentionPruned = false;
    bool mlpPruned = false;
    double attentionRatio = 0;
    double mlpRatio = 0;
    std::vector<int64_t> keptGroups, removedGroups;     // KV groups
    std::vector<int64_t> keptChannels, removedChannels; // MLP channels
};

// The per-layer attention and MLP ratios after applying ranges and layerRatios; validates the options against
// the model (ratios in [0, 1), ranges inside the model, list length) and throws ConfigError naming the option.
struct ResolvedRatios {
    std::vector<double> attention, mlp;
};
ResolvedRatios resolveRatios(const ModelConfig& config, const PruneOptions& options);

// Scores from calibration tokens [N, T] (int64, T >= 2). Needs dense weights; gradients are accumulated over
// micro-batches (taylor-second/-mix run one backward pass per sample). Only the weights of pruned layers take
// gradients, and they are released before returning.
std::vector<LayerScores> estimateImportance(model::LlamaModel& model, const at::Tensor& calibration,
                                            const PruneOptions& options, const ProgressSink& progress = {},
                                            const CancelToken* cancel = nullptr);

// First-order Taylor importance of every decoder linear, sum over its elements of |g·w| (g the gradient of the
// mean LM loss over calibration tokens [N, T], accumulated over micro-batches of `microBatch` windows), as
// [layer][module] in kLinearModules order. Needs dense weights; gradients are released before returning.
std::vector<std::array<double, kLinearModuleCount>> linearTaylorImportance(model::LlamaModel& model,
                                                                          const at::Tensor& calibration,
                                                                          int microBatch = 4,
                                                                          const ProgressSink& progress = {},
                                                                          const CancelToken* cancel = nullptr);

// Which units go, from the scores and the resolved ratios.
std::vector<LayerPlan> planPruning(const ModelConfig& config, const std::vector<LayerScores>& scores,
                                   const PruneOptions& options);

// Slices the model's weights to the plan and updates its per-layer shapes.
void applyPruning(model::LlamaModel& model, const std::vector<LayerPlan>& plan);

// Zeroes the removed rows/columns instead of slicing them (same function as applyPruning; for checks).
void applyPruningMask(model::LlamaModel& model, const std::vector<LayerPlan>& plan);

// JSON per layer: shapes before/after, ratios, every unit's score, kept and removed indices.
nlohmann::json layerReportJson(const ModelConfig& before, const ModelConfig& after,
                               const std::vector<LayerScores>& scores, const std::vector<LayerPlan>& plan);

} // namespace qpruner::prune
