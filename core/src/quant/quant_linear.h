// A linear layer whose weight stays packed in a quantized format (quantized_tensor.h) and is dequantized per
// forward, a block of output rows at a time, so no dense copy of the weight outlives a call. quantizeLinear()
// turns any layer into the layer a precision-map entry asks for: this one, or a DenseLinear for fp32/bf16/fp16.
#pragma once

#include "model/blocked_linear.h"
#include "model/linear.h"
#include "quant/quantized_tensor.h"

namespace qpruner::quant {

class QuantLinear final : public model::Linear {
public:
    // Dequantized weight bytes per step of forward(): small enough to stay in a large cache, large enough that
    // each step is a real matmul.
    static constexpr int64_t kDefaultChunkBytes = model::kLinearBlockBytes;

    // Throws FormatError when `weight` does not match its spec's layout, ConfigError when the bias is not
    // [outFeatures] or chunkBytes is not positive. The bias keeps its dtype.
    explicit QuantLinear(QuantizedTensor weight, std::optional<at::Tensor> bias = std::nullopt,
                         int64_t chunkBytes = kDefaultChunkBytes);

    // x: [..., inFeatures] in the compute dtype; the weight is dequantized to that dtype (fp16 on the CPU, which
    // has no fp16 matmul, computes in fp32 and converts back, as computeDtypeFor says).
    at::Tensor forward(const at::Tensor& x) const override;
    int64_t inFeatures() const override { return weight_.cols; }
    int64_t outFeatures() const override { return weight_.rows; }
    bool hasBias() const override { return bias_.has_value(); }
    // The dequantized weight in fp32 (every format's values are exact there).
    at::Tensor denseWeight() const override;
    std::optional<at::Tensor> bias() const override { return bias_; }
    // storedBytes(spec, rows, cols) plus the bias's bytes.
    int64_t storageBytes() const override;
    std::string formatName() const override { return weight_.spec.name(); }

    const QuantizedTensor& quantized() const { return weight_; }
    // Output rows dequantized per step when computing in `dtype` (at least 1).
    int64_t chunkRows(at::ScalarType dtype) const;

private:
    QuantizedTensor weight_;
    std::optional<at::Tensor> bias_;
    int64_t chunkBytes_;
};

// The layer `src` becomes in `spec`: a DenseLinear holding the weight converted to fp32/bf16/fp16 (the same
// tensor when it already has that dtype), or a QuantLinear of the quantized weight. The bias is kept as is.
model::LinearPtr quantizeLinear(const model::Linear& src, const QuantSpec& spec);

} // namespace qpruner::quant
