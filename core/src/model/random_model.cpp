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

// A family's published config (the fields config.json carries), on top of shape().
ModelConfig family(ModelConfig c, const std::string& arch, double eps, double theta, int bos, int eos)
{
    c.architecture = arch;
    c.normEps = eps;
    c.ropeTheta = theta;
    c.bosId = bos;
    c.eosId = eos;
    if (arch == "qwen2")
        c.attentionBias = true;
    if (arch == "qwen3")
        c.qkNorm = true;
    return c;
}

ModelConfig withHeadDim(ModelConfig c, int headDim)
{
    c.headDim = headDim;
    return c;
}

ModelConfig sliding(ModelConfig c, int window, int pattern)
{
    c.slidingWindow = window;
    c.slidingLayers.clear();
    for (int l = 0; l < c.numLayers(); ++l)
        c.slidingLayers.push_back(pattern == 0 || (l + 1) % pattern != 0);
    return c;
}

ModelConfig gemma3(ModelConfig c, int window, int bos, int eos)
{
    c = sliding(family(std::move(c), "gemma3_text", 1e-6, 1e6, bos, eos), window, 6);
    c.qkNorm = true;
    c.sandwichNorms = true;
    c.hiddenAct = "gelu_pytorch_tanh";
    c.queryPreAttnScalar = c.headDim;
    c.ropeLocalTheta = 10000.0;
    return c;
}

ModelConfig llama32(ModelConfig c)
{
    c = family(std::move(c), "llama", 1e-5, 500000.0, 128000, 128001);
    c.ropeScaling = RopeScaling{"llama3", 32.0, 1.0, 4.0, 8192};
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
        // Today's families, in the shapes and configs they publish.
        {"llama-3.2-1b", "Llama-3.2-1B: dim 2048, 16 layers, 32 heads (8 KV), FFN 8192, vocab 128256, llama3 RoPE",
         llama32(shape(2048, 16, 32, 8, 8192, 128256, 131072, true))},
        {"qwen3-0.6b", "Qwen3-0.6B: dim 1024, 28 layers, 16 heads (8 KV) of 128, q/k norms, FFN 3072, vocab 151936",
         withHeadDim(family(shape(1024, 28, 16, 8, 3072, 151936, 40960, true), "qwen3", 1e-6, 1e6, 151643, 151645), 128)},
        {"qwen2.5-0.5b", "Qwen2.5-0.5B: dim 896, 24 layers, 14 heads (2 KV), q/k/v bias, FFN 4864, vocab 151936",
         family(shape(896, 24, 14, 2, 4864, 151936, 32768, true), "qwen2", 1e-6, 1e6, 151643, 151643)},
        {"gemma-3-1b", "Gemma-3-1B: dim 1152, 26 layers, 4 heads (1 KV) of 256, GeGLU FFN 6912, vocab 262144, "
                       "5 sliding (512) : 1 global",
         gemma3(withHeadDim(shape(1152, 26, 4, 1, 6912, 262144, 32768, true), 256), 512, 2, 1)},
        {"phi-3-mini", "Phi-3-mini-4k: dim 3072, 32 layers, 32 heads, FFN 8192, vocab 32064, fused qkv/gate_up",
         sliding(family(shape(3072, 32, 32, 32, 8192, 32064, 4096, false), "phi3", 1e-5, 10000.0, 1, 32000), 2047, 0)},
        {"mistral-7b", "Mistral-7B-v0.1: dim 4096, 32 layers, 32 heads (8 KV), FFN 14336, vocab 32000, window 4096",
         sliding(family(shape(4096, 32, 32, 8, 14336, 32000, 32768, false), "mistral", 1e-5, 10000.0, 1, 2), 4096, 0)},
        // Test-sized models of each family's structure (vocab 512: the stories260K tokenizer fits them).
        {"tiny-llama3", "test-sized Llama-3 structure: dim 64, 2 layers, llama3 RoPE scaling, tied",
         [] {
             ModelConfig c = llama32(shape(64, 2, 4, 2, 160, 512, 256, true));
             c.bosId = 1;
             c.eosId = 2;
             return c;
         }()},
        {"tiny-qwen2", "test-sized Qwen2 structure: dim 64, 2 layers, 4 heads (2 KV), q/k/v bias",
         family(shape(64, 2, 4, 2, 160, 512, 256, true), "qwen2", 1e-6, 1e6, 1, 2)},
        {"tiny-qwen3", "test-sized Qwen3 structure: dim 64, 2 layers, 4 heads (2 KV) of 32, q/k norms",
         withHeadDim(family(shape(64, 2, 4, 2, 160, 512, 256, true), "qwen3", 1e-6, 1e6, 1, 2), 32)},
        {"tiny-gemma3", "test-sized Gemma 3 structure: dim 64, 6 layers (5 sliding of 8 : 1 global), 4 heads (2 KV) "
                        "of 32, GeGLU",
         gemma3(withHeadDim(shape(64, 6, 4, 2, 160, 512, 256, true), 32), 8, 1, 2)},
        {"tiny-phi3", "test-sized Phi-3 structure: dim 64, 2 layers, 4 heads, fused projections in the files",
         family(shape(64, 2, 4, 4, 160, 512, 256, false), "phi3", 1e-5, 10000.0, 1, 2)},
        {"tiny-mistral", "test-sized Mistral structure: dim 64, 2 layers, 4 heads (2 KV), sliding window 128",
         sliding(family(shape(64, 2, 4, 2, 160, 512, 256, false), "mistral", 1e-5, 10000.0, 1, 2), 128, 0)},
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
    // The base shapes keep norms of 1 (their seeded weights are referenced by tests); the newer families get
    // norms of 1 + N(0, 0.1^2) so that every norm weight changes the output (Gemma stores w of 1 + w).
    const bool plainNorms = c.architecture == "llama" && c.ropeScaling.type == "none";
    auto norm = [&](int64_t n) {
        if (plainNorms)
            return ones(n);
        auto w = at::normal(c.unitOffsetNorms() ? 0.0 : 1.0, 0.1, {n}, gen, at::TensorOptions().dtype(at::kFloat));
        return w.to(device);
    };
    const auto norms = layerNormSlots(c);
    model->finalNorm = norm(D);
    model->layers.resize(c.layers.size());
    for (size_t l = 0; l < c.layers.size(); ++l) {
        const LayerShape& s = c.layers[l];
        const int64_t q = s.numHeads * hd, kv = s.numKvHeads * hd, F = s.ffnDim;
        DecoderLayer& L = model->layers[l];
        for (const LayerNormSlot& slot : norms)
            L.*slot.member = norm(slot.perHead ? hd : D);
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
