// qpruner finetune MODEL --map map.json --data FILE --out DIR: recovery fine-tuning (LoRA or LoftQ-initialised
// adapters on the quantized model), stage 5 of QPruner.
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "finetune/recovery.h"
#include "qpruner/error.h"

namespace qpruner::cli {

int runFinetune(const Args& args)
{
    ArgParser p("finetune",
                "Recovery fine-tuning: quantizes MODEL (dense, e.g. pruned) with a precision map, attaches LoRA\n"
                "adapters initialised by plain LoRA (B = 0) or LoftQ (alternating quantization and rank-r SVD of the\n"
                "residual, per layer in its own format), and trains them with AdamW (warmup + cosine/linear decay,\n"
                "gradient accumulation and clipping, periodic validation keeping the best adapter). Writes a PEFT-\n"
                "compatible adapter directory (README: Recovery fine-tuning).");
    p.positional("MODEL", "dense checkpoint file or directory");
    addTokenizerOption(p);
    addModelOptions(p);
    p.option("map", "FILE", "precision map JSON of the quantized model");
    p.option("uniform", "F", "one format for every decoder linear instead of --map (nf4, int8, bf16, ...)");
    p.option("data", "FILE", "training data: a file, or tinystories / alpaca (the shared data's subsets)");
    p.option("format", "F", "data format: text (windows of --seq-len tokens) or alpaca (instruction JSON); "
                            "default: alpaca for .json files, else text");
    p.option("seq-len", "N", "text: window length; alpaca: cutoff length", "256");
    p.option("val-fraction", "X", "share of the examples held out for validation", "0.1");
    p.option("val-count", "N", "validation examples (instead of --val-fraction)");
    p.option("max-examples", "N", "use at most the first N examples (-1: all)", "-1");
    p.flag("train-on-inputs", "alpaca: also learn the prompt tokens");
    p.option("rank", "R", "LoRA rank", "8");
    p.option("alpha", "A", "LoRA alpha (scale = alpha / rank)", "16");
    p.option("dropout", "P", "LoRA dropout", "0.05");
    p.option("targets", "LIST", "modules with adapters", "q,k,v,o,gate,up,down");
    p.option("init", "I", "adapter initialisation: loftq or lora", "loftq");
    p.option("loftq-iter", "T", "LoftQ alternating steps", "1");
    p.option("steps", "N", "optimizer steps (0: --epochs passes over the training set)", "0");
    p.option("epochs", "E", "passes over the training set when --steps is 0", "1");
    p.option("batch-size", "N", "sequences per optimizer step (effective batch)", "64");
    p.option("micro-batch", "N", "sequences per forward/backward pass", "4");
    p.option("lr", "X", "peak learning rate", "1e-4");
    p.option("weight-decay", "X", "AdamW decoupled weight decay", "0");
    p.option("warmup", "N", "linear warmup steps", "100");
    p.option("schedule", "S", "learning-rate decay: cosine, linear or constant", "cosine");
    p.option("max-grad-norm", "X", "clip the global gradient norm (0: off)", "1.0");
    p.option("eval-every", "N", "validate every N steps (0: at the end only)", "100");
    p.option("save-every", "N", "checkpoint every N steps (0: at the end only)", "200");
    p.option("max-val", "N", "validate on at most N examples (-1: all)", "-1");
    p.option("seed", "N", "seed of the adapters, the data order and dropout", "42");
    p.option("out", "DIR", "output directory (adapter, base/, checkpoint/, training.json)");
    p.flag("resume", "continue from DIR/checkpoint with the same settings");
    p.flag("merge", "also write DIR/merged: base + adapter as dense weights");
    p.flag("json", "print one JSON object");
    p.example("qpruner finetune ../shared/data/models/stories260K/stories260K.bin --uniform nf4 --data tinystories "
              "--steps 200 --batch-size 16 --warmup 20 --lr 1e-3 --out /tmp/recovered");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "finetune", [&](StageSink& sink) -> nlohmann::json {
        if (p.find("map") && p.find("uniform"))
            throw UsageError("give either --map or --uniform, not both");
        if (!p.find("map") && !p.find("uniform"))
            throw UsageError("--map FILE or --uniform F is required");
        const PrecisionMap map =
            p.find("map") ? PrecisionMap::load(p.get("map")) : PrecisionMap(parseQuantSpec(p.get("uniform")));
        finetune::RecoveryOptions o;
        o.dataFile = calibrationFile(p.get("data"));
        const std::string ext = o.dataFile.extension().string();
        o.data.format = finetune::parseDataFormat(p.find("format") ? p.get("format")
                                                  : ext == ".json"  ? "alpaca"
                                                                    : "text");
        o.data.seqLen = p.getInt("seq-len");
        o.data.validationFraction = p.getDouble("val-fraction");
        if (p.find("val-count"))
            o.data.validationCount = p.getInt64("val-count");
        o.data.maxExamples = p.getInt64("max-examples");
        o.data.trainOnInputs = p.isSet("train-on-inputs");
        o.data.seed = static_cast<uint64_t>(p.getInt64("seed"));
        o.lora.rank = p.getInt("rank");
        o.lora.dropout = p.getDouble("dropout");
        o.lora.targets = splitList(p.get("targets"));
        o.alpha = p.getDouble("alpha");
        o.init.init = finetune::parseLoraInit(p.get("init"));
        o.init.loftqIterations = p.getInt("loftq-iter");
        o.train.steps = p.getInt64("steps");
        o.train.epochs = p.getDouble("epochs");
        o.train.batchSize = p.getInt("batch-size");
        o.train.microBatch = p.getInt("micro-batch");
        o.train.lr = p.getDouble("lr");
        o.train.weightDecay = p.getDouble("weight-decay");
        o.train.warmupSteps = p.getInt64("warmup");
        o.train.schedule = finetune::parseLrSchedule(p.get("schedule"));
        o.train.maxGradNorm = p.getDouble("max-grad-norm");
        o.train.evalEvery = p.getInt64("eval-every");
        o.train.saveEvery = p.getInt64("save-every");
        o.train.maxValidationExamples = p.getInt64("max-val");
        o.train.seed = static_cast<uint64_t>(p.getInt64("seed"));
        o.outDir = p.get("out");
        o.resume = p.isSet("resume");
        o.merge = p.isSet("merge");
        o.baseModel = p.get("MODEL");

        const auto tok = loadTokenizerFromArgs(p);
        const auto model = loadModelFromArgs(p);
        o.train.padId = std::max(0, tok->eosId());
        const bool json = p.isSet("json");
        ProgressLine line;
        const auto r = finetune::runRecovery(*model, map, *tok, o, line.sink(), &signalCancelToken());
        line.finish();
        sink.artifact("adapter", r.adapterDir / finetune::kAdapterWeightsFile);
        sink.artifact("training", r.adapterDir / "training.json");
        if (std::filesystem::exists(r.adapterDir / finetune::kAdapterBaseDir))
            sink.artifact("base", r.adapterDir / finetune::kAdapterBaseDir);
        if (!r.mergedDir.empty())
            sink.artifact("merged", r.mergedDir);
        nlohmann::json j = r.toJson();
        j["model"] = p.get("MODEL");
        j["compute"] = computeJson(*model);
        j["data"]["file"] = o.dataFile.string();
        j["data"]["format"] = finetune::dataFormatName(o.data.format);
        if (json) {
            printJson(j);
        } else {
            std::fprintf(stderr, "\n");
            const auto& t = r.train;
            const auto& v = t.validation;
            std::printf("trained %lld / %lld steps%s in %.1f s (%.0f target tokens/s)\n",
                        static_cast<long long>(t.steps), static_cast<long long>(t.totalSteps),
                        t.cancelled ? " (cancelled)" : "", t.seconds,
                        t.seconds > 0 ? static_cast<double>(t.trainTargets) / t.seconds : 0.0);
            if (!v.empty())
                std::printf("validation loss %.4f (ppl %.3f) at step 0 -> best %.4f (ppl %.3f) at step %lld\n",
                            v.front().loss, v.front().ppl, t.bestValidationLoss, std::exp(t.bestValidationLoss),
                            static_cast<long long>(t.bestStep));
            const auto& init = r.init;
            if (!init.layerLoraInitError.empty()) {
                std::printf("initial error ||W - (Q + AB)|| / ||W|| per layer (lora init | loftq after T steps):\n");
                for (size_t l = 0; l < init.layerLoraInitError.size(); ++l)
                    std::printf("  layer %2zu  %.5f | %s\n", l, init.layerLoraInitError[l],
                                init.layerLoftqErrors.size() > l && !init.layerLoftqErrors[l].empty()
                                    ? std::to_string(init.layerLoftqErrors[l].back()).c_str()
                                    : "-");
            }
            std::printf("peak RSS %s (+%s during training; predicted total %s)\n",
                        humanBytes(t.peakRssBytes).c_str(), humanBytes(t.peakRssBytes - t.rssBeforeBytes).c_str(),
                        humanBytes(r.predicted.totalBytes).c_str());
            std::printf("adapter: %s\n", r.adapterDir.string().c_str());
        }
        return j;
    });
    return 0;
}

} // namespace qpruner::cli
