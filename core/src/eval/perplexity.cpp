#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "qpruner/error.h"

namespace qpruner::eval {

namespace {
constexpr int64_t kLogitChunk = 256; // time steps per log-softmax chunk
}

double sumNll(const model::LlamaModel& model, const at::Tensor& hidden, const at::Tensor& targets)
{
    double total = 0;
    const int64_t T = hidden.size(1);
    for (int64_t t0 = 0; t0 < T; t0 += kLogitChunk) {
        const int64_t n = std::min(kLogitChunk, T - t0);
        const auto logp = at::log_softmax(model.logits(hidden.narrow(1, t0, n)), -1);
        const auto tgt = targets.narrow(1, t0, n).to(at::kLong).unsqueeze(-1);
        total -= logp.gather(-1, tgt).to(at::kDouble).sum().item<double>();
    }
    return total;
}

PerplexityResult evaluatePerplexity(const model::LlamaModel& model, const std::vector<int32_t>& stream,
                                    const PerplexityOptions& o, const ProgressSink& progress,
                                    const CancelToken* cancel)
{
    if (o.seqLen < 2)
        throw ConfigError("--seq-len must be at least 2, got " + std::to_string(o.seqLen));
    if (o.seqLen > model.config().maxSeqLen)
        throw ConfigError("--seq-len " + std::to_string(o.seqLen) + " exceeds the model's maximum length " +
                          std::to_string(model.config().maxSeqLen));
    if (o.batchSize < 1)
        throw ConfigError("--batch-size must be at least 1");
    const int64_t textPerWindow = o.bos ? o.seqLen - 1 : o.seqLen;
    int64_t windows = static_cast<int64_t>(stream.size()) / textPerWindow;
    if (o.maxWindows >= 0)
        windows = std::min(windows, o.maxWindows);
    if (windows == 0)
        throw ConfigError("the text has " + std::to_string(stream.size()) + " tokens, fewer than one window of " +
                          std::to_string(textPerWindow));

    PerplexityResult r;
    r.streamTokens = static_cast<int64_t>(stream.size());
    r.windows = windows;
    const auto t0 = std::chrono::steady_clock::now();
    c10::InferenceMode guard;
    double total = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += o.batchSize) {
        if (cancel)
            cancel->throwIfCancelled();
        const int64_t B = std::min<int64_t>(o.batchSize, windows - w0);
        auto tokens = at::empty({B, o.seqLen}, at::TensorOptions().dtype(at::kLong));
        auto acc = tokens.accessor<int64_t, 2>();
        for (int64_t b = 0; b < B; ++b) {
            const int64_t start = (w0 + b) * textPerWindow;
            int64_t t = 0;
            if (o.bos)
                acc[b][t++] = o.bosId;
            for (int64_t i = 0; t < o.seqLen; ++i, ++t)
                acc[b][t] = stream[static_cast<size_t>(start + i)];
        }
        const auto dev = tokens.to(model.device());
        const auto hidden = model.forwardHidden(dev.narrow(1, 0, o.seqLen - 1));
        for (int64_t b = 0; b < B; ++b) {
            const double nll = sumNll(model, hidden.narrow(0, b, 1), dev.narrow(0, b, 1).narrow(1, 1, o.seqLen - 1));
            r.windowNll.push_back(nll);
            total += nll;
        }
        report(progress, "eval-ppl", w0 + B, windows);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.predictedTokens = windows * (o.seqLen - 1);
    r.meanNll = total / static_cast<double>(r.predictedTokens);
    r.ppl = std::exp(r.meanNll);
    r.tokensPerSecond = r.seconds > 0 ? static_cast<double>(windows * (o.seqLen - 1)) / r.seconds : 0;
    return r;
}

} // namespace qpruner::eval
