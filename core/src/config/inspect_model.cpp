// inspectModel: a checkpoint's configuration and sizes from its headers alone (no weights are read).
#include <set>

#include "config/config_json.h"
#include "config/llama2c_layout.h"
#include "export/gguf_file.h"
#include "export/gguf_model_config.h"
#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "io/safetensors_index.h"
#include "qpruner/error.h"
#include "qpruner/model_config.h"

namespace qpruner {

namespace {

std::string torchDtypeName(const std::string& st)
{
    if (st == "F32" || st == "f32") return "float32";
    if (st == "F16" || st == "f16") return "float16";
    if (st == "BF16" || st == "bf16") return "bfloat16";
    return st;
}

} // namespace

ModelSummary inspectModel(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError(path.string() + ": not found");
    ModelSummary s;
    s.path = path;
    if (gguf::isGgufFile(path)) {
        const gguf::GgufFile f = gguf::GgufFile::open(path);
        s.format = "gguf";
        s.config = gguf::readModelConfig(f);
        std::set<std::string> types;
        for (const gguf::TensorInfo& t : f.tensors()) {
            s.weightBytes += static_cast<int64_t>(t.bytes());
            if (t.ne.size() == 2) // weights, not norms
                types.insert(gguf::ggmlTypeName(t.type));
        }
        s.dtype = types.size() == 1 ? torchDtypeName(*types.begin()) : "mixed";
        s.parameterCount = s.config.parameterCount();
        return s;
    }
    if (!std::filesystem::is_directory(path, ec)) {
        const auto lay = config::readLlama2cLayout(path);
        s.format = "llama2c";
        s.dtype = "float32";
        s.config = lay.config;
        s.parameterCount = s.config.parameterCount();
        s.weightBytes = s.parameterCount * 4;
        return s;
    }
    const auto cfgPath = path / "config.json";
    const auto j = io::readJsonFile(cfgPath);
    s.config = config::fromConfigJson(j, cfgPath);
    s.format = config::isNativeConfig(j) ? "native" : "hf";
    std::set<std::string> dtypes, matrixDtypes; // every tensor's; the weight matrices' (as for GGUF above)
    int64_t bytes = 0;
    for (const auto& f : io::findSafetensorsShards(path).files) {
        const auto h = io::readSafetensorsHeader(f);
        for (const auto& [name, e] : h.tensors) {
            bytes += static_cast<int64_t>(e.end - e.begin);
            dtypes.insert(e.dtype);
            if (e.shape.size() == 2)
                matrixDtypes.insert(e.dtype);
        }
    }
    const std::set<std::string>& weights = matrixDtypes.empty() ? dtypes : matrixDtypes;
    s.dtype = weights.size() == 1 ? torchDtypeName(*weights.begin()) : (weights.empty() ? "none" : "mixed");
    s.parameterCount = s.config.parameterCount();
    s.weightBytes = bytes;
    return s;
}

} // namespace qpruner
