#include "search/gaussian_process.h"

#include "qpruner/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <random>
#include <string>

namespace qpruner::search {

namespace {

constexpr double kSqrt5 = 2.2360679774997896964;
constexpr double kLog2Pi = 1.8378770664093454836;
constexpr double kInf = std::numeric_limits<double>::infinity();

at::TensorOptions f64() { return at::TensorOptions().dtype(at::kDouble); }

// Checks X (n >= 1 rows of the same d >= 1 finite features) and, when given, y (n finite values); returns d.
size_t validateInputs(const char* what, const std::vector<std::vector<double>>& X, const std::vector<double>* y)
{
    const std::string where = std::string("GaussianProcess::") + what + ": ";
    if (X.empty())
        throw ConfigError(where + "X has no rows (need at least one training point)");
    const size_t d = X.front().size();
    if (d == 0)
        throw ConfigError(where + "X rows have no features (need at least one input dimension)");
    for (size_t i = 0; i < X.size(); ++i) {
        if (X[i].size() != d)
            throw ConfigError(where + "X row " + std::to_string(i) + " has " + std::to_string(X[i].size()) +
                              " features, row 0 has " + std::to_string(d));
        for (double v : X[i])
            if (!std::isfinite(v))
                throw ConfigError(where + "X row " + std::to_string(i) + " has a non-finite value");
    }
    if (y) {
        if (y->size() != X.size())
            throw ConfigError(where + "y has " + std::to_string(y->size()) + " values for " +
                              std::to_string(X.size()) + " rows of X");
        for (size_t i = 0; i < y->size(); ++i)
            if (!std::isfinite((*y)[i]))
                throw ConfigError(where + "y[" + std::to_string(i) + "] is not finite");
    }
    return d;
}

void validateHyperparameters(const char* what, const GpHyperparameters& h, size_t d)
{
    const std::string where = std::string("GaussianProcess::") + what + ": ";
    if (h.logLengthscales.size() != d)
        throw ConfigError(where + "hyperparameters have " + std::to_string(h.logLengthscales.size()) +
                          " length scales for " + std::to_string(d) + " input dimensions");
    for (double v : h.logLengthscales)
        if (!std::isfinite(v))
            throw ConfigError(where + "a log length scale is not finite");
    if (!std::isfinite(h.logSignalStd) || !std::isfinite(h.logNoiseStd))
        throw ConfigError(where + "logSignalStd and logNoiseStd must be finite");
}

at::Tensor toTensor(const std::vector<std::vector<double>>& X, size_t d)
{
    at::Tensor t = at::empty({int64_t(X.size()), int64_t(d)}, f64());
    double* p = t.data_ptr<double>();
    for (const std::vector<double>& row : X) {
        std::memcpy(p, row.data(), d * sizeof(double));
        p += d;
    }
    return t;
}

std::vector<double> toVector(const GpHyperparameters& h)
{
    std::vector<double> theta = h.logLengthscales;
    theta.push_back(h.logSignalStd);
    theta.push_back(h.logNoiseStd);
    return theta;
}

GpHyperparameters fromVector(const std::vector<double>& theta)
{
    GpHyperparameters h;
    h.logLengthscales.assign(theta.begin(), theta.end() - 2);
    h.logSignalStd = theta[theta.size() - 2];
    h.logNoiseStd = theta.back();
    return h;
}

// The log marginal likelihood of normalised outputs as a function of theta = (log l_1..d, log sf, log sn), with
// the per-dimension squared differences precomputed. Elementwise work runs in plain loops over the tensors'
// memory (n^2 values, cheaper than a dozen small tensor ops), the linear algebra in ATen.
class Likelihood {
public:
    Likelihood(const at::Tensor& X, const std::vector<double>& yn)
        : n_(X.size(0)), d_(X.size(1)), yn_(at::empty({n_, 1}, f64()))
    {
        std::memcpy(yn_.data_ptr<double>(), yn.data(), size_t(n_) * sizeof(double));
        const at::Tensor xt = X.t();                                          // [d, n]
        const at::Tensor diff = xt.unsqueeze(2) - xt.unsqueeze(1);             // [d, n, n]
        D_ = (diff * diff).reshape({d_, n_ * n_}).contiguous();
        w_ = at::empty({d_}, f64());
        r2_ = at::empty({n_ * n_}, f64());
        kf_ = at::empty({n_, n_}, f64());
        g_ = at::empty({n_, n_}, f64());
        ky_ = at::empty({n_, n_}, f64());
        wg_ = at::empty({n_ * n_}, f64());
        gl_ = at::empty({d_}, f64());
        kinv_ = at::empty({n_, n_}, f64());
        z_ = at::empty({n_}, f64());
        a_ = at::empty({n_, 1}, f64());
        eye_ = at::eye(n_, f64());
    }

