#include "qpruner/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

#include "eval/multiple_choice.h"
#include "eval/perplexity.h"
#include "eval/task_data.h"
#include "finetune/recovery.h"
#include "finetune/train_step.h"
#include "importance/layer_importance.h"
#include "io/atomic_output.h"
#include "io/file_bytes.h"
#include "io/json_file.h"
#include "io/sha256.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "prune/calibration.h"
#include "prune/pruner.h"
#include "qpruner/allocation.h"
#include "qpruner/error.h"
#include "qpruner/importance_scores.h"
#include "qpruner/memory_model.h"
#include "qpruner/model_config.h"
#include "qpruner/pareto.h"
#include "quant/model_quantizer.h"
#include "search/bayes_search.h"
#include "search/trial_evaluator.h"
#include "pipeline_internal.h"

namespace qpruner::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Config checking: every key is read through a Node that knows its path, so errors name "search.trials" etc.

struct Node {
    json* node;
    std::string path;

    std::string at(const std::string& key) const { return path.empty() ? key : path + "." + key; }

    void allowOnly(std::initializer_list<const char*> keys) const
    {
        if (!node->is_object())
            throw ConfigError((path.empty() ? std::string("config") : path) + ": expected an object");
        for (auto it = node->begin(); it != node->end(); ++it)
            if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
                throw ConfigError(at(it.key()) + ": unknown key");
    }
    json& slot(const std::string& key, const json& def) const
    {
        if (!node->contains(key))
            (*node)[key] = def;
        return (*node)[key];
    }
    std::string str(const std::string& key, const std::string& def) const
    {
        json& v = slot(key, def);
        if (!v.is_string())
            throw ConfigError(at(key) + ": expected a string");
        return v.get<std::string>();
    }
    int64_t integer(const std::string& key, int64_t def, int64_t min) const
    {
        json& v = slot(key, def);
        if (!v.is_number_integer() || v.get<int64_t>() < min)
            throw ConfigError(at(key) + ": expected an integer >= " + std::to_string(min));
        return v.get<int64_t>();
    }
    double number(const std::string& key, double def, double min, bool strict) const
    {
        json& v = slot(key, def);
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < min ||
            (strict && v.get<double>() == min))
            throw ConfigError(at(key) + ": expected a number " + (strict ? "> " : ">= ") + std::to_string(min));
        return v.get<double>();
    }
    bool boolean(const std::string& key, bool def) const
    {
        json& v = slot(key, def);
        if (!v.is_boolean())
            throw ConfigError(at(key) + ": expected true or false");
        return v.get<bool>();
    }
    // A child object; `def` (an object or null) when absent. Returns false for null.
    bool child(const std::string& key, const json& def, Node* out) const
    {
        json& v = slot(key, def);
        if (v.is_null())
            return false;
        if (!v.is_object())
            throw ConfigError(at(key) + ": expected an object or null");
        *out = Node{&v, at(key)};
        return true;
    }
};

std::string resolvePath(const std::string& p, const fs::path& baseDir, const fs::path& dataDir)
{
    if (p.empty())
        return p;
    const std::string prefix = "${data}/";
    fs::path r = p.rfind(prefix, 0) == 0 ? dataDir / p.substr(prefix.size()) : fs::path(p);
    if (r.is_relative())
        r = baseDir / r;
    return fs::weakly_canonical(r).string();
}

bool isBuiltInSource(const std::string& s)
{
    static const std::set<std::string> names = {"tinystories", "wikitext2", "ptb", "alpaca"};
    if (names.count(s))
        return true;
    const auto& tasks = eval::knownTasks();
    return std::find(tasks.begin(), tasks.end(), s) != tasks.end();
}

void normalizeCalibration(Node parent, const std::string& key, const fs::path& baseDir, const fs::path& dataDir)
{
    Node c{parent.node, ""};
    parent.child(key, json::object(), &c);
    c.allowOnly({"source", "format", "samples", "seq_len", "seed"});
    const std::string src = c.str("source", "tinystories");
    if (!isBuiltInSource(src))
        (*c.node)["source"] = resolvePath(src, baseDir, dataDir);
    if (const std::string format = c.str("format", "auto"); format != "auto")
        prune::parseCalibrationFormat(format);
    c.integer("samples", 32, 1);
    c.integer("seq_len", 128, 2);
    c.integer("seed", 0, 0);
}

void normalizeTextSlice(Node n, int64_t windows, const fs::path& baseDir, const fs::path& dataDir)
{
    n.allowOnly({"source", "windows", "seq_len", "skip"});
    const std::string src = n.str("source", "tinystories");
    if (!isBuiltInSource(src))
        (*n.node)["source"] = resolvePath(src, baseDir, dataDir);
    n.integer("windows", windows, 1);
    n.integer("seq_len", 256, 2);
    n.integer("skip", 0, 0);
}

} // namespace

// The recovery fine-tune (`finetune`) or a search trial's short one (`search.recovery`, smaller defaults: a few
// steps of plain LoRA on short windows).
void normalizeFinetune(Node n, bool trial, const fs::path& baseDir, const fs::path& dataDir)
{
    n.allowOnly({"data", "format", "seq_len", "val_fraction", "max_examples", "train_on_inputs", "rank", "alpha",
                 "dropout", "targets", "init", "loftq_iter", "steps", "epochs", "batch_size", "micro_batch", "lr",
                 "weight_decay", "warmup", "schedule", "max_grad_norm", "eval_every", "save_every", "max_val",
                 "merge"});
    const std::string data = n.str("data", "tinystories");
    (*n.node)["data"] = isBuiltInSource(data) ? data : resolvePath(data, baseDir, dataDir);
    const std::string format = n.str("format", "");
    if (!format.empty())
        finetune::parseDataFormat(format);
    n.integer("seq_len", trial ? 128 : 256, 2);
    const double vf = n.number("val_fraction", trial ? 0.0 : 0.1, 0, false);
    if (vf >= 1)
        throw ConfigError(n.at("val_fraction") + ": expected a fraction below 1");
    n.integer("max_examples", trial ? 256 : -1, -1);
    n.boolean("train_on_inputs", false);
    n.integer("rank", 8, 1);
    n.number("alpha", 16, 0, true);
    const double dropout = n.number("dropout", trial ? 0.0 : 0.05, 0, false);
    if (dropout >= 1)
        throw ConfigError(n.at("dropout") + ": expected a probability below 1");
    json& targets = n.slot("targets", json::array({"q", "k", "v", "o", "gate", "up", "down"}));
    std::vector<std::string> names;
    if (!targets.is_array())
        throw ConfigError(n.at("targets") + ": expected a list of module names");
    for (const auto& t : targets) {
        if (!t.is_string())
            throw ConfigError(n.at("targets") + ": expected module names");
        names.push_back(t.get<std::string>());
    }
    try {
        parseLoraTargets(names);
    } catch (const ConfigError& e) {
        throw ConfigError(n.at("targets") + ": " + e.what());
    }
    finetune::parseLoraInit(n.str("init", trial ? "lora" : "loftq"));
    n.integer("loftq_iter", 1, 1);
    n.integer("steps", trial ? 20 : 0, 0);
    n.number("epochs", 1, 0, true);
    n.integer("batch_size", trial ? 8 : 64, 1);
    n.integer("micro_batch", 4, 1);
    n.number("lr", trial ? 1e-3 : 1e-4, 0, false);
    n.number("weight_decay", 0, 0, false);
    n.integer("warmup", trial ? 2 : 100, 0);
    finetune::parseLrSchedule(n.str("schedule", "cosine"));
    n.number("max_grad_norm", 1.0, 0, false);
    n.integer("eval_every", 100, 0);
    n.integer("save_every", 200, 0);
    n.integer("max_val", -1, -1);
    n.boolean("merge", false);
}

// The evaluation slices and tasks of `evaluate` (and of a trial's evaluation, which allows `extra` keys too).
void normalizeEvaluate(Node n, std::initializer_list<const char*> extra, const fs::path& baseDir,
                       const fs::path& dataDir)
{
    std::vector<std::string> keys = {"ppl", "tasks", "task_limit"};
    keys.insert(keys.end(), extra.begin(), extra.end());
    for (auto it = n.node->begin(); it != n.node->end(); ++it)
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
            throw ConfigError(n.at(it.key()) + ": unknown key");
    json& ppl = n.slot("ppl", json::array({json::object()}));
    if (!ppl.is_array())
        throw ConfigError(n.at("ppl") + ": expected a list of text slices");
    for (size_t i = 0; i < ppl.size(); ++i) {
        if (!ppl[i].is_object())
            throw ConfigError(n.at("ppl") + "[" + std::to_string(i) + "]: expected an object");
        normalizeTextSlice(Node{&ppl[i], n.at("ppl") + "[" + std::to_string(i) + "]"}, 40, baseDir, dataDir);
    }
    json& tasks = n.slot("tasks", json::array());
    if (!tasks.is_array())
        throw ConfigError(n.at("tasks") + ": expected a list of task names");
    for (const auto& t : tasks) {
        const auto& known = eval::knownTasks();
        if (!t.is_string() || std::find(known.begin(), known.end(), t.get<std::string>()) == known.end())
            throw ConfigError(n.at("tasks") + ": unknown task " + t.dump());
    }
    n.integer("task_limit", 100, 1);
}

