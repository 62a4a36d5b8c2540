#include "config/config_json.h"

#include "qpruner/error.h"

#include <algorithm>

namespace qpruner::config {

namespace {

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::filesystem::path& file)
{
    if (!j.contains(key) || j.at(key).is_null())
        throw FormatError(file.string() + ": missing field '" + key + "'");
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
        throw FormatError(file.string() + ": field '" + key + "' has the wrong type (" +
                          std::string(j.at(key).type_name()) + ")");
    }
}

template <typename T>
T fieldOr(const nlohmann::json& j, const char* key, T fallback, const std::filesystem::path& file)
{
    if (!j.contains(key) || j.at(key).is_null())
        return fallback;
    return field<T>(j, key, file);
}

int tokenId(const nlohmann::json& j, const char* key, int fallback)
{
    if (!j.contains(key) || j.at(key).is_null())
        return fallback;
    const auto& v = j.at(key);
    if (v.is_number_integer())
        return v.get<int>();
    if (v.is_array() && !v.empty() && v.front().is_number_integer())
        return v.front().get<int>(); // Llama-3 lists several EOS ids; the first is the canonical one
    return fallback;
}

} // namespace

bool isNativeConfig(const nlohmann::json& j)
{
    return j.is_object() && j.contains("qpruner") && j.at("qpruner").is_object();
}