    // -inf when K_y is not positive definite even with jitter 1e-4 on the diagonal. `L` and `alpha`, when given,
    // receive the Cholesky factor (lower) and K_y^-1 yn.
    double evaluate(const double* theta, double* gradient, at::Tensor* L = nullptr, at::Tensor* alpha = nullptr)
    {
        const int64_t n = n_, d = d_;
        double* w = w_.data_ptr<double>();
        for (int64_t k = 0; k < d; ++k)
            w[k] = std::exp(-2 * theta[k]);
        const double sf2 = std::exp(2 * theta[d]);
        const double sn2 = std::exp(2 * theta[d + 1]);

        at::mv_out(r2_, D_.t(), w_);
        const double* r2 = r2_.data_ptr<double>();
        double* kf = kf_.data_ptr<double>();
        double* g = g_.data_ptr<double>();
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = i; j < n; ++j) {
                const double q = std::max(r2[i * n + j], 0.0);
                const double r = std::sqrt(q);
                const double e = sf2 * std::exp(-kSqrt5 * r);
                const double k = (1 + kSqrt5 * r + (5.0 / 3.0) * q) * e;
                const double dk = (5.0 / 3.0) * (1 + kSqrt5 * r) * e; // dK/dlog l_i = dk * D_i / l_i^2
                kf[i * n + j] = kf[j * n + i] = k;
                g[i * n + j] = g[j * n + i] = dk;
            }
        double* ky = ky_.data_ptr<double>();
        std::memcpy(ky, kf, size_t(n * n) * sizeof(double));
        for (int64_t i = 0; i < n; ++i)
            ky[i * n + i] += sn2;

        at::Tensor chol;
        double jitter = 0;
        for (;;) {
            auto [factor, info] = at::linalg_cholesky_ex(ky_);
            if (*info.data_ptr<int>() == 0) {
                chol = factor;
                break;
            }
            const double next = jitter == 0 ? 1e-8 : jitter * 10;
            if (next > 1.0001e-4)
                return -kInf;
            for (int64_t i = 0; i < n; ++i)
                ky[i * n + i] += next - jitter;
            jitter = next;
        }
        // L^-1 from one triangular solve, then z = L^-1 yn, a = L^-T z and (for the gradient) K_y^-1 = L^-T L^-1:
        // at this size cheaper than cholesky_solve and cholesky_inverse, which copy and re-layout their inputs.
        const at::Tensor linv = at::linalg_solve_triangular(chol, eye_, /*upper=*/false).contiguous();
        const double* li = linv.data_ptr<double>();
        const double* yp = yn_.data_ptr<double>();
        double* z = z_.data_ptr<double>();
        double* ap = a_.data_ptr<double>();
        const double* cp = chol.data_ptr<double>();
        const int64_t diagonalStride = chol.stride(0) + chol.stride(1);
        double quad = 0, logDet = 0;
        for (int64_t i = 0; i < n; ++i) {
            double zi = 0;
            for (int64_t j = 0; j <= i; ++j)
                zi += li[i * n + j] * yp[j];
            z[i] = zi;
            quad += zi * zi;
            logDet += std::log(cp[i * diagonalStride]);
        }
        for (int64_t i = 0; i < n; ++i) {
            double ai = 0;
            for (int64_t j = i; j < n; ++j)
                ai += li[j * n + i] * z[j];
            ap[i] = ai;
        }
        const double lml = -0.5 * quad - logDet - 0.5 * double(n) * kLog2Pi;
        if (!std::isfinite(lml))
            return -kInf;

