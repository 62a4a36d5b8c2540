// How much a format disturbs a model: per linear, the relative weight error ||W - Q(W)||_F / ||W||_F and the
// relative output error on calibration activations (each linear sees the dense model's own inputs, so errors
// do not compound), plus the end-to-end mean NLL of the calibration tokens with every linear quantized.
#pragma once

#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "model/llama_model.h"
#include "qpruner/precision_map.h"
#include "qpruner/progress.h"

namespace qpruner::quant {

struct ModuleQuantError {
    int layer = 0;
    LinearModule module = LinearModule::Q;
    int64_t rows = 0, cols = 0;
    double weightRelError = 0; // ||W - Q(W)||_F / ||W||_F
    double outputRelError = 0; // sqrt(sum ||y - y_q||^2 / sum ||y||^2) over all calibration tokens
    int64_t denseBytes = 0;    // the layer as held now
    int64_t quantBytes = 0;    // in the format
};

struct QuantErrorReport {
    QuantSpec spec;
    std::vector<ModuleQuantError> modules;
    double denseNll = 0;     // mean next-token NLL of the calibration tokens, dense model
    double quantizedNll = 0; // the same with every decoder linear in `spec`
    nlohmann::ordered_json toJson() const;
};

// Calibration tokens [N, T] (int64, T >= 2), `microBatch` windows per forward. The model must hold dense
// decoder weights; it is left as it was.
QuantErrorReport measureQuantError(model::LlamaModel& model, const QuantSpec& spec, const at::Tensor& calibration,
                                   int microBatch = 4, const ProgressSink& progress = {},
                                   const CancelToken* cancel = nullptr);

} // namespace qpruner::quant
