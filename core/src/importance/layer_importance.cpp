#include "importance/layer_importance.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <c10/core/GradMode.h>

#include "importance/kl_rows.h"
#include "importance/mutual_information.h"
#include "prune/pruner.h"
#include "qpruner/error.h"
#include "quant/quant_linear.h"

namespace qpruner::importance {

namespace {

const std::pair<const char*, Metric> kMetrics[] = {{"mi", Metric::MI},         {"bi", Metric::BI},
                                                   {"quant-kl", Metric::QuantKl}, {"taylor", Metric::Taylor},
                                                   {"cosine", Metric::Cosine},   {"outlier", Metric::Outlier}};

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void requireDense(model::LlamaModel& model, const std::string& metric)
{
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (LinearModule m : kLinearModules) {
            auto& L = model.layers[l];
            if (!dynamic_cast<const model::DenseLinear*>(model::layerLinear(L, m).get()))
                throw ConfigError("importance metric " + metric + " needs dense weights, but layer " +
                                  std::to_string(l) + " " + linearModuleName(m) + " is " +
                                  model::layerLinear(L, m)->formatName() + " (score before quantizing)");
        }
}

// Tokens with a next token: [B, T-1, ...] flattened to [B*(T-1), ...].
at::Tensor predictedPositions(const at::Tensor& t)
{
    const auto s = t.narrow(1, 0, t.size(1) - 1);
    return t.dim() == 2 ? s.reshape({-1}) : s.reshape({-1, t.size(-1)});
}

std::vector<int64_t> toLabels(const at::Tensor& t)
{
    const auto c = t.to(at::kLong).contiguous();
    return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Calls fn(batch) for every micro-batch of calibration windows (on the model's device), checking for cancellation
// and reporting progress; returns the number of predicted positions seen.
template <class F>
int64_t forEachMicroBatch(const model::LlamaModel& model, const at::Tensor& calibration, int microBatch,
                          const std::string& what, const ProgressSink& progress, const CancelToken* cancel, F&& fn)
{
    const int64_t N = calibration.size(0);
    for (int64_t s = 0; s < N; s += microBatch) {
        if (cancel)
            cancel->throwIfCancelled();
        const int64_t b = std::min<int64_t>(microBatch, N - s);
        fn(calibration.narrow(0, s, b).to(model.device()));
        report(progress, "importance", s + b, N, "calibration samples (" + what + ")");
    }
    return N * (calibration.size(1) - 1);
}

// One pass over the calibration tokens for mi and bi: projections of every residual state, the predicted
// tokens and the cosine similarities between consecutive residual states.
void hiddenStateMetrics(const model::LlamaModel& model, const at::Tensor& calibration, const ImportanceOptions& o,
                        bool wantMi, bool wantBi, std::map<std::string, MetricScores>& out,
                        const ProgressSink& progress, const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    const int n = model.config().numLayers();
    const auto projection = miProjection(model.config().hiddenSize, o.mi.dims, o.mi.seed).to(model.device());
    std::vector<std::vector<at::Tensor>> projected(static_cast<size_t>(n)); // per layer, per micro-batch [M, k]
    std::vector<at::Tensor> targets;
    std::vector<double> cosSum(static_cast<size_t>(n), 0.0);
    c10::NoGradGuard noGrad;
    const int64_t tokens = forEachMicroBatch(model, calibration, o.microBatch, "hidden states", progress, cancel,
                                             [&](const at::Tensor& batch) {
        std::vector<at::Tensor> residuals;
        const auto hidden = model.forwardHidden(batch, nullptr, &residuals);
        if (wantMi) {
            targets.push_back(o.mi.goldTarget ? batch.narrow(1, 1, batch.size(1) - 1).reshape({-1}).cpu()
                                              : predictedPositions(model.logits(hidden).argmax(-1)).cpu());
            for (int l = 0; l < n; ++l)
                projected[size_t(l)].push_back(
                    at::matmul(predictedPositions(residuals[size_t(l) + 1]).to(at::kFloat), projection).cpu());
        }
        if (wantBi)
            for (int l = 0; l < n; ++l) {
                const auto in = predictedPositions(residuals[size_t(l)]).to(at::kDouble);
                const auto outState = predictedPositions(residuals[size_t(l) + 1]).to(at::kDouble);
                cosSum[size_t(l)] += at::cosine_similarity(in, outState, 1, 1e-12).sum().item<double>();
            }
    });
    const double passSeconds = secondsSince(t0);
    if (wantBi) {
        MetricScores bi;
        bi.options = {{"tokens", tokens}, {"seconds_include_shared_forward", wantMi}};
        for (int l = 0; l < n; ++l)
            bi.layers.push_back(1.0 - cosSum[size_t(l)] / double(tokens));
        bi.seconds = passSeconds;
        normalizeScores(bi);
        out["bi"] = std::move(bi);
    }
    if (wantMi) {
        const auto t1 = std::chrono::steady_clock::now();
        MetricScores mi;
        const auto y = toLabels(at::cat(targets));
        const double hy = entropyBits(y, o.mi.millerMadow);
        for (int l = 0; l < n; ++l) {
            const auto x = at::cat(projected[size_t(l)]).contiguous();
            const auto cells = jointQuantileCells(x.data_ptr<float>(), x.size(0), o.mi.dims, o.mi.bins);
            mi.layers.push_back(mutualInformationBits(cells, y, o.mi.millerMadow));
        }
        mi.options = {{"dims", o.mi.dims},
                      {"bins", o.mi.bins},
                      {"target", o.mi.goldTarget ? "gold" : "predicted"},
                      {"estimator", o.mi.millerMadow ? "plug-in, Miller-Madow" : "plug-in"},
                      {"seed", o.mi.seed},
                      {"tokens", tokens},
                      {"target_entropy_bits", hy},
                      {"seconds_include_shared_forward", wantBi}};
        mi.seconds = passSeconds + secondsSince(t1);
        normalizeScores(mi);
        out["mi"] = std::move(mi);
    }
}

// Swaps linears of the model for quantized copies for as long as it lives.
class SwapGuard {
public:
    explicit SwapGuard(model::LlamaModel& model) : model_(model) {}
    void swap(int layer, LinearModule m, model::LinearPtr replacement)
    {
        auto* slot = &model::layerLinear(model_.layers[size_t(layer)], m);
        saved_.push_back({slot, *slot});
        *slot = std::move(replacement);
    }
    ~SwapGuard()
    {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
            *it->first = it->second;
    }
    SwapGuard(const SwapGuard&) = delete;
    SwapGuard& operator=(const SwapGuard&) = delete;

private:
    model::LlamaModel& model_;
    std::vector<std::pair<model::LinearPtr*, model::LinearPtr>> saved_;
};

// Rows of logits per chunk of the KL computation: every [rows, V] float64 temporary stays under ~32 MiB, so it is
// served from the reused heap instead of a fresh mapping (whose pages the kernel zero-fills on first touch; at a
// 32k vocabulary and 4 x 256 tokens the unchunked form faulted in ~1 GB per quantized pass).
int64_t klChunkRows(int64_t vocab, int64_t requested)
{
    return requested > 0 ? requested : std::max<int64_t>(1, (int64_t(32) << 20) / (8 * std::max<int64_t>(vocab, 1)));
}

// The dense model's next-token distributions of one micro-batch, from its final hidden states [B, T, D] at the
// predicted positions: p [M, V] in float64 and each row's sum p log p [M], the part of KL(p || q) that no
// quantized pass changes. Logits are computed in row chunks and taken to float64 before the log-softmax.
struct KlReference {
    at::Tensor p;
    at::Tensor pLogP;
};

// `rows`: the final hidden states at the predicted positions, [M, D]; fn(first row, rows, float32 logits).
template <class Fn>
void forLogitChunks(const model::LlamaModel& model, const at::Tensor& rows, int64_t chunkRows, Fn&& fn)
{
    const int64_t m = rows.size(0), step = klChunkRows(model.config().vocabSize, chunkRows);
    for (int64_t s = 0; s < m; s += step) {
        const int64_t n = std::min(step, m - s);
        fn(s, n, model.logits(rows.narrow(0, s, n)).contiguous());
    }
}

KlReference klReference(const model::LlamaModel& model, const at::Tensor& hidden, int64_t chunkRows)
{
    KlReference r;
    const auto rows = predictedPositions(hidden);
    forLogitChunks(model, rows, chunkRows, [&](int64_t s, int64_t n, const at::Tensor& z) {
        const auto logp = z.to(at::kDouble).log_softmax(-1);
        auto p = logp.exp();
        if (!r.p.defined()) {
            r.p = at::empty({rows.size(0), z.size(1)}, logp.options());
            r.pLogP = at::empty({rows.size(0)}, logp.options());
        }
        r.pLogP.narrow(0, s, n).copy_((p * logp).sum(-1));
        r.p.narrow(0, s, n).copy_(p);
    });
    return r;
}

// Summed KL(p || q) over the predicted positions, q from a quantized pass's final hidden states:
// per row sum p log p - sum p z + logsumexp(z), z the logits widened to float64 (klRowsSum: one pass per row).
double klSum(const model::LlamaModel& model, const KlReference& ref, const at::Tensor& hidden, int64_t chunkRows)
{
    double total = 0;
    forLogitChunks(model, predictedPositions(hidden), chunkRows, [&](int64_t s, int64_t n, const at::Tensor& z) {
        const auto p = ref.p.narrow(0, s, n).contiguous();
        const auto pLogP = ref.pLogP.narrow(0, s, n).contiguous();
        if (!z.is_cpu()) { // (CUDA) the same sums as tensor ops
            const auto zd = z.to(at::kDouble);
            total += (pLogP - (p * zd).sum(-1) + zd.logsumexp(-1)).sum().item<double>();
        } else {
            total += klRowsSum(z.data_ptr<float>(), p.data_ptr<double>(), pLogP.data_ptr<double>(), n, z.size(1));
        }
    });
    return total;
}

MetricScores quantKl(model::LlamaModel& model, const at::Tensor& calibration, const ImportanceOptions& o,
                     const ProgressSink& progress, const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    requireDense(model, "quant-kl");
    const int n = model.config().numLayers();
    // Every linear quantized once, reused for every micro-batch.
    std::vector<std::array<model::LinearPtr, kLinearModuleCount>> quantized(static_cast<size_t>(n));
    {
        c10::NoGradGuard noGrad;
        for (int l = 0; l < n; ++l)
            for (LinearModule m : kLinearModules)
                quantized[size_t(l)][size_t(m)] =
                    quant::quantizeLinear(*model::layerLinear(model.layers[size_t(l)], m), o.klFormat);
    }
    std::vector<double> layerKl(static_cast<size_t>(n), 0.0);
    std::vector<std::array<double, kLinearModuleCount>> moduleKl(static_cast<size_t>(n));
    c10::NoGradGuard noGrad;
    // Each micro-batch: one reference pass keeps the residual stream entering every layer; a quantized layer l
    // changes nothing before it, so its pass starts from that cached state and runs layers l..L-1 and the head
    // only (about L/2 + 2 forward passes per micro-batch in all, instead of L + 1).
    // Progress per layer of each micro-batch (a micro-batch of a large model takes minutes).
    const int64_t samples = calibration.size(0);
    int64_t done = 0;
    const int64_t tokens = forEachMicroBatch(model, calibration, o.microBatch, "quant-kl", {}, cancel,
                                             [&](const at::Tensor& batch) {
        std::vector<at::Tensor> residuals;
        const KlReference ref = klReference(model, model.forwardHidden(batch, nullptr, &residuals), o.klChunkRows);
        const auto klFrom = [&](int l) {
            return klSum(model, ref, model.forwardHiddenFrom(residuals[size_t(l)], l), o.klChunkRows);
        };
        for (int l = 0; l < n; ++l) {
            if (cancel)
                cancel->throwIfCancelled();
            {
                SwapGuard g(model);
                for (LinearModule m : kLinearModules)
                    g.swap(l, m, quantized[size_t(l)][size_t(m)]);
                layerKl[size_t(l)] += klFrom(l);
            }
            if (o.klModules)
                for (LinearModule m : kLinearModules) {
                    SwapGuard g(model);
                    g.swap(l, m, quantized[size_t(l)][size_t(m)]);
                    moduleKl[size_t(l)][size_t(m)] += klFrom(l);
                }
            report(progress, "importance", done * n + batch.size(0) * (l + 1), samples * n,
                   "quant-kl: layer " + std::to_string(l + 1) + "/" + std::to_string(n) + " of samples " +
                       std::to_string(done + 1) + "-" + std::to_string(done + batch.size(0)));
        }
        done += batch.size(0);
    });
    MetricScores r;
    for (int l = 0; l < n; ++l) {
        r.layers.push_back(layerKl[size_t(l)] / double(tokens));
        if (o.klModules) {
            std::array<double, kLinearModuleCount> row{};
            for (size_t m = 0; m < row.size(); ++m)
                row[m] = moduleKl[size_t(l)][m] / double(tokens);
            r.modules.push_back(row);
        }
    }
    r.options = {{"format", o.klFormat.name()}, {"modules", o.klModules}, {"tokens", tokens}, {"unit", "nats"}};
    r.seconds = secondsSince(t0);
    normalizeScores(r);
    return r;
}

MetricScores taylor(model::LlamaModel& model, const at::Tensor& calibration, const ImportanceOptions& o,
                    const ProgressSink& progress, const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    requireDense(model, "taylor");
    MetricScores r;
    r.modules = prune::linearTaylorImportance(model, calibration, o.microBatch, progress, cancel);
    for (const auto& row : r.modules)
        r.layers.push_back(std::accumulate(row.begin(), row.end(), 0.0));
    r.options = {{"criterion", "taylor-first"}, {"tokens", calibration.size(0) * (calibration.size(1) - 1)}};
    r.seconds = secondsSince(t0);
    normalizeScores(r);
    return r;
}

MetricScores sublayerCosine(const model::LlamaModel& model, const at::Tensor& calibration, const ImportanceOptions& o,
                            const ProgressSink& progress, const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    const int n = model.config().numLayers();
    std::vector<double> attn(static_cast<size_t>(n), 0.0), mlp(static_cast<size_t>(n), 0.0);
    c10::NoGradGuard noGrad;
    const int64_t tokens = forEachMicroBatch(model, calibration, o.microBatch, "sublayer cosines", progress, cancel,
                                             [&](const at::Tensor& batch) {
        const auto states = model.sublayerStates(batch);
        auto cosSum = [&](size_t a, size_t b) {
            return at::cosine_similarity(predictedPositions(states[a]).to(at::kDouble),
                                         predictedPositions(states[b]).to(at::kDouble), 1, 1e-12)
                .sum()
                .item<double>();
        };
        for (int l = 0; l < n; ++l) {
            attn[size_t(l)] += cosSum(2 * size_t(l), 2 * size_t(l) + 1);
            mlp[size_t(l)] += cosSum(2 * size_t(l) + 1, 2 * size_t(l) + 2);
        }
    });
    MetricScores r;
    for (int l = 0; l < n; ++l) {
        const double a = 1.0 - attn[size_t(l)] / double(tokens), m = 1.0 - mlp[size_t(l)] / double(tokens);
        r.layers.push_back(a + m);
        std::array<double, kLinearModuleCount> row{};
        for (LinearModule mod : kLinearModules)
            row[size_t(mod)] = mod == LinearModule::Gate || mod == LinearModule::Up || mod == LinearModule::Down ? m : a;
        r.modules.push_back(row);
    }
    r.options = {{"tokens", tokens}, {"blocks", "attention, mlp"}};
    r.seconds = secondsSince(t0);
    normalizeScores(r);
    return r;
}

MetricScores weightOutliers(model::LlamaModel& model, const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    requireDense(model, "outlier");
    constexpr double kZ = 3.0;
    MetricScores r;
    c10::NoGradGuard noGrad;
    for (size_t l = 0; l < model.layers.size(); ++l) {
        if (cancel)
            cancel->throwIfCancelled();
        std::array<double, kLinearModuleCount> row{};
        double outliers = 0, weights = 0;
        for (LinearModule m : kLinearModules) {
            const auto w = model::layerLinear(model.layers[l], m)->denseWeight().to(at::kDouble);
            const double mean = w.mean().item<double>(), sd = w.std().item<double>();
            const double count = sd > 0 ? (w - mean).abs().gt(kZ * sd).sum().item<double>() : 0.0;
            row[size_t(m)] = count / double(w.numel());
            outliers += count;
            weights += double(w.numel());
        }
        r.modules.push_back(row);
        r.layers.push_back(weights > 0 ? outliers / weights : 0.0);
    }
    r.options = {{"z", kZ}, {"tokens", 0}};
    r.seconds = secondsSince(t0);
    normalizeScores(r);
    return r;
}

std::vector<double> ranks(const std::vector<double>& v)
{
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]])
            ++j;
        for (size_t k = i; k <= j; ++k)
            r[order[k]] = 0.5 * double(i + j); // average rank of the tie
        i = j + 1;
    }
    return r;
}

} // namespace

