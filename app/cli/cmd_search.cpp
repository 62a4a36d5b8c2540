// qpruner search MODEL --db study.db --budget B --trials N [--strategy S]: search of precision maps (importance ->
// allocate -> search), every trial in the store; qpruner run CONFIG.json --db study.db: the whole pipeline from a
// config file. Both resume with --resume RUN.
#include <cstdio>
#include <filesystem>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "io/json_file.h"
#include "qpruner/pipeline.h"

namespace qpruner::cli {

namespace {

void addRunOptions(ArgParser& p)
{
    p.option("db", "FILE", "experiment store (SQLite; created when absent)");
    p.option("resume", "RUN",
             "continue run RUN of --db from its stored config (also: add workers to a running search)");
    p.option("workers", "N", "search workers in this process (overrides the config)");
    p.option("threads", "N", "intra-op threads per process (default: all cores)", "0");
    p.option("compute-dtype", "DTYPE",
             "dtype the run's matmuls use: auto (bf16 only where the CPU has native bf16), float32 or bfloat16; "
             "sets the config's compute_dtype (a resumed run keeps its own)");
    p.flag("json", "print the run's stage results as one JSON object");
}

int execute(const ArgParser& p, const std::string& kind, const std::function<nlohmann::json()>& makeConfig)
{
    store::Store st(p.get("db"));
    pipeline::RunOptions ro;
    ro.kind = kind;
    ro.workers = p.find("workers") ? p.getInt("workers") : 0;
    ro.threads = p.getInt("threads");
    const bool json = p.isSet("json");
    ProgressLine line;
    const CancelToken& cancel = signalCancelToken();
    const auto computeDtype = p.find("compute-dtype");
    if (computeDtype && p.find("resume"))
        throw UsageError("--compute-dtype: a resumed run keeps the compute dtype it started with (its config's "
                         "compute_dtype)");
    auto newConfig = [&] {
        nlohmann::json c = makeConfig();
        if (computeDtype)
            c["compute_dtype"] = pipeline::computeDtypeSetting(*computeDtype);
        return c;
    };
    const pipeline::RunOutcome out = p.find("resume")
                                         ? pipeline::resumeRun(st, p.getInt64("resume"), ro, line.sink(), &cancel)
                                         : pipeline::startRun(st, newConfig(), ro, line.sink(), &cancel);
    line.finish();
    if (json) {
        printJson({{"run", out.runId}, {"db", p.get("db")}, {"stages", out.result}});
        return 0;
    }
    std::printf("run %lld done in %s\n", static_cast<long long>(out.runId), p.get("db").c_str());
    if (out.result.contains("search")) {
        const auto& s = out.result["search"];
        std::printf("search: %d complete, %d failed trials; budget %s\n", s["trials_complete"].get<int>(),
                    s["trials_failed"].get<int>(), s["budget"].get<std::string>().c_str());
        if (s["exhausted"].get<bool>())
            std::printf("search: every feasible map was tried before the trial count was reached\n");
        if (!s["chosen"].is_null())
            std::printf("chosen: trial %d, objective %.6g, %s\n", s["chosen"]["trial"].get<int>(),
                        s["chosen"]["objective"].get<double>(),
                        humanBytes(s["chosen"]["memory_bytes"].get<int64_t>()).c_str());
    }
    if (out.result.contains("evaluate"))
        for (const auto& e : out.result["evaluate"]["ppl"])
            std::printf("evaluate: ppl %.4f on %s (%lld windows)\n", e["ppl"].get<double>(),
                        e["source"].get<std::string>().c_str(), static_cast<long long>(e["windows"].get<int64_t>()));
    std::printf("see: qpruner pareto --db %s --run %lld\n", p.get("db").c_str(), static_cast<long long>(out.runId));
    return 0;
}

} // namespace

int runSearch(const Args& args)
{
    ArgParser p("search",
                "Search of a precision map under a memory budget: layer importance, the importance-aware initial map\n"
                "and its samples, then the strategy (default bayes: GP + ParEGO expected improvement over\n"
                "budget-feasible maps; or random, evopress, nsga2, lagrangian, ap-ratio; --token-budget caps the cost).\n"
                "Every trial is stored in --db; --resume RUN continues a killed search (or adds workers to it).");
    p.positional("MODEL", "checkpoint file or directory (dense; e.g. a pruned model)", false);
    p.option("tokenizer", "PATH", "tokenizer (default: found beside the model)");
    p.option("dtype", "DTYPE", "dtype to load the model in", "fp32");
    addRunOptions(p);
    p.option("experiment", "NAME", "experiment the run belongs to", "default");
    p.option("name", "TEXT", "a name for the run");
    p.option("budget", "B", "memory budget: bytes (350KiB), bits per weight (4.5bpw) or a fraction of bf16 (0.4x)",
             "4.5bpw");
    p.option("trials", "N", "trials to run (running + complete)", "40");
    p.option("objective", "O", "ppl | kl (to the unquantized model) | accuracy (needs --task)", "ppl");
    p.option("val", "SOURCE", "validation text: tinystories, wikitext2, ptb or a file", "tinystories");
    p.option("val-windows", "N", "validation windows", "16");
    p.option("val-seq-len", "N", "validation window length", "256");
    p.option("val-skip", "N", "skip this many windows first (keep the search off the evaluation slice)", "0");
    p.option("task", "NAME", "task for --objective accuracy");
    p.option("task-limit", "N", "task items for --objective accuracy", "64");
    p.option("scores", "FILE", "importance scores (qpruner importance --out); default: computed here");
    p.option("metric", "M", "importance metric that ranks layers", "quant-kl");
    p.option("calib", "SOURCE", "calibration data for the importance", "tinystories");
    p.option("calib-samples", "N", "calibration windows", "32");
    p.option("calib-seq-len", "N", "calibration window length", "128");
    p.option("method", "M", "allocation of the initial map: greedy | probabilistic | ap-ratio", "probabilistic");
    p.option("candidates", "LIST", "candidate formats", "nf4,int8,bf16");
    p.option("layers", "LIST", "searched layers (default: all)");
    p.option("base-format", "F", "format of everything not searched", "bf16");
    p.option("initial-samples", "N", "allocator samples in the initial design", "4");
    p.flag("no-uniform", "leave the uniform maps out of the initial design");
    p.flag("no-par-ego", "EI of the objective alone (memory only as the constraint)");
    p.option("granularity", "G",
             "search unit: layer | group (a layer's attention and MLP linears apart) | module (each linear)", "layer");
    p.option("strategy", "S",
             "bayes | random (random feasible maps) | evopress ((1+lambda) evolution, multi-step selection) | nsga2 "
             "(multi-objective evolution, GP pre-filter) | lagrangian (per-unit error table + exact knapsack) | "
             "ap-ratio (linear depth schedules)",
             "bayes");
    p.option("token-budget", "N", "stop when the trials have scored this many validation tokens (0: no limit)", "0");
    p.option("fidelities", "LIST", "bayes multi-fidelity: fractions of the validation windows, ascending, ending at 1",
             "1");
    p.option("evopress-offspring", "N", "evopress: offspring per generation (lambda)", "16");
    p.option("evopress-fidelities", "LIST", "evopress: selection stages' fractions of the validation windows",
             "0.125,0.5,1");
    p.option("evopress-survivors", "LIST", "evopress: offspring kept after each stage but the last", "4,1");
    p.option("nsga2-population", "N", "nsga2: population and offspring per generation", "16");
    p.option("nsga2-prefilter", "N", "nsga2: candidates bred per offspring kept by the surrogate (1: none)", "4");
    p.option("ap-slopes", "LIST", "ap-ratio: slopes of the depth schedules, in candidate positions", "0,0.25,0.5,0.75,1,1.5,2,3");
    p.flag("no-initial-knapsack",
           "bayes: do not lead the initial design with the knapsack's answers from a per-unit error table (by "
           "default measured on --error-fidelity of the windows and charged to --token-budget)");
    p.flag("initial-knapsack", "other strategies: lead the initial design with the knapsack's answers");
    p.option("error-fidelity", "F",
             "fraction of the validation windows the per-unit error table (lagrangian, knapsack seeds) is measured on",
             "0.25");
    p.option("variant-cache", "WHERE",
             "where quantized variants live between trials: memory, disk (mapped files in the run's workdir; "
             "only the current map's weights resident) or auto (disk when all variants would take over 1/4 of RAM)",
             "auto");
    p.option("seed", "N", "seed of everything random", "0");
    p.example("qpruner search ../shared/data/models/stories260K/stories260K.bin --db study.db --budget 5bpw "
              "--trials 24");
    if (!p.parse(args))
        return 0;
    return execute(p, "search", [&] {
        if (!p.find("MODEL"))
            throw UsageError("MODEL is required (or --resume RUN)");
        nlohmann::json layers = nlohmann::json::array();
        if (auto l = p.find("layers"))
            for (const auto& s : splitList(*l))
                layers.push_back(parseLayerIndex(s, "--layers: expected layer indices, got '" + s + "'"));
        const int64_t seed = p.getInt64("seed");
        // A comma-separated list of numbers (integers stay integers).
        auto numbers = [&](const char* key) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& s : splitList(p.get(key))) {
                try {
                    size_t used = 0;
                    if (s.find_first_of(".eE") == std::string::npos) {
                        const long long v = std::stoll(s, &used);
                        if (used == s.size()) {
                            out.push_back(v);
                            continue;
                        }
                    } else {
                        const double v = std::stod(s, &used);
                        if (used == s.size()) {
                            out.push_back(v);
                            continue;
                        }
                    }
                } catch (const std::exception&) {
                }
                throw UsageError(std::string("--") + key + ": expected numbers separated by commas, got '" + s + "'");
            }
            if (out.empty())
                throw UsageError(std::string("--") + key + ": expected at least one number");
            return out;
        };
        nlohmann::json config = {
            {"version", 1},
            {"experiment", p.get("experiment")},
            {"name", p.find("name").value_or("")},
            {"model", p.get("MODEL")},
            {"tokenizer", p.find("tokenizer").value_or("")},
            {"dtype", p.get("dtype")},
            {"seed", seed},
            {"prune", nullptr},
            {"importance",
             {{"metric", p.get("metric")},
              {"scores", p.find("scores").value_or("")},
              {"calibration",
               {{"source", p.get("calib")}, {"samples", p.getInt("calib-samples")},
                {"seq_len", p.getInt("calib-seq-len")}, {"seed", seed}}}}},
            {"allocate",
             {{"budget", p.get("budget")},
              {"method", p.get("method")},
              {"candidates", splitList(p.get("candidates"))},
              {"layers", layers},
              {"base_format", p.get("base-format")}}},
            {"search",
             {{"trials", p.getInt("trials")},
              {"objective", p.get("objective")},
              {"validation",
               {{"source", p.get("val")}, {"windows", p.getInt("val-windows")},
                {"seq_len", p.getInt("val-seq-len")}, {"skip", p.getInt("val-skip")}}},
              {"task", p.find("task").value_or("")},
              {"task_limit", p.getInt("task-limit")},
              {"initial_samples", p.getInt("initial-samples")},
              {"uniform", !p.isSet("no-uniform")},
              {"par_ego", !p.isSet("no-par-ego")},
              {"granularity", p.get("granularity")},
              {"strategy", p.get("strategy")},
              {"token_budget", p.getInt64("token-budget")},
              {"fidelities", numbers("fidelities")},
              {"evopress",
               {{"offspring", p.getInt("evopress-offspring")},
                {"fidelities", numbers("evopress-fidelities")},
                {"survivors", numbers("evopress-survivors")}}},
              {"nsga2", {{"population", p.getInt("nsga2-population")}, {"prefilter", p.getInt("nsga2-prefilter")}}},
              {"ap_slopes", numbers("ap-slopes")},
              {"error_fidelity", numbers("error-fidelity").at(0)},
              {"initial_knapsack",
               p.isSet("no-initial-knapsack") ? false
               : p.isSet("initial-knapsack")   ? true
                                               : p.get("strategy") == "bayes"},
              {"variant_cache", p.get("variant-cache")}}},
            {"evaluate", nullptr}};
        return pipeline::normalizeConfig(config, std::filesystem::current_path(), sharedDataDir());
    });
}

int runRun(const Args& args)
{
    ArgParser p("run",
                "Run the whole pipeline (prune -> importance -> allocate -> search -> evaluate) from a config file\n"
                "(README: Run configs), recording every stage, trial and artifact in --db.");
    p.positional("CONFIG", "run config JSON (e.g. resources/configs/stories260k-quick.json)", false);
    addRunOptions(p);
    p.example("qpruner run resources/configs/stories260k-quick.json --db study.db");
    if (!p.parse(args))
        return 0;
    return execute(p, "pipeline", [&] {
        if (!p.find("CONFIG"))
            throw UsageError("CONFIG is required (or --resume RUN)");
        const std::filesystem::path file = p.get("CONFIG");
        return pipeline::normalizeConfig(io::readJsonFile(file), std::filesystem::absolute(file).parent_path(),
                                         sharedDataDir());
    });
}

} // namespace qpruner::cli