        if (gradient) {
            // d lml / d theta_j = 1/2 tr(W dK/dtheta_j) = 1/2 sum(W o dK/dtheta_j), W = a a^T - K_y^-1 (symmetric).
            at::mm_out(kinv_, linv.t(), linv);
            const double* ki = kinv_.data_ptr<double>();
            double* wg = wg_.data_ptr<double>();
            double sumWK = 0, traceW = 0;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    const double wij = ap[i] * ap[j] - ki[i * n + j];
                    wg[i * n + j] = wij * g[i * n + j];
                    sumWK += wij * kf[i * n + j];
                }
            for (int64_t i = 0; i < n; ++i)
                traceW += ap[i] * ap[i] - ki[i * n + i];
            at::mv_out(gl_, D_, wg_);
            const double* gl = gl_.data_ptr<double>();
            for (int64_t k = 0; k < d; ++k)
                gradient[k] = 0.5 * gl[k] * w[k];
            gradient[d] = sumWK;            // dK/dlog sf = 2 K_f
            gradient[d + 1] = sn2 * traceW; // dK/dlog sn = 2 sn^2 I
        }
        if (L)
            *L = chol.contiguous();
        if (alpha)
            *alpha = a_.clone();
        return lml;
    }

private:
    int64_t n_, d_;
    at::Tensor yn_; // [n, 1]
    at::Tensor D_;  // [d, n * n] squared differences per dimension
    at::Tensor w_, r2_, kf_, g_, ky_, wg_, gl_, kinv_, z_, a_, eye_; // scratch
};

using Objective = std::function<double(const std::vector<double>&, std::vector<double>&)>;

// Maximises f over the box [lo, hi] by projected L-BFGS: the two-loop direction over the free variables (those
// not held at a bound by the gradient), a backtracking Armijo search along the projected path, and a restart
// from steepest ascent whenever the quasi-Newton direction fails. f(x, gradient) returns -inf where undefined.
class BoxAscent {
public:
    BoxAscent(const Objective& f, std::vector<double> x, const std::vector<double>& lo, const std::vector<double>& hi)
        : f_(&f), lo_(&lo), hi_(&hi), x_(std::move(x)), g_(x_.size())
    {
        for (size_t i = 0; i < x_.size(); ++i)
            x_[i] = std::clamp(x_[i], lo[i], hi[i]);
        fx_ = evaluate(x_, g_);
        done_ = !std::isfinite(fx_);
        history_.push_back(fx_);
    }

    double value() const { return -fx_; }
    const std::vector<double>& x() const { return x_; }

    void iterate(int iterations)
    {
        for (int k = 0; k < iterations && !done_; ++k)
            done_ = !step();
    }

private:
    static constexpr size_t kMemory = 10;
    static constexpr double kArmijo = 1e-4, kGradientTolerance = 1e-5;
    // Converged once the objective gained less than 1e-6 (1 + |f|) per iteration over the last kWindow iterations
    // (~1e-4 nats for n = 40): the remaining crawl, mostly irrelevant length scales creeping towards their upper
    // bound, changes the surrogate by nothing that matters, and stopping there saves ~30% of the evaluations.
    static constexpr double kRelativeTolerance = 1e-6;
    static constexpr size_t kWindow = 3;

    // Minimises the negative internally.
    double evaluate(const std::vector<double>& x, std::vector<double>& gradient) const
    {
        const double v = (*f_)(x, gradient);
        for (double& gi : gradient)
            gi = -gi;
        return std::isfinite(v) ? -v : kInf;
    }

    void forget()
    {
        S_.clear();
        Y_.clear();
        rhos_.clear();
    }

