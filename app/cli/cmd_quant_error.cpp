// qpruner quant-error MODEL --format F: per-layer relative weight and output error of a format, and the
// end-to-end NLL change on calibration data.
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "quant/quant_error.h"

namespace qpruner::cli {

int runQuantError(const Args& args)
{
    ArgParser p("quant-error",
                "How much a format disturbs a dense model: per linear ||W - Q(W)|| / ||W|| and the relative output\n"
                "error on calibration activations (each layer fed the dense model's inputs), plus the mean NLL of\n"
                "the calibration tokens before and after quantizing every decoder linear.");
    p.positional("MODEL", "dense checkpoint file or directory");
    addTokenizerOption(p);
    addModelOptions(p);
    p.option("format", "F", "format to measure (fp16, bf16, int8, nf4, nf4-dq, int4[-g128], int3[-g128], int2[-g128])");
    addCalibrationOptions(p, 16, 128);
    p.option("micro-batch", "N", "calibration windows per forward pass", "4");
    p.flag("json", "print one JSON object");
    p.example("qpruner quant-error ../shared/data/models/stories260K/stories260K.bin --format nf4");
    if (!p.parse(args))
        return 0;
    const QuantSpec spec = parseQuantSpec(p.get("format"));
    const auto model = loadModelFromArgs(p);
    const auto tok = loadTokenizerFromArgs(p);
    const auto calib = calibrationFromArgs(p, *tok);
    ProgressLine line;
    const auto r = quant::measureQuantError(*model, spec, calib, p.getInt("micro-batch"), line.sink(),
                                            &signalCancelToken());
    line.finish();
    if (p.isSet("json")) {
        auto j = r.toJson();
        j["model"] = p.get("MODEL");
        printJson(j);
        return 0;
    }
    std::printf("format %s\nlayer  module  weight err  output err\n", spec.name().c_str());
    for (const auto& m : r.modules)
        std::printf("%5d  %-6s  %10.5f  %10.5f\n", m.layer, linearModuleName(m.module), m.weightRelError,
                    m.outputRelError);
    std::printf("calibration NLL %.5f -> %.5f (+%.5f)\n", r.denseNll, r.quantizedNll, r.quantizedNll - r.denseNll);
    return 0;
}

} // namespace qpruner::cli
