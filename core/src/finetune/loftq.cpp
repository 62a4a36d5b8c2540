// LoftQ (Li et al. 2023; PEFT's loftq_utils.py) on our quantized layers, plain-LoRA / LoftQ adapter
// initialisation of a whole model, and the report of where each initialisation starts.
#include "finetune/loftq.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <tuple>

#include <ATen/ops/linalg_svd.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <c10/core/GradMode.h>

#include "qpruner/error.h"
#include "quant/model_quantizer.h"

namespace qpruner::finetune {

namespace {

[[noreturn]] void fail(const std::string& what) { throw ConfigError("LoftQ: " + what); }

std::string shapeText(const model::Linear& l)
{
    std::string s("[");
    s += std::to_string(l.outFeatures());
    s += ", ";
    s += std::to_string(l.inFeatures());
    s += ']';
    return s;
}

std::string slotText(size_t layer, LinearModule m)
{
    return "layer " + std::to_string(layer) + " " + linearModuleName(m);
}

// The slot's current linear; layerLinear() only has a mutable overload, nothing is modified here.
const model::LinearPtr& slotOf(const model::DecoderLayer& layer, LinearModule m)
{
    return model::layerLinear(const_cast<model::DecoderLayer&>(layer), m);
}

// ||t||_F^2, accumulated in double.
double normSq(const at::Tensor& t)
{
    const double n = at::linalg_vector_norm(t, 2, c10::nullopt, false, at::kDouble).item<double>();
    return n * n;
}

at::Tensor fp32Weight(const model::Linear& l)
{
    const at::Tensor w = l.denseWeight();
    return w.scalar_type() == at::kFloat ? w : w.to(at::kFloat);
}

// ||residual||_F / ||W||_F, 0 for a zero W.
double relativeError(const at::Tensor& residual, double weightNormSq)
{
    return weightNormSq > 0 ? std::sqrt(normSq(residual) / weightNormSq) : 0.0;
}

// sqrt(sum ||residual||^2 / sum ||W||^2) over `entries`, for plain LoRA init and each LoftQ iteration (as many
// iterations as every entry has).
void aggregate(const std::vector<const InitReport::Entry*>& entries, double& lora, std::vector<double>& loftq)
{
    size_t iterations = entries.empty() ? 0 : std::numeric_limits<size_t>::max();
    double weight = 0, loraResidual = 0;
    for (const auto* e : entries) {
        iterations = std::min(iterations, e->loftqErrors.size());
        weight += e->weightNormSq;
        loraResidual += e->loraInitError * e->loraInitError * e->weightNormSq;
    }
    std::vector<double> residual(iterations, 0.0);
    for (const auto* e : entries)
        for (size_t t = 0; t < iterations; ++t)
            residual[t] += e->loftqErrors[t] * e->loftqErrors[t] * e->weightNormSq;
    const auto ratio = [&](double r) { return weight > 0 ? std::sqrt(r / weight) : 0.0; };
    lora = ratio(loraResidual);
    loftq.clear();
    for (const double r : residual)
        loftq.push_back(ratio(r));
}

// Sets a wrapped layer to LoftQ's result: base Q_T, A = R_T, B = L_T / scale (copied into the adapter's own
// tensors, which the returned trainable parameters alias). A rank component with a zero singular value (an exact
// format, a residual of lower rank, or a rank above min(out, in), which LoftQ clamps) would have A's row and B's
// column both zero and so never get a gradient: it keeps attachLora's random row of A, its column of B is zero,
// and it adds nothing to the layer either way.
void applyLoftq(LoraLinear& layer, const LoftqLayer& r)
{
    c10::NoGradGuard noGrad;
    layer.setBase(r.base);
    at::Tensor& a = layer.loraA();
    at::Tensor& b = layer.loraB();
    const int64_t k = r.a.size(0);
    const at::Tensor ra = r.a.to(a.device());
    const at::Tensor live = ra.abs().amax({1}, /*keepdim=*/true) > 0; // [k, 1]
    at::Tensor aHead = a.narrow(0, 0, k);
    aHead.copy_(at::where(live, ra, aHead.to(at::kFloat)));
    b.zero_();
    b.narrow(1, 0, k).copy_(r.b);
}

} // namespace

LoftqLayer loftqDecompose(const model::Linear& dense, const model::LinearPtr& quantized, const QuantSpec& spec,
                          int rank, int iterations, double scale)
{
    if (rank < 1)
        fail("rank must be at least 1, got " + std::to_string(rank));
    if (iterations < 1)
        fail("iterations must be at least 1, got " + std::to_string(iterations));
    if (!(scale > 0.0 && std::isfinite(scale)))
        fail("scale (alpha / rank) must be positive, got " + std::to_string(scale));
    if (!quantized)
        fail("no quantized layer given");
    if (dense.inFeatures() != quantized->inFeatures() || dense.outFeatures() != quantized->outFeatures())
        fail("the dense weight is " + shapeText(dense) + " but the quantized layer is " + shapeText(*quantized));
    if (const QuantSpec held = quant::heldSpec(*quantized); !(held == spec))
        fail("the quantized layer is held in " + held.name() + ", not in " + spec.name());

    c10::NoGradGuard noGrad;
    const at::Tensor w = fp32Weight(dense);
    const int64_t out = w.size(0), in = w.size(1);
    const int64_t r = std::min<int64_t>(rank, std::min(out, in));

    LoftqLayer result;
    result.weightNormSq = normSq(w);
    model::LinearPtr q = quantized; // Q_1 = q(W)
    at::Tensor left, right;         // L_t [out, r], R_t [r, in]
    for (int t = 1; t <= iterations; ++t) {
        if (t > 1) {
            // Q_t = q(W - L_{t-1} R_{t-1}), in the layer's format, the dense bias kept (as the map converts it).
            const model::DenseLinear target(w - at::mm(left, right), dense.bias());
            q = quant::convertLinear(target, spec);
        }
        const at::Tensor err = w - fp32Weight(*q);
        if (t == 1)
            result.loraInitError = relativeError(err, result.weightNormSq);
        if (err.abs().max().item<double>() == 0.0) {
            // Nothing left to approximate (fp32, or a weight the format holds exactly).
            left = at::zeros({out, r}, w.options());
            right = at::zeros({r, in}, w.options());
        } else {
            at::Tensor u, s, vh;
            std::tie(u, s, vh) = at::linalg_svd(err, /*full_matrices=*/false);
            const at::Tensor root = s.narrow(0, 0, r).sqrt();
            left = u.narrow(1, 0, r) * root.unsqueeze(0);
            right = root.unsqueeze(1) * vh.narrow(0, 0, r);
        }
        const double e = relativeError(err - at::mm(left, right), result.weightNormSq);
        result.iterateErrors.push_back(e);
        // Re-quantizing W - L R recomputes the block scales, so an iterate can be worse than the one before it
        // (seen for int8/int3/int2): keep the best iterate, so T more steps never start further from W.
        if (t == 1 || e < result.errors.back()) {
            result.base = q;
            result.a = right;
            result.b = left;
            result.errors.push_back(e);
        } else {
            result.errors.push_back(result.errors.back());
        }
    }
    result.a = result.a.contiguous();
    result.b = (result.b / scale).contiguous();
    return result;
}

LayerLinears captureLinears(const model::LlamaModel& model)
{
    LayerLinears out(model.layers.size());
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (const LinearModule m : kLinearModules)
            out[l][static_cast<size_t>(m)] = slotOf(model.layers[l], m);
    return out;
}

LoraInit parseLoraInit(const std::string& name)
{
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "lora")
        return LoraInit::Lora;
    if (lower == "loftq")
        return LoraInit::Loftq;
    throw ConfigError("unknown LoRA init '" + name + "' (expected lora or loftq)");
}

