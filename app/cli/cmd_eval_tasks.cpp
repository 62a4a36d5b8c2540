// qpruner eval-tasks MODEL --tasks ...: zero-shot multiple-choice accuracy (protocol in README).
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "eval/multiple_choice.h"
#include "quant/model_quantizer.h"

namespace qpruner::cli {

int runEvalTasks(const Args& args)
{
    ArgParser p("eval-tasks",
                "Zero-shot multiple choice as lm-evaluation-harness scores it: the summed log-probability of\n"
                "\" \" + choice given the context; acc = argmax of the sum, acc_norm = argmax of the sum divided by\n"
                "the continuation's UTF-8 byte length.");
    p.positional("MODEL", "checkpoint file or directory");
    addTokenizerOption(p);
    addModelOptions(p);
    addAdapterOption(p);
    p.option("map", "FILE", "apply this precision map to the (dense) model before scoring");
    p.option("format", "F", "apply one format to every decoder linear before scoring (as --map)");
    p.option("tasks", "LIST", "comma-separated: boolq,piqa,hellaswag,winogrande,arc_easy,arc_challenge,"
                              "openbookqa,social_i_qa or 'all'", "all");
    p.option("eval-dir", "DIR", "directory holding <task>/icl.jsonl and hellaswag/val_1000.jsonl "
                                "(default: $QPRUNER_SHARED_DATA/eval or ../shared/data/eval)");
    p.option("task-file", "PATH", "score this jsonl file instead (name taken from --tasks, one task)");
    p.option("limit", "N", "score only the first N items of each task (-1: all)", "-1");
    p.option("batch-size", "N", "sequences per forward pass", "8");
    p.flag("per-item", "include per-item choice scores in --json output");
    p.flag("json", "print one JSON object");
    p.example("qpruner eval-tasks ../shared/data/models/stories260K/stories260K.bin "
              "--tokenizer ../shared/data/models/stories260K/tok512.model --tasks piqa,arc_easy --limit 200");
    addStoreOptions(p);
    if (!p.parse(args))
        return 0;
    recordStage(p, "eval-tasks", [&](StageSink&) -> nlohmann::json {
        const int64_t limit = p.getInt64("limit");
        const int batchSize = p.getInt("batch-size");
        std::vector<std::string> tasks;
        if (p.get("tasks") == "all") {
            tasks = eval::knownTasks();
        } else {
            std::stringstream ss(p.get("tasks"));
            std::string t;
            while (std::getline(ss, t, ','))
                if (!t.empty())
                    tasks.push_back(t);
        }
        if (p.find("task-file") && tasks.size() != 1)
            throw UsageError("--task-file needs exactly one task name in --tasks");
        const std::filesystem::path evalDir = p.find("eval-dir") ? std::filesystem::path(p.get("eval-dir"))
                                                                 : sharedDataDir() / "eval";
        // Resolve and read every task before loading the model, so a typo fails fast.
        std::vector<eval::TaskSet> sets;
        for (const auto& t : tasks) {
            const auto file =
                p.find("task-file") ? std::filesystem::path(p.get("task-file")) : eval::taskFile(t, evalDir);
            sets.push_back(eval::loadTaskSet(t, file, limit));
        }
        const auto model = loadModelOrAdaptedFromArgs(p);
        if (!p.find("adapter") && (p.find("map") || p.find("format")))
            quant::quantizeModel(*model, precisionMapFromArgs(p));
        const auto tok = loadTokenizerFromArgs(p);
        eval::MultipleChoiceOptions o;
        o.batchSize = batchSize;
        const bool json = p.isSet("json");
        nlohmann::json out = {
            {"model", p.get("MODEL")},
            {"adapter", p.find("adapter") ? nlohmann::json(p.get("adapter")) : nlohmann::json()},
            {"limit", p.getInt64("limit")}, {"tasks", nlohmann::json::object()}};
        double sumAcc = 0, sumNorm = 0;
        for (const auto& set : sets) {
            ProgressLine line;
            const auto r = eval::evaluateTask(*model, *tok, set, o, line.sink(), &signalCancelToken());
            line.finish();
            sumAcc += r.acc;
            sumNorm += r.accNorm;
            nlohmann::json tj = {{"items", r.items}, {"acc", r.acc}, {"acc_stderr", r.accStderr},
                                 {"acc_norm", r.accNorm}, {"acc_norm_stderr", r.accNormStderr}, {"seconds", r.seconds},
                                 {"file", set.file.string()}};
            if (p.isSet("per-item")) {
                nlohmann::json items = nlohmann::json::array();
                for (const auto& it : r.perItem) {
                    nlohmann::json scores = nlohmann::json::array();
                    for (const auto& c : it.choices)
                        scores.push_back({{"logprob", c.logprob}, {"context_tokens", c.contextTokens},
                                          {"continuation_tokens", c.continuationTokens}, {"truncated", c.truncated}});
                    items.push_back({{"gold", it.gold}, {"pred", it.predicted}, {"pred_norm", it.predictedNorm},
                                     {"choices", scores}});
                }
                tj["per_item"] = items;
            }
            out["tasks"][set.name] = tj;
            if (!json)
                std::printf("%-14s n=%-5lld acc %.4f ± %.4f   acc_norm %.4f ± %.4f   (%.1f s)\n", set.name.c_str(),
                            static_cast<long long>(r.items), r.acc, r.accStderr, r.accNorm, r.accNormStderr, r.seconds);
        }
        const double n = static_cast<double>(sets.size());
        out["average"] = {{"acc", sumAcc / n}, {"acc_norm", sumNorm / n}};
        out["compute"] = computeJson(*model);
        if (json)
            printJson(out);
        else
            std::printf("%-14s         acc %.4f            acc_norm %.4f\n", "average", sumAcc / n, sumNorm / n);
        return out;
    });
    return 0;
}

} // namespace qpruner::cli
