// GGUF checkpoints (llama, deci, qwen2, qwen3, phi3 and gemma3 architectures, as our exporter and llama.cpp's
// converter write them): the configuration from the metadata, every weight dequantized into a dense tensor, q/k
// rows gathered back from RoPE's adjacent-pair layout into our rotate-half layout (llama, deci), Phi-3's fused
// attn_qkv / ffn_up split, Gemma's norms (stored as 1 + w) taken back to w.
#include "export/gguf_file.h"
#include "export/gguf_model_config.h"
#include "model/checkpoint.h"
#include "model/rope.h"
#include "qpruner/error.h"

namespace qpruner::model {

namespace {

at::ScalarType denseScalarType(gguf::GgmlType t)
{
    switch (t) {
    case gguf::GgmlType::F16: return at::kHalf;
    case gguf::GgmlType::BF16: return at::kBFloat16;
    default: return at::kFloat;
    }
}

} // namespace

std::unique_ptr<LlamaModel> loadGguf(const std::filesystem::path& file, const LoadOptions& options)
{
    const gguf::GgufFile f = gguf::GgufFile::open(file);
    const ModelConfig c = gguf::readModelConfig(f);
    const std::string arch = f.get("general.architecture").asString();
    const at::ScalarType dtype = options.dtype.value_or(denseScalarType(f.tensor("token_embd.weight").type));

    // A tensor as [rows, ne[0]] (PyTorch order) in `dt` on the target device, its shape checked.
    auto load = [&](const std::string& name, std::vector<int64_t> shape, at::ScalarType dt) {
        const gguf::TensorInfo& info = f.tensor(name);
        std::vector<int64_t> ne(shape.rbegin(), shape.rend());
        if (info.ne != ne) {
            std::string want, got;
            for (const int64_t n : ne)
                want += (want.empty() ? "" : ", ") + std::to_string(n);
            for (const int64_t n : info.ne)
                got += (got.empty() ? "" : ", ") + std::to_string(n);
            throw FormatError(file.string() + ": tensor '" + name + "' has ne [" + got + "], the configuration needs [" +
                              want + "]");
        }
        std::vector<float> values = f.toFloat(info);
        return at::from_blob(values.data(), shape, at::TensorOptions().dtype(at::kFloat))
            .to(options.device, dt, /*non_blocking=*/false, /*copy=*/true);
    };
    const bool interleaved = gguf::ropeInterleaved(arch);
    auto linear = [&](int l, LinearModule m) -> LinearPtr {
        const LinearShape s = linearShape(c, l, m);
        const std::string prefix = gguf::linearTensorPrefix(l, m);
        at::Tensor w = load(prefix + ".weight", {s.rows, s.cols}, dtype);
        std::optional<at::Tensor> b;
        if (f.findTensor(prefix + ".bias"))
            b = load(prefix + ".bias", {s.rows}, dtype);
        if (interleaved && (m == LinearModule::Q || m == LinearModule::K)) {
            const auto order = interleavedToHalfRows(s.rows / c.headDim, c.headDim).to(options.device);
            w = w.index_select(0, order);
            if (b)
                b = b->index_select(0, order);
        }
        return std::make_shared<DenseLinear>(w, b);
    };

    auto model = std::make_unique<LlamaModel>(c, dtype, options.device);
    const float offset = ggufNormOffset(c);
    const auto norms = layerNormSlots(c);
    model->embedding = load("token_embd.weight", {c.vocabSize, c.hiddenSize}, dtype);
    model->finalNorm = load("output_norm.weight", {c.hiddenSize}, at::kFloat) - offset;
    model->layers.resize(c.layers.size());
    const bool fused = arch == "phi3";
    for (int l = 0; l < c.numLayers(); ++l) {
        DecoderLayer& L = model->layers[static_cast<size_t>(l)];
        for (const LayerNormSlot& slot : norms)
            L.*slot.member = load(gguf::layerTensorName(l, slot.ggufName), {slot.perHead ? c.headDim : c.hiddenSize},
                                  at::kFloat) - offset;
        for (const LinearModule m : kLinearModules)
            if (!fused || m == LinearModule::O || m == LinearModule::Down)
                layerLinear(L, m) = linear(l, m);
        if (fused) {
            const LayerShape& s = c.layers[static_cast<size_t>(l)];
            const int64_t q = int64_t(s.numHeads) * c.headDim, kv = int64_t(s.numKvHeads) * c.headDim, F = s.ffnDim;
            const at::Tensor qkv = load(gguf::layerTensorName(l, "attn_qkv.weight"), {q + 2 * kv, c.hiddenSize}, dtype);
            const at::Tensor up = load(gguf::layerTensorName(l, "ffn_up.weight"), {2 * F, c.hiddenSize}, dtype);
            setFusedProjections(L, qkv, up, q, kv, F);
        }
    }
    model->lmHead = std::make_shared<DenseLinear>(
        c.tiedEmbeddings ? model->embedding : load("output.weight", {c.vocabSize, c.hiddenSize}, dtype));
    return model;
}

} // namespace qpruner::model
