#include "eval/generation.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "qpruner/error.h"

namespace qpruner::eval {

namespace {

int32_t sampleToken(const at::Tensor& logits, const GenerateOptions& o, std::mt19937_64& rng)
{
    if (o.temperature <= 0)
        return static_cast<int32_t>(logits.argmax().item<int64_t>());
    const auto probs = at::softmax(logits.to(at::kDouble) / o.temperature, -1).contiguous();
    const double* p = probs.data_ptr<double>();
    const int64_t V = probs.numel();
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    const double r = uni(rng);
    if (o.topP <= 0 || o.topP >= 1) {
        double cdf = 0;
        for (int64_t i = 0; i < V; ++i) {
            cdf += p[i];
            if (r < cdf)
                return static_cast<int32_t>(i);
        }
        return static_cast<int32_t>(V - 1);
    }
    // Nucleus: the smallest set of most probable tokens whose mass exceeds top-p, renormalised.
    std::vector<int32_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    double mass = 0;
    size_t last = idx.size() - 1;
    for (size_t i = 0; i < idx.size(); ++i) {
        mass += p[idx[i]];
        if (mass > o.topP) {
            last = i;
            break;
        }
    }
    const double target = r * mass;
    double cdf = 0;
    for (size_t i = 0; i <= last; ++i) {
        cdf += p[idx[i]];
        if (target < cdf)
            return idx[i];
    }
    return idx[last];
}

} // namespace

std::vector<int32_t> promptTokens(const model::LlamaModel& model, const Tokenizer& tokenizer, const std::string& text,
                                  GenerateOptions* options)
{
    std::vector<int32_t> ids = text.empty() ? std::vector<int32_t>{} : tokenizer.encode(text);
    ids.insert(ids.begin(), tokenizer.bosId() >= 0 ? tokenizer.bosId() : model.config().bosId);
    if (tokenizer.bosId() >= 0)
        options->stopIds.push_back(tokenizer.bosId());
    if (tokenizer.eosId() >= 0)
        options->stopIds.push_back(tokenizer.eosId());
    return ids;
}

GenerateResult generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                        const GenerateOptions& o, const ProgressSink& progress, const CancelToken* cancel)
{
    if (prompt.empty())
        throw ConfigError("generate: the prompt must hold at least one token (BOS)");
    if (o.steps < 1)
        throw ConfigError("--steps must be at least 1");
    if (o.temperature < 0)
        throw ConfigError("--temperature must be >= 0");
    const int64_t steps = std::max<int64_t>(o.steps, static_cast<int64_t>(prompt.size()));
    std::mt19937_64 rng(o.seed);
    c10::InferenceMode guard;
    auto cache = model.makeCache(1, steps);

    GenerateResult r;
    r.tokens = prompt;
    const auto t0 = std::chrono::steady_clock::now();
    // The whole prompt in one pass; then one token per pass. Position p's output predicts token p+1.
    auto promptTensor = at::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()),
                                   at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    auto hidden = model.forwardHidden(promptTensor.to(model.device()), &cache);
    at::Tensor last = model.logits(hidden.select(1, hidden.size(1) - 1)).squeeze(0).to(at::kCPU);
    for (int64_t pos = static_cast<int64_t>(prompt.size()) - 1; pos < steps; ++pos) {
        if (cancel)
            cancel->throwIfCancelled();
        const int32_t next = sampleToken(last, o, rng);
        r.tokens.push_back(next);
        r.generated.push_back(next);
        r.logprobs.push_back(at::log_softmax(last.to(at::kDouble), -1)[next].item<double>());
        report(progress, "generate", static_cast<int64_t>(r.generated.size()),
               steps - static_cast<int64_t>(prompt.size()) + 1);
        if (std::find(o.stopIds.begin(), o.stopIds.end(), next) != o.stopIds.end())
            break;
        if (pos + 1 >= steps)
            break;
        auto in = at::full({1, 1}, static_cast<int64_t>(next), at::TensorOptions().dtype(at::kLong));
        hidden = model.forwardHidden(in.to(model.device()), &cache);
        last = model.logits(hidden.select(1, 0)).squeeze(0).to(at::kCPU);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.tokensPerSecond = r.seconds > 0 ? static_cast<double>(r.generated.size()) / r.seconds : 0;
    return r;
}

} // namespace qpruner::eval
