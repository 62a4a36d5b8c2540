// The native format writer: an HF-style directory (config.json with per-layer shapes under "qpruner",
// model.safetensors with LlamaForCausalLM names, rotate-half RoPE layout), built in a staging directory and
// swapped in only when complete.
#include <fstream>
#include <map>

#include "config/config_json.h"
#include "io/atomic_output.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"

namespace qpruner::model {

void saveNativeModel(const LlamaModel& model, const std::filesystem::path& dir, const nlohmann::json& extra)
{
    const ModelConfig& c = model.config();
    std::map<std::string, at::Tensor> tensors;
    auto put = [&](const std::string& name, const at::Tensor& t) {
        tensors[name] = t.detach().to(at::kCPU).contiguous();
    };
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
        const std::pair<const char*, const LinearPtr*> parts[] = {
            {"self_attn.q_proj", &L.q}, {"self_attn.k_proj", &L.k},  {"self_attn.v_proj", &L.v},
            {"self_attn.o_proj", &L.o}, {"mlp.gate_proj", &L.gate}, {"mlp.up_proj", &L.up},
            {"mlp.down_proj", &L.down}};
        for (const auto& [part, lin] : parts)
            putLinear(layerTensorName(l, part), **lin);
    }
    if (!c.tiedEmbeddings)
        putLinear("lm_head", *model.lmHead);

    std::map<std::string, io::SafetensorsEntry> entries;
    for (const auto& [name, t] : tensors)
        entries[name] = io::SafetensorsEntry{safetensorsDtype(t.scalar_type()),
                                             std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), 0, 0};
    const std::string header = io::buildSafetensorsHeader(entries, {{"format", "pt"}});

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

    io::StagedDirectory staged(dir);
    {
        const auto path = staged.path() / "model.safetensors";
        std::ofstream out(path, std::ios::binary);
        if (!out)
            throw FileError(path.string() + ": cannot create");
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (const auto& [name, t] : tensors) // map order == header order
            out.write(static_cast<const char*>(t.data_ptr()),
                      static_cast<std::streamsize>(t.numel() * static_cast<int64_t>(t.element_size())));
        out.flush();
        if (!out)
            throw FileError(path.string() + ": write failed (disk full?)");
    }
    io::writeFileAtomic(staged.path() / "config.json", cfg.dump(2) + "\n");
    staged.commit();
}

} // namespace qpruner::model