    // One iteration; false once converged or stuck.
    bool step()
    {
        const std::vector<double>& lo = *lo_;
        const std::vector<double>& hi = *hi_;
        const size_t p = x_.size();
        std::vector<double> q(p), dir(p), xn(p), gn(p), alphas(S_.size());
        std::vector<char> isFree(p);
        double largest = 0;
        for (size_t i = 0; i < p; ++i) {
            const bool held = (x_[i] <= lo[i] && g_[i] > 0) || (x_[i] >= hi[i] && g_[i] < 0);
            isFree[i] = !held;
            q[i] = held ? 0 : g_[i];
            largest = std::max(largest, std::abs(q[i]));
        }
        if (largest < kGradientTolerance)
            return false;

        for (size_t k = S_.size(); k-- > 0;) {
            double sq = 0;
            for (size_t i = 0; i < p; ++i)
                sq += S_[k][i] * q[i];
            alphas[k] = rhos_[k] * sq;
            for (size_t i = 0; i < p; ++i)
                q[i] -= alphas[k] * Y_[k][i];
        }
        double gamma = 1 / largest; // first step: at most 1 in every log-parameter
        if (!S_.empty()) {
            double sy = 0, yy = 0;
            for (size_t i = 0; i < p; ++i) {
                sy += S_.back()[i] * Y_.back()[i];
                yy += Y_.back()[i] * Y_.back()[i];
            }
            gamma = sy / yy;
        }
        for (size_t i = 0; i < p; ++i)
            q[i] *= gamma;
        for (size_t k = 0; k < S_.size(); ++k) {
            double yr = 0;
            for (size_t i = 0; i < p; ++i)
                yr += Y_[k][i] * q[i];
            const double beta = rhos_[k] * yr;
            for (size_t i = 0; i < p; ++i)
                q[i] += (alphas[k] - beta) * S_[k][i];
        }
        double slope = 0;
        for (size_t i = 0; i < p; ++i) {
            dir[i] = isFree[i] ? -q[i] : 0;
            slope += g_[i] * dir[i];
        }
        if (!(slope < 0)) { // not a descent direction: forget the curvature pairs, take the scaled gradient
            forget();
            slope = 0;
            for (size_t i = 0; i < p; ++i) {
                dir[i] = isFree[i] ? -g_[i] / largest : 0;
                slope += g_[i] * dir[i];
            }
        }

        double t = 1, fn = kInf;
        bool accepted = false;
        for (int search = 0; search < 30; ++search) {
            bool moved = false;
            double decrease = 0;
            for (size_t i = 0; i < p; ++i) {
                xn[i] = std::clamp(x_[i] + t * dir[i], lo[i], hi[i]);
                moved = moved || xn[i] != x_[i];
                decrease += g_[i] * (xn[i] - x_[i]);
            }
            if (!moved)
                break;
            fn = evaluate(xn, gn);
            if (fn <= fx_ + kArmijo * decrease) {
                accepted = true;
                break;
            }
            // Minimiser of the quadratic through f(0), f'(0) and f(t), kept within [0.1 t, 0.5 t].
            const double interpolated = std::isfinite(fn) ? -slope * t * t / (2 * (fn - fx_ - slope * t)) : 0.1 * t;
            t = std::clamp(interpolated, 0.1 * t, 0.5 * t);
        }
        if (!accepted) {
            if (S_.empty())
                return false;
            forget(); // retry from steepest ascent
            return true;
        }

        std::vector<double> s(p), y(p);
        double sy = 0, ss = 0, yy = 0;
        for (size_t i = 0; i < p; ++i) {
            s[i] = xn[i] - x_[i];
            y[i] = gn[i] - g_[i];
            sy += s[i] * y[i];
            ss += s[i] * s[i];
            yy += y[i] * y[i];
        }
        if (sy > 1e-10 * std::sqrt(ss * yy)) {
            if (S_.size() == kMemory) {
                S_.pop_front();
                Y_.pop_front();
                rhos_.pop_front();
            }
            S_.push_back(std::move(s));
            Y_.push_back(std::move(y));
            rhos_.push_back(1 / sy);
        }
        x_ = std::move(xn);
        g_ = std::move(gn);
        fx_ = fn;
        history_.push_back(fx_);
        if (history_.size() <= kWindow)
            return true;
        const double drop = history_[history_.size() - 1 - kWindow] - fx_;
        return drop > double(kWindow) * kRelativeTolerance * (1 + std::abs(fx_));
    }

    const Objective* f_;
    const std::vector<double>* lo_;
    const std::vector<double>* hi_;
    std::vector<double> x_, g_, history_;
    double fx_ = kInf;
    bool done_ = false;
    std::deque<std::vector<double>> S_, Y_;
    std::deque<double> rhos_;
};

