// Analytic peak-memory estimate of a LoRA fine-tuning step (the formula is documented term by term in
// qpruner/memory_model.h).
#include <algorithm>

#include "qpruner/error.h"
#include "qpruner/memory_model.h"

namespace qpruner {

namespace {

[[noreturn]] void fail(const std::string& what) { throw ConfigError("fine-tuning settings: " + what); }

int64_t denseBytes(const QuantSpec& spec, const char* what)
{
    if (spec.isQuantized())
        fail(std::string(what) + " must be fp32, bf16 or fp16, got " + spec.name());
    return spec.codeBits() / 8;
}

} // namespace

std::vector<LinearModule> parseLoraTargets(const std::vector<std::string>& names)
{
    if (names.empty())
        fail("targets: no module gets an adapter");
    std::vector<LinearModule> out;
    for (const std::string& name : names) {
        const LinearModule m = [&] {
            try {
                return parseLinearModule(name);
            } catch (const ConfigError& e) {
                fail(std::string("targets: ") + e.what());
            }
        }();
        if (std::find(out.begin(), out.end(), m) != out.end())
            fail("targets: module " + std::string(linearModuleName(m)) + " is listed twice");
        out.push_back(m);
    }
    return out;
}

FinetuneEstimate estimateFinetune(const ModelConfig& config, const PrecisionMap& map, const FinetuneSettings& s)
{
    if (s.rank <= 0)
        fail("rank must be positive, got " + std::to_string(s.rank));
    if (s.batchSize <= 0)
        fail("batch size must be positive, got " + std::to_string(s.batchSize));
    if (s.seqLen <= 0)
        fail("sequence length must be positive, got " + std::to_string(s.seqLen));
    if (!(s.dropout >= 0.0 && s.dropout < 1.0))
        fail("dropout must be in [0, 1), got " + std::to_string(s.dropout));
    const int64_t a = denseBytes(s.adapterDtype, "adapter dtype");
    const int64_t c = denseBytes(s.computeDtype, "compute dtype");
    const std::vector<LinearModule> targets = parseLoraTargets(s.targets);

    FinetuneEstimate e;
    const MemoryReport report = memoryReport(config, map);
    e.baseWeightBytes = report.totalBytes;

    const int64_t B = s.batchSize, T = s.seqLen, D = config.hiddenSize, V = config.vocabSize, r = s.rank;
    const int64_t probBytes = 4 + (c == 4 ? 0 : c);
    int64_t layerSum = 0, layerMax = 0;
    for (int l = 0; l < config.numLayers(); ++l) {
        const LayerShape& shape = config.layers[static_cast<size_t>(l)];
        const int64_t H = shape.numHeads, q = H * config.headDim, kv = int64_t(shape.numKvHeads) * config.headDim,
                      F = shape.ffnDim;
        int64_t perToken = 4 * D + c * D + c * (q + 2 * kv) + c * q + 4 * D + c * D + 4 * c * F;
        for (const LinearModule m : targets) {
            const LinearShape ls = linearShape(config, l, m);
            e.loraParams += r * (ls.rows + ls.cols);
            perToken += c * r;
            if (s.dropout > 0)
                perToken += (c + 1) * ls.cols;
        }
        const int64_t act = B * T * perToken + B * H * T * T * probBytes;
        e.layerActivationBytes.push_back(act);
        layerSum += act;
        layerMax = std::max(layerMax, act);
        for (const LinearModule m : kLinearModules)
            if (report.layers[static_cast<size_t>(l)].specs[static_cast<size_t>(m)].isQuantized()) {
                const LinearShape ls = linearShape(config, l, m);
                e.transientBytes = std::max(e.transientBytes, c * ls.rows * ls.cols);
            }
    }
    e.headActivationBytes = B * T * (4 * D + c * D + 8 * V);
    e.activationBytes = (s.gradientCheckpointing ? config.numLayers() * c * B * T * D + layerMax : layerSum) +
                        e.headActivationBytes;
    e.loraBytes = a * e.loraParams;
    e.gradientBytes = a * e.loraParams;
    e.optimizerBytes = 8 * e.loraParams;
    e.totalBytes = e.baseWeightBytes + e.loraBytes + e.gradientBytes + e.optimizerBytes + e.activationBytes +
                   e.transientBytes;
    return e;
}

nlohmann::ordered_json FinetuneEstimate::toJson() const
{
    return {{"lora_params", loraParams},
            {"lora_bytes", loraBytes},
            {"gradient_bytes", gradientBytes},
            {"optimizer_bytes", optimizerBytes},
            {"activation_bytes", activationBytes},
            {"head_activation_bytes", headActivationBytes},
            {"layer_activation_bytes", layerActivationBytes},
            {"transient_bytes", transientBytes},
            {"base_weight_bytes", baseWeightBytes},
            {"total_bytes", totalBytes}};
}

} // namespace qpruner
