// The native format writer: an HF-style directory (config.json with per-layer shapes under "qpruner",
// model.safetensors with the family's transformers names, rotate-half RoPE layout), built in a staging directory
// and swapped in only when complete. Phi-3's q/k/v and gate/up are fused back into qkv_proj / gate_up_proj when
// they are dense in one dtype (as transformers reads them), else kept apart (a quantized map's per-module formats).
#include <map>

#include "config/config_json.h"
#include "io/atomic_output.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/safetensors_file.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"

namespace qpruner::model {

void saveNativeModel(const LlamaModel& model, const std::filesystem::path& dir, const nlohmann::json& extra)
{
    io::StagedDirectory staged(dir);
    writeNativeModelFiles(model, staged.path(), extra);
    staged.commit();
}

void writeNativeModelFiles(const LlamaModel& model, const std::filesystem::path& dir, const nlohmann::json& extra)
{
    const ModelConfig& c = model.config();
    std::map<std::string, at::Tensor> tensors;
    auto put = [&](const std::string& name, const at::Tensor& t) { tensors[name] = t; };
    // Dense layers store "<prefix>.weight"; quantized ones their packed parts "<prefix>.<suffix>".
    auto putLinear = [&](const std::string& prefix, const Linear& lin) {
        if (const auto* q = dynamic_cast<const quant::QuantLinear*>(&lin)) {
            for (const auto& [suffix, t] : q->quantized().parts)
                put(prefix + "." + suffix, t);
        } else if (dynamic_cast<const DenseLinear*>(&lin)) {
            put(prefix + ".weight", lin.denseWeight());
        } else {
            throw ConfigError("saveNativeModel: " + prefix + " is a " + lin.formatName() +
                              " layer, which has no stored form (merge or remove adapters first)");
        }
        if (auto b = lin.bias())
            put(prefix + ".bias", *b);
    };
    put("model.embed_tokens.weight", model.embedding);
    put("model.norm.weight", model.finalNorm);
    const auto norms = layerNormSlots(c);
    auto denseIn = [](const Linear& lin, at::ScalarType dt) {
        return dynamic_cast<const DenseLinear*>(&lin) && !lin.bias() && lin.denseWeight().scalar_type() == dt;
    };
    bool fuse = c.architecture == "phi3";
    for (const DecoderLayer& L : model.layers)
        for (const LinearModule m : kLinearModules)
            fuse = fuse && denseIn(*layerLinear(L, m), model.weightDtype());
    for (int l = 0; l < c.numLayers(); ++l) {
        const DecoderLayer& L = model.layers[static_cast<size_t>(l)];
        for (const LayerNormSlot& slot : norms)
            put(layerTensorName(l, slot.hfName), L.*slot.member);
        for (const LinearModule m : kLinearModules) {
            if (fuse && (m == LinearModule::Q || m == LinearModule::K || m == LinearModule::Gate))
                continue;
            if (fuse && m == LinearModule::V) {
                put(layerTensorName(l, "self_attn.qkv_proj.weight"),
                    at::cat({L.q->denseWeight(), L.k->denseWeight(), L.v->denseWeight()}, 0));
            } else if (fuse && m == LinearModule::Up) {
                put(layerTensorName(l, "mlp.gate_up_proj.weight"),
                    at::cat({L.gate->denseWeight(), L.up->denseWeight()}, 0));
            } else {
                putLinear(layerTensorName(l, linearModuleHfPath(m)), *layerLinear(L, m));
            }
        }
    }
    if (!c.tiedEmbeddings)
        putLinear("lm_head", *model.lmHead);

    auto cfg = config::toNativeConfigJson(c, dtypeName(model.weightDtype()));
    for (auto it = extra.begin(); it != extra.end(); ++it)
        cfg["qpruner"][it.key()] = it.value();
    // Any weight held in another format than the embedding's dtype: record every format as a precision map.
    const ResolvedPrecision held = quant::heldPrecision(model);
    bool uniform = held.lmHead == held.embedding;
    for (const auto& layer : held.layers)
        for (const auto& spec : layer)
            uniform = uniform && spec == held.embedding;
    if (!uniform)
        cfg["qpruner"]["precision_map"] = PrecisionMap::fromResolved(held).toJson();

    writeSafetensorsFile(dir / "model.safetensors", tensors);
    io::writeFileAtomic(dir / "config.json", cfg.dump(2) + "\n");
}

} // namespace qpruner::model