std::string computeDtypeSetting(const std::string& text)
{
    std::optional<at::ScalarType> forced;
    try {
        forced = model::parseComputeDtype(text);
    } catch (const ConfigError&) {
        throw ConfigError("compute_dtype: '" + text + "' is not auto, float32 or bfloat16");
    }
    if (forced == at::kHalf)
        throw ConfigError("compute_dtype: float16 has no matmul on the CPU; use auto, float32 or bfloat16");
    return forced ? model::dtypeName(*forced) : "auto";
}

std::string describeComputeDtype(const std::string& dtype, const std::string& computeDtype)
{
    const auto forced = model::parseComputeDtype(computeDtypeSetting(computeDtype));
    return model::chooseComputeDtype(model::parseDtype(dtype), at::Device(at::kCPU), model::hostCpuFeatures(), forced)
        .reason;
}

json normalizeConfig(const json& config, const fs::path& baseDir, const fs::path& dataDirArg)
{
    const fs::path dataDir = fs::absolute(dataDirArg);
    json c = config;
    Node root{&c, ""};
    root.allowOnly({"version", "experiment", "name", "model", "tokenizer", "dtype", "compute_dtype", "seed", "workdir",
                    "data_dir", "prune", "importance", "allocate", "search", "finetune", "evaluate"});
    if (root.integer("version", 1, 1) != 1)
        throw ConfigError("version: this build reads config version 1");
    if (root.str("experiment", "default").empty())
        throw ConfigError("experiment: must not be empty");
    root.str("name", "");
    const std::string model = root.str("model", "");
    if (model.empty())
        throw ConfigError("model: required (a checkpoint file or directory)");
    c["model"] = resolvePath(model, baseDir, dataDir);
    if (!fs::exists(c["model"].get<std::string>()))
        throw FileError("model: " + c["model"].get<std::string>() + " not found");
    std::string tok = root.str("tokenizer", "");
    c["tokenizer"] = tok.empty() ? findTokenizerBeside(c["model"].get<std::string>()).string()
                                 : resolvePath(tok, baseDir, dataDir);
    model::parseDtype(root.str("dtype", "fp32"));
    c["compute_dtype"] = computeDtypeSetting(root.str("compute_dtype", "auto"));
    root.integer("seed", 0, 0);
    const std::string dataDirText = root.str("data_dir", "");
    c["data_dir"] = dataDirText.empty() ? fs::weakly_canonical(dataDir).string()
                                        : resolvePath(dataDirText, baseDir, dataDir);
    const std::string workdir = root.str("workdir", "");
    c["workdir"] = workdir.empty() ? "" : resolvePath(workdir, baseDir, dataDir);

    Node n{&c, ""};
    if (root.child("prune", nullptr, &n)) {
        n.allowOnly({"ratio", "attention_layers", "mlp_layers", "criterion", "calibration", "micro_batch"});
        const double r = n.number("ratio", 0.25, 0, true);
        if (r >= 1)
            throw ConfigError(n.at("ratio") + ": expected a fraction below 1");
        n.str("attention_layers", "");
        n.str("mlp_layers", "");
        prune::parseCriterion(n.str("criterion", "taylor-first"));
        n.integer("micro_batch", 4, 1);
        normalizeCalibration(n, "calibration", baseDir, dataDir);
    }
    root.child("importance", json::object(), &n);
    n.allowOnly({"metric", "metrics", "scores", "calibration", "kl_format", "kl_modules", "micro_batch"});
    const std::string metric = n.str("metric", "quant-kl");
    importance::parseMetric(metric);
    json& metrics = n.slot("metrics", json::array({metric}));
    if (!metrics.is_array() || metrics.empty())
        throw ConfigError(n.at("metrics") + ": expected a non-empty list of metric names");
    std::vector<std::string> names;
    for (const auto& m : metrics) {
        if (!m.is_string())
            throw ConfigError(n.at("metrics") + ": expected metric names");
        names.push_back(m.get<std::string>());
    }
    importance::parseMetrics(names);
    if (std::find(names.begin(), names.end(), metric) == names.end())
        throw ConfigError(n.at("metric") + ": '" + metric + "' is not among importance.metrics");
    const std::string scores = n.str("scores", "");
    (*n.node)["scores"] = resolvePath(scores, baseDir, dataDir);
    parseQuantSpec(n.str("kl_format", "nf4"));
    n.boolean("kl_modules", false);
    n.integer("micro_batch", 4, 1);
    normalizeCalibration(n, "calibration", baseDir, dataDir);

    root.child("allocate", json::object(), &n);
    n.allowOnly({"budget", "method", "candidates", "layers", "base_format", "samples", "temperature", "epsilon",
                 "ap_slope"});
    parseBudget(n.str("budget", "4.5bpw"));
    parseAllocationMethod(n.str("method", "probabilistic"));
    json& cands = n.slot("candidates", json::array({"nf4", "int8", "bf16"}));
    if (!cands.is_array() || cands.size() < 2)
        throw ConfigError(n.at("candidates") + ": expected a list of at least two formats");
    for (const auto& f : cands) {
        if (!f.is_string())
            throw ConfigError(n.at("candidates") + ": expected format names");
        parseQuantSpec(f.get<std::string>());
    }
    json& layers = n.slot("layers", json::array());
    if (!layers.is_array())
        throw ConfigError(n.at("layers") + ": expected a list of layer indices");
    for (const auto& l : layers)
        if (!l.is_number_integer() || l.get<int64_t>() < 0)
            throw ConfigError(n.at("layers") + ": expected non-negative layer indices");
    parseQuantSpec(n.str("base_format", "bf16"));
    n.integer("samples", 16, 0);
    n.number("temperature", 0.1, 0, true);
    n.number("epsilon", 1e-3, 0, false);
    {
        json& slope = n.slot("ap_slope", 1.0);
        if (!slope.is_number() || !std::isfinite(slope.get<double>()))
            throw ConfigError(n.at("ap_slope") + ": expected a number");
    }

    if (root.child("search", json::object(), &n)) {
        n.allowOnly({"trials", "strategy", "granularity", "objective", "validation", "task", "task_limit",
                     "initial_samples", "uniform", "workers", "batch_size", "par_ego", "gp_restarts", "pool_samples",
                     "pool_random", "pool_two_edits", "recovery", "variant_cache", "token_budget", "fidelities",
                     "evopress", "nsga2", "ap_slopes", "error_fidelity", "initial_knapsack"});
        n.integer("trials", 40, 1);
        const std::string strategy = n.str("strategy", "bayes");
        try {
            search::parseStrategy(strategy);
        } catch (const ConfigError& e) {
            throw ConfigError(n.at("strategy") + ": " + e.what());
        }
        n.integer("token_budget", 0, 0);
        // bayes starts from the knapsack's answers by default (bench/strategies.py: the best perplexity within the
        // budget improves on 8 of 12 rows, the hypervolume stays level); the other strategies do not.
        n.boolean("initial_knapsack", strategy == "bayes");
        n.number("error_fidelity", 0.25, 0, true);
        if (n.node->at("error_fidelity").get<double>() > 1)
            throw ConfigError(n.at("error_fidelity") + ": expected a fraction in (0, 1]");
        auto numberList = [&](const char* key, const json& def) {
            json& v = n.slot(key, def);
            if (!v.is_array() || v.empty())
                throw ConfigError(n.at(key) + ": expected a non-empty list of numbers");
            for (const auto& x : v)
                if (!x.is_number() || !std::isfinite(x.get<double>()))
                    throw ConfigError(n.at(key) + ": expected a non-empty list of numbers");
        };
        numberList("fidelities", json::array({1}));
        numberList("ap_slopes", json::array({0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3}));
        {
            Node e{&c, ""};
            n.child("evopress", json::object(), &e);
            e.allowOnly({"offspring", "fidelities", "survivors", "max_switches"});
            e.integer("offspring", 16, 1);
            json& ef = e.slot("fidelities", json::array({0.125, 0.5, 1}));
            json& es = e.slot("survivors", json::array({4, 1}));
            if (!ef.is_array() || !es.is_array())
                throw ConfigError(e.at("fidelities") + " and " + e.at("survivors") + ": expected lists");
            for (const auto& x : ef)
                if (!x.is_number())
                    throw ConfigError(e.at("fidelities") + ": expected numbers");
            for (const auto& x : es)
                if (!x.is_number_integer())
                    throw ConfigError(e.at("survivors") + ": expected integers");
            e.integer("max_switches", 3, 1);
            Node g{&c, ""};
            n.child("nsga2", json::object(), &g);
            g.allowOnly({"population", "prefilter", "mutation"});
            g.integer("population", 16, 2);
            g.integer("prefilter", 4, 1);
            g.number("mutation", 0, 0, false);
        }
        search::validateSearchOptions(internal::searchOptions(*n.node)); // "search: ..." naming the option
        const std::string granularity = n.str("granularity", "layer");
        if (granularity != "layer" && granularity != "group" && granularity != "module")
            throw ConfigError(n.at("granularity") + ": expected layer, group or module, got '" + granularity + "'");
        const auto objective = search::parseSearchObjective(n.str("objective", "ppl"));
        Node v{&c, ""};
        n.child("validation", json::object(), &v);
        normalizeTextSlice(v, 16, baseDir, dataDir);
        const std::string task = n.str("task", "");
        if (objective == search::SearchObjective::Accuracy) {
            const auto& tasks = eval::knownTasks();
            if (std::find(tasks.begin(), tasks.end(), task) == tasks.end())
                throw ConfigError(n.at("task") + ": the accuracy objective needs a task (boolq, piqa, ...)");
        }
        n.integer("task_limit", 64, 1);
        n.integer("initial_samples", 4, 0);
        n.boolean("uniform", true);
        n.integer("workers", 1, 1);
        n.integer("batch_size", 4, 1);
        n.boolean("par_ego", true);
        n.integer("gp_restarts", 2, 0);
        n.integer("pool_samples", 64, 0);
        n.integer("pool_random", 64, 0);
        n.integer("pool_two_edits", 256, 0);
        const std::string cache = n.str("variant_cache", "auto");
        if (cache != "auto" && cache != "memory" && cache != "disk")
            throw ConfigError(n.at("variant_cache") + ": expected auto, memory or disk, got '" + cache + "'");
        Node r{&c, ""};
        if (n.child("recovery", nullptr, &r))
            normalizeFinetune(r, true, baseDir, dataDir);
    }
    if (root.child("finetune", nullptr, &n))
        normalizeFinetune(n, false, baseDir, dataDir);
    if (root.child("evaluate", json::object(), &n))
        normalizeEvaluate(n, {}, baseDir, dataDir);
    return c;
}

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

