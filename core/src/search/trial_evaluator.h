// Evaluating one precision map during the search: the model for the map is assembled from per-linear quantized
// weights cached across trials (each linear is quantized once per format), then scored on a fixed validation
// slice. Not thread-safe: one evaluator per worker thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>

#include "eval/task_data.h"
#include "finetune/loftq.h"
#include "model/llama_model.h"
#include "qpruner/precision_map.h"
#include "qpruner/progress.h"
#include "qpruner/tokenizer.h"
#include "search/bayes_search.h"

namespace qpruner::search {

// ppl: perplexity of the validation windows; kl: mean KL(p_dense || p_map) per predicted token, in nats, against
// the unquantized model; accuracy: 1 - accuracy on a task subset.
enum class SearchObjective { Perplexity, Kl, Accuracy };
SearchObjective parseSearchObjective(const std::string& name); // "ppl", "kl", "accuracy"; ConfigError otherwise
std::string searchObjectiveName(SearchObjective o);

struct TrialEvaluatorOptions {
    SearchObjective objective = SearchObjective::Perplexity;
    int batchSize = 4;                 // windows (ppl, kl) or sequences (accuracy) per forward pass
    const eval::TaskSet* task = nullptr; // accuracy: the task subset (outlives the evaluator)
    const Tokenizer* tokenizer = nullptr; // accuracy
    // Short recovery fine-tune run on the assembled model before it is scored (finetune::recoverInPlace plugs in
    // here), given the dense linears the map replaced; empty: none. What it returns is the trial's "recovery"
    // metric. Its adapters are dropped when the next map is assembled.
    std::function<nlohmann::json(model::LlamaModel&, const finetune::LayerLinears& dense, const CancelToken*)> recover;
    // Where the quantized variants of the linears live between trials. Empty: in RAM (every variant any trial
    // used, all resident). A directory (CPU only): each variant's bytes go to a file there, memory-mapped and
    // unlinked at once (nothing is left on disk), and before each trial the pages of every variant and dense
    // weight the map does not use are handed back to the kernel, so a trial holds about one model's worth of
    // weights in RAM however many variants the search has made.
    std::filesystem::path variantDir;
    // Progress inside a trial (may be called from a worker thread): "search: quantize" per linear a map needs and
    // the cache lacks (a 7B's first trial quantizes for minutes), "search: score" per validation batch or task item
    // batch. Empty: none.
    ProgressSink progress;
};

class TrialEvaluator {
public:
    // `dense`: the (pruned) model with dense weights; `base`: the formats of everything the search does not
    // decide (embedding, head, unsearched layers); `windows`: [N, T] int64 token windows (ppl, kl).
    TrialEvaluator(std::unique_ptr<model::LlamaModel> dense, const PrecisionMap& base, at::Tensor windows,
                   TrialEvaluatorOptions options);

    // `fidelity` in (0, 1]: score the first ceil(fidelity * N) validation windows (task items), at least one.
    EvaluationResult evaluate(const PrecisionMap& map, double fidelity = 1, const CancelToken* cancel = nullptr);
    int64_t unitsAt(double fidelity) const;  // windows (items) scored at a fidelity
    int64_t tokensAt(double fidelity) const; // predicted tokens scored (items for the accuracy objective)

    int64_t cachedLinears() const { return int64_t(cache_.size()); }
    // Bytes of the cached variants' weights (in files when variantDir is set).
    int64_t cachedBytes() const;
    const model::LlamaModel& model() const { return *model_; }

private:
    std::unique_ptr<model::LlamaModel> model_;
    finetune::LayerLinears dense_;
    std::map<std::tuple<int, int, std::string>, model::LinearPtr> cache_;
    at::Tensor windows_;
    std::vector<at::Tensor> referenceLogp_; // kl: per batch, [B*(T-1), V] fp32
    TrialEvaluatorOptions options_;
};

} // namespace qpruner::search
