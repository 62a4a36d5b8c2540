// Causal attention on the CPU in one pass per query row, for fp32 inference: each row's scores are computed for
// the keys it may see only (the causal half, or the sliding window), soft-maxed with a vectorised exp and
// multiplied into the values in a small per-thread buffer. No [batch, heads, T, S] score, mask or probability
// tensor exists, which is what the matmul-softmax-matmul formulation costs in memory and passes over memory.
#pragma once

#include <ATen/ATen.h>

namespace qpruner::model {

// Whether the model's attention takes fusedCausalAttention for this case: q, k, v fp32 CPU tensors, head dim a
// multiple of 8 (at most 512), no autograd needed, a CPU with AVX2/FMA, and the fused path not switched off.
bool fusedAttentionApplies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Process-wide switch (on by default): off, every model takes the matmul-softmax-matmul path (tests and
// benchmarks compare the two).
void setFusedAttentionEnabled(bool enabled);

// q [B, nh, T, hd]; k, v [B, nkv, S, hd] (nh a multiple of nkv: query head h reads KV head h / (nh / nkv)); the
// last dimension of each contiguous. Query t sits at absolute position pos + t and key s at position s; it sees
// the keys s <= pos + t, and with window > 0 only those with pos + t - s < window. Scores are (q . k) * scale.
// Returns [B, T, nh * hd], the layout the output projection reads.
at::Tensor fusedCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t pos,
                                double scale, int64_t window);

// exp(x) for 8 floats with AVX2 (Cephes' polynomial, within 2 ulp of std::exp over [-87, 88]; below -87.3 it
// returns 0): exposed for its test. Writes n values from `in` to `out`.
void vectorExp(const float* in, float* out, int64_t n);

} // namespace qpruner::model
