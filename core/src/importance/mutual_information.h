// Discrete (plug-in) entropy and mutual information estimates, in bits, with the Miller-Madow bias correction,
// and the quantile binning that turns continuous features into discrete labels. Used by the `mi` importance
// metric (layer_importance.h); no libtorch here.
//
// Plug-in entropy of N samples with counts n_i over m occupied cells: H = -sum (n_i/N) log2(n_i/N).
// It underestimates the true entropy by about (m - 1) / (2N) nats; Miller-Madow adds that back:
//   H_MM = H + (m - 1) / (2 N ln 2)   bits.
// Mutual information is I(X;Y) = H(X) + H(Y) - H(X,Y), each entropy estimated the same way, so with the
// correction I_MM = I_plugin + (m_X + m_Y - m_XY - 1) / (2 N ln 2); the correction shrinks the upward bias of
// the plug-in I (many joint cells seen once) and can make an estimate slightly negative for independent
// variables. Estimates are not clipped.
#pragma once

#include <cstdint>
#include <vector>

namespace qpruner::importance {

// Entropy in bits of the labels (any int64 values). Throws ConfigError when empty.
double entropyBits(const std::vector<int64_t>& labels, bool millerMadow = true);

// I(X;Y) in bits from paired labels. Throws ConfigError when the sizes differ or are 0.
double mutualInformationBits(const std::vector<int64_t>& x, const std::vector<int64_t>& y, bool millerMadow = true);

// Quantile bins: each value gets the index (0..bins-1) of the equal-count interval of the sample it falls in.
// Edges are the sample's j/bins quantiles (j = 1..bins-1, the value at rank floor(j*N/bins) of the sorted
// sample); a value equal to an edge goes to the upper bin, so ties never split and a sample with fewer
// distinct values than bins uses fewer bins. `stride` steps through strided data (a column of a row-major
// matrix). Throws ConfigError for bins < 1 or n < 1.
std::vector<int64_t> quantileBins(const float* values, int64_t n, int bins, int64_t stride = 1);

// Joint cell of k binned columns of a row-major [n, k] matrix: sum_j bin_j * bins^j.
std::vector<int64_t> jointQuantileCells(const float* values, int64_t n, int k, int bins);

} // namespace qpruner::importance
