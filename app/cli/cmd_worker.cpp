// qpruner worker --db URL --run N: one more process evaluating trials of a running search (on this machine or
// another one that reaches the same store); qpruner slurm-script: an sbatch script for a job array of them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <iostream>
#include <regex>

#include "cli_context.h"
#include "commands.h"
#include "progress_line.h"
#include "qpruner/pipeline.h"
#include "qpruner/error.h"
#include "qpruner/store.h"

namespace qpruner::cli {

int runWorker(const Args& args)
{
    ArgParser p("worker",
                "Joins the running search of run N as one more worker process: the model, tokenizer and data come\n"
                "from the run's stored config (each path must exist on this host), and it evaluates trials until the\n"
                "study has all its trials (or --max-trials here), heartbeating so that the other workers take its\n"
                "trial back if it dies. SIGTERM (what Slurm sends before a time limit) puts its running trial back in\n"
                "the queue and exits 0. The store: an SQLite file on this machine, or postgresql://user@host/db (the\n"
                "password from ~/.pgpass or PGPASSWORD).");
    p.option("db", "URL", "experiment store (file or postgresql:// URL)");
    p.option("run", "N", "the run whose search to join");
    p.option("max-trials", "K", "evaluate at most K trials here, then leave (0: until the search is done)", "0");
    p.option("workers", "W", "search threads in this process", "1");
    p.option("threads", "T", "intra-op threads (default: cores / workers)", "0");
    p.option("heartbeat", "S", "seconds between heartbeats", "5");
    p.option("stale-after", "S", "seconds without a heartbeat after which a worker's trial is taken back", "60");
    p.option("wait", "S", "a run still before its search (pruning, importance): wait up to S seconds for it", "3600");
    p.flag("json", "print what this worker did as one JSON object");
    p.example("qpruner worker --db postgresql://me@dbhost/study --run 3");
    if (!p.parse(args))
        return 0;
    pipeline::WorkerOptions o;
    o.maxTrials = p.getInt("max-trials");
    o.workers = p.getInt("workers");
    o.threads = p.getInt("threads");
    o.heartbeatSeconds = p.getDouble("heartbeat");
    o.staleSeconds = p.getDouble("stale-after");
    if (o.maxTrials < 0 || o.workers < 1 || !(o.heartbeatSeconds > 0) || !(o.staleSeconds > o.heartbeatSeconds))
        throw UsageError("--max-trials >= 0, --workers >= 1, --heartbeat > 0 and --stale-after > --heartbeat");
    store::Store st(p.get("db"));
    const int64_t run = p.getInt64("run");
    const std::string me = store::Store::workerId();
    // An array submitted right after `qpruner run` starts before the run reaches its search: wait for it.
    const double waitSeconds = p.getDouble("wait");
    const auto waitStart = std::chrono::steady_clock::now();
    for (bool told = false;;) {
        const store::RunRecord r = st.run(run);
        const auto stages = st.stages(run);
        const bool searching = std::any_of(stages.begin(), stages.end(),
                                           [](const store::StageRecord& s) { return s.name == "search"; });
        if (searching || r.status != store::RunStatus::Running)
            break; // joinSearch says what to do with a run that is done, failed or has no search
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - waitStart).count() > waitSeconds)
            throw Error("run " + std::to_string(run) + " did not reach its search within " + p.get("wait") +
                        " s (its last stage: " + (stages.empty() ? std::string("none") : stages.back().name) + ")");
        if (!told) {
            std::fprintf(stderr, "worker %s: run %lld has not reached its search yet (%s); waiting\n", me.c_str(),
                         static_cast<long long>(run), stages.empty() ? "no stage yet" : stages.back().name.c_str());
            told = true;
        }
        if (signalCancelToken().isCancelled())
            return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::fprintf(stderr, "worker %s: joining run %lld of %s\n", me.c_str(), static_cast<long long>(run),
                 p.get("db").c_str());
    ProgressLine line;
    try {
        const pipeline::WorkerOutcome r = pipeline::joinSearch(st, run, o, line.sink(), &signalCancelToken());
        line.finish();
        if (p.isSet("json")) {
            printJson({{"worker", me}, {"run", run}, {"evaluated", r.evaluated}, {"search", r.search}});
        } else {
            std::printf("worker %s: evaluated %d trials of run %lld; the study has %s complete\n", me.c_str(),
                        r.evaluated, static_cast<long long>(run),
                        r.search.is_object() ? r.search.value("trials_complete", nlohmann::json(0)).dump().c_str()
                                             : "?");
        }
    } catch (const CancelledError&) {
        line.finish();
        // Slurm's SIGTERM before a time limit (or a user's Ctrl-C): the trial in flight was marked failed and is
        // proposed again as a retry by whichever worker goes on; leaving is this worker's normal end.
        std::fprintf(stderr, "worker %s: stopped by signal %d; its running trial goes back to the queue\n", me.c_str(),
                     cancellingSignal());
        return 0;
    }
    return 0;
}

