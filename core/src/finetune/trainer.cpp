// The recovery fine-tuning loop: schedule, batches, validation, checkpoints, resume.
#include "finetune/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>

#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "io/atomic_output.h"
#include "io/json_file.h"
#include "model/safetensors_file.h"
#include "qpruner/error.h"

namespace qpruner::finetune {

namespace {

constexpr int kStateVersion = 1;
constexpr const char* kCheckpointDir = "checkpoint";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kBestAdapterFile = "best_adapter.safetensors";

uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The order of the training examples in `epoch`: a Fisher-Yates shuffle from a stream of (seed, epoch), the same
// on every platform.
std::vector<int64_t> shuffledOrder(int64_t n, uint64_t seed, int64_t epoch)
{
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        order[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(mix(seed, static_cast<uint64_t>(epoch)));
    for (int64_t i = n - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
        std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
    return order;
}

// Right-padded token ids and the loss mask of a set of examples.
MicroBatch makeMicroBatch(const std::vector<const TrainExample*>& examples, int padId, const at::Device& device)
{
    size_t T = 0;
    for (const TrainExample* e : examples)
        T = std::max(T, e->tokens.size());
    const int64_t B = static_cast<int64_t>(examples.size());
    at::Tensor tokens = at::full({B, static_cast<int64_t>(T)}, padId, at::kLong);
    at::Tensor mask = at::zeros({B, static_cast<int64_t>(T)}, at::kBool);
    auto tok = tokens.accessor<int64_t, 2>();
    auto msk = mask.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
        const TrainExample& e = *examples[static_cast<size_t>(b)];
        const size_t firstTarget = static_cast<size_t>(std::max<int32_t>(e.promptTokens, 1));
        for (size_t t = 0; t < e.tokens.size(); ++t) {
            tok[b][static_cast<int64_t>(t)] = e.tokens[t];
            msk[b][static_cast<int64_t>(t)] = t >= firstTarget;
        }
    }
    return {tokens.to(device), mask.to(device)};
}

std::string durationText(double seconds)
{
    const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                      static_cast<long long>(s / 60 % 60));
    else
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
    return buf;
}

nlohmann::ordered_json curvesJson(const TrainResult& r)
{
    nlohmann::ordered_json train = nlohmann::ordered_json::array(), val = nlohmann::ordered_json::array();
    for (const TrainPoint& p : r.train)
        train.push_back({{"step", p.step}, {"loss", p.loss}, {"lr", p.lr}, {"grad_norm", p.gradNorm},
                         {"seconds", p.seconds}});
    for (const ValidationPoint& p : r.validation)
        val.push_back({{"step", p.step}, {"loss", p.loss}, {"ppl", p.ppl}});
    return {{"train", train}, {"validation", val}};
}

} // namespace

LrSchedule parseLrSchedule(const std::string& name)
{
    if (name == "constant")
        return LrSchedule::Constant;
    if (name == "linear")
        return LrSchedule::Linear;
    if (name == "cosine")
        return LrSchedule::Cosine;
    throw ConfigError("unknown learning-rate schedule '" + name + "' (expected constant, linear or cosine)");
}

std::string lrScheduleName(LrSchedule s)
{
    switch (s) {
    case LrSchedule::Constant: return "constant";
    case LrSchedule::Linear: return "linear";
    case LrSchedule::Cosine: return "cosine";
    }
    return "cosine";
}

double scheduledLr(const TrainOptions& o, int64_t step, int64_t total)
{
    const int64_t warmup = std::min(o.warmupSteps, total);
    if (step < warmup)
        return o.lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
    if (o.schedule == LrSchedule::Constant)
        return o.lr;
    const double progress =
        static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
    if (o.schedule == LrSchedule::Linear)
        return o.lr * std::max(0.0, 1.0 - progress);
    return o.lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

nlohmann::ordered_json TrainResult::toJson() const
{
    nlohmann::ordered_json j = {{"total_steps", totalSteps},
                                {"steps", steps},
                                {"resumed_from", resumedFrom},
                                {"cancelled", cancelled},
                                {"best_step", bestStep},
                                {"best_validation_loss", bestStep >= 0 ? nlohmann::ordered_json(bestValidationLoss)
                                                                       : nlohmann::ordered_json()},
                                {"seconds", seconds},
                                {"train_tokens_per_second", seconds > 0 ? trainTargets / seconds : 0.0},
                                {"peak_rss_bytes", peakRssBytes},
                                {"rss_before_bytes", rssBeforeBytes},
                                {"peak_rss_source", peakRssSource},
                                {"peak_cuda_bytes", peakCudaBytes}};
    const auto curves = curvesJson(*this);
    j["train"] = curves["train"];
    j["validation"] = curves["validation"];
    return j;
}

Trainer::Trainer(model::LlamaModel& model, std::vector<at::Tensor> params, const TrainData& data, TrainOptions o,
                 TrainOutput output)
    : model_(model),
      data_(data),
      options_(o),
      output_(std::move(output)),
      optimizer_(std::move(params), AdamWOptions{o.lr, 0.9, 0.999, 1e-8, o.weightDecay})
{
    auto fail = [](const std::string& what) { throw ConfigError("fine-tuning: " + what); };
    if (o.batchSize < 1 || o.microBatch < 1)
        fail("batch size and micro-batch must be at least 1, got " + std::to_string(o.batchSize) + " and " +
             std::to_string(o.microBatch));
    if (o.steps < 0)
        fail("steps must be >= 0, got " + std::to_string(o.steps));
    if (o.steps == 0 && !(o.epochs > 0.0 && std::isfinite(o.epochs)))
        fail("epochs must be positive when steps is 0, got " + std::to_string(o.epochs));
    if (o.warmupSteps < 0 || o.evalEvery < 0 || o.saveEvery < 0)
        fail("warmup, evaluation and save intervals must be >= 0");
    if (!(o.maxGradNorm >= 0.0))
        fail("max gradient norm must be >= 0");
    if (data.train.empty())
        fail("the training set is empty");
    if (optimizer_.params().empty())
        fail("nothing to train (attach LoRA adapters first)");
    const int64_t maxLen = model.config().maxSeqLen;
    for (const auto* set : {&data.train, &data.validation})
        for (size_t i = 0; i < set->size(); ++i)
            if (static_cast<int64_t>((*set)[i].tokens.size()) > maxLen)
                fail(std::string(set == &data.train ? "training" : "validation") + " example " + std::to_string(i) +
                     " has " + std::to_string((*set)[i].tokens.size()) + " tokens, more than the model's context of " +
                     std::to_string(maxLen));
    const int64_t n = static_cast<int64_t>(data.train.size());
    totalSteps_ = o.steps > 0 ? o.steps
                              : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.epochs * static_cast<double>(n) /
                                                                                    o.batchSize)));
    history_.totalSteps = totalSteps_;
}

