#include "search/trial_evaluator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <unistd.h>

#include "eval/multiple_choice.h"
#include "eval/perplexity.h"
#include "qpruner/error.h"
#include "quant/model_quantizer.h"

namespace qpruner::search {

SearchObjective parseSearchObjective(const std::string& name)
{
    if (name == "ppl")
        return SearchObjective::Perplexity;
    if (name == "kl")
        return SearchObjective::Kl;
    if (name == "accuracy")
        return SearchObjective::Accuracy;
    throw ConfigError("unknown search objective '" + name + "' (ppl, kl, accuracy)");
}

std::string searchObjectiveName(SearchObjective o)
{
    switch (o) {
    case SearchObjective::Perplexity: return "ppl";
    case SearchObjective::Kl: return "kl";
    case SearchObjective::Accuracy: return "accuracy";
    }
    return "?";
}

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Log-probabilities at the positions that have a next token: [B*(T-1), V] fp32.
at::Tensor predictedLogp(const model::LlamaModel& model, const at::Tensor& batch)
{
    const auto logits = model.forward(batch.narrow(1, 0, batch.size(1) - 1));
    return at::log_softmax(logits.to(at::kFloat), -1).reshape({-1, logits.size(-1)});
}

// Names of variant files: unique in this process (evaluators of several workers share a directory), the pid
// tells processes apart.
std::atomic<int64_t> nextVariantFile{0};

// A variant in a dense format the weight is already held in shares the dense weight's bytes.
bool sharesDenseWeight(const model::Linear& variant, const model::Linear& dense)
{
    const auto* d = dynamic_cast<const model::DenseLinear*>(&variant);
    return d && d->denseWeight().data_ptr() == dense.denseWeight().data_ptr();
}

} // namespace

TrialEvaluator::TrialEvaluator(std::unique_ptr<model::LlamaModel> dense, const PrecisionMap& base,
                               at::Tensor windows, TrialEvaluatorOptions options)
    : model_(std::move(dense)), windows_(std::move(windows)), options_(std::move(options))
{
    if (options_.batchSize < 1)
        throw ConfigError("search: the batch size must be at least 1");
    if (options_.objective == SearchObjective::Accuracy) {
        if (!options_.task || !options_.tokenizer || options_.task->items.empty())
            throw ConfigError("search: the accuracy objective needs a task with items");
    } else if (!windows_.defined() || windows_.dim() != 2 || windows_.size(0) < 1 || windows_.size(1) < 2) {
        throw ConfigError("search: the validation slice needs at least one window of two tokens");
    }
    windows_ = windows_.to(model_->device(), at::kLong);
    c10::NoGradGuard noGrad;
    if (options_.objective == SearchObjective::Kl)
        for (int64_t b0 = 0; b0 < windows_.size(0); b0 += options_.batchSize)
            referenceLogp_.push_back(
                predictedLogp(*model_, windows_.narrow(0, b0, std::min<int64_t>(options_.batchSize,
                                                                                windows_.size(0) - b0))));
    dense_ = finetune::captureLinears(*model_);
    quant::quantizeModel(*model_, base); // embedding, head and compute dtype of the base map
    if (!options_.variantDir.empty()) {
        if (!model_->device().is_cpu())
            throw ConfigError("search: a variant directory keeps weights in mapped files, which needs the CPU");
        std::error_code ec;
        std::filesystem::create_directories(options_.variantDir, ec);
        if (ec || !std::filesystem::is_directory(options_.variantDir))
            throw FileError(options_.variantDir.string() + ": cannot create the variant directory" +
                            (ec ? ": " + ec.message() : std::string()));
    }
}

int64_t TrialEvaluator::cachedBytes() const
{
    int64_t n = 0;
    for (const auto& [key, linear] : cache_)
        n += linear->storageBytes();
    return n;
}

int64_t TrialEvaluator::unitsAt(double fidelity) const
{
    const int64_t n = options_.objective == SearchObjective::Accuracy ? int64_t(options_.task->items.size())
                                                                      : windows_.size(0);
    return fidelityCount(fidelity, n);
}

int64_t TrialEvaluator::tokensAt(double fidelity) const
{
    if (options_.objective == SearchObjective::Accuracy)
        return unitsAt(fidelity); // items
    return unitsAt(fidelity) * (windows_.size(1) - 1);
}

