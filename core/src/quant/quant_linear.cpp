// QuantLinear: chunked dequantize-and-matmul forward, and quantizeLinear.
#include "quant/quant_linear.h"

#include "model/dtype.h"
#include "qpruner/error.h"

namespace qpruner::quant {

QuantLinear::QuantLinear(QuantizedTensor weight, std::optional<at::Tensor> bias, int64_t chunkBytes)
    : weight_(std::move(weight)), bias_(std::move(bias)), chunkBytes_(chunkBytes)
{
    validateQuantizedTensor(weight_, "QuantLinear weight");
    if (bias_ && (bias_->dim() != 1 || bias_->size(0) != weight_.rows))
        throw ConfigError("QuantLinear: bias must be [" + std::to_string(weight_.rows) + "], got " +
                          std::to_string(bias_->dim()) + "-D with " + std::to_string(bias_->numel()) + " values");
    if (chunkBytes_ <= 0)
        throw ConfigError("QuantLinear: chunk size must be positive, got " + std::to_string(chunkBytes_));
}

int64_t QuantLinear::chunkRows(at::ScalarType dtype) const
{
    return model::linearBlockRows(weight_.cols, dtype, chunkBytes_);
}

at::Tensor QuantLinear::forward(const at::Tensor& x) const
{
    if (x.dim() == 0 || x.size(-1) != weight_.cols)
        throw ConfigError("QuantLinear: input's last dimension must be " + std::to_string(weight_.cols) +
                          ", got shape " + std::to_string(x.dim() ? x.size(-1) : 0));
    const auto outDtype = x.scalar_type();
    const auto dt = model::computeDtypeFor(outDtype, x.device());
    const at::Tensor xc = x.to(dt);
    if (!c10::GradMode::is_enabled() || !xc.requires_grad()) {
        const auto fill = [&](int64_t r0, int64_t r1, at::Tensor& dst) { dequantizeRowsInto(weight_, r0, r1, dst); };
        return model::blockedLinear(xc, weight_.rows, weight_.cols, fill, bias_, chunkBytes_).to(outDtype);
    }
    // Autograd through the dequantized blocks (the LoRA trainer's frozenForward avoids this path).
    const auto biasRows = [&](int64_t r0, int64_t n) -> c10::optional<at::Tensor> {
        if (!bias_)
            return c10::nullopt;
        return bias_->narrow(0, r0, n).to(dt);
    };
    const int64_t step = chunkRows(dt);
    if (step >= weight_.rows)
        return at::linear(xc, dequantize(weight_, dt), biasRows(0, weight_.rows)).to(outDtype);
    std::vector<at::Tensor> parts;
    for (int64_t r0 = 0; r0 < weight_.rows; r0 += step) {
        const int64_t n = std::min(step, weight_.rows - r0);
        parts.push_back(at::linear(xc, dequantizeRows(weight_, r0, r0 + n, dt), biasRows(r0, n)));
    }
    return at::cat(parts, -1).to(outDtype);
}

at::Tensor QuantLinear::denseWeight() const { return dequantize(weight_, at::kFloat); }

int64_t QuantLinear::storageBytes() const
{
    return weight_.storageBytes() + (bias_ ? bias_->numel() * int64_t(bias_->element_size()) : 0);
}

model::LinearPtr quantizeLinear(const model::Linear& src, const QuantSpec& spec)
{
    const at::Tensor w = src.denseWeight();
    switch (spec.kind) {
    case QuantKind::F32: return std::make_shared<model::DenseLinear>(w.to(at::kFloat), src.bias());
    case QuantKind::BF16: return std::make_shared<model::DenseLinear>(w.to(at::kBFloat16), src.bias());
    case QuantKind::F16: return std::make_shared<model::DenseLinear>(w.to(at::kHalf), src.bias());
    default: return std::make_shared<QuantLinear>(quantize(w, spec), src.bias());
    }
}

} // namespace qpruner::quant
