// Compute dtype and the blocked matmuls: the policy per CPU feature set (injected), bf16 storage computing in
// fp32 without changing perplexity beyond bf16's rounding, blockedLinear (both kernels) and the packed GEMM
// against at::linear and a float64 product, the fused causal attention against a float64 softmax, and the CPU
// dequantization loops (AVX2 and portable) bit for bit against the tensor kernels and the reference quantizer.
#include <QtTest/QtTest>

#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <ATen/ATen.h>

#include "eval/perplexity.h"
#include "model/blocked_linear.h"
#include "model/checkpoint.h"
#include "model/cpu_features.h"
#include "model/cpu_attention.h"
#include "model/cpu_elementwise.h"
#include "model/dtype.h"
#include "model/packed_gemm.h"
#include "model/rope.h"
#include "model/simd_exp.h"
#include "model/linear.h"
#include "qpruner/tokenizer.h"
#include "quant/cpu_dequant.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"
#include "quant/quantized_tensor.h"
#include "quant/reference_quant.h"
#include "quant/tensor_kernels.h"
#include "test_data.h"

using namespace qpruner;
using qpruner::model::CpuFeatures;

namespace {

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed)
{
    auto gen = at::detail::createCPUGenerator(seed);
    return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}

double maxRelDiff(const at::Tensor& a, const at::Tensor& b)
{
    const double scale = b.abs().max().item<double>();
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

// The tensor kernels' rows (the CUDA path), fp32.
at::Tensor tensorKernelRows(const quant::QuantizedTensor& q, int64_t r0, int64_t r1)
{
    switch (q.spec.kind) {
    case QuantKind::Int8: return quant::kernels::dequantizeInt8Rows(q, r0, r1).contiguous();
    case QuantKind::NF4:
        return quant::kernels::dequantizeNf4Elements(q, r0 * q.cols, r1 * q.cols).view({r1 - r0, q.cols}).contiguous();
    default: return quant::kernels::dequantizeIntKRows(q, r0, r1).contiguous();
    }
}

at::Tensor cpuRows(const quant::QuantizedTensor& q, int64_t r0, int64_t r1, bool vectorised)
{
    auto out = at::full({r1 - r0, q.cols}, std::numeric_limits<float>::quiet_NaN());
    quant::dequantizeRowsCpu(q, r0, r1, out.data_ptr<float>(), vectorised);
    return out;
}

#if defined(__x86_64__)
// exp4d over n doubles (n a multiple of 4).
__attribute__((target("avx2,fma"))) void exp4dInto(const double* in, double* out, int64_t n)
{
    for (int64_t i = 0; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, model::exp4d(_mm256_loadu_pd(in + i)));
}
#else
void exp4dInto(const double*, double*, int64_t) {}
#endif

} // namespace

