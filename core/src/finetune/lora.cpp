// LoraLinear, the frozen base's backward node, attachLora / detachLora.
//
// The base's backward is a hand-written autograd Node rather than a torch::autograd::Function: the node must own
// the base layer (a shared_ptr, no tensors) so the graph stays valid however long it lives, and a Function's
// context can only hold tensors and IValues. The autograd headers are needed here only.
#include "finetune/lora.h"

#include <algorithm>
#include <cmath>

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include "model/dtype.h"
#include "qpruner/error.h"
#include "quant/quant_linear.h"

namespace qpruner::finetune {

namespace {

// dL/dx of y = base(x) from dL/dy, computed by linearInputGradient; holds the layer, not its weight.
class FrozenLinearBackward final : public torch::autograd::Node {
public:
    FrozenLinearBackward(model::LinearPtr layer, torch::autograd::edge_list&& next)
        : Node(std::move(next)), layer_(std::move(layer))
    {
    }
    torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override
    {
        if (!grads[0].defined())
            return {at::Tensor()};
        return {linearInputGradient(*layer_, grads[0])};
    }
    std::string name() const override { return "LoraFrozenBaseBackward"; }

private:
    model::LinearPtr layer_;
};

// base(x) with no autograd inside; its gradient edge goes to a FrozenLinearBackward.
at::Tensor frozenForward(const model::LinearPtr& base, const at::Tensor& x)
{
    at::Tensor y;
    {
        c10::NoGradGuard noGrad;
        y = base->forward(x);
    }
    auto out = torch::autograd::wrap_outputs({x}, {std::move(y)}, [&](torch::autograd::edge_list&& next) {
        return std::shared_ptr<torch::autograd::Node>(new FrozenLinearBackward(base, std::move(next)),
                                                      torch::autograd::deleteNode);
    });
    return out[0];
}

[[noreturn]] void fail(const std::string& what) { throw ConfigError("LoRA: " + what); }

at::ScalarType adapterScalarType(const QuantSpec& spec)
{
    switch (spec.kind) {
    case QuantKind::F32: return at::kFloat;
    case QuantKind::BF16: return at::kBFloat16;
    case QuantKind::F16: return at::kHalf;
    default: fail("adapter dtype must be fp32, bf16 or fp16, got " + spec.name());
    }
}

// A well-mixed stream seed per wrapped layer (splitmix64 of the user's seed and the layer's index).
uint64_t layerSeed(uint64_t seed, uint64_t index)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

} // namespace

at::Tensor linearInputGradient(const model::Linear& layer, const at::Tensor& gradOut)
{
    const auto outDtype = gradOut.scalar_type();
    const auto dt = model::computeDtypeFor(outDtype, gradOut.device());
    const at::Tensor g = gradOut.to(dt);
    if (const auto* q = dynamic_cast<const quant::QuantLinear*>(&layer)) {
        const quant::QuantizedTensor& w = q->quantized();
        const int64_t step = q->chunkRows(dt);
        if (step >= w.rows)
            return at::matmul(g, quant::dequantize(w, dt)).to(outDtype);
        // The contraction runs over the output rows, so the blocks' products add up; fp32 keeps that sum from
        // rounding once per block.
        at::Tensor acc;
        for (int64_t r0 = 0; r0 < w.rows; r0 += step) {
            const int64_t n = std::min(step, w.rows - r0);
            const at::Tensor part = at::matmul(g.narrow(-1, r0, n), quant::dequantizeRows(w, r0, r0 + n, dt));
            if (acc.defined())
                acc.add_(part);
            else
                acc = part.to(at::kFloat);
        }
        return acc.to(outDtype);
    }
    const at::Tensor w = layer.denseWeight();
    return at::matmul(g, w.scalar_type() == dt ? w : w.to(dt)).to(outDtype);
}

LoraLinear::LoraLinear(model::LinearPtr base, const Options& o)
    : base_(std::move(base)),
      rank_(o.rank),
      scale_(o.alpha / o.rank),
      dropout_(o.dropout),
      recomputeBaseGradient_(o.recomputeBaseGradient)
{
    if (!base_)
        fail("no base layer to wrap");
    if (dynamic_cast<const LoraLinear*>(base_.get()))
        fail("the base layer already is a LoRA layer (" + base_->formatName() + ")");
    if (o.rank < 1)
        fail("rank must be at least 1, got " + std::to_string(o.rank));
    if (!(o.alpha > 0.0 && std::isfinite(o.alpha)))
        fail("alpha must be positive, got " + std::to_string(o.alpha));
    if (!(o.dropout >= 0.0 && o.dropout < 1.0))
        fail("dropout must be in [0, 1), got " + std::to_string(o.dropout));
    if (!at::isFloatingType(o.adapterDtype))
        fail(std::string("adapter dtype must be floating point, got ") + c10::toString(o.adapterDtype));

    const int64_t in = base_->inFeatures(), out = base_->outFeatures();
    // The base's weight storage tells its device; a quantized layer's denseWeight() would dequantize it all.
    const at::Device device = [&] {
        if (const auto* q = dynamic_cast<const quant::QuantLinear*>(base_.get()))
            return q->quantized().device();
        return base_->denseWeight().device();
    }();
    auto gen = at::detail::createCPUGenerator(o.seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    c10::NoGradGuard noGrad;
    a_ = at::empty({o.rank, in}, at::TensorOptions().dtype(at::kFloat))
             .uniform_(-bound, bound, gen)
             .to(device, o.adapterDtype)
             .requires_grad_(true);
    b_ = at::zeros({out, o.rank}, at::TensorOptions().dtype(o.adapterDtype).device(device)).requires_grad_(true);
    if (dropout_ > 0.0) {
        dropoutGenerator_ = at::globalContext().defaultGenerator(device).clone();
        dropoutGenerator_.set_current_seed(layerSeed(o.seed, 0));
    }
}

at::Tensor LoraLinear::forward(const at::Tensor& x) const
{
    const bool training = c10::GradMode::is_enabled();
    const at::Tensor y =
        recomputeBaseGradient_ && training && x.requires_grad() ? frozenForward(base_, x) : base_->forward(x);
    const auto dt = model::computeDtypeFor(x.scalar_type(), x.device());
    at::Tensor h = x.to(dt);
    double scale = scale_;
    if (dropout_ > 0.0 && training) {
        // A bool keep-mask (what autograd saves for dL/dx) and the 1/(1-p) rescaling folded into the scale.
        h = h * at::empty(h.sizes(), h.options().dtype(at::kBool)).bernoulli_(1.0 - dropout_, dropoutGenerator_);
        scale /= 1.0 - dropout_;
    }
    const auto cast = [&](const at::Tensor& t) { return t.scalar_type() == dt ? t : t.to(dt); };
    const at::Tensor delta = at::linear(at::linear(h, cast(a_)), cast(b_));
    return y.add(delta.to(y.scalar_type()), scale);
}

at::Tensor LoraLinear::denseWeight() const
{
    c10::NoGradGuard noGrad;
    const at::Tensor w = base_->denseWeight();
    const at::Tensor delta = at::mm(b_.detach().to(at::kFloat), a_.detach().to(at::kFloat)) * scale_;
    return (w.to(at::kFloat) + delta.to(w.device())).to(w.scalar_type());
}

int64_t LoraLinear::storageBytes() const
{
    const auto bytes = [](const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); };
    return base_->storageBytes() + bytes(a_) + bytes(b_);
}

void LoraLinear::setBase(model::LinearPtr base)
{
    if (!base)
        fail("setBase: no base layer");
    if (dynamic_cast<const LoraLinear*>(base.get()))
        fail("setBase: the new base already is a LoRA layer (" + base->formatName() + ")");
    if (base->inFeatures() != base_->inFeatures() || base->outFeatures() != base_->outFeatures())
        fail("setBase: the new base is [" + std::to_string(base->outFeatures()) + ", " +
             std::to_string(base->inFeatures()) + "], the adapter's layer [" + std::to_string(base_->outFeatures()) +
             ", " + std::to_string(base_->inFeatures()) + "]");
    base_ = std::move(base);
}

void LoraLinear::setDropoutSeed(uint64_t seed)
{
    if (dropoutGenerator_.defined())
        dropoutGenerator_.set_current_seed(seed);
}

std::string LoraLinear::formatName() const { return base_->formatName() + "+lora" + std::to_string(rank_); }

std::vector<at::Tensor> attachLora(model::LlamaModel& model, const FinetuneSettings& settings,
                                   const LoraOptions& options)
{
    const std::vector<LinearModule> targets = parseLoraTargets(settings.targets);
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (const LinearModule m : kLinearModules)
            if (dynamic_cast<const LoraLinear*>(model::layerLinear(model.layers[l], m).get()))
                fail("the model already has LoRA layers (layer " + std::to_string(l) + " " + linearModuleName(m) +
                     "); detach them first");

    LoraLinear::Options o;
    o.rank = settings.rank;
    o.alpha = options.alpha;
    o.dropout = settings.dropout;
    o.adapterDtype = adapterScalarType(settings.adapterDtype);
    o.recomputeBaseGradient = options.recomputeBaseGradient;

    // Build every wrapper first (each constructor validates), then swap them in: a bad setting changes nothing.
    std::vector<std::shared_ptr<LoraLinear>> wrapped;
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (const LinearModule m : targets) {
            o.seed = layerSeed(options.seed, l * kLinearModuleCount + static_cast<size_t>(m));
            wrapped.push_back(std::make_shared<LoraLinear>(model::layerLinear(model.layers[l], m), o));
        }
    std::vector<at::Tensor> params;
    params.reserve(2 * wrapped.size());
    size_t i = 0;
    for (auto& layer : model.layers)
        for (const LinearModule m : targets) {
            params.push_back(wrapped[i]->loraA());
            params.push_back(wrapped[i]->loraB());
            model::layerLinear(layer, m) = std::move(wrapped[i++]);
        }
    return params;
}

int detachLora(model::LlamaModel& model)
{
    int n = 0;
    for (auto& layer : model.layers)
        for (const LinearModule m : kLinearModules) {
            model::LinearPtr& slot = model::layerLinear(layer, m);
            if (const auto* lora = dynamic_cast<const LoraLinear*>(slot.get())) {
                model::LinearPtr base = lora->base();
                slot = std::move(base); // releases the wrapper
                ++n;
            }
        }
    return n;
}

} // namespace qpruner::finetune
