// PrecisionMap: module names, precedence, compaction from resolved tables, validation against a model, and the
// versioned JSON form (strict parser with errors naming the key at fault, canonical writer, file I/O).
#include "qpruner/precision_map.h"

#include <algorithm>
#include <cctype>

#include "io/atomic_output.h"
#include "io/json_file.h"
#include "qpruner/error.h"

namespace qpruner {

namespace {

constexpr const char* kModuleNames[kLinearModuleCount] = {"q", "k", "v", "o", "gate", "up", "down"};
constexpr const char* kModuleAliases[kLinearModuleCount] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"};
constexpr const char* kModuleHfPaths[kLinearModuleCount] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

// The format of the embedding and of lm_head when the map does not say otherwise.
const QuantSpec kBf16{QuantKind::BF16, 0, false};

size_t index(LinearModule m) { return static_cast<size_t>(m); }

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

// Levenshtein distance, case-insensitive.
size_t editDistance(std::string_view a, std::string_view b)
{
    const std::string x = lower(a), y = lower(b);
    std::vector<size_t> row(y.size() + 1);
    for (size_t j = 0; j <= y.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= x.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= y.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (x[i - 1] == y[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[y.size()];
}

// " (did you mean 'X'?)" for the closest candidate within a few edits, else " (expected one of A, B, ...)".
// `shown` maps a candidate to the name suggested for it (an alias suggests its canonical name).
std::string suggestion(std::string_view text, const std::vector<std::pair<std::string, std::string>>& candidates)
{
    size_t best = std::string::npos;
    std::string bestName;
    for (const auto& [candidate, shown] : candidates) {
        const size_t d = editDistance(text, candidate);
        if (d < best) {
            best = d;
            bestName = shown;
        }
    }
    if (best <= std::max<size_t>(2, text.size() / 3))
        return " (did you mean '" + bestName + "'?)";
    std::string list;
    for (const auto& [candidate, shown] : candidates)
        if (list.find("'" + shown + "'") == std::string::npos)
            list += (list.empty() ? "'" : ", '") + shown + "'";
    return " (expected one of " + list + ")";
}

std::vector<std::pair<std::string, std::string>> moduleCandidates()
{
    std::vector<std::pair<std::string, std::string>> c;
    for (int i = 0; i < kLinearModuleCount; ++i)
        c.emplace_back(kModuleNames[i], kModuleNames[i]);
    for (int i = 0; i < kLinearModuleCount; ++i)
        c.emplace_back(kModuleAliases[i], kModuleNames[i]);
    return c;
}

std::optional<LinearModule> findModule(std::string_view name)
{
    for (int i = 0; i < kLinearModuleCount; ++i)
        if (name == kModuleNames[i] || name == kModuleAliases[i])
            return static_cast<LinearModule>(i);
    return std::nullopt;
}

[[noreturn]] void fail(const std::string& where, const std::string& what)
{
    throw ConfigError("precision map: " + (where.empty() ? what : where + ": " + what));
}

QuantSpec parseSpecAt(const nlohmann::json& v, const std::string& where)
{
    if (!v.is_string())
        fail(where, std::string("expected a format name string, got ") + v.type_name());
    try {
        return parseQuantSpec(v.get<std::string>());
    } catch (const ConfigError& e) {
        fail(where, e.what());
    }
}

void checkLayerIndex(int layer)
{
    if (layer < 0)
        throw ConfigError("precision map: layer index " + std::to_string(layer) + " is negative");
}

// "0" or [1-9][0-9]{0,8}: canonical, so two keys never name the same layer, and small enough for an int.
std::optional<int> parseLayerKey(const std::string& key)
{
    if (key.empty() || key.size() > 9 || (key.size() > 1 && key[0] == '0'))
        return std::nullopt;
    int v = 0;
    for (const char ch : key) {
        if (ch < '0' || ch > '9')
            return std::nullopt;
        v = v * 10 + (ch - '0');
    }
    return v;
}

// The most frequent spec in `specs`; ties go to the one seen first.
QuantSpec mostFrequent(const std::vector<QuantSpec>& specs)
{
    QuantSpec best = specs.front();
    size_t bestCount = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
        const size_t n = static_cast<size_t>(std::count(specs.begin(), specs.end(), specs[i]));
        if (n > bestCount) {
            bestCount = n;
            best = specs[i];
        }
    }
    return best;
}

void parseModuleObject(const nlohmann::json& obj, const std::string& where, bool allowDefault,
                       std::optional<QuantSpec>* all, std::array<std::optional<QuantSpec>, kLinearModuleCount>& out)
{
    std::array<std::string, kLinearModuleCount> seenAs;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const std::string& key = it.key();
        const std::string at = where + "." + key;
        if (allowDefault && key == "default") {
            *all = parseSpecAt(it.value(), at);
            continue;
        }
        const auto m = findModule(key);
        if (!m) {
            auto candidates = moduleCandidates();
            if (allowDefault)
                candidates.emplace_back("default", "default");
            fail(at, "unknown module '" + key + "'" + suggestion(key, candidates));
        }
        std::string& seen = seenAs[index(*m)];
        if (!seen.empty())
            fail(at, "module " + std::string(kModuleNames[index(*m)]) + " is given twice ('" + seen + "' and '" +
                         key + "')");
        seen = key;
        out[index(*m)] = parseSpecAt(it.value(), at);
    }
}

} // namespace

const char* linearModuleName(LinearModule m) { return kModuleNames[index(m)]; }

const char* linearModuleHfPath(LinearModule m) { return kModuleHfPaths[index(m)]; }

LinearModule parseLinearModule(std::string_view name)
{
    if (const auto m = findModule(name))
        return *m;
    throw ConfigError("unknown module '" + std::string(name) + "'" + suggestion(name, moduleCandidates()));
}

LinearShape linearShape(const ModelConfig& config, int layer, LinearModule m)
{
    const LayerShape& s = config.layers.at(static_cast<size_t>(layer));
    const int64_t d = config.hiddenSize, q = int64_t(s.numHeads) * config.headDim,
                  kv = int64_t(s.numKvHeads) * config.headDim, f = s.ffnDim;
    switch (m) {
    case LinearModule::Q: return {q, d};
    case LinearModule::K:
    case LinearModule::V: return {kv, d};
    case LinearModule::O: return {d, q};
    case LinearModule::Gate:
    case LinearModule::Up: return {f, d};
    case LinearModule::Down: return {d, f};
    }
    return {};
}

QuantSpec biasSpec(const QuantSpec& weightSpec)
{
    return weightSpec.isQuantized() ? QuantSpec{QuantKind::F32, 0, false} : weightSpec;
}

bool LayerPrecision::empty() const
{
    return !all && std::none_of(modules.begin(), modules.end(), [](const auto& s) { return s.has_value(); });
}

PrecisionMap::PrecisionMap(QuantSpec defaultSpec) : default_(defaultSpec), embedding_(kBf16) {}

void PrecisionMap::setModuleDefault(LinearModule m, std::optional<QuantSpec> spec) { modules_[index(m)] = spec; }

void PrecisionMap::setLayer(int layer, std::optional<QuantSpec> spec)
{
    checkLayerIndex(layer);
    layers_[layer].all = spec;
    if (layers_[layer].empty())
        layers_.erase(layer);
}

void PrecisionMap::setLayerModule(int layer, LinearModule m, std::optional<QuantSpec> spec)
{
    checkLayerIndex(layer);
    layers_[layer].modules[index(m)] = spec;
    if (layers_[layer].empty())
        layers_.erase(layer);
}

void PrecisionMap::setEmbedding(const QuantSpec& spec)
{
    if (spec.isQuantized())
        fail("embedding", "'" + spec.name() +
                              "' is not allowed (the embedding lookup is not quantized; use fp32, bf16 or fp16)");
    embedding_ = spec;
}

void PrecisionMap::setLmHead(std::optional<QuantSpec> spec) { lmHead_ = spec; }

const std::optional<QuantSpec>& PrecisionMap::moduleDefault(LinearModule m) const { return modules_[index(m)]; }

QuantSpec PrecisionMap::spec(int layer, LinearModule m) const
{
    if (const auto it = layers_.find(layer); it != layers_.end()) {
        if (const auto& s = it->second.modules[index(m)])
            return *s;
        if (it->second.all)
            return *it->second.all;
    }
    if (const auto& s = modules_[index(m)])
        return *s;
    return default_;
}

PrecisionMap PrecisionMap::fromResolved(const ResolvedPrecision& r)
{
    if (r.layers.empty())
        throw ConfigError("precision map: cannot build a map from a table without layers");
    std::vector<QuantSpec> all;
    for (const auto& layer : r.layers)
        all.insert(all.end(), layer.begin(), layer.end());
    PrecisionMap map(mostFrequent(all));
    for (size_t l = 0; l < r.layers.size(); ++l) {
        const LayerSpecs& specs = r.layers[l];
        const QuantSpec layerSpec = mostFrequent(std::vector<QuantSpec>(specs.begin(), specs.end()));
        const int li = static_cast<int>(l);
        if (layerSpec != map.default_)
            map.setLayer(li, layerSpec);
        for (const LinearModule m : kLinearModules)
            if (specs[index(m)] != layerSpec)
                map.setLayerModule(li, m, specs[index(m)]);
    }
    map.setEmbedding(r.embedding);
    if (r.lmHead != kBf16)
        map.lmHead_ = r.lmHead;
    return map;
}

PrecisionMap PrecisionMap::fromLayerSpecs(const std::vector<QuantSpec>& layerSpecs)
{
    ResolvedPrecision r;
    for (const QuantSpec& s : layerSpecs) {
        LayerSpecs specs;
        specs.fill(s);
        r.layers.push_back(specs);
    }
    return fromResolved(r);
}

void PrecisionMap::validate(const ModelConfig& config) const
{
    const int n = config.numLayers();
    for (const auto& [layer, entry] : layers_)
        if (layer >= n)
            fail("layers." + std::to_string(layer),
                 "layer " + std::to_string(layer) + " does not exist (the model has " + std::to_string(n) +
                     " layers, 0-" + std::to_string(n - 1) + ")");
    if (config.tiedEmbeddings && lmHead_ && *lmHead_ != embedding_)
        fail("lm_head", "the model ties lm_head to the embedding, so lm_head must be omitted or equal to the "
                        "embedding format (" + embedding_.name() + "), got " + lmHead_->name());
}

ResolvedPrecision PrecisionMap::resolve(const ModelConfig& config) const
{
    validate(config);
    ResolvedPrecision r;
    for (int l = 0; l < config.numLayers(); ++l) {
        LayerSpecs specs;
        for (const LinearModule m : kLinearModules)
            specs[index(m)] = spec(l, m);
        r.layers.push_back(specs);
    }
    r.embedding = embedding_;
    r.lmHead = config.tiedEmbeddings ? embedding_ : lmHead_.value_or(kBf16);
    return r;
}

nlohmann::ordered_json PrecisionMap::toJson() const
{
    using Entries = std::array<std::optional<QuantSpec>, kLinearModuleCount>;
    auto moduleEntries = [](nlohmann::ordered_json& obj, const Entries& specs) {
        for (const LinearModule m : kLinearModules)
            if (const auto& s = specs[index(m)])
                obj[kModuleNames[index(m)]] = s->name();
    };
    nlohmann::ordered_json j;
    j["version"] = kPrecisionMapVersion;
    j["default"] = default_.name();
    nlohmann::ordered_json modules = nlohmann::ordered_json::object();
    moduleEntries(modules, modules_);
    if (!modules.empty())
        j["modules"] = modules;
    if (!layers_.empty()) {
        nlohmann::ordered_json layers = nlohmann::ordered_json::object();
        for (const auto& [layer, entry] : layers_) {
            nlohmann::ordered_json v = nlohmann::ordered_json::object();
            if (entry.all)
                v["default"] = entry.all->name();
            moduleEntries(v, entry.modules);
            if (v.size() == 1 && entry.all)
                v = entry.all->name();
            layers[std::to_string(layer)] = v;
        }
        j["layers"] = layers;
    }
    if (embedding_ != kBf16)
        j["embedding"] = embedding_.name();
    if (lmHead_)
        j["lm_head"] = lmHead_->name();
    return j;
}

PrecisionMap PrecisionMap::fromJson(const nlohmann::json& j)
{
    if (!j.is_object())
        fail("", std::string("expected a JSON object, got ") + j.type_name());
    static const std::vector<std::pair<std::string, std::string>> topKeys = {
        {"version", "version"},     {"default", "default"}, {"modules", "modules"}, {"layers", "layers"},
        {"embedding", "embedding"}, {"lm_head", "lm_head"}, {"norms", "norms"}};
    for (auto it = j.begin(); it != j.end(); ++it)
        if (std::none_of(topKeys.begin(), topKeys.end(), [&](const auto& k) { return k.first == it.key(); }))
            fail("", "unknown key '" + it.key() + "'" + suggestion(it.key(), topKeys));

    if (!j.contains("version"))
        fail("", "missing \"version\" (expected " + std::to_string(kPrecisionMapVersion) + ")");
    const auto& version = j.at("version");
    if (!version.is_number_integer())
        fail("version", std::string("expected the integer ") + std::to_string(kPrecisionMapVersion) + ", got " +
                            version.dump());
    if (version.get<int64_t>() != kPrecisionMapVersion)
        fail("version", "version " + version.dump() + " is not supported (this build reads version " +
                            std::to_string(kPrecisionMapVersion) + ")");
    if (!j.contains("default"))
        fail("", "missing \"default\" (the format of every linear not listed otherwise, e.g. \"nf4\")");

    PrecisionMap map(parseSpecAt(j.at("default"), "default"));
    if (j.contains("modules")) {
        const auto& modules = j.at("modules");
        if (!modules.is_object())
            fail("modules", std::string("expected an object of module formats, got ") + modules.type_name());
        parseModuleObject(modules, "modules", false, nullptr, map.modules_);
    }
    if (j.contains("layers")) {
        const auto& layers = j.at("layers");
        if (!layers.is_object())
            fail("layers", std::string("expected an object keyed by layer index, got ") + layers.type_name());
        for (auto it = layers.begin(); it != layers.end(); ++it) {
            const std::string where = "layers." + it.key();
            const auto layer = parseLayerKey(it.key());
            if (!layer)
                fail("layers", "key '" + it.key() +
                                   "' is not a layer index (expected a decimal integer without sign or leading "
                                   "zeros, e.g. \"3\")");
            LayerPrecision entry;
            const auto& v = it.value();
            if (v.is_string()) {
                entry.all = parseSpecAt(v, where);
            } else if (v.is_object()) {
                if (v.empty())
                    fail(where, "empty layer entry (give a format name, or an object with \"default\" and/or "
                                "module formats)");
                parseModuleObject(v, where, true, &entry.all, entry.modules);
            } else {
                fail(where, std::string("expected a format name or an object, got ") + v.type_name());
            }
            map.layers_[*layer] = entry;
        }
    }
    if (j.contains("embedding"))
        map.setEmbedding(parseSpecAt(j.at("embedding"), "embedding"));
    if (j.contains("lm_head"))
        map.lmHead_ = parseSpecAt(j.at("lm_head"), "lm_head");
    if (j.contains("norms") && parseSpecAt(j.at("norms"), "norms").kind != QuantKind::F32)
        fail("norms", "only \"fp32\" is supported (RMSNorm weights are kept in fp32), got " + j.at("norms").dump());
    return map;
}

PrecisionMap PrecisionMap::load(const std::filesystem::path& path)
{
    const nlohmann::json j = io::readJsonFile(path);
    try {
        return fromJson(j);
    } catch (const ConfigError& e) {
        throw FormatError(path.string() + ": " + e.what());
    }
}

void PrecisionMap::save(const std::filesystem::path& path) const
{
    io::writeFileAtomic(path, toJson().dump(2) + "\n");
}

} // namespace qpruner
