// Quantization throughput: GB/s of fp32 weight consumed by quantize() and produced by dequantize(), per format,
// at an L2-sized weight (512 x 512, 1 MiB of fp32) and a RAM-sized one (8192 x 8192, 256 MiB), in the style of
// ggml's test-quantize-perf; the plain-loop reference is timed at the L2 size for the speed-up of the tensor
// path. Per intra-op thread count (--threads, default 1 and one per core). One JSON object per line (bench
// "quant"), medians of --reps timed runs after a warm-up, then a Markdown table (lines that do not start with
// '{', which bench/ratio_table.py skips).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "model/dtype.h"
#include "qpruner/error.h"
#include "qpruner/quant_format.h"
#include "quant/quantized_tensor.h"
#include "quant/reference_quant.h"

using namespace qpruner;
using bench::arg;
using bench::split;
using bench::timeRuns;

namespace {

std::vector<double> gbps(double bytes, const std::vector<double>& seconds)
{
    std::vector<double> out;
    for (auto it = seconds.rbegin(); it != seconds.rend(); ++it)
        out.push_back(bytes / *it / 1e9);
    return out;
}

struct Size {
    std::string name;
    int64_t rows, cols;
};

} // namespace

int main(int argc, char** argv)
{
    const auto sizeNames = split(arg(argc, argv, "sizes", "l2,ram"));
    std::vector<std::string> formats = split(arg(argc, argv, "formats", ""));
    if (formats.empty())
        for (const auto& n : quantSpecNames())
            if (parseQuantSpec(n).isQuantized())
                formats.push_back(n);
    const int reps = std::stoi(arg(argc, argv, "reps", "5"));
    std::vector<int> threads;
    for (const auto& t : split(arg(argc, argv, "threads", "1,0")))
        threads.push_back(model::setIntraOpThreads(std::stoi(t))); // 0: one per core
    try {
        std::vector<Size> sizes;
        for (const auto& s : sizeNames) {
            if (s == "l2")
                sizes.push_back({s, 512, 512});
            else if (s == "ram")
                sizes.push_back({s, 8192, 8192});
            else
                throw ConfigError("--sizes: unknown size '" + s + "' (expected l2, ram)");
        }
        std::vector<nlohmann::json> rows;
        for (const auto& size : sizes) {
            at::manual_seed(1);
            const auto w = at::randn({size.rows, size.cols}) * 0.02;
            const double fp32Bytes = double(w.numel()) * 4;
            std::vector<float> wv;
            if (size.name == "l2")
                wv.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
            for (const auto& name : formats) {
                const auto spec = parseQuantSpec(name);
                nlohmann::json reference = nlohmann::json::object();
                if (!wv.empty()) { // the plain loops are single-threaded whatever the setting
                    quant::reference::PartBytes parts;
                    const int refReps = std::max(1, reps / 2);
                    const auto rq = timeRuns(
                        refReps, [&] { parts = quant::reference::quantize(wv, size.rows, size.cols, spec); });
                    const auto rdq = timeRuns(
                        refReps, [&] { quant::reference::dequantize(parts, size.rows, size.cols, spec); });
                    reference = {{"reference_quantize_gbps_median", gbps(fp32Bytes, rq)[rq.size() / 2]},
                                 {"reference_dequantize_gbps_median", gbps(fp32Bytes, rdq)[rdq.size() / 2]}};
                }
                for (int th : threads) {
                    model::setIntraOpThreads(th);
                    quant::QuantizedTensor q;
                    const auto gq = gbps(fp32Bytes, timeRuns(reps, [&] { q = quant::quantize(w, spec); }));
                    const auto gdq = gbps(fp32Bytes, timeRuns(reps, [&] { quant::dequantize(q); }));
                    nlohmann::json j = {{"bench", "quant"}, {"format", name}, {"size", size.name},
                                        {"rows", size.rows}, {"cols", size.cols}, {"fp32_bytes", int64_t(fp32Bytes)},
                                        {"stored_bytes", q.storageBytes()},
                                        {"bits_per_weight", double(q.storageBytes()) * 8 / double(w.numel())},
                                        {"threads", th}, {"reps", reps},
                                        {"quantize_gbps_median", gq[gq.size() / 2]}, {"quantize_gbps_all", gq},
                                        {"dequantize_gbps_median", gdq[gdq.size() / 2]}, {"dequantize_gbps_all", gdq}};
                    j.update(reference);
                    std::cout << j.dump() << std::endl;
                    rows.push_back(j);
                }
            }
        }
        std::printf("\nQuantize / dequantize throughput, GB/s of fp32 weight (median of %d; reference: plain loops, "
                    "1 thread)\n", reps);
        std::printf("| format | bits/weight | size | threads | quantize | dequantize | reference quantize | "
                    "reference dequantize |\n|---|---|---|---|---|---|---|---|\n");
        for (const auto& j : rows) {
            auto ref = [&](const char* key) {
                if (!j.contains(key))
                    return std::string("-");
                char buf[64];
                std::snprintf(buf, sizeof buf, "%.3f", j[key].get<double>());
                return std::string(buf);
            };
            std::printf("| %s | %.3f | %s | %d | %.3f | %.3f | %s | %s |\n", j["format"].get<std::string>().c_str(),
                        j["bits_per_weight"].get<double>(), j["size"].get<std::string>().c_str(),
                        j["threads"].get<int>(),
                        j["quantize_gbps_median"].get<double>(), j["dequantize_gbps_median"].get<double>(),
                        ref("reference_quantize_gbps_median").c_str(), ref("reference_dequantize_gbps_median").c_str());
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_quant: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