std::string loraInitName(LoraInit init) { return init == LoraInit::Lora ? "lora" : "loftq"; }

nlohmann::ordered_json InitReport::toJson() const
{
    const auto moduleJson = [](const Entry& e) {
        nlohmann::ordered_json j;
        j["format"] = e.format;
        j["lora_init_error"] = e.loraInitError;
        j["loftq_errors"] = e.loftqErrors;
        return j;
    };
    nlohmann::ordered_json j;
    j["init"] = loraInitName(init);
    j["loftq_iterations"] = loftqIterations;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (size_t l = 0; l < layerLoraInitError.size(); ++l) {
        nlohmann::ordered_json layer;
        layer["layer"] = l;
        layer["lora_init_error"] = layerLoraInitError[l];
        layer["loftq_errors"] = l < layerLoftqErrors.size() ? layerLoftqErrors[l] : std::vector<double>{};
        nlohmann::ordered_json modules = nlohmann::ordered_json::object();
        for (const Entry& e : entries)
            if (e.layer == static_cast<int>(l))
                modules[linearModuleName(e.module)] = moduleJson(e);
        layer["modules"] = std::move(modules);
        layers.push_back(std::move(layer));
    }
    j["layers"] = std::move(layers);
    std::vector<const Entry*> all;
    for (const Entry& e : entries)
        all.push_back(&e);
    double lora = 0;
    std::vector<double> loftq;
    aggregate(all, lora, loftq);
    nlohmann::ordered_json whole;
    whole["lora_init_error"] = lora;
    whole["loftq_errors"] = loftq;
    j["model"] = std::move(whole);
    return j;
}

