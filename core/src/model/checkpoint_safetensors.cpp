// Hugging Face and native model directories: config.json plus model.safetensors or a sharded
// model.safetensors.index.json. Tensors are read through private memory maps; names are transformers' for the
// family (LlamaForCausalLM's, plus the extra norms of Qwen3 and Gemma 3; Phi-3's fused qkv_proj and gate_up_proj
// are split into their row blocks here).
#include <map>
#include <set>

#include "config/config_json.h"
#include "export/gguf_model_config.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "io/safetensors_header.h"
#include "io/safetensors_index.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/mapped_tensor.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"

namespace qpruner::model {

std::string layerTensorName(int layer, const std::string& part)
{
    return "model.layers." + std::to_string(layer) + "." + part;
}

namespace {

struct TensorLocation {
    std::shared_ptr<io::MappedFile> file;
    uint64_t dataStart = 0;
    io::SafetensorsEntry entry;
};

class SafetensorsSet {
public:
    explicit SafetensorsSet(const std::filesystem::path& dir)
    {
        const io::SafetensorsShards shards = io::findSafetensorsShards(dir);
        for (const auto& f : shards.files) {
            std::error_code ec;
            if (!std::filesystem::exists(f, ec))
                throw FileError(f.string() + ": shard listed in the index is missing");
            auto mapped = io::MappedFile::open(f);
            const auto h = io::parseSafetensorsHeader(mapped->data(), mapped->size(), mapped->size(), f);
            for (const auto& [name, e] : h.tensors)
                tensors_[name] = TensorLocation{mapped, h.dataStart, e};
        }
        for (const auto& [name, shard] : shards.weightMap)
            if (auto it = tensors_.find(name); it == tensors_.end() || it->second.file->path().filename() != shard)
                throw FormatError(shards.indexFile.string() + ": tensor '" + name + "' is not in shard " + shard);
    }

    bool has(const std::string& name) const { return tensors_.count(name) != 0; }

    const TensorLocation& at(const std::string& name) const
    {
        auto it = tensors_.find(name);
        if (it == tensors_.end())
            throw FormatError("missing tensor '" + name + "'");
        return it->second;
    }

    std::string fileOf(const std::string& name) const { return at(name).file->path().string(); }

    // The tensor, checked against `shape`, converted to `dtype` on `device`.
    at::Tensor load(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype,
                    const at::Device& device) const
    {
        auto it = tensors_.find(name);
        if (it == tensors_.end())
            throw FormatError(dir_.string() + ": missing tensor '" + name + "'");
        const TensorLocation& loc = it->second;
        if (loc.entry.shape != shape) {
            auto str = [](const std::vector<int64_t>& s) {
                std::string r = "[";
                for (size_t i = 0; i < s.size(); ++i)
                    r += (i ? ", " : "") + std::to_string(s[i]);
                return r + "]";
            };
            throw FormatError(loc.file->path().string() + ": tensor '" + name + "' has shape " +
                              str(loc.entry.shape) + ", the config needs " + str(shape));
        }
        at::ScalarType stored;
        try {
            stored = fromSafetensorsDtype(loc.entry.dtype);
        } catch (const FormatError&) {
            throw FormatError(loc.file->path().string() + ": tensor '" + name + "' has unsupported dtype '" +
                              loc.entry.dtype + "' (expected F32, F16 or BF16)");
        }
        if (stored != at::kFloat && stored != at::kHalf && stored != at::kBFloat16)
            throw FormatError(loc.file->path().string() + ": tensor '" + name + "' has unsupported dtype '" +
                              loc.entry.dtype + "' (expected F32, F16 or BF16)");
        const auto t = mappedTensor(loc.file, loc.dataStart + loc.entry.begin, shape, stored);
        return t.to(device, dtype);
    }

    // The tensor as stored (any dtype, its own shape), viewing the mapped file.
    at::Tensor loadStored(const std::string& name) const
    {
        auto it = tensors_.find(name);
        if (it == tensors_.end())
            throw FormatError(dir_.string() + ": missing tensor '" + name + "'");
        const TensorLocation& loc = it->second;
        at::ScalarType stored;
        try {
            stored = fromSafetensorsDtype(loc.entry.dtype);
        } catch (const FormatError&) {
            throw FormatError(loc.file->path().string() + ": tensor '" + name + "' has unsupported dtype '" +
                              loc.entry.dtype + "'");
        }
        return mappedTensor(loc.file, loc.dataStart + loc.entry.begin, loc.entry.shape, stored);
    }

    at::ScalarType storedDtype(const std::string& name) const
    {
        return fromSafetensorsDtype(at(name).entry.dtype);
    }

