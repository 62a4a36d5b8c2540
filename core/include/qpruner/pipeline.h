// The whole pipeline so far, from one config document: prune -> importance -> allocate -> search -> evaluate,
// every stage recorded in the experiment store (config, status, timings, results, artifacts with sha256).
// Torch-free header: the GUI starts and resumes runs through it.
//
// Config (JSON, version 1). Paths may start with "${data}/" (the shared data directory); relative paths are
// taken relative to `baseDir`. normalizeConfig() fills every default and resolves every path, and the
// normalised document is what the run stores, so it reproduces the run on its own.
// {
//   "version": 1,
//   "experiment": "default",              name of the experiment the run belongs to
//   "name": "",                           free text
//   "model": PATH, "tokenizer": PATH,     tokenizer: empty = found beside the model
//   "dtype": "fp32", "compute_dtype": "auto" (float32 or bfloat16 force it; auto: bf16 only on CPUs with native
//   bf16), "seed": 0,
//   "workdir": "",                        artifacts; empty = "<db dir>/<db stem>-runs/run-<id>"
//                                         (PostgreSQL store: "<current dir>/<db name>-runs/run-<id>")
//   "data_dir": "",                       the shared data directory; empty = the one given to normalizeConfig
//   "prune": null | {"ratio": 0.25, "attention_layers": "B:E"|"", "mlp_layers": "B:E"|"", "criterion":
//             "taylor-first", "calibration": CALIB, "micro_batch": 4},
//   "importance": {"metric": "quant-kl", "metrics": [...], "scores": PATH|"", "calibration": CALIB,
//                  "kl_format": "nf4", "kl_modules": false, "micro_batch": 4},  scores: use a score file instead
//                  of computing (metrics ignored); kl_modules: quant-kl per linear too
//   "allocate": {"budget": "4.5bpw", "method": "probabilistic", "candidates": ["nf4", "int8", "bf16"],
//                "layers": [] (all) | [i, ...], "base_format": "bf16", "samples": 16, "temperature": 0.1,
//                "epsilon": 0.001},
//   "search": null | {"trials": 40, "strategy": "bayes"|"random", "granularity": "layer"|"group",
//                     "objective": "ppl"|"kl"|"accuracy",
//                     "validation": {"source": "tinystories", "windows": 16, "seq_len": 256, "skip": 0},
//                     "task": "", "task_limit": 64,  (accuracy)
//                     "initial_samples": 4, "uniform": true, "workers": 1, "batch_size": 4,
//                     "par_ego": true, "gp_restarts": 2, "pool_samples": 64, "pool_random": 64,
//                     "pool_two_edits": 256, "variant_cache": "auto"|"memory"|"disk"},
//   "evaluate": null | {"ppl": [{"source": "tinystories", "windows": 40, "seq_len": 256, "skip": 0}],
//                       "tasks": ["boolq", ...], "task_limit": 100}
// }
// granularity "group" searches each layer's attention (q, k, v, o) and MLP (gate, up, down) linears separately;
// strategy "random" is the baseline (uniform random feasible maps, no initial design, no surrogate).
// variant_cache: where the trials' quantized variants live: RAM, or mapped files under the workdir (only the
// current map's weights resident); auto picks files when all variants would take over a quarter of the RAM.
// micro_batch: calibration windows per forward (and backward) pass; the scores do not depend on it (up to float
// rounding), the peak memory does (prune's and taylor's activations are kept for the backward pass).
// CALIB = {"source": "tinystories", "format": "auto", "samples": 32, "seq_len": 128, "seed": 0}.
// Validation and evaluation text sources are tinystories / wikitext2 (its test split for evaluation) / ptb /
// a path; windows are consecutive, non-overlapping, after skipping `skip` windows.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "qpruner/progress.h"
#include "qpruner/store.h"

