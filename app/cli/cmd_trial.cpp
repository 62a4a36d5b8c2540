// qpruner trial recover|evaluate|export|generate --db F --run N --trial K: the studio's trial actions from the
// command line (qpruner/trial_actions.h), each recorded as a stage of the search run.
#include <cstdio>
#include <iostream>

#include "cli_context.h"
#include "commands.h"
#include "export_report.h"
#include "progress_line.h"
#include "io/file_bytes.h"
#include "qpruner/store.h"
#include "qpruner/trial_actions.h"

namespace qpruner::cli {

namespace {

void addTarget(ArgParser& p)
{
    p.option("db", "FILE", "experiment store");
    p.option("run", "N", "search run");
    p.option("trial", "K", "trial number (see `qpruner pareto --all`)");
}

// Inline JSON, or @FILE.
nlohmann::json jsonArg(const ArgParser& p, const std::string& name)
{
    const auto v = p.find(name);
    if (!v)
        return nlohmann::json::object();
    const std::string text = !v->empty() && (*v)[0] == '@' ? io::readUtf8File(v->substr(1)) : *v;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw UsageError("--" + name + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object())
        throw UsageError("--" + name + ": expected a JSON object of keys to override");
    return j;
}

int recover(const Args& args)
{
    ArgParser p("trial recover",
                "Recovery fine-tune (LoftQ or LoRA) of one trial's precision map. Settings start from the trial's last\n"
                "recovery, else the run's `finetune`, else the defaults; --finetune overrides any key of it (README:\n"
                "Run configs). --resume continues a cancelled or failed one from its checkpoint, same settings.\n"
                "The adapter goes to <workdir>/trials/trial-K/adapter; the stage `trial-recover` records it.");
    addTarget(p);
    p.option("finetune", "JSON", "keys of the `finetune` object to override, inline or @FILE, e.g. '{\"steps\": 50}'");
    p.option("steps", "N", "optimizer steps (overrides finetune.steps)");
    p.flag("resume", "continue the checkpoint a cancelled or failed recovery of this trial left");
    p.flag("json", "print the stage's result as one JSON object");
    if (!p.parse(args))
        return 0;
    store::Store st(p.get("db"));
    const int64_t run = p.getInt64("run");
    const int trial = p.getInt("trial");
    nlohmann::json fc = pipeline::recoveryDefaults(st, run, trial);
    const nlohmann::json overrides = jsonArg(p, "finetune");
    for (const auto& [k, v] : overrides.items())
        fc[k] = v;
    if (p.find("steps"))
        fc["steps"] = p.getInt("steps");
    ProgressLine line;
    const nlohmann::json r =
        pipeline::recoverTrial(st, run, trial, fc, p.isSet("resume"), line.sink(), &signalCancelToken());
    line.finish();
    if (p.isSet("json")) {
        printJson(r);
    } else {
        std::printf("trial %d recovered: %lld steps, best validation loss %s, adapter %s\n", trial,
                    static_cast<long long>(r["train"].value("steps", 0)),
                    r["train"].contains("best_validation_loss") ? r["train"]["best_validation_loss"].dump().c_str() : "-",
                    r["adapter_dir"].get<std::string>().c_str());
    }
    return 0;
}

int evaluate(const Args& args)
{
    ArgParser p("trial evaluate",
                "Perplexity slices and zero-shot tasks of one trial (its map, plus its adapter once recovered).\n"
                "Settings start from the run's `evaluate` (else one tinystories slice, no tasks).");
    addTarget(p);
    p.option("evaluate", "JSON", "keys of the `evaluate` object to override, inline or @FILE");
    p.option("tasks", "LIST", "comma-separated tasks (overrides evaluate.tasks; 'none' for none)");
    p.option("limit", "N", "items per task (overrides evaluate.task_limit)");
    p.option("batch-size", "N", "sequences per forward pass for the tasks", "8");
    p.flag("no-adapter", "score the quantized map alone even when the trial was recovered");
    p.flag("json", "print the stage's result as one JSON object");
    if (!p.parse(args))
        return 0;
    store::Store st(p.get("db"));
    const int64_t run = p.getInt64("run");
    const int trial = p.getInt("trial");
    nlohmann::json ec = pipeline::evaluationDefaults(st, run);
    const nlohmann::json overrides = jsonArg(p, "evaluate");
    for (const auto& [k, v] : overrides.items())
        ec[k] = v;
    if (const auto t = p.find("tasks"))
        ec["tasks"] = *t == "none" ? std::vector<std::string>{} : splitList(*t);
    if (p.find("limit"))
        ec["task_limit"] = p.getInt64("limit");
    ec["batch_size"] = p.getInt("batch-size");
    ec["adapter"] = !p.isSet("no-adapter");
    ProgressLine line;
    const nlohmann::json r = pipeline::evaluateTrial(st, run, trial, ec, line.sink(), &signalCancelToken());
    line.finish();
    if (p.isSet("json")) {
        printJson(r);
        return 0;
    }
    std::printf("trial %d%s\n", trial, r["adapter"].is_null() ? "" : " (with its recovered adapter)");
    for (const auto& s : r["ppl"])
        std::printf("ppl %-12s %6lld windows   %.4f\n", s["source"].get<std::string>().c_str(),
                    static_cast<long long>(s["windows"].get<int64_t>()), s["ppl"].get<double>());
    for (const auto& t : r["tasks"])
        std::printf("%-14s n=%-5lld acc %.4f ± %.4f   acc_norm %.4f ± %.4f\n", t["task"].get<std::string>().c_str(),
                    static_cast<long long>(t["items"].get<int64_t>()), t["acc"].get<double>(),
                    t["acc_stderr"].get<double>(), t["acc_norm"].get<double>(), t["acc_norm_stderr"].get<double>());
    return 0;
}

int exportTrial(const Args& args)
{
    ArgParser p("trial export",
                "One trial as a GGUF file (--to gguf) or a Hugging Face directory (--to hf), its recovered adapter\n"
                "merged (unless --no-merge): the bytes of `qpruner export` on the same model, map or adapter and\n"
                "tokenizer. --dry-run prints every tensor's type and the exact size and records nothing.");
    addTarget(p);
    p.option("to", "gguf|hf", "output kind", "gguf");
    p.option("out", "PATH", "output file (gguf) or directory (hf)");
    p.option("nf4-type", "T", "GGUF type for nf4 weights: iq4_nl or q4_0", "iq4_nl");
    p.option("dtype", "D", "hf: output dtype bf16, fp16 or fp32");
    p.option("name", "TEXT", "gguf: general.name (default: run name or run-N, and the trial)");
    p.flag("pad-uniform", "hf: zero-pad a pruned model's layers to one shape");
    p.flag("no-merge", "export the quantized map alone even when the trial was recovered");
    p.flag("strict", "treat every warning as an error");
    p.flag("dry-run", "print the plan; write nothing");
    p.flag("json", "print the plan as one JSON object");
    if (!p.parse(args))
        return 0;
    store::Store st(p.get("db"));
    const int64_t run = p.getInt64("run");
    const int trial = p.getInt("trial");
    ExportOptions o;
    o.target = parseExportTarget(p.get("to"));
    if (const auto out = p.find("out"))
        o.out = *out;
    else if (!p.isSet("dry-run"))
        throw UsageError("--out is required (or --dry-run)");
    o.nf4Type = p.get("nf4-type");
    if (const auto d = p.find("dtype"))
        o.dtype = *d;
    if (const auto n = p.find("name"))
        o.name = *n;
    o.padUniform = p.isSet("pad-uniform");
    o.strict = p.isSet("strict");
    const bool merge = !p.isSet("no-merge");
    const bool dryRun = p.isSet("dry-run");
    ProgressLine line(!dryRun);
    const ExportPlan plan = dryRun ? pipeline::planTrialExport(st, run, trial, o, merge)
                                   : pipeline::exportTrial(st, run, trial, o, merge, line.sink(), &signalCancelToken());
    line.finish();
    if (p.isSet("json"))
        printJson(exportReportJson(plan, dryRun));
    else
        printExportReport(plan, dryRun, o.out.empty() ? std::string("(no --out)") : o.out.string());
    return 0;
}

int generate(const Args& args)
{
    ArgParser p("trial generate",
                "Text from one trial's model (its map, plus its adapter once recovered) and, beside it, from the\n"
                "run's uncompressed model with the same prompt, seed and temperature (the ids of `qpruner generate`).");
    addTarget(p);
    p.option("prompt", "TEXT", "prompt text (BOS is always prepended)", "");
    p.option("steps", "N", "positions to run, BOS and prompt included", "64");
    p.option("temperature", "T", "0 for greedy", "0");
    p.option("top-p", "P", "nucleus sampling threshold", "0.9");
    p.option("seed", "N", "random seed for sampling", "0");
    p.flag("no-base", "skip the uncompressed model");
    p.flag("no-adapter", "without the trial's recovered adapter");
    p.flag("json", "print the stage's result as one JSON object");
    if (!p.parse(args))
        return 0;
    store::Store st(p.get("db"));
    pipeline::TrialGenerateRequest rq;
    rq.prompt = p.find("prompt").value_or("");
    rq.steps = p.getInt("steps");
    rq.temperature = p.getDouble("temperature");
    rq.topP = p.getDouble("top-p");
    rq.seed = static_cast<uint64_t>(p.getInt64("seed"));
    rq.base = !p.isSet("no-base");
    rq.adapter = !p.isSet("no-adapter");
    const nlohmann::json r =
        pipeline::generateTrial(st, p.getInt64("run"), p.getInt("trial"), rq, {}, &signalCancelToken());
    if (p.isSet("json")) {
        printJson(r);
        return 0;
    }
    std::cout << "--- compressed (trial " << p.get("trial") << ")\n" << r["compressed"]["text"].get<std::string>() << "\n";
    if (!r["base"].is_null())
        std::cout << "--- base\n" << r["base"]["text"].get<std::string>() << "\n";
    return 0;
}

} // namespace

int runTrial(const Args& args)
{
    const std::string usage = "usage: qpruner trial recover|evaluate|export|generate --db FILE --run N --trial K "
                              "[options] (--help after the action for its options)";
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << usage << "\n";
        return args.empty() ? 2 : 0;
    }
    const Args rest(args.begin() + 1, args.end());
    if (args[0] == "recover")
        return recover(rest);
    if (args[0] == "evaluate")
        return evaluate(rest);
    if (args[0] == "export")
        return exportTrial(rest);
    if (args[0] == "generate")
        return generate(rest);
    throw UsageError("unknown action '" + args[0] + "': expected recover, evaluate, export or generate");
}

} // namespace qpruner::cli
