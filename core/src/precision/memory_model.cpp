// The exact stored-bytes model of a model under a precision map (see memory_model.h for the tensor list).
#include "qpruner/memory_model.h"

namespace qpruner {

namespace {

double bitsPerWeight(int64_t bytes, int64_t params) { return params > 0 ? 8.0 * double(bytes) / double(params) : 0; }

class Accountant {
public:
    explicit Accountant(MemoryReport& report) : report_(report) {}

    // Appends the tensors of a [rows, cols] weight stored in `spec` under "<prefix>.<suffix>"; returns bytes.
    int64_t weight(const std::string& prefix, int layer, const QuantSpec& spec, int64_t rows, int64_t cols)
    {
        int64_t bytes = 0;
        for (const StoredTensor& t : storedTensors(spec, rows, cols))
            bytes += add(prefix + "." + t.suffix, layer, spec, t);
        return bytes;
    }

    // A one-dimensional dense tensor (norm weight or bias) of `n` elements in `spec`.
    int64_t vector(const std::string& name, int layer, const QuantSpec& spec, int64_t n)
    {
        StoredTensor t = storedTensors(spec, 1, n).front(); // dense: a single [1, n] tensor
        t.shape = {n};
        return add(name, layer, spec, t);
    }

private:
    int64_t add(const std::string& name, int layer, const QuantSpec& spec, const StoredTensor& t)
    {
        report_.tensors.push_back({name, layer, spec, t.dtype, t.shape, t.bytes()});
        return t.bytes();
    }

    MemoryReport& report_;
};

} // namespace

MemoryReport memoryReport(const ModelConfig& config, const PrecisionMap& map)
{
    config.validate();
    const ResolvedPrecision r = map.resolve(config);
    const QuantSpec fp32{QuantKind::F32, 0, false};
    const int64_t d = config.hiddenSize, vocab = config.vocabSize;

    MemoryReport rep;
    Accountant acc(rep);
    rep.embeddingBytes = acc.weight("model.embed_tokens", -1, r.embedding, vocab, d);
    rep.parameters = vocab * d;
    for (int l = 0; l < config.numLayers(); ++l) {
        LayerMemory lm;
        lm.layer = l;
        lm.specs = r.layers[static_cast<size_t>(l)];
        const std::string prefix = "model.layers." + std::to_string(l) + ".";
        lm.normBytes += acc.vector(prefix + "input_layernorm.weight", l, fp32, d);
        for (const LinearModule m : kLinearModules) {
            const QuantSpec& spec = lm.specs[static_cast<size_t>(m)];
            const LinearShape s = linearShape(config, l, m);
            const std::string module = prefix + linearModuleHfPath(m);
            lm.moduleBytes[static_cast<size_t>(m)] = acc.weight(module, l, spec, s.rows, s.cols);
            lm.linearParameters += s.rows * s.cols;
            const bool hasBias =
                config.attentionBias && (m == LinearModule::Q || m == LinearModule::K || m == LinearModule::V);
            if (hasBias) {
                lm.biasBytes += acc.vector(module + ".bias", l, biasSpec(spec), s.rows);
                lm.parameters += s.rows;
            }
            if (m == LinearModule::O) // the FFN norm sits between the attention and MLP blocks
                lm.normBytes += acc.vector(prefix + "post_attention_layernorm.weight", l, fp32, d);
        }
        int64_t normParameters = 2 * d;
        if (config.sandwichNorms) { // Gemma: the MLP's input norm and the norm after it
            lm.normBytes += acc.vector(prefix + "pre_feedforward_layernorm.weight", l, fp32, d);
            lm.normBytes += acc.vector(prefix + "post_feedforward_layernorm.weight", l, fp32, d);
            normParameters += 2 * d;
        }
        if (config.qkNorm) { // one [head_dim] weight each, shared by the heads
            lm.normBytes += acc.vector(prefix + "self_attn.q_norm.weight", l, fp32, config.headDim);
            lm.normBytes += acc.vector(prefix + "self_attn.k_norm.weight", l, fp32, config.headDim);
            normParameters += 2 * config.headDim;
        }
        for (const int64_t b : lm.moduleBytes)
            lm.linearBytes += b;
        lm.parameters += lm.linearParameters + normParameters;
        lm.bytes = lm.linearBytes + lm.biasBytes + lm.normBytes;
        lm.linearBitsPerWeight = bitsPerWeight(lm.linearBytes, lm.linearParameters);
        rep.linearBytes += lm.linearBytes;
        rep.biasBytes += lm.biasBytes;
        rep.normBytes += lm.normBytes;
        rep.linearParameters += lm.linearParameters;
        rep.parameters += lm.parameters;
        rep.layers.push_back(lm);
    }
    rep.normBytes += acc.vector("model.norm.weight", -1, fp32, d);
    rep.parameters += d;
    if (!config.tiedEmbeddings) {
        rep.lmHeadBytes = acc.weight("lm_head", -1, r.lmHead, vocab, d);
        rep.parameters += vocab * d;
    }
    rep.totalBytes = rep.embeddingBytes + rep.linearBytes + rep.biasBytes + rep.normBytes + rep.lmHeadBytes;
    rep.linearBitsPerWeight = bitsPerWeight(rep.linearBytes, rep.linearParameters);
    rep.bitsPerWeight = bitsPerWeight(rep.totalBytes, rep.parameters);
    return rep;
}

nlohmann::ordered_json MemoryReport::toJson() const
{
    nlohmann::ordered_json j;
    j["total_bytes"] = totalBytes;
    j["embedding_bytes"] = embeddingBytes;
    j["lm_head_bytes"] = lmHeadBytes;
    j["norm_bytes"] = normBytes;
    j["bias_bytes"] = biasBytes;
    j["linear_bytes"] = linearBytes;
    j["parameters"] = parameters;
    j["linear_parameters"] = linearParameters;
    j["linear_bits_per_weight"] = linearBitsPerWeight;
    j["bits_per_weight"] = bitsPerWeight;
    j["layers"] = nlohmann::ordered_json::array();
    for (const LayerMemory& l : layers) {
        nlohmann::ordered_json formats, moduleBytes;
        for (const LinearModule m : kLinearModules) {
            formats[linearModuleName(m)] = l.specs[static_cast<size_t>(m)].name();
            moduleBytes[linearModuleName(m)] = l.moduleBytes[static_cast<size_t>(m)];
        }
        j["layers"].push_back({{"layer", l.layer},
                               {"formats", formats},
                               {"module_bytes", moduleBytes},
                               {"linear_parameters", l.linearParameters},
                               {"linear_bytes", l.linearBytes},
                               {"bias_bytes", l.biasBytes},
                               {"norm_bytes", l.normBytes},
                               {"parameters", l.parameters},
                               {"bytes", l.bytes},
                               {"linear_bits_per_weight", l.linearBitsPerWeight}});
    }
    j["tensors"] = nlohmann::ordered_json::array();
    for (const TensorMemory& t : tensors)
        j["tensors"].push_back(
            {{"name", t.name}, {"format", t.spec.name()}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
    return j;
}

} // namespace qpruner
