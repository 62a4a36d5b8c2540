// The experiment store: one SQLite file per workspace (or one PostgreSQL database, for a study whose workers run on
// many machines: open it with a postgresql:// URL) holding experiments, runs, their stages, layer scores, search
// trials and artifacts (architecture.md, "Store"). Torch-free: the GUI reads it through this header.
// PostgreSQL: the same schema and migrations (64-bit integer and double precision columns); a write transaction
// locks the run whose trials or stages it numbers (SELECT ... FOR UPDATE), so concurrent workers never take the
// same number; readers see whole rows (MVCC); lock waits are bounded by busyTimeoutMs (lock_timeout).
//
// Rules the implementation keeps:
//   - WAL journal, busy_timeout (OpenOptions::busyTimeoutMs), foreign keys on, synchronous=NORMAL.
//   - Schema versioning: a `schema_version` table (one row) and numbered migrations applied in order, each in
//     its own transaction, so a database of any older version is brought up to kSchemaVersion on open and a
//     failed migration leaves it at the version before. A database of a newer version than this build is
//     refused (FormatError naming both versions); a file that is not SQLite is refused (FormatError naming it).
//       v1  experiments, runs, stages, layer_scores, trials, artifacts
//       v2  trials: finish_order, retry_of, seconds_surrogate; indexes trials(run_id, state, memory_bytes),
//           trials(run_id, finish_order) and a covering index of the trial summary columns
//       v3  workers: one row per worker process of a run's search with its last heartbeat
//   - Every write is one transaction begun IMMEDIATE (the write lock taken up front, so two writers wait for
//     each other through busy_timeout instead of failing with "database is locked"). Readers (another thread,
//     the GUI, a second CLI) see either all of a trial's row or none of it.
//   - One connection per Store object, guarded by a mutex: a Store may be shared by the threads of a process
//     (one writer per process); separate processes open their own Store on the same file.
//   - Timestamps are UTC ISO-8601 with milliseconds, "2026-11-22T10:11:12.345Z".
//   - JSON columns hold compact JSON text; reads parse it back (FormatError naming the table, row and column
//     when a stored document does not parse).
// Errors: FileError when the file cannot be opened/created, FormatError as above, ConfigError for a request
// that names something absent ("run 7 does not exist in study.db"), Error for any other SQLite failure, its
// message naming the statement's purpose and SQLite's error text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace qpruner::store {

inline constexpr int kSchemaVersion = 4;

enum class RunStatus { Pending, Running, Done, Failed, Cancelled };
const char* runStatusName(RunStatus s); // "pending", "running", "done", "failed", "cancelled"
RunStatus parseRunStatus(std::string_view name); // FormatError for anything else

enum class TrialState { Running, Complete, Failed };
const char* trialStateName(TrialState s); // "running", "complete", "failed"
TrialState parseTrialState(std::string_view name);

struct ExperimentRecord {
    int64_t id = 0;
    std::string name;
    std::string createdAt;
};

struct RunRecord {
    int64_t id = 0;
    int64_t experimentId = 0;
    std::string experiment;             // the experiment's name (filled on reads; ignored by createRun)
    std::string kind;                   // "search", "prune", "importance", "allocate", "eval-ppl", "pipeline", ...
    std::string name;                   // free text; may be empty
    std::string baseModel;              // the model the run starts from (path as given)
    nlohmann::json config = nlohmann::json::object(); // fully reproduces the run
    RunStatus status = RunStatus::Running;
    std::optional<int64_t> parentRunId; // e.g. a pipeline's stage runs, or a search resumed as a new run
    std::string createdAt;
    std::string finishedAt;             // empty until a terminal status
    std::string error;
    // Trial counts (filled on reads).
    int64_t trialsComplete = 0;
    int64_t trialsRunning = 0;
    int64_t trialsFailed = 0;
};

struct StageRecord {
    int64_t id = 0;
    int64_t runId = 0;
    std::string name;                   // "prune", "importance", "allocate", "search", "evaluate", ...
    int ordinal = 0;                    // 0, 1, ... in the order the stages began within the run
    nlohmann::json config = nlohmann::json::object();
    RunStatus status = RunStatus::Running;
    std::string startedAt;
    std::string finishedAt;
    double seconds = 0;
    nlohmann::json result = nlohmann::json::object();
    std::string error;
};

