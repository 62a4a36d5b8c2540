#include "qpruner/model_config.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "qpruner/error.h"

namespace qpruner {

bool ModelConfig::homogeneous() const
{
    for (const auto& l : layers)
        if (!(l == layers.front()))
            return false;
    return true;
}

double ModelConfig::embeddingScale() const
{
    return architecture == "gemma3_text" ? std::sqrt(static_cast<double>(hiddenSize)) : 1.0;
}

double ModelConfig::attentionScale() const
{
    return 1.0 / std::sqrt(queryPreAttnScalar > 0 ? queryPreAttnScalar : static_cast<double>(headDim));
}

std::vector<std::string> ModelConfig::familyFeatures() const
{
    auto number = [](double v) {
        std::string t = std::to_string(v);
        t.erase(t.find_last_not_of('0') + 1);
        if (!t.empty() && t.back() == '.')
            t.pop_back();
        return t;
    };
    std::vector<std::string> f;
    if (attentionBias)
        f.push_back("q/k/v biases");
    if (qkNorm)
        f.push_back("q/k norms");
    if (sandwichNorms)
        f.push_back("norms after attention and MLP");
    if (unitOffsetNorms())
        f.push_back("norms applied as 1 + w");
    if (hiddenAct != "silu")
        f.push_back("MLP activation " + hiddenAct);
    if (embeddingScale() != 1.0)
        f.push_back("embeddings x " + number(embeddingScale()));
    if (queryPreAttnScalar > 0 && queryPreAttnScalar != headDim)
        f.push_back("queries x " + number(queryPreAttnScalar) + "^-0.5");
    if (architecture == "phi3")
        f.push_back("fused qkv / gate_up in files");
    if (slidingWindow > 0) {
        const auto n = std::count(slidingLayers.begin(), slidingLayers.end(), true);
        f.push_back("sliding window " + std::to_string(slidingWindow) + " on " + std::to_string(n) + " of " +
                    std::to_string(numLayers()) + " layers" +
                    (ropeLocalTheta > 0 ? " (RoPE base " + number(ropeLocalTheta) + ")" : std::string()));
    }
    if (ropeScaling.type != "none")
        f.push_back(ropeScaling.type + " RoPE scaling x" + number(ropeScaling.factor));
    return f;
}

int64_t ModelConfig::layerParameterCount(int layer) const
{
    const LayerShape& s = layers.at(static_cast<size_t>(layer));
    const int64_t d = hiddenSize, q = int64_t(s.numHeads) * headDim, kv = int64_t(s.numKvHeads) * headDim;
    int64_t n = (sandwichNorms ? 4 : 2) * d; // attention and MLP RMSNorm weights (and the ones after them)
    if (qkNorm)
        n += 2 * int64_t(headDim);        // q/k norms, shared by the heads
    n += d * q + 2 * d * kv + q * d;      // q, k, v, o
    if (attentionBias)
        n += q + 2 * kv;                  // q/k/v biases
    n += 3 * d * int64_t(s.ffnDim);       // gate, up, down
    return n;
}

int64_t ModelConfig::parameterCount() const
{
    int64_t n = int64_t(vocabSize) * hiddenSize; // embeddings
    for (int l = 0; l < numLayers(); ++l)
        n += layerParameterCount(l);
    n += hiddenSize; // final norm
    if (!tiedEmbeddings)
        n += int64_t(vocabSize) * hiddenSize;
    return n;
}

int64_t ModelConfig::macsPerToken(int contextLen) const
{
    const int64_t d = hiddenSize;
    int64_t macs = 0;
    for (const auto& s : layers) {
        const int64_t q = int64_t(s.numHeads) * headDim, kv = int64_t(s.numKvHeads) * headDim;
        macs += d * q + 2 * d * kv + q * d + 3 * d * int64_t(s.ffnDim);
        macs += 2 * q * int64_t(contextLen); // scores and weighted values
    }
    macs += int64_t(vocabSize) * d;
    return macs;
}

void ModelConfig::validate() const
{
    auto fail = [](const std::string& msg) { throw ConfigError("model config: " + msg); };
    if (hiddenSize <= 0)
        fail("hidden_size must be positive, got " + std::to_string(hiddenSize));
    if (headDim <= 0 || headDim % 2 != 0)
        fail("head_dim must be positive and even (RoPE rotates pairs), got " + std::to_string(headDim));
    if (vocabSize <= 0)
        fail("vocab_size must be positive, got " + std::to_string(vocabSize));
    if (maxSeqLen <= 0)
        fail("max_position_embeddings must be positive, got " + std::to_string(maxSeqLen));
    if (!(normEps > 0))
        fail("rms_norm_eps must be positive");
    if (!(ropeTheta > 0))
        fail("rope_theta must be positive");
    if (layers.empty())
        fail("the model has no decoder layers");
    if (std::find(std::begin(kArchitectures), std::end(kArchitectures), architecture) == std::end(kArchitectures))
        fail("architecture '" + architecture +
             "' is not supported (supported: llama, mistral, qwen2, qwen3, phi3, gemma3_text)");
    if (ropeScaling.type != "none" && ropeScaling.type != "llama3" && ropeScaling.type != "linear")
        fail("rope_scaling type '" + ropeScaling.type + "' is not supported (supported: llama3, linear)");
    if (ropeScaling.type != "none" && !(ropeScaling.factor > 0))
        fail("rope_scaling factor must be positive");
    if (hiddenAct != "silu" && hiddenAct != "gelu_pytorch_tanh")
        fail("hidden activation '" + hiddenAct + "' is not supported (supported: silu, gelu_pytorch_tanh)");
    if (queryPreAttnScalar < 0)
        fail("query_pre_attn_scalar must be positive");
    if (slidingWindow < 0)
        fail("sliding_window must be positive");
    if (!slidingLayers.empty() && slidingLayers.size() != layers.size())
        fail("layer_types lists " + std::to_string(slidingLayers.size()) + " layers for " +
             std::to_string(layers.size()));
    if (ropeLocalTheta < 0)
        fail("rope_local_base_freq must be positive");
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto& s = layers[i];
        const std::string where = "layer " + std::to_string(i) + ": ";
        if (s.numHeads <= 0 || s.numKvHeads <= 0)
            fail(where + "num_attention_heads and num_key_value_heads must be positive");
        if (s.numHeads % s.numKvHeads != 0)
            fail(where + "num_attention_heads (" + std::to_string(s.numHeads) +
                 ") must be a multiple of num_key_value_heads (" + std::to_string(s.numKvHeads) + ")");
        if (s.ffnDim <= 0)
            fail(where + "intermediate_size must be positive");
    }
    if (bosId >= vocabSize || eosId >= vocabSize)
        fail("bos/eos token id outside the vocabulary");
}

} // namespace qpruner
