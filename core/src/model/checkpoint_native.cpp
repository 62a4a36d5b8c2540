// The native format writer: an HF-style directory (config.json with per-layer shapes under "qpruner",
// model.safetensors with LlamaForCausalLM names, rotate-half RoPE layout), built in a staging directory and
// swapped in only when complete.
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
    for (int l = 0; l < c.numLayers(); ++l) {
        const DecoderLayer& L = model.layers[static_cast<size_t>(l)];
        put(layerTensorName(l, "input_layernorm.weight"), L.attnNorm);
        put(layerTensorName(l, "post_attention_layernorm.weight"), L.ffnNorm);
        for (const LinearModule m : kLinearModules)
            putLinear(layerTensorName(l, linearModuleHfPath(m)), *layerLinear(L, m));
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
