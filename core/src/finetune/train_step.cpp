// AdamW, the causal-LM loss, the accumulated training step and the peak-memory measurement.
#include "finetune/train_step.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Reduction.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef QPRUNER_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "qpruner/error.h"

namespace qpruner::finetune {

namespace {

constexpr int64_t kIgnoreIndex = -100; // cross_entropy's default ignore_index

void checkBatch(const at::Tensor& tokens, const std::optional<at::Tensor>& mask)
{
    if (tokens.dim() != 2 || tokens.size(1) < 2)
        throw ConfigError("training batch must be [batch, time >= 2] token ids, got " +
                          std::to_string(tokens.dim()) + " dims" +
                          (tokens.dim() == 2 ? " with " + std::to_string(tokens.size(1)) + " tokens" : ""));
    if (mask && mask->sizes() != tokens.sizes())
        throw ConfigError("loss mask must have the batch's shape [" + std::to_string(tokens.size(0)) + ", " +
                          std::to_string(tokens.size(1)) + "]");
}

// The targets tokens[:, 1:] with the masked-out ones set to kIgnoreIndex, on `device`.
at::Tensor targetsOf(const at::Tensor& tokens, const std::optional<at::Tensor>& mask, const at::Device& device)
{
    const int64_t T = tokens.size(1);
    auto target = tokens.narrow(1, 1, T - 1).to(device, at::kLong);
    if (mask)
        target = target.masked_fill(mask->narrow(1, 1, T - 1).to(device, at::kBool).logical_not(), kIgnoreIndex);
    return target;
}

int64_t targetCount(const at::Tensor& tokens, const std::optional<at::Tensor>& mask)
{
    const int64_t T = tokens.size(1);
    const int64_t n = mask ? mask->narrow(1, 1, T - 1).to(at::kBool).sum().item<int64_t>() : tokens.size(0) * (T - 1);
    if (n == 0)
        throw ConfigError("loss mask keeps no target token");
    return n;
}

// Summed NLL of the kept targets (fp32 scalar).
at::Tensor nllSum(const model::LlamaModel& model, const at::Tensor& tokens, const std::optional<at::Tensor>& mask)
{
    const int64_t T = tokens.size(1);
    const auto logits = model.logits(model.forwardHidden(tokens).narrow(1, 0, T - 1));
    const int64_t V = logits.size(-1);
    return at::cross_entropy_loss(logits.reshape({-1, V}), targetsOf(tokens, mask, logits.device()).reshape({-1}),
                                  {}, at::Reduction::Sum, kIgnoreIndex);
}

int64_t currentRssBytes()
{
    std::ifstream in("/proc/self/statm");
    int64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

// VmHWM of /proc/self/status in bytes, -1 when it cannot be read.
int64_t peakRssFromStatus()
{
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmHWM:", 0) == 0) {
            std::istringstream fields(line.substr(6));
            int64_t kb = -1;
            fields >> kb;
            return kb < 0 ? -1 : kb * 1024;
        }
    return -1;
}

// Resets the kernel's peak RSS to the current RSS; false where the kernel does not support it.
bool resetPeakRss()
{
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return out.good() && peakRssFromStatus() >= 0;
}

bool computeDtypeMatches(const QuantSpec& spec, at::ScalarType t)
{
    switch (spec.kind) {
    case QuantKind::F32: return t == at::kFloat;
    case QuantKind::BF16: return t == at::kBFloat16;
    case QuantKind::F16: return t == at::kHalf;
    default: return false;
    }
}

// Restores the model's base layers however the measurement ends.
class LoraScope {
public:
    explicit LoraScope(model::LlamaModel& model) : model_(model) {}
    ~LoraScope() { detachLora(model_); }
    LoraScope(const LoraScope&) = delete;
    LoraScope& operator=(const LoraScope&) = delete;

private:
    model::LlamaModel& model_;
};

} // namespace

AdamW::AdamW(std::vector<at::Tensor> params, const AdamWOptions& o)
    : params_(std::move(params)), m_(params_.size()), v_(params_.size()), steps_(params_.size(), 0), options_(o)
{
    if (!(o.lr >= 0.0))
        throw ConfigError("AdamW: learning rate must be >= 0, got " + std::to_string(o.lr));
    if (!(o.beta1 >= 0.0 && o.beta1 < 1.0) || !(o.beta2 >= 0.0 && o.beta2 < 1.0))
        throw ConfigError("AdamW: betas must be in [0, 1), got " + std::to_string(o.beta1) + ", " +
                          std::to_string(o.beta2));
    if (!(o.eps > 0.0))
        throw ConfigError("AdamW: eps must be positive, got " + std::to_string(o.eps));
    if (!(o.weightDecay >= 0.0))
        throw ConfigError("AdamW: weight decay must be >= 0, got " + std::to_string(o.weightDecay));
    for (size_t i = 0; i < params_.size(); ++i)
        if (!params_[i].defined() || !at::isFloatingType(params_[i].scalar_type()))
            throw ConfigError("AdamW: parameter " + std::to_string(i) + " is not a floating-point tensor");
}

void AdamW::step()
{
    c10::NoGradGuard noGrad;
    const AdamWOptions& o = options_;
    for (size_t i = 0; i < params_.size(); ++i) {
        at::Tensor& p = params_[i];
        if (!p.grad().defined())
            continue;
        if (!m_[i].defined()) {
            m_[i] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
            v_[i] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
        }
        const int64_t t = ++steps_[i];
        const at::Tensor g = p.grad().to(at::kFloat);
        const bool fp32 = p.scalar_type() == at::kFloat;
        at::Tensor w = fp32 ? p : p.to(at::kFloat);
        if (o.weightDecay > 0.0)
            w.mul_(1.0 - o.lr * o.weightDecay);
        m_[i].mul_(o.beta1).add_(g, 1.0 - o.beta1);
        v_[i].mul_(o.beta2).addcmul_(g, g, 1.0 - o.beta2);
        const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
        const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
        const at::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(o.eps);
        w.addcdiv_(m_[i], denom, -o.lr / bc1);
        if (!fp32)
            p.copy_(w);
    }
}

void AdamW::zeroGrad()
{
    for (at::Tensor& p : params_)
        p.mutable_grad() = at::Tensor();
}

void AdamW::setLr(double lr)
{
    if (!(lr >= 0.0))
        throw ConfigError("AdamW: learning rate must be >= 0, got " + std::to_string(lr));
    options_.lr = lr;
}

std::map<std::string, at::Tensor> AdamW::state() const
{
    std::map<std::string, at::Tensor> s;
    for (size_t i = 0; i < params_.size(); ++i)
        if (m_[i].defined()) {
            s["m." + std::to_string(i)] = m_[i];
            s["v." + std::to_string(i)] = v_[i];
        }
    s["steps"] = at::tensor(std::vector<int64_t>(steps_.begin(), steps_.end()), at::kLong);
    return s;
}

void AdamW::loadState(const std::map<std::string, at::Tensor>& state)
{
    const size_t n = params_.size();
    auto it = state.find("steps");
    if (it == state.end() || it->second.scalar_type() != at::kLong || it->second.dim() != 1 ||
        it->second.size(0) != static_cast<int64_t>(n))
        throw FormatError("optimizer state: 'steps' must be int64 [" + std::to_string(n) + "]");
    const at::Tensor steps = it->second.to(at::kCPU).contiguous();
    std::vector<at::Tensor> m(n), v(n);
    size_t moments = 0;
    for (size_t i = 0; i < n; ++i) {
        const int64_t count = steps.data_ptr<int64_t>()[i];
        const auto mi = state.find("m." + std::to_string(i)), vi = state.find("v." + std::to_string(i));
        if ((mi == state.end()) != (vi == state.end()) || (count > 0) != (mi != state.end()))
            throw FormatError("optimizer state: moments of tensor " + std::to_string(i) + " do not match its " +
                              std::to_string(count) + " steps");
        if (mi == state.end())
            continue;
        for (const auto* t : {&mi->second, &vi->second})
            if (t->scalar_type() != at::kFloat || t->sizes() != params_[i].sizes())
                throw FormatError("optimizer state: moments of tensor " + std::to_string(i) +
                                  " must be fp32 of the tensor's shape");
        m[i] = mi->second.to(params_[i].device()).clone();
        v[i] = vi->second.to(params_[i].device()).clone();
        moments += 2;
    }
    if (moments + 1 != state.size())
        throw FormatError("optimizer state: " + std::to_string(state.size() - moments - 1) +
                          " entries belong to no parameter");
    m_ = std::move(m);
    v_ = std::move(v);
    for (size_t i = 0; i < n; ++i)
        steps_[i] = steps.data_ptr<int64_t>()[i];
}

at::Tensor causalLmLoss(const model::LlamaModel& model, const at::Tensor& tokens,
                        const std::optional<at::Tensor>& lossMask)
{
    checkBatch(tokens, lossMask);
    const int64_t count = targetCount(tokens, lossMask);
    return nllSum(model, tokens, lossMask) / static_cast<double>(count);
}

StepResult trainStep(const model::LlamaModel& model, AdamW& optimizer, const std::vector<MicroBatch>& microBatches,
                     double maxGradNorm)
{
    if (microBatches.empty())
        throw ConfigError("training step: no micro-batch");
    int64_t count = 0;
    for (const MicroBatch& mb : microBatches) {
        checkBatch(mb.tokens, mb.lossMask);
        count += targetCount(mb.tokens, mb.lossMask);
    }
    const auto start = std::chrono::steady_clock::now();
    optimizer.zeroGrad();
    at::Tensor lossSum;
    {
        c10::AutoGradMode gradMode(true);
        for (const MicroBatch& mb : microBatches) {
            const at::Tensor part = nllSum(model, mb.tokens, mb.lossMask);
            if (!part.requires_grad())
                throw ConfigError("training step: the model has no trainable tensor (attach LoRA first)");
            (part / static_cast<double>(count)).backward();
            lossSum = lossSum.defined() ? lossSum + part.detach() : part.detach();
        }
    }
    // The global norm in fp32 (clip_grad_norm_: the norm of the per-tensor norms).
    at::Tensor normSq;
    {
        c10::NoGradGuard noGrad;
        for (const at::Tensor& p : optimizer.params())
            if (p.grad().defined()) {
                const at::Tensor sq = p.grad().to(at::kFloat).pow(2).sum();
                normSq = normSq.defined() ? normSq + sq : sq;
            }
    }
    const double gradNorm = normSq.defined() ? std::sqrt(normSq.item<double>()) : 0.0;
    if (maxGradNorm > 0.0 && gradNorm > 0.0) {
        const double coef = maxGradNorm / (gradNorm + 1e-6);
        if (coef < 1.0) {
            c10::NoGradGuard noGrad;
            for (const at::Tensor& p : optimizer.params())
                if (p.grad().defined())
                    p.grad().mul_(coef);
        }
    }
    optimizer.step();
    // Reading the loss after the update also waits for a GPU's queued work, so the time covers all of it.
    const double loss = lossSum.item<double>() / static_cast<double>(count);
    return {loss, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), gradNorm, count};
}