const std::vector<int64_t>& Trainer::epochOrder(int64_t epoch) const
{
    if (epoch != orderEpoch_) {
        order_ = shuffledOrder(static_cast<int64_t>(data_.train.size()), options_.seed, epoch);
        orderEpoch_ = epoch;
    }
    return order_;
}

std::vector<MicroBatch> Trainer::batchForStep(int64_t step) const
{
    const int64_t n = static_cast<int64_t>(data_.train.size());
    std::vector<const TrainExample*> examples;
    for (int64_t p = step * options_.batchSize; p < (step + 1) * options_.batchSize; ++p)
        examples.push_back(&data_.train[static_cast<size_t>(epochOrder(p / n)[static_cast<size_t>(p % n)])]);
    std::vector<MicroBatch> micro;
    for (size_t i = 0; i < examples.size(); i += static_cast<size_t>(options_.microBatch)) {
        const size_t end = std::min(examples.size(), i + static_cast<size_t>(options_.microBatch));
        micro.push_back(makeMicroBatch({examples.begin() + static_cast<std::ptrdiff_t>(i),
                                        examples.begin() + static_cast<std::ptrdiff_t>(end)},
                                       options_.padId, model_.device()));
    }
    return micro;
}

void Trainer::reseedDropout(int64_t step)
{
    uint64_t index = 0;
    for (auto& layer : model_.layers)
        for (const LinearModule m : kLinearModules) {
            if (auto* lora = dynamic_cast<LoraLinear*>(model::layerLinear(layer, m).get()))
                lora->setDropoutSeed(mix(mix(options_.seed, static_cast<uint64_t>(step)), index));
            ++index;
        }
}