Metric parseMetric(const std::string& name)
{
    std::string list;
    for (const auto& [n, m] : kMetrics) {
        if (name == n)
            return m;
        list += (list.empty() ? "" : ", ") + std::string(n);
    }
    throw ConfigError("unknown importance metric '" + name + "' (expected one of " + list + ")");
}

std::vector<Metric> parseMetrics(const std::vector<std::string>& names)
{
    if (names.empty())
        throw ConfigError("no importance metric given (expected some of mi, bi, quant-kl, taylor, cosine, outlier)");
    std::vector<Metric> out;
    for (const auto& n : names) {
        const Metric m = parseMetric(n);
        if (std::find(out.begin(), out.end(), m) != out.end())
            throw ConfigError("importance metric '" + n + "' is listed twice");
        out.push_back(m);
    }
    return out;
}

std::string metricName(Metric m)
{
    for (const auto& [n, v] : kMetrics)
        if (v == m)
            return n;
    return "?";
}

at::Tensor miProjection(int64_t hidden, int dims, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<float> values(static_cast<size_t>(hidden * dims));
    for (auto& v : values)
        v = static_cast<float>(normal(rng));
    auto p = at::tensor(values, at::kFloat).view({hidden, dims});
    return p / p.norm(2, {0}, true);
}

double spearman(const std::vector<double>& a, const std::vector<double>& b)
{
    if (a.size() != b.size() || a.size() < 2)
        throw ConfigError("rank correlation needs two vectors of the same length >= 2");
    const auto ra = ranks(a), rb = ranks(b);
    const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / double(ra.size());
    const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / double(rb.size());
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < ra.size(); ++i) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::numeric_limits<double>::quiet_NaN();
}

