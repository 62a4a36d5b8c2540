// The precision map (torch-free): which storage format (QuantSpec) every quantizable linear of every decoder
// layer gets, plus the embedding and output head, as edited in the GUI, searched by the Bayesian optimiser,
// stored beside a quantized checkpoint and exported as llama.cpp `llama-quantize` arguments.
//
// Quantizable linears, per decoder layer, in this order (shape = [out, in], D = hidden size, hd = head dim):
//   q [numHeads*hd, D], k [numKvHeads*hd, D], v [numKvHeads*hd, D], o [D, numHeads*hd],
//   gate [ffn, D], up [ffn, D], down [D, ffn].
// Module names are "q", "k", "v", "o", "gate", "up", "down"; the Hugging Face names "q_proj", "k_proj",
// "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" are accepted as aliases wherever a name is parsed.
//
// Precedence, for layer L and module M (first match wins):
//   1. layers.L.M          a per-layer-module override
//   2. layers.L.default    the layer's own format (written `"L": "fmt"` when it has no module overrides)
//   3. modules.M           a per-module default across all layers
//   4. default             the model-wide default
// embedding: fp32, bf16 or fp16 only (the lookup is never quantized); default bf16.
// lm_head:   any format; when absent: bf16, or the embedding's format when the model ties its embeddings.
//            With tied embeddings the head *is* the embedding matrix, so an explicit lm_head must equal the
//            embedding format (validate() rejects anything else).
// norms:     RMSNorm weights are always fp32; the key is accepted with the value "fp32" only.
// Biases:    see biasSpec().
//
// JSON form (version 1), writeable by hand:
//   {"version": 1, "default": "int8",
//    "modules": {"down": "bf16"},
//    "layers": {"0": "bf16", "3": {"default": "nf4", "q": "int8"}},
//    "embedding": "bf16", "lm_head": "bf16", "norms": "fp32"}
// Required: "version" (the integer 1) and "default". Everything else is optional. Format names are those of
// parseQuantSpec (case-insensitive, aliases allowed). Layer keys are decimal indices without sign or leading
// zeros; a layer value is a format name or an object with "default" and/or module keys (not empty). Unknown
// keys, wrong JSON types, unknown formats and aliases naming the same module twice are errors.
// Canonical form (toJson): keys in the order version, default, modules, layers, embedding, lm_head; modules in
// the order q, k, v, o, gate, up, down; layers in ascending index; format names canonical (QuantSpec::name());
// a layer with only a layer format is written as a string; "embedding" only when not bf16; "lm_head" only when
// set; "norms" never. Entries are kept as set, even when they resolve to the same format as their fallback
// (they still shadow lower-precedence entries), so fromJson(toJson(m)) == m and toJson(fromJson(j)) is j in
// canonical form.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/model_config.h"
#include "qpruner/quant_format.h"

namespace qpruner {

enum class LinearModule : uint8_t { Q, K, V, O, Gate, Up, Down };
inline constexpr int kLinearModuleCount = 7;
inline constexpr std::array<LinearModule, kLinearModuleCount> kLinearModules = {
    LinearModule::Q,    LinearModule::K,  LinearModule::V,   LinearModule::O,
    LinearModule::Gate, LinearModule::Up, LinearModule::Down};

// "q", "k", "v", "o", "gate", "up", "down".
const char* linearModuleName(LinearModule m);
// The Hugging Face module path inside a decoder layer: "self_attn.q_proj", ..., "mlp.down_proj".
const char* linearModuleHfPath(LinearModule m);
// Parses a module name or its HF alias ("gate" or "gate_proj"). Throws ConfigError naming the text, with the
// closest valid name as a suggestion ("unknown module 'gaet' (did you mean 'gate'?)").
LinearModule parseLinearModule(std::string_view name);

// [rows, cols] = [out_features, in_features] of a module in `layer` of `config` (pruned shapes allowed).
struct LinearShape {
    int64_t rows = 0;
    int64_t cols = 0;
    bool operator==(const LinearShape&) const = default;
};
LinearShape linearShape(const ModelConfig& config, int layer, LinearModule m);

// The one rule for q/k/v biases (attention_bias models): a bias is always stored dense, named
// "<module>.bias", shape [out]: in the weight's own dtype when the weight is dense (fp32/bf16/fp16, as a dense
// layer keeps it), in fp32 when the weight is quantized (biases are tiny and their magnitude matters).
QuantSpec biasSpec(const QuantSpec& weightSpec);

// Every module's format for one layer, indexed by LinearModule.
using LayerSpecs = std::array<QuantSpec, kLinearModuleCount>;

// A map resolved against a model: one entry per layer, plus the embedding and the head (equal to the embedding
// when tied).
struct ResolvedPrecision {
    std::vector<LayerSpecs> layers;
    QuantSpec embedding;
    QuantSpec lmHead;
    bool operator==(const ResolvedPrecision&) const = default;
};

// What one layer sets; an entry with nothing set is never stored.
struct LayerPrecision {
    std::optional<QuantSpec> all; // "default" of the layer
    std::array<std::optional<QuantSpec>, kLinearModuleCount> modules;
    bool empty() const;
    bool operator==(const LayerPrecision&) const = default;
};

inline constexpr int kPrecisionMapVersion = 1;

class PrecisionMap {
public:
    // Every linear in `defaultSpec` (bf16 when not given), embedding bf16, no other entry.
    explicit PrecisionMap(QuantSpec defaultSpec = {});

    // --- building and editing (throw ConfigError on a negative layer or a quantized embedding) ---
    void setDefault(const QuantSpec& spec) { default_ = spec; }
    void setModuleDefault(LinearModule m, std::optional<QuantSpec> spec);
    void setLayer(int layer, std::optional<QuantSpec> spec);
    void setLayerModule(int layer, LinearModule m, std::optional<QuantSpec> spec);
    void setEmbedding(const QuantSpec& spec);
    void setLmHead(std::optional<QuantSpec> spec);

