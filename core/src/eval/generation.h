// Text generation with a KV cache: greedy (temperature 0) or sampled (temperature, top-p, seed).
// llama2.c semantics for `steps`: the number of positions run, the prompt (BOS included) counting toward it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/llama_model.h"
#include "qpruner/progress.h"
#include "qpruner/tokenizer.h"

namespace qpruner::eval {

struct GenerateOptions {
    int steps = 256;
    double temperature = 1.0; // 0: greedy
    double topP = 0.9;        // 1 or more: no nucleus truncation
    uint64_t seed = 0;
    std::vector<int32_t> stopIds; // generation stops after producing one of these
};

struct GenerateResult {
    std::vector<int32_t> tokens;    // prompt + generated
    std::vector<int32_t> generated; // generated only
    std::vector<double> logprobs;   // per generated token: its log-probability under the model (raw logits, before
                                    // temperature / top-p), as llama.cpp and OpenAI-style APIs report them
    double seconds = 0;
    double tokensPerSecond = 0;     // generated tokens per second (prompt excluded)
};

// A text prompt as `qpruner generate` (and the studio's Generate) feed it: BOS (the tokenizer's, else the
// model's), then the encoded text; the tokenizer's BOS and EOS are added to options->stopIds.
std::vector<int32_t> promptTokens(const model::LlamaModel& model, const Tokenizer& tokenizer, const std::string& text,
                                  GenerateOptions* options);

// `prompt` must hold at least one token (normally BOS).
GenerateResult generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const ProgressSink& progress = {},
                        const CancelToken* cancel = nullptr);

} // namespace qpruner::eval