std::map<std::string, MetricScores> layerImportance(model::LlamaModel& model, const at::Tensor& calibration,
                                                    const ImportanceOptions& o, const ProgressSink& progress,
                                                    const CancelToken* cancel)
{
    if (calibration.dim() != 2 || calibration.size(1) < 2 || calibration.size(0) < 1)
        throw ConfigError("importance: calibration tokens must be [samples >= 1, length >= 2]");
    if (o.microBatch < 1)
        throw ConfigError("importance: micro-batch must be at least 1, got " + std::to_string(o.microBatch));
    if (o.mi.dims < 1 || o.mi.dims > 8)
        throw ConfigError("importance: mi dimensions must be in 1..8, got " + std::to_string(o.mi.dims));
    if (o.mi.bins < 2 || o.mi.bins > 256)
        throw ConfigError("importance: mi bins must be in 2..256, got " + std::to_string(o.mi.bins));
    if (!o.klFormat.isQuantized() && o.klFormat.kind != QuantKind::F16 && o.klFormat.kind != QuantKind::BF16)
        throw ConfigError("importance: quant-kl format must be lower than fp32, got " + o.klFormat.name());
    const auto has = [&](Metric m) { return std::find(o.metrics.begin(), o.metrics.end(), m) != o.metrics.end(); };
    std::map<std::string, MetricScores> out;
    if (has(Metric::MI) || has(Metric::BI))
        hiddenStateMetrics(model, calibration, o, has(Metric::MI), has(Metric::BI), out, progress, cancel);
    if (has(Metric::QuantKl))
        out["quant-kl"] = quantKl(model, calibration, o, progress, cancel);
    if (has(Metric::Taylor))
        out["taylor"] = taylor(model, calibration, o, progress, cancel);
    if (has(Metric::Cosine))
        out["cosine"] = sublayerCosine(model, calibration, o, progress, cancel);
    if (has(Metric::Outlier))
        out["outlier"] = weightOutliers(model, cancel);
    return out;
}

} // namespace qpruner::importance
