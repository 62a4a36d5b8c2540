// Export of a precision map as llama.cpp `llama-quantize` arguments (see precision_map.h for the format mapping
// and how llama-quantize matches --tensor-type patterns: ggml-org/llama.cpp tools/quantize/quantize.cpp,
// parse_tensor_type / parse_ggml_type, and src/llama-quant.cpp, llama_tensor_get_type).
#include <algorithm>
#include <string_view>

#include "export/gguf_model_config.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"

namespace qpruner {

namespace {

struct GgmlType {
    const char* tensorType; // ggml_type_name, as --tensor-type and the --*-type options take it
    const char* fileType;   // llama-quantize's positional file type
};

GgmlType ggmlType(const QuantSpec& spec)
{
    switch (spec.kind) {
    case QuantKind::F32: return {"f32", "F32"};
    case QuantKind::BF16: return {"bf16", "BF16"};
    case QuantKind::F16: return {"f16", "F16"};
    case QuantKind::Int8: return {"q8_0", "Q8_0"};
    case QuantKind::NF4: return {"iq4_nl", "IQ4_NL"};
    case QuantKind::Int4: return {"q4_1", "Q4_1"};
    case QuantKind::Int3: return {"q3_k", "Q3_K_S"};
    case QuantKind::Int2: return {"q2_k", "Q2_K"};
    }
    return {"?", "?"};
}


} // namespace

LlamaQuantizeArgs llamaQuantizeArgs(const PrecisionMap& map, const ModelConfig& config, bool everyTensor)
{
    const ResolvedPrecision r = map.resolve(config);

    // Base: the most frequent quantized ggml type over the linears (ties: the first in layer, module order); a
    // dense base only when every linear has that same dense type.
    std::vector<const QuantSpec*> quantized;
    for (const auto& layer : r.layers)
        for (const QuantSpec& s : layer)
            if (s.isQuantized())
                quantized.push_back(&s);
    auto typeOf = [](const QuantSpec& s) { return std::string_view(ggmlType(s).tensorType); };
    const QuantSpec* base = &r.layers.front()[0];
    size_t baseCount = 0;
    for (const QuantSpec* s : quantized) {
        const auto n = static_cast<size_t>(std::count_if(quantized.begin(), quantized.end(), [&](const QuantSpec* o) {
            return typeOf(*o) == typeOf(*s);
        }));
        if (n > baseCount) {
            baseCount = n;
            base = s;
        }
    }
    const std::string_view baseType = typeOf(*base);
    if (quantized.empty())
        for (const auto& layer : r.layers)
            for (const QuantSpec& s : layer)
                if (typeOf(s) != baseType)
                    throw ConfigError("llama-quantize export: the linears mix dense formats only (" + base->name() +
                                      " and " + s.name() +
                                      "); llama-quantize applies --tensor-type only under a quantized base type");

    LlamaQuantizeArgs out;
    out.baseType = ggmlType(*base).fileType;
    out.args = {"--token-embedding-type", ggmlType(r.embedding).tensorType};
    if (!config.tiedEmbeddings)
        out.args.insert(out.args.end(), {"--output-tensor-type", ggmlType(r.lmHead).tensorType});
    for (size_t l = 0; l < r.layers.size(); ++l)
        for (const LinearModule m : kLinearModules) {
            const std::string_view type = typeOf(r.layers[l][static_cast<size_t>(m)]);
            if (type != baseType || (everyTensor && !quantized.empty()))
                out.args.insert(out.args.end(), {"--tensor-type", "^blk\\." + std::to_string(l) + "\\." +
                                                                      gguf::ggufModuleName(m) + "\\.weight$=" + std::string(type)});
        }
    return out;
}

} // namespace qpruner
