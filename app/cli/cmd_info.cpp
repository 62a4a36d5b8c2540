// qpruner info MODEL: configuration, per-layer shapes, parameter counts and sizes, from headers only.
#include <iomanip>
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "model/dtype.h"
#include "qpruner/error.h"
#include "qpruner/model_config.h"

namespace qpruner::cli {

int runInfo(const Args& args)
{
    ArgParser p("info", "Show a checkpoint's configuration (llama2.c .bin, GGUF file, Hugging Face or native directory).");
    p.positional("MODEL", "checkpoint file or directory");
    p.flag("json", "print one JSON object");
    p.option("compute-dtype", "DTYPE", "show the compute dtype this override gives (auto, float32, bfloat16)",
             "auto");
    p.example("qpruner info ../shared/data/models/stories260K/stories260K.bin");
    if (!p.parse(args))
        return 0;
    const ModelSummary s = inspectModel(p.get("MODEL"));
    const ModelConfig& c = s.config;
    // Dense checkpoints compute per the policy; quantized ones in the dtype of their dense parts (bf16 embedding).
    at::ScalarType stored = at::kBFloat16;
    try {
        stored = model::parseDtype(s.dtype);
    } catch (const ConfigError&) {
    }
    applyComputeDtype(p);
    const auto compute = model::computeChoiceFor(stored, at::Device(at::kCPU));
    if (p.isSet("json")) {
        nlohmann::json layers = nlohmann::json::array();
        for (int l = 0; l < c.numLayers(); ++l) {
            const auto& ls = c.layers[static_cast<size_t>(l)];
            layers.push_back({{"layer", l}, {"num_heads", ls.numHeads}, {"num_kv_heads", ls.numKvHeads},
                              {"ffn_dim", ls.ffnDim}, {"parameters", c.layerParameterCount(l)},
                              {"attention", c.slidingLayer(l) ? "sliding" : "global"}});
        }
        printJson({{"path", s.path.string()}, {"format", s.format}, {"dtype", s.dtype},
                   {"architecture", c.architecture}, {"hidden_size", c.hiddenSize}, {"head_dim", c.headDim},
                   {"vocab_size", c.vocabSize}, {"max_seq_len", c.maxSeqLen}, {"num_layers", c.numLayers()},
                   {"norm_eps", c.normEps}, {"rope_theta", c.ropeTheta}, {"tied_embeddings", c.tiedEmbeddings},
                   {"attention_bias", c.attentionBias}, {"homogeneous", c.homogeneous()},
                   {"family_features", c.familyFeatures()}, {"qk_norm", c.qkNorm}, {"sandwich_norms", c.sandwichNorms},
                   {"hidden_act", c.hiddenAct}, {"sliding_window", c.slidingWindow},
                   {"rope_scaling", c.ropeScaling.type},
                   {"parameters", s.parameterCount}, {"weight_bytes", s.weightBytes},
                   {"macs_per_token", c.macsPerToken(1)}, {"layers", layers},
                   {"compute", {{"dtype", model::dtypeName(compute.dtype)}, {"reason", compute.reason},
                                {"cpu", model::hostCpuFeatures().describe()}}}});
        return 0;
    }
    std::cout << s.path.string() << "\n"
              << "  format          " << s.format << " (" << s.dtype << ")\n"
              << "  architecture    " << c.architecture << "\n"
              << "  hidden size     " << c.hiddenSize << " (head dim " << c.headDim << ")\n"
              << "  layers          " << c.numLayers() << (c.homogeneous() ? "" : " (per-layer shapes differ)") << "\n"
              << "  vocab           " << c.vocabSize << (c.tiedEmbeddings ? " (tied output head)" : "") << "\n"
              << "  max seq len     " << c.maxSeqLen << "\n"
              << "  rope theta      " << c.ropeTheta << ", norm eps " << c.normEps << "\n";
    if (const auto features = c.familyFeatures(); !features.empty()) {
        std::string joined;
        for (const auto& f : features)
            joined += (joined.empty() ? "" : ", ") + f;
        std::cout << "  family          " << joined << "\n";
    }
    std::cout << "  parameters      " << withThousands(s.parameterCount) << "\n"
              << "  weight bytes    " << withThousands(s.weightBytes) << " (" << humanBytes(s.weightBytes) << ")\n"
              << "  MACs/token      " << withThousands(c.macsPerToken(1)) << " (context 1)\n"
              << "  compute (CPU)   " << compute.reason << "\n\n"
              << "  layer  heads  kv  ffn     parameters" << (c.slidingWindow > 0 ? "  attention" : "") << "\n";
    for (int l = 0; l < c.numLayers(); ++l) {
        const auto& ls = c.layers[static_cast<size_t>(l)];
        std::cout << "  " << std::setw(5) << l << "  " << std::setw(5) << ls.numHeads << "  " << std::setw(2)
                  << ls.numKvHeads << "  " << std::setw(6) << ls.ffnDim << "  ";
        if (c.slidingWindow > 0)
            std::cout << std::left << std::setw(10) << withThousands(c.layerParameterCount(l)) << std::right << "  "
                      << (c.slidingLayer(l) ? "sliding" : "global") << "\n";
        else
            std::cout << withThousands(c.layerParameterCount(l)) << "\n";
    }
    return 0;
}

} // namespace qpruner::cli
