// Zero-shot multiple-choice scoring as lm-evaluation-harness's loglikelihood: each choice's score is the summed
// log-probability of its continuation tokens given the context. Tokens: ctx = BOS + enc(context),
// whole = BOS + enc(context + continuation), continuation tokens = whole[len(ctx):]; sequences longer than the
// model's maximum length lose tokens from the left. acc = argmax of the sum; acc_norm = argmax of the sum
// divided by the continuation's length in UTF-8 bytes (leading space included).
#pragma once

#include <vector>

#include "eval/task_data.h"
#include "model/llama_model.h"
#include "qpruner/progress.h"
#include "qpruner/tokenizer.h"

namespace qpruner::eval {

struct ChoiceScore {
    double logprob = 0;
    int contextTokens = 0;
    int continuationTokens = 0;
    bool truncated = false;
};

struct ItemResult {
    std::vector<ChoiceScore> choices;
    int gold = 0;
    int predicted = 0;     // argmax of logprob
    int predictedNorm = 0; // argmax of logprob / bytes
};

struct TaskResult {
    std::string name;
    int64_t items = 0;
    double acc = 0, accStderr = 0;
    double accNorm = 0, accNormStderr = 0;
    double seconds = 0;
    std::vector<ItemResult> perItem;
};

struct MultipleChoiceOptions {
    int batchSize = 8; // sequences per forward pass
};

TaskResult evaluateTask(const model::LlamaModel& model, const Tokenizer& tokenizer, const TaskSet& task,
                        const MultipleChoiceOptions& options = {}, const ProgressSink& progress = {},
                        const CancelToken* cancel = nullptr);

} // namespace qpruner::eval
