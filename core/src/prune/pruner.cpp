#include "prune/pruner.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <c10/core/GradMode.h>

#include "finetune/train_step.h"
#include "qpruner/error.h"

namespace qpruner::prune {

namespace {

const std::pair<const char*, Criterion> kCriteria[] = {
    {"taylor-first", Criterion::TaylorFirst}, {"taylor-vector", Criterion::TaylorVector},
    {"taylor-second", Criterion::TaylorSecond}, {"taylor-mix", Criterion::TaylorMix},
    {"l1", Criterion::L1}, {"l2", Criterion::L2}, {"random", Criterion::Random}};
const std::pair<const char*, Aggregation> kAggregations[] = {{"sum", Aggregation::Sum},
                                                            {"mean", Aggregation::Mean},
                                                            {"max", Aggregation::Max},
                                                            {"prod", Aggregation::Prod},
                                                            {"last", Aggregation::Last}};

template <typename E, size_t N>
E parseName(const std::pair<const char*, E> (&table)[N], const std::string& name, const char* what)
{
    std::string list;
    for (const auto& [n, e] : table) {
        if (name == n)
            return e;
        list += (list.empty() ? "" : ", ") + std::string(n);
    }
    throw ConfigError(std::string("unknown ") + what + " '" + name + "' (expected one of " + list + ")");
}

template <typename E, size_t N>
std::string nameOf(const std::pair<const char*, E> (&table)[N], E value)
{
    for (const auto& [n, e] : table)
        if (e == value)
            return n;
    return "?";
}

model::DenseLinear& dense(const model::LinearPtr& l, int layer, const char* module)
{
    auto* d = dynamic_cast<model::DenseLinear*>(l.get());
    if (!d)
        throw ConfigError("pruning needs dense weights, but layer " + std::to_string(layer) + " " + module + " is " +
                          l->formatName() + " (prune before quantizing)");
    return *d;
}

// One weight that takes part in scoring: where it sits and which way its units run.
struct Member {
    model::DenseLinear* linear;
    int layer;
    bool attention; // attention group (else MLP)
    bool inputSide; // units are input columns (o_proj, down_proj) rather than output rows
};

// Releases the gradients and requires_grad flags of the scored weights however estimation ends.
class GradScope {
public:
    explicit GradScope(std::vector<Member>& members) : members_(members)
    {
        for (auto& m : members_)
            m.linear->weight().requires_grad_(true);
    }
    ~GradScope()
    {
        for (auto& m : members_) {
            m.linear->weight().mutable_grad() = at::Tensor();
            m.linear->weight().requires_grad_(false);
        }
    }
    GradScope(const GradScope&) = delete;
    GradScope& operator=(const GradScope&) = delete;

private:
    std::vector<Member>& members_;
};

// Adds to the .grad of every weight that requires it the gradient of the mean NLL over all predicted tokens of
// `calibration`, accumulated over micro-batches.
void accumulateLossGradient(const model::LlamaModel& model, const at::Tensor& calibration, int microBatch,
                            const ProgressSink& progress, const CancelToken* cancel)
{
    const int64_t N = calibration.size(0);
    for (int64_t s = 0; s < N; s += microBatch) {
        if (cancel)
            cancel->throwIfCancelled();
        const int64_t b = std::min<int64_t>(microBatch, N - s);
        (finetune::causalLmLoss(model, calibration.narrow(0, s, b)) * (double(b) / double(N))).backward();
        report(progress, "importance", s + b, N, "calibration samples");
    }
}

void checkCalibration(const at::Tensor& calibration, int microBatch)
{
    if (calibration.dim() != 2 || calibration.size(1) < 2)
        throw ConfigError("importance: calibration tokens must be [samples, length >= 2]");
    if (microBatch < 1)
        throw ConfigError("importance: micro-batch must be at least 1");
}

// Per-unit score of one member: [units] in float64.
at::Tensor memberScores(const Member& m, int64_t units, Criterion c, const at::Tensor& grad,
                        const at::Tensor& fisher)
{
    const auto w = m.linear->weight().detach().to(at::kDouble);
    const int dim = m.inputSide ? 0 : 1; // reduce over the other axis to get one value per channel
    at::Tensor channel;
    switch (c) {
    case Criterion::TaylorFirst: channel = (grad.to(at::kDouble) * w).abs().sum(dim); break;
    case Criterion::TaylorVector: channel = (grad.to(at::kDouble) * w).sum(dim).abs(); break;
    case Criterion::TaylorSecond: channel = (0.5 * w * w * fisher.to(at::kDouble)).abs().sum(dim); break;
    case Criterion::TaylorMix:
        channel = (grad.to(at::kDouble) * w - 0.5 * w * w * fisher.to(at::kDouble)).abs().sum(dim);
        break;
    case Criterion::L1: channel = w.abs().sum(dim); break;
    case Criterion::L2: channel = (w * w).sum(dim); break;
    case Criterion::Random: break;
    }
    return channel.view({units, -1}).sum(1);
}

at::Tensor aggregate(const std::vector<at::Tensor>& members, Aggregation a)
{
    const auto s = at::stack(members);
    switch (a) {
    case Aggregation::Sum: return s.sum(0);
    case Aggregation::Mean: return s.mean(0);
    case Aggregation::Max: return std::get<0>(s.max(0));
    case Aggregation::Prod: return s.prod(0);
    case Aggregation::Last: return s[s.size(0) - 1];
    }
    return s.sum(0);
}

std::vector<double> toVector(const at::Tensor& t)
{
    const auto c = t.to(at::kDouble).contiguous();
    return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Units to keep out of `units` with `ratio` (LLM-Pruner's count), rounded to `multiple`.
int64_t keptCount(int64_t units, double ratio, int multiple)
{
    const int64_t pruned = units - static_cast<int64_t>(static_cast<double>(units) * (1.0 - ratio));
    int64_t kept = std::max<int64_t>(1, units - pruned);
    if (multiple > 1) {
        kept = std::llround(static_cast<double>(kept) / multiple) * multiple;
        kept = std::clamp<int64_t>(kept, std::min<int64_t>(multiple, units), units);
    }
    return kept;
}

void choose(const std::vector<double>& scores, int64_t kept, std::vector<int64_t>& keep, std::vector<int64_t>& drop)
{
    std::vector<int64_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return scores[size_t(a)] < scores[size_t(b)]; });
    const auto removed = static_cast<int64_t>(scores.size()) - kept;
    drop.assign(order.begin(), order.begin() + removed);
    keep.assign(order.begin() + removed, order.end());
    std::sort(drop.begin(), drop.end());
    std::sort(keep.begin(), keep.end());
}

// Row/column indices of the kept units, each unit `width` wide.
at::Tensor expand(const std::vector<int64_t>& units, int64_t width)
{
    std::vector<int64_t> idx;
    idx.reserve(units.size() * size_t(width));
    for (int64_t u : units)
        for (int64_t i = 0; i < width; ++i)
            idx.push_back(u * width + i);
    return at::tensor(idx, at::kLong);
}

model::LinearPtr sliceLinear(const model::LinearPtr& l, const at::Tensor& idx, bool columns, bool mask)
{
    auto& d = dynamic_cast<model::DenseLinear&>(*l);
    const auto i = idx.to(d.weight().device());
    const int dim = columns ? 1 : 0;
    auto w = mask ? d.weight().index_fill(dim, i, 0) : d.weight().index_select(dim, i).contiguous();
    std::optional<at::Tensor> b = d.bias();
    if (b && !columns)
        b = mask ? b->index_fill(0, i, 0) : b->index_select(0, i).contiguous();
    return std::make_shared<model::DenseLinear>(std::move(w), std::move(b));
}

void apply(model::LlamaModel& model, const std::vector<LayerPlan>& plan, bool mask)
{
    ModelConfig& cfg = model.mutableConfig();
    if (plan.size() != model.layers.size())
        throw ConfigError("applyPruning: the plan has " + std::to_string(plan.size()) + " layers, the model " +
                          std::to_string(model.layers.size()));
    c10::NoGradGuard noGrad;
    const int64_t hd = cfg.headDim;
    for (size_t l = 0; l < plan.size(); ++l) {
        const LayerPlan& p = plan[l];
        model::DecoderLayer& L = model.layers[l];
        LayerShape& s = cfg.layers[l];
        const model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        for (size_t m = 0; m < std::size(lins); ++m)
            dense(*lins[m], int(l), model::kLayerModules[m]);
        if (p.attentionPruned && !p.removedGroups.empty()) {
            const int64_t g = s.numHeads / s.numKvHeads;
            const auto& units = mask ? p.removedGroups : p.keptGroups;
            const auto qIdx = expand(units, g * hd), kvIdx = expand(units, hd);
            L.q = sliceLinear(L.q, qIdx, false, mask);
            L.k = sliceLinear(L.k, kvIdx, false, mask);
            L.v = sliceLinear(L.v, kvIdx, false, mask);
            L.o = sliceLinear(L.o, qIdx, true, mask);
            if (!mask) {
                s.numKvHeads = static_cast<int>(p.keptGroups.size());
                s.numHeads = static_cast<int>(g) * s.numKvHeads;
            }
        }
        if (p.mlpPruned && !p.removedChannels.empty()) {
            const auto idx = at::tensor(mask ? p.removedChannels : p.keptChannels, at::kLong);
            L.gate = sliceLinear(L.gate, idx, false, mask);
            L.up = sliceLinear(L.up, idx, false, mask);
            L.down = sliceLinear(L.down, idx, true, mask);
            if (!mask)
                s.ffnDim = static_cast<int>(p.keptChannels.size());
        }
    }
    cfg.validate();
}

} // namespace

Criterion parseCriterion(const std::string& name) { return parseName(kCriteria, name, "criterion"); }
Aggregation parseAggregation(const std::string& name) { return parseName(kAggregations, name, "aggregation"); }
std::string criterionName(Criterion c) { return nameOf(kCriteria, c); }
std::string aggregationName(Aggregation a) { return nameOf(kAggregations, a); }

bool needsGradients(Criterion c)
{
    return c == Criterion::TaylorFirst || c == Criterion::TaylorVector || c == Criterion::TaylorSecond ||
           c == Criterion::TaylorMix;
}

ResolvedRatios resolveRatios(const ModelConfig& config, const PruneOptions& o)
{
    const int n = config.numLayers();
    auto checkRatio = [](double r, const std::string& what) {
        if (!(r >= 0.0 && r < 1.0))
            throw ConfigError(what + " " + std::to_string(r) + " is outside [0, 1)");
    };
    checkRatio(o.ratio, "pruning ratio");
    if (!o.layerRatios.empty() && static_cast<int>(o.layerRatios.size()) != n)
        throw ConfigError("layer ratios: " + std::to_string(o.layerRatios.size()) + " values given, the model has " +
                          std::to_string(n) + " layers");
    for (size_t l = 0; l < o.layerRatios.size(); ++l)
        checkRatio(o.layerRatios[l], "layer " + std::to_string(l) + " ratio");
    if (o.channelMultiple < 1)
        throw ConfigError("channel multiple must be at least 1, got " + std::to_string(o.channelMultiple));
    const int defBegin = o.layerRatios.empty() ? 1 : 0;
    const int defEnd = o.layerRatios.empty() ? std::max(defBegin, n - 1) : n;
    auto resolve = [&](const LayerRange& r, const char* what) {
        const int b = r.begin < 0 ? defBegin : r.begin, e = r.end < 0 ? defEnd : r.end;
        if (b > e || e > n)
            throw ConfigError(std::string(what) + " " + std::to_string(b) + ":" + std::to_string(e) +
                              " is not a range of the model's " + std::to_string(n) + " layers");
        std::vector<double> ratios(size_t(n), 0.0);
        for (int l = b; l < e; ++l)
            ratios[size_t(l)] = o.layerRatios.empty() ? o.ratio : o.layerRatios[size_t(l)];
        return ratios;
    };
    return {resolve(o.attentionLayers, "attention layers"), resolve(o.mlpLayers, "MLP layers")};
}

std::vector<LayerScores> estimateImportance(model::LlamaModel& model, const at::Tensor& calibration,
                                            const PruneOptions& options, const ProgressSink& progress,
                                            const CancelToken* cancel)
{
    const ModelConfig& cfg = model.config();
    const auto ratios = resolveRatios(cfg, options);
    const int n = cfg.numLayers();
    std::vector<Member> members;
    for (int l = 0; l < n; ++l) {
        auto& L = model.layers[size_t(l)];
        if (ratios.attention[size_t(l)] > 0)
            for (auto [lin, name, in] : {std::tuple{&L.q, "q", false}, std::tuple{&L.k, "k", false},
                                         std::tuple{&L.v, "v", false}, std::tuple{&L.o, "o", true}})
                members.push_back({&dense(*lin, l, name), l, true, in});
        if (ratios.mlp[size_t(l)] > 0)
            for (auto [lin, name, in] : {std::tuple{&L.gate, "gate", false}, std::tuple{&L.up, "up", false},
                                         std::tuple{&L.down, "down", true}})
                members.push_back({&dense(*lin, l, name), l, false, in});
    }

    std::vector<at::Tensor> grads(members.size()), fisher(members.size());
    if (needsGradients(options.criterion) && !members.empty()) {
        checkCalibration(calibration, options.microBatch);
        c10::AutoGradMode gradMode(true);
        GradScope scope(members);
        const int64_t N = calibration.size(0);
        const bool perSample = options.criterion == Criterion::TaylorSecond || options.criterion == Criterion::TaylorMix;
        if (!perSample) {
            accumulateLossGradient(model, calibration, options.microBatch, progress, cancel);
            for (size_t i = 0; i < members.size(); ++i)
                grads[i] = members[i].linear->weight().grad();
        } else {
            // One backward pass per sample: F = mean of squared per-sample gradients; their mean is the batch
            // gradient (every sample has the same number of predicted tokens).
            for (int64_t s = 0; s < N; ++s) {
                if (cancel)
                    cancel->throwIfCancelled();
                for (auto& m : members)
                    m.linear->weight().mutable_grad() = at::Tensor();
                finetune::causalLmLoss(model, calibration.narrow(0, s, 1)).backward();
                c10::NoGradGuard noGrad;
                for (size_t i = 0; i < members.size(); ++i) {
                    const auto g = members[i].linear->weight().grad();
                    if (!fisher[i].defined())
                        fisher[i] = at::zeros_like(g);
                    fisher[i].add_(g * g, 1.0 / double(N));
                    if (options.criterion == Criterion::TaylorMix) {
                        if (!grads[i].defined())
                            grads[i] = at::zeros_like(g);
                        grads[i].add_(g, 1.0 / double(N));
                    }
                }
                report(progress, "importance", s + 1, N, "calibration samples (per-sample gradients)");
            }
        }
    }

    c10::NoGradGuard noGrad;
    std::vector<LayerScores> out(static_cast<size_t>(n));
    std::mt19937_64 rng(options.seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    size_t i = 0;
    for (int l = 0; l < n; ++l) {
        const LayerShape& s = cfg.layers[size_t(l)];
        for (bool attention : {true, false}) {
            if ((attention ? ratios.attention : ratios.mlp)[size_t(l)] <= 0)
                continue;
            const int64_t units = attention ? s.numKvHeads : s.ffnDim;
            std::vector<at::Tensor> parts;
            for (; i < members.size() && members[i].layer == l && members[i].attention == attention; ++i)
                if (options.criterion != Criterion::Random)
                    parts.push_back(memberScores(members[i], units, options.criterion, grads[i], fisher[i]));
            auto& dst = attention ? out[size_t(l)].attention : out[size_t(l)].mlp;
            if (options.criterion == Criterion::Random) {
                dst.resize(size_t(units));
                for (auto& v : dst)
                    v = uniform(rng);
            } else {
                dst = toVector(aggregate(parts, options.aggregation));
            }
        }
    }
    return out;
}

std::vector<std::array<double, kLinearModuleCount>> linearTaylorImportance(model::LlamaModel& model,
                                                                          const at::Tensor& calibration,
                                                                          int microBatch,
                                                                          const ProgressSink& progress,
                                                                          const CancelToken* cancel)
{
    checkCalibration(calibration, microBatch);
    const int n = model.config().numLayers();
    std::vector<Member> members;
    for (int l = 0; l < n; ++l) {
        auto& L = model.layers[size_t(l)];
        const model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        for (size_t m = 0; m < std::size(lins); ++m)
            members.push_back({&dense(*lins[m], l, model::kLayerModules[m]), l, m < 4, m == 3 || m == 6});
    }
    std::vector<std::array<double, kLinearModuleCount>> out(static_cast<size_t>(n));
    c10::AutoGradMode gradMode(true);
    GradScope scope(members);
    accumulateLossGradient(model, calibration, microBatch, progress, cancel);
    c10::NoGradGuard noGrad;
    for (size_t i = 0; i < members.size(); ++i) {
        auto& w = members[i].linear->weight();
        out[i / kLinearModuleCount][i % kLinearModuleCount] =
            (w.grad().to(at::kDouble) * w.detach().to(at::kDouble)).abs().sum().item<double>();
    }
    return out;
}

std::vector<LayerPlan> planPruning(const ModelConfig& config, const std::vector<LayerScores>& scores,
                                   const PruneOptions& options)
{
    const auto ratios = resolveRatios(config, options);
    const int n = config.numLayers();
    if (static_cast<int>(scores.size()) != n)
        throw ConfigError("planPruning: scores for " + std::to_string(scores.size()) + " layers, the model has " +
                          std::to_string(n));
    std::vector<LayerPlan> plan(static_cast<size_t>(n));
    for (int l = 0; l < n; ++l) {
        const LayerShape& s = config.layers[size_t(l)];
        LayerPlan& p = plan[size_t(l)];
        p.attentionRatio = ratios.attention[size_t(l)];
        p.mlpRatio = ratios.mlp[size_t(l)];
        p.attentionPruned = p.attentionRatio > 0;
        p.mlpPruned = p.mlpRatio > 0;
        auto part = [&](bool pruned, double ratio, int64_t units, int multiple, const std::vector<double>& sc,
                        std::vector<int64_t>& keep, std::vector<int64_t>& drop, const char* what) {
            if (!pruned) {
                keep.resize(size_t(units));
                std::iota(keep.begin(), keep.end(), 0);
                drop.clear();
                return;
            }
            if (static_cast<int64_t>(sc.size()) != units)
                throw ConfigError("planPruning: layer " + std::to_string(l) + " has " + std::to_string(units) + " " +
                                  what + " but " + std::to_string(sc.size()) + " scores");
            choose(sc, keptCount(units, ratio, multiple), keep, drop);
        };
        part(p.attentionPruned, p.attentionRatio, s.numKvHeads, 1, scores[size_t(l)].attention, p.keptGroups,
             p.removedGroups, "KV groups");
        part(p.mlpPruned, p.mlpRatio, s.ffnDim, options.channelMultiple, scores[size_t(l)].mlp, p.keptChannels,
             p.removedChannels, "MLP channels");
    }
    return plan;
}

void applyPruning(model::LlamaModel& model, const std::vector<LayerPlan>& plan) { apply(model, plan, false); }

void applyPruningMask(model::LlamaModel& model, const std::vector<LayerPlan>& plan) { apply(model, plan, true); }

nlohmann::json layerReportJson(const ModelConfig& before, const ModelConfig& after,
                               const std::vector<LayerScores>& scores, const std::vector<LayerPlan>& plan)
{
    auto layers = nlohmann::json::array();
    for (size_t l = 0; l < plan.size(); ++l) {
        const LayerShape &b = before.layers[l], &a = after.layers[l];
        const LayerPlan& p = plan[l];
        layers.push_back(
            {{"layer", l},
             {"attention",
              {{"pruned", p.attentionPruned},
               {"ratio", p.attentionRatio},
               {"heads", {b.numHeads, a.numHeads}},
               {"kv_heads", {b.numKvHeads, a.numKvHeads}},
               {"group_scores", l < scores.size() ? scores[l].attention : std::vector<double>{}},
               {"kept_groups", p.keptGroups},
               {"removed_groups", p.removedGroups}}},
             {"mlp",
              {{"pruned", p.mlpPruned},
               {"ratio", p.mlpRatio},
               {"channels", {b.ffnDim, a.ffnDim}},
               {"channel_scores", l < scores.size() ? scores[l].mlp : std::vector<double>{}},
               {"removed_channels", p.removedChannels}}},
             {"parameters", {before.layerParameterCount(int(l)), after.layerParameterCount(int(l))}}});
    }
    return layers;
}

} // namespace qpruner::prune