ModelConfig fromConfigJson(const nlohmann::json& j, const std::filesystem::path& file)
{
    if (!j.is_object())
        throw FormatError(file.string() + ": config is not a JSON object");
    ModelConfig c;
    const std::string modelType = fieldOr<std::string>(j, "model_type", "llama", file);
    if (std::find(std::begin(kArchitectures), std::end(kArchitectures), modelType) == std::end(kArchitectures))
        throw FormatError(file.string() + ": model_type '" + modelType +
                          "' is not a decoder family this tool reads (supported: llama, mistral, qwen2, qwen3, phi3, "
                          "gemma3_text)");
    const bool gemma = modelType == "gemma3_text";
    c.architecture = modelType;
    c.hiddenSize = field<int>(j, "hidden_size", file);
    c.vocabSize = field<int>(j, "vocab_size", file);
    const int numLayers = field<int>(j, "num_hidden_layers", file);
    const int numHeads = field<int>(j, "num_attention_heads", file);
    const int numKv = fieldOr<int>(j, "num_key_value_heads", numHeads, file);
    const int ffn = field<int>(j, "intermediate_size", file);
    if (numHeads <= 0)
        throw FormatError(file.string() + ": num_attention_heads must be positive");
    if (numLayers <= 0 || numLayers > 100000)
        throw FormatError(file.string() + ": num_hidden_layers must be positive");
    c.headDim = fieldOr<int>(j, "head_dim", numHeads > 0 ? c.hiddenSize / numHeads : 0, file);
    c.maxSeqLen = fieldOr<int>(j, "max_position_embeddings", 2048, file);
    c.normEps = fieldOr<double>(j, "rms_norm_eps", 1e-6, file);
    c.ropeTheta = fieldOr<double>(j, "rope_theta", 10000.0, file);
    c.tiedEmbeddings = fieldOr<bool>(j, "tie_word_embeddings", gemma, file);
    c.attentionBias = modelType == "qwen2" ? true : fieldOr<bool>(j, "attention_bias", false, file);
    c.bosId = tokenId(j, "bos_token_id", 1);
    c.eosId = tokenId(j, "eos_token_id", 2);
    if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) {
        const auto& rs = j.at("rope_scaling");
        if (!rs.is_object())
            throw FormatError(file.string() + ": field 'rope_scaling' is not an object");
        std::string type = rs.value("rope_type", rs.value("type", std::string("none")));
        if (type == "default")
            type = "none";
        c.ropeScaling.type = type;
        c.ropeScaling.factor = rs.value("factor", 1.0);
        c.ropeScaling.lowFreqFactor = rs.value("low_freq_factor", 1.0);
        c.ropeScaling.highFreqFactor = rs.value("high_freq_factor", 4.0);
        c.ropeScaling.originalMaxPositions = rs.value("original_max_position_embeddings", 8192);
    }
    c.qkNorm = modelType == "qwen3" || gemma;
    c.sandwichNorms = gemma;
    c.hiddenAct = fieldOr<std::string>(j, gemma ? "hidden_activation" : "hidden_act", "silu", file);
    if (c.hiddenAct == "gelu_pytorch_tanh" && !gemma)
        throw FormatError(file.string() + ": hidden_act '" + c.hiddenAct + "' is supported for gemma3_text only");
    if (const double f = fieldOr<double>(j, "partial_rotary_factor", 1.0, file); f != 1.0)
        throw FormatError(file.string() + ": partial_rotary_factor " + std::to_string(f) +
                          " is not supported (RoPE over the whole head only)");
    for (const char* cap : {"final_logit_softcapping", "attn_logit_softcapping"})
        if (j.contains(cap) && !j.at(cap).is_null())
            throw FormatError(file.string() + ": " + cap + " is not supported (Gemma 2 style soft-capping)");
    // Sliding-window attention: which layers use it, per family.
    const int window = fieldOr<int>(j, "sliding_window", 0, file);
    std::vector<bool> sliding;
    if (gemma) {
        c.queryPreAttnScalar = fieldOr<double>(j, "query_pre_attn_scalar", double(c.headDim), file);
        c.ropeLocalTheta = fieldOr<double>(j, "rope_local_base_freq", 10000.0, file);
        if (j.contains("layer_types") && j.at("layer_types").is_array()) {
            const auto& types = j.at("layer_types");
            if (types.size() != static_cast<size_t>(numLayers))
                throw FormatError(file.string() + ": layer_types lists " + std::to_string(types.size()) +
                                  " layers for num_hidden_layers " + std::to_string(numLayers));
            for (const auto& t : types) {
                const std::string type = t.is_string() ? t.get<std::string>() : std::string();
                if (type != "sliding_attention" && type != "full_attention")
                    throw FormatError(file.string() + ": layer_types entry '" + type +
                                      "' is not sliding_attention or full_attention");
                sliding.push_back(type == "sliding_attention");
            }
        } else {
            const int pattern = fieldOr<int>(j, "sliding_window_pattern", 6, file);
            if (pattern <= 0)
                throw FormatError(file.string() + ": sliding_window_pattern must be positive");
            for (int l = 0; l < numLayers; ++l)
                sliding.push_back((l + 1) % pattern != 0);
        }
    } else if (modelType == "mistral" || modelType == "phi3") {
        sliding.assign(static_cast<size_t>(numLayers), window > 0);
    } else if ((modelType == "qwen2" || modelType == "qwen3") && fieldOr<bool>(j, "use_sliding_window", false, file)) {
        const int from = fieldOr<int>(j, "max_window_layers", numLayers, file);
        for (int l = 0; l < numLayers; ++l)
            sliding.push_back(l >= from);
    }
    if (window > 0 && std::find(sliding.begin(), sliding.end(), true) != sliding.end()) {
        c.slidingWindow = window;
        c.slidingLayers = sliding;
    }
    c.layers.assign(static_cast<size_t>(numLayers), LayerShape{numHeads, numKv, ffn});

    if (isNativeConfig(j)) {
        const auto& q = j.at("qpruner");
        const int version = fieldOr<int>(q, "format_version", 0, file);
        if (version != kNativeFormatVersion)
            throw FormatError(file.string() + ": qpruner.format_version " + std::to_string(version) +
                              " is not supported (expected " + std::to_string(kNativeFormatVersion) + ")");
        if (q.contains("layers")) {
            const auto& ls = q.at("layers");
            if (!ls.is_array() || ls.size() != static_cast<size_t>(numLayers))
                throw FormatError(file.string() + ": qpruner.layers must list " + std::to_string(numLayers) +
                                  " layers (num_hidden_layers)");
            for (size_t i = 0; i < ls.size(); ++i) {
                const std::filesystem::path where = file.string() + ": qpruner.layers[" + std::to_string(i) + "]";
                c.layers[i].numHeads = field<int>(ls[i], "num_attention_heads", where);
                c.layers[i].numKvHeads = field<int>(ls[i], "num_key_value_heads", where);
                c.layers[i].ffnDim = field<int>(ls[i], "intermediate_size", where);
            }
        }
    }
    try {
        c.validate();
    } catch (const ConfigError& e) {
        throw FormatError(file.string() + ": " + e.what());
    }
    return c;
}