double Trainer::validationLoss(const ProgressSink& progress, const CancelToken* cancel) const
{
    const size_t n = options_.maxValidationExamples >= 0
                         ? std::min(data_.validation.size(), static_cast<size_t>(options_.maxValidationExamples))
                         : data_.validation.size();
    if (n == 0)
        return std::numeric_limits<double>::quiet_NaN();
    c10::InferenceMode guard;
    double nll = 0;
    int64_t count = 0;
    for (size_t i = 0; i < n; i += static_cast<size_t>(options_.microBatch)) {
        if (cancel && cancel->isCancelled())
            return std::numeric_limits<double>::quiet_NaN();
        // A validation pass over a large held-out set takes minutes on a 1B model: it reports like the steps.
        report(progress, "finetune: validation", int64_t(i), int64_t(n),
               "step " + std::to_string(step_) + ", examples " + std::to_string(i + 1) + "-" +
                   std::to_string(std::min(n, i + static_cast<size_t>(options_.microBatch))));
        std::vector<const TrainExample*> examples;
        for (size_t k = i; k < std::min(n, i + static_cast<size_t>(options_.microBatch)); ++k)
            examples.push_back(&data_.validation[k]);
        const MicroBatch mb = makeMicroBatch(examples, options_.padId, model_.device());
        const int64_t targets = mb.lossMask->narrow(1, 1, mb.tokens.size(1) - 1).sum().item<int64_t>();
        if (targets == 0)
            continue;
        nll += causalLmLoss(model_, mb.tokens, mb.lossMask).item<double>() * static_cast<double>(targets);
        count += targets;
    }
    const double loss = count > 0 ? nll / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
    // The last event of a validation: all of it done, with its loss for a live plot.
    report(progress, "finetune: validation", int64_t(n), int64_t(n),
           "step " + std::to_string(step_) + ": validation loss " + std::to_string(loss),
           {{"step", double(step_)}, {"val_loss", loss}});
    return loss;
}

void Trainer::writeAdapter() const
{
    if (!output_.outDir.empty())
        saveAdapter(model_, output_.outDir, output_.adapter);
}

void Trainer::writeCheckpoint(const TrainResult& r) const
{
    if (output_.outDir.empty())
        return;
    std::error_code ec;
    std::filesystem::create_directories(output_.outDir, ec);
    io::StagedDirectory staged(output_.outDir / kCheckpointDir);
    model::writeSafetensorsFile(staged.path() / kAdapterWeightsFile, adapterTensors(model_));
    model::writeSafetensorsFile(staged.path() / kOptimizerFile, optimizer_.state());
    if (!bestAdapter_.empty())
        model::writeSafetensorsFile(staged.path() / kBestAdapterFile, bestAdapter_);
    nlohmann::ordered_json state = {
        {"version", kStateVersion},
        {"step", step_},
        {"total_steps", totalSteps_},
        {"options",
         {{"batch_size", options_.batchSize},
          {"micro_batch", options_.microBatch},
          {"lr", options_.lr},
          {"weight_decay", options_.weightDecay},
          {"warmup_steps", options_.warmupSteps},
          {"schedule", lrScheduleName(options_.schedule)},
          {"max_grad_norm", options_.maxGradNorm},
          {"seed", options_.seed},
          {"train_examples", data_.train.size()},
          {"validation_examples", data_.validation.size()}}},
        {"best_step", r.bestStep},
        {"best_validation_loss", r.bestValidationLoss}};
    const auto curves = curvesJson(r);
    state["train"] = curves["train"];
    state["validation"] = curves["validation"];
    io::writeFileAtomic(staged.path() / kStateFile, state.dump(1) + "\n");
    staged.commit();
}

void Trainer::resume()
{
    const auto dir = output_.outDir / kCheckpointDir;
    if (output_.outDir.empty() || !std::filesystem::exists(dir / kStateFile))
        throw FileError(dir.string() + ": no checkpoint to resume from");
    const nlohmann::json s = io::readJsonFile(dir / kStateFile);
    const std::string source = (dir / kStateFile).string();
    try {
        if (s.at("version").get<int>() != kStateVersion)
            throw FormatError(source + ": unsupported version " + s.at("version").dump());
        const auto& o = s.at("options");
        auto same = [&](const char* key, const nlohmann::json& mine) {
            if (o.at(key) != mine)
                throw ConfigError(source + ": the checkpoint was written with " + key + " = " + o.at(key).dump() +
                                  ", this run has " + mine.dump() + "; resume with the same settings");
        };
        same("batch_size", options_.batchSize);
        same("micro_batch", options_.microBatch);
        same("lr", options_.lr);
        same("weight_decay", options_.weightDecay);
        same("warmup_steps", options_.warmupSteps);
        same("schedule", lrScheduleName(options_.schedule));
        same("max_grad_norm", options_.maxGradNorm);
        same("seed", options_.seed);
        same("train_examples", data_.train.size());
        same("validation_examples", data_.validation.size());
        if (s.at("total_steps").get<int64_t>() != totalSteps_)
            throw ConfigError(source + ": the checkpoint's run has " + s.at("total_steps").dump() +
                              " steps, this one " + std::to_string(totalSteps_));
        const int64_t step = s.at("step").get<int64_t>();
        if (step < 0 || step > totalSteps_)
            throw FormatError(source + ": step " + std::to_string(step) + " is outside the run");
        TrainResult h;
        h.totalSteps = totalSteps_;
        for (const auto& p : s.at("train"))
            h.train.push_back({p.at("step").get<int64_t>(), p.at("loss").get<double>(), p.at("lr").get<double>(),
                               p.at("grad_norm").get<double>(), p.at("seconds").get<double>()});
        for (const auto& p : s.at("validation"))
            h.validation.push_back(
                {p.at("step").get<int64_t>(), p.at("loss").get<double>(), p.at("ppl").get<double>()});
        h.bestStep = s.at("best_step").get<int64_t>();
        h.bestValidationLoss = s.at("best_validation_loss").get<double>();

        // Everything read and checked: now change the model and the optimizer.
        const auto adapter = model::readSafetensorsFile(dir / kAdapterWeightsFile);
        const auto optimizer = model::readSafetensorsFile(dir / kOptimizerFile);
        std::map<std::string, at::Tensor> best;
        if (std::filesystem::exists(dir / kBestAdapterFile))
            best = model::readSafetensorsFile(dir / kBestAdapterFile).tensors;
        setAdapterTensors(model_, adapter.tensors, (dir / kAdapterWeightsFile).string());
        optimizer_.loadState(optimizer.tensors);
        bestAdapter_ = std::move(best);
        step_ = step;
        history_ = std::move(h);
        history_.resumedFrom = step;
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(source + ": " + e.what());
    }
}