class TestCompute : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void policyPerCpuFeatureSet()
    {
        const at::Device cpu(at::kCPU);
        CpuFeatures avx2;
        avx2.avx2 = avx2.fma = avx2.f16c = true;
        CpuFeatures avx512 = avx2; // AVX-512 without its bf16 extension: still no native bf16
        avx512.avx512f = avx512.avx512bw = true;
        CpuFeatures bf16 = avx512;
        bf16.avx512bf16 = true;
        CpuFeatures amx = avx2;
        amx.amxbf16 = true;

        for (const CpuFeatures& f : {CpuFeatures{}, avx2, avx512}) {
            const auto c = model::chooseComputeDtype(at::kBFloat16, cpu, f);
            QCOMPARE(c.dtype, at::kFloat);
            QVERIFY2(c.reason.find("no AVX512_BF16 or AMX-BF16") != std::string::npos, c.reason.c_str());
            QVERIFY2(c.reason.find("CPU: " + f.describe()) != std::string::npos, c.reason.c_str());
        }
        for (const CpuFeatures& f : {bf16, amx}) {
            QCOMPARE(model::chooseComputeDtype(at::kBFloat16, cpu, f).dtype, at::kBFloat16);
            QVERIFY(f.nativeBf16());
        }
        // fp16 never computes in fp16 on the CPU; fp32 stays fp32 everywhere.
        for (const CpuFeatures& f : {CpuFeatures{}, bf16}) {
            QCOMPARE(model::chooseComputeDtype(at::kHalf, cpu, f).dtype, at::kFloat);
            QCOMPARE(model::chooseComputeDtype(at::kFloat, cpu, f).dtype, at::kFloat);
        }
        // CUDA computes in the stored dtype.
        const at::Device gpu(at::kCUDA, 0);
        QCOMPARE(model::chooseComputeDtype(at::kBFloat16, gpu, avx2).dtype, at::kBFloat16);
        QCOMPARE(model::chooseComputeDtype(at::kHalf, gpu, avx2).dtype, at::kHalf);
        // The override wins, says so, and warns when it forces slow bf16.
        const auto forced = model::chooseComputeDtype(at::kFloat, cpu, avx2, at::kBFloat16);
        QCOMPARE(forced.dtype, at::kBFloat16);
        QVERIFY(forced.reason.find("forced by --compute-dtype") != std::string::npos);
        QVERIFY(forced.reason.find("far slower") != std::string::npos);
        QVERIFY(model::chooseComputeDtype(at::kFloat, cpu, bf16, at::kBFloat16).reason.find("far slower") ==
                std::string::npos);
        QCOMPARE(model::chooseComputeDtype(at::kBFloat16, cpu, bf16, at::kFloat).dtype, at::kFloat);
        VERIFY_THROWS(ConfigError, model::chooseComputeDtype(at::kFloat, cpu, avx2, at::kHalf), "no fp16 matmul");
        QCOMPARE(model::chooseComputeDtype(at::kFloat, gpu, avx2, at::kHalf).dtype, at::kHalf);
        // Parsing.
        QVERIFY(!model::parseComputeDtype("auto"));
        QCOMPARE(*model::parseComputeDtype("bf16"), at::kBFloat16);
        VERIFY_THROWS(ConfigError, model::parseComputeDtype("int8"), "unknown dtype 'int8'");
        // Names of features.
        QCOMPARE(CpuFeatures{}.describe(), std::string("none"));
        QCOMPARE(bf16.describe(), std::string("avx2 fma f16c avx512f avx512bw avx512_bf16"));
    }

    void processOverrideAndHostPolicy()
    {
        const at::Device cpu(at::kCPU);
        const bool native = model::hostCpuFeatures().nativeBf16();
        QCOMPARE(model::computeDtypeFor(at::kBFloat16, cpu), native ? at::kBFloat16 : at::kFloat);
        model::setComputeDtypeOverride(at::kFloat);
        QCOMPARE(model::computeDtypeFor(at::kBFloat16, cpu), at::kFloat);
        model::setComputeDtypeOverride(at::kBFloat16);
        QCOMPARE(model::computeDtypeFor(at::kFloat, cpu), at::kBFloat16);
        model::setComputeDtypeOverride(at::kHalf);
        VERIFY_THROWS(ConfigError, model::computeDtypeFor(at::kFloat, cpu), "no fp16 matmul");
        model::setComputeDtypeOverride(std::nullopt);
        QCOMPARE(model::computeDtypeFor(at::kFloat, cpu), at::kFloat);
    }

    // ScopedComputeDtype: this thread's choice over the process's, nested and restored, invisible to other threads.
    void scopedOverrideIsPerThread()
    {
        const at::Device cpu(at::kCPU);
        model::setComputeDtypeOverride(at::kFloat);
        std::optional<at::ScalarType> seenElsewhere = at::kHalf;
        {
            const model::ScopedComputeDtype outer(at::kBFloat16);
            QCOMPARE(model::computeDtypeFor(at::kFloat, cpu), at::kBFloat16);
            std::thread([&] { seenElsewhere = model::computeDtypeOverride(); }).join();
            {
                const model::ScopedComputeDtype inner(std::nullopt); // "auto" inside: chosen per CPU
                QVERIFY(!model::computeDtypeOverride());
                QCOMPARE(model::computeDtypeFor(at::kFloat, cpu), at::kFloat);
            }
            QCOMPARE(*model::computeDtypeOverride(), at::kBFloat16);
            QVERIFY(model::computeChoiceFor(at::kFloat, cpu).reason.find("forced") != std::string::npos);
        }
        QCOMPARE(*seenElsewhere, at::kFloat); // the other thread saw the process's override
        QCOMPARE(*model::computeDtypeOverride(), at::kFloat);
        model::setComputeDtypeOverride(std::nullopt);
        QVERIFY(!model::computeDtypeOverride());
    }

    void blockedLinearEqualsLinear()
    {
        const auto x = randn({3, 5, 70}, 1);
        const auto w = randn({130, 70}, 2);
        const auto b = randn({130}, 3);
        const auto want = at::linear(x, w, b);
        const auto fill = [&](int64_t r0, int64_t r1, at::Tensor& dst) { dst.copy_(w.narrow(0, r0, r1 - r0)); };
        for (const auto kernel : {model::LinearKernel::Auto, model::LinearKernel::Blas, model::LinearKernel::Packed})
            for (int64_t blockBytes : {int64_t(1), int64_t(7 * 70 * 4), int64_t(64 * 70 * 4), int64_t(1) << 24}) {
                for (int threads : {1, 2}) {
                    at::set_num_threads(threads);
                    const auto got = model::blockedLinear(x, 130, 70, fill, b, blockBytes, kernel);
                    QCOMPARE(got.sizes().vec(), want.sizes().vec());
                    QVERIFY2(maxRelDiff(got, want) < 1e-6,
                             qPrintable(QString("block %1 B, %2 threads, kernel %3: %4")
                                            .arg(blockBytes).arg(threads).arg(int(kernel)).arg(maxRelDiff(got, want))));
                }
            }
        // Large enough for the threads to split the blocks (x rows * rows * cols >= 2^22).
        const auto xl = randn({64, 256}, 6);
        const auto wl = randn({300, 256}, 7);
        const auto fillL = [&](int64_t r0, int64_t r1, at::Tensor& dst) { dst.copy_(wl.narrow(0, r0, r1 - r0)); };
        for (int threads : {1, 2, 3}) {
            at::set_num_threads(threads);
            for (const auto kernel : {model::LinearKernel::Auto, model::LinearKernel::Blas, model::LinearKernel::Packed})
                QVERIFY(maxRelDiff(model::blockedLinear(xl, 300, 256, fillL, std::nullopt, 13 * 256 * 4, kernel),
                                   at::linear(xl, wl)) < 1e-6);
        }
        // No bias, a single token.
        const auto one = x.narrow(1, 0, 1).narrow(0, 0, 1);
        QVERIFY(maxRelDiff(model::blockedLinear(one, 130, 70, fill, std::nullopt, 1000), at::linear(one, w)) < 1e-6);
    }

    // The packed GEMM at every edge of its blocking (rows not a multiple of 6, columns not a multiple of 16, a
    // depth that leaves a short k block, blocks smaller than the matrix in every direction) against a float64
    // product; the same bits for every thread count; every weight row filled exactly once, from disjoint ranges.
    void packedGemmEdgesThreadsAndFills()
    {
        if (!model::packedGemmAvailable())
            QSKIP("this CPU lacks AVX2/FMA: the packed GEMM is not used here");
        model::PackedGemmBlocking small;
        small.kc = 40;
        small.nc = 32;
        small.mc = 12;
        const std::vector<std::array<int64_t, 3>> shapes = {
            {1, 70, 130}, {5, 70, 37}, {6, 16, 16}, {7, 1, 3}, {13, 97, 33}, {29, 200, 64}, {64, 256, 300}};
        for (const auto& [m, k, n] : shapes) {
            const auto x = randn({m, k}, uint64_t(100 + m));
            const auto w = randn({n, k}, uint64_t(200 + n));
            const auto want = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
            for (const auto& blocking : {model::PackedGemmBlocking{}, small}) {
                at::Tensor first;
                for (int threads : {1, 2, 3}) {
                    at::set_num_threads(threads);
                    std::vector<int> filled(size_t(n), 0);
                    std::mutex mu;
                    const auto fill = [&](int64_t r0, int64_t r1, at::Tensor& dst) {
                        QCOMPARE(dst.sizes().vec(), (std::vector<int64_t>{r1 - r0, k}));
                        dst.copy_(w.narrow(0, r0, r1 - r0));
                        const std::lock_guard<std::mutex> lock(mu);
                        for (int64_t r = r0; r < r1; ++r)
                            ++filled[size_t(r)];
                    };
                    auto y = at::full({m, n}, std::numeric_limits<float>::quiet_NaN());
                    model::packedGemm(x.data_ptr<float>(), m, k, n, fill, y.data_ptr<float>(), blocking);
                    const QString what = QString("%1x%2x%3, kc %4, %5 threads").arg(m).arg(k).arg(n)
                                             .arg(blocking.kc).arg(threads);
                    // Once per row; when there are fewer blocks of rows than threads, once per share of x's rows.
                    QVERIFY2(std::all_of(filled.begin(), filled.end(), [&](int c) { return c == filled[0]; }) &&
                                 filled[0] >= 1 && filled[0] <= threads && (threads > 1 || filled[0] == 1),
                             qPrintable(what + QString(": filled %1 times").arg(filled[0])));
                    const double err = maxRelDiff(y, want);
                    QVERIFY2(err < 1e-6, qPrintable(what + QString(": %1").arg(err)));
                    // The dense entry point (weight read in place) gives the same bits.
                    auto yd = at::full({m, n}, std::numeric_limits<float>::quiet_NaN());
                    model::packedGemm(x.data_ptr<float>(), m, k, n, w.data_ptr<float>(), yd.data_ptr<float>(), blocking);
                    QVERIFY2(at::equal(y, yd), qPrintable(what + ": dense entry point differs"));
                    if (!first.defined())
                        first = y;
                    else
                        QVERIFY2(at::equal(first, y), qPrintable(what + ": differs from 1 thread"));
                }
            }
        }
        at::set_num_threads(1);
        // DenseLinear's packed path: the same values as at::linear, and a wrong input width refused by libtorch's
        // own shape check (naming both shapes), not reshaped.
        {
            c10::InferenceMode guard;
            const model::DenseLinear dense(randn({8, 4}, 11), randn({8}, 12));
            const auto x = randn({3, 5, 4}, 13);
            QVERIFY(maxRelDiff(dense.forward(x), at::linear(x, dense.denseWeight(), *dense.bias())) < 1e-6);
            QString message;
            try {
                (void)dense.forward(randn({4, 2}, 14));
            } catch (const std::exception& e) {
                message = e.what();
            }
            QVERIFY2(message.contains("4x2") && message.contains("8"), qPrintable(message));
        }
        // Inside inference mode the fill's tensors stay usable on the worker threads.
        {
            c10::InferenceMode guard;
            at::set_num_threads(2);
            const auto x = randn({20, 64}, 9);
            const auto q = quant::quantize(randn({96, 64}, 10), parseQuantSpec("nf4"));
            const quant::QuantLinear layer(q);
            QVERIFY(maxRelDiff(layer.forward(x), at::linear(x, quant::dequantize(q))) < 1e-6);
            at::set_num_threads(1);
        }
    }

    void bf16WeightsComputeInFp32ByBlocks()
    {
        const auto w = randn({96, 48}, 4).to(at::kBFloat16);
        const auto x = randn({4, 48}, 5);
        const model::DenseLinear layer(w);
        // Blocked conversion equals converting the whole weight, and the result is fp32 (not bf16-rounded).
        const auto want = at::linear(x, w.to(at::kFloat));
        const auto got = layer.forward(x);
        QCOMPARE(got.scalar_type(), at::kFloat);
        QVERIFY(maxRelDiff(got, want) < 1e-6);
        // The conversion itself is exact for bf16 and fp16, subnormals and odd row lengths included.
        for (const auto dt : {at::kBFloat16, at::kHalf}) {
            auto src = (randn({6, 37}, 8) * 1e3).to(dt);
            src.view(-1).narrow(0, 0, 5).copy_(at::tensor({1e-7f, -3e-8f, 65504.0f, 0.0f, -0.0f}).to(dt));
            auto dst = at::empty({3, 37}, at::kFloat);
            model::copyRowsAsFloat(src, 2, 5, dst);
            QVERIFY(at::equal(dst, src.narrow(0, 2, 3).to(at::kFloat)));
            auto head = at::empty({1, 37}, at::kFloat);
            model::copyRowsAsFloat(src, 0, 1, head);
            QVERIFY(at::equal(head, src.narrow(0, 0, 1).to(at::kFloat)));
        }
        // With autograd the conversion is differentiable: dL/dx = W.
        const auto xg = x.clone().requires_grad_(true);
        layer.forward(xg).sum().backward();
        QVERIFY(maxRelDiff(xg.grad(), w.to(at::kFloat).sum(0).expand({4, 48})) < 1e-6);
    }

    void cpuDequantMatchesTensorKernelsAndReference()
    {
        QVERIFY(std::string(quant::cpuDequantKernel()) == "avx2" || std::string(quant::cpuDequantKernel()) == "scalar");
        // Shapes where NF4 blocks straddle rows (cols not a multiple of 64, odd cols), short rows, one column.
        const std::vector<std::pair<int64_t, int64_t>> shapes = {{37, 100}, {5, 64}, {3, 1}, {9, 129}, {16, 256}};
        const char* formats[] = {"nf4", "nf4-dq", "int8", "int4", "int4-g128", "int3", "int3-g128", "int2", "int2-g128"};
        uint64_t seed = 10;
        for (const auto& [rows, cols] : shapes) {
            for (const char* name : formats) {
                const QuantSpec spec = parseQuantSpec(name);
                auto w = randn({rows, cols}, seed++);
                w.narrow(0, 0, 1).mul_(40.0); // one row of outliers: scales differ between rows
                const quant::QuantizedTensor q = quant::quantize(w, spec);
                // The reference quantizer's own dequantization of the same weight.
                std::vector<float> wv(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
                const auto refParts = quant::reference::quantize(wv, rows, cols, spec);
                const auto ref = quant::reference::dequantize(refParts, rows, cols, spec);
                const auto refT = at::from_blob(const_cast<float*>(ref.data()), {rows, cols}, at::kFloat).clone();
                const QString what = QString("%1 [%2, %3]").arg(name).arg(rows).arg(cols);
                QVERIFY2(at::equal(quant::dequantize(q), refT), qPrintable(what + ": dequantize vs reference"));
                // Every row range, both CPU implementations, against the tensor kernels.
                for (const auto& [r0, r1] : std::vector<std::pair<int64_t, int64_t>>{{0, rows}, {rows / 2, rows},
                                                                                       {rows - 1, rows}}) {
                    if (r0 >= r1)
                        continue;
                    const auto kernel = tensorKernelRows(q, r0, r1);
                    QVERIFY2(at::equal(cpuRows(q, r0, r1, true), kernel), qPrintable(what + ": vectorised"));
                    QVERIFY2(at::equal(cpuRows(q, r0, r1, false), kernel), qPrintable(what + ": portable"));
                    QVERIFY2(at::equal(kernel, refT.narrow(0, r0, r1 - r0)), qPrintable(what + ": kernel vs ref"));
                }
            }
        }
    }

    void quantLinearBlockedEqualsDequantizedLinear()
    {
        const auto w = randn({200, 96}, 30);
        const auto b = randn({200}, 31);
        const auto x = randn({2, 7, 96}, 32);
        for (const char* name : {"nf4", "int8", "int4", "int3"}) {
            const quant::QuantLinear layer(quant::quantize(w, parseQuantSpec(name)), b, 40 * 96 * 4);
            const auto want = at::linear(x, quant::dequantize(layer.quantized()), b);
            QVERIFY2(maxRelDiff(layer.forward(x), want) < 1e-6, name);
            // Through autograd (x needs a gradient): the same values, and dL/dx = sum of W's rows.
            const auto xg = x.clone().requires_grad_(true);
            const auto y = layer.forward(xg);
            QVERIFY2(maxRelDiff(y.detach(), want) < 1e-6, name);
            y.sum().backward();
            const auto gw = quant::dequantize(layer.quantized()).sum(0).expand({2, 7, 96});
            QVERIFY2(maxRelDiff(xg.grad(), gw) < 1e-5, name);
        }
    }

    void vectorExpWithinTwoUlp()
    {
        std::vector<float> x;
        for (float v = -87.0f; v <= 88.0f; v += 0.0137f)
            x.push_back(v);
        for (float v : {0.0f, -0.0f, 1e-8f, -1e-8f, 0.34657359f, -0.34657359f, 0.5f, -0.5f})
            x.push_back(v);
        std::vector<float> y(x.size());
        model::vectorExp(x.data(), y.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i) {
            const double want = std::exp(double(x[i]));
            const double ulp = std::nextafter(float(want), INFINITY) - float(want);
            QVERIFY2(std::abs(double(y[i]) - want) <= 2 * ulp,
                     qPrintable(QString("exp(%1) = %2, want %3").arg(double(x[i]), 0, 'g', 9).arg(double(y[i]), 0, 'g', 9)
                                    .arg(want, 0, 'g', 9)));
        }
        QCOMPARE(y[x.size() - 8], 1.0f); // exp(0)
        // Far below: exactly 0 (softmax's masked lanes); odd lengths take the tail path.
        const float low[3] = {-100.0f, -1e30f, -std::numeric_limits<float>::infinity()};
        float out[3] = {1, 1, 1};
        model::vectorExp(low, out, 3);
        QVERIFY(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f);
    }

    // exp4d (quant-kl's float64 log-sum-exp): within 2 ulp of std::exp over [-708, 709], exp(0) = 1, and the clamp
    // below -708 gives exp(-708), finite and positive.
    void vectorExpDoubleWithinTwoUlp()
    {
        if (!model::packedGemmAvailable())
            QSKIP("this CPU lacks AVX2/FMA: exp4d is not used here");
        std::vector<double> x;
        for (double v = -708.0; v <= 709.0; v += 0.01371)
            x.push_back(v);
        for (double v : {0.0, -0.0, 1e-300, -1e-17, 0.34657359027997264, -0.34657359027997264, 0.5, -0.5, 1.0})
            x.push_back(v);
        while (x.size() % 4)
            x.push_back(0.25);
        std::vector<double> y(x.size());
        exp4dInto(x.data(), y.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i) {
            const double want = std::exp(x[i]);
            const double ulp = std::nextafter(want, INFINITY) - want;
            QVERIFY2(std::abs(y[i] - want) <= 2 * ulp,
                     qPrintable(QString("exp(%1) = %2, want %3").arg(x[i], 0, 'g', 17).arg(y[i], 0, 'g', 17)
                                    .arg(want, 0, 'g', 17)));
        }
        const double low[4] = {-708.0, -745.0, -1e300, 0.0};
        double out[4];
        exp4dInto(low, out, 4);
        QCOMPARE(out[1], out[0]);
        QCOMPARE(out[2], out[0]);
        QVERIFY(out[0] > 0 && std::isfinite(out[0]));
        QCOMPARE(out[3], 1.0);
    }

    // The fused causal attention against softmax(q k^T * scale + mask) v in float64: grouped KV heads, a KV
    // cache (keys before the queries, non-contiguous k and v), a sliding window, head dims 8 and 24; the same
    // bits for 1-3 threads; and not taken when autograd needs the inputs.
    void fusedAttentionMatchesSoftmaxReference()
    {
        if (!model::packedGemmAvailable())
            QSKIP("this CPU lacks AVX2/FMA: the fused attention is not used here");
        struct Case { int64_t B, nh, nkv, T, pos, hd, window; };
        for (const Case c : {Case{2, 4, 2, 13, 0, 8, 0}, Case{1, 3, 3, 9, 5, 24, 0}, Case{2, 4, 1, 17, 3, 8, 4},
                             Case{1, 2, 2, 1, 30, 16, 0}, Case{1, 2, 1, 40, 0, 8, 7}}) {
            const int64_t S = c.pos + c.T;
            const auto q = randn({c.B, c.T, c.nh, c.hd}, 40).transpose(1, 2); // non-contiguous, as the model's
            // Keys and values inside a larger cache, as with a KV cache.
            const auto kc = randn({c.B, c.nkv, S + 5, c.hd}, 41), vc = randn({c.B, c.nkv, S + 5, c.hd}, 42);
            const auto k = kc.narrow(2, 0, S), v = vc.narrow(2, 0, S);
            const double scale = 1.0 / std::sqrt(double(c.hd));
            // float64 reference, one query head at a time.
            auto want = at::empty({c.B, c.T, c.nh, c.hd}, at::TensorOptions().dtype(at::kDouble));
            for (int64_t h = 0; h < c.nh; ++h) {
                const auto qh = q.select(1, h).to(at::kDouble);
                const auto kh = k.select(1, h / (c.nh / c.nkv)).to(at::kDouble);
                const auto vh = v.select(1, h / (c.nh / c.nkv)).to(at::kDouble);
                auto sc = at::matmul(qh, kh.transpose(-1, -2)) * scale; // [B, T, S]
                const auto qp = at::arange(c.pos, S, at::kLong).unsqueeze(1), kp = at::arange(S, at::kLong).unsqueeze(0);
                auto hidden = kp > qp;
                if (c.window > 0)
                    hidden = hidden.logical_or(qp - kp >= c.window);
                sc.masked_fill_(hidden, -std::numeric_limits<double>::infinity());
                want.select(2, h).copy_(at::matmul(at::softmax(sc, -1), vh));
            }
            want = want.reshape({c.B, c.T, c.nh * c.hd});
            at::Tensor first;
            for (int threads : {1, 2, 3}) {
                at::set_num_threads(threads);
                const auto got = model::fusedCausalAttention(q, k, v, c.pos, scale, c.window);
                const QString what = QString("B%1 nh%2 nkv%3 T%4 pos%5 hd%6 window%7, %8 threads")
                                         .arg(c.B).arg(c.nh).arg(c.nkv).arg(c.T).arg(c.pos).arg(c.hd).arg(c.window)
                                         .arg(threads);
                QCOMPARE(got.sizes().vec(), want.sizes().vec());
                QVERIFY2(maxRelDiff(got, want) < 2e-6, qPrintable(what + QString(": %1").arg(maxRelDiff(got, want))));
                if (!first.defined())
                    first = got;
                else
                    QVERIFY2(at::equal(first, got), qPrintable(what + ": differs from 1 thread"));
            }
            at::set_num_threads(1);
        }
        const auto q = randn({1, 2, 4, 8}, 1).requires_grad_(true), k = randn({1, 2, 4, 8}, 2);
        QVERIFY(!model::fusedAttentionApplies(q, k, k));
        {
            const at::NoGradGuard noGrad;
            QVERIFY(model::fusedAttentionApplies(q, k, k));
        }
        QVERIFY(!model::fusedAttentionApplies(k.to(at::kBFloat16), k, k));
        QVERIFY(!model::fusedAttentionApplies(randn({1, 2, 4, 12}, 3), randn({1, 2, 4, 12}, 4), randn({1, 2, 4, 12}, 5)));
        VERIFY_THROWS(ConfigError, model::fusedCausalAttention(k, k.narrow(2, 0, 3), k.narrow(2, 0, 3), 0, 1.0, 0),
                      "shapes do not match");
    }

    // RMSNorm, RoPE and silu(gate) * up against their libtorch formulations in float64, at widths that are and are
    // not multiples of the vector width, on 1-3 threads (same bits), with the applicability rules and shape errors.
    void fusedElementwiseMatchesLibtorch()
    {
        if (!model::packedGemmAvailable())
            QSKIP("this CPU lacks AVX2/FMA: the fused kernels are not used here");
        for (const int64_t d : {8, 13, 64, 100, 2048}) {
            const auto x = randn({3, 7, d}, 50) * 3.0, w = randn({d}, 51);
            for (const bool unit : {false, true}) {
                const auto xd = x.to(at::kDouble), wd = w.to(at::kDouble) + (unit ? 1.0 : 0.0);
                const auto want = xd * at::rsqrt(xd.square().mean(-1, true) + 1e-5) * wd;
                at::Tensor first;
                for (int threads : {1, 2, 3}) {
                    at::set_num_threads(threads);
                    // bf16 weights are taken as they are stored (Gemma keeps its norms in bf16).
                    const auto got = model::fusedRmsNorm(x, w, 1e-5, unit);
                    QCOMPARE(got.sizes().vec(), x.sizes().vec());
                    QVERIFY2(maxRelDiff(got, want) < 1e-6,
                             qPrintable(QString("d %1 unit %2: %3").arg(d).arg(unit).arg(maxRelDiff(got, want))));
                    if (!first.defined())
                        first = got;
                    else
                        QVERIFY2(at::equal(first, got), "RMSNorm differs between thread counts");
                }
            }
            const auto wb = w.to(at::kBFloat16);
            const auto wantB = x.to(at::kDouble) * at::rsqrt(x.to(at::kDouble).square().mean(-1, true) + 1e-6) *
                               wb.to(at::kDouble);
            QVERIFY(maxRelDiff(model::fusedRmsNorm(x, wb, 1e-6, false), wantB) < 1e-6);
        }
        // A view with a row stride (q/k of a fused projection) is normalised like its contiguous copy.
        const auto wide = randn({4, 5, 96}, 52);
        const auto narrowView = wide.narrow(2, 16, 64);
        QVERIFY(at::equal(model::fusedRmsNorm(narrowView, randn({64}, 53), 1e-5, false),
                          model::fusedRmsNorm(narrowView.contiguous(), randn({64}, 53), 1e-5, false)));

        for (const int64_t hd : {8, 16, 24, 64, 128}) {
            const int64_t B = 2, T = 9, H = 3;
            const auto raw = randn({B, T, H + 1, hd}, 60);
            const auto x = raw.narrow(2, 1, H); // strided heads, as a slice of a wider projection
            const auto ang = at::arange(T, at::kDouble).unsqueeze(1) * (randn({1, hd}, 61).to(at::kDouble) * 0.3);
            const auto cos = ang.cos().to(at::kFloat), sin = ang.sin().to(at::kFloat);
            const model::RopeTable::Angles a{cos, sin};
            const auto want = model::RopeTable::apply(x.to(at::kDouble).transpose(1, 2),
                                                      {cos.to(at::kDouble), sin.to(at::kDouble)});
            at::Tensor first;
            for (int threads : {1, 2, 3}) {
                at::set_num_threads(threads);
                const auto got = model::fusedRope(x, cos, sin);
                QVERIFY(got.is_contiguous());
                QCOMPARE(got.sizes().vec(), x.sizes().vec());
                QVERIFY2(maxRelDiff(got.transpose(1, 2), want) < 1e-6,
                         qPrintable(QString("hd %1: %2").arg(hd).arg(maxRelDiff(got.transpose(1, 2), want))));
                // And the float32 libtorch formulation the model used before, within rounding.
                QVERIFY(maxRelDiff(got.transpose(1, 2), model::RopeTable::apply(x.transpose(1, 2), a)) < 1e-6);
                if (!first.defined())
                    first = got;
                else
                    QVERIFY2(at::equal(first, got), "RoPE differs between thread counts");
            }
        }

        for (const int64_t n : {5, 8, 37, 70000}) {
            const auto g0 = randn({n}, 70) * 6.0, u = randn({n}, 71);
            const auto gd = g0.to(at::kDouble);
            const auto want = gd * at::sigmoid(gd) * u.to(at::kDouble);
            at::Tensor first;
            for (int threads : {1, 2, 3}) {
                at::set_num_threads(threads);
                auto g = g0.clone();
                model::siluMulInPlace(g, u);
                QVERIFY2(maxRelDiff(g, want) < 2e-6, qPrintable(QString("n %1: %2").arg(n).arg(maxRelDiff(g, want))));
                if (!first.defined())
                    first = g;
                else
                    QVERIFY2(at::equal(first, g), "SiLU differs between thread counts");
            }
        }
        // An element's value does not depend on its offset (vector steps and the tail agree), which keeps a KV-cache
        // step's logits equal to the full pass's.
        {
            const auto g0 = randn({37}, 72) * 4.0, u = randn({37}, 73);
            auto whole = g0.clone(), shifted = g0.narrow(0, 3, 34).clone();
            model::siluMulInPlace(whole, u);
            model::siluMulInPlace(shifted, u.narrow(0, 3, 34));
            QVERIFY(at::equal(whole.narrow(0, 3, 34), shifted));
        }
        // Saturation: silu(-100) is -0 (no NaN from exp's clamp), silu(100) is 100.
        auto ends = at::tensor({-100.0f, 100.0f, 0.0f, -88.5f}), ones = at::ones({4});
        model::siluMulInPlace(ends, ones);
        QVERIFY(std::abs(ends[0].item<float>()) < 1e-30f);
        QCOMPARE(ends[1].item<float>(), 100.0f);
        QCOMPARE(ends[2].item<float>(), 0.0f);
        QVERIFY(std::isfinite(ends[3].item<float>()) && std::abs(ends[3].item<float>()) < 1e-30f);
        at::set_num_threads(1);

        // Applicability: not under autograd, not for bf16 or other devices' tensors.
        const auto t = randn({2, 8}, 80), wg = randn({8}, 81).requires_grad_(true);
        QVERIFY(model::fusedElementwiseApplies(t));
        QVERIFY(!model::fusedElementwiseApplies(t, wg));
        QVERIFY(!model::fusedElementwiseApplies(t.clone().requires_grad_(true)));
        {
            const at::NoGradGuard noGrad;
            QVERIFY(model::fusedElementwiseApplies(t, wg));
        }
        QVERIFY(!model::fusedElementwiseApplies(t.to(at::kBFloat16)));
        model::setFusedElementwiseEnabled(false);
        QVERIFY(!model::fusedElementwiseApplies(t));
        model::setFusedElementwiseEnabled(true);
        VERIFY_THROWS(ConfigError, model::fusedRmsNorm(t, randn({7}, 82), 1e-5, false), "last dimension must match");
        VERIFY_THROWS(ConfigError, model::fusedRope(randn({1, 3, 2, 8}, 83), randn({4, 8}, 84), randn({4, 8}, 85)),
                      "cos, sin [T, head_dim]");
        auto g = randn({4, 8}, 86);
        VERIFY_THROWS(ConfigError, model::siluMulInPlace(g, randn({4, 9}, 87)), "up of its shape");
        auto gt = randn({8, 4}, 88).t();
        VERIFY_THROWS(ConfigError, model::siluMulInPlace(gt, randn({4, 8}, 89)), "gate must be contiguous");
        VERIFY_THROWS(ConfigError, model::fusedRmsNorm(t.to(at::kBFloat16), randn({8}, 90), 1e-5, false),
                      "fp32 CPU tensor");
    }

    // stories260K's logits with the fused attention, RMSNorm, RoPE and SiLU equal those of libtorch's ops.
    void fusedAttentionModelMatchesUnfused()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        model::setComputeDtypeOverride(std::nullopt);
        const auto m = model::loadModel(modelPath, {});
        c10::InferenceMode guard;
        auto gen = at::detail::createCPUGenerator(3);
        const auto tokens = at::randint(0, 512, {3, 200}, gen, at::TensorOptions().dtype(at::kLong));
        model::setFusedAttentionEnabled(false);
        model::setFusedElementwiseEnabled(false);
        const auto want = m->forward(tokens);
        // With a KV cache, in two steps.
        auto cacheWant = m->makeCache(3, 200);
        (void)m->forward(tokens.narrow(1, 0, 150), &cacheWant);
        const auto stepWant = m->forward(tokens.narrow(1, 150, 50), &cacheWant);
        model::setFusedAttentionEnabled(true);
        model::setFusedElementwiseEnabled(true);
        const auto got = m->forward(tokens);
        auto cache = m->makeCache(3, 200);
        (void)m->forward(tokens.narrow(1, 0, 150), &cache);
        const auto step = m->forward(tokens.narrow(1, 150, 50), &cache);
        QVERIFY2(maxRelDiff(got, want) < 1e-5, qPrintable(QString::number(maxRelDiff(got, want))));
        QVERIFY2(maxRelDiff(step, stepWant) < 1e-5, qPrintable(QString::number(maxRelDiff(step, stepWant))));
        QVERIFY2(maxRelDiff(step, want.narrow(1, 150, 50)) < 1e-5, "the cached step differs from the full pass");
    }

    void bf16StoredModelScoresLikeFp32()
    {
        QPRUNER_SHARED_FILE(modelPath, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(textPath, "text/tinystories/tinystories_valid_subset.txt");
        model::setComputeDtypeOverride(std::nullopt);
        const auto tok = loadTokenizer(tokPath);
        std::ifstream in(textPath);
        std::string text((std::istreambuf_iterator<char>(in)), {});
        const auto stream = tok->encode(text.substr(0, 60000));
        eval::PerplexityOptions o;
        o.seqLen = 256;
        o.maxWindows = 16;
        // The fp32 reference is the bf16 weights themselves, held in fp32: only the compute path differs.
        model::LoadOptions lo;
        lo.dtype = at::kBFloat16;
        const auto bf16 = model::loadModel(modelPath, lo);
        auto fp32 = model::loadModel(modelPath, lo);
        fp32->to(at::kFloat, at::Device(at::kCPU));
        QCOMPARE(bf16->weightDtype(), at::kBFloat16);
        QCOMPARE(bf16->computeDtype(), model::computeDtypeFor(at::kBFloat16, at::Device(at::kCPU)));
        const double a = eval::evaluatePerplexity(*bf16, stream, o).ppl;
        const double b = eval::evaluatePerplexity(*fp32, stream, o).ppl;
        const double tol = bf16->computeDtype() == at::kFloat ? 1e-6 : 1e-2; // fp32 compute: the same numbers
        QVERIFY2(std::abs(a - b) <= tol * b, qPrintable(QString("bf16 %1 vs fp32 %2").arg(a).arg(b)));
        // And against the original fp32 checkpoint: bf16 rounding of the weights alone, within 1e-3.
        const auto orig = model::loadModel(modelPath);
        const double c = eval::evaluatePerplexity(*orig, stream, o).ppl;
        QVERIFY2(std::abs(a - c) <= 1e-3 * c, qPrintable(QString("bf16 %1 vs fp32 checkpoint %2").arg(a).arg(c)));
        // A quantized map's bf16 embedding no longer drags the activations to bf16 on a CPU without native bf16.
        auto q = model::loadModel(modelPath);
        quant::quantizeModel(*q, PrecisionMap(parseQuantSpec("int8")));
        QCOMPARE(q->computeDtype(), model::computeDtypeFor(at::kBFloat16, at::Device(at::kCPU)));
    }
};

QTEST_APPLESS_MAIN(TestCompute)
#include "test_compute.moc"
