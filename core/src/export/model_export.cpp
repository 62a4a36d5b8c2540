// Exporting a model as GGUF (llama.cpp) or as a Hugging Face directory (see qpruner/model_export.h). Planning
// reads headers only; writing loads the model once (with its adapter attached, whose layers report their merged
// weights) and streams every tensor into the output.
#include "qpruner/model_export.h"

#include <algorithm>
#include <functional>
#include <map>

#include <ATen/Parallel.h>

#include "config/config_json.h"
#include "export/ggml_types.h"
#include "export/gguf_file.h"
#include "export/gguf_model_config.h"
#include "export/gguf_vocab.h"
#include "finetune/adapter_io.h"
#include "io/atomic_output.h"
#include "io/file_bytes.h"
#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/rope.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"
#include "quant/model_quantizer.h"

namespace qpruner {

namespace {

using gguf::GgmlType;

// ---------------------------------------------------------------------------------------------------------
// What every export needs before any weight is read.

struct Inputs {
    ModelConfig config;                     // of the model that will be loaded (the adapter's base/ when it has one)
    PrecisionMap map;
    std::optional<finetune::AdapterConfig> adapter;
    std::filesystem::path tokenizer;        // empty when none was found (HF only)
    std::string sourceName;
};

QuantSpec specOfDtypeName(const std::string& dtype)
{
    if (dtype == "bfloat16")
        return parseQuantSpec("bf16");
    if (dtype == "float16")
        return parseQuantSpec("fp16");
    return parseQuantSpec("fp32"); // float32, and "mixed": fp32 holds any dense weight exactly
}

Inputs readInputs(const ExportOptions& o)
{
    Inputs in;
    std::filesystem::path modelPath = o.model;
    if (!o.adapter.empty()) {
        in.adapter = finetune::readAdapterConfig(o.adapter);
        std::error_code ec;
        if (std::filesystem::is_directory(o.adapter / finetune::kAdapterBaseDir, ec))
            modelPath = o.adapter / finetune::kAdapterBaseDir;
    }
    const ModelSummary summary = inspectModel(modelPath);
    in.config = summary.config;
    in.sourceName = std::filesystem::absolute(o.model).lexically_normal().filename().string();
    if (in.sourceName.empty())
        in.sourceName = std::filesystem::absolute(o.model).lexically_normal().parent_path().filename().string();

    if (o.map) {
        in.map = *o.map;
    } else if (in.adapter && !in.adapter->precisionMap.is_null()) {
        in.map = PrecisionMap::fromJson(in.adapter->precisionMap);
    } else {
        const QuantSpec stored = specOfDtypeName(summary.dtype);
        in.map = PrecisionMap(stored);
        in.map.setEmbedding(stored);
        in.map.setLmHead(stored);
        if (summary.format == "native") {
            const auto j = io::readJsonFile(modelPath / "config.json");
            if (j.contains("qpruner") && j["qpruner"].contains("precision_map"))
                in.map = PrecisionMap::fromJson(j["qpruner"]["precision_map"]);
        }
    }
    in.map.validate(in.config);

    if (!o.tokenizer.empty()) {
        in.tokenizer = o.tokenizer;
    } else {
        try {
            in.tokenizer = findTokenizerBeside(o.model);
        } catch (const ConfigError&) {
            if (o.target == ExportTarget::Gguf)
                throw ConfigError("GGUF export: no tokenizer beside " + o.model.string() +
                                  " (llama.cpp needs the vocabulary in the file): pass --tokenizer FILE");
        }
    }
    return in;
}

void finishPlan(ExportPlan& plan, const ExportOptions& o, int64_t parameters)
{
    plan.parameterCount = parameters;
    int64_t tensorBytes = 0;
    for (const ExportTensor& t : plan.tensors)
        tensorBytes += t.bytes;
    plan.bitsPerWeight = parameters > 0 ? static_cast<double>(tensorBytes) * 8.0 / static_cast<double>(parameters) : 0.0;
    if (o.strict && !plan.warnings.empty())
        throw ConfigError("export (--strict): " + plan.warnings.front() +
                          (plan.warnings.size() > 1 ? " (and " + std::to_string(plan.warnings.size() - 1) +
                                                          " more warnings)"
                                                    : std::string()));
}

std::vector<int64_t> weightShape(const LinearShape& s) { return {s.rows, s.cols}; }

// ---------------------------------------------------------------------------------------------------------
// GGUF

GgmlType mappedType(const QuantSpec& s, GgmlType nf4Type)
{
    switch (s.kind) {
    case QuantKind::F32: return GgmlType::F32;
    case QuantKind::BF16: return GgmlType::BF16;
    case QuantKind::F16: return GgmlType::F16;
    case QuantKind::Int8: return GgmlType::Q8_0;
    case QuantKind::NF4: return nf4Type;
    case QuantKind::Int4: return GgmlType::Q4_1;
    case QuantKind::Int3: return GgmlType::Q3_K;
    case QuantKind::Int2: return GgmlType::Q2_K;
    }
    return GgmlType::F32;
}

struct TypeChoice {
    GgmlType type;
    std::string note; // empty unless it fell back
};

// The mapped type, or llama-quantize's fallback when rows of `rowLength` do not fit its blocks.
TypeChoice chooseType(const QuantSpec& s, int64_t rowLength, GgmlType nf4Type)
{
    const GgmlType t = mappedType(s, nf4Type);
    if (gguf::ggmlRowFits(t, rowLength))
        return {t, {}};
    const std::string why = std::string(gguf::ggmlTypeName(t)) + " needs rows in multiples of " +
                            std::to_string(gguf::ggmlTypeTraits(t).blockSize) + ", these have " +
                            std::to_string(rowLength);
    if ((t == GgmlType::Q2_K || t == GgmlType::Q3_K) && gguf::ggmlRowFits(GgmlType::IQ4_NL, rowLength))
        return {GgmlType::IQ4_NL, why + ": stored as iq4_nl"};
    return {GgmlType::F16, why + ": stored as f16"};
}

// llama.cpp's LLAMA_FTYPE for a file whose most frequent linear type is `t`.
uint32_t fileType(GgmlType t)
{
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q2_K: return 10;
    case GgmlType::Q3_K: return 11; // Q3_K_S
    case GgmlType::IQ4_NL: return 25;
    case GgmlType::BF16: return 32;
    }
    return 0;
}

// Converts rows of a float [rows, cols] tensor into `type` blocks, rows split across threads.
void writeRows(GgmlType type, const at::Tensor& w, uint8_t* out, const std::string& name)
{
    const at::Tensor t = w.to(at::kFloat).contiguous();
    const int64_t rows = t.dim() == 1 ? 1 : t.size(0);
    const int64_t cols = t.size(-1);
    if (type == GgmlType::F16) {
        const float maxAbs = t.abs().max().item<float>();
        if (!(maxAbs <= 65504.0f))
            throw ConfigError("GGUF export: " + name + " has values up to " + std::to_string(maxAbs) +
                              ", beyond f16's range (65504); choose bf16 or a quantized format for it in the map");
    }
    const float* src = t.data_ptr<float>();
    const int64_t rowBytes = gguf::ggmlRowBytes(type, cols);
    at::parallel_for(0, rows, std::max<int64_t>(1, 65536 / cols), [&](int64_t begin, int64_t end) {
        gguf::quantizeRows(type, src + begin * cols, end - begin, cols, out + begin * rowBytes);
    });
}

// Where the fills read weights from once the model is loaded.
struct WeightSource {
    const model::LlamaModel* model = nullptr;
    const CancelToken* cancel = nullptr;
    const model::LlamaModel& get() const
    {
        if (cancel)
            cancel->throwIfCancelled();
        return *model;
    }
};

struct GgufBuild {
    gguf::GgufWriter writer;
    ExportPlan plan;
};

void buildGguf(GgufBuild& b, const ExportOptions& o, const Inputs& in, const WeightSource& src)
{
    const ModelConfig& c = in.config;
    ExportPlan& plan = b.plan;
    gguf::GgufWriter& w = b.writer;
    plan.target = ExportTarget::Gguf;
    plan.architecture = gguf::architectureFor(c);
    plan.files = {""};
    const bool interleaved = gguf::ropeInterleaved(plan.architecture);

    GgmlType nf4Type = GgmlType::IQ4_NL;
    if (o.nf4Type == "q4_0")
        nf4Type = GgmlType::Q4_0;
    else if (o.nf4Type != "iq4_nl")
        throw ConfigError("GGUF export: nf4 type '" + o.nf4Type + "' is not one of iq4_nl, q4_0");

    const ResolvedPrecision r = in.map.resolve(c);
    std::map<GgmlType, int> linearTypeCounts;

    auto add = [&](const std::string& name, const QuantSpec& spec, TypeChoice choice, std::vector<int64_t> shape,
                   gguf::GgufWriter::Fill fill) {
        const int64_t rowLength = shape.back();
        const int64_t bytes = gguf::ggmlTensorBytes(choice.type, shape.size() == 1 ? 1 : shape.front(), rowLength);
        w.addTensor(name, choice.type, std::vector<int64_t>(shape.rbegin(), shape.rend()), std::move(fill));
        plan.tensors.push_back({name, shape, spec.name(), gguf::ggmlTypeName(choice.type), bytes, choice.note});
        if (!choice.note.empty())
            plan.warnings.push_back(name + ": " + choice.note);
    };
    const QuantSpec fp32 = parseQuantSpec("fp32");
    // Norms are written as llama.cpp applies them (Gemma's 1 + w).
    const float normOffset = model::ggufNormOffset(c);
    auto addNorm = [&](const std::string& name, int64_t length, std::function<at::Tensor(const model::LlamaModel&)> get) {
        add(name, fp32, {GgmlType::F32, {}}, {length}, [&src, get, name, normOffset](uint8_t* out) {
            writeRows(GgmlType::F32, get(src.get()) + normOffset, out, name);
        });
    };

    const TypeChoice embdChoice = chooseType(r.embedding, c.hiddenSize, nf4Type);
    add("token_embd.weight", r.embedding, embdChoice, {c.vocabSize, c.hiddenSize}, [&src, t = embdChoice.type](uint8_t* out) {
        writeRows(t, src.get().embedding, out, "token_embd.weight");
    });
    if (c.ropeScaling.type == "llama3") {
        std::vector<double> div = model::RopeTable::frequencyDivisors(c.headDim, c.ropeTheta, c.ropeScaling);
        add("rope_freqs.weight", fp32, {GgmlType::F32, {}}, {static_cast<int64_t>(div.size())},
            [div](uint8_t* out) {
                std::vector<float> f(div.begin(), div.end());
                gguf::quantizeRows(GgmlType::F32, f.data(), 1, static_cast<int64_t>(f.size()), out);
            });
    }
    addNorm("output_norm.weight", c.hiddenSize, [](const model::LlamaModel& m) { return m.finalNorm; });
    if (!c.tiedEmbeddings) {
        const TypeChoice choice = chooseType(r.lmHead, c.hiddenSize, nf4Type);
        add("output.weight", r.lmHead, choice, {c.vocabSize, c.hiddenSize}, [&src, t = choice.type](uint8_t* out) {
            writeRows(t, src.get().lmHead->denseWeight(), out, "output.weight");
        });
    }
    // Phi-3: llama.cpp reads q/k/v as one attn_qkv tensor and gate/up as one ffn_up of 2 x FFN rows (gate first).
    const bool fused = plan.architecture == "phi3";
    const auto norms = model::layerNormSlots(c);
    for (int l = 0; l < c.numLayers(); ++l) {
        const auto li = static_cast<size_t>(l);
        auto normSlot = [&](const model::LayerNormSlot& slot) {
            addNorm(gguf::layerTensorName(l, slot.ggufName), slot.perHead ? c.headDim : c.hiddenSize,
                    [li, member = slot.member](const model::LlamaModel& m) { return m.layers[li].*member; });
        };
        normSlot(norms[0]); // attn_norm; ffn_norm goes before the MLP, any others after the layer's linears
        for (const LinearModule m : kLinearModules) {
            if (m == LinearModule::Gate)
                for (const model::LayerNormSlot& slot : norms)
                    if (slot.member == &model::DecoderLayer::ffnNorm)
                        normSlot(slot);
            const QuantSpec& spec = r.layers[li][static_cast<size_t>(m)];
            const int64_t hd = c.headDim;
            if (fused && (m == LinearModule::Q || m == LinearModule::Gate)) {
                const bool attn = m == LinearModule::Q;
                const std::vector<LinearModule> parts =
                    attn ? std::vector<LinearModule>{LinearModule::Q, LinearModule::K, LinearModule::V}
                         : std::vector<LinearModule>{LinearModule::Gate, LinearModule::Up};
                int64_t rows = 0;
                for (const LinearModule p : parts) {
                    if (!(r.layers[li][static_cast<size_t>(p)] == spec))
                        throw ConfigError("GGUF export: llama.cpp's phi3 stores " +
                                          std::string(attn ? "q, k and v" : "gate and up") + " of a layer as one "
                                          "tensor, so they need one format; layer " + std::to_string(l) + " has " +
                                          spec.name() + " and " + r.layers[li][static_cast<size_t>(p)].name());
                    rows += linearShape(c, l, p).rows;
                }
                const std::string name = gguf::layerTensorName(l, attn ? "attn_qkv.weight" : "ffn_up.weight");
                const TypeChoice choice = chooseType(spec, c.hiddenSize, nf4Type);
                linearTypeCounts[choice.type] += 1;
                add(name, spec, choice, {rows, c.hiddenSize}, [&src, li, parts, t = choice.type, name](uint8_t* out) {
                    std::vector<at::Tensor> ws;
                    for (const LinearModule p : parts)
                        ws.push_back(model::layerLinear(src.get().layers[li], p)->denseWeight());
                    writeRows(t, at::cat(ws, 0), out, name);
                });
                continue;
            }
            if (fused && (m == LinearModule::K || m == LinearModule::V || m == LinearModule::Up))
                continue;
            const LinearShape s = linearShape(c, l, m);
            const TypeChoice choice = chooseType(spec, s.cols, nf4Type);
            linearTypeCounts[choice.type] += 1;
            const bool permute = interleaved && (m == LinearModule::Q || m == LinearModule::K);
            const std::string prefix = gguf::linearTensorPrefix(l, m);
            add(prefix + ".weight", spec, choice, weightShape(s),
                [&src, li, m, permute, hd, t = choice.type, name = prefix + ".weight"](uint8_t* out) {
                    at::Tensor wt = model::layerLinear(src.get().layers[li], m)->denseWeight();
                    if (permute)
                        wt = wt.index_select(0, model::halfToInterleavedRows(wt.size(0) / hd, hd));
                    writeRows(t, wt, out, name);
                });
            if (c.attentionBias && (m == LinearModule::Q || m == LinearModule::K || m == LinearModule::V)) {
                add(prefix + ".bias", fp32, {GgmlType::F32, {}}, {s.rows},
                    [&src, li, m, permute, hd, name = prefix + ".bias"](uint8_t* out) {
                        at::Tensor bias = *model::layerLinear(src.get().layers[li], m)->bias();
                        if (permute)
                            bias = bias.index_select(0, model::halfToInterleavedRows(bias.size(0) / hd, hd));
                        writeRows(GgmlType::F32, bias, out, name);
                    });
            }
        }
        for (size_t i = 1; i < norms.size(); ++i)
            if (norms[i].member != &model::DecoderLayer::ffnNorm)
                normSlot(norms[i]);
    }

    if (c.slidingWindow > 0 && (plan.architecture == "llama" || plan.architecture == "deci" || plan.architecture == "phi3"))
        plan.warnings.push_back("llama.cpp's " + plan.architecture + " architecture attends to every earlier position: "
                                "this model's sliding window of " + std::to_string(c.slidingWindow) +
                                " tokens is not applied there, so outputs differ beyond that length");

    // Metadata: general.*, the hyperparameters, the vocabulary, provenance.
    w.set("general.name", gguf::Value::string(o.name.empty() ? in.sourceName : o.name));
    gguf::writeModelConfig(w, c);
    GgmlType mostFrequent = GgmlType::F32;
    int best = -1;
    bool anyQuantized = false;
    for (const auto& [type, count] : linearTypeCounts) {
        anyQuantized = anyQuantized || gguf::ggmlTypeTraits(type).quantized;
        if (count > best) {
            best = count;
            mostFrequent = type;
        }
    }
    w.set("general.file_type", gguf::Value::u32(fileType(mostFrequent)));
    if (anyQuantized)
        w.set("general.quantization_version", gguf::Value::u32(2));
    gguf::GgufVocab vocab = gguf::vocabFromTokenizerFile(in.tokenizer, c.vocabSize);
    gguf::writeVocab(w, vocab);
    for (const std::string& warning : vocab.warnings)
        plan.warnings.push_back(warning);
    plan.tokenizer = in.tokenizer.string();
    w.set("qpruner.precision_map", gguf::Value::string(in.map.toJson().dump()));
    if (in.adapter)
        w.set("qpruner.adapter", gguf::Value::string(o.adapter.string()));
    plan.totalBytes = static_cast<int64_t>(w.fileSize());
    finishPlan(plan, o, c.parameterCount());
}

// ---------------------------------------------------------------------------------------------------------
// Hugging Face

// The uniform shape every layer is padded to, or a ConfigError saying what the model needs.
LayerShape uniformShape(const ModelConfig& c, bool padUniform)
{
    LayerShape most{};
    for (const LayerShape& s : c.layers) {
        most.numHeads = std::max(most.numHeads, s.numHeads);
        most.numKvHeads = std::max(most.numKvHeads, s.numKvHeads);
        most.ffnDim = std::max(most.ffnDim, s.ffnDim);
    }
    if (c.homogeneous())
        return most;
    auto describe = [](const LayerShape& s) {
        return std::to_string(s.numHeads) + " heads / " + std::to_string(s.numKvHeads) + " KV heads / FFN " +
               std::to_string(s.ffnDim);
    };
    int other = 0;
    while (c.layers[static_cast<size_t>(other)] == c.layers.front())
        ++other;
    if (!padUniform)
        throw ConfigError("HF export: the layers differ in shape (layer 0: " + describe(c.layers.front()) + "; layer " +
                          std::to_string(other) + ": " + describe(c.layers[static_cast<size_t>(other)]) +
                          "), and transformers' LlamaConfig has one num_attention_heads, num_key_value_heads and "
                          "intermediate_size for every layer. Export --to gguf instead (llama.cpp reads per-layer "
                          "sizes), or pass --pad-uniform to zero-pad every layer to " + describe(most) +
                          " (the padded model computes the same outputs, at the memory of the unpadded shape)");
    for (size_t l = 0; l < c.layers.size(); ++l) {
        const LayerShape& s = c.layers[l];
        if (s.numHeads * most.numKvHeads != most.numHeads * s.numKvHeads)
            throw ConfigError("HF export --pad-uniform: layer " + std::to_string(l) + " has " + describe(s) +
                              ", a query-to-KV group size other than the padded " + describe(most) +
                              "; zero padding cannot keep its heads' KV assignment");
    }
    return most;
}

at::Tensor padRows(const at::Tensor& t, int64_t rows)
{
    if (t.size(0) == rows)
        return t;
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    shape[0] = rows - t.size(0);
    return at::cat({t, at::zeros(shape, t.options())}, 0);
}

at::Tensor padCols(const at::Tensor& t, int64_t cols)
{
    if (t.size(1) == cols)
        return t;
    return at::cat({t, at::zeros({t.size(0), cols - t.size(1)}, t.options())}, 1);
}

// Zero-pads every layer of a dense model to `target` (heads appended after the real ones, so query head i keeps
// its KV head i / group).
void padModel(model::LlamaModel& m, const LayerShape& target)
{
    ModelConfig& c = m.mutableConfig();
    const int64_t hd = c.headDim;
    for (size_t l = 0; l < m.layers.size(); ++l) {
        model::DecoderLayer& L = m.layers[l];
        auto rows = [&](model::LinearPtr& lin, int64_t n) {
            std::optional<at::Tensor> b = lin->bias();
            if (b)
                b = padRows(*b, n);
            lin = std::make_shared<model::DenseLinear>(padRows(lin->denseWeight(), n), b);
        };
        auto cols = [&](model::LinearPtr& lin, int64_t n) {
            lin = std::make_shared<model::DenseLinear>(padCols(lin->denseWeight(), n), lin->bias());
        };
        rows(L.q, target.numHeads * hd);
        rows(L.k, target.numKvHeads * hd);
        rows(L.v, target.numKvHeads * hd);
        cols(L.o, target.numHeads * hd);
        rows(L.gate, target.ffnDim);
        rows(L.up, target.ffnDim);
        cols(L.down, target.ffnDim);
        c.layers[l] = target;
    }
}

at::ScalarType hfDtype(const ExportOptions& o, const PrecisionMap& map)
{
    return o.dtype.empty() ? quant::denseDtype(map.embedding()) : model::parseDtype(o.dtype);
}

// The tokenizer files an HF directory gets: (file to copy, name in the output); warnings for what cannot go.
std::vector<std::pair<std::filesystem::path, std::string>> hfTokenizerFiles(const Inputs& in,
                                                                            std::vector<std::string>& warnings)
{
    std::vector<std::pair<std::filesystem::path, std::string>> files;
    std::error_code ec;
    if (in.tokenizer.empty()) {
        warnings.push_back("no tokenizer found beside the model: the directory has none (pass --tokenizer)");
        return files;
    }
    const std::filesystem::path dir = in.tokenizer.parent_path();
    const std::string ext = in.tokenizer.extension().string();
    if (ext == ".model") {
        files.emplace_back(in.tokenizer, "tokenizer.model");
    } else if (ext == ".json") {
        files.emplace_back(in.tokenizer, "tokenizer.json");
    } else {
        warnings.push_back(in.tokenizer.string() + " is a llama2.c tokenizer, which transformers cannot read; pass "
                                                   "--tokenizer with its SentencePiece .model to include one");
        return files;
    }
    for (const char* extra : {"tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
        if (std::filesystem::is_regular_file(dir / extra, ec))
            files.emplace_back(dir / extra, extra);
    return files;
}

// tokenizer_config.json for a bare SentencePiece model (LlamaTokenizer), when none is copied.
std::string sentencePieceTokenizerConfig(const ModelConfig& c)
{
    nlohmann::ordered_json j = {{"tokenizer_class", "LlamaTokenizer"},
                                {"add_bos_token", true},
                                {"add_eos_token", false},
                                {"bos_token", "<s>"},
                                {"eos_token", "</s>"},
                                {"unk_token", "<unk>"},
                                {"model_max_length", c.maxSeqLen},
                                {"legacy", true}};
    return j.dump(2) + "\n";
}

struct HfBuild {
    ExportPlan plan;
    ModelConfig config; // as written (padded)
    at::ScalarType dtype = at::kBFloat16;
    nlohmann::json extra;
    std::vector<std::pair<std::filesystem::path, std::string>> tokenizerFiles;
    std::string generatedTokenizerConfig; // written when non-empty
};

HfBuild planHf(const ExportOptions& o, const Inputs& in)
{
    HfBuild b;
    ExportPlan& plan = b.plan;
    plan.target = ExportTarget::HuggingFace;
    if (in.adapter && o.map)
        throw ConfigError("HF export: with --adapter the base formats are the adapter's (its weights are merged "
                          "into them); drop --map");
    const LayerShape target = uniformShape(in.config, o.padUniform);
    b.config = in.config;
    for (LayerShape& s : b.config.layers)
        s = target;
    b.dtype = hfDtype(o, in.map);
    if (!in.config.homogeneous())
        plan.warnings.push_back("layers zero-padded to " + std::to_string(target.numHeads) + " heads / " +
                                std::to_string(target.numKvHeads) + " KV heads / FFN " +
                                std::to_string(target.ffnDim) + " (--pad-uniform)");
    const ModelConfig& c = b.config;
    plan.architecture = config::hfArchitectureClass(c.architecture);
    const ResolvedPrecision r = in.map.resolve(in.config);
    const QuantSpec fp32 = parseQuantSpec("fp32");

    std::map<std::string, io::SafetensorsEntry> entries;
    // Norms stay fp32; every other tensor is stored in the output dtype.
    auto add = [&](const std::string& name, std::vector<int64_t> shape, const QuantSpec& source, bool norm) {
        const at::ScalarType dt = norm ? at::kFloat : b.dtype;
        const std::string st = model::safetensorsDtype(dt);
        entries[name] = io::SafetensorsEntry{st, shape, 0, 0};
        int64_t n = 1;
        for (const int64_t d : shape)
            n *= d;
        std::string note;
        if (source.isQuantized())
            note = "stored as its dequantized values";
        else if (quant::denseDtype(source) != dt)
            note = "converted from " + source.name();
        plan.tensors.push_back({name, shape, source.name(), st, n * io::dtypeSize(st), note});
    };
    add("model.embed_tokens.weight", {c.vocabSize, c.hiddenSize}, r.embedding, false);
    add("model.norm.weight", {c.hiddenSize}, fp32, true);
    const auto norms = model::layerNormSlots(c);
    const bool fused = c.architecture == "phi3"; // transformers' Phi-3 reads qkv_proj and gate_up_proj
    for (int l = 0; l < c.numLayers(); ++l) {
        const auto li = static_cast<size_t>(l);
        for (const model::LayerNormSlot& slot : norms)
            add(model::layerTensorName(l, slot.hfName), {slot.perHead ? c.headDim : c.hiddenSize}, fp32, true);
        for (const LinearModule m : kLinearModules) {
            const std::string prefix = model::layerTensorName(l, linearModuleHfPath(m));
            const QuantSpec& spec = r.layers[li][static_cast<size_t>(m)];
            if (fused && (m == LinearModule::K || m == LinearModule::V || m == LinearModule::Up))
                continue;
            if (fused && (m == LinearModule::Q || m == LinearModule::Gate)) {
                const bool attn = m == LinearModule::Q;
                const int64_t rows = attn ? linearShape(c, l, LinearModule::Q).rows + 2 * linearShape(c, l, LinearModule::K).rows
                                          : 2 * linearShape(c, l, LinearModule::Gate).rows;
                add(model::layerTensorName(l, attn ? "self_attn.qkv_proj.weight" : "mlp.gate_up_proj.weight"),
                    {rows, c.hiddenSize}, spec, false);
                continue;
            }
            add(prefix + ".weight", weightShape(linearShape(c, l, m)), spec, false);
            if (c.attentionBias && (m == LinearModule::Q || m == LinearModule::K || m == LinearModule::V))
                add(prefix + ".bias", {linearShape(c, l, m).rows}, spec, false);
        }
    }
    if (!c.tiedEmbeddings)
        add("lm_head.weight", {c.vocabSize, c.hiddenSize}, r.lmHead, false);
    std::sort(plan.tensors.begin(), plan.tensors.end(),
              [](const ExportTensor& x, const ExportTensor& y) { return x.name < y.name; }); // file order

    b.extra = {{"export", {{"source", in.sourceName},
                           {"precision_map", in.map.toJson()},
                           {"adapter", o.adapter.empty() ? nlohmann::json() : nlohmann::json(o.adapter.string())}}}};
    nlohmann::json cfg = config::toNativeConfigJson(c, model::dtypeName(b.dtype));
    for (auto it = b.extra.begin(); it != b.extra.end(); ++it)
        cfg["qpruner"][it.key()] = it.value();
    const int64_t configBytes = static_cast<int64_t>(cfg.dump(2).size() + 1);
    const int64_t safetensorsBytes = static_cast<int64_t>(io::buildSafetensorsHeader(entries, {{"format", "pt"}}).size()) +
                                     static_cast<int64_t>(std::prev(entries.end())->second.end);
    plan.files = {"config.json", "model.safetensors"};
    plan.totalBytes = configBytes + safetensorsBytes;

    b.tokenizerFiles = hfTokenizerFiles(in, plan.warnings);
    bool hasConfig = false;
    for (const auto& [path, name] : b.tokenizerFiles) {
        plan.files.push_back(name);
        plan.totalBytes += static_cast<int64_t>(std::filesystem::file_size(path));
        hasConfig = hasConfig || name == "tokenizer_config.json";
    }
    if (!b.tokenizerFiles.empty() && b.tokenizerFiles.front().second == "tokenizer.model" && !hasConfig) {
        b.generatedTokenizerConfig = sentencePieceTokenizerConfig(c);
        plan.files.push_back("tokenizer_config.json");
        plan.totalBytes += static_cast<int64_t>(b.generatedTokenizerConfig.size());
    }
    plan.tokenizer = b.tokenizerFiles.empty() ? std::string() : in.tokenizer.string();
    finishPlan(plan, o, c.parameterCount());
    return b;
}

// ---------------------------------------------------------------------------------------------------------

std::unique_ptr<model::LlamaModel> loadSource(const ExportOptions& o, const Inputs& in)
{
    auto m = o.adapter.empty() ? model::loadModel(o.model) : finetune::loadModelWithAdapter(o.model, o.adapter);
    const ModelConfig& got = m->config();
    if (got.layers != in.config.layers || got.hiddenSize != in.config.hiddenSize || got.vocabSize != in.config.vocabSize)
        throw ConfigError("export: the loaded model's shapes differ from its header's (" + o.model.string() + ")");
    return m;
}

} // namespace

const char* exportTargetName(ExportTarget target) { return target == ExportTarget::Gguf ? "gguf" : "hf"; }

ExportTarget parseExportTarget(std::string_view text)
{
    if (text == "gguf")
        return ExportTarget::Gguf;
    if (text == "hf")
        return ExportTarget::HuggingFace;
    throw ConfigError("export target '" + std::string(text) + "' is not one of gguf, hf");
}

ExportPlan planExport(const ExportOptions& options)
{
    const Inputs in = readInputs(options);
    if (options.target == ExportTarget::HuggingFace)
        return planHf(options, in).plan;
    const WeightSource none; // the plan's fills never run
    GgufBuild b;
    buildGguf(b, options, in, none);
    return b.plan;
}

ExportPlan exportModel(const ExportOptions& options, const ProgressSink& progress, const CancelToken* cancel)
{
    const Inputs in = readInputs(options);
    if (options.threads > 0)
        model::setIntraOpThreads(options.threads);
    if (options.target == ExportTarget::Gguf) {
        WeightSource src;
        src.cancel = cancel;
        GgufBuild b;
        buildGguf(b, options, in, src);
        report(progress, "export", 0, static_cast<int64_t>(b.plan.tensors.size()), "loading " + options.model.string());
        const auto m = loadSource(options, in);
        src.model = m.get();
        b.writer.write(options.out, [&](size_t done, size_t total) {
            report(progress, "export", static_cast<int64_t>(done), static_cast<int64_t>(total),
                   b.plan.tensors[done - 1].name);
        });
        b.plan.totalBytes = static_cast<int64_t>(std::filesystem::file_size(options.out));
        return b.plan;
    }

    HfBuild b = planHf(options, in);
    const int64_t steps = static_cast<int64_t>(b.plan.tensors.size());
    report(progress, "export", 0, steps, "loading " + options.model.string());
    auto m = loadSource(options, in);
    if (options.adapter.empty()) // (an adapter's base is already in its formats; its layers report merged weights)
        quant::quantizeModel(*m, in.map, {}, cancel);
    if (cancel)
        cancel->throwIfCancelled();
    // Every weight dense in the output dtype (quantized ones dequantized, adapters merged).
    for (auto& L : m->layers)
        for (const LinearModule mod : kLinearModules) {
            model::LinearPtr& lin = model::layerLinear(L, mod);
            std::optional<at::Tensor> bias = lin->bias();
            if (bias)
                bias = bias->to(b.dtype);
            lin = std::make_shared<model::DenseLinear>(lin->denseWeight().to(b.dtype), bias);
        }
    m->embedding = m->embedding.to(b.dtype);
    m->lmHead = std::make_shared<model::DenseLinear>(
        m->config().tiedEmbeddings ? m->embedding : m->lmHead->denseWeight().to(b.dtype));
    m->setWeightDtype(b.dtype);
    if (!in.config.homogeneous())
        padModel(*m, b.config.layers.front());
    report(progress, "export", steps / 2, steps, "writing " + options.out.string());

    io::StagedDirectory staged(options.out);
    model::writeNativeModelFiles(*m, staged.path(), b.extra);
    for (const auto& [path, name] : b.tokenizerFiles)
        io::writeFileAtomic(staged.path() / name, io::readFileBytes(path));
    if (!b.generatedTokenizerConfig.empty())
        io::writeFileAtomic(staged.path() / "tokenizer_config.json", b.generatedTokenizerConfig);
    if (cancel)
        cancel->throwIfCancelled();
    staged.commit();
    int64_t total = 0;
    for (const std::string& f : b.plan.files)
        total += static_cast<int64_t>(std::filesystem::file_size(options.out / f));
    b.plan.totalBytes = total;
    report(progress, "export", steps, steps, "done");
    return b.plan;
}

nlohmann::json exportPlanJson(const ExportPlan& plan)
{
    nlohmann::json tensors = nlohmann::json::array();
    for (const ExportTensor& t : plan.tensors)
        tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"source", t.source}, {"type", t.type},
                           {"bytes", t.bytes}, {"note", t.note}});
    return {{"target", exportTargetName(plan.target)}, {"architecture", plan.architecture}, {"files", plan.files},
            {"total_bytes", plan.totalBytes}, {"parameters", plan.parameterCount},
            {"bits_per_weight", plan.bitsPerWeight}, {"tokenizer", plan.tokenizer}, {"warnings", plan.warnings},
            {"tensors", tensors}};
}

} // namespace qpruner
