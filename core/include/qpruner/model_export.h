// Exporting a model so other tools load it (torch-free interface; the CLI's `qpruner export` and the GUI's
// File > Export Model use it):
//   - GGUF for llama.cpp: architecture "llama" when every layer has the same shape, "deci" (llama.cpp's
//     architecture for heterogeneous LLaMA models, which reads per-layer head, KV-head and FFN counts from
//     array-valued metadata) when pruning left layers of different shapes; the tokenizer as GGUF vocabulary
//     metadata; every tensor in the ggml type nearest to its precision-map format (table below).
//   - A Hugging Face directory (config.json + model.safetensors + tokenizer files) that transformers'
//     LlamaForCausalLM (Qwen2ForCausalLM for q/k/v-bias models) loads. transformers has one head count and FFN
//     width for all layers, so a heterogeneous model is refused unless `padUniform` zero-pads every layer to the
//     largest (an exactly equivalent model: padded heads and channels contribute nothing).
// LoRA adapters (`adapter`) are merged first: each targeted weight becomes deq(base) + scale * B A, the function
// the adapter was trained and evaluated with; its base is the adapter's own base/ directory or MODEL quantized
// with the adapter's precision map, exactly as `qpruner eval-ppl --adapter` builds it.
//
// Format -> GGUF type (docs/export.md has the measured error of each mapping):
//   fp32 -> F32, bf16 -> BF16, fp16 -> F16                      exact
//   int8 (per-row absmax)        -> Q8_0   (blocks of 32, fp16 scale)
//   nf4, nf4-dq (blocks of 64)   -> IQ4_NL (blocks of 32, non-linear 16-level grid; or Q4_0 with nf4Type)
//   int4 (asymmetric, g64/g128)  -> Q4_1   (blocks of 32, scale + min)
//   int3                         -> Q3_K   (super-blocks of 256)
//   int2                         -> Q2_K   (super-blocks of 256)
// ggml quantizes along rows (a linear's input dimension) in whole blocks. A tensor whose rows do not fit its
// type falls back as llama-quantize does (Q2_K/Q3_K -> IQ4_NL; 32-blocks -> F16, refused for a weight beyond
// F16's range), with a warning naming the tensor; `strict` makes any warning an error instead. Norms are F32.
// HF export stores dense weights: a quantized format is written as its dequantized values in the output dtype
// (the file computes what the quantized model computes; the map is recorded in config.json under "qpruner").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/precision_map.h"
#include "qpruner/progress.h"

namespace qpruner {

enum class ExportTarget { Gguf, HuggingFace };
// "gguf" / "hf"; parseExportTarget throws ConfigError naming the text.
const char* exportTargetName(ExportTarget target);
ExportTarget parseExportTarget(std::string_view text);

struct ExportOptions {
    ExportTarget target = ExportTarget::Gguf;
    std::filesystem::path model;     // llama2.c .bin, HF or native directory, or a GGUF file
    std::filesystem::path out;       // GGUF: the file; HF: the directory
    std::optional<PrecisionMap> map; // none: the adapter's map when an adapter is given, else the formats the
                                     // checkpoint stores (a native checkpoint's recorded map, else its dtype)
    std::filesystem::path adapter;   // LoRA adapter directory (qpruner finetune / PEFT), merged first
    std::filesystem::path tokenizer; // empty: the one beside the model (findTokenizerBeside)
    std::string nf4Type = "iq4_nl";  // GGUF type for nf4/nf4-dq: "iq4_nl" or "q4_0"
    std::string dtype;               // HF: "bf16", "fp16" or "fp32" (empty: the embedding's format in the map)
    bool padUniform = false;         // HF: zero-pad a heterogeneous model to uniform layers
    bool strict = false;             // any warning is an error
    std::string name;                // GGUF general.name (empty: the model's file or directory name)
    int threads = 0;                 // 0: libtorch's current setting
};

// One output tensor.
struct ExportTensor {
    std::string name;           // as stored: "blk.3.attn_q.weight" / "model.layers.3.self_attn.q_proj.weight"
    std::vector<int64_t> shape; // [out, in] for weights (PyTorch order)
    std::string source;         // the map's format ("nf4", "bf16", ...; "fp32" for norms)
    std::string type;           // the stored type: ggml name ("iq4_nl", "q8_0", "f32") or safetensors dtype
    int64_t bytes = 0;
    std::string note;           // why the type differs from the mapping's usual one (fallback), else empty
};

struct ExportPlan {
    ExportTarget target = ExportTarget::Gguf;
    std::string architecture;           // GGUF "llama"/"deci"; HF "LlamaForCausalLM"/"Qwen2ForCausalLM"
    std::vector<ExportTensor> tensors;  // in file order
    std::vector<std::string> files;     // what will be written, relative to `out` ("" for the GGUF file itself)
    int64_t totalBytes = 0;             // exact size of everything written (GGUF: the file)
    int64_t parameterCount = 0;
    double bitsPerWeight = 0.0;         // tensor bytes * 8 / parameters
    std::vector<std::string> warnings;  // fallbacks, vocabulary padding, tokenizer files not written, ...
    std::string tokenizer;              // the tokenizer used ("" for HF when none is exported)
};

// What the export would write, from the checkpoint's header, the map and the tokenizer only (no weights are
// loaded): every tensor's type and bytes and the exact total size. Throws ConfigError / FileError / FormatError
// naming the problem: an unreadable model, map or adapter, a map that does not fit the model, an nf4Type or
// dtype that is not one of the above, a heterogeneous model for HF without padUniform (saying what is needed),
// a tokenizer larger than the model's vocabulary, and with `strict` any warning.
ExportPlan planExport(const ExportOptions& options);

// Writes the export (GGUF: one file, written to a temporary sibling and renamed; HF: a directory built beside
// `out` and swapped in), replacing `out` only when the new one is complete. Returns the plan that was written
// (its totalBytes are the bytes on disk). Progress: stage "export", one unit per tensor.
ExportPlan exportModel(const ExportOptions& options, const ProgressSink& progress = {},
                       const CancelToken* cancel = nullptr);

// {"target", "architecture", "files", "total_bytes", "parameters", "bits_per_weight", "tokenizer", "warnings",
//  "tensors": [{"name", "shape", "source", "type", "bytes", "note"}]}: what `qpruner export --json` prints.
nlohmann::json exportPlanJson(const ExportPlan& plan);

} // namespace qpruner
