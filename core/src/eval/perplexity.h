// Perplexity over a token stream. Protocol: consecutive non-overlapping windows of seq_len tokens (the last
// partial window dropped), each scored from an empty cache; ppl = exp(mean NLL over seq_len-1 predicted tokens
// per window). With `bos`, each window is BOS + seq_len-1 stream tokens, all of them predicted.
#pragma once

#include <cstdint>
#include <vector>

#include "model/llama_model.h"
#include "qpruner/progress.h"

namespace qpruner::eval {

struct PerplexityOptions {
    int seqLen = 256;
    bool bos = false;
    int bosId = 1;
    int64_t maxWindows = -1; // < 0: all
    int batchSize = 4;       // windows per forward pass
};

struct PerplexityResult {
    double ppl = 0;
    double meanNll = 0;
    int64_t streamTokens = 0;
    int64_t windows = 0;
    int64_t predictedTokens = 0;
    double seconds = 0;
    double tokensPerSecond = 0; // tokens processed by the forward pass per second
    std::vector<double> windowNll; // summed NLL of each window
};

PerplexityResult evaluatePerplexity(const model::LlamaModel& model, const std::vector<int32_t>& stream,
                                    const PerplexityOptions& options, const ProgressSink& progress = {},
                                    const CancelToken* cancel = nullptr);

// Summed NLL of targets [B, T] given final hidden states [B, T, D] (fp64 accumulation, chunked over time so
// the full [B, T, V] logits are never held at once).
double sumNll(const model::LlamaModel& model, const at::Tensor& hidden, const at::Tensor& targets);

} // namespace qpruner::eval
