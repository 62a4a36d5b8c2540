// The surrogate of the Bayesian search: a Gaussian process with a Matern-5/2 ARD kernel plus white noise, on
// inputs in [0, 1]^d, fitted to normalised outputs (y - mean) / std by maximising the log marginal
// likelihood over the hyperparameters with several restarts. Linear algebra in libtorch (fp64, Cholesky).
//
//   k(x, x') = sf^2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),   r^2 = sum_i (x_i - x'_i)^2 / l_i^2
//   K_y = K + sn^2 I   (on normalised outputs)
//   log p(y | X) = -1/2 y^T K_y^-1 y - sum log diag(L) - n/2 log 2pi,   L L^T = K_y
// Posterior of the latent f at x*: mean m(x*) = k*^T K_y^-1 y, variance v(x*) = sf^2 - k*^T K_y^-1 k*, both
// mapped back to output units (mean * std + mean_y, variance * std^2). Output std: the sample standard
// deviation (n - 1); 1 when n < 2 or all outputs are equal.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace qpruner::search {

struct GpHyperparameters {
    std::vector<double> logLengthscales; // log l_i, one per input dimension
    double logSignalStd = 0;             // log sf
    double logNoiseStd = -2.3;           // log sn
};

struct GpFitOptions {
    int restarts = 4;          // random starts besides the default start (l = 0.5, sf = 1, sn = 0.1) and the warm start
    int maxIterations = 60;    // optimiser iterations per start
    uint64_t seed = 0;         // the random starts (log-uniform within the bounds)
    // Bounds (box constraints on the log parameters).
    double minLengthscale = 0.05, maxLengthscale = 20;
    double minSignalStd = 0.05, maxSignalStd = 10;
    double minNoiseStd = 1e-3, maxNoiseStd = 1;
    std::optional<GpHyperparameters> warmStart; // e.g. the previous iteration's optimum
};

struct GpPrediction {
    std::vector<double> mean;     // output units
    std::vector<double> variance; // latent f, output units^2, >= 0
};

class GaussianProcess {
public:
    // X: n rows of d features (all rows the same d, n >= 1), y: n finite outputs. Throws ConfigError otherwise.
    // fit() maximises the log marginal likelihood; condition() takes the hyperparameters as given.
    void fit(const std::vector<std::vector<double>>& X, const std::vector<double>& y, const GpFitOptions& options = {});
    void condition(const std::vector<std::vector<double>>& X, const std::vector<double>& y, const GpHyperparameters& h);

    GpPrediction predict(const std::vector<std::vector<double>>& Xstar) const;
    const GpHyperparameters& hyperparameters() const { return h_; }
    double logMarginalLikelihood() const { return lml_; } // at the current hyperparameters, normalised outputs
    double outputMean() const { return yMean_; }
    double outputStd() const { return yStd_; }
    int evaluations() const { return evaluations_; } // log-likelihood evaluations spent by the last fit()

    // The log marginal likelihood and its gradient with respect to (logLengthscales..., logSignalStd,
    // logNoiseStd) for normalised outputs yn (tests compare the gradient with finite differences).
    static double logMarginalLikelihood(const std::vector<std::vector<double>>& X, const std::vector<double>& yn,
                                        const GpHyperparameters& h, std::vector<double>* gradient = nullptr);

private:
    struct State; // training inputs, Cholesky factor and K_y^-1 yn as fp64 tensors (immutable once built)
    std::shared_ptr<const State> state_;
    GpHyperparameters h_;
    double yMean_ = 0, yStd_ = 1, lml_ = 0;
    int evaluations_ = 0;
};

} // namespace qpruner::search
