#include "config/config_json.h"

#include "qpruner/error.h"

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
    if (modelType != "llama" && modelType != "qwen2" && modelType != "mistral")
        throw FormatError(file.string() + ": model_type '" + modelType +
                          "' is not a LLaMA-family decoder (supported: llama, mistral, qwen2)");
    c.architecture = modelType;
    c.hiddenSize = field<int>(j, "hidden_size", file);
    c.vocabSize = field<int>(j, "vocab_size", file);
    const int numLayers = field<int>(j, "num_hidden_layers", file);
    const int numHeads = field<int>(j, "num_attention_heads", file);
    const int numKv = fieldOr<int>(j, "num_key_value_heads", numHeads, file);
    const int ffn = field<int>(j, "intermediate_size", file);
    if (numHeads <= 0)
        throw FormatError(file.string() + ": num_attention_heads must be positive");
    c.headDim = fieldOr<int>(j, "head_dim", numHeads > 0 ? c.hiddenSize / numHeads : 0, file);
    c.maxSeqLen = fieldOr<int>(j, "max_position_embeddings", 2048, file);
    c.normEps = fieldOr<double>(j, "rms_norm_eps", 1e-6, file);
    c.ropeTheta = fieldOr<double>(j, "rope_theta", 10000.0, file);
    c.tiedEmbeddings = fieldOr<bool>(j, "tie_word_embeddings", false, file);
    c.attentionBias = modelType == "qwen2" ? true : fieldOr<bool>(j, "attention_bias", false, file);
    c.bosId = tokenId(j, "bos_token_id", 1);
    c.eosId = tokenId(j, "eos_token_id", 2);
    if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) {
        const auto& rs = j.at("rope_scaling");
        std::string type = rs.value("rope_type", rs.value("type", std::string("none")));
        if (type == "default")
            type = "none";
        c.ropeScaling.type = type;
        c.ropeScaling.factor = rs.value("factor", 1.0);
        c.ropeScaling.lowFreqFactor = rs.value("low_freq_factor", 1.0);
        c.ropeScaling.highFreqFactor = rs.value("high_freq_factor", 4.0);
        c.ropeScaling.originalMaxPositions = rs.value("original_max_position_embeddings", 8192);
    }
    if (numLayers <= 0)
        throw FormatError(file.string() + ": num_hidden_layers must be positive");
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

nlohmann::json toNativeConfigJson(const ModelConfig& c, const std::string& dtype)
{
    const LayerShape& first = c.layers.front();
    nlohmann::ordered_json j;
    j["architectures"] = {c.architecture == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
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
    if (c.ropeScaling.type != "none")
        j["rope_scaling"] = {{"rope_type", c.ropeScaling.type},
                             {"factor", c.ropeScaling.factor},
                             {"low_freq_factor", c.ropeScaling.lowFreqFactor},
                             {"high_freq_factor", c.ropeScaling.highFreqFactor},
                             {"original_max_position_embeddings", c.ropeScaling.originalMaxPositions}};
    j["tie_word_embeddings"] = c.tiedEmbeddings;
    j["attention_bias"] = c.attentionBias;
    j["hidden_act"] = "silu";
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
