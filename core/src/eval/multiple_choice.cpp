#include "eval/multiple_choice.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "qpruner/error.h"

namespace qpruner::eval {

namespace {

struct Sequence {
    std::vector<int32_t> input; // model input (whole[-(max+1):][:-1])
    std::vector<int32_t> cont;  // continuation tokens, the last cont.size() targets
    size_t item = 0, choice = 0;
};

double stderrOf(double p, int64_t n)
{
    return n > 1 ? std::sqrt(p * (1 - p) / static_cast<double>(n - 1)) : 0.0;
}

} // namespace

TaskResult evaluateTask(const model::LlamaModel& model, const Tokenizer& tok, const TaskSet& task,
                        const MultipleChoiceOptions& options, const ProgressSink& progress,
                        const CancelToken* cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t maxLen = model.config().maxSeqLen;
    const int32_t bos = tok.bosId() >= 0 ? tok.bosId() : model.config().bosId;
    TaskResult result;
    result.name = task.name;
    result.perItem.resize(task.items.size());

    std::vector<Sequence> seqs;
    for (size_t i = 0; i < task.items.size(); ++i) {
        const TaskItem& item = task.items[i];
        result.perItem[i].gold = item.gold;
        result.perItem[i].choices.resize(item.choices.size());
        for (size_t c = 0; c < item.choices.size(); ++c) {
            const auto& req = item.choices[c];
            std::vector<int32_t> ctx = tok.encode(req.context);
            ctx.insert(ctx.begin(), bos);
            std::vector<int32_t> whole = tok.encode(req.context + req.continuation);
            whole.insert(whole.begin(), bos);
            Sequence s;
            s.item = i;
            s.choice = c;
            if (whole.size() > ctx.size())
                s.cont.assign(whole.begin() + static_cast<std::ptrdiff_t>(ctx.size()), whole.end());
            if (s.cont.empty())
                throw FormatError(task.file.string() + ": item " + std::to_string(i) + " choice " +
                                  std::to_string(c) + " has an empty continuation after tokenization");
            if (s.cont.size() > static_cast<size_t>(maxLen))
                throw FormatError(task.file.string() + ": item " + std::to_string(i) + " choice " +
                                  std::to_string(c) + ": continuation longer than the model's maximum length");
            const size_t keep = std::min<size_t>(whole.size(), static_cast<size_t>(maxLen) + 1);
            s.input.assign(whole.end() - static_cast<std::ptrdiff_t>(keep), whole.end() - 1);
            auto& score = result.perItem[i].choices[c];
            score.contextTokens = static_cast<int>(ctx.size());
            score.continuationTokens = static_cast<int>(s.cont.size());
            score.truncated = keep < whole.size();
            seqs.push_back(std::move(s));
        }
    }

    // Longest first, so padded batches waste little.
    std::vector<size_t> order(seqs.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return seqs[a].input.size() > seqs[b].input.size(); });

    c10::InferenceMode guard;
    const size_t bs = static_cast<size_t>(std::max(1, options.batchSize));
    for (size_t k = 0; k < order.size(); k += bs) {
        if (cancel)
            cancel->throwIfCancelled();
        const size_t n = std::min(bs, order.size() - k);
        const int64_t T = static_cast<int64_t>(seqs[order[k]].input.size());
        // Right padding: causal attention keeps real positions independent of the padding after them.
        auto tokens = at::zeros({static_cast<int64_t>(n), T}, at::TensorOptions().dtype(at::kLong));
        auto acc = tokens.accessor<int64_t, 2>();
        for (size_t b = 0; b < n; ++b) {
            const auto& in = seqs[order[k + b]].input;
            for (size_t t = 0; t < in.size(); ++t)
                acc[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = in[t];
        }
        const auto hidden = model.forwardHidden(tokens.to(model.device()));
        for (size_t b = 0; b < n; ++b) {
            const Sequence& s = seqs[order[k + b]];
            const int64_t len = static_cast<int64_t>(s.input.size());
            const int64_t nc = static_cast<int64_t>(s.cont.size());
            const auto h = hidden.narrow(0, static_cast<int64_t>(b), 1).narrow(1, len - nc, nc);
            const auto logp = at::log_softmax(model.logits(h), -1).squeeze(0).to(at::kCPU); // [nc, V]
            const auto la = logp.accessor<float, 2>();
            double sum = 0;
            for (int64_t t = 0; t < nc; ++t)
                sum += la[t][s.cont[static_cast<size_t>(t)]];
            result.perItem[s.item].choices[s.choice].logprob = sum;
        }
        report(progress, "eval-tasks:" + task.name, static_cast<int64_t>(k + n), static_cast<int64_t>(order.size()));
    }

    int64_t correct = 0, correctNorm = 0;
    for (size_t i = 0; i < task.items.size(); ++i) {
        ItemResult& r = result.perItem[i];
        double best = -INFINITY, bestNorm = -INFINITY;
        for (size_t c = 0; c < r.choices.size(); ++c) {
            const double bytes = static_cast<double>(task.items[i].choices[c].continuation.size());
            const double lp = r.choices[c].logprob;
            if (lp > best) {
                best = lp;
                r.predicted = static_cast<int>(c);
            }
            if (lp / bytes > bestNorm) {
                bestNorm = lp / bytes;
                r.predictedNorm = static_cast<int>(c);
            }
        }
        correct += r.predicted == r.gold;
        correctNorm += r.predictedNorm == r.gold;
    }
    result.items = static_cast<int64_t>(task.items.size());
    result.acc = static_cast<double>(correct) / static_cast<double>(result.items);
    result.accNorm = static_cast<double>(correctNorm) / static_cast<double>(result.items);
    result.accStderr = stderrOf(result.acc, result.items);
    result.accNormStderr = stderrOf(result.accNorm, result.items);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

} // namespace qpruner::eval
