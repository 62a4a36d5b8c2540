// The llama2.c legacy checkpoint ("version 0"): a 7 x int32 header, then fp32 arrays in a fixed order.
// Torch-free: reads the header, derives the ModelConfig and the byte offset of every array, and checks the
// file size, so truncated or mislabelled files fail with a clear message before any weight is read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qpruner/model_config.h"

namespace qpruner::config {

struct Llama2cArray {
    uint64_t offset = 0;         // byte offset in the file
    std::vector<int64_t> shape;  // fp32 elements
};

struct Llama2cLayout {
    ModelConfig config;
    bool sharedClassifier = true;
    uint64_t fileSize = 0;
    // Keys: tok_embeddings, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real,
    // freq_cis_imag and (separate classifier only) wcls. Per-layer arrays have a leading layer dimension.
    std::map<std::string, Llama2cArray> arrays;
};

// Throws FileError (missing, truncated) or FormatError (nonsensical header) naming the file.
Llama2cLayout readLlama2cLayout(const std::filesystem::path& file);

} // namespace qpruner::config
