// One linear layer's forward at the shapes of real models, per weight storage: dense fp32 through at::linear
// (OpenBLAS) and through DenseLinear, bf16 and fp16 storage computed in fp32, and the quantized formats
// (QuantLinear), all as the layers pick their kernel (preferPackedGemm); "-packed": the packed GEMM at any row
// count. Also the blocking alone (an fp32 weight copied block by block) and the dequantization alone, in
// G weights/s. Variants run round-robin; JSON lines, medians of --reps.
//   bench_linear [--tokens 256,1024] [--shapes 2048x2048,5632x2048,2048x5632] [--reps 7] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "bench_args.h"
#include "model/blocked_linear.h"
#include "model/cpu_features.h"
#include "model/dtype.h"
#include "model/linear.h"
#include "model/packed_gemm.h"
#include "quant/cpu_dequant.h"
#include "quant/quant_linear.h"
#include "quant/quantized_tensor.h"

using namespace qpruner;

namespace {

std::vector<int64_t> intList(const std::string& s)
{
    std::vector<int64_t> v;
    for (const auto& item : bench::split(s))
        v.push_back(std::stoll(item));
    return v;
}

double medianSeconds(int reps, const std::function<void()>& f) { return bench::timeRuns(reps, f)[size_t(reps) / 2]; }

} // namespace

int main(int argc, char** argv)
{
    const auto get = [&](const char* name, const char* def) { return bench::arg(argc, argv, name, def); };
    const auto tokens = intList(get("tokens", "256,1024"));
    const std::string shapes = get("shapes", "2048x2048,5632x2048,2048x5632");
    const int reps = std::stoi(get("reps", "7"));
    model::setIntraOpThreads(std::stoi(get("threads", "0")));
    std::printf("{\"bench\": \"linear_env\", \"threads\": %d, \"cpu\": \"%s\", \"dequant_kernel\": \"%s\"}\n",
                at::get_num_threads(), model::hostCpuFeatures().describe().c_str(), quant::cpuDequantKernel());
    c10::InferenceMode guard;
    for (const std::string& shape : bench::split(shapes)) {
        const int64_t out = std::stoll(shape.substr(0, shape.find('x')));
        const int64_t in = std::stoll(shape.substr(shape.find('x') + 1));
        auto gen = at::detail::createCPUGenerator(1);
        const auto w = at::randn({out, in}, gen, at::kFloat) * 0.02;
        // Dequantization alone: a whole weight into one buffer.
        for (const char* name : {"int8", "nf4", "int4", "int3", "int2"}) {
            const auto q = quant::quantize(w, parseQuantSpec(name));
            auto buf = at::empty({out, in}, at::kFloat);
            const double s = medianSeconds(reps, [&] { quant::dequantizeRowsCpu(q, 0, out, buf.data_ptr<float>()); });
            std::printf("{\"bench\": \"dequant\", \"shape\": \"%s\", \"format\": \"%s\", \"gweights_per_s\": %.3f}\n",
                        shape.c_str(), name, double(out * in) / s / 1e9);
        }
        for (int64_t n : tokens) {
            const auto x = at::randn({n, in}, gen, at::kFloat);
            // Variants run round-robin, one call each per round, so the machine's noise hits them alike.
            std::vector<std::pair<std::string, std::function<void()>>> variants;
            variants.emplace_back("fp32-at-linear", [&] { (void)at::linear(x, w); });
            const auto dense = std::make_shared<model::DenseLinear>(w);
            variants.emplace_back("fp32", [&] { (void)dense->forward(x); });
            if (model::packedGemmAvailable()) { // the packed GEMM on the dense weight, read in place, at any row count
                auto y = at::empty({n, out}, at::kFloat);
                variants.emplace_back("fp32-packed", [&, y]() mutable {
                    model::packedGemm(x.data_ptr<float>(), n, in, out, w.data_ptr<float>(), y.data_ptr<float>());
                });
            }
            for (int64_t kib : intList(get("block-kib", "1024"))) {
                variants.emplace_back("fp32-blocked-" + std::to_string(kib) + "KiB", [&, kib] {
                    (void)model::blockedLinear(x, out, in, [&](int64_t r0, int64_t r1, at::Tensor& dst) {
                        dst.copy_(w.narrow(0, r0, r1 - r0));
                    }, std::nullopt, kib * 1024, model::LinearKernel::Blas);
                });
            }
            std::vector<std::shared_ptr<model::Linear>> layers;
            for (const auto dt : {at::kBFloat16, at::kHalf}) {
                layers.push_back(std::make_shared<model::DenseLinear>(w.to(dt)));
                variants.emplace_back(dt == at::kBFloat16 ? "bf16-storage" : "fp16-storage",
                                      [&, l = layers.back()] { (void)l->forward(x); });
            }
            for (const char* name : {"int8", "nf4", "int4", "int3", "int2"}) {
                auto layer = std::make_shared<quant::QuantLinear>(quant::quantize(w, parseQuantSpec(name)));
                layers.push_back(layer);
                variants.emplace_back(name, [&, l = layers.back()] { (void)l->forward(x); });
                // The same weight through the packed GEMM whatever the row count (Auto picks it for few rows only).
                variants.emplace_back(std::string(name) + "-packed", [&, layer] {
                    (void)model::blockedLinear(x, out, in, [&](int64_t r0, int64_t r1, at::Tensor& dst) {
                        quant::dequantizeRowsInto(layer->quantized(), r0, r1, dst);
                    }, std::nullopt, model::kLinearBlockBytes, model::LinearKernel::Packed);
                });
            }
            std::vector<std::vector<double>> times(variants.size());
            for (int r = -1; r < reps; ++r) // round -1 warms up
                for (size_t v = 0; v < variants.size(); ++v) {
                    const auto t0 = std::chrono::steady_clock::now();
                    variants[v].second();
                    if (r >= 0)
                        times[v].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
                }
            for (size_t v = 0; v < variants.size(); ++v) {
                auto& t = times[v];
                std::sort(t.begin(), t.end());
                const double s = t[t.size() / 2];
                std::printf("{\"bench\": \"linear\", \"shape\": \"%s\", \"tokens\": %lld, \"variant\": \"%s\", "
                            "\"ms\": %.3f, \"gflops\": %.2f}\n",
                            shape.c_str(), static_cast<long long>(n), variants[v].first.c_str(), s * 1e3,
                            2.0 * double(n) * double(out) * double(in) / s / 1e9);
            }
            std::fflush(stdout);
        }
    }
    return 0;
}