int runSlurmScript(const Args& args)
{
    ArgParser p("slurm-script",
                "Prints an sbatch script that runs a Slurm job array of `qpruner worker` processes on run N: submit it\n"
                "with `sbatch` (after `qpruner run` has started the run, or while it runs). Each array task is one\n"
                "worker; Slurm's SIGTERM before the time limit (--signal) puts its trial back in the queue.");
    p.option("db", "URL", "experiment store every node reaches (postgresql://...; an SQLite file only on one node)");
    p.option("run", "N", "the run whose search the workers join");
    p.option("array", "SPEC", "array indices, e.g. 0-15 or 0-15%4", "0-3");
    p.option("time", "T", "time limit per task, e.g. 4:00:00", "4:00:00");
    p.option("gpus-per-task", "G", "GPUs per task (0: none)", "0");
    p.option("cpus-per-task", "C", "CPUs per task", "4");
    p.option("mem", "M", "memory per task, e.g. 32G");
    p.option("partition", "P", "partition");
    p.option("account", "A", "account");
    p.option("job-name", "NAME", "job name (default: qpruner-run-N)");
    p.option("max-trials", "K", "trials per worker at most (0: until the search is done)", "0");
    p.option("qpruner", "PATH", "the qpruner executable on the nodes (default: this one's absolute path)");
    p.option("signal-seconds", "S", "SIGTERM this many seconds before the time limit", "120");
    if (!p.parse(args))
        return 0;
    const std::string db = p.get("db");
    const int64_t run = p.getInt64("run");
    {
        // Refuse at once what the array would fail on: no such store or run, no search.
        const store::Store st(db);
        const store::RunRecord r = st.run(run);
        if (!r.config.contains("search") || r.config["search"].is_null())
            throw UsageError("run " + std::to_string(run) + " has no search for workers to join");
        if (!st.isServer())
            std::fprintf(stderr, "warning: %s is an SQLite file: every task must run on a node that sees it on a "
                                 "local disk (use a postgresql:// store for a cluster)\n", db.c_str());
    }
    auto check = [&](const std::string& name, const std::regex& re) {
        if (const auto v = p.find(name); v && !std::regex_match(*v, re))
            throw UsageError("--" + name + ": '" + *v + "' is not a valid value");
    };
    check("array", std::regex(R"(\d+(-\d+)?(:\d+)?(,\d+(-\d+)?(:\d+)?)*(%\d+)?)"));
    check("time", std::regex(R"((\d+-)?\d+(:\d{2}){0,2})"));
    check("gpus-per-task", std::regex(R"(\d+)"));
    check("cpus-per-task", std::regex(R"([1-9]\d*)"));
    check("mem", std::regex(R"(\d+[KMGT]?)"));
    check("partition", std::regex(R"([A-Za-z0-9_.,-]+)"));
    check("account", std::regex(R"([A-Za-z0-9_.-]+)"));
    check("job-name", std::regex(R"([A-Za-z0-9_.-]+)"));
    check("max-trials", std::regex(R"(\d+)"));
    check("signal-seconds", std::regex(R"(\d+)"));
    // Single-quoted for the shell: the URL holds '&' and '?'.
    auto quote = [](const std::string& s) {
        std::string out = "'";
        for (char c : s)
            out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return out + "'";
    };
    std::string exe = p.find("qpruner").value_or("");
    if (exe.empty()) {
        std::error_code ec;
        exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
        if (exe.empty())
            exe = "qpruner";
    }
    const std::string name = p.find("job-name").value_or("qpruner-run-" + std::to_string(run));
    std::string s = "#!/bin/bash\n";
    s += "# A Slurm job array of QPruner workers on run " + std::to_string(run) + " (qpruner slurm-script).\n";
    s += "# Each task evaluates trials of the run's search until it is done. The store's password comes from\n";
    s += "# ~/.pgpass or PGPASSWORD on the nodes, never from this script.\n";
    s += "#SBATCH --job-name=" + name + "\n";
    s += "#SBATCH --array=" + p.get("array") + "\n";
    s += "#SBATCH --time=" + p.get("time") + "\n";
    s += "#SBATCH --ntasks=1\n";
    s += "#SBATCH --cpus-per-task=" + p.get("cpus-per-task") + "\n";
    if (p.get("gpus-per-task") != "0")
        s += "#SBATCH --gpus-per-task=" + p.get("gpus-per-task") + "\n";
    if (const auto m = p.find("mem"))
        s += "#SBATCH --mem=" + *m + "\n";
    if (const auto v = p.find("partition"))
        s += "#SBATCH --partition=" + *v + "\n";
    if (const auto v = p.find("account"))
        s += "#SBATCH --account=" + *v + "\n";
    // B: the signal goes to the batch shell, which is the worker itself (exec below).
    s += "#SBATCH --signal=B:TERM@" + p.get("signal-seconds") + "\n";
    s += "#SBATCH --output=" + name + "-%A_%a.out\n";
    s += "set -euo pipefail\n";
    s += "exec " + quote(exe) + " worker --db " + quote(db) + " --run " + std::to_string(run) +
         " --threads \"${SLURM_CPUS_PER_TASK:-" + p.get("cpus-per-task") + "}\"" +
         (p.get("max-trials") != "0" ? " --max-trials " + p.get("max-trials") : std::string()) + "\n";
    std::cout << s;
    return 0;
}

} // namespace qpruner::cli
