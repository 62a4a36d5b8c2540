#include "model/random_model.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

#include "qpruner/error.h"

namespace qpruner::model {

namespace {

ModelConfig shape(int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int seq, bool tied)
{
    ModelConfig c;
    c.hiddenSize = dim;
    c.headDim = dim / heads;
    c.vocabSize = vocab;
    c.maxSeqLen = seq;
    c.normEps = 1e-5;
    c.tiedEmbeddings = tied;
    c.layers.assign(static_cast<size_t>(layers), LayerShape{heads, kvHeads, ffn});
    return c;
}

} // namespace

const std::vector<RandomPreset>& randomPresets()
{
    static const std::vector<RandomPreset> presets = {
        {"tiny", "test-sized: dim 64, 2 layers, 4 heads (2 KV), vocab 512", shape(64, 2, 4, 2, 160, 512, 256, false)},
        {"15m", "stories15M shape: dim 288, 6 layers, 6 heads, FFN 768, vocab 32000 (~24M with head)",
         shape(288, 6, 6, 6, 768, 32000, 256, true)},
        {"110m", "stories110M shape: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000",
         shape(768, 12, 12, 12, 2048, 32000, 1024, true)},
        {"1b", "TinyLlama-1.1B shape: dim 2048, 22 layers, 32 heads (4 KV), FFN 5632, vocab 32000",
         shape(2048, 22, 32, 4, 5632, 32000, 2048, false)},
        {"7b", "LLaMA-7B shape: dim 4096, 32 layers, 32 heads, FFN 11008, vocab 32000",
         shape(4096, 32, 32, 32, 11008, 32000, 2048, false)},
    };
    return presets;
}

const RandomPreset& findRandomPreset(const std::string& name)
{
    std::string list;
    for (const auto& p : randomPresets()) {
        if (p.name == name)
            return p;
        list += (list.empty() ? "" : ", ") + p.name;
    }
    throw ConfigError("unknown preset '" + name + "' (presets: " + list + ")");
}

std::unique_ptr<LlamaModel> makeRandomModel(const ModelConfig& c, at::ScalarType dtype, uint64_t seed,
                                            at::Device device)
{
    auto gen = at::detail::createCPUGenerator(seed);
    auto model = std::make_unique<LlamaModel>(c, dtype, device);
    const double std0 = 0.02, stdOut = 0.02 / std::sqrt(2.0 * c.numLayers());
    auto normal = [&](std::vector<int64_t> s, double sd) {
        return at::normal(0.0, sd, s, gen, at::TensorOptions().dtype(at::kFloat)).to(device, dtype);
    };
    auto ones = [&](int64_t n) { return at::ones({n}, at::TensorOptions().dtype(at::kFloat).device(device)); };
    const int64_t D = c.hiddenSize, V = c.vocabSize, hd = c.headDim;
    model->embedding = normal({V, D}, std0);
    model->finalNorm = ones(D);
    model->layers.resize(c.layers.size());
    for (size_t l = 0; l < c.layers.size(); ++l) {
        const LayerShape& s = c.layers[l];
        const int64_t q = s.numHeads * hd, kv = s.numKvHeads * hd, F = s.ffnDim;
        DecoderLayer& L = model->layers[l];
        L.attnNorm = ones(D);
        L.ffnNorm = ones(D);
        auto bias = [&](int64_t n) -> std::optional<at::Tensor> {
            if (!c.attentionBias)
                return std::nullopt;
            return normal({n}, std0);
        };
        L.q = std::make_shared<DenseLinear>(normal({q, D}, std0), bias(q));
        L.k = std::make_shared<DenseLinear>(normal({kv, D}, std0), bias(kv));
        L.v = std::make_shared<DenseLinear>(normal({kv, D}, std0), bias(kv));
        L.o = std::make_shared<DenseLinear>(normal({D, q}, stdOut));
        L.gate = std::make_shared<DenseLinear>(normal({F, D}, std0));
        L.up = std::make_shared<DenseLinear>(normal({F, D}, std0));
        L.down = std::make_shared<DenseLinear>(normal({D, F}, stdOut));
    }
    model->lmHead = std::make_shared<DenseLinear>(c.tiedEmbeddings ? model->embedding : normal({V, D}, std0));
    return model;
}

} // namespace qpruner::model