StepResult trainStep(const model::LlamaModel& model, AdamW& optimizer, const at::Tensor& tokens, int64_t microBatch,
                     const std::optional<at::Tensor>& lossMask)
{
    checkBatch(tokens, lossMask);
    if (microBatch < 1)
        throw ConfigError("micro-batch size must be at least 1, got " + std::to_string(microBatch));
    std::vector<MicroBatch> parts;
    for (int64_t b0 = 0; b0 < tokens.size(0); b0 += microBatch) {
        const int64_t n = std::min(microBatch, tokens.size(0) - b0);
        parts.push_back({tokens.narrow(0, b0, n),
                         lossMask ? std::optional<at::Tensor>(lossMask->narrow(0, b0, n)) : std::nullopt});
    }
    return trainStep(model, optimizer, parts);
}

PeakMemory::PeakMemory(const at::Device& device) : device_(device)
{
#ifdef QPRUNER_HAVE_CUDA
    if (device_.is_cuda()) {
        c10::cuda::device_synchronize();
        c10::cuda::CUDACachingAllocator::resetPeakStats(device_.has_index() ? device_.index()
                                                                            : c10::cuda::current_device());
    }
#endif
#ifdef __GLIBC__
    malloc_trim(0); // memory freed by earlier work (e.g. quantizing) would otherwise be reused unseen
#endif
    rssBefore_ = currentRssBytes();
    hwm_ = resetPeakRss();
}

