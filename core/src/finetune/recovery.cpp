// The recovery stage: quantize, attach initialised adapters, train, write the adapter directory.
#include "finetune/recovery.h"

#include <chrono>

#include "io/atomic_output.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "qpruner/error.h"
#include "quant/model_quantizer.h"

namespace qpruner::finetune {

namespace {

// Runs `f` while every LoraLinear slot of `model` holds another layer (`swap` gives it from the adapter layer),
// putting the adapters back afterwards (also when `f` throws).
template <typename Swap, typename F>
void withSlotsSwapped(model::LlamaModel& model, Swap&& swap, F&& f)
{
    std::vector<std::pair<model::LinearPtr*, model::LinearPtr>> saved;
    for (auto& layer : model.layers)
        for (const LinearModule m : kLinearModules) {
            model::LinearPtr& slot = model::layerLinear(layer, m);
            if (const auto* lora = dynamic_cast<const LoraLinear*>(slot.get())) {
                saved.emplace_back(&slot, slot);
                slot = swap(*lora);
            }
        }
    struct Restore {
        std::vector<std::pair<model::LinearPtr*, model::LinearPtr>>& saved;
        ~Restore()
        {
            for (auto& [slot, layer] : saved)
                *slot = std::move(layer);
        }
    } restore{saved};
    f();
}

} // namespace

nlohmann::ordered_json RecoveryResult::toJson() const
{
    return {{"init", init.toJson()},
            {"init_seconds", initSeconds},
            {"data",
             {{"train_examples", trainExamples},
              {"validation_examples", validationExamples},
              {"train_targets", trainTargets},
              {"validation_targets", validationTargets}}},
            {"train", train.toJson()},
            {"memory",
             {{"measured_peak_rss_bytes", train.peakRssBytes},
              {"measured_peak_rss_delta_bytes", train.peakRssBytes - train.rssBeforeBytes},
              {"peak_rss_source", train.peakRssSource},
              {"peak_cuda_bytes", train.peakCudaBytes},
              {"predicted", predicted.toJson()}}},
            {"adapter_dir", adapterDir.string()},
            {"merged_dir", mergedDir.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(mergedDir.string())}};
}

RecoveryResult runRecovery(model::LlamaModel& model, const PrecisionMap& map, const Tokenizer& tokenizer,
                           const RecoveryOptions& o, const ProgressSink& progress, const CancelToken* cancel)
{
    if (o.outDir.empty())
        throw ConfigError("fine-tuning: an output directory is required");
    // Everything that can be checked without touching the model first: data, map, settings.
    const TrainData data = loadTrainData(o.dataFile, tokenizer, o.data);
    map.validate(model.config());
    FinetuneSettings s = o.lora;
    s.batchSize = o.train.microBatch;
    s.seqLen = 2;
    for (const auto* set : {&data.train, &data.validation})
        for (const TrainExample& e : *set)
            s.seqLen = std::max(s.seqLen, static_cast<int>(e.tokens.size()));

    RecoveryResult r;
    r.trainExamples = static_cast<int64_t>(data.train.size());
    r.validationExamples = static_cast<int64_t>(data.validation.size());
    r.trainTargets = TrainData::targetCount(data.train);
    r.validationTargets = TrainData::targetCount(data.validation);

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<at::Tensor> params;
    {
        LayerLinears dense = captureLinears(model);
        quant::quantizeModel(model, map, progress, cancel);
        LoraOptions lo;
        lo.alpha = o.alpha;
        lo.seed = o.train.seed;
        PreparedLora prepared = attachLoraWithInit(model, dense, s, lo, o.init, progress, cancel);
        params = std::move(prepared.params);
        r.init = std::move(prepared.report);
    } // the dense weights go here
    r.initSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.computeDtype = parseQuantSpec(model::dtypeName(model.computeDtype()));
    r.predicted = estimateFinetune(model.config(), map, s);

    AdapterConfig ac;
    ac.rank = s.rank;
    ac.alpha = o.alpha;
    ac.dropout = s.dropout;
    ac.targets = canonicalTargets(s.targets);
    ac.init = o.init.init;
    ac.loftqIterations = o.init.init == LoraInit::Loftq ? o.init.loftqIterations : 0;
    ac.baseModel = o.baseModel;
    ac.precisionMap = map.toJson();
    r.adapterDir = o.outDir;

    std::error_code ec;
    std::filesystem::create_directories(o.outDir, ec);
    if (ec)
        throw FileError(o.outDir.string() + ": cannot create: " + ec.message());
    if (o.init.init == LoraInit::Loftq && !o.resume)
        withSlotsSwapped(
            model, [](const LoraLinear& l) { return l.base(); },
            [&] { model::saveNativeModel(model, o.outDir / kAdapterBaseDir, {{"loftq_iterations", o.init.loftqIterations}}); });

    Trainer trainer(model, std::move(params), data, o.train, TrainOutput{o.outDir, ac});
    if (o.resume)
        trainer.resume();
    r.train = trainer.run(progress, cancel);

    if (o.merge && !r.train.cancelled) {
        r.mergedDir = o.outDir / "merged";
        const at::ScalarType dtype = model.weightDtype();
        withSlotsSwapped(
            model,
            [&](const LoraLinear& l) { return mergedLinear(l, dtype); },
            [&] { model::saveNativeModel(model, r.mergedDir, {{"merged_adapter", o.outDir.string()}}); });
    }
    io::writeFileAtomic(o.outDir / "training.json", r.toJson().dump(2) + "\n");
    return r;
}

TrainResult recoverInPlace(model::LlamaModel& model, const LayerLinears& dense, const TrainData& data,
                           const FinetuneSettings& lora, double alpha, const InitOptions& init,
                           const TrainOptions& train, const CancelToken* cancel)
{
    LoraOptions lo;
    lo.alpha = alpha;
    lo.seed = train.seed;
    InitOptions io = init;
    io.reportBoth = false;
    PreparedLora prepared = attachLoraWithInit(model, dense, lora, lo, io, {}, cancel);
    TrainOptions t = train;
    t.measureMemory = false; // trials run side by side in one process
    Trainer trainer(model, std::move(prepared.params), data, t);
    TrainResult r = trainer.run({}, cancel);
    if (r.cancelled)
        throw CancelledError();
    return r;
}

} // namespace qpruner::finetune
