// The KL sums of quant-kl in one pass over each row of logits: for rows r of float32 logits z [n, V] against the
// reference distribution p [n, V] (float64) with its sums p log p [n],
//   sum over r of  pLogP[r] - sum_v p[r, v] z[r, v] + logsumexp_v z[r, v],
// every term in float64 (the logits widened exactly). Replaces libtorch's chain of float64 temporaries (widen,
// product, row sums, max, shift, exp, sum, log) that each passed over [rows, V] memory.
#pragma once

#include <cstdint>

namespace qpruner::importance {

// Rows split over the intra-op threads; each row's value comes from one thread and the row values are added in row
// order, so the result does not depend on the thread count. z, p row-contiguous (row stride V).
double klRowsSum(const float* z, const double* p, const double* pLogP, int64_t n, int64_t V);

} // namespace qpruner::importance
