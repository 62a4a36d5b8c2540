#include "qpruner/importance_scores.h"

#include <algorithm>
#include <cmath>

#include "io/atomic_output.h"
#include "io/json_file.h"
#include "qpruner/error.h"

namespace qpruner {

namespace {

constexpr int kScoresVersion = 1;

[[noreturn]] void fail(const std::string& where, const std::string& what)
{
    throw FormatError("importance scores" + (where.empty() ? std::string() : " at \"" + where + "\"") + ": " + what);
}

const nlohmann::json& field(const nlohmann::json& j, const std::string& key, const std::string& where)
{
    if (!j.contains(key))
        fail(where, "missing \"" + key + "\"");
    return j.at(key);
}

std::vector<double> numbers(const nlohmann::json& j, const std::string& where, size_t count)
{
    if (!j.is_array())
        fail(where, std::string("expected an array of numbers, got ") + j.type_name());
    if (j.size() != count)
        fail(where, std::to_string(j.size()) + " values, expected one per layer (" + std::to_string(count) + ")");
    std::vector<double> out;
    for (size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_number())
            fail(where + "[" + std::to_string(i) + "]", std::string("expected a number, got ") + j[i].type_name());
        const double v = j[i].get<double>();
        if (!std::isfinite(v))
            fail(where + "[" + std::to_string(i) + "]", "not a finite number");
        out.push_back(v);
    }
    return out;
}

std::vector<std::array<double, kLinearModuleCount>> moduleRows(const nlohmann::json& j, const std::string& where,
                                                                size_t count)
{
    if (!j.is_array() || j.size() != count)
        fail(where, "expected an array with one object per layer (" + std::to_string(count) + ")");
    std::vector<std::array<double, kLinearModuleCount>> out(count);
    for (size_t l = 0; l < count; ++l) {
        const auto& row = j[l];
        const std::string at = where + "[" + std::to_string(l) + "]";
        if (!row.is_object())
            fail(at, std::string("expected an object of module values, got ") + row.type_name());
        for (LinearModule m : kLinearModules) {
            const auto& v = field(row, linearModuleName(m), at);
            if (!v.is_number() || !std::isfinite(v.get<double>()))
                fail(at + "." + linearModuleName(m), "expected a finite number");
            out[l][size_t(m)] = v.get<double>();
        }
    }
    return out;
}

nlohmann::ordered_json moduleJson(const std::vector<std::array<double, kLinearModuleCount>>& rows)
{
    auto a = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
        nlohmann::ordered_json o;
        for (LinearModule m : kLinearModules)
            o[linearModuleName(m)] = r[size_t(m)];
        a.push_back(o);
    }
    return a;
}

} // namespace

std::vector<double> minMaxNormalize(const std::vector<double>& values)
{
    if (values.empty())
        return {};
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    const double range = *hi - *lo;
    std::vector<double> out(values.size(), 1.0);
    if (range > 0)
        for (size_t i = 0; i < values.size(); ++i)
            out[i] = (values[i] - *lo) / range;
    return out;
}

void normalizeScores(MetricScores& s)
{
    s.normalized = minMaxNormalize(s.layers);
    s.modulesNormalized.clear();
    if (s.modules.empty())
        return;
    std::vector<double> flat;
    for (const auto& r : s.modules)
        flat.insert(flat.end(), r.begin(), r.end());
    const auto n = minMaxNormalize(flat);
    s.modulesNormalized.resize(s.modules.size());
    for (size_t l = 0; l < s.modules.size(); ++l)
        for (size_t m = 0; m < size_t(kLinearModuleCount); ++m)
            s.modulesNormalized[l][m] = n[l * kLinearModuleCount + m];
}

const MetricScores& ImportanceScores::metric(const std::string& name) const
{
    const auto it = metrics.find(name);
    if (it != metrics.end())
        return it->second;
    throw ConfigError("importance scores have no metric '" + name + "' (they have: " + metricList() + ")");
}

std::string ImportanceScores::metricList() const
{
    std::string have;
    for (const auto& [k, v] : metrics)
        have += (have.empty() ? "" : ", ") + k;
    return have.empty() ? "none" : have;
}

