// Layer importance scores as stored on disk (torch-free): what `qpruner importance` writes, `qpruner allocate`
// reads and the GUI's importance tab shows. One file holds every metric computed on one model with one
// calibration set; each metric keeps its raw per-layer values, the same values normalised, and per-module
// values where the metric has them.
//
// Normalisation (the same for every metric): min-max over the decoder layers, s~_l = (s_l - min s) /
// (max s - min s), so the least important layer gets 0 and the most important 1; when all layers score the
// same, every s~_l is 1 (no layer is singled out). Per-module values are normalised the same way over all
// (layer, module) pairs of the metric. Higher always means "more important / more sensitive".
//
// JSON form (version 1):
//   {"version": 1,
//    "model": "path/or/name", "layers": 5,
//    "calibration": {"source": "tinystories", "format": "text", "samples": 32, "seq_len": 128, "seed": 0,
//                    "tokens": 4096},
//    "metrics": {
//      "mi": {"options": {...}, "seconds": 0.41,
//             "layers": [raw per layer], "normalized": [per layer],
//             "modules": [{"q": raw, ..., "down": raw}, ...] (optional),
//             "modules_normalized": [{"q": ..., ...}, ...] (with "modules")},
//      "bi": {...}, "quant-kl": {...}, "taylor": {...}}}
// Unknown metric names are accepted (a file may come from a newer version); a metric's arrays must have one
// entry per layer and finite values, `normalized` in [0, 1].
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qpruner/precision_map.h"

namespace qpruner {

struct CalibrationInfo {
    std::string source;         // "tinystories", "wikitext2", a file path, a task name, ...
    std::string format = "text"; // text, task, alpaca
    int samples = 0;
    int seqLen = 0;
    uint64_t seed = 0;
    int64_t tokens = 0;
};

struct MetricScores {
    nlohmann::ordered_json options = nlohmann::ordered_json::object(); // the metric's settings, as run
    double seconds = 0;
    std::vector<double> layers;     // raw
    std::vector<double> normalized; // min-max over layers
    std::vector<std::array<double, kLinearModuleCount>> modules;           // raw, empty when not per module
    std::vector<std::array<double, kLinearModuleCount>> modulesNormalized; // min-max over all pairs
};

// Min-max normalisation as described above.
std::vector<double> minMaxNormalize(const std::vector<double>& values);

// Fills `normalized` (and `modulesNormalized` when there are modules) from the raw values.
void normalizeScores(MetricScores& scores);

struct ImportanceScores {
    std::string model;
    int numLayers = 0;
    CalibrationInfo calibration;
    std::map<std::string, MetricScores> metrics; // by metric name

    // The metric's scores; throws ConfigError listing the metrics present when it is absent.
    const MetricScores& metric(const std::string& name) const;
    // "bi, mi, quant-kl", or "none".
    std::string metricList() const;

    nlohmann::ordered_json toJson() const;
    // Throws FormatError naming the key at fault.
    static ImportanceScores fromJson(const nlohmann::json& j);
    // FileError when missing/unreadable, FormatError with the path when malformed.
    static ImportanceScores load(const std::filesystem::path& path);
    // Atomic write (a crash never leaves a half-written file).
    void save(const std::filesystem::path& path) const;
};

} // namespace qpruner