struct LayerScoreRow {
    std::string metric;     // "mi", "bi", "quant-kl", "taylor"
    int layer = 0;
    std::string module;     // "" for the whole layer, else "q", "k", ... "down"
    double value = 0;       // raw
    double normalized = 0;  // min-max normalised (importance_scores.h)
};

struct ArtifactRecord {
    int64_t id = 0;
    int64_t runId = 0;
    std::optional<int64_t> stageId;
    std::string kind;       // "checkpoint", "scores", "precision-map", "report", ...
    std::string path;       // absolute, as written
    std::string sha256;     // lowercase hex of the file's bytes (a directory: see addArtifact)
    int64_t bytes = 0;
    std::string createdAt;
};

struct TrialRecord {
    int64_t id = 0;
    int64_t runId = 0;
    int number = 0;                     // 0, 1, ... within the run, in claim order, never reused
    TrialState state = TrialState::Running;
    std::string encoding;               // the decision vector: one character per searched unit ('0' + candidate
                                        // index); equal encodings are the same map within a run
    nlohmann::json map;                 // PrecisionMap JSON (null in summaries)
    std::string source;                 // "initial:importance", "initial:sample", "initial:uniform:nf4",
                                        // "acquisition", "retry", "random", ...
    std::optional<double> objective;    // the minimised value (ppl, KL, 1 - accuracy); set when complete
    nlohmann::json metrics;             // e.g. {"ppl":..,"mean_nll":..} (null in summaries)
    int64_t memoryBytes = 0;            // MemoryReport::totalBytes of the map
    int64_t budgetedBytes = 0;          // the quantity the run's budget limits
    double secondsQuantize = 0;
    double secondsEvaluate = 0;
    double secondsSurrogate = 0;        // proposing this trial (fit + acquisition)
    std::string worker;                 // workerId() of the process that claimed it
    std::optional<int> retryOf;         // number of the failed trial this one re-runs
    int64_t finishOrder = 0;            // 1, 2, ... in the order trials of the run completed (0 until complete)
    std::string startedAt;
    std::string finishedAt;
    std::string error;
    double fidelity = 1;                // fraction of the search's validation tokens the trial is scored on (1: all);
                                        // a map is evaluated at most once per fidelity
    int64_t tokens = 0;                 // tokens the evaluation scores (known when claimed; 0: not recorded)
};

struct WorkerRecord {
    std::string id;          // "host:pid"
    int64_t runId = 0;
    std::string host;
    int64_t pid = 0;
    std::string startedAt;
    double secondsSinceBeat = 0; // by the database's clock, when read
    int64_t beats = 0;
};

struct OpenOptions {
    bool readOnly = false;      // open an existing database without migrating or writing (FileError if absent;
                                // FormatError if its version differs from kSchemaVersion)
    int busyTimeoutMs = 60000;
    int migrateTo = kSchemaVersion; // tests: stop the migrations at an older version (1..kSchemaVersion)
};

class Store {
public:
    // Opens (creating it and its parent directory's file if absent) and migrates the database at `path`.
    explicit Store(const std::filesystem::path& path, const OpenOptions& options = {});
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // The file, or the PostgreSQL URL (without a password: such URLs are refused).
    const std::filesystem::path& path() const;
    // A PostgreSQL store (path() is a postgresql:// URL) rather than an SQLite file.
    bool isServer() const;
    // The file's stem ("study" for study.db), or the PostgreSQL database's name.
    std::string databaseName() const;
    int schemaVersion() const;
    std::string integrityCheck() const; // the text of PRAGMA integrity_check ("ok" when sound)

    // Experiments: get-or-create by name.
    int64_t experimentId(const std::string& name);
    std::vector<ExperimentRecord> experiments() const;

    // Runs. createRun stores kind, name, baseModel, config, status and parentRunId (experimentId must exist);
    // createdAt is now. setRunStatus sets finishedAt for Done/Failed/Cancelled and clears it for Running.
    int64_t createRun(const RunRecord& run);
    void setRunStatus(int64_t runId, RunStatus status, const std::string& error = {});
    void setRunConfig(int64_t runId, const nlohmann::json& config);
    RunRecord run(int64_t runId) const;                        // ConfigError when absent
    std::vector<RunRecord> runs(std::optional<int64_t> experimentId = {}) const; // ascending id

