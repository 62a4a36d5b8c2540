// qpruner make-random --preset NAME --out DIR: a randomly initialised model in the native format.
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "model/dtype.h"
#include "model/random_model.h"

namespace qpruner::cli {

int runMakeRandom(const Args& args)
{
    size_t width = 0;
    for (const auto& pr : model::randomPresets())
        width = std::max(width, pr.name.size());
    std::string presets;
    for (const auto& pr : model::randomPresets())
        presets += "  " + pr.name + std::string(width + 2 - pr.name.size(), ' ') + pr.description + "\n";
    ArgParser p("make-random", "Write a randomly initialised model in a published shape and family config (native\n"
                               "format, readable by transformers), for measuring speed and memory at scale and for\n"
                               "checking each family end to end. Presets:\n" + presets);
    p.option("preset", "NAME", "model shape");
    p.option("out", "DIR", "output directory (replaced atomically if it exists)");
    p.option("dtype", "DTYPE", "float32, bfloat16 or float16", "float32");
    p.option("seed", "N", "random seed", "0");
    p.flag("json", "print one JSON object");
    p.example("qpruner make-random --preset 110m --out /tmp/rand110m");
    if (!p.parse(args))
        return 0;
    const auto& preset = model::findRandomPreset(p.get("preset"));
    const auto dtype = model::parseDtype(p.get("dtype"));
    model::setIntraOpThreads(0);
    const auto m = model::makeRandomModel(preset.config, dtype, static_cast<uint64_t>(p.getInt64("seed")));
    const std::string out = p.get("out");
    model::saveNativeModel(*m, out, {{"source", "make-random"}, {"preset", preset.name}, {"seed", p.getInt64("seed")}});
    if (p.isSet("json"))
        printJson({{"out", out}, {"preset", preset.name}, {"parameters", preset.config.parameterCount()},
                   {"weight_bytes", m->weightBytes()}, {"dtype", model::dtypeName(dtype)}});
    else
        std::cout << "wrote " << out << ": " << preset.name << ", " << withThousands(preset.config.parameterCount())
                  << " parameters, " << humanBytes(m->weightBytes()) << "\n";
    return 0;
}

} // namespace qpruner::cli