std::string hfArchitectureClass(const std::string& architecture)
{
    if (architecture == "qwen2")
        return "Qwen2ForCausalLM";
    if (architecture == "qwen3")
        return "Qwen3ForCausalLM";
    if (architecture == "mistral")
        return "MistralForCausalLM";
    if (architecture == "phi3")
        return "Phi3ForCausalLM";
    if (architecture == "gemma3_text")
        return "Gemma3ForCausalLM";
    return "LlamaForCausalLM";
}

nlohmann::json toNativeConfigJson(const ModelConfig& c, const std::string& dtype)
{
    const LayerShape& first = c.layers.front();
    const bool gemma = c.architecture == "gemma3_text";
    nlohmann::ordered_json j;
    j["architectures"] = {hfArchitectureClass(c.architecture)};
    j["model_type"] = c.architecture;
    j["hidden_size"] = c.hiddenSize;
    j["intermediate_size"] = first.ffnDim;
    j["num_hidden_layers"] = c.numLayers();
    j["num_attention_heads"] = first.numHeads;
    j["num_key_value_heads"] = first.numKvHeads;
    j["head_dim"] = c.headDim;
    j["vocab_size"] = c.vocabSize;
    j["max_position_embeddings"] = c.maxSeqLen;
    j["rms_norm_eps"] = c.normEps;
    j["rope_theta"] = c.ropeTheta;
    if (c.ropeScaling.type == "llama3")
        j["rope_scaling"] = {{"rope_type", c.ropeScaling.type},
                             {"factor", c.ropeScaling.factor},
                             {"low_freq_factor", c.ropeScaling.lowFreqFactor},
                             {"high_freq_factor", c.ropeScaling.highFreqFactor},
                             {"original_max_position_embeddings", c.ropeScaling.originalMaxPositions}};
    else if (c.ropeScaling.type == "linear")
        j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.ropeScaling.factor}};
    else
        j["rope_scaling"] = nullptr;
    j["tie_word_embeddings"] = c.tiedEmbeddings;
    j["attention_bias"] = c.attentionBias;
    j[gemma ? "hidden_activation" : "hidden_act"] = c.hiddenAct;
    if (gemma) {
        j["query_pre_attn_scalar"] = c.queryPreAttnScalar > 0 ? c.queryPreAttnScalar : double(c.headDim);
        j["rope_local_base_freq"] = c.ropeLocalTheta > 0 ? c.ropeLocalTheta : 10000.0;
        j["final_logit_softcapping"] = nullptr;
        j["attn_logit_softcapping"] = nullptr;
    }
    if (c.slidingWindow > 0) {
        j["sliding_window"] = c.slidingWindow;
        if (gemma) {
            nlohmann::ordered_json types = nlohmann::ordered_json::array();
            for (int l = 0; l < c.numLayers(); ++l)
                types.push_back(c.slidingLayer(l) ? "sliding_attention" : "full_attention");
            j["layer_types"] = types;
            // Older transformers (and llama.cpp's converter) read the pattern instead of the list.
            int pattern = 0;
            for (int l = 0; l < c.numLayers() && !pattern; ++l)
                if (!c.slidingLayer(l))
                    pattern = l + 1;
            j["sliding_window_pattern"] = pattern ? pattern : c.numLayers() + 1;
        } else if (c.architecture == "qwen2" || c.architecture == "qwen3") {
            int from = 0;
            while (from < c.numLayers() && !c.slidingLayer(from))
                ++from;
            j["use_sliding_window"] = true;
            j["max_window_layers"] = from;
        }
    } else if (c.architecture == "qwen2" || c.architecture == "qwen3") {
        j["use_sliding_window"] = false;
    } else if (c.architecture == "mistral" || c.architecture == "phi3") {
        j["sliding_window"] = nullptr;
    }
    j["bos_token_id"] = c.bosId;
    j["eos_token_id"] = c.eosId;
    j["torch_dtype"] = dtype;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const auto& s : c.layers)
        layers.push_back({{"num_attention_heads", s.numHeads},
                          {"num_key_value_heads", s.numKvHeads},
                          {"intermediate_size", s.ffnDim}});
    j["qpruner"] = {{"format_version", kNativeFormatVersion}, {"homogeneous", c.homogeneous()},
                    {"layers", layers}};
    return nlohmann::json(j);
}

} // namespace qpruner::config