    // Stages of a run: beginStage stores config, status Running, startedAt now and the next ordinal.
    int64_t beginStage(int64_t runId, const std::string& name, const nlohmann::json& config);
    void finishStage(int64_t stageId, RunStatus status, const nlohmann::json& result, double seconds,
                     const std::string& error = {});
    std::vector<StageRecord> stages(int64_t runId) const; // ascending ordinal

    // Layer scores, one transaction; a row with the same (run, metric, layer, module) is replaced.
    void addLayerScores(int64_t runId, std::optional<int64_t> stageId, const std::vector<LayerScoreRow>& rows);
    std::vector<LayerScoreRow> layerScores(int64_t runId, const std::string& metric = {}) const; // by metric,
                                                                                                  // layer, module
    // Artifacts: hashes the file now (sha256, bytes); a directory is hashed as the sha256 of the concatenated
    // lines "<sha256 of file>  <path relative to the directory>\n" over its regular files in sorted path
    // order, bytes the sum of their sizes. FileError when the path does not exist.
    ArtifactRecord addArtifact(int64_t runId, std::optional<int64_t> stageId, const std::string& kind,
                               const std::filesystem::path& path);
    std::vector<ArtifactRecord> artifacts(int64_t runId) const; // ascending id

    // Trials.
    // claimTrial: one IMMEDIATE transaction. Returns nullopt (and writes nothing) when a trial of the run with
    // the same encoding is running or complete, or when maxTrials > 0 and the run already has maxTrials trials
    // that are running or complete. Otherwise inserts a Running trial numbered max(number) + 1 (0 for the
    // first) with the proposal's encoding, map, source, memoryBytes, budgetedBytes, secondsSurrogate and
    // retryOf, worker = workerId(), startedAt now, and returns it as stored.
    std::optional<TrialRecord> claimTrial(int64_t runId, const TrialRecord& proposal, int maxTrials);
    // completeTrial: by t.id, which must be Running (Error otherwise: a reclaimed trial is not overwritten);
    // stores objective, metrics, the three timings, finishedAt now, state Complete and finishOrder =
    // max(finishOrder of the run) + 1, in one transaction.
    void completeTrial(const TrialRecord& t);
    void failTrial(int64_t trialId, const std::string& error); // Running -> Failed, finishedAt now
    // Marks Failed (error "worker <id> is gone") every Running trial of the run whose worker ran on this host
    // and whose process no longer exists; with `all`, every Running trial of the run. Returns their numbers.
    std::vector<int> reclaimTrials(int64_t runId, bool all = false);
    std::vector<TrialRecord> trials(int64_t runId) const;           // ascending number, everything
    // Ascending number, without the JSON columns (map and metrics null): what a plot of a large run needs.
    std::vector<TrialRecord> trialSummaries(int64_t runId) const;
    TrialRecord trial(int64_t runId, int number) const;             // ConfigError when absent

    // Worker liveness across hosts. heartbeat: this process (workerId()) is alive and works on run `runId` (its
    // row's beat_ms set from the database's clock). retireWorker: it leaves (row deleted).
    void heartbeat(int64_t runId);
    void retireWorker(int64_t runId);
    std::vector<WorkerRecord> workers(int64_t runId) const;
    // Marks Failed every Running trial of the run whose worker is gone: its process on this host no longer
    // exists, or its last heartbeat is more than `staleSeconds` old (database clock), or it never beat, runs on
    // another host and its trial started more than `staleSeconds` ago. The error names the worker and why;
    // the search re-proposes such trials as retries. Returns their numbers.
    std::vector<int> reclaimStaleTrials(int64_t runId, double staleSeconds);

    // "hostname:pid" of this process.
    static std::string workerId();

private:
    friend std::vector<std::pair<std::string, int64_t>> copyStore(const Store& from, Store& to);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Copies every experiment, run, stage, layer score, trial and artifact record of `from` into `to`, ids and values
// exactly (`qpruner db copy`: SQLite to PostgreSQL and back), in one transaction of `to`; worker heartbeats are
// not copied. `to` must hold no experiment yet (ConfigError naming what it holds). Returns rows copied per table.
std::vector<std::pair<std::string, int64_t>> copyStore(const Store& from, Store& to);

// UTC now as stored ("2026-11-22T10:11:12.345Z").
std::string nowTimestamp();

} // namespace qpruner::store
