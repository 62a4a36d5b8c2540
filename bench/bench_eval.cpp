// Evaluation throughput: tokens/s of the perplexity pass (batched windows, fp32 logits) for stories260K and
// randomly initialised models of LLaMA shapes, per weight dtype (float32, bfloat16, float16) or precision
// format (int8, nf4, ..., applied to every decoder linear with a bf16 embedding; "mixed": the first and last
// layers bf16, the others alternating nf4 and int8) and thread count. One JSON object per line;
// bench/ratio_table.py turns them into the table. Medians of --reps timed runs after one warm-up run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "quant/model_quantizer.h"

using namespace qpruner;
using bench::arg;
using bench::split;

namespace {

// The precision map a bench variant names.
PrecisionMap variantMap(const std::string& name, int layers)
{
    if (name != "mixed")
        return PrecisionMap(parseQuantSpec(name));
    std::vector<QuantSpec> specs;
    for (int l = 0; l < layers; ++l)
        specs.push_back(parseQuantSpec(l == 0 || l == layers - 1 ? "bf16" : l % 2 ? "nf4" : "int8"));
    return PrecisionMap::fromLayerSpecs(specs);
}

bool isDtype(const std::string& name) { return name == "float32" || name == "bfloat16" || name == "float16"; }

} // namespace

int main(int argc, char** argv)
{
    const auto models = split(arg(argc, argv, "models", "stories260K,15m,110m,1b"));
    const auto dtypes = split(arg(argc, argv, "dtypes", "float32,bfloat16"));
    const auto threads = split(arg(argc, argv, "threads", "1,2"));
    const int reps = std::stoi(arg(argc, argv, "reps", "3"));
    const int seqLen = std::stoi(arg(argc, argv, "seq-len", "256"));
    const std::string shared = arg(argc, argv, "shared-data", QPRUNER_DEFAULT_SHARED_DATA);
    try {
        for (const auto& name : models) {
            auto load = [&] {
                if (name == "stories260K")
                    return model::loadModel(shared + "/models/stories260K/stories260K.bin");
                return model::makeRandomModel(model::findRandomPreset(name).config, at::kFloat, 1);
            };
            std::unique_ptr<model::LlamaModel> base = load();
            const ModelConfig c = base->config();
            // Enough windows for ~0.5 s of work on the small models, one window on the large ones.
            const int64_t params = c.parameterCount();
            const int64_t windows = params < 1'000'000 ? 64 : params < 50'000'000 ? 8 : params < 300'000'000 ? 2 : 1;
            const int len = std::min(seqLen, c.maxSeqLen);
            std::vector<int32_t> stream(static_cast<size_t>(windows * len));
            uint64_t x = 88172645463325252ULL;
            for (auto& t : stream) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                t = static_cast<int32_t>(3 + x % static_cast<uint64_t>(c.vocabSize - 3));
            }
            for (const auto& dt : dtypes) {
                if (isDtype(dt)) {
                    if (!base)
                        base = load();
                    base->to(model::parseDtype(dt), at::Device(at::kCPU));
                } else {
                    base = load();
                    quant::quantizeModel(*base, variantMap(dt, c.numLayers()));
                }
                for (const auto& th : threads) {
                    model::setIntraOpThreads(std::stoi(th));
                    eval::PerplexityOptions o;
                    o.seqLen = len;
                    o.batchSize = 1;
                    o.maxWindows = windows;
                    eval::evaluatePerplexity(*base, stream, o); // warm-up
                    std::vector<double> tps;
                    for (int r = 0; r < reps; ++r)
                        tps.push_back(eval::evaluatePerplexity(*base, stream, o).tokensPerSecond);
                    std::sort(tps.begin(), tps.end());
                    const nlohmann::json j = {{"bench", "eval_ppl"}, {"model", name}, {"parameters", params},
                                              {"dtype", dt}, {"threads", std::stoi(th)}, {"seq_len", len},
                                              {"weight_bytes", base->weightBytes()},
                                              {"windows", windows}, {"reps", reps},
                                              {"tokens_per_second_median", tps[tps.size() / 2]},
                                              {"tokens_per_second_all", tps}};
                    std::cout << j.dump() << std::endl;
                }
                if (!isDtype(dt))
                    base.reset(); // the next dtype variant starts from fresh dense weights
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_eval: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