TrainResult Trainer::run(const ProgressSink& progress, const CancelToken* cancel)
{
    std::optional<PeakMemory> meter;
    if (options_.measureMemory)
        meter.emplace(model_.device());
    TrainResult r = history_;
    r.steps = step_;
    r.rssBeforeBytes = meter ? meter->rssBeforeBytes() : 0;
    const auto start = std::chrono::steady_clock::now();
    const int64_t firstStep = step_;
    const bool validate = !data_.validation.empty();

    auto evaluate = [&] {
        const double loss = validationLoss(progress, cancel);
        if (std::isnan(loss) && cancel && cancel->isCancelled())
            return; // cut short: no point recorded; the loop below stops at its cancel check
        r.validation.push_back({step_, loss, std::exp(loss)});
        if (r.bestStep < 0 || loss < r.bestValidationLoss) {
            r.bestStep = step_;
            r.bestValidationLoss = loss;
            bestAdapter_.clear();
            for (const auto& [name, t] : adapterTensors(model_))
                bestAdapter_[name] = t.clone();
            writeAdapter();
        }
    };
    if (validate && step_ == 0 && r.validation.empty())
        evaluate(); // the starting point: what the initialisation alone gives

    while (step_ < totalSteps_) {
        if (cancel && cancel->isCancelled()) {
            r.cancelled = true;
            break;
        }
        const double lr = scheduledLr(options_, step_, totalSteps_);
        optimizer_.setLr(lr);
        reseedDropout(step_);
        const StepResult s = trainStep(model_, optimizer_, batchForStep(step_), options_.maxGradNorm);
        ++step_;
        r.train.push_back({step_, s.loss, lr, s.gradNorm, s.seconds});
        r.trainTargets += s.targets;
        if (validate && ((options_.evalEvery > 0 && step_ % options_.evalEvery == 0) || step_ == totalSteps_))
            evaluate();
        if (options_.saveEvery > 0 && step_ % options_.saveEvery == 0 && step_ < totalSteps_) {
            r.steps = step_;
            writeCheckpoint(r);
        }
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double eta = elapsed / static_cast<double>(step_ - firstStep) * static_cast<double>(totalSteps_ - step_);
        char msg[160];
        std::snprintf(msg, sizeof msg, "loss %.4f  lr %.2e  grad %.3f  ETA %s", s.loss, lr, s.gradNorm,
                      durationText(eta).c_str());
        report(progress, "finetune", step_, totalSteps_, msg, {{"loss", s.loss}, {"lr", lr}});
    }
    r.steps = step_;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (meter) {
        r.peakRssBytes = meter->peakRssBytes(&r.peakRssSource);
        r.peakCudaBytes = meter->peakCudaBytes();
    }
    writeCheckpoint(r);
    if (!validate)
        writeAdapter(); // no validation set: the selected adapter is the last one
    else if (!bestAdapter_.empty() && r.bestStep != step_)
        setAdapterTensors(model_, bestAdapter_, "the best adapter"); // leave the model at the selected adapter
    history_ = r;
    return r;
}

} // namespace qpruner::finetune
