#include "model/linear.h"

#include "model/blocked_linear.h"
#include "model/dtype.h"
#include "model/packed_gemm.h"

namespace qpruner::model {

DenseLinear::DenseLinear(at::Tensor weight, std::optional<at::Tensor> bias)
    : weight_(std::move(weight)), bias_(std::move(bias))
{
}

at::Tensor DenseLinear::forward(const at::Tensor& x) const
{
    const auto dt = x.scalar_type();
    const bool grad = c10::GradMode::is_enabled() && (x.requires_grad() || weight_.requires_grad());
    if (weight_.scalar_type() != dt && !grad) {
        // Stored in another dtype (bf16/fp16 weights computed in fp32): converted a block at a time.
        return blockedLinear(
            x, weight_.size(0), weight_.size(1),
            [&](int64_t r0, int64_t r1, at::Tensor& dst) { copyRowsAsFloat(weight_, r0, r1, dst); },
            bias_);
    }
    if (!grad && dt == at::kFloat && weight_.scalar_type() == at::kFloat && x.is_cpu() && weight_.is_cpu() &&
        weight_.is_contiguous() && x.dim() > 0 && x.size(-1) == weight_.size(1) && weight_.size(1) > 0 &&
        packedGemmAvailable() &&
        preferPackedGemm(x.numel() / weight_.size(1), weight_.size(1), weight_.size(0))) {
        // fp32 inference on an AVX2 CPU, few rows or a shallow weight: the packed GEMM, reading the weight in place.
        const at::Tensor x2 = x.reshape({-1, weight_.size(1)}).contiguous();
        auto out = at::empty({x2.size(0), weight_.size(0)}, x2.options());
        packedGemm(x2.data_ptr<float>(), x2.size(0), x2.size(1), weight_.size(0), weight_.data_ptr<float>(),
                   out.data_ptr<float>());
        if (bias_)
            out.add_(bias_->scalar_type() == dt ? *bias_ : bias_->to(dt));
        auto shape = x.sizes().vec();
        shape.back() = weight_.size(0);
        return out.view(shape);
    }
    const at::Tensor w = weight_.scalar_type() == dt ? weight_ : weight_.to(dt);
    if (bias_) {
        const at::Tensor b = bias_->scalar_type() == dt ? *bias_ : bias_->to(dt);
        return at::linear(x, w, b);
    }
    return at::linear(x, w);
}

int64_t DenseLinear::storageBytes() const
{
    int64_t n = weight_.numel() * static_cast<int64_t>(weight_.element_size());
    if (bias_)
        n += bias_->numel() * static_cast<int64_t>(bias_->element_size());
    return n;
}

std::string DenseLinear::formatName() const { return dtypeName(weight_.scalar_type()); }

} // namespace qpruner::model
