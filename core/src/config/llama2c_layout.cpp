#include "config/llama2c_layout.h"

#include <fstream>

#include "qpruner/error.h"

namespace qpruner::config {

Llama2cLayout readLlama2cLayout(const std::filesystem::path& file)
{
    const std::string name = file.string();
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
        throw FileError(name + ": file not found");
    if (std::filesystem::is_directory(file, ec))
        throw FileError(name + ": is a directory, expected a llama2.c .bin checkpoint");
    Llama2cLayout lay;
    lay.fileSize = std::filesystem::file_size(file, ec);
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw FileError(name + ": cannot open for reading");
    int32_t h[7] = {};
    in.read(reinterpret_cast<char*>(h), sizeof(h));
    if (in.gcount() != sizeof(h))
        throw FileError(name + ": truncated llama2.c checkpoint: " + std::to_string(lay.fileSize) +
                        " bytes, the 28-byte header needs 28");
    const int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], seqLen = h[6];
    const int vocab = h[5] < 0 ? -h[5] : h[5];
    lay.sharedClassifier = h[5] > 0;
    auto bad = [&](const std::string& what) {
        throw FormatError(name + ": not a llama2.c checkpoint (header " + what + "; header = [" +
                          std::to_string(h[0]) + ", " + std::to_string(h[1]) + ", " + std::to_string(h[2]) + ", " +
                          std::to_string(h[3]) + ", " + std::to_string(h[4]) + ", " + std::to_string(h[5]) + ", " +
                          std::to_string(h[6]) + "])");
    };
    if (dim <= 0 || dim > (1 << 16)) bad("dim out of range");
    if (hidden <= 0 || hidden > (1 << 18)) bad("hidden_dim out of range");
    if (layers <= 0 || layers > 1024) bad("n_layers out of range");
    if (heads <= 0 || dim % heads != 0) bad("n_heads does not divide dim");
    if (kvHeads <= 0 || heads % kvHeads != 0) bad("n_kv_heads does not divide n_heads");
    if (vocab <= 0 || vocab > (1 << 22)) bad("vocab_size out of range");
    if (seqLen <= 0 || seqLen > (1 << 22)) bad("seq_len out of range");
    const int headSize = dim / heads;
    if (headSize % 2 != 0) bad("head size is odd");
    const int64_t kvDim = int64_t(kvHeads) * headSize;

    ModelConfig& c = lay.config;
    c.architecture = "llama";
    c.hiddenSize = dim;
    c.headDim = headSize;
    c.vocabSize = vocab;
    c.maxSeqLen = seqLen;
    c.normEps = 1e-5;
    c.ropeTheta = 10000.0;
    c.tiedEmbeddings = lay.sharedClassifier;
    c.bosId = 1;
    c.eosId = 2;
    c.layers.assign(static_cast<size_t>(layers), LayerShape{heads, kvHeads, hidden});

    uint64_t off = sizeof(h);
    auto add = [&](const std::string& key, std::vector<int64_t> shape) {
        uint64_t n = 1;
        for (int64_t d : shape)
            n *= static_cast<uint64_t>(d);
        lay.arrays[key] = Llama2cArray{off, std::move(shape)};
        off += n * sizeof(float);
    };
    const int64_t L = layers, D = dim, H = hidden, V = vocab, S = seqLen;
    add("tok_embeddings", {V, D});
    add("rms_att", {L, D});
    add("wq", {L, D, D});
    add("wk", {L, kvDim, D});
    add("wv", {L, kvDim, D});
    add("wo", {L, D, D});
    add("rms_ffn", {L, D});
    add("w1", {L, H, D});
    add("w2", {L, D, H});
    add("w3", {L, H, D});
    add("rms_final", {D});
    add("freq_cis_real", {S, headSize / 2});
    add("freq_cis_imag", {S, headSize / 2});
    if (!lay.sharedClassifier)
        add("wcls", {V, D});
    if (lay.fileSize < off)
        throw FileError(name + ": truncated llama2.c checkpoint: the header describes " + std::to_string(off) +
                        " bytes, the file has " + std::to_string(lay.fileSize));
    if (lay.fileSize > off)
        throw FormatError(name + ": llama2.c checkpoint size mismatch: the header describes " +
                          std::to_string(off) + " bytes, the file has " + std::to_string(lay.fileSize) +
                          " (a newer llama2.c version or not a llama2.c file?)");
    return lay;
}

} // namespace qpruner::config
