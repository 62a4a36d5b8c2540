#include "quant/quant_error.h"

#include <cmath>

#include "eval/perplexity.h"
#include "quant/quant_linear.h"
#include "qpruner/error.h"

namespace qpruner::quant {

namespace {

// Passes the dense output on and accumulates how far the quantized layer's output is from it.
class ProbeLinear final : public model::Linear {
public:
    ProbeLinear(model::LinearPtr dense, model::LinearPtr quantized)
        : dense_(std::move(dense)), quantized_(std::move(quantized))
    {
    }
    at::Tensor forward(const at::Tensor& x) const override
    {
        const auto y = dense_->forward(x);
        const auto yq = quantized_->forward(x);
        const auto yd = y.to(at::kDouble);
        diff_ += (yd - yq.to(at::kDouble)).pow(2).sum().item<double>();
        norm_ += yd.pow(2).sum().item<double>();
        return y;
    }
    int64_t inFeatures() const override { return dense_->inFeatures(); }
    int64_t outFeatures() const override { return dense_->outFeatures(); }
    bool hasBias() const override { return dense_->hasBias(); }
    at::Tensor denseWeight() const override { return dense_->denseWeight(); }
    std::optional<at::Tensor> bias() const override { return dense_->bias(); }
    int64_t storageBytes() const override { return dense_->storageBytes(); }
    std::string formatName() const override { return "probe"; }

    double relativeError() const { return norm_ > 0 ? std::sqrt(diff_ / norm_) : 0.0; }

private:
    model::LinearPtr dense_, quantized_;
    mutable double diff_ = 0, norm_ = 0;
};

double meanNll(const model::LlamaModel& model, const at::Tensor& calib, int microBatch, const CancelToken* cancel)
{
    const int64_t N = calib.size(0), T = calib.size(1);
    double sum = 0;
    for (int64_t s = 0; s < N; s += microBatch) {
        if (cancel)
            cancel->throwIfCancelled();
        const auto tokens = calib.narrow(0, s, std::min<int64_t>(microBatch, N - s));
        sum += eval::sumNll(model, model.forwardHidden(tokens.narrow(1, 0, T - 1)), tokens.narrow(1, 1, T - 1));
    }
    return sum / double(N * (T - 1));
}

} // namespace

QuantErrorReport measureQuantError(model::LlamaModel& model, const QuantSpec& spec, const at::Tensor& calibration,
                                   int microBatch, const ProgressSink& progress, const CancelToken* cancel)
{
    if (calibration.dim() != 2 || calibration.size(1) < 2)
        throw ConfigError("quant-error: calibration tokens must be [samples, length >= 2]");
    if (microBatch < 1)
        throw ConfigError("quant-error: micro-batch must be at least 1");
    c10::InferenceMode guard;
    QuantErrorReport r;
    r.spec = spec;
    const int n = model.config().numLayers();
    auto slots = [&](model::DecoderLayer& L) {
        return std::array<model::LinearPtr*, kLinearModuleCount>{&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    };
    // Quantize every linear once; keep the dense layers to put back.
    using LayerLinears = std::vector<std::array<model::LinearPtr, kLinearModuleCount>>;
    LayerLinears dense(static_cast<size_t>(n)), quantized(static_cast<size_t>(n));
    for (int l = 0; l < n; ++l) {
        auto s = slots(model.layers[size_t(l)]);
        for (size_t m = 0; m < kLinearModuleCount; ++m) {
            if (!dynamic_cast<model::DenseLinear*>(s[m]->get()))
                throw ConfigError("quant-error: layer " + std::to_string(l) + " " +
                                  linearModuleName(kLinearModules[m]) + " is " + (*s[m])->formatName() +
                                  "; measure on a dense checkpoint");
            dense[size_t(l)][m] = *s[m];
            quantized[size_t(l)][m] = quantizeLinear(**s[m], spec);
        }
        report(progress, "quant-error", l + 1, 2 * n, "quantizing");
    }
    auto install = [&](const LayerLinears& which) {
        for (int l = 0; l < n; ++l) {
            auto s = slots(model.layers[size_t(l)]);
            for (size_t m = 0; m < kLinearModuleCount; ++m)
                *s[m] = which[size_t(l)][m];
        }
    };
    try {
        LayerLinears probes(static_cast<size_t>(n));
        for (int l = 0; l < n; ++l)
            for (size_t m = 0; m < kLinearModuleCount; ++m)
                probes[size_t(l)][m] = std::make_shared<ProbeLinear>(dense[size_t(l)][m], quantized[size_t(l)][m]);
        install(probes);
        r.denseNll = meanNll(model, calibration, microBatch, cancel);
        report(progress, "quant-error", n + n / 2, 2 * n, "dense pass");
        install(quantized);
        r.quantizedNll = meanNll(model, calibration, microBatch, cancel);
        install(dense);
        for (int l = 0; l < n; ++l)
            for (size_t m = 0; m < kLinearModuleCount; ++m) {
                const auto& d = dense[size_t(l)][m];
                const auto& q = quantized[size_t(l)][m];
                const auto w = d->denseWeight().to(at::kDouble);
                const double wn = w.norm().item<double>();
                ModuleQuantError e;
                e.layer = l;
                e.module = kLinearModules[m];
                e.rows = d->outFeatures();
                e.cols = d->inFeatures();
                e.weightRelError = wn > 0 ? (w - q->denseWeight().to(at::kDouble)).norm().item<double>() / wn : 0.0;
                e.outputRelError = static_cast<const ProbeLinear&>(*probes[size_t(l)][m]).relativeError();
                e.denseBytes = d->storageBytes();
                e.quantBytes = q->storageBytes();
                r.modules.push_back(e);
            }
    } catch (...) {
        install(dense);
        throw;
    }
    report(progress, "quant-error", 2 * n, 2 * n, "done");
    return r;
}

nlohmann::ordered_json QuantErrorReport::toJson() const
{
    nlohmann::ordered_json j;
    j["format"] = spec.name();
    j["dense_nll"] = denseNll;
    j["quantized_nll"] = quantizedNll;
    j["nll_increase"] = quantizedNll - denseNll;
    double wsum = 0, osum = 0;
    auto mods = nlohmann::ordered_json::array();
    for (const auto& m : modules) {
        wsum += m.weightRelError;
        osum += m.outputRelError;
        mods.push_back({{"layer", m.layer},
                        {"module", linearModuleName(m.module)},
                        {"shape", {m.rows, m.cols}},
                        {"weight_rel_error", m.weightRelError},
                        {"output_rel_error", m.outputRelError},
                        {"dense_bytes", m.denseBytes},
                        {"quant_bytes", m.quantBytes}});
    }
    const double k = modules.empty() ? 1.0 : double(modules.size());
    j["mean_weight_rel_error"] = wsum / k;
    j["mean_output_rel_error"] = osum / k;
    j["modules"] = mods;
    return j;
}

} // namespace qpruner::quant