EvaluationResult TrialEvaluator::evaluate(const PrecisionMap& map, double fidelity, const CancelToken* cancel)
{
    if (!(fidelity > 0 && fidelity <= 1))
        throw ConfigError("trial evaluation: fidelity " + std::to_string(fidelity) + " is outside (0, 1]");
    EvaluationResult r;
    c10::NoGradGuard noGrad;
    auto t0 = std::chrono::steady_clock::now();
    const ResolvedPrecision resolved = map.resolve(model_->config());
    const bool spill = !options_.variantDir.empty();
    std::set<const model::Linear*> used;
    int64_t missing = 0, made = 0; // variants this map needs that the cache lacks
    if (options_.progress)
        for (size_t l = 0; l < dense_.size(); ++l)
            for (LinearModule m : kLinearModules)
                missing += cache_.count({int(l), int(m), resolved.layers[l][size_t(m)].name()}) ? 0 : 1;
    for (size_t l = 0; l < dense_.size(); ++l)
        for (LinearModule m : kLinearModules) {
            const QuantSpec& spec = resolved.layers[l][size_t(m)];
            const model::Linear& dense = *dense_[l][size_t(m)];
            auto key = std::make_tuple(int(l), int(m), spec.name());
            auto it = cache_.find(key);
            if (it == cache_.end()) {
                if (cancel)
                    cancel->throwIfCancelled();
                report(options_.progress, "search: quantize", made++, missing,
                       "layer " + std::to_string(l) + " " + linearModuleName(m) + " to " + spec.name());
                model::LinearPtr variant = quant::convertLinear(dense, spec);
                if (spill && !sharesDenseWeight(*variant, dense)) {
                    variant = quant::spillLinear(*variant, options_.variantDir /
                                                               ("qpruner-variant-" + std::to_string(::getpid()) +
                                                                "-" + std::to_string(nextVariantFile++) + ".bin"));
                    quant::releaseLinearPages(dense); // read once to make the variant
                }
                it = cache_.emplace(key, std::move(variant)).first;
            }
            model::layerLinear(model_->layers[l], m) = it->second;
            used.insert(it->second.get());
            if (sharesDenseWeight(*it->second, dense))
                used.insert(&dense);
        }
    if (spill) {
        for (const auto& [key, variant] : cache_)
            if (!used.count(variant.get()))
                quant::releaseLinearPages(*variant);
        for (const auto& layer : dense_)
            for (const auto& d : layer)
                if (d && !used.count(d.get()))
                    quant::releaseLinearPages(*d);
    }
    r.secondsQuantize = secondsSince(t0);
    nlohmann::json recovery; // its time is in its own metrics, not the trial's quantize or evaluate time
    if (options_.recover) {
        c10::AutoGradMode enable(true);
        recovery = options_.recover(*model_, dense_, cancel);
    }

    t0 = std::chrono::steady_clock::now();
    if (options_.objective == SearchObjective::Accuracy) {
        eval::MultipleChoiceOptions mo;
        mo.batchSize = options_.batchSize;
        std::optional<eval::TaskSet> prefix;
        if (fidelity < 1) {
            prefix = *options_.task;
            prefix->items.resize(size_t(unitsAt(fidelity)));
        }
        const auto tr = eval::evaluateTask(*model_, *options_.tokenizer, prefix ? *prefix : *options_.task, mo, {},
                                           cancel);
        r.objective = 1.0 - tr.acc;
        r.metrics = {{"accuracy", tr.acc}, {"accuracy_norm", tr.accNorm}, {"items", tr.items}};
    } else {
        double nll = 0, kl = 0;
        const int64_t N = unitsAt(fidelity), T = windows_.size(1); // a fidelity scores the first windows
        size_t batchIndex = 0;
        for (int64_t b0 = 0; b0 < N; b0 += options_.batchSize, ++batchIndex) {
            if (cancel)
                cancel->throwIfCancelled();
            const auto batch = windows_.narrow(0, b0, std::min<int64_t>(options_.batchSize, N - b0));
            report(options_.progress, "search: score", b0, N,
                   "windows " + std::to_string(b0 + 1) + "-" + std::to_string(b0 + batch.size(0)));
            const auto logq = predictedLogp(*model_, batch);
            const auto targets = batch.narrow(1, 1, T - 1).reshape({-1, 1});
            nll -= logq.gather(-1, targets).to(at::kDouble).sum().item<double>();
            if (options_.objective == SearchObjective::Kl) {
                const auto& logp = referenceLogp_[batchIndex];
                kl += (logp.exp() * (logp - logq)).to(at::kDouble).sum().item<double>();
            }
        }
        const double tokens = double(N * (T - 1));
        const double meanNll = nll / tokens;
        r.metrics = {{"ppl", std::exp(meanNll)}, {"mean_nll", meanNll}, {"tokens", int64_t(tokens)}};
        if (options_.objective == SearchObjective::Kl) {
            r.metrics["kl"] = kl / tokens;
            r.objective = kl / tokens;
        } else {
            r.objective = std::exp(meanNll);
        }
    }
    r.secondsEvaluate = secondsSince(t0);
    if (fidelity < 1)
        r.metrics["fidelity"] = fidelity;
    if (!recovery.is_null())
        r.metrics["recovery"] = recovery;
    return r;
}

} // namespace qpruner::search
