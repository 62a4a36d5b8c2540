// qpruner eval-ppl MODEL --file TEXT: perplexity over non-overlapping windows (protocol in README).
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "eval/perplexity.h"
#include "qpruner/memory_model.h"
#include "quant/model_quantizer.h"

namespace qpruner::cli {

int runEvalPpl(const Args& args)
{
    ArgParser p("eval-ppl",
                "Perplexity of a UTF-8 text file: tokenized as one stream without BOS, cut into consecutive\n"
                "non-overlapping windows of --seq-len tokens (the last partial window dropped), each scored from an\n"
                "empty cache; ppl = exp(mean NLL over seq_len-1 predicted tokens per window).");
    p.positional("MODEL", "checkpoint file or directory");
    addTokenizerOption(p);
    addModelOptions(p);
    p.option("file", "PATH", "text file to score");
    p.option("seq-len", "N", "window length in tokens (default: the model's maximum)");
    p.flag("bos", "prepend BOS to each window (then seq_len-1 text tokens per window, all predicted)");
    p.option("max-windows", "N", "score at most N windows (-1: all)", "-1");
    p.option("batch-size", "N", "windows per forward pass", "4");
    p.option("map", "FILE", "apply this precision map to the (dense) model before scoring");
    p.option("format", "F", "apply one format to every decoder linear before scoring (as --map)");
    addAdapterOption(p);
    p.flag("json", "print one JSON object");
    p.example("qpruner eval-ppl ../shared/data/models/stories260K/stories260K.bin "
              "--tokenizer ../shared/data/models/stories260K/tok512.model "
              "--file ../shared/data/text/tinystories/tinystories_valid_subset.txt --seq-len 256");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "eval-ppl", [&](StageSink&) -> nlohmann::json {
        const std::string file = p.get("file");
        eval::PerplexityOptions o;
        const int seqLen = p.find("seq-len") ? p.getInt("seq-len") : 0;
        o.bos = p.isSet("bos");
        o.maxWindows = p.getInt64("max-windows");
        o.batchSize = p.getInt("batch-size");

        const auto model = loadModelOrAdaptedFromArgs(p);
        std::optional<MemoryReport> memory;
        if (p.find("map") || p.find("format")) {
            const PrecisionMap map = precisionMapFromArgs(p);
            memory = memoryReport(model->config(), map);
            quant::quantizeModel(*model, map);
        }
        const auto tok = loadTokenizerFromArgs(p);
        const std::string text = readTextFile(file);
        const auto stream = tok->encode(text);
        o.seqLen = seqLen > 0 ? seqLen : model->config().maxSeqLen;
        o.bosId = tok->bosId() >= 0 ? tok->bosId() : model->config().bosId;
        const bool json = p.isSet("json");
        ProgressLine line;
        const auto r = eval::evaluatePerplexity(*model, stream, o, line.sink(), &signalCancelToken());
        line.finish();
        nlohmann::json j = {{"model", p.get("MODEL")}, {"adapter", p.find("adapter") ? nlohmann::json(p.get("adapter")) : nlohmann::json()}, {"file", file}, {"ppl", r.ppl}, {"mean_nll", r.meanNll},
                            {"seq_len", o.seqLen}, {"bos", o.bos}, {"stream_tokens", r.streamTokens},
                            {"windows", r.windows}, {"predicted_tokens", r.predictedTokens},
                            {"seconds", r.seconds}, {"tokens_per_second", r.tokensPerSecond},
                            {"window_nll", r.windowNll}, {"compute", computeJson(*model)}};
        if (memory)
            j["memory"] = {{"total_bytes", memory->totalBytes},
                           {"linear_bytes", memory->linearBytes},
                           {"linear_bits_per_weight", memory->linearBitsPerWeight},
                           {"bits_per_weight", memory->bitsPerWeight}};
        if (json) {
            printJson(j);
        } else {
            std::fprintf(stderr, "\n");
            std::printf("ppl %.6f  (mean NLL %.6f over %lld tokens, %lld windows of %d%s; %.1f tok/s)\n", r.ppl,
                        r.meanNll, static_cast<long long>(r.predictedTokens), static_cast<long long>(r.windows),
                        o.seqLen, o.bos ? " with BOS" : "", r.tokensPerSecond);
            if (memory)
                std::printf("precision map: %s, %.3f bits per decoder-linear weight\n",
                            humanBytes(memory->totalBytes).c_str(), memory->linearBitsPerWeight);
        }
        return j;
    });
    return 0;
}

} // namespace qpruner::cli