fs::path textSourceFile(const std::string& source, bool evaluation, const fs::path& dataDir)
{
    if (source == "tinystories")
        return dataDir / "text/tinystories/tinystories_valid_subset.txt";
    if (source == "wikitext2")
        return dataDir / (evaluation ? "text/wikitext-2-raw/wiki.test.raw" : "text/wikitext-2/wiki.valid.tokens");
    if (source == "ptb")
        return dataDir / (evaluation ? "text/ptb/ptb.test.txt" : "text/ptb/ptb.valid.txt");
    return source;
}

at::Tensor textWindows(const json& slice, bool evaluation, const Tokenizer& tok, const fs::path& dataDir)
{
    return internal::textWindows(slice, evaluation, tok, dataDir);
}

struct Context {
    store::Store& store;
    int64_t runId;
    json config;
    fs::path workdir;
    fs::path dataDir;
    RunOptions options;
    ProgressSink progress;
    const CancelToken* cancel;
    std::vector<store::StageRecord> previous; // stages of an earlier attempt (resume)
    json results = json::object();
    bool join = false;    // a worker joining the search (joinSearch): no stage records, no later stages
    int maxTrials = 0;    // join: trials to evaluate here at most
    int evaluated = 0;    // join: trials evaluated here
};

// A finished stage of an earlier attempt whose artifacts are all unchanged (by sha256).
const store::StageRecord* reusable(Context& cx, const std::string& name)
{
    for (const auto& s : cx.previous)
        if (s.name == name && s.status == store::RunStatus::Done) {
            for (const auto& a : cx.store.artifacts(cx.runId))
                if (a.stageId == s.id && (!fs::exists(a.path) || io::sha256Path(a.path).sha256 != a.sha256))
                    return nullptr;
            return &s;
        }
    return nullptr;
}

template <typename F>
json runStage(Context& cx, const std::string& name, const json& config, F&& body)
{
    if (const auto* done = reusable(cx, name)) {
        cx.results[name] = done->result;
        return done->result;
    }
    if (cx.join) {
        if (name != "search")
            throw ConfigError("run " + std::to_string(cx.runId) + ": its " + name +
                              " stage has not finished: a worker joins a run once its search has begun");
        json r = body(0); // a worker's share of the search: not a stage of its own
        cx.results[name] = r;
        return r;
    }
    const int64_t id = cx.store.beginStage(cx.runId, name, config);
    const auto t0 = std::chrono::steady_clock::now();
    const finetune::PeakMemory peak(at::Device(at::kCPU));
    try {
        json r = body(id);
        // What the stage cost in memory, and the dtype its models computed in (dense ones in the run's dtype,
        // quantized maps in that of their bf16 embedding), on this machine.
        if (r.is_object()) {
            std::string source;
            r["peak_rss_bytes"] = peak.peakRssBytes(&source);
            r["peak_rss_source"] = source;
            const at::Device cpu(at::kCPU);
            const auto dense = model::computeChoiceFor(model::parseDtype(cx.config["dtype"]), cpu);
            const auto quantized = model::computeChoiceFor(at::kBFloat16, cpu);
            r["compute"] = {{"dense", {{"dtype", model::dtypeName(dense.dtype)}, {"reason", dense.reason}}},
                            {"quantized", {{"dtype", model::dtypeName(quantized.dtype)}, {"reason", quantized.reason}}}};
        }
        cx.store.finishStage(id, store::RunStatus::Done, r, secondsSince(t0));
        cx.results[name] = r;
        return r;
    } catch (const CancelledError&) {
        cx.store.finishStage(id, store::RunStatus::Cancelled, json::object(), secondsSince(t0), "cancelled");
        throw;
    } catch (const std::exception& e) {
        cx.store.finishStage(id, store::RunStatus::Failed, json::object(), secondsSince(t0), e.what());
        throw;
    }
}

std::unique_ptr<model::LlamaModel> loadFor(const Context& cx, const std::string& path)
{
    model::LoadOptions lo;
    lo.dtype = model::parseDtype(cx.config["dtype"]);
    return model::loadModel(path, lo);
}

std::pair<int, int> parseSpan(const std::string& text, const std::string& key)
{
    if (text.empty())
        return {-1, -1};
    const auto colon = text.find(':');
    try {
        if (colon == std::string::npos)
            throw std::invalid_argument(text);
        return {std::stoi(text.substr(0, colon)), std::stoi(text.substr(colon + 1))};
    } catch (const std::exception&) {
        throw ConfigError(key + ": expected BEGIN:END, got '" + text + "'");
    }
}

std::string pruneStage(Context& cx, const Tokenizer& tok)
{
    const json& pc = cx.config["prune"];
    const json r = runStage(cx, "prune", pc, [&](int64_t stageId) {
        auto m = loadFor(cx, cx.config["model"]);
        prune::PruneOptions o;
        o.ratio = pc["ratio"];
        const auto a = parseSpan(pc["attention_layers"], "prune.attention_layers");
        const auto b = parseSpan(pc["mlp_layers"], "prune.mlp_layers");
        o.attentionLayers = {a.first, a.second};
        o.mlpLayers = {b.first, b.second};
        o.criterion = prune::parseCriterion(pc["criterion"]);
        o.microBatch = pc.value("micro_batch", 4); // runs stored before the key existed: the old fixed 4
        o.seed = cx.config["seed"];
        const json& cc = pc["calibration"];
        prune::CalibrationOptions co{int(cc["samples"]), int(cc["seq_len"]), uint64_t(cc["seed"])};
        const auto calib = prune::calibrationWindows(cc["source"], cc["format"], co, tok, cx.dataDir);
        const ModelConfig before = m->config();
        const auto scores = prune::estimateImportance(*m, calib, o, cx.progress, cx.cancel);
        const auto plan = prune::planPruning(before, scores, o);
        prune::applyPruning(*m, plan);
        const fs::path out = cx.workdir / "pruned";
        model::saveNativeModel(*m, out, {{"source", cx.config["model"]}, {"pruning", pc}});
        cx.store.addArtifact(cx.runId, stageId, "checkpoint", out);
        return json{{"checkpoint", out.string()},
                    {"parameters_before", before.parameterCount()},
                    {"parameters_after", m->config().parameterCount()}};
    });
    return r["checkpoint"];
}

ImportanceScores importanceStage(Context& cx, const std::string& modelPath, const Tokenizer& tok)
{
    const json& ic = cx.config["importance"];
    const json r = runStage(cx, "importance", ic, [&](int64_t stageId) {
        ImportanceScores s;
        if (!ic["scores"].get<std::string>().empty()) {
            s = ImportanceScores::load(ic["scores"].get<std::string>());
        } else {
            auto m = loadFor(cx, modelPath);
            importance::ImportanceOptions o;
            std::vector<std::string> names = ic["metrics"];
            o.metrics = importance::parseMetrics(names);
            o.klFormat = parseQuantSpec(ic["kl_format"].get<std::string>());
            o.klModules = ic.value("kl_modules", false); // runs stored before the key existed
            o.microBatch = ic.value("micro_batch", 4);
            const json& cc = ic["calibration"];
            prune::CalibrationOptions co{int(cc["samples"]), int(cc["seq_len"]), uint64_t(cc["seed"])};
            const auto calib =
                prune::calibrationWindows(cc["source"], cc["format"], co, tok, cx.dataDir, &s.calibration);
            s.model = modelPath;
            s.numLayers = m->config().numLayers();
            s.metrics = importance::layerImportance(*m, calib, o, cx.progress, cx.cancel);
        }
        const fs::path out = cx.workdir / "scores.json";
        s.save(out);
        std::vector<store::LayerScoreRow> rows;
        for (const auto& [name, ms] : s.metrics)
            for (size_t l = 0; l < ms.layers.size(); ++l) {
                rows.push_back({name, int(l), "", ms.layers[l], ms.normalized[l]});
                if (l < ms.modules.size())
                    for (LinearModule mod : kLinearModules)
                        rows.push_back({name, int(l), linearModuleName(mod), ms.modules[l][size_t(mod)],
                                        ms.modulesNormalized[l][size_t(mod)]});
            }
        cx.store.addLayerScores(cx.runId, stageId, rows);
        cx.store.addArtifact(cx.runId, stageId, "scores", out);
        return json{{"scores", out.string()}, {"metrics", s.metricList()}};
    });
    return ImportanceScores::load(r["scores"].get<std::string>());
}

