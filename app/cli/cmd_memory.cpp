// qpruner memory MODEL (--map FILE | --format F): exact bytes of every stored tensor under a precision map, per
// layer and in total, a LoRA fine-tuning memory estimate beside it, and the map as llama-quantize arguments.
#include <cstdio>

#include "cli_context.h"
#include "commands.h"
#include "finetune/train_step.h"
#include "model/dtype.h"
#include "quant/model_quantizer.h"
#include "qpruner/memory_model.h"

namespace qpruner::cli {

int runMemory(const Args& args)
{
    ArgParser p("memory",
                "Exact storage of a model under a precision map (codes, scales, zeros and second-level scales of\n"
                "every tensor), per layer and in total, and an estimate of the peak memory of a LoRA fine-tuning\n"
                "step (adapters, gradients, AdamW states, activations; formula in README). Reads only the\n"
                "checkpoint's configuration.");
    p.positional("MODEL", "checkpoint file or directory");
    addPrecisionMapOptions(p);
    p.option("rank", "R", "LoRA rank", "8");
    p.option("targets", "LIST", "LoRA target modules", "q,k,v,o,gate,up,down");
    p.option("batch-size", "N", "fine-tuning micro-batch", "4");
    p.option("seq-len", "N", "fine-tuning sequence length", "256");
    p.option("compute-dtype", "DTYPE", "activation dtype: fp32, bf16 or fp16", "bf16");
    p.flag("gradient-checkpointing", "estimate with per-layer activation recomputation");
    p.flag("measure", "also load the model, apply the map and measure a real LoRA fine-tuning step (peak RSS)");
    p.option("steps", "N", "optimizer steps to measure (with --measure)", "1");
    p.option("threads", "N", "intra-op threads for --measure (0: one per core)", "0");
    p.flag("llama-quantize", "also print the map as llama.cpp llama-quantize arguments");
    p.flag("tensors", "list every stored tensor (with --json: include them)");
    p.flag("json", "print one JSON object");
    p.example("qpruner memory ../shared/data/models/stories260K/stories260K.bin --format nf4-dq --llama-quantize");
    if (!p.parse(args))
        return 0;
    const ModelSummary summary = inspectModel(p.get("MODEL"));
    const PrecisionMap map = precisionMapFromArgs(p);
    const MemoryReport r = memoryReport(summary.config, map);
    FinetuneSettings fs;
    fs.rank = p.getInt("rank");
    fs.targets = splitList(p.get("targets"));
    fs.batchSize = p.getInt("batch-size");
    fs.seqLen = p.getInt("seq-len");
    fs.computeDtype = parseQuantSpec(p.get("compute-dtype"));
    fs.gradientCheckpointing = p.isSet("gradient-checkpointing");
    std::optional<finetune::MemoryMeasurement> measured;
    if (p.isSet("measure")) {
        // The step runs in the model's compute dtype (the embedding's), so the estimate uses it too.
        model::setIntraOpThreads(p.getInt("threads"));
        auto model = model::loadModel(p.get("MODEL"));
        quant::quantizeModel(*model, map);
        fs.computeDtype = parseQuantSpec(model::dtypeName(model->computeDtype()));
        measured = finetune::measureFinetuneStep(*model, fs, 0, p.getInt("steps"));
    }
    const FinetuneEstimate ft = estimateFinetune(summary.config, map, fs);
    std::optional<LlamaQuantizeArgs> lq;
    if (p.isSet("llama-quantize"))
        lq = llamaQuantizeArgs(map, summary.config);

    if (p.isSet("json")) {
        auto mem = r.toJson();
        if (!p.isSet("tensors"))
            mem.erase("tensors");
        nlohmann::ordered_json j = {{"model", p.get("MODEL")}, {"map", map.toJson()}, {"memory", mem},
                                    {"finetune", ft.toJson()}};
        if (lq)
            j["llama_quantize"] = {{"base_type", lq->baseType}, {"args", lq->args}};
        if (measured)
            j["measured"] = measured->toJson();
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("layer  q       k       v       o       gate    up      down    bits/w   bytes\n");
    for (const auto& l : r.layers) {
        std::printf("%5d", l.layer);
        for (const auto& s : l.specs)
            std::printf("  %-6s", s.name().c_str());
        std::printf("  %6.3f  %s\n", l.linearBitsPerWeight, withThousands(l.bytes).c_str());
    }
    if (p.isSet("tensors"))
        for (const auto& t : r.tensors)
            std::printf("  %-52s %-4s %14s\n", t.name.c_str(), t.dtype.c_str(), withThousands(t.bytes).c_str());
    std::printf("embedding %s, lm_head %s, norms %s, biases %s, linears %s\n", withThousands(r.embeddingBytes).c_str(),
                withThousands(r.lmHeadBytes).c_str(), withThousands(r.normBytes).c_str(),
                withThousands(r.biasBytes).c_str(), withThousands(r.linearBytes).c_str());
    std::printf("total     %s bytes (%s); %.3f bits per linear weight, %.3f overall\n",
                withThousands(r.totalBytes).c_str(), humanBytes(r.totalBytes).c_str(), r.linearBitsPerWeight,
                r.bitsPerWeight);
    std::printf("fine-tuning estimate (LoRA r=%d, batch %d x %d): %s = weights %s + adapters %s + gradients %s"
                " + AdamW %s + activations %s + transient %s\n",
                fs.rank, fs.batchSize, fs.seqLen, humanBytes(ft.totalBytes).c_str(),
                humanBytes(ft.baseWeightBytes).c_str(), humanBytes(ft.loraBytes).c_str(),
                humanBytes(ft.gradientBytes).c_str(), humanBytes(ft.optimizerBytes).c_str(),
                humanBytes(ft.activationBytes).c_str(), humanBytes(ft.transientBytes).c_str());
    if (measured)
        std::printf("measured step: RSS %s before, peak %s (%s), growth %s against an estimated %s without the "
                    "base weights; %.2f s per step, loss %.4f -> %.4f\n",
                    humanBytes(measured->rssBeforeBytes).c_str(), humanBytes(measured->peakRssBytes).c_str(),
                    measured->peakRssSource.c_str(), humanBytes(measured->peakRssBytes - measured->rssBeforeBytes).c_str(),
                    humanBytes(ft.totalBytes - ft.baseWeightBytes).c_str(), measured->secondsPerStep,
                    measured->lossBefore, measured->lossAfter);
    if (lq) {
        std::printf("llama-quantize");
        for (const auto& a : lq->args)
            std::printf(" '%s'", a.c_str());
        std::printf(" model-f16.gguf model-out.gguf %s\n", lq->baseType.c_str());
    }
    return 0;
}

} // namespace qpruner::cli
