// A linear projection y = x W^T (+ b). The decoder only sees this interface, so later stages can swap in
// quantized weights (packed codes dequantized per forward) or LoRA-wrapped layers per module.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <ATen/ATen.h>

namespace qpruner::model {

class Linear {
public:
    virtual ~Linear() = default;
    // x: [..., inFeatures] in the model's compute dtype; returns [..., outFeatures] in the same dtype.
    virtual at::Tensor forward(const at::Tensor& x) const = 0;
    virtual int64_t inFeatures() const = 0;
    virtual int64_t outFeatures() const = 0;
    virtual bool hasBias() const = 0;
    // The weight as a dense [out, in] tensor (dequantized when stored packed), for saving and analysis.
    virtual at::Tensor denseWeight() const = 0;
    virtual std::optional<at::Tensor> bias() const = 0;
    // Bytes this layer's stored tensors occupy.
    virtual int64_t storageBytes() const = 0;
    virtual std::string formatName() const = 0;
};

// Plain dense weights in fp32, bf16 or fp16. When the weight dtype differs from the activation dtype (bf16/fp16
// weights computing in fp32, see computeDtypeFor) the weight is converted per call, block by block
// (blockedLinear) unless autograd needs the converted weight.
class DenseLinear final : public Linear {
public:
    explicit DenseLinear(at::Tensor weight, std::optional<at::Tensor> bias = std::nullopt);

    at::Tensor forward(const at::Tensor& x) const override;
    int64_t inFeatures() const override { return weight_.size(1); }
    int64_t outFeatures() const override { return weight_.size(0); }
    bool hasBias() const override { return bias_.has_value(); }
    at::Tensor denseWeight() const override { return weight_; }
    std::optional<at::Tensor> bias() const override { return bias_; }
    int64_t storageBytes() const override;
    std::string formatName() const override;

    at::Tensor& weight() { return weight_; }
    std::optional<at::Tensor>& mutableBias() { return bias_; }

private:
    at::Tensor weight_;
    std::optional<at::Tensor> bias_;
};

using LinearPtr = std::shared_ptr<Linear>;

} // namespace qpruner::model