AllocationProblem allocationProblem(const Context& cx, const ModelConfig& config, const ImportanceScores& scores)
{
    const json& ac = cx.config["allocate"];
    AllocationProblem pr;
    pr.config = config;
    pr.base = PrecisionMap(parseQuantSpec(ac["base_format"].get<std::string>()));
    pr.layers = ac["layers"].get<std::vector<int>>();
    for (const auto& f : ac["candidates"])
        pr.candidates.push_back(parseQuantSpec(f.get<std::string>()));
    const auto& ms = scores.metric(cx.config["importance"]["metric"]);
    pr.importance = ms.normalized;
    if (int(pr.importance.size()) != config.numLayers())
        throw ConfigError("importance: the scores cover " + std::to_string(pr.importance.size()) +
                          " layers, the model has " + std::to_string(config.numLayers()));
    pr.budget = parseBudget(ac["budget"].get<std::string>());
    return pr;
}

AllocationOptions allocationOptions(const Context& cx)
{
    const json& ac = cx.config["allocate"];
    AllocationOptions o;
    o.method = parseAllocationMethod(ac["method"]);
    o.samples = ac["samples"];
    o.temperature = ac["temperature"];
    o.epsilon = ac["epsilon"];
    o.apSlope = ac.value("ap_slope", 1.0);
    o.seed = cx.config["seed"];
    return o;
}

// The budgeted quantity of a map, as allocation.h defines it.
int64_t budgeted(const MemoryReport& r, BudgetUnit unit)
{
    return unit == BudgetUnit::BitsPerWeight ? r.linearBytes : r.totalBytes;
}

// The search space over the allocation's layers: one unit per layer ("layer" granularity), two, its attention
// (q, k, v, o) and MLP (gate, up, down) linears ("group"), or seven, one per linear ("module"); unit bytes from
// the exact memory model.
struct SpaceBuilder {
    struct Unit {
        int layer = 0;
        std::vector<LinearModule> modules;
    };
    AllocationProblem problem;
    AllocationResult allocation;
    bool groups = false;
    std::vector<Unit> units;
    search::SearchSpace space;
    int64_t bf16Total = 0;

    int candidateIndex(const QuantSpec& s) const
    {
        for (size_t k = 0; k < allocation.candidates.size(); ++k)
            if (allocation.candidates[k] == s)
                return int(k);
        return -1;
    }
    search::Choice choiceOf(const Allocation& a) const
    {
        search::Choice c;
        for (const Unit& u : units)
            c.push_back(candidateIndex(a.layerSpecs[size_t(u.layer)]));
        return c;
    }
    PrecisionMap mapOf(const search::Choice& c) const
    {
        PrecisionMap m = problem.base;
        for (size_t i = 0; i < c.size(); ++i) {
            const Unit& u = units[i];
            const QuantSpec& spec = allocation.candidates[size_t(c[i])];
            if (!groups) {
                for (LinearModule mod : kLinearModules)
                    m.setLayerModule(u.layer, mod, std::nullopt);
                m.setLayer(u.layer, spec);
            } else {
                for (LinearModule mod : u.modules)
                    m.setLayerModule(u.layer, mod, spec);
            }
        }
        return m;
    }
    int64_t budgetedBytes(const search::Choice& c) const
    {
        return budgeted(memoryReport(problem.config, mapOf(c)), problem.budget.unit);
    }

    SpaceBuilder(AllocationProblem p, const AllocationResult& a, const std::string& granularity,
                 const ImportanceScores& scores, const std::string& metric)
        : problem(std::move(p)), allocation(a), groups(granularity != "layer")
    {
        const std::vector<LinearModule> attention = {LinearModule::Q, LinearModule::K, LinearModule::V,
                                                     LinearModule::O};
        const std::vector<LinearModule> mlp = {LinearModule::Gate, LinearModule::Up, LinearModule::Down};
        const MetricScores& ms = scores.metric(metric);
        for (int l : allocation.layers) {
            if (!groups) {
                units.push_back({l, {kLinearModules.begin(), kLinearModules.end()}});
                space.importance.push_back(problem.importance[size_t(l)]);
                continue;
            }
            if (granularity == "module") {
                for (LinearModule mod : kLinearModules) {
                    units.push_back({l, {mod}});
                    space.importance.push_back(size_t(l) < ms.modulesNormalized.size()
                                                   ? ms.modulesNormalized[size_t(l)][size_t(mod)]
                                                   : problem.importance[size_t(l)]);
                }
                continue;
            }
            for (const auto* mods : {&attention, &mlp}) {
                units.push_back({l, *mods});
                double v = problem.importance[size_t(l)];
                if (size_t(l) < ms.modulesNormalized.size()) { // the group's mean module score when scored
                    v = 0;
                    for (LinearModule mod : *mods)
                        v += ms.modulesNormalized[size_t(l)][size_t(mod)];
                    v /= double(mods->size());
                }
                space.importance.push_back(v);
            }
        }
        const auto& cands = allocation.candidates;
        space.units = int(units.size());
        double lo = 1e9, hi = -1e9;
        for (const auto& c : cands) {
            space.candidates.push_back(c.name());
            lo = std::min(lo, std::log2(double(c.codeBits())));
            hi = std::max(hi, std::log2(double(c.codeBits())));
        }
        for (const auto& c : cands)
            space.position.push_back(hi > lo ? (std::log2(double(c.codeBits())) - lo) / (hi - lo) : 1.0);
        const bool countBias = problem.budget.unit != BudgetUnit::BitsPerWeight;
        space.unitBytes.assign(units.size(), std::vector<int64_t>(cands.size()));
        for (size_t k = 0; k < cands.size(); ++k) {
            const search::Choice all(units.size(), int(k));
            const auto rep = memoryReport(problem.config, mapOf(all));
            for (size_t i = 0; i < units.size(); ++i) {
                const auto& L = rep.layers[size_t(units[i].layer)];
                int64_t b = 0;
                for (LinearModule mod : units[i].modules)
                    b += L.moduleBytes[size_t(mod)];
                if (countBias && units[i].modules.front() == LinearModule::Q) // biases sit on q/k/v
                    b += L.biasBytes;
                space.unitBytes[i][k] = b;
            }
            if (k == 0) {
                int64_t sum = 0;
                for (size_t i = 0; i < units.size(); ++i)
                    sum += space.unitBytes[i][0];
                space.fixedBytes = budgeted(rep, problem.budget.unit) - sum;
            }
        }
        space.budgetBytes = allocation.budgetBytes;
        // The unit costs must add up exactly (they do unless a module outside the q/k/v group has a bias).
        search::Choice mixed(units.size());
        for (size_t i = 0; i < units.size(); ++i)
            mixed[i] = int(i % cands.size());
        if (space.bytes(mixed) != budgetedBytes(mixed))
            throw Error("search: per-unit memory is not additive for this model (" +
                        std::to_string(space.bytes(mixed)) + " vs " + std::to_string(budgetedBytes(mixed)) +
                        " bytes); use granularity \"layer\"");
        PrecisionMap bf16(QuantSpec{QuantKind::BF16, 0, false});
        bf16Total = memoryReport(problem.config, bf16).totalBytes;
    }
};

json memoryJson(const MemoryReport& r, int64_t bf16Total)
{
    return {{"total_bytes", r.totalBytes},
            {"linear_bytes", r.linearBytes},
            {"linear_bits_per_weight", r.linearBitsPerWeight},
            {"bf16_fraction", double(r.totalBytes) / double(bf16Total)}};
}

// The recovery options of a normalised `finetune` (or `search.recovery`) object.
finetune::RecoveryOptions recoveryOptions(const json& fc, const Context& cx)
{
    return internal::recoveryOptions(fc, cx.dataDir, cx.config["seed"].get<uint64_t>());
}

// What every trial of a run's search is evaluated with: the validation windows or task subset, the objective
// and the per-trial recovery. `options` points into `task`, so a TrialSetup stays where it was prepared.
struct TrialSetup {
    search::SearchObjective objective = search::SearchObjective::Perplexity;
    at::Tensor windows;
    std::optional<eval::TaskSet> task;
    search::TrialEvaluatorOptions options;

    TrialSetup() = default;
    TrialSetup(const TrialSetup&) = delete;
    TrialSetup& operator=(const TrialSetup&) = delete;
};

