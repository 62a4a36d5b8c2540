// PEFT-compatible adapter directories, loading a model with its adapter, merging.
#include "finetune/adapter_io.h"

#include <c10/core/GradMode.h>

#include "io/atomic_output.h"
#include "io/json_file.h"
#include "model/safetensors_file.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"

namespace qpruner::finetune {

namespace {

// "q_proj", ..., "down_proj": PEFT's target_modules names.
std::string peftModuleName(LinearModule m)
{
    const std::string path = linearModuleHfPath(m);
    return path.substr(path.find('.') + 1);
}

template <typename F>
void forEachLora(const model::LlamaModel& model, F&& f)
{
    for (size_t l = 0; l < model.layers.size(); ++l)
        for (const LinearModule m : kLinearModules)
            if (auto* lora = dynamic_cast<LoraLinear*>(model::layerLinear(model.layers[l], m).get()))
                f(static_cast<int>(l), m, *lora);
}

std::string shapeText(at::IntArrayRef s)
{
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i)
        r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

} // namespace

nlohmann::ordered_json AdapterConfig::toJson() const
{
    nlohmann::ordered_json modules = nlohmann::ordered_json::array();
    for (const LinearModule m : targets)
        modules.push_back(peftModuleName(m));
    nlohmann::ordered_json j = {{"peft_type", "LORA"},
                                {"task_type", "CAUSAL_LM"},
                                {"base_model_name_or_path", baseModel},
                                {"r", rank},
                                {"lora_alpha", alpha},
                                {"lora_dropout", dropout},
                                {"target_modules", modules},
                                {"bias", "none"},
                                {"fan_in_fan_out", false},
                                {"inference_mode", true},
                                {"modules_to_save", nullptr},
                                {"layers_to_transform", nullptr},
                                {"rank_pattern", nlohmann::ordered_json::object()},
                                {"alpha_pattern", nlohmann::ordered_json::object()},
                                {"use_rslora", false},
                                {"use_dora", false},
                                {"revision", nullptr}};
    if (init == LoraInit::Loftq) {
        j["init_lora_weights"] = "loftq";
        j["loftq_config"] = {{"loftq_iter", loftqIterations}};
    } else {
        j["init_lora_weights"] = true;
        j["loftq_config"] = nlohmann::ordered_json::object();
    }
    nlohmann::ordered_json q = {{"init", loraInitName(init)}};
    if (init == LoraInit::Loftq)
        q["loftq_iterations"] = loftqIterations;
    q["precision_map"] = precisionMap;
    for (auto it = extra.begin(); it != extra.end(); ++it)
        q[it.key()] = it.value();
    j["qpruner"] = q;
    return j;
}

AdapterConfig AdapterConfig::fromJson(const nlohmann::json& j, const std::string& source)
{
    auto bad = [&](const std::string& key, const std::string& what) -> FormatError {
        return FormatError(source + ": \"" + key + "\" " + what);
    };
    if (!j.is_object())
        throw FormatError(source + ": not a JSON object");
    AdapterConfig c;
    try {
        if (j.value("peft_type", std::string("LORA")) != "LORA")
            throw bad("peft_type", "is '" + j["peft_type"].get<std::string>() + "'; only LORA adapters are supported");
        if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int>() < 1)
            throw bad("r", "must be a positive integer");
        c.rank = j["r"].get<int>();
        c.alpha = j.value("lora_alpha", 8.0); // PEFT's default
        if (!(c.alpha > 0.0))
            throw bad("lora_alpha", "must be positive");
        c.dropout = j.value("lora_dropout", 0.0);
        if (!(c.dropout >= 0.0 && c.dropout < 1.0))
            throw bad("lora_dropout", "must be in [0, 1)");
        if (j.value("bias", std::string("none")) != "none")
            throw bad("bias", "must be \"none\" (trained biases are not supported)");
        if (j.value("fan_in_fan_out", false))
            throw bad("fan_in_fan_out", "must be false");
        for (const char* key : {"use_dora", "use_rslora"})
            if (j.contains(key) && j[key].is_boolean() && j[key].get<bool>())
                throw bad(key, "is not supported");
        for (const char* key : {"rank_pattern", "alpha_pattern"})
            if (j.contains(key) && j[key].is_object() && !j[key].empty())
                throw bad(key, "is not supported (one rank and alpha for every layer)");
        if (!j.contains("target_modules") || !j["target_modules"].is_array() || j["target_modules"].empty())
            throw bad("target_modules", "must be a non-empty list of module names");
        std::vector<std::string> names;
        for (const auto& t : j["target_modules"])
            names.push_back(t.get<std::string>());
        try {
            c.targets = canonicalTargets(names);
        } catch (const ConfigError& e) {
            throw bad("target_modules", e.what());
        }
        c.baseModel = j.value("base_model_name_or_path", std::string());
        if (j.contains("qpruner") && j["qpruner"].is_object()) {
            const auto& q = j["qpruner"];
            c.init = parseLoraInit(q.value("init", std::string("lora")));
            c.loftqIterations = q.value("loftq_iterations", 0);
            c.precisionMap = q.value("precision_map", nlohmann::json());
            for (auto it = q.begin(); it != q.end(); ++it)
                if (it.key() != "init" && it.key() != "loftq_iterations" && it.key() != "precision_map")
                    c.extra[it.key()] = it.value();
        } else if (j.value("init_lora_weights", nlohmann::json(true)) == "loftq") {
            c.init = LoraInit::Loftq;
            c.loftqIterations = j.value("loftq_config", nlohmann::json::object()).value("loftq_iter", 1);
        }
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(source + ": " + e.what());
    } catch (const ConfigError& e) {
        throw FormatError(source + ": " + e.what());
    }
    return c;
}