    // A compact map that resolves to `r` exactly: default = the most frequent format over all linears (ties:
    // the first in layer, module order); a layer whose seven formats agree gets a layer entry when that differs
    // from the default; otherwise the layer's most frequent format becomes its layer entry (when it differs
    // from the default) and the remaining modules get overrides. lm_head is set only when it is not bf16.
    // Per-module defaults are not used. Throws ConfigError when `r` has no layers or a quantized embedding.
    static PrecisionMap fromResolved(const ResolvedPrecision& r);
    // One format per layer for all seven linears (the Bayesian search's configuration), embedding and
    // lm_head bf16; same compaction as fromResolved.
    static PrecisionMap fromLayerSpecs(const std::vector<QuantSpec>& layerSpecs);

    // --- reading ---
    const QuantSpec& defaultSpec() const { return default_; }
    const std::optional<QuantSpec>& moduleDefault(LinearModule m) const;
    const std::map<int, LayerPrecision>& layers() const { return layers_; }
    const QuantSpec& embedding() const { return embedding_; }
    const std::optional<QuantSpec>& lmHead() const { return lmHead_; }
    // The format of `m` in `layer` by the precedence above (no model needed, any layer index).
    QuantSpec spec(int layer, LinearModule m) const;

    // Throws ConfigError when the map does not fit `config`: a layer entry beyond its last layer, or an
    // lm_head entry that differs from the embedding while the model ties them.
    void validate(const ModelConfig& config) const;
    // validate() + every format resolved.
    ResolvedPrecision resolve(const ModelConfig& config) const;

    // --- JSON ---
    // Canonical form (see the top of this file).
    nlohmann::ordered_json toJson() const;
    // Throws ConfigError naming the key at fault ("precision map: layers.3.q: unknown format 'nf5' ...").
    static PrecisionMap fromJson(const nlohmann::json& j);
    // Throws FileError (unreadable), FormatError (bad JSON or bad content; the message names the file).
    static PrecisionMap load(const std::filesystem::path& path);
    // Writes toJson() (2-space indent, trailing newline) atomically. Throws FileError.
    void save(const std::filesystem::path& path) const;

    bool operator==(const PrecisionMap&) const = default;

private:
    QuantSpec default_;
    std::array<std::optional<QuantSpec>, kLinearModuleCount> modules_;
    std::map<int, LayerPrecision> layers_;
    QuantSpec embedding_;
    std::optional<QuantSpec> lmHead_;
};

// Arguments for llama.cpp's `llama-quantize` reproducing a resolved map on the GGUF of the same (unquantized)
// model:   llama-quantize ARGS... model-f16.gguf model-out.gguf BASE_TYPE
//
// Format -> ggml type (--tensor-type / --token-embedding-type / --output-tensor-type value) and llama-quantize
// file type (positional BASE_TYPE). The ggml formats are llama.cpp's own, so this is the closest equivalent at
// about the same bits, not a bit-exact copy of our codes:
//   fp32 -> f32 / F32      bf16 -> bf16 / BF16     fp16 -> f16 / F16
//   int8 -> q8_0 / Q8_0    (symmetric 8-bit, one fp16 scale per 32)
//   nf4, nf4-dq -> iq4_nl / IQ4_NL    (non-linear 4-bit code book, blocks of 32: the closest to NF4)
//   int4, int4-g128 -> q4_1 / Q4_1    (asymmetric 4-bit with scale and min, blocks of 32)
//   int3, int3-g128 -> q3_k / Q3_K_S  (3-bit k-quant, super-blocks of 256)
//   int2, int2-g128 -> q2_k / Q2_K    (2-bit k-quant with scales and mins, super-blocks of 256)
// GGUF names: blk.N.attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down (each "+.weight"),
// token_embd, output.
//
// How llama-quantize applies them (ggml-org/llama.cpp tools/quantize/quantize.cpp and src/llama-quant.cpp):
// --tensor-type PATTERN=TYPE is matched with std::regex_search against the full tensor name (the pattern is
// lower-cased first), so each pattern here is anchored and escaped: ^blk\.3\.attn_q\.weight$. The type name is
// matched case-insensitively against ggml_type_name. --tensor-type is honoured only when the base file type is
// a quantized one, which is why the base is the most frequent *quantized* type among the linears. Tensors
// without a pattern go through llama.cpp's per-file-type mixture rules (e.g. attn_v or ffn_down may be bumped
// up for k-quant and IQ4_NL file types); `everyTensor` lists every linear explicitly so that no tensor is left
// to those rules (equal-to-base patterns are honoured by current llama.cpp; some 2025-2026 builds ignored a
// pattern equal to the base type, llama.cpp issue #22544). --pure is not emitted: builds before llama.cpp
// PR #25716 ignore every --tensor-type under --pure. token_embd and output always get their explicit option
// (output only for untied models: a tied GGUF has no output tensor). llama-quantize falls back to another
// type when a row length is not a multiple of the type's block (32, or 256 for q3_k/q2_k).
struct LlamaQuantizeArgs {
    std::string baseType;          // positional file type, e.g. "Q8_0"
    std::vector<std::string> args; // options, each flag and its value a separate argv entry
};
// Throws ConfigError (after validate()) when the linears mix dense formats only: llama-quantize ignores
// --tensor-type under a non-quantized base type.
LlamaQuantizeArgs llamaQuantizeArgs(const PrecisionMap& map, const ModelConfig& config, bool everyTensor = false);

} // namespace qpruner
