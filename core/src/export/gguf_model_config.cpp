// Model configuration <-> GGUF hyperparameter metadata (see gguf_model_config.h).
#include "export/gguf_model_config.h"

#include <cmath>
#include <fstream>
#include <string_view>

#include "qpruner/error.h"

namespace qpruner::gguf {

namespace {

std::vector<int32_t> perLayer(const ModelConfig& c, int LayerShape::*field)
{
    std::vector<int32_t> v;
    v.reserve(c.layers.size());
    for (const LayerShape& s : c.layers)
        v.push_back(s.*field);
    return v;
}

} // namespace

bool isGgufFile(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return false;
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, sizeof magic);
    return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

std::string architectureFor(const ModelConfig& config)
{
    // llama.cpp's name for each family; Mistral is its "llama" (as its converter writes it).
    std::string family;
    if (config.architecture == "qwen2" || (config.attentionBias && config.architecture != "qwen3"))
        family = "qwen2";
    else if (config.architecture == "qwen3")
        family = "qwen3";
    else if (config.architecture == "phi3")
        family = "phi3";
    else if (config.architecture == "gemma3_text")
        family = "gemma3";
    if (family.empty())
        return config.homogeneous() ? "llama" : "deci";
    if (!config.homogeneous())
        throw ConfigError("GGUF export: this pruned " + config.architecture + " model has layers of different shapes, "
                          "and llama.cpp's " + family + " architecture has one shape for all layers (its "
                          "heterogeneous \"deci\" architecture is LLaMA's, without this family's " +
                          (family == "qwen2" ? std::string("q/k/v biases") :
                           family == "qwen3" ? std::string("q/k norms") :
                           family == "phi3"  ? std::string("fused projections") :
                                               std::string("norms, GeGLU and sliding layers")) +
                          "). Export --to hf --pad-uniform, or prune every layer alike");
    if (config.attentionBias && family != "qwen2")
        throw ConfigError("GGUF export: llama.cpp's " + family + " architecture has no q/k/v biases");
    if (family == "gemma3") {
        for (int l = 0; l < config.numLayers(); ++l)
            if (config.slidingLayer(l) != ((l + 1) % 6 != 0) || (config.slidingWindow == 0))
                throw ConfigError("GGUF export: llama.cpp's gemma3 architecture expects five sliding-window layers, "
                                  "then one global layer, repeated; layer " + std::to_string(l) + " is not so");
        if (std::abs(config.attentionScale() - 1.0 / std::sqrt(double(config.headDim))) > 1e-9)
            throw ConfigError("GGUF export: llama.cpp's gemma3 scales queries by head_dim^-0.5, this model by "
                              "query_pre_attn_scalar^-0.5 = " + std::to_string(config.attentionScale()));
    }
    return family;
}

bool ropeInterleaved(const std::string& architecture) { return architecture == "llama" || architecture == "deci"; }

void writeModelConfig(GgufWriter& w, const ModelConfig& c)
{
    const std::string a = architectureFor(c);
    const LayerShape& first = c.layers.front();
    w.set("general.architecture", Value::string(a));
    w.set(a + ".context_length", Value::u32(static_cast<uint32_t>(c.maxSeqLen)));
    w.set(a + ".embedding_length", Value::u32(static_cast<uint32_t>(c.hiddenSize)));
    w.set(a + ".block_count", Value::u32(static_cast<uint32_t>(c.numLayers())));
    if (a == "deci") {
        w.set(a + ".feed_forward_length", Value::i32Array(perLayer(c, &LayerShape::ffnDim)));
        w.set(a + ".attention.head_count", Value::i32Array(perLayer(c, &LayerShape::numHeads)));
        w.set(a + ".attention.head_count_kv", Value::i32Array(perLayer(c, &LayerShape::numKvHeads)));
    } else {
        w.set(a + ".feed_forward_length", Value::u32(static_cast<uint32_t>(first.ffnDim)));
        w.set(a + ".attention.head_count", Value::u32(static_cast<uint32_t>(first.numHeads)));
        w.set(a + ".attention.head_count_kv", Value::u32(static_cast<uint32_t>(first.numKvHeads)));
    }
    w.set(a + ".attention.key_length", Value::u32(static_cast<uint32_t>(c.headDim)));
    w.set(a + ".attention.value_length", Value::u32(static_cast<uint32_t>(c.headDim)));
    w.set(a + ".rope.dimension_count", Value::u32(static_cast<uint32_t>(c.headDim)));
    w.set(a + ".rope.freq_base", Value::f32(static_cast<float>(c.ropeTheta)));
    w.set(a + ".attention.layer_norm_rms_epsilon", Value::f32(static_cast<float>(c.normEps)));
    w.set(a + ".vocab_size", Value::u32(static_cast<uint32_t>(c.vocabSize)));
    if (c.slidingWindow > 0)
        w.set(a + ".attention.sliding_window", Value::u32(static_cast<uint32_t>(c.slidingWindow)));
    if (c.ropeLocalTheta > 0)
        w.set(a + ".rope.freq_base_swa", Value::f32(static_cast<float>(c.ropeLocalTheta)));
    if (c.ropeScaling.type == "linear") {
        w.set(a + ".rope.scaling.type", Value::string("linear"));
        w.set(a + ".rope.scaling.factor", Value::f32(static_cast<float>(c.ropeScaling.factor)));
    }
    if (a == "phi3")
        w.set(a + ".rope.scaling.original_context_length", Value::u32(static_cast<uint32_t>(c.maxSeqLen)));
    if (c.ropeScaling.type == "llama3") {
        w.set("qpruner.rope_scaling.factor", Value::f32(static_cast<float>(c.ropeScaling.factor)));
        w.set("qpruner.rope_scaling.low_freq_factor", Value::f32(static_cast<float>(c.ropeScaling.lowFreqFactor)));
        w.set("qpruner.rope_scaling.high_freq_factor", Value::f32(static_cast<float>(c.ropeScaling.highFreqFactor)));
        w.set("qpruner.rope_scaling.original_context_length",
              Value::u32(static_cast<uint32_t>(c.ropeScaling.originalMaxPositions)));
    }
}

ModelConfig readModelConfig(const GgufFile& f)
{
    const std::string a = f.get("general.architecture").asString("general.architecture");
    if (a != "llama" && a != "deci" && a != "qwen2" && a != "qwen3" && a != "phi3" && a != "gemma3")
        throw FormatError(f.path().string() + ": GGUF architecture '" + a +
                          "' is not a model family this runtime reads (llama, deci, qwen2, qwen3, phi3, gemma3)");
    auto key = [&](const std::string& k) { return a + "." + k; };
    auto getInt = [&](const std::string& k) {
        const std::string name = key(k);
        return static_cast<int>(f.get(name).asInt(name));
    };
    ModelConfig c;
    c.architecture = a == "gemma3" ? "gemma3_text" : (a == "llama" || a == "deci") ? "llama" : a;
    c.hiddenSize = getInt("embedding_length");
    const int layers = getInt("block_count");
    if (layers <= 0 || layers > 100000)
        throw FormatError(f.path().string() + ": " + key("block_count") + " = " + std::to_string(layers) +
                          " is out of range");
    c.maxSeqLen = getInt("context_length");
    // Per-layer values: a scalar for all layers or an array of block_count entries.
    auto layerValues = [&](const std::string& k) {
        const std::string name = key(k);
        const Value& v = f.get(name);
        if (!v.isArray())
            return std::vector<int64_t>(static_cast<size_t>(layers), v.asInt(name));
        std::vector<int64_t> out = v.asIntArray(name);
        if (out.size() != static_cast<size_t>(layers))
            throw FormatError(f.path().string() + ": " + name + " has " + std::to_string(out.size()) +
                              " entries for " + std::to_string(layers) + " layers");
        return out;
    };
    const auto ffn = layerValues("feed_forward_length");
    const auto heads = layerValues("attention.head_count");
    const auto kvHeads = f.find(key("attention.head_count_kv")) ? layerValues("attention.head_count_kv") : heads;
    for (int l = 0; l < layers; ++l) {
        const auto i = static_cast<size_t>(l);
        c.layers.push_back({static_cast<int>(heads[i]), static_cast<int>(kvHeads[i]), static_cast<int>(ffn[i])});
    }
    if (f.find(key("attention.key_length")))
        c.headDim = getInt("attention.key_length");
    else if (heads.front() > 0)
        c.headDim = c.hiddenSize / static_cast<int>(heads.front());
    if (const Value* v = f.find(key("rope.freq_base")))
        c.ropeTheta = v->asFloat(key("rope.freq_base"));
    c.normEps = f.get(key("attention.layer_norm_rms_epsilon")).asFloat(key("attention.layer_norm_rms_epsilon"));
    if (a == "qwen3" || a == "gemma3")
        c.qkNorm = true;
    if (a == "gemma3") {
        c.sandwichNorms = true;
        c.hiddenAct = "gelu_pytorch_tanh";
        c.queryPreAttnScalar = c.headDim;
        c.ropeLocalTheta = 10000.0;
        if (const Value* v = f.find(key("rope.freq_base_swa")))
            c.ropeLocalTheta = v->asFloat(key("rope.freq_base_swa"));
    }
    if (const Value* v = f.find(key("attention.sliding_window")); v && v->asInt(key("attention.sliding_window")) > 0) {
        c.slidingWindow = static_cast<int>(v->asInt(key("attention.sliding_window")));
        for (int l = 0; l < layers; ++l)
            c.slidingLayers.push_back(a != "gemma3" || (l + 1) % 6 != 0);
    }
    if (const Value* v = f.find(key("rope.scaling.type")); v && v->asString(key("rope.scaling.type")) == "linear") {
        c.ropeScaling.type = "linear";
        c.ropeScaling.factor = f.get(key("rope.scaling.factor")).asFloat(key("rope.scaling.factor"));
    }
    const TensorInfo& embd = f.tensor("token_embd.weight");
    c.vocabSize = embd.ne.size() == 2 ? static_cast<int>(embd.ne[1]) : 0;
    c.tiedEmbeddings = f.findTensor("output.weight") == nullptr;
    c.attentionBias = f.findTensor("blk.0.attn_q.bias") != nullptr;
    if (const Value* v = f.find("tokenizer.ggml.bos_token_id"))
        c.bosId = static_cast<int>(v->asInt("tokenizer.ggml.bos_token_id"));
    if (const Value* v = f.find("tokenizer.ggml.eos_token_id"))
        c.eosId = static_cast<int>(v->asInt("tokenizer.ggml.eos_token_id"));
    if (const Value* v = f.find("qpruner.rope_scaling.factor")) {
        c.ropeScaling.type = "llama3";
        c.ropeScaling.factor = v->asFloat("qpruner.rope_scaling.factor");
        c.ropeScaling.lowFreqFactor = f.get("qpruner.rope_scaling.low_freq_factor").asFloat("low_freq_factor");
        c.ropeScaling.highFreqFactor = f.get("qpruner.rope_scaling.high_freq_factor").asFloat("high_freq_factor");
        c.ropeScaling.originalMaxPositions = static_cast<int>(
            f.get("qpruner.rope_scaling.original_context_length").asInt("original_context_length"));
    } else if (f.findTensor("rope_freqs.weight")) {
        throw FormatError(f.path().string() + ": rope_freqs.weight (RoPE frequency factors) without the "
                          "qpruner.rope_scaling keys: this runtime cannot recover the scaling parameters");
    }
    try {
        c.validate();
    } catch (const ConfigError& e) {
        throw FormatError(f.path().string() + ": " + e.what());
    }
    return c;
}

const char* ggufModuleName(LinearModule m)
{
    switch (m) {
    case LinearModule::Q: return "attn_q";
    case LinearModule::K: return "attn_k";
    case LinearModule::V: return "attn_v";
    case LinearModule::O: return "attn_output";
    case LinearModule::Gate: return "ffn_gate";
    case LinearModule::Up: return "ffn_up";
    case LinearModule::Down: return "ffn_down";
    }
    return "?";
}

std::string linearTensorPrefix(int layer, LinearModule m) { return layerTensorName(layer, ggufModuleName(m)); }

std::string layerTensorName(int layer, const std::string& part)
{
    return "blk." + std::to_string(layer) + "." + part;
}

} // namespace qpruner::gguf
