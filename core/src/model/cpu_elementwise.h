// Fused fp32 CPU inference kernels for the elementwise steps of a decoder layer: RMSNorm, the rotary embedding
// and SwiGLU's silu(gate) * up. Each is one pass over its rows, where libtorch's formulation is three to six ops,
// each a pass over memory and (except the last) a fresh temporary: at a small model's width that per-op cost is
// most of a layer's time.
#pragma once

#include <ATen/ATen.h>

namespace qpruner::model {

// Whether these kernels may take `x` (and `other`, when defined): x an fp32 CPU tensor, no autograd graph needed
// (grad mode off, or neither tensor requires grad), a CPU with AVX2/FMA, our kernels not switched off
// (QPRUNER_KERNELS=libtorch) and the process-wide switch on.
bool fusedElementwiseApplies(const at::Tensor& x, const at::Tensor& other = {});

// Process-wide switch (on by default): off, the model takes libtorch's ops (tests compare the two).
void setFusedElementwiseEnabled(bool enabled);

// RMSNorm over the last dimension: x * 1/sqrt(mean(x^2) + eps) * w, with w + 1 where `unitOffset` (Gemma's
// norms). x fp32 of any shape [..., D]; weight [D] of any floating dtype. Returns fp32, x's shape, contiguous.
// Throws ConfigError when weight does not have D elements.
at::Tensor fusedRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps, bool unitOffset);

// Rotate-half RoPE of x [B, T, H, hd] (fp32, any strides): out[i] = x[i] cos[t, i] - x[i + hd/2] sin[t, i] and
// out[i + hd/2] = x[i + hd/2] cos[t, i + hd/2] + x[i] sin[t, i + hd/2], with cos and sin [T, hd] fp32. Returns
// [B, T, H, hd] contiguous (the caller's transpose(1, 2) gives the [B, H, T, hd] view attention reads).
// Throws ConfigError on other shapes.
at::Tensor fusedRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// gate = silu(gate) * up = gate * up / (1 + exp(-gate)), in place: gate must be contiguous, fp32 and not shared
// with anything that still needs its values; up of the same shape, any strides. Throws ConfigError otherwise.
void siluMulInPlace(at::Tensor& gate, const at::Tensor& up);

} // namespace qpruner::model