std::vector<LinearModule> canonicalTargets(const std::vector<std::string>& names)
{
    const std::vector<LinearModule> parsed = parseLoraTargets(names);
    std::vector<LinearModule> out;
    for (const LinearModule m : kLinearModules)
        if (std::find(parsed.begin(), parsed.end(), m) != parsed.end())
            out.push_back(m);
    return out;
}

std::string adapterTensorName(int layer, LinearModule m, char which)
{
    return "base_model.model.model.layers." + std::to_string(layer) + "." + linearModuleHfPath(m) + ".lora_" +
           std::string(1, which) + ".weight";
}

std::map<std::string, at::Tensor> adapterTensors(const model::LlamaModel& model)
{
    std::map<std::string, at::Tensor> t;
    forEachLora(model, [&](int l, LinearModule m, const LoraLinear& lora) {
        t[adapterTensorName(l, m, 'A')] = lora.loraA().detach();
        t[adapterTensorName(l, m, 'B')] = lora.loraB().detach();
    });
    return t;
}

void saveAdapter(const model::LlamaModel& model, const std::filesystem::path& dir, const AdapterConfig& config)
{
    size_t wrapped = 0;
    forEachLora(model, [&](int l, LinearModule m, const LoraLinear& lora) {
        if (lora.rank() != config.rank ||
            std::find(config.targets.begin(), config.targets.end(), m) == config.targets.end())
            throw ConfigError("saveAdapter: layer " + std::to_string(l) + " " + linearModuleName(m) +
                              " has a rank-" + std::to_string(lora.rank()) + " adapter the config does not describe");
        ++wrapped;
    });
    if (wrapped == 0)
        throw ConfigError("saveAdapter: the model has no LoRA layers");
    if (wrapped != model.layers.size() * config.targets.size())
        throw ConfigError("saveAdapter: " + std::to_string(wrapped) + " LoRA layers, the config describes " +
                          std::to_string(model.layers.size() * config.targets.size()));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw FileError(dir.string() + ": cannot create: " + ec.message());
    model::writeSafetensorsFile(dir / kAdapterWeightsFile, adapterTensors(model), {{"format", "pt"}});
    io::writeFileAtomic(dir / kAdapterConfigFile, config.toJson().dump(2) + "\n");
}

AdapterConfig readAdapterConfig(const std::filesystem::path& dir)
{
    const auto file = dir / kAdapterConfigFile;
    return AdapterConfig::fromJson(io::readJsonFile(file), file.string());
}