    std::filesystem::path dir_;

private:
    std::map<std::string, TensorLocation> tensors_;
};

// One linear: "<prefix>.weight" in `dtype` when dense, or the packed parts "<prefix>.<suffix>" of its format
// (kept as stored, viewing the file) when the precision map quantizes it. Biases follow biasSpec().
LinearPtr loadLinear(const SafetensorsSet& st, const std::string& prefix, const std::vector<int64_t>& shape,
                     bool bias, const QuantSpec* spec, const LoadOptions& options, at::ScalarType dtype)
{
    const at::Device dev = options.device;
    if (!spec || !spec->isQuantized()) {
        const at::ScalarType wd = (spec && !options.dtype) ? quant::denseDtype(*spec) : dtype;
        std::optional<at::Tensor> b;
        if (bias)
            b = st.load(prefix + ".bias", {shape[0]}, wd, dev);
        return std::make_shared<DenseLinear>(st.load(prefix + ".weight", shape, wd, dev), b);
    }
    quant::QuantizedTensor q;
    q.spec = *spec;
    q.rows = shape[0];
    q.cols = shape[1];
    for (const auto& t : storedTensors(*spec, q.rows, q.cols))
        q.parts[t.suffix] = st.loadStored(prefix + "." + t.suffix);
    try {
        quant::validateQuantizedTensor(q, prefix);
    } catch (const FormatError& e) {
        throw FormatError(st.fileOf(prefix + "." + storedTensors(*spec, q.rows, q.cols)[0].suffix) + ": " + e.what());
    }
    std::optional<at::Tensor> b;
    if (bias)
        b = st.load(prefix + ".bias", {shape[0]}, quant::denseDtype(biasSpec(*spec)), dev);
    return std::make_shared<quant::QuantLinear>(q.to(dev), b);
}

} // namespace

std::unique_ptr<LlamaModel> loadSafetensorsDir(const std::filesystem::path& dir, const LoadOptions& options)
{
    const auto cfgPath = dir / "config.json";
    const auto cfgJson = io::readJsonFile(cfgPath);
    const ModelConfig c = config::fromConfigJson(cfgJson, cfgPath);
    // A quantized native checkpoint records the format of every weight as a precision map.
    std::optional<ResolvedPrecision> precision;
    if (cfgJson.contains("qpruner") && cfgJson["qpruner"].is_object() && cfgJson["qpruner"].contains("precision_map")) {
        try {
            precision = PrecisionMap::fromJson(cfgJson["qpruner"]["precision_map"]).resolve(c);
        } catch (const ConfigError& e) {
            throw FormatError(cfgPath.string() + ": qpruner.precision_map: " + e.what());
        }
    }
    SafetensorsSet st(dir);
    st.dir_ = dir;
    const std::string embName = "model.embed_tokens.weight";
    if (!st.has(embName))
        throw FormatError(dir.string() + ": missing tensor '" + embName + "'");
    at::ScalarType dtype;
    if (options.dtype) {
        dtype = *options.dtype;
    } else {
        dtype = st.storedDtype(embName);
        if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
            dtype = at::kFloat;
    }
    const at::Device dev = options.device;
    auto model = std::make_unique<LlamaModel>(c, dtype, dev);
    const int64_t D = c.hiddenSize, V = c.vocabSize, hd = c.headDim;
    model->embedding = st.load(embName, {V, D}, dtype, dev);
    model->finalNorm = st.load("model.norm.weight", {D}, at::kFloat, dev);
    model->layers.resize(c.layers.size());
    const auto norms = layerNormSlots(c);
    // Phi-3 files written by us for a quantized model keep q/k/v and gate/up apart (fused tensors cannot hold
    // per-module formats): read them like any other family's.
    const bool fused = c.architecture == "phi3" && st.has(layerTensorName(0, "self_attn.qkv_proj.weight"));
    for (int l = 0; l < c.numLayers(); ++l) {
        const LayerShape& s = c.layers[static_cast<size_t>(l)];
        const int64_t q = s.numHeads * hd, kv = s.numKvHeads * hd, F = s.ffnDim;
        auto n = [&](const std::string& part) { return layerTensorName(l, part); };
        auto lin = [&](const std::string& part, std::vector<int64_t> shape, bool bias, LinearModule m) {
            return loadLinear(st, n(part), shape, bias, precision ? &precision->layers[size_t(l)][size_t(m)] : nullptr,
                              options, dtype);
        };
        DecoderLayer& L = model->layers[static_cast<size_t>(l)];
        for (const LayerNormSlot& slot : norms)
            L.*slot.member = st.load(n(slot.hfName), {slot.perHead ? hd : D}, at::kFloat, dev);
        if (fused) {
            // Fused in the file: qkv_proj = [q; k; v] rows, gate_up_proj = [gate; up] rows.
            if (precision)
                throw FormatError(dir.string() + ": a quantized Phi-3 checkpoint must store q/k/v and gate/up "
                                                 "separately (this one is fused)");
            const at::Tensor qkv = st.load(n("self_attn.qkv_proj.weight"), {q + 2 * kv, D}, dtype, dev);
            const at::Tensor gateUp = st.load(n("mlp.gate_up_proj.weight"), {2 * F, D}, dtype, dev);
            setFusedProjections(L, qkv, gateUp, q, kv, F);
        } else {
            L.q = lin("self_attn.q_proj", {q, D}, c.attentionBias, LinearModule::Q);
            L.k = lin("self_attn.k_proj", {kv, D}, c.attentionBias, LinearModule::K);
            L.v = lin("self_attn.v_proj", {kv, D}, c.attentionBias, LinearModule::V);
            L.gate = lin("mlp.gate_proj", {F, D}, false, LinearModule::Gate);
            L.up = lin("mlp.up_proj", {F, D}, false, LinearModule::Up);
        }
        L.o = lin("self_attn.o_proj", {D, q}, false, LinearModule::O);
        L.down = lin("mlp.down_proj", {D, F}, false, LinearModule::Down);
    }
    if (c.tiedEmbeddings)
        model->lmHead = std::make_shared<DenseLinear>(model->embedding);
    else
        model->lmHead = loadLinear(st, "lm_head", {V, D}, false, precision ? &precision->lmHead : nullptr, options, dtype);
    return model;
}

std::unique_ptr<LlamaModel> loadModel(const std::filesystem::path& path, const LoadOptions& options)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError(path.string() + ": not found");
    if (std::filesystem::is_directory(path, ec))
        return loadSafetensorsDir(path, options);
    if (gguf::isGgufFile(path))
        return loadGguf(path, options);
    return loadLlama2c(path, options);
}

} // namespace qpruner::model
