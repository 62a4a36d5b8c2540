#include "quant/model_quantizer.h"

#include "model/dtype.h"
#include "quant/quant_linear.h"
#include "qpruner/error.h"

namespace qpruner::quant {

at::ScalarType denseDtype(const QuantSpec& spec)
{
    switch (spec.kind) {
    case QuantKind::F32: return at::kFloat;
    case QuantKind::BF16: return at::kBFloat16;
    case QuantKind::F16: return at::kHalf;
    default: throw ConfigError("format " + spec.name() + " is not a dense dtype");
    }
}

QuantSpec heldSpec(const model::Linear& linear)
{
    if (const auto* q = dynamic_cast<const QuantLinear*>(&linear))
        return q->quantized().spec;
    return parseQuantSpec(model::dtypeName(linear.denseWeight().scalar_type()));
}

model::LinearPtr convertLinear(const model::Linear& src, const QuantSpec& spec)
{
    model::LinearPtr out = quantizeLinear(src, spec);
    const auto bias = src.bias();
    if (!bias)
        return out;
    const at::ScalarType want = denseDtype(biasSpec(spec));
    if (bias->scalar_type() == want)
        return out;
    if (auto* q = dynamic_cast<QuantLinear*>(out.get()))
        return std::make_shared<QuantLinear>(q->quantized(), bias->to(want));
    return std::make_shared<model::DenseLinear>(out->denseWeight(), bias->to(want));
}

void quantizeModel(model::LlamaModel& model, const PrecisionMap& map, const ProgressSink& progress,
                   const CancelToken* cancel)
{
    const ModelConfig& cfg = model.config();
    const ResolvedPrecision r = map.resolve(cfg);
    for (size_t l = 0; l < model.layers.size(); ++l) {
        auto& L = model.layers[l];
        for (model::LinearPtr* p : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
            if (dynamic_cast<QuantLinear*>(p->get()))
                throw ConfigError("quantize: layer " + std::to_string(l) +
                                  " is already quantized; start from a dense checkpoint");
    }
    const int n = cfg.numLayers();
    for (int l = 0; l < n; ++l) {
        if (cancel)
            cancel->throwIfCancelled();
        auto& L = model.layers[size_t(l)];
        model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        for (size_t m = 0; m < kLinearModuleCount; ++m)
            *lins[m] = convertLinear(**lins[m], r.layers[size_t(l)][m]);
        report(progress, "quantize", l + 1, n, "layers");
    }
    const at::ScalarType emb = denseDtype(r.embedding);
    model.embedding = model.embedding.to(emb);
    if (cfg.tiedEmbeddings)
        model.lmHead = std::make_shared<model::DenseLinear>(model.embedding);
    else
        model.lmHead = convertLinear(*model.lmHead, r.lmHead);
    model.setWeightDtype(emb);
}

ResolvedPrecision heldPrecision(const model::LlamaModel& model)
{
    ResolvedPrecision r;
    for (const auto& L : model.layers) {
        const model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        LayerSpecs specs;
        for (size_t m = 0; m < kLinearModuleCount; ++m)
            specs[m] = heldSpec(**lins[m]);
        r.layers.push_back(specs);
    }
    r.embedding = parseQuantSpec(model::dtypeName(model.embedding.scalar_type()));
    r.lmHead = model.config().tiedEmbeddings ? r.embedding : heldSpec(*model.lmHead);
    return r;
}

} // namespace qpruner::quant