void prepareTrials(TrialSetup& s, const Context& cx, const Tokenizer& tok)
{
    const json& sc = cx.config["search"];
    s.objective = search::parseSearchObjective(sc["objective"]);
    if (s.objective == search::SearchObjective::Accuracy) {
        const std::string name = sc["task"];
        s.task = eval::loadTaskSet(name, eval::taskFile(name, cx.dataDir / "eval"), sc["task_limit"].get<int64_t>());
    } else {
        s.windows = textWindows(sc["validation"], false, tok, cx.dataDir);
    }
    s.options.objective = s.objective;
    s.options.batchSize = sc["batch_size"];
    s.options.task = s.task ? &*s.task : nullptr;
    s.options.tokenizer = &tok;
    if (!sc["recovery"].is_null()) {
        finetune::RecoveryOptions ro = recoveryOptions(sc["recovery"], cx);
        ro.train.padId = std::max(0, tok.eosId());
        auto data = std::make_shared<const finetune::TrainData>(finetune::loadTrainData(ro.dataFile, tok, ro.data));
        s.options.recover = [ro, data](model::LlamaModel& m, const finetune::LayerLinears& dense,
                                       const CancelToken* cancel) {
            const auto t = finetune::recoverInPlace(m, dense, *data, ro.lora, ro.alpha, ro.init, ro.train, cancel);
            return json{{"steps", t.steps},
                        {"first_loss", t.train.front().loss},
                        {"last_loss", t.train.back().loss},
                        {"seconds", t.seconds}};
        };
    }
}

// Where a worker's trials keep their quantized variants (search.variant_cache; TrialEvaluatorOptions::variantDir):
// "memory", "disk" (mapped files under the run's workdir), or "auto": disk when every candidate format of every
// linear together would take more than a quarter of this machine's RAM (a 7B model's nf4 + int8 + bf16 variants
// are ~24 GB), memory otherwise and on a GPU.
fs::path variantDirFor(const Context& cx, const model::LlamaModel& m, const std::vector<std::string>& candidates)
{
    const std::string mode = cx.config["search"]["variant_cache"];
    if (mode == "memory" || (mode == "auto" && !m.device().is_cpu()))
        return {};
    if (mode == "auto") {
        int64_t bytes = 0;
        for (const auto& layer : m.layers)
            for (LinearModule mod : kLinearModules) {
                const auto& lin = model::layerLinear(layer, mod);
                for (const auto& c : candidates)
                    bytes += storedBytes(parseQuantSpec(c), lin->outFeatures(), lin->inFeatures());
            }
        const int64_t ram = int64_t(::sysconf(_SC_PHYS_PAGES)) * int64_t(::sysconf(_SC_PAGESIZE));
        if (ram <= 0 || bytes <= ram / 4)
            return {};
    }
    return cx.workdir / "variants";
}

// The lagrangian strategy's error table: for every unit and candidate format, the mean KL (nats per token) of the
// dense model with only that unit's linears at that format (importance::layerImportance's quant-kl, per layer or
// per linear; a group's error is the sum of its linears'), on the first search.error_fidelity of the validation
// windows. Kept in <workdir>/unit-errors.json and reused while its units, formats and windows are unchanged.
// tokens: what it cost in full-pass equivalents: a quantized pass from layer l scores its windows through
// (L - l) of the L layers.
struct UnitErrors {
    std::vector<std::vector<double>> errors;
    std::vector<std::string> lossless; // candidates every linear already holds exactly: errors 0, no pass
    int64_t tokens = 0;
    bool reused = false;
};

// Whether every decoder linear (weight and bias) holds its values exactly in the 16-bit format `spec`: a bf16
// checkpoint's weights in bf16, whatever dtype they compute in. That format then changes no weight of any unit.
bool heldExactly(const model::LlamaModel& m, const QuantSpec& spec)
{
    if (spec.kind != QuantKind::BF16 && spec.kind != QuantKind::F16)
        return false;
    const at::ScalarType want = quant::denseDtype(spec);
    auto exact = [want](const at::Tensor& t) {
        return t.scalar_type() == want || at::equal(t.to(want).to(t.scalar_type()), t);
    };
    for (const auto& layer : m.layers)
        for (LinearModule mod : kLinearModules) {
            const auto& linear = model::layerLinear(layer, mod);
            if (quant::heldSpec(*linear).isQuantized() || !exact(linear->denseWeight()))
                return false;
            if (const auto bias = linear->bias(); bias && !exact(*bias))
                return false;
        }
    return true;
}

UnitErrors unitErrors(Context& cx, const std::string& modelPath, const Tokenizer& tok, const SpaceBuilder& sb)
{
    const json& sc = cx.config["search"];
    const std::string granularity = sc["granularity"];
    at::Tensor w = textWindows(sc["validation"], false, tok, cx.dataDir);
    const int64_t n = search::fidelityCount(sc["error_fidelity"].get<double>(), w.size(0));
    w = w.narrow(0, 0, n).contiguous();
    json key = {{"granularity", granularity},
                {"candidates", sb.space.candidates},
                {"units", sb.space.units},
                {"windows", n},
                {"seq_len", w.size(1)},
                {"first_tokens", std::vector<int64_t>(w.data_ptr<int64_t>(), w.data_ptr<int64_t>() + std::min<int64_t>(w.numel(), 16))}};
    const fs::path file = cx.workdir / "unit-errors.json";
    UnitErrors out;
    if (fs::exists(file)) {
        try {
            const json saved = io::readJsonFile(file);
            if (saved.value("key", json()) == key) {
                out.errors = saved.at("errors").get<std::vector<std::vector<double>>>();
                out.lossless = saved.value("lossless", std::vector<std::string>());
                out.tokens = saved.at("tokens").get<int64_t>();
                out.reused = true;
                return out;
            }
        } catch (const std::exception&) {
            // unreadable or from another layout: measured again below
        }
    }
    auto m = loadFor(cx, modelPath);
    const int L = m->config().numLayers();
    const bool modules = granularity != "layer";
    out.errors.assign(size_t(sb.space.units), std::vector<double>(sb.space.candidates.size(), 0.0));
    const int64_t windowTokens = w.size(0) * (w.size(1) - 1);
    for (size_t k = 0; k < sb.allocation.candidates.size(); ++k) {
        const QuantSpec& spec = sb.allocation.candidates[k];
        if (!spec.isQuantized() && spec.kind != QuantKind::F16 && spec.kind != QuantKind::BF16)
            continue; // fp32: the dense weights themselves
        if (heldExactly(*m, spec)) {
            out.lossless.push_back(sb.space.candidates[k]); // (bf16 of a bf16 checkpoint) its column stays 0
            continue;
        }
        importance::ImportanceOptions io;
        io.metrics = {importance::Metric::QuantKl};
        io.klFormat = spec;
        io.klModules = modules;
        io.microBatch = sc["batch_size"];
        const ProgressSink progress = [&cx, &sb, k](const Progress& p) {
            if (cx.progress)
                cx.progress(Progress{"search", 0, 0,
                                     "unit errors: " + sb.space.candidates[k] + " " + std::to_string(p.done) + "/" +
                                         std::to_string(p.total),
                                     {}});
        };
        const auto scores = importance::layerImportance(*m, w, io, progress, cx.cancel).at("quant-kl");
        // A quantized pass for layer l starts from the cached residual stream entering it: (L - l) / L of a full
        // pass; over the layers (L + 1) / 2 full passes per unit set (the layer itself, and each linear alone).
        out.tokens += windowTokens * (L + 1) * (modules ? 1 + kLinearModuleCount : 1) / 2;
        for (size_t i = 0; i < sb.units.size(); ++i) {
            const auto& u = sb.units[i];
            double e = 0;
            if (!modules)
                e = scores.layers[size_t(u.layer)];
            else
                for (LinearModule mod : u.modules)
                    e += scores.modules[size_t(u.layer)][size_t(mod)];
            out.errors[i][k] = std::max(0.0, e); // float rounding can leave a lossless format at -1e-12
        }
    }
    io::writeFileAtomic(
        file, json{{"key", key}, {"errors", out.errors}, {"lossless", out.lossless}, {"tokens", out.tokens}}.dump(1));
    return out;
}