PreparedLora attachLoraWithInit(model::LlamaModel& model, const LayerLinears& dense, const FinetuneSettings& settings,
                                const LoraOptions& lora, const InitOptions& init, const ProgressSink& progress,
                                const CancelToken* cancel)
{
    // Everything that can be refused is checked before the model changes.
    const std::vector<LinearModule> targets = parseLoraTargets(settings.targets);
    const bool computeLoftq = init.init == LoraInit::Loftq || init.reportBoth;
    if (computeLoftq && init.loftqIterations < 1)
        fail("iterations must be at least 1, got " + std::to_string(init.loftqIterations));
    if (dense.size() != model.layers.size())
        fail("the dense linears cover " + std::to_string(dense.size()) + " layers, the model has " +
             std::to_string(model.layers.size()));
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (const LinearModule m : targets) {
            const model::LinearPtr& d = dense[l][static_cast<size_t>(m)];
            const model::LinearPtr& held = slotOf(model.layers[l], m);
            if (!d)
                fail("no dense linear captured for " + slotText(l, m));
            if (d->inFeatures() != held->inFeatures() || d->outFeatures() != held->outFeatures())
                fail(slotText(l, m) + ": the dense linear is " + shapeText(*d) + ", the model's is " +
                     shapeText(*held));
        }

    PreparedLora prepared;
    prepared.params = attachLora(model, settings, lora); // validates its settings before changing anything
    InitReport& report = prepared.report;
    report.init = init.init;
    report.loftqIterations = computeLoftq ? init.loftqIterations : 0;
    const int64_t total = int64_t(model.layers.size() * targets.size());
    std::vector<std::pair<LoraLinear*, model::LinearPtr>> replaced; // bases LoftQ replaced, to undo on failure
    try {
        for (size_t l = 0; l < model.layers.size(); ++l)
            for (const LinearModule m : targets) {
                if (cancel)
                    cancel->throwIfCancelled();
                auto* wrapped = dynamic_cast<LoraLinear*>(slotOf(model.layers[l], m).get());
                if (!wrapped)
                    fail(slotText(l, m) + " was not wrapped"); // attachLora wraps every target
                const model::Linear& d = *dense[l][static_cast<size_t>(m)];
                const model::LinearPtr held = wrapped->base(); // q(W) in the map's format
                const QuantSpec spec = quant::heldSpec(*held);
                InitReport::Entry e;
                e.layer = static_cast<int>(l);
                e.module = m;
                e.format = spec.name();
                if (computeLoftq) {
                    LoftqLayer r = loftqDecompose(d, held, spec, settings.rank, init.loftqIterations, wrapped->scale());
                    e.loraInitError = r.loraInitError;
                    e.loftqErrors = r.errors;
                    e.weightNormSq = r.weightNormSq;
                    if (init.init == LoraInit::Loftq) {
                        replaced.emplace_back(wrapped, held);
                        applyLoftq(*wrapped, r);
                    }
                } else {
                    c10::NoGradGuard noGrad;
                    const at::Tensor w = fp32Weight(d);
                    e.weightNormSq = normSq(w);
                    e.loraInitError = relativeError(w - fp32Weight(*held), e.weightNormSq);
                }
                report.entries.push_back(std::move(e));
                qpruner::report(progress, "lora-init", int64_t(report.entries.size()), total, slotText(l, m));
            }
    } catch (...) {
        // A cancel, or an unexpected failure (memory, a failed SVD): the model is left as it was (the held bases
        // back, the adapters removed).
        for (auto& [wrapped, base] : replaced)
            wrapped->setBase(base);
        detachLora(model);
        throw;
    }

    report.layerLoraInitError.assign(model.layers.size(), 0.0);
    report.layerLoftqErrors.assign(model.layers.size(), {});
    for (size_t l = 0; l < model.layers.size(); ++l) {
        std::vector<const InitReport::Entry*> mine;
        for (const auto& e : report.entries)
            if (e.layer == static_cast<int>(l))
                mine.push_back(&e);
        aggregate(mine, report.layerLoraInitError[l], report.layerLoftqErrors[l]);
    }
    return prepared;
}

} // namespace qpruner::finetune
