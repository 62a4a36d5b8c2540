// qpruner importance MODEL --calib SOURCE --metrics mi,bi,quant-kl,taylor [--out scores.json]: per-layer (and
// per-module) importance scores on calibration data, for the allocation of precision.
#include <cmath>
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "importance/layer_importance.h"

namespace qpruner::cli {

int runImportance(const Args& args)
{
    ArgParser p("importance",
                "Scores every decoder layer's importance on calibration data (run it on the pruned model):\n"
                "  mi        mutual information (bits) between a projected, binned summary of the layer's output\n"
                "            and the model's predicted token, plug-in estimate with the Miller-Madow correction\n"
                "  bi        block influence: 1 - mean cosine similarity of the layer's input and output\n"
                "  quant-kl  mean KL (nats) of the output distribution when only that layer (or module) is\n"
                "            quantized to --kl-format\n"
                "  taylor    sum of |gradient x weight| over the layer's (module's) weights\n"
                "Each metric is also min-max normalised over layers; --out writes the scores file that\n"
                "`qpruner allocate` reads.");
    p.positional("MODEL", "dense checkpoint file or directory (pruned or not)");
    addTokenizerOption(p);
    addModelOptions(p);
    addCalibrationOptions(p, 32, 128);
    p.option("metrics", "LIST", "comma-separated metrics: mi, bi, quant-kl, taylor, cosine, outlier", "mi,bi,quant-kl,taylor");
    p.option("mi-dims", "K", "mi: random projection dimensions", "2");
    p.option("mi-bins", "B", "mi: quantile bins per dimension", "8");
    p.option("mi-target", "Y", "mi: predicted (the model's argmax) or gold (the next token)", "predicted");
    p.option("mi-seed", "N", "mi: seed of the projection matrix", "0");
    p.flag("mi-plugin", "mi: plain plug-in estimate, without the Miller-Madow correction");
    p.option("kl-format", "F", "quant-kl: the format a layer is quantized to (the lowest candidate)", "nf4");
    p.flag("kl-modules", "quant-kl: also score each linear alone (7x the forward passes of the layer scores)");
    p.option("micro-batch", "N", "calibration windows per forward pass", "4");
    p.option("out", "FILE", "write the scores (JSON, atomically)");
    p.flag("json", "print the scores file's JSON");
    p.example("qpruner importance ../shared/data/models/stories260K/stories260K.bin --metrics mi,bi --out scores.json");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "importance", [&](StageSink& sink) -> nlohmann::json {

        importance::ImportanceOptions o;
        o.metrics = importance::parseMetrics(splitList(p.get("metrics")));
        o.mi.dims = p.getInt("mi-dims");
        o.mi.bins = p.getInt("mi-bins");
        const std::string target = p.get("mi-target");
        if (target != "predicted" && target != "gold")
            throw UsageError("--mi-target must be predicted or gold, got '" + target + "'");
        o.mi.goldTarget = target == "gold";
        o.mi.seed = static_cast<uint64_t>(p.getInt64("mi-seed"));
        o.mi.millerMadow = !p.isSet("mi-plugin");
        o.klFormat = parseQuantSpec(p.get("kl-format"));
        o.klModules = p.isSet("kl-modules");
        o.microBatch = p.getInt("micro-batch");

        const auto model = loadModelFromArgs(p);
        const auto tok = loadTokenizerFromArgs(p);
        ImportanceScores scores;
        const auto calib = calibrationFromArgs(p, *tok, &scores.calibration);
        scores.model = p.get("MODEL");
        scores.numLayers = model->config().numLayers();
        const bool json = p.isSet("json");
        ProgressLine line;
        scores.metrics = importance::layerImportance(*model, calib, o, line.sink(), &signalCancelToken());
        line.finish();
        if (auto out = p.find("out")) {
            scores.save(*out);
            sink.artifact("scores", *out);
        }
        if (json) {
            printJson(scores.toJson());
            return scores.toJson();
        }

        std::printf("%s: %d layers, %lld calibration tokens (%s, %d x %d, seed %llu)\n", scores.model.c_str(),
                    scores.numLayers, static_cast<long long>(scores.calibration.tokens),
                    scores.calibration.source.c_str(), scores.calibration.samples, scores.calibration.seqLen,
                    static_cast<unsigned long long>(scores.calibration.seed));
        std::printf("layer");
        for (const auto& [name, s] : scores.metrics)
            std::printf("  %22s", (name + " (norm)").c_str());
        std::printf("\n");
        for (int l = 0; l < scores.numLayers; ++l) {
            std::printf("%5d", l);
            for (const auto& [name, s] : scores.metrics)
                std::printf("  %13.6g (%5.3f)", s.layers[size_t(l)], s.normalized[size_t(l)]);
            std::printf("\n");
        }
        std::printf("seconds");
        for (const auto& [name, s] : scores.metrics)
            std::printf("  %s %.2f", name.c_str(), s.seconds);
        std::printf("\n");
        if (scores.metrics.size() > 1 && scores.numLayers > 1) {
            std::printf("Spearman rank correlation of the layer scores:\n%10s", "");
            for (const auto& [name, s] : scores.metrics)
                std::printf(" %9s", name.c_str());
            std::printf("\n");
            for (const auto& [a, sa] : scores.metrics) {
                std::printf("%10s", a.c_str());
                for (const auto& [b, sb] : scores.metrics)
                    std::printf(" %9.3f", importance::spearman(sa.layers, sb.layers));
                std::printf("\n");
            }
        }
        for (const auto& [name, s] : scores.metrics) {
            if (s.modules.empty())
                continue;
            std::printf("%s per module (raw):\nlayer", name.c_str());
            for (LinearModule m : kLinearModules)
                std::printf(" %10s", linearModuleName(m));
            std::printf("\n");
            for (int l = 0; l < scores.numLayers; ++l) {
                std::printf("%5d", l);
                for (double v : s.modules[size_t(l)])
                    std::printf(" %10.4g", v);
                std::printf("\n");
            }
        }
        if (auto out = p.find("out"))
            std::printf("wrote %s\n", out->c_str());
        return scores.toJson();
    });
    return 0;
}

} // namespace qpruner::cli