json searchStage(Context& cx, const std::string& modelPath, const Tokenizer& tok, const SpaceBuilder& sb)
{
    const json& sc = cx.config["search"];
    return runStage(cx, "search", sc, [&](int64_t stageId) {
        search::SearchProblem problem;
        problem.space = sb.space;
        auto addInitial = [&](const search::Choice& c, const std::string& source) {
            if (std::find(c.begin(), c.end(), -1) == c.end())
                problem.initial.push_back({c, source});
        };
        addInitial(sb.choiceOf(sb.allocation.best), "initial:importance");
        AllocationOptions ao = allocationOptions(cx);
        ao.method = AllocationMethod::Probabilistic;
        ao.samples = std::max<int>(1, sc["initial_samples"]);
        const auto prob = allocate(sb.problem, ao);
        addInitial(sb.choiceOf(prob.best), "initial:importance-mode");
        for (int i = 0; i < int(prob.samples.size()) && i < int(sc["initial_samples"]); ++i)
            addInitial(sb.choiceOf(prob.samples[size_t(i)]), "initial:sample");
        if (sc["uniform"].get<bool>())
            for (int k = 0; k < int(sb.space.candidates.size()); ++k)
                addInitial(search::Choice(size_t(sb.space.units), k),
                           "initial:uniform:" + sb.space.candidates[size_t(k)]);
        problem.sampler = [&sb, ao](uint64_t seed, int count) {
            AllocationOptions o = ao;
            o.seed = seed;
            o.samples = count;
            std::vector<search::Choice> out;
            for (const auto& a : allocate(sb.problem, o).samples)
                out.push_back(sb.choiceOf(a));
            return out;
        };
        problem.describe = [&sb](const search::Choice& c) {
            const PrecisionMap m = sb.mapOf(c);
            const MemoryReport r = memoryReport(sb.problem.config, m);
            return search::TrialDescription{m.toJson(), r.totalBytes, {{"memory", memoryJson(r, sb.bf16Total)}}};
        };

        TrialSetup setup;
        prepareTrials(setup, cx, tok);
        const search::TrialEvaluatorOptions& eo = setup.options;
        const at::Tensor& windows = setup.windows;

        search::SearchOptions so = internal::searchOptions(sc);
        so.seed = cx.config["seed"];
        so.logObjective = setup.objective == search::SearchObjective::Perplexity;
        so.workers = cx.options.workers > 0 ? cx.options.workers : int(sc["workers"]);
        so.heartbeatSeconds = cx.options.heartbeatSeconds;
        so.staleSeconds = cx.options.staleSeconds;
        so.maxEvaluations = cx.join ? cx.maxTrials : 0;

        problem.tokensAt = [&setup](double f) { // as TrialEvaluator::tokensAt
            if (setup.objective == search::SearchObjective::Accuracy)
                return search::fidelityCount(f, int64_t(setup.task->items.size()));
            return search::fidelityCount(f, setup.windows.size(0)) * (setup.windows.size(1) - 1);
        };
        const int layersInModel = sb.problem.config.numLayers();
        for (const auto& u : sb.units)
            problem.unitDepth.push_back(layersInModel > 1 ? double(u.layer) / double(layersInModel - 1) : 0.5);
        json errorTable;
        const bool knapsackSeeds = sc.value("initial_knapsack", false) && so.strategy != search::Strategy::Random &&
                                   so.strategy != search::Strategy::Lagrangian;
        if (so.strategy == search::Strategy::Lagrangian || knapsackSeeds) {
            const auto tableStart = std::chrono::steady_clock::now();
            const UnitErrors ue = unitErrors(cx, modelPath, tok, sb);
            problem.unitErrors = ue.errors;
            so.spentTokens = ue.tokens;
            errorTable = {{"tokens", ue.tokens}, {"reused", ue.reused}, {"lossless", ue.lossless},
                          {"file", (cx.workdir / "unit-errors.json").string()}, {"seconds", secondsSince(tableStart)}};
        }
        if (knapsackSeeds) {
            // The knapsack's answer at the budget and 3 more points of its front (evenly spread down to the
            // cheapest map) lead the initial design: cheap, strong starting points from the error table.
            const auto front = search::knapsackFront(problem.unitErrors, sb.space.unitBytes,
                                                     sb.space.budgetBytes - sb.space.fixedBytes);
            std::vector<search::InitialPoint> seeds;
            std::set<size_t> picked;
            for (int i = 0; i < 4 && !front.empty(); ++i) {
                const size_t k = size_t(std::llround(double(front.size() - 1) * (1.0 - i / 3.0)));
                if (picked.insert(k).second)
                    seeds.push_back({front[k].choice, i == 0 ? "initial:knapsack" : "initial:knapsack-front"});
            }
            problem.initial.insert(problem.initial.begin(), seeds.begin(), seeds.end());
        }

        const PrecisionMap base = sb.problem.base;
        std::string variantCache = "memory";
        // Progress inside a trial shows as the search's own line (same stage, same trials done, so its rate and ETA
        // carry on) with the trial's step in the message: "trial step: quantize 45/224 (layer 6 up to nf4)".
        struct Last {
            std::mutex mu;
            Progress p;
        };
        auto last = std::make_shared<Last>();
        last->p = Progress{"search", 0, int64_t(sc["trials"].get<int>()), "", {}};
        const ProgressSink searchProgress = [last, &cx](const Progress& p) {
            {
                std::lock_guard lock(last->mu);
                last->p = p;
            }
            if (cx.progress)
                cx.progress(p);
        };
        const ProgressSink trialProgress = [last, &cx](const Progress& p) {
            if (!cx.progress)
                return;
            Progress q;
            {
                std::lock_guard lock(last->mu);
                q = last->p;
            }
            const std::string step = p.stage.rfind("search: ", 0) == 0 ? p.stage.substr(8) : p.stage;
            q.message = "trial step: " + step + " " + std::to_string(p.done) + "/" + std::to_string(p.total) +
                        (p.message.empty() ? "" : " (" + p.message + ")");
            cx.progress(q);
        };
        auto factory = [&](int) -> search::Evaluator {
            auto model = loadFor(cx, modelPath);
            search::TrialEvaluatorOptions o = eo;
            o.variantDir = variantDirFor(cx, *model, sb.space.candidates);
            o.progress = trialProgress;
            if (!o.variantDir.empty())
                variantCache = "disk: " + o.variantDir.string();
            auto ev = std::make_shared<search::TrialEvaluator>(std::move(model), base, windows, o);
            return [ev, &sb](const search::Choice& c, double fidelity, const CancelToken* cancel) {
                return ev->evaluate(sb.mapOf(c), fidelity, cancel);
            };
        };
        const auto summary = search::runSearch(cx.store, cx.runId, problem, factory, so, searchProgress, cx.cancel);
        cx.evaluated = summary.evaluatedHere;

        json out = {{"budget", sb.allocation.budget.text()},
                    {"budget_bytes", sb.allocation.budgetBytes},
                    {"trials_complete", summary.trialsComplete},
                    {"trials_failed", summary.trialsFailed},
                    {"exhausted", summary.exhausted},
                    {"strategy", sc["strategy"]},
                    {"tokens", summary.tokens},
                    {"token_budget", so.tokenBudget},
                    {"token_budget_reached", summary.tokenBudgetReached},
                    {"variant_cache", variantCache}};
        if (!errorTable.is_null())
            out["unit_errors"] = errorTable;
        const json chosen = chosenMap(cx.store, cx.runId);
        out["chosen"] = chosen;
        if (!chosen.is_null() && stageId > 0) {
            const fs::path file = cx.workdir / "chosen-map.json";
            PrecisionMap::fromJson(chosen["map"]).save(file);
            cx.store.addArtifact(cx.runId, stageId, "precision-map", file);
        }
        return out;
    });
}

// Recovery fine-tuning of the chosen map; the adapter directory is <workdir>/adapter.
fs::path finetuneStage(Context& cx, const std::string& modelPath, const Tokenizer& tok, const PrecisionMap& map)
{
    const json& fc = cx.config["finetune"];
    const fs::path dir = cx.workdir / "adapter";
    runStage(cx, "finetune", fc, [&](int64_t stageId) {
        finetune::RecoveryOptions o = recoveryOptions(fc, cx);
        o.train.padId = std::max(0, tok.eosId());
        o.outDir = dir;
        o.baseModel = modelPath;
        // An interrupted attempt left a checkpoint: continue it rather than start over.
        o.resume = fs::exists(dir / "checkpoint" / "trainer_state.json");
        auto m = loadFor(cx, modelPath);
        const auto r = finetune::runRecovery(*m, map, tok, o, cx.progress, cx.cancel);
        if (r.train.cancelled)
            throw CancelledError();
        cx.store.addArtifact(cx.runId, stageId, "adapter", dir / finetune::kAdapterWeightsFile);
        cx.store.addArtifact(cx.runId, stageId, "training", dir / "training.json");
        if (fs::exists(dir / finetune::kAdapterBaseDir))
            cx.store.addArtifact(cx.runId, stageId, "base", dir / finetune::kAdapterBaseDir);
        json out = r.toJson();
        out["data"]["file"] = o.dataFile.string();
        return out;
    });
    return dir;
}

json evaluateStage(Context& cx, const std::string& modelPath, const Tokenizer& tok, const PrecisionMap& map,
                   const fs::path& adapter)
{
    const json& ec = cx.config["evaluate"];
    return runStage(cx, "evaluate", ec, [&](int64_t) {
        std::unique_ptr<model::LlamaModel> m;
        if (adapter.empty()) {
            m = loadFor(cx, modelPath);
            quant::quantizeModel(*m, map);
        } else {
            model::LoadOptions lo;
            lo.dtype = model::parseDtype(cx.config["dtype"]);
            m = finetune::loadModelWithAdapter(modelPath, adapter, lo);
        }
        const auto memory = memoryReport(m->config(), map);
        json out = {{"map", map.toJson()}, {"memory", {{"total_bytes", memory.totalBytes},
                                                        {"linear_bits_per_weight", memory.linearBitsPerWeight}}}};
        if (!adapter.empty())
            out["adapter"] = adapter.string();
        out["ppl"] = json::array();
        for (const auto& slice : ec["ppl"]) {
            const at::Tensor w = textWindows(slice, true, tok, cx.dataDir);
            eval::PerplexityOptions po;
            po.seqLen = slice["seq_len"];
            std::vector<int32_t> stream(w.data_ptr<int64_t>(), w.data_ptr<int64_t>() + w.numel());
            const auto r = eval::evaluatePerplexity(*m, stream, po, {}, cx.cancel);
            out["ppl"].push_back({{"source", slice["source"]}, {"windows", r.windows}, {"ppl", r.ppl},
                                  {"mean_nll", r.meanNll}});
        }
        out["tasks"] = json::array();
        for (const auto& t : ec["tasks"]) {
            const std::string name = t;
            const auto set = eval::loadTaskSet(name, eval::taskFile(name, cx.dataDir / "eval"),
                                               ec["task_limit"].get<int64_t>());
            const auto r = eval::evaluateTask(*m, tok, set, {}, {}, cx.cancel);
            out["tasks"].push_back({{"task", name}, {"items", r.items}, {"acc", r.acc}, {"acc_norm", r.accNorm}});
        }
        return out;
    });
}