void validateOptions(const GpFitOptions& o)
{
    auto bad = [](const std::string& what) { throw ConfigError("GaussianProcess::fit: " + what); };
    if (o.restarts < 0)
        bad("restarts must be >= 0, got " + std::to_string(o.restarts));
    if (o.maxIterations < 0)
        bad("maxIterations must be >= 0, got " + std::to_string(o.maxIterations));
    auto range = [&](const char* name, double lo, double hi) {
        if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi))
            bad(std::string(name) + " bounds must satisfy 0 < min <= max < inf, got [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
    };
    range("length scale", o.minLengthscale, o.maxLengthscale);
    range("signal std", o.minSignalStd, o.maxSignalStd);
    range("noise std", o.minNoiseStd, o.maxNoiseStd);
}

} // namespace

struct GaussianProcess::State {
    at::Tensor X;     // [n, d] training inputs
    at::Tensor L;     // [n, n] lower Cholesky factor of K_y
    at::Tensor alpha; // [n, 1] K_y^-1 yn
};

namespace {

// Output normalisation: the mean and the sample standard deviation (1 when n < 2 or all outputs are equal).
std::vector<double> normalise(const std::vector<double>& y, double* mean, double* scale)
{
    const size_t n = y.size();
    double m = 0;
    for (double v : y)
        m += v;
    m /= double(n);
    const bool allEqual = std::all_of(y.begin(), y.end(), [&](double v) { return v == y.front(); });
    double s = 1;
    if (n >= 2 && !allEqual) {
        double ss = 0;
        for (double v : y)
            ss += (v - m) * (v - m);
        s = std::sqrt(ss / double(n - 1));
    }
    std::vector<double> yn(n);
    for (size_t i = 0; i < n; ++i)
        yn[i] = (y[i] - m) / s;
    *mean = m;
    *scale = s;
    return yn;
}

} // namespace

void GaussianProcess::fit(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                          const GpFitOptions& options)
{
    const size_t d = validateInputs("fit", X, &y);
    validateOptions(options);
    if (options.warmStart)
        validateHyperparameters("fit (warm start)", *options.warmStart, d);

    double mean = 0, scale = 1;
    const std::vector<double> yn = normalise(y, &mean, &scale);
    const at::Tensor Xt = toTensor(X, d);
    Likelihood likelihood(Xt, yn);

    std::vector<double> lo(d + 2), hi(d + 2);
    for (size_t i = 0; i < d; ++i) {
        lo[i] = std::log(options.minLengthscale);
        hi[i] = std::log(options.maxLengthscale);
    }
    lo[d] = std::log(options.minSignalStd);
    hi[d] = std::log(options.maxSignalStd);
    lo[d + 1] = std::log(options.minNoiseStd);
    hi[d + 1] = std::log(options.maxNoiseStd);

    std::vector<std::vector<double>> starts;
    std::vector<double> defaultStart(d + 2, std::log(0.5));
    defaultStart[d] = 0;
    defaultStart[d + 1] = std::log(0.1);
    starts.push_back(defaultStart);
    if (options.warmStart)
        starts.push_back(toVector(*options.warmStart));
    std::mt19937_64 generator(options.seed);
    for (int r = 0; r < options.restarts; ++r) {
        std::vector<double> start(d + 2);
        for (size_t i = 0; i < d + 2; ++i) {
            const double u = double(generator() >> 11) * 0x1.0p-53;
            start[i] = lo[i] + u * (hi[i] - lo[i]);
        }
        starts.push_back(std::move(start));
    }

    int evaluations = 0;
    const Objective objective = [&](const std::vector<double>& theta, std::vector<double>& gradient) {
        ++evaluations;
        return likelihood.evaluate(theta.data(), gradient.data());
    };
    std::vector<double> best;
    double bestValue = -kInf;
    for (std::vector<double>& start : starts) {
        BoxAscent run(objective, std::move(start), lo, hi);
        run.iterate(options.maxIterations);
        if (run.value() > bestValue) {
            best = run.x();
            bestValue = run.value();
        }
    }
    if (!(bestValue > -kInf))
        throw Error("GaussianProcess::fit: the covariance matrix is not positive definite at any start, even with "
                    "jitter 1e-4 on the diagonal");

    auto state = std::make_shared<State>();
    state->X = Xt;
    const double lml = likelihood.evaluate(best.data(), nullptr, &state->L, &state->alpha);
    ++evaluations;
    state_ = std::move(state);
    h_ = fromVector(best);
    yMean_ = mean;
    yStd_ = scale;
    lml_ = lml;
    evaluations_ = evaluations;
}

