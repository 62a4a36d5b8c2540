// qpruner prune MODEL --calib SOURCE --ratio R --criterion C --out DIR: structured pruning (LLM-Pruner
// block-wise), written as a smaller dense model in the native format, with a JSON report of every group's score.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "io/atomic_output.h"
#include "model/dtype.h"
#include "prune/pruner.h"
#include "qpruner/error.h"

namespace qpruner::cli {

namespace {

prune::LayerRange parseRange(const ArgParser& p, const std::string& name)
{
    const auto v = p.find(name);
    if (!v)
        return {};
    const auto [b, e] =
        parseLayerSpan(*v, "--" + name + " expects BEGIN:END (layer indices, END exclusive), got '" + *v + "'");
    return {b, e};
}

std::vector<double> parseRatios(const std::string& text)
{
    std::vector<double> out;
    for (const std::string& item : splitList(text)) {
        try {
            size_t used = 0;
            out.push_back(std::stod(item, &used));
            if (used != item.size())
                throw std::invalid_argument(item);
        } catch (const std::exception&) {
            throw UsageError("--layer-ratios expects comma-separated numbers, got '" + item + "'");
        }
    }
    return out;
}

nlohmann::json sizes(const ModelConfig& c, int64_t weightBytes)
{
    return {{"parameters", c.parameterCount()}, {"macs_per_token", c.macsPerToken()}, {"weight_bytes", weightBytes}};
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int runPrune(const Args& args)
{
    ArgParser p("prune",
                "Structured pruning in the LLM-Pruner block-wise style: attention KV groups (whole heads) and MLP\n"
                "channels of the chosen layers are scored on calibration data and the lowest-scoring ones removed;\n"
                "the model is written smaller (sliced matrices, per-layer shapes) in the native format.\n"
                "Criteria: taylor-first |g*w| (default), taylor-vector |sum g*w|, taylor-second |w^2*F/2| (Fisher\n"
                "diagonal from per-sample gradients), taylor-mix |g*w - w^2*F/2|, l1, l2, random.");
    p.positional("MODEL", "checkpoint file or directory");
    addTokenizerOption(p);
    p.option("dtype", "DTYPE", "dtype for importance estimation (gradients)", "float32");
    p.option("device", "DEV", "cpu, cuda or cuda:N", "cpu");
    p.option("threads", "N", "intra-op threads (0: one per core)", "0");
    addCalibrationOptions(p, 10, 64); // --seed also seeds the random criterion
    p.option("ratio", "R", "fraction of units removed in every pruned layer, in [0, 1)", "0.25");
    p.option("layer-ratios", "LIST", "comma-separated ratio per layer (overrides --ratio; ranges default to all)");
    p.option("attn-layers", "B:E", "layers whose attention is pruned, END exclusive (default 1:n-1)");
    p.option("mlp-layers", "B:E", "layers whose MLP is pruned, END exclusive (default 1:n-1)");
    p.option("criterion", "NAME", "taylor-first, taylor-vector, taylor-second, taylor-mix, l1, l2, random",
             "taylor-first");
    p.option("aggregation", "NAME", "how a group's members combine: sum, mean, max, prod, last", "sum");
    p.option("channel-multiple", "M", "round kept MLP channels to a multiple of M", "1");
    p.option("micro-batch", "N", "calibration windows per forward/backward pass", "4");
    p.option("out", "DIR", "output directory (native format; replaced atomically if it exists)");
    p.option("out-dtype", "DTYPE", "dtype of the saved weights (default: the checkpoint's)");
    p.option("report", "FILE", "also write the full JSON report to FILE");
    p.flag("json", "print the full JSON report (per-layer scores, kept and removed units)");
    p.example("qpruner prune ../shared/data/models/stories260K/stories260K.bin --ratio 0.25 --out /tmp/pruned");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "prune", [&](StageSink& sink) -> nlohmann::json {

        const std::string modelPath = p.get("MODEL");
        const std::string out = p.get("out");
        prune::PruneOptions o;
        o.ratio = p.getDouble("ratio");
        if (auto lr = p.find("layer-ratios"))
            o.layerRatios = parseRatios(*lr);
        o.attentionLayers = parseRange(p, "attn-layers");
        o.mlpLayers = parseRange(p, "mlp-layers");
        o.criterion = prune::parseCriterion(p.get("criterion"));
        o.aggregation = prune::parseAggregation(p.get("aggregation"));
        o.channelMultiple = p.getInt("channel-multiple");
        o.microBatch = p.getInt("micro-batch");
        o.seed = static_cast<uint64_t>(p.getInt64("seed"));

        const auto t0 = std::chrono::steady_clock::now();
        const ModelSummary summary = inspectModel(modelPath);
        const auto outDtype = model::parseDtype(p.find("out-dtype").value_or(
            summary.dtype == "mixed" ? std::string("float32") : summary.dtype));
        model::setIntraOpThreads(p.getInt("threads"));
        model::LoadOptions lo;
        lo.dtype = model::parseDtype(p.get("dtype"));
        lo.device = model::parseDevice(p.get("device"));
        const auto model = model::loadModel(modelPath, lo);
        const ModelConfig before = model->config();
        prune::resolveRatios(before, o); // option errors before the slow part

        const auto tok = loadTokenizerFromArgs(p);
        const auto calib = calibrationFromArgs(p, *tok);
        const double loadSeconds = secondsSince(t0);

        const bool json = p.isSet("json");
        const auto t1 = std::chrono::steady_clock::now();
        ProgressLine line;
        const auto scores = prune::estimateImportance(*model, calib, o, line.sink(), &signalCancelToken());
        line.finish();
        const double importanceSeconds = secondsSince(t1);
        const auto t2 = std::chrono::steady_clock::now();
        const auto plan = prune::planPruning(before, scores, o);
        prune::applyPruning(*model, plan);
        const double pruneSeconds = secondsSince(t2);
        if (model->weightDtype() != outDtype)
            model->to(outDtype, model->device());

        const ModelConfig& after = model->config();
        const nlohmann::json settings = {
            {"criterion", prune::criterionName(o.criterion)},
            {"aggregation", prune::aggregationName(o.aggregation)},
            {"ratio", o.ratio},
            {"layer_ratios", o.layerRatios},
            {"channel_multiple", o.channelMultiple},
            {"calibration",
             {{"source", p.get("calib")}, {"samples", calib.size(0)}, {"seq_len", calib.size(1)}, {"seed", o.seed}}}};
        const auto t3 = std::chrono::steady_clock::now();
        model::saveNativeModel(*model, out, {{"source", modelPath}, {"pruning", settings}});
        sink.artifact("checkpoint", out);
        const double saveSeconds = secondsSince(t3);

        nlohmann::json report = {
            {"model", modelPath},
            {"compute", computeJson(*model)},
            {"out", out},
            {"settings", settings},
            {"before", sizes(before, summary.weightBytes)},
            {"after", sizes(after, model->weightBytes())},
            {"seconds",
             {{"load", loadSeconds},
              {"importance", importanceSeconds},
              {"prune", pruneSeconds},
              {"save", saveSeconds}}},
            {"peak_rss_bytes", peakRssBytes()},
            {"layers", prune::layerReportJson(before, after, scores, plan)}};
        if (auto file = p.find("report"))
            io::writeFileAtomic(*file, report.dump(2) + "\n");
        if (json) {
            printJson(report);
            return report;
        }
        std::printf("layer  heads       kv heads    MLP channels\n");
        for (int l = 0; l < after.numLayers(); ++l) {
            const auto &b = before.layers[size_t(l)], &a = after.layers[size_t(l)];
            std::printf("%5d  %4d -> %-4d %4d -> %-4d %6d -> %d\n", l, b.numHeads, a.numHeads, b.numKvHeads,
                        a.numKvHeads, b.ffnDim, a.ffnDim);
        }
        std::printf("parameters   %s -> %s (%.1f%% removed)\n", withThousands(before.parameterCount()).c_str(),
                    withThousands(after.parameterCount()).c_str(),
                    100.0 * double(before.parameterCount() - after.parameterCount()) / double(before.parameterCount()));
        std::printf("MACs/token   %s -> %s\n", withThousands(before.macsPerToken()).c_str(),
                    withThousands(after.macsPerToken()).c_str());
        std::printf("weights      %s -> %s (%s)\n", humanBytes(summary.weightBytes).c_str(),
                    humanBytes(model->weightBytes()).c_str(), model::dtypeName(outDtype).c_str());
        std::printf("time         importance %.2f s, pruning %.2f s; peak RSS %s\nwrote %s\n", importanceSeconds,
                    pruneSeconds, humanBytes(peakRssBytes()).c_str(), out.c_str());
        return report;
    });
    return 0;
}

} // namespace qpruner::cli