int64_t PeakMemory::peakRssBytes(std::string* source) const
{
    if (hwm_) {
        if (source)
            *source = "VmHWM";
        return peakRssFromStatus();
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    if (source)
        *source = "ru_maxrss";
    return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

int64_t PeakMemory::peakCudaBytes() const
{
#ifdef QPRUNER_HAVE_CUDA
    if (device_.is_cuda()) {
        c10::cuda::device_synchronize();
        // reserved_bytes[0] is StatType::AGGREGATE (the enum's home differs between libtorch versions).
        return c10::cuda::CUDACachingAllocator::getDeviceStats(
                   device_.has_index() ? device_.index() : c10::cuda::current_device())
            .reserved_bytes[0]
            .peak;
    }
#endif
    return 0;
}

nlohmann::ordered_json MemoryMeasurement::toJson() const
{
    return {{"rss_before_bytes", rssBeforeBytes},
            {"peak_rss_bytes", peakRssBytes},
            {"peak_rss_delta_bytes", peakRssBytes - rssBeforeBytes},
            {"peak_rss_source", peakRssSource},
            {"peak_cuda_bytes", peakCudaBytes},
            {"lora_params", loraParams},
            {"steps", steps},
            {"seconds_per_step", secondsPerStep},
            {"loss_before", lossBefore},
            {"loss_after", lossAfter}};
}

MemoryMeasurement measureFinetuneStep(model::LlamaModel& model, const FinetuneSettings& s, uint64_t seed, int steps,
                                      const LoraOptions& lora, const AdamWOptions& adam)
{
    const ModelConfig& config = model.config();
    if (steps < 1)
        throw ConfigError("fine-tuning measurement: steps must be at least 1, got " + std::to_string(steps));
    if (s.batchSize < 1)
        throw ConfigError("fine-tuning settings: batch size must be positive, got " + std::to_string(s.batchSize));
    if (s.seqLen < 2 || s.seqLen > config.maxSeqLen)
        throw ConfigError("fine-tuning settings: sequence length must be in [2, " + std::to_string(config.maxSeqLen) +
                          "], got " + std::to_string(s.seqLen));
    if (s.gradientCheckpointing)
        throw ConfigError("fine-tuning settings: gradient checkpointing is not implemented yet");
    if (!computeDtypeMatches(s.computeDtype, model.computeDtype()))
        throw ConfigError("fine-tuning settings: compute dtype " + s.computeDtype.name() +
                          " differs from the model's activations (" + c10::toString(model.computeDtype()) +
                          "); convert the model or change the setting");

    auto gen = at::detail::createCPUGenerator(seed);
    const at::Tensor tokens =
        at::randint(config.vocabSize, {s.batchSize, s.seqLen}, gen, at::TensorOptions().dtype(at::kLong));

    MemoryMeasurement r;
    r.steps = steps;
    const PeakMemory meter(model.device());
    r.rssBeforeBytes = meter.rssBeforeBytes();

    LoraOptions lo = lora;
    lo.seed = seed;
    std::vector<at::Tensor> params = attachLora(model, s, lo);
    const LoraScope scope(model); // after attaching: a model that already had adapters keeps them
    AdamW optimizer(std::move(params), adam);
    for (const at::Tensor& p : optimizer.params())
        r.loraParams += p.numel();
    double seconds = 0;
    for (int i = 0; i < steps; ++i) {
        const StepResult step = trainStep(model, optimizer, tokens, s.batchSize);
        if (i == 0)
            r.lossBefore = step.loss;
        seconds += step.seconds;
    }
    r.secondsPerStep = seconds / steps;

    r.peakRssBytes = meter.peakRssBytes(&r.peakRssSource);
    r.peakCudaBytes = meter.peakCudaBytes();
    {
        c10::InferenceMode guard;
        r.lossAfter = causalLmLoss(model, tokens).item<double>();
    }
    return r;
}

} // namespace qpruner::finetune