nlohmann::ordered_json ImportanceScores::toJson() const
{
    nlohmann::ordered_json j;
    j["version"] = kScoresVersion;
    j["model"] = model;
    j["layers"] = numLayers;
    j["calibration"] = {{"source", calibration.source}, {"format", calibration.format},
                        {"samples", calibration.samples}, {"seq_len", calibration.seqLen},
                        {"seed", calibration.seed},       {"tokens", calibration.tokens}};
    nlohmann::ordered_json ms = nlohmann::ordered_json::object();
    for (const auto& [name, s] : metrics) {
        nlohmann::ordered_json m;
        m["options"] = s.options;
        m["seconds"] = s.seconds;
        m["layers"] = s.layers;
        m["normalized"] = s.normalized;
        if (!s.modules.empty()) {
            m["modules"] = moduleJson(s.modules);
            m["modules_normalized"] = moduleJson(s.modulesNormalized);
        }
        ms[name] = m;
    }
    j["metrics"] = ms;
    return j;
}

ImportanceScores ImportanceScores::fromJson(const nlohmann::json& j)
{
    if (!j.is_object())
        fail("", std::string("expected a JSON object, got ") + j.type_name());
    const auto& version = field(j, "version", "");
    if (!version.is_number_integer() || version.get<int64_t>() != kScoresVersion)
        fail("version", "version " + version.dump() + " is not supported (this build reads version " +
                            std::to_string(kScoresVersion) + ")");
    ImportanceScores s;
    const auto& model = field(j, "model", "");
    if (!model.is_string())
        fail("model", "expected a string");
    s.model = model.get<std::string>();
    const auto& layers = field(j, "layers", "");
    if (!layers.is_number_integer() || layers.get<int64_t>() < 1)
        fail("layers", "expected a positive layer count, got " + layers.dump());
    s.numLayers = layers.get<int>();
    const size_t n = size_t(s.numLayers);
    if (j.contains("calibration")) {
        const auto& c = j.at("calibration");
        if (!c.is_object())
            fail("calibration", "expected an object");
        try {
            s.calibration.source = c.value("source", std::string());
            s.calibration.format = c.value("format", std::string("text"));
            s.calibration.samples = c.value("samples", 0);
            s.calibration.seqLen = c.value("seq_len", 0);
            s.calibration.seed = c.value("seed", uint64_t(0));
            s.calibration.tokens = c.value("tokens", int64_t(0));
        } catch (const nlohmann::json::exception& e) {
            fail("calibration", e.what());
        }
    }
    const auto& metrics = field(j, "metrics", "");
    if (!metrics.is_object() || metrics.empty())
        fail("metrics", "expected a non-empty object keyed by metric name");
    for (auto it = metrics.begin(); it != metrics.end(); ++it) {
        const std::string where = "metrics." + it.key();
        const auto& m = it.value();
        if (!m.is_object())
            fail(where, std::string("expected an object, got ") + m.type_name());
        MetricScores ms;
        if (m.contains("options"))
            ms.options = m.at("options");
        if (m.contains("seconds") && m.at("seconds").is_number())
            ms.seconds = m.at("seconds").get<double>();
        ms.layers = numbers(field(m, "layers", where), where + ".layers", n);
        ms.normalized = numbers(field(m, "normalized", where), where + ".normalized", n);
        for (size_t l = 0; l < n; ++l)
            if (ms.normalized[l] < 0 || ms.normalized[l] > 1)
                fail(where + ".normalized[" + std::to_string(l) + "]", "outside [0, 1]");
        if (m.contains("modules")) {
            ms.modules = moduleRows(m.at("modules"), where + ".modules", n);
            ms.modulesNormalized = m.contains("modules_normalized")
                                       ? moduleRows(m.at("modules_normalized"), where + ".modules_normalized", n)
                                       : std::vector<std::array<double, kLinearModuleCount>>{};
            if (ms.modulesNormalized.empty()) {
                const auto layersNormalized = ms.normalized;
                normalizeScores(ms);
                ms.normalized = layersNormalized;
            }
        }
        s.metrics[it.key()] = std::move(ms);
    }
    return s;
}

ImportanceScores ImportanceScores::load(const std::filesystem::path& path)
{
    const nlohmann::json j = io::readJsonFile(path);
    try {
        return fromJson(j);
    } catch (const FormatError& e) {
        throw FormatError(path.string() + ": " + e.what());
    }
}

void ImportanceScores::save(const std::filesystem::path& path) const
{
    io::writeFileAtomic(path, toJson().dump(2) + "\n");
}

} // namespace qpruner
