// qpruner quantize MODEL (--map FILE | --format F) --out DIR: applies a precision map and writes the native format
// with packed tensors (reloadable by every command), reporting the analytic and the held bytes.
#include <chrono>
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "model/dtype.h"
#include "progress_line.h"
#include "quant/model_quantizer.h"
#include "qpruner/error.h"
#include "qpruner/memory_model.h"

namespace qpruner::cli {

int runQuantize(const Args& args)
{
    ArgParser p("quantize",
                "Quantize a dense checkpoint by a precision map and write it in the native format: packed codes\n"
                "and scales per quantized linear, dense tensors elsewhere, the map in config.json.");
    p.positional("MODEL", "dense checkpoint file or directory (pruned or not)");
    addPrecisionMapOptions(p);
    addModelOptions(p);
    p.option("out", "DIR", "output directory (replaced atomically if it exists)");
    p.flag("json", "print one JSON object (memory per layer, bytes, timings)");
    p.example("qpruner quantize ../shared/data/models/stories260K/stories260K.bin --format nf4 --out /tmp/q4");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "quantize", [&](StageSink& sink) -> nlohmann::json {
        const std::string out = p.get("out");
        const PrecisionMap map = precisionMapFromArgs(p);
        const auto t0 = std::chrono::steady_clock::now();
        const auto model = loadModelFromArgs(p);
        const ModelConfig& config = model->config();
        const MemoryReport analytic = memoryReport(config, map); // validates the map against the model
        const int64_t denseBytes = model->weightBytes();
        const auto t1 = std::chrono::steady_clock::now();
        {
            ProgressLine line; // a 7B model quantizes for minutes
            quant::quantizeModel(*model, map, line.sink(), &signalCancelToken());
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        const int64_t held = model->weightBytes();
        if (held != analytic.totalBytes)
            throw Error("quantize: the model holds " + std::to_string(held) + " bytes, the memory model says " +
                        std::to_string(analytic.totalBytes) + " (please report this)");
        model::saveNativeModel(*model, out, {{"source", p.get("MODEL")}});
        sink.artifact("checkpoint", out);
        const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

        auto mem = analytic.toJson();
        mem.erase("tensors");
        const nlohmann::json report = {{"model", p.get("MODEL")},
                                       {"out", out},
                                       {"map", map.toJson()},
                                       {"dense_bytes", denseBytes},
                                       {"held_bytes", held},
                                       {"memory", mem},
                                       {"seconds", {{"quantize", seconds}, {"total", total}}},
                                       {"peak_rss_bytes", peakRssBytes()}};
        if (p.isSet("json")) {
            printJson(report);
            return report;
        }
        std::printf("layer  q       k       v       o       gate    up      down     bytes\n");
        for (const auto& l : analytic.layers) {
            std::printf("%5d", l.layer);
            for (const auto& s : l.specs)
                std::printf("  %-6s", s.name().c_str());
            std::printf("  %s\n", humanBytes(l.bytes).c_str());
        }
        std::printf("weights   %s -> %s (%.2f bits per linear weight, %.2f overall)\n", humanBytes(denseBytes).c_str(),
                    humanBytes(held).c_str(), analytic.linearBitsPerWeight, analytic.bitsPerWeight);
        std::printf("time      quantize %.2f s, total %.2f s\nwrote %s\n", seconds, total, out.c_str());
        return report;
    });
    return 0;
}

} // namespace qpruner::cli
