// Applying a precision map to a loaded model, and reading the map back off a model (for saving and reports).
#pragma once

#include <filesystem>

#include "model/llama_model.h"
#include "qpruner/precision_map.h"
#include "qpruner/progress.h"

namespace qpruner::quant {

// The dtype of a dense format (fp32, bf16, fp16). Throws ConfigError for a quantized one.
at::ScalarType denseDtype(const QuantSpec& spec);

// Replaces every decoder linear by the layer its map entry asks for (packed codes for the quantized formats,
// a converted dense weight otherwise), converts the embedding, and gives an untied head its format. Biases
// follow biasSpec(). The compute dtype becomes the embedding's (bf16 by default, as QLoRA computes). The map is
// validated against the model first (ConfigError), and the model needs dense weights to start from.
void quantizeModel(model::LlamaModel& model, const PrecisionMap& map, const ProgressSink& progress = {},
                   const CancelToken* cancel = nullptr);

// A linear in `spec` made from a dense one, its bias following biasSpec() (what quantizeModel does per linear).
model::LinearPtr convertLinear(const model::Linear& dense, const QuantSpec& spec);

// The same linear (same values, same bias) with its weight bytes (a QuantLinear's packed parts, a dense weight) in a
// new file at `path`, memory-mapped and unlinked at once, so nothing is left on disk once the last tensor over it
// goes. The kernel can then drop those pages from RAM under pressure, and releaseLinearPages() drops them from the
// process's RSS between uses. Throws FileError naming the path when it cannot be written (a full disk, say).
model::LinearPtr spillLinear(const model::Linear& linear, const std::filesystem::path& path);

// Hands the resident pages of the linear's weight bytes back to the kernel (io::releaseResidentPages): pages of a
// mapped file leave the RSS and come back from the file when next read; nothing changes for other memory. False
// where the kernel refused the advice.
bool releaseLinearPages(const model::Linear& linear);

// The format every weight of `model` is held in.
ResolvedPrecision heldPrecision(const model::LlamaModel& model);

// The spec a layer is held in (a DenseLinear's dtype, or a QuantLinear's format).
QuantSpec heldSpec(const model::Linear& linear);

} // namespace qpruner::quant
