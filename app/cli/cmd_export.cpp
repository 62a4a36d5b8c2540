// qpruner export MODEL --to gguf|hf --out PATH: the model in a form other tools load (qpruner/model_export.h),
// with --dry-run printing every tensor's type and the exact size instead of writing.
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "export_report.h"
#include "progress_line.h"
#include "model/dtype.h"
#include "qpruner/model_export.h"

namespace qpruner::cli {

int runExport(const Args& args)
{
    ArgParser p("export",
                "Writes MODEL as a GGUF file for llama.cpp (--to gguf: per-layer head and FFN counts for pruned\n"
                "models, the tokenizer, each tensor in the ggml type nearest its precision-map format: fp32/bf16/fp16\n"
                "exact, int8 -> q8_0, nf4 -> iq4_nl (or q4_0), int4 -> q4_1, int3 -> q3_K, int2 -> q2_K; rows that do\n"
                "not fit a type's blocks fall back as llama-quantize does, with a warning) or as a Hugging Face\n"
                "directory (--to hf: config.json + model.safetensors + tokenizer files for transformers; quantized\n"
                "formats stored as their dequantized values). --adapter merges a LoRA adapter first.");
    p.positional("MODEL", "checkpoint file or directory");
    p.option("to", "gguf|hf", "output kind");
    p.option("out", "PATH", "output file (gguf) or directory (hf); replaced only once the new one is complete");
    addPrecisionMapOptions(p);
    addAdapterOption(p);
    addTokenizerOption(p);
    p.option("nf4-type", "T", "GGUF type for nf4 weights: iq4_nl or q4_0", "iq4_nl");
    p.option("dtype", "D", "hf: output dtype bf16, fp16 or fp32 (default: the map's embedding format)");
    p.flag("pad-uniform", "hf: zero-pad a pruned model's layers to one shape (an equivalent model)");
    p.option("name", "TEXT", "gguf: general.name (default: the model's file name)");
    p.flag("strict", "treat every warning (type fallbacks, vocabulary padding, ...) as an error");
    p.flag("dry-run", "print the tensors' types and the exact size; write nothing");
    p.option("threads", "N", "intra-op threads (default: all cores)", "0");
    p.flag("json", "print one JSON object");
    p.example("qpruner export ../shared/data/models/stories260K/stories260K.bin --format int8 --to gguf "
              "--out stories-q8.gguf --dry-run");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "export", [&](StageSink& sink) -> nlohmann::json {
        ExportOptions o;
        o.target = parseExportTarget(p.get("to"));
        o.model = p.get("MODEL");
        o.out = p.get("out");
        if (p.find("map") || p.find("format"))
            o.map = precisionMapFromArgs(p);
        if (const auto a = p.find("adapter"))
            o.adapter = *a;
        if (const auto t = p.find("tokenizer"))
            o.tokenizer = *t;
        o.nf4Type = p.get("nf4-type");
        if (const auto d = p.find("dtype"))
            o.dtype = *d;
        o.padUniform = p.isSet("pad-uniform");
        o.strict = p.isSet("strict");
        if (const auto n = p.find("name"))
            o.name = *n;
        model::setIntraOpThreads(p.getInt("threads")); // (o.threads stays 0: already in force)
        const bool dryRun = p.isSet("dry-run");
        const bool json = p.isSet("json");
        ProgressLine line(!dryRun);
        const ExportPlan plan = dryRun ? planExport(o) : exportModel(o, line.sink(), &signalCancelToken());
        line.finish();
        if (!dryRun) {
            if (!json)
                std::fprintf(stderr, "\n");
            sink.artifact(o.target == ExportTarget::Gguf ? "gguf" : "hf-model", o.out);
        }
        const nlohmann::json j = exportReportJson(plan, dryRun);
        if (json)
            printJson(j);
        else
            printExportReport(plan, dryRun, o.out.string());
        return j;
    });
    return 0;
}

} // namespace qpruner::cli