RunOutcome execute(Context& cx)
{
    const internal::RunComputeScope compute(cx.config);
    // Workers share the cores: without --threads, each gets hardware / workers intra-op threads.
    int threads = cx.options.threads;
    const int workers = cx.options.workers > 0 ? cx.options.workers
                        : cx.config["search"].is_null() ? 1
                                                        : cx.config["search"]["workers"].get<int>();
    if (threads <= 0 && workers > 1)
        threads = std::max(1, int(std::thread::hardware_concurrency()) / workers);
    model::setIntraOpThreads(threads);
    try {
        fs::create_directories(cx.workdir);
        const auto tok = loadTokenizer(cx.config["tokenizer"].get<std::string>());
        std::string modelPath = cx.config["model"];
        if (!cx.config["prune"].is_null())
            modelPath = pruneStage(cx, *tok);
        const ImportanceScores scores = importanceStage(cx, modelPath, *tok);
        const ModelConfig config = inspectModel(modelPath).config; // the header only, no weights
        const AllocationProblem problem = allocationProblem(cx, config, scores);
        const AllocationOptions ao = allocationOptions(cx);
        const AllocationResult allocation = allocate(problem, ao);
        runStage(cx, "allocate", cx.config["allocate"], [&](int64_t stageId) {
            const fs::path file = cx.workdir / "initial-map.json";
            allocation.best.map.save(file);
            cx.store.addArtifact(cx.runId, stageId, "precision-map", file);
            json r = allocation.toJson();
            r.erase("samples");
            return r;
        });
        PrecisionMap chosen = allocation.best.map;
        if (!cx.config["search"].is_null()) {
            const SpaceBuilder sb(problem, allocation, cx.config["search"]["granularity"], scores,
                                  cx.config["importance"]["metric"]);
            const json r = searchStage(cx, modelPath, *tok, sb);
            if (!r["chosen"].is_null())
                chosen = PrecisionMap::fromJson(r["chosen"]["map"]);
        }
        if (cx.join)
            return RunOutcome{cx.runId, cx.results};
        fs::path adapter;
        if (!cx.config["finetune"].is_null())
            adapter = finetuneStage(cx, modelPath, *tok, chosen);
        if (!cx.config["evaluate"].is_null())
            evaluateStage(cx, modelPath, *tok, chosen, adapter);
        cx.store.setRunStatus(cx.runId, store::RunStatus::Done);
    } catch (const CancelledError&) {
        if (!cx.join) // a worker leaving does not end the study
            cx.store.setRunStatus(cx.runId, store::RunStatus::Cancelled, "cancelled");
        throw;
    } catch (const std::exception& e) {
        if (!cx.join)
            cx.store.setRunStatus(cx.runId, store::RunStatus::Failed, e.what());
        throw;
    }
    return RunOutcome{cx.runId, cx.results};
}

// Beside the SQLite file; for a PostgreSQL store, under the directory the run was started from (on a cluster, a
// shared file system the workers see too).
fs::path defaultWorkdir(const store::Store& store, int64_t runId)
{
    const fs::path base = store.isServer() ? fs::current_path() : fs::absolute(store.path()).parent_path();
    return base / (store.databaseName() + "-runs") / ("run-" + std::to_string(runId));
}

} // namespace

RunOutcome startRun(store::Store& store, const json& config, const RunOptions& options,
                    const ProgressSink& progress, const CancelToken* cancel)
{
    store::RunRecord rec;
    rec.experimentId = store.experimentId(config["experiment"]);
    rec.kind = options.kind;
    rec.name = config["name"];
    rec.baseModel = config["model"];
    rec.config = config;
    const int64_t id = store.createRun(rec);
    if (config["workdir"].get<std::string>().empty()) {
        json c = config;
        c["workdir"] = defaultWorkdir(store, id).string();
        store.setRunConfig(id, c);
    }
    const store::RunRecord run = store.run(id);
    if (options.onRunCreated)
        options.onRunCreated(id);
    Context cx{store, id, run.config, run.config["workdir"].get<std::string>(), fs::path(), options, progress,
               cancel, {}};
    cx.dataDir = run.config["data_dir"].get<std::string>();
    return execute(cx);
}

RunOutcome resumeRun(store::Store& store, int64_t runId, const RunOptions& options, const ProgressSink& progress,
                     const CancelToken* cancel)
{
    const store::RunRecord run = store.run(runId);
    store.reclaimTrials(runId);
    auto stages = store.stages(runId);
    for (const auto& s : stages)
        if (s.status == store::RunStatus::Running)
            store.finishStage(s.id, store::RunStatus::Failed, json::object(), s.seconds, "interrupted");
    store.setRunStatus(runId, store::RunStatus::Running);
    Context cx{store, runId, run.config, run.config["workdir"].get<std::string>(), fs::path(), options, progress,
               cancel, store.stages(runId)};
    cx.dataDir = run.config["data_dir"].get<std::string>();
    return execute(cx);
}

WorkerOutcome joinSearch(store::Store& store, int64_t runId, const WorkerOptions& options, const ProgressSink& progress,
                         const CancelToken* cancel)
{
    const store::RunRecord run = store.run(runId);
    const std::string what = "run " + std::to_string(runId);
    if (!run.config.contains("search") || run.config["search"].is_null())
        throw ConfigError(what + " has no search to join");
    if (run.status == store::RunStatus::Done) { // a task of an array that started late: nothing left to do
        WorkerOutcome out;
        out.search = {{"trials_complete", run.trialsComplete}, {"run_done", true}};
        return out;
    }
    if (run.status != store::RunStatus::Running)
        throw ConfigError(what + " is " + store::runStatusName(run.status) + ": there is no running search to join");
    // Everything the search reads must be on this host too (a cluster node without the shared file system).
    auto need = [&](const std::string& path, const std::string& role) {
        if (!path.empty() && !fs::exists(path))
            throw ConfigError(what + ": this host lacks " + path + " (the run's " + role + ")");
    };
    need(run.config["model"], "model");
    need(run.config["tokenizer"], "tokenizer");
    need(run.config["data_dir"], "data directory");
    for (const auto& st : store.stages(runId))
        if (st.name == "prune" && st.status == store::RunStatus::Done && st.result.contains("checkpoint"))
            need(st.result["checkpoint"], "pruned checkpoint");
    RunOptions ro;
    ro.workers = options.workers;
    ro.threads = options.threads;
    ro.heartbeatSeconds = options.heartbeatSeconds;
    ro.staleSeconds = options.staleSeconds;
    Context cx{store, runId, run.config, run.config["workdir"].get<std::string>(), fs::path(), ro, progress,
               cancel, store.stages(runId)};
    cx.dataDir = run.config["data_dir"].get<std::string>();
    cx.join = true;
    cx.maxTrials = options.maxTrials;
    const RunOutcome outcome = execute(cx);
    WorkerOutcome out;
    out.evaluated = cx.evaluated;
    out.search = outcome.result.contains("search") ? outcome.result["search"] : json();
    return out;
}

store::TrialRecord evaluateMap(store::Store& store, int64_t runId, const json& mapJson, const ProgressSink& progress,
                               const CancelToken* cancel)
{
    const store::RunRecord run = store.run(runId);
    const std::string what = "evaluate map in run " + std::to_string(runId);
    if (!run.config.contains("search") || run.config["search"].is_null())
        throw ConfigError(what + ": the run has no search stage (its trials are what a map is compared with)");
    const internal::RunComputeScope compute(run.config);
    Context cx{store, runId, run.config, run.config["workdir"].get<std::string>(), fs::path(), RunOptions{},
               progress, cancel, {}};
    cx.dataDir = run.config["data_dir"].get<std::string>();

    // The model the run's maps apply to: the pruned checkpoint when the run prunes.
    const std::string modelPath = internal::runModelPath(store, runId, what);
    const PrecisionMap map = PrecisionMap::fromJson(mapJson);
    const ModelConfig config = inspectModel(modelPath).config;
    map.validate(config);
    const MemoryReport memory = memoryReport(config, map);
    const MemoryBudget budget = parseBudget(run.config["allocate"]["budget"].get<std::string>());
    const int64_t bf16Total = memoryReport(config, PrecisionMap(QuantSpec{QuantKind::BF16, 0, false})).totalBytes;

    store::TrialRecord rec;
    const std::string canonical = map.toJson().dump();
    rec.encoding = "manual:" + io::sha256Hex(canonical);
    rec.map = map.toJson();
    rec.source = search::kManualTrialSource;
    rec.memoryBytes = memory.totalBytes;
    rec.budgetedBytes = budgeted(memory, budget.unit);
    std::optional<store::TrialRecord> claimed = store.claimTrial(runId, rec, 0);
    if (!claimed) { // the same map is complete (reuse it) or being evaluated
        for (const auto& t : store.trialSummaries(runId))
            if (t.encoding == rec.encoding && t.state != store::TrialState::Failed) {
                if (t.state == store::TrialState::Complete)
                    return store.trial(runId, t.number);
                throw Error(what + ": this map is being evaluated already (trial " + std::to_string(t.number) + ")");
            }
        throw Error(what + ": the store refused the trial");
    }
    report(progress, "evaluate-map", 0, 1, "trial " + std::to_string(claimed->number));
    try {
        const auto tok = loadTokenizer(run.config["tokenizer"].get<std::string>());
        TrialSetup setup;
        prepareTrials(setup, cx, *tok);
        search::TrialEvaluator evaluator(loadFor(cx, modelPath), map, setup.windows, setup.options);
        search::EvaluationResult r = evaluator.evaluate(map, 1.0, cancel);
        if (!std::isfinite(r.objective))
            throw Error("the objective is not finite (" + std::to_string(r.objective) + ")");
        claimed->objective = r.objective;
        claimed->metrics = std::move(r.metrics);
        claimed->metrics["memory"] = memoryJson(memory, bf16Total);
        claimed->secondsQuantize = r.secondsQuantize;
        claimed->secondsEvaluate = r.secondsEvaluate;
        store.completeTrial(*claimed);
    } catch (const CancelledError&) {
        store.failTrial(claimed->id, "cancelled");
        throw;
    } catch (const std::exception& e) {
        store.failTrial(claimed->id, e.what());
        throw;
    }
    report(progress, "evaluate-map", 1, 1, "trial " + std::to_string(claimed->number));
    return store.trial(runId, claimed->number);
}