namespace qpruner::pipeline {

// Fills defaults, resolves paths, checks every key (ConfigError naming the key path, e.g.
// "search.validation.windows: expected a positive integer"; unknown keys are refused too).
nlohmann::json normalizeConfig(const nlohmann::json& config, const std::filesystem::path& baseDir,
                               const std::filesystem::path& dataDir);

// A compute_dtype setting checked and named canonically: "auto", "float32" ("fp32") or "bfloat16" ("bf16").
// ConfigError ("compute_dtype: ...") for anything else, float16 included (no matmul on the CPU).
std::string computeDtypeSetting(const std::string& text);

// What a compute_dtype setting means on this machine for weights stored in `dtype` (a config's "dtype"), in
// words: "bfloat16 weights compute in float32: this CPU has no AVX512_BF16 ... (CPU: avx2 fma f16c)".
std::string describeComputeDtype(const std::string& dtype, const std::string& computeDtype);

struct RunOptions {
    std::string kind = "pipeline";          // the run's kind ("pipeline", "search")
    int workers = 0;                        // > 0 overrides search.workers
    int threads = 0;                        // intra-op threads per worker (0: hardware / workers)
    // Called (on the calling thread) once the run exists in the store, before its first stage: lets a GUI
    // show the run while it is being computed.
    std::function<void(int64_t runId)> onRunCreated;
    // Search liveness (search::SearchOptions): heartbeat interval and how long a silent worker's trial waits
    // before another worker reclaims it.
    double heartbeatSeconds = 5;
    double staleSeconds = 60;
};

struct WorkerOptions {
    int maxTrials = 0;          // > 0: evaluate at most this many trials here, then leave
    int workers = 1;            // search threads of this process
    int threads = 0;            // intra-op threads (0: hardware / workers)
    double heartbeatSeconds = 5;
    double staleSeconds = 60;
};

struct WorkerOutcome {
    int evaluated = 0;          // trials this process evaluated
    nlohmann::json search;      // trials_complete, trials_failed, exhausted
};

struct RunOutcome {
    int64_t runId = 0;
    nlohmann::json result;                  // per stage: its result document (as stored)
};

// Creates a run for a normalised config and executes it.
RunOutcome startRun(store::Store& store, const nlohmann::json& normalizedConfig, const RunOptions& options,
                    const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// Continues a run from its stored config: running trials of dead workers are marked failed and re-proposed,
// finished stages are reused (their stored results and artifacts, checked by sha256), unfinished ones rerun.
// A second process may resume a running run to add workers to its search.
RunOutcome resumeRun(store::Store& store, int64_t runId, const RunOptions& options,
                     const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// Joins the running search of run `runId` as one more worker process (`qpruner worker`, a Slurm array task):
// the model, tokenizer and data come from the run's stored config (ConfigError naming each path this host
// lacks), the earlier stages must be finished (their results are reused, nothing is recomputed or recorded),
// and it evaluates trials until the study has all its trials complete (or maxTrials here), heartbeating so
// that the others can reclaim its trial if it dies. It writes no stage and never changes the run's status: the
// process that started the run finishes it; a run already done returns at once (search["run_done"]). On cancel (SIGTERM from Slurm before a time limit) its running trial
// is marked failed ("cancelled") and goes back to the queue as a retry.
WorkerOutcome joinSearch(store::Store& store, int64_t runId, const WorkerOptions& options,
                         const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// Evaluates a hand-made precision map as one more trial of search run `runId` ("evaluate this map" in the
// editor): the trial gets source "manual", the run's model (pruned checkpoint when the run pruned), validation
// slice, objective and per-trial recovery, and is recorded like any other trial (memory, metrics, timings).
// Manual trials are part of the study (fronts, chosenMap) but the Bayesian proposals ignore them: their maps
// need not be points of the search space. The same map twice returns the stored trial without evaluating
// again. ConfigError when the run has no search stage or the map does not fit the run's model; CancelledError
// leaves the trial failed.
store::TrialRecord evaluateMap(store::Store& store, int64_t runId, const nlohmann::json& map,
                               const ProgressSink& progress = {}, const CancelToken* cancel = nullptr);

// The best complete trial of a search run (lowest objective; ties: less memory) within a budget (allocation.h
// syntax: bytes of the whole model, bpw over the decoder linears, or a fraction of bf16; empty: the run's own):
// {"trial", "objective", "memory_bytes", "budget", "metrics", "map"}; null when no trial fits.
nlohmann::json chosenMap(const store::Store& store, int64_t runId, const std::string& budget = {});

} // namespace qpruner::pipeline
