// Layer importance (method.md §4): how much each decoder layer (and, where the metric allows, each of its seven
// linears) matters to the model's predictions on calibration data. Stage 3 of QPruner, run on the pruned model;
// the scores drive the allocation of precision (qpruner/allocation.h).
//
// Every metric uses the same tokens: the positions of the calibration windows [N, T] that have a next token
// (N * (T - 1) tokens).
//   mi        mutual information I(X_l; Y) in bits between a summary X_l of layer l's output and the prediction
//             Y. X_l: the residual stream after layer l, projected to k dimensions by a fixed Gaussian matrix
//             (seeded; the same for every layer, columns of unit norm), each dimension quantile-binned into B bins
//             over the calibration tokens, the k bins joined into one of B^k cells. Y: the model's predicted token
//             (argmax of its logits), or the gold next token (an option). Plug-in estimate with the Miller-Madow
//             correction (importance/mutual_information.h). Per layer only.
//   bi        block influence (ShortGPT): 1 - mean over tokens of cos(x_in, x_out), x_in and x_out the residual
//             stream before and after the layer. 0 for a layer that changes nothing. Per layer only.
//   quant-kl  mean over tokens of KL(p || q) in nats: p the model's next-token distribution, q the same with only
//             that layer's seven linears (per layer), or only that one linear (per module), quantized to the
//             given format; everything else unchanged. Each quantized pass starts from the cached residual
//             stream entering its layer (about L/2 + 2 forward passes per micro-batch for the layer scores).
//   taylor    sum over the layer's (module's) weights of |g·w|, g the gradient of the mean LM loss (the pruning
//             stage's taylor-first score, summed over the whole layer).
//   cosine    input/output cosine of each block (layer-wise quantization's LIM score, per sublayer): for the
//             attention block 1 - mean cos(h, h + attn(h)), for the MLP block 1 - mean cos(h', h' + mlp(h')); the
//             layer's score is their sum, each linear gets its block's score (q/k/v/o the attention's, gate/up/down
//             the MLP's). One forward pass. (bi is the same cosine over the whole layer.)
//   outlier   weight outliers (layer-wise quantization's z-score distribution, at |z| > 3): per linear the
//             fraction of its weights w with |w - mean| > 3 sd (0.27% for Gaussian weights; heavy tails score
//             higher, and quantize worse); per layer over all seven linears' weights. No calibration data.
// Raw values are returned with their min-max normalisation (qpruner/importance_scores.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/llama_model.h"
#include "qpruner/importance_scores.h"
#include "qpruner/progress.h"
#include "qpruner/quant_format.h"

namespace qpruner::importance {

enum class Metric { MI, BI, QuantKl, Taylor, Cosine, Outlier };

Metric parseMetric(const std::string& name);            // ConfigError listing the names
std::vector<Metric> parseMetrics(const std::vector<std::string>& names); // ConfigError on unknown or repeated
std::string metricName(Metric m); // "mi", "bi", "quant-kl", "taylor", "cosine", "outlier"

struct MiOptions {
    int dims = 2;             // k: projection dimensions
    int bins = 8;             // B: quantile bins per dimension
    bool goldTarget = false;  // Y = gold next token instead of the model's prediction
    bool millerMadow = true;  // bias correction
    uint64_t seed = 0;        // projection matrix
};

struct ImportanceOptions {
    std::vector<Metric> metrics = {Metric::MI, Metric::BI, Metric::QuantKl, Metric::Taylor};
    MiOptions mi;
    QuantSpec klFormat{QuantKind::NF4, 64, false}; // quant-kl: the lowest candidate format
    bool klModules = false;  // quant-kl: also score each linear alone (opt-in: 7x the passes of the layer scores)
    int microBatch = 4;      // calibration windows per forward pass
    int64_t klChunkRows = 0; // quant-kl: logit rows per chunk of the KL sums (0: ~32 MiB of float64 per chunk)
};

// Scores keyed by metric name. Calibration tokens [N, T] (int64, T >= 2). quant-kl and taylor need dense
// weights (ConfigError otherwise); the model is left as it was.
std::map<std::string, MetricScores> layerImportance(model::LlamaModel& model, const at::Tensor& calibration,
                                                    const ImportanceOptions& options = {},
                                                    const ProgressSink& progress = {},
                                                    const CancelToken* cancel = nullptr);

// The fixed random projection of the mi metric: [hidden, dims] fp32, N(0, 1) entries from a seeded
// std::mt19937_64 (the same on every platform), each column scaled to unit norm.
at::Tensor miProjection(int64_t hidden, int dims, uint64_t seed);

// Spearman rank correlation of two equally long vectors (average ranks for ties); NaN when one is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

} // namespace qpruner::importance