json chosenMap(const store::Store& store, int64_t runId, const std::string& budgetText)
{
    const store::RunRecord run = store.run(runId);
    const std::string text = budgetText.empty() ? run.config["allocate"]["budget"].get<std::string>() : budgetText;
    const MemoryBudget budget = parseBudget(text);
    const auto trials = store.trials(runId);
    const store::TrialRecord* best = nullptr;
    for (const auto& t : trials) {
        if (t.state != store::TrialState::Complete || !t.objective || t.fidelity < 1) // full-fidelity scores only
            continue;
        const json& mem = t.metrics.contains("memory") ? t.metrics["memory"] : json::object();
        bool fits = false;
        switch (budget.unit) {
        case BudgetUnit::Bytes: fits = double(t.memoryBytes) <= budget.value; break;
        case BudgetUnit::BitsPerWeight:
            fits = mem.contains("linear_bits_per_weight") &&
                   mem["linear_bits_per_weight"].get<double>() <= budget.value + 1e-12;
            break;
        case BudgetUnit::Fraction:
            fits = mem.contains("bf16_fraction") && mem["bf16_fraction"].get<double>() <= budget.value + 1e-12;
            break;
        }
        if (fits && (!best || *t.objective < *best->objective ||
                     (*t.objective == *best->objective && t.memoryBytes < best->memoryBytes)))
            best = &t;
    }
    if (!best)
        return nullptr;
    return {{"trial", best->number}, {"objective", *best->objective}, {"memory_bytes", best->memoryBytes},
            {"budget", budget.text()}, {"metrics", best->metrics}, {"map", best->map}};
}

// ---------------------------------------------------------------------------------------------------------------
// What the trial actions (trial_actions.cpp) share with the pipeline.

namespace internal {

search::SearchOptions searchOptions(const json& sc)
{
    search::SearchOptions so;
    so.trials = sc.value("trials", 40);
    so.strategy = search::parseStrategy(sc.value("strategy", std::string("bayes")));
    so.tokenBudget = sc.value("token_budget", int64_t(0));
    if (sc.contains("fidelities"))
        so.fidelities = sc["fidelities"].get<std::vector<double>>();
    if (sc.contains("ap_slopes"))
        so.apSlopes = sc["ap_slopes"].get<std::vector<double>>();
    if (sc.contains("evopress")) {
        const json& e = sc["evopress"];
        so.evopress.offspring = e.value("offspring", 16);
        if (e.contains("fidelities"))
            so.evopress.fidelities = e["fidelities"].get<std::vector<double>>();
        if (e.contains("survivors"))
            so.evopress.survivors = e["survivors"].get<std::vector<int>>();
        so.evopress.maxSwitches = e.value("max_switches", 3);
    }
    if (sc.contains("nsga2")) {
        const json& g = sc["nsga2"];
        so.nsga2.population = g.value("population", 16);
        so.nsga2.prefilter = g.value("prefilter", 4);
        so.nsga2.mutation = g.value("mutation", 0.0);
    }
    so.parEgo = sc.value("par_ego", true);
    so.gpRestarts = sc.value("gp_restarts", 2);
    so.poolSamples = sc.value("pool_samples", 64);
    so.poolRandom = sc.value("pool_random", 64);
    so.poolTwoEdits = sc.value("pool_two_edits", 256);
    return so;
}

finetune::RecoveryOptions recoveryOptions(const json& fc, const fs::path& dataDir, uint64_t seed)
{
    finetune::RecoveryOptions o;
    o.dataFile = prune::calibrationSourceFile(fc["data"], dataDir);
    const std::string format = fc["format"];
    o.data.format = finetune::parseDataFormat(!format.empty()                 ? format
                                              : o.dataFile.extension() == ".json" ? "alpaca"
                                                                                  : "text");
    o.data.seqLen = fc["seq_len"];
    o.data.validationFraction = fc["val_fraction"];
    o.data.maxExamples = fc["max_examples"];
    o.data.trainOnInputs = fc["train_on_inputs"];
    o.data.seed = seed;
    o.lora.rank = fc["rank"];
    o.lora.dropout = fc["dropout"];
    o.lora.targets = fc["targets"].get<std::vector<std::string>>();
    o.alpha = fc["alpha"];
    o.init.init = finetune::parseLoraInit(fc["init"]);
    o.init.loftqIterations = fc["loftq_iter"];
    o.train.steps = fc["steps"];
    o.train.epochs = fc["epochs"];
    o.train.batchSize = fc["batch_size"];
    o.train.microBatch = fc["micro_batch"];
    o.train.lr = fc["lr"];
    o.train.weightDecay = fc["weight_decay"];
    o.train.warmupSteps = fc["warmup"];
    o.train.schedule = finetune::parseLrSchedule(fc["schedule"]);
    o.train.maxGradNorm = fc["max_grad_norm"];
    o.train.evalEvery = fc["eval_every"];
    o.train.saveEvery = fc["save_every"];
    o.train.maxValidationExamples = fc["max_val"];
    o.train.seed = seed;
    o.merge = fc["merge"];
    return o;
}

// `windows` consecutive windows of seq_len tokens after skipping `skip` windows: [N, T] int64.
at::Tensor textWindows(const json& slice, bool evaluation, const Tokenizer& tok, const fs::path& dataDir)
{
    const fs::path file = textSourceFile(slice["source"], evaluation, dataDir);
    const auto stream = tok.encode(io::readUtf8File(file));
    const int64_t T = slice["seq_len"], N = slice["windows"], skip = slice["skip"];
    const int64_t available = int64_t(stream.size()) / T - skip;
    if (available < N)
        throw ConfigError(file.string() + ": " + std::to_string(stream.size()) + " tokens hold " +
                          std::to_string(std::max<int64_t>(available, 0)) + " windows of " + std::to_string(T) +
                          " after skipping " + std::to_string(skip) + ", " + std::to_string(N) + " asked for");
    at::Tensor t = at::empty({N, T}, at::kLong);
    auto* d = t.data_ptr<int64_t>();
    for (int64_t i = 0; i < N * T; ++i)
        d[i] = stream[size_t(skip * T + i)];
    return t;
}

json normalizedFinetune(const json& fc, bool trial, const fs::path& dataDir, const std::string& path)
{
    json c = fc.is_null() ? json::object() : fc;
    if (!c.is_object())
        throw ConfigError(path + ": expected an object");
    normalizeFinetune(Node{&c, path}, trial, fs::current_path(), dataDir);
    return c;
}

json normalizedEvaluate(const json& ec, std::initializer_list<const char*> extra, const fs::path& dataDir,
                        const std::string& path)
{
    json c = ec.is_null() ? json::object() : ec;
    if (!c.is_object())
        throw ConfigError(path + ": expected an object");
    normalizeEvaluate(Node{&c, path}, extra, fs::current_path(), dataDir);
    return c;
}

RunComputeScope::RunComputeScope(const json& config)
    : RunComputeScope(config.is_object() ? config.value("compute_dtype", "auto") : std::string("auto"))
{
}

RunComputeScope::RunComputeScope(const std::string& setting)
{
    if (const auto forced = model::parseComputeDtype(pipeline::computeDtypeSetting(setting)))
        scope_.emplace(forced);
}

std::string runModelPath(const store::Store& store, int64_t runId, const std::string& what)
{
    const store::RunRecord run = store.run(runId);
    if (run.config["prune"].is_null())
        return run.config["model"];
    std::string path;
    for (const auto& st : store.stages(runId))
        if (st.name == "prune" && st.status == store::RunStatus::Done && st.result.contains("checkpoint"))
            path = st.result["checkpoint"];
    if (path.empty())
        throw ConfigError(what + ": the run has not finished pruning yet");
    return path;
}

} // namespace internal

} // namespace qpruner::pipeline