void setAdapterTensors(model::LlamaModel& model, const std::map<std::string, at::Tensor>& tensors,
                       const std::string& source)
{
    std::vector<std::pair<at::Tensor*, const at::Tensor*>> copies;
    size_t used = 0;
    forEachLora(model, [&](int l, LinearModule m, LoraLinear& lora) {
        for (const char which : {'A', 'B'}) {
            const std::string name = adapterTensorName(l, m, which);
            auto it = tensors.find(name);
            if (it == tensors.end())
                throw FormatError(source + ": tensor '" + name + "' is missing");
            at::Tensor& dst = which == 'A' ? lora.loraA() : lora.loraB();
            if (it->second.sizes() != dst.sizes())
                throw FormatError(source + ": tensor '" + name + "' has shape " + shapeText(it->second.sizes()) +
                                  ", the model's adapter needs " + shapeText(dst.sizes()));
            if (!at::isFloatingType(it->second.scalar_type()))
                throw FormatError(source + ": tensor '" + name + "' is not floating point");
            copies.emplace_back(&dst, &it->second);
            ++used;
        }
    });
    if (used != tensors.size()) {
        for (const auto& [name, t] : tensors) {
            bool known = false;
            for (const auto& c : copies)
                known = known || c.second == &t;
            if (!known)
                throw FormatError(source + ": tensor '" + name + "' belongs to no LoRA layer of the model");
        }
    }
    c10::NoGradGuard noGrad;
    for (auto& [dst, src] : copies)
        dst->copy_(*src);
}

std::vector<at::Tensor> loadAdapter(model::LlamaModel& model, const std::filesystem::path& dir)
{
    return loadAdapter(model, dir, readAdapterConfig(dir));
}

std::vector<at::Tensor> loadAdapter(model::LlamaModel& model, const std::filesystem::path& dir,
                                    const AdapterConfig& config)
{
    const auto file = dir / kAdapterWeightsFile;
    const model::SafetensorsContents contents = model::readSafetensorsFile(file);
    FinetuneSettings s;
    s.rank = config.rank;
    s.dropout = config.dropout;
    s.targets.clear();
    for (const LinearModule m : config.targets)
        s.targets.push_back(linearModuleName(m));
    // The adapter dtype is the stored one (A of the first target).
    const auto first = contents.tensors.find(adapterTensorName(0, config.targets.front(), 'A'));
    if (first == contents.tensors.end())
        throw FormatError(file.string() + ": tensor '" + adapterTensorName(0, config.targets.front(), 'A') +
                          "' is missing");
    switch (first->second.scalar_type()) {
    case at::kBFloat16: s.adapterDtype = QuantSpec{QuantKind::BF16, 0, false}; break;
    case at::kHalf: s.adapterDtype = QuantSpec{QuantKind::F16, 0, false}; break;
    default: s.adapterDtype = QuantSpec{QuantKind::F32, 0, false}; break;
    }
    LoraOptions lo;
    lo.alpha = config.alpha;
    std::vector<at::Tensor> params = attachLora(model, s, lo);
    try {
        setAdapterTensors(model, contents.tensors, file.string());
    } catch (...) {
        detachLora(model);
        throw;
    }
    return params;
}

std::unique_ptr<model::LlamaModel> loadModelWithAdapter(const std::filesystem::path& modelPath,
                                                        const std::filesystem::path& dir,
                                                        const model::LoadOptions& options)
{
    const AdapterConfig config = readAdapterConfig(dir);
    std::unique_ptr<model::LlamaModel> m;
    std::error_code ec;
    if (std::filesystem::is_directory(dir / kAdapterBaseDir, ec)) {
        m = model::loadModel(dir / kAdapterBaseDir, options);
    } else {
        if (config.precisionMap.is_null())
            throw ConfigError((dir / kAdapterConfigFile).string() +
                              ": records no precision map and there is no base/ directory; cannot rebuild the "
                              "weights the adapter was trained on");
        m = model::loadModel(modelPath, options);
        quant::quantizeModel(*m, PrecisionMap::fromJson(config.precisionMap));
    }
    loadAdapter(*m, dir, config);
    return m;
}

model::LinearPtr mergedLinear(const LoraLinear& layer, at::ScalarType dtype)
{
    return std::make_shared<model::DenseLinear>(layer.denseWeight().to(dtype), layer.bias());
}

int mergeAdapters(model::LlamaModel& model, at::ScalarType dtype)
{
    int n = 0;
    for (auto& layer : model.layers)
        for (const LinearModule m : kLinearModules) {
            model::LinearPtr& slot = model::layerLinear(layer, m);
            if (const auto* lora = dynamic_cast<const LoraLinear*>(slot.get())) {
                slot = mergedLinear(*lora, dtype);
                ++n;
            }
        }
    return n;
}

} // namespace qpruner::finetune
