// llama2.c legacy checkpoints. Weights are fp32, read in place from a private memory map; wq/wk rows are
// permuted per head from llama2.c's interleaved RoPE pairs (2i, 2i+1) to the rotate-half layout (i, i+hd/2).
#include "config/llama2c_layout.h"
#include "io/mapped_file.h"
#include "model/checkpoint.h"
#include "model/mapped_tensor.h"
#include "model/rope.h"
#include "qpruner/error.h"

namespace qpruner::model {

std::unique_ptr<LlamaModel> loadLlama2c(const std::filesystem::path& file, const LoadOptions& options)
{
    const config::Llama2cLayout lay = config::readLlama2cLayout(file);
    const auto mapped = io::MappedFile::open(file);
    const ModelConfig& c = lay.config;
    const at::ScalarType dtype = options.dtype.value_or(at::kFloat);
    auto model = std::make_unique<LlamaModel>(c, dtype, options.device);

    auto whole = [&](const std::string& key) {
        const auto& a = lay.arrays.at(key);
        return mappedTensor(mapped, a.offset, a.shape, at::kFloat);
    };
    auto place = [&](const at::Tensor& t, at::ScalarType dt) { return t.to(options.device, dt); };

    model->embedding = place(whole("tok_embeddings"), dtype);
    model->finalNorm = place(whole("rms_final"), at::kFloat);
    const auto rmsAtt = whole("rms_att"), rmsFfn = whole("rms_ffn");
    const auto wq = whole("wq"), wk = whole("wk"), wv = whole("wv"), wo = whole("wo");
    const auto w1 = whole("w1"), w2 = whole("w2"), w3 = whole("w3");
    const LayerShape& s = c.layers.front();
    const auto permQ = interleavedToHalfRows(s.numHeads, c.headDim);
    const auto permK = interleavedToHalfRows(s.numKvHeads, c.headDim);
    model->layers.resize(c.layers.size());
    for (int64_t l = 0; l < c.numLayers(); ++l) {
        DecoderLayer& L = model->layers[static_cast<size_t>(l)];
        L.attnNorm = place(rmsAtt[l], at::kFloat);
        L.ffnNorm = place(rmsFfn[l], at::kFloat);
        L.q = std::make_shared<DenseLinear>(place(wq[l].index_select(0, permQ), dtype));
        L.k = std::make_shared<DenseLinear>(place(wk[l].index_select(0, permK), dtype));
        L.v = std::make_shared<DenseLinear>(place(wv[l], dtype));
        L.o = std::make_shared<DenseLinear>(place(wo[l], dtype));
        L.gate = std::make_shared<DenseLinear>(place(w1[l], dtype));
        L.down = std::make_shared<DenseLinear>(place(w2[l], dtype));
        L.up = std::make_shared<DenseLinear>(place(w3[l], dtype));
    }
    model->lmHead = std::make_shared<DenseLinear>(lay.sharedClassifier ? model->embedding
                                                                       : place(whole("wcls"), dtype));
    return model;
}

} // namespace qpruner::model