void GaussianProcess::condition(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                                const GpHyperparameters& h)
{
    const size_t d = validateInputs("condition", X, &y);
    validateHyperparameters("condition", h, d);
    double mean = 0, scale = 1;
    const std::vector<double> yn = normalise(y, &mean, &scale);
    const at::Tensor Xt = toTensor(X, d);
    Likelihood likelihood(Xt, yn);
    auto state = std::make_shared<State>();
    state->X = Xt;
    const std::vector<double> theta = toVector(h);
    const double lml = likelihood.evaluate(theta.data(), nullptr, &state->L, &state->alpha);
    if (!(lml > -kInf))
        throw ConfigError("GaussianProcess::condition: the covariance matrix is not positive definite with these "
                          "hyperparameters, even with jitter 1e-4 on the diagonal");
    state_ = std::move(state);
    h_ = h;
    yMean_ = mean;
    yStd_ = scale;
    lml_ = lml;
    evaluations_ = 0;
}

GpPrediction GaussianProcess::predict(const std::vector<std::vector<double>>& Xstar) const
{
    if (!state_)
        throw ConfigError("GaussianProcess::predict: call fit() or condition() first");
    GpPrediction out;
    if (Xstar.empty())
        return out;
    const size_t d = h_.logLengthscales.size();
    if (validateInputs("predict", Xstar, nullptr) != d)
        throw ConfigError("GaussianProcess::predict: candidates have " + std::to_string(Xstar.front().size()) +
                          " features, the training inputs " + std::to_string(d));
    const int64_t m = int64_t(Xstar.size());

    at::Tensor inverseLengthscales = at::empty({int64_t(d)}, f64());
    for (size_t i = 0; i < d; ++i)
        inverseLengthscales.data_ptr<double>()[i] = std::exp(-h_.logLengthscales[i]);
    const at::Tensor A = state_->X * inverseLengthscales;             // [n, d]
    const at::Tensor B = toTensor(Xstar, d).mul_(inverseLengthscales); // [m, d]
    // r^2 = |a|^2 + |b|^2 - 2 a.b; the cancellation error (~1e-16 |a|^2) is harmless, k is smooth in r^2 at 0.
    at::Tensor r2 = at::addmm((A * A).sum(1, true) + (B * B).sum(1).unsqueeze(0), A, B.t(), 1, -2).clamp_min_(0);
    const double sf2 = std::exp(2 * h_.logSignalStd);
    const at::Tensor r = r2.sqrt();
    const at::Tensor Ks = (r * kSqrt5 + 1).add_(r2, 5.0 / 3.0).mul_((r * -kSqrt5).exp_()).mul_(sf2); // [n, m]

    const at::Tensor mean = at::mv(Ks.t(), state_->alpha.view({-1})).mul_(yStd_).add_(yMean_).contiguous();
    const at::Tensor V = at::linalg_solve_triangular(state_->L, Ks, /*upper=*/false);
    const at::Tensor variance = (V * V).sum(0).neg_().add_(sf2).clamp_min_(0).mul_(yStd_ * yStd_).contiguous();
    out.mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + m);
    out.variance.assign(variance.data_ptr<double>(), variance.data_ptr<double>() + m);
    return out;
}

double GaussianProcess::logMarginalLikelihood(const std::vector<std::vector<double>>& X, const std::vector<double>& yn,
                                              const GpHyperparameters& h, std::vector<double>* gradient)
{
    const size_t d = validateInputs("logMarginalLikelihood", X, &yn);
    validateHyperparameters("logMarginalLikelihood", h, d);
    Likelihood likelihood(toTensor(X, d), yn);
    const std::vector<double> theta = toVector(h);
    if (gradient)
        gradient->assign(d + 2, 0.0);
    return likelihood.evaluate(theta.data(), gradient ? gradient->data() : nullptr);
}

} // namespace qpruner::search
