// qpruner allocate MODEL --scores FILE --budget B --out MAP: importance-aware precision map under a memory budget
// (allocation.h): greedy, probabilistic (sampled, seeds the Bayesian search), uniform or random. Reads only the
// checkpoint's configuration; writes nothing unless everything succeeded.
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli_context.h"
#include "commands.h"
#include "io/atomic_output.h"
#include "qpruner/allocation.h"
#include "qpruner/error.h"
#include "qpruner/importance_scores.h"

namespace qpruner::cli {

namespace {

// "B:E" (END exclusive) or "1,3,4"; empty = all layers.
std::vector<int> parseLayers(const ArgParser& p)
{
    const auto v = p.find("layers");
    if (!v)
        return {};
    const std::string error =
        "--layers expects BEGIN:END (END exclusive) or a list of layer indices like 1,3,4, got '" + *v + "'";
    std::vector<int> out;
    if (v->find(':') != std::string::npos) {
        const auto [b, e] = parseLayerSpan(*v, error);
        if (e <= b)
            throw UsageError("--layers " + *v + " is empty (END is exclusive and must exceed BEGIN)");
        for (int l = b; l < e; ++l)
            out.push_back(l);
        return out;
    }
    for (const std::string& item : splitList(*v))
        out.push_back(parseLayerIndex(item, error));
    if (out.empty())
        throw UsageError("--layers is empty");
    return out;
}

void checkOutputDir(const std::filesystem::path& file, const std::string& option)
{
    const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    if (!std::filesystem::is_directory(dir))
        throw FileError("--" + option + " " + file.string() + ": directory " + dir.string() + " does not exist");
    if (std::filesystem::is_directory(file))
        throw FileError("--" + option + " " + file.string() + " is a directory");
}

} // namespace

int runAllocate(const Args& args)
{
    ArgParser p("allocate",
                "An initial precision map from layer importance under a memory budget: one format per searched\n"
                "decoder layer, chosen from the candidates; everything else keeps the base map's format. Bytes\n"
                "come from the exact memory model. Methods: greedy (best objective gain per byte until the budget\n"
                "is used), probabilistic (softmax over formats around each layer's importance, shifted so the\n"
                "expected memory equals the budget; K seeded samples, repaired or rejected; best = most probable\n"
                "feasible map), uniform (one format everywhere, the baseline), random (K uniform draws, the fullest\n"
                "feasible one). Budgets: bytes (350MiB, 2GB, 123456), bits per linear weight (4.5bpw) or a fraction\n"
                "of the model in bf16 (0.4x, 40%). Reads only the checkpoint's configuration.");
    p.positional("MODEL", "checkpoint file or directory (only its configuration is read)");
    p.option("scores", "FILE", "importance scores JSON (qpruner importance)");
    p.option("metric", "NAME", "metric of the scores file to use (default: its only metric)");
    p.option("budget", "B", "memory budget: bytes (350MiB), bits per weight (4.5bpw) or fraction (0.4x, 40%)");
    p.option("method", "M", "greedy, probabilistic, uniform, random or ap-ratio (precision rising linearly with depth)",
             "greedy");
    p.option("ap-slope", "S", "ap-ratio: candidate positions gained from the first layer to the last", "1");
    p.option("candidates", "LIST", "formats a searched layer may take", "nf4,int8,bf16");
    p.option("layers", "SPEC", "searched layers: BEGIN:END (END exclusive) or a list 1,3,4 (default: all)");
    p.option("base-map", "FILE", "precision map for everything not searched (default: all bf16)");
    p.option("base-format", "F", "shorthand for a base map with every linear in F");
    p.option("samples", "K", "maps to sample (probabilistic, random)", "16");
    p.option("temperature", "T", "softmax temperature (probabilistic)", "0.1");
    p.option("repair-slack", "F", "repair samples over budget by at most this fraction of it (probabilistic)", "0.1");
    p.option("epsilon", "E", "added to every importance in the objective", "0.001");
    p.option("seed", "N", "random seed (probabilistic, random)", "0");
    p.option("uniform-format", "F", "the format of the uniform method", "nf4");
    p.option("out", "FILE", "where to write the best precision map (JSON)");
    p.option("samples-out", "FILE", "also write the feasible samples as a JSON array of maps (probabilistic, random)");
    p.flag("json", "print the allocation result as one JSON object");
    p.example("qpruner allocate ../shared/data/models/stories260K/stories260K.bin --scores scores.json --metric mi "
              "--budget 6bpw --method probabilistic --samples 32 --out map.json --samples-out samples.json");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "allocate", [&](StageSink& sink) -> nlohmann::json {

        const std::filesystem::path out = p.get("out");
        const std::filesystem::path scoresPath = p.get("scores");
        AllocationProblem problem;
        problem.budget = parseBudget(p.get("budget"));
        AllocationOptions options;
        options.method = parseAllocationMethod(p.get("method"));
        options.samples = p.getInt("samples");
        options.temperature = p.getDouble("temperature");
        options.repairSlack = p.getDouble("repair-slack");
        options.epsilon = p.getDouble("epsilon");
        options.apSlope = p.getDouble("ap-slope");
        const int64_t seed = p.getInt64("seed");
        if (seed < 0)
            throw UsageError("--seed must be >= 0, got " + std::to_string(seed));
        options.seed = static_cast<uint64_t>(seed);
        options.uniformFormat = parseQuantSpec(p.get("uniform-format"));
        const auto candidates = splitList(p.get("candidates"));
        if (candidates.empty())
            throw UsageError("--candidates is empty (give formats like nf4,int8,bf16)");
        for (const std::string& c : candidates)
            problem.candidates.push_back(parseQuantSpec(c));
        problem.layers = parseLayers(p);
        const auto samplesOut = p.find("samples-out");
        const bool sampled =
            options.method == AllocationMethod::Probabilistic || options.method == AllocationMethod::Random;
        if (samplesOut && !sampled)
            throw UsageError("--samples-out needs --method probabilistic or random (" +
                             allocationMethodName(options.method) + " draws no samples)");
        if (samplesOut && std::filesystem::path(*samplesOut).lexically_normal() == out.lexically_normal())
            throw UsageError("--samples-out and --out name the same file");
        if (p.find("base-map") && p.find("base-format"))
            throw UsageError("give --base-map or --base-format, not both");

        const ModelSummary summary = inspectModel(p.get("MODEL"));
        problem.config = summary.config;
        if (const auto m = p.find("base-map"))
            problem.base = PrecisionMap::load(*m);
        else if (const auto f = p.find("base-format"))
            problem.base = PrecisionMap(parseQuantSpec(*f));

        const ImportanceScores scores = ImportanceScores::load(scoresPath);
        std::string metric;
        if (const auto m = p.find("metric"))
            metric = *m;
        else if (scores.metrics.size() == 1)
            metric = scores.metrics.begin()->first;
        else
            throw UsageError("the scores file has several metrics (" + scores.metricList() +
                             "); choose one with --metric");
        const MetricScores& ms = scores.metric(metric);
        if (scores.numLayers != problem.config.numLayers())
            throw ConfigError("the scores in " + scoresPath.string() + " have " + std::to_string(scores.numLayers) +
                              " layers, the model has " + std::to_string(problem.config.numLayers()));
        problem.importance = ms.normalized;

        const AllocationResult r = allocate(problem, options);

        // Everything computed; now the files (directories checked first so that a bad path writes nothing).
        checkOutputDir(out, "out");
        sink.artifact("precision-map", out);
        if (samplesOut)
            sink.artifact("precision-map-samples", *samplesOut);
        if (samplesOut)
            checkOutputDir(*samplesOut, "samples-out");
        if (samplesOut) {
            nlohmann::ordered_json maps = nlohmann::ordered_json::array();
            for (const Allocation& a : r.samples)
                maps.push_back(a.map.toJson());
            const bool existed = std::filesystem::exists(*samplesOut);
            io::writeFileAtomic(*samplesOut, maps.dump(2) + "\n");
            try {
                r.best.map.save(out);
            } catch (...) {
                if (!existed) {
                    std::error_code ec;
                    std::filesystem::remove(*samplesOut, ec);
                }
                throw;
            }
        } else {
            r.best.map.save(out);
        }

        if (p.isSet("json")) {
            std::printf("%s\n", r.toJson().dump(2).c_str());
            return r.toJson();
        }
        const bool bpw = problem.budget.unit == BudgetUnit::BitsPerWeight;
        const char* quantity = bpw ? "linear bytes" : "total bytes";
        std::printf("model %s: %d layers; importance '%s' from %s\n", p.get("MODEL").c_str(),
                    problem.config.numLayers(),
                    metric.c_str(), scoresPath.string().c_str());
        std::printf("method %s, budget %s = %s %s (feasible %s .. %s)\n", allocationMethodName(r.method).c_str(),
                    r.budget.text().c_str(), withThousands(r.budgetBytes).c_str(), quantity,
                    withThousands(r.minFeasibleBytes).c_str(), withThousands(r.maxBytes).c_str());
        const std::set<int> searched(r.layers.begin(), r.layers.end());
        std::printf("layer  importance  format\n");
        for (int l = 0; l < problem.config.numLayers(); ++l)
            std::printf("%5d  %10.4f  %s%s\n", l, problem.importance[static_cast<size_t>(l)],
                        r.best.layerSpecs[static_cast<size_t>(l)].name().c_str(),
                        searched.count(l) ? "" : "  (not searched)");
        std::printf("best: %s %s of %s (%.2f%%), %.4f bits per linear weight, total %s bytes (%s), objective %.4f\n",
                    withThousands(r.best.budgetedBytes).c_str(), quantity, withThousands(r.budgetBytes).c_str(),
                    100.0 * double(r.best.budgetedBytes) / double(r.budgetBytes), r.best.linearBitsPerWeight,
                    withThousands(r.best.totalBytes).c_str(), humanBytes(r.best.totalBytes).c_str(), r.best.objective);
        if (r.method == AllocationMethod::Probabilistic) {
            int repaired = 0;
            for (const Allocation& a : r.samples)
                repaired += a.repaired;
            const std::string bestWhat = r.best.draw < 0 ? "the mode" : "draw " + std::to_string(r.best.draw);
            std::printf("shift %+.4f, expected %s %s; mode %s%s; %d samples: %zu feasible (%d repaired), %d rejected;"
                        " best: %s (log P %.3f)\n",
                        r.shift, withThousands(static_cast<int64_t>(r.expectedBytes)).c_str(), quantity,
                        r.mode.repaired ? "repaired to " : "", withThousands(r.mode.budgetedBytes).c_str(),
                        options.samples, r.samples.size(), repaired, r.rejected,
                        bestWhat.c_str(),
                        r.best.logProbability);
        } else if (r.method == AllocationMethod::Random) {
            std::printf("%d samples: %zu feasible, %d rejected; best: draw %d\n", options.samples, r.samples.size(),
                        r.rejected, r.best.draw);
        }
        std::printf("wrote %s", out.string().c_str());
        if (samplesOut)
            std::printf(" and %s (%zu maps)", samplesOut->c_str(), r.samples.size());
        std::printf("\n");
        return r.toJson();
    });
    return 0;
}

} // namespace qpruner::cli
