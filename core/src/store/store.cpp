#include "qpruner/store.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <unistd.h>

#include "io/sha256.h"
#include "qpruner/error.h"
#include "store/migrations.h"
#include "store/pg_db.h"
#include "store/sqlite_db.h"

namespace qpruner::store {

using detail::Statement;
using detail::Transaction;
using nlohmann::json;
namespace fs = std::filesystem;

static_assert(kSchemaVersion > 0);

const char* runStatusName(RunStatus s)
{
    switch (s) {
    case RunStatus::Pending: return "pending";
    case RunStatus::Running: return "running";
    case RunStatus::Done: return "done";
    case RunStatus::Failed: return "failed";
    case RunStatus::Cancelled: return "cancelled";
    }
    return "unknown";
}

RunStatus parseRunStatus(std::string_view name)
{
    for (RunStatus s : {RunStatus::Pending, RunStatus::Running, RunStatus::Done, RunStatus::Failed,
                        RunStatus::Cancelled})
        if (name == runStatusName(s))
            return s;
    throw FormatError("unknown run status '" + std::string(name) +
                      "' (expected pending, running, done, failed or cancelled)");
}

const char* trialStateName(TrialState s)
{
    switch (s) {
    case TrialState::Running: return "running";
    case TrialState::Complete: return "complete";
    case TrialState::Failed: return "failed";
    }
    return "unknown";
}

TrialState parseTrialState(std::string_view name)
{
    for (TrialState s : {TrialState::Running, TrialState::Complete, TrialState::Failed})
        if (name == trialStateName(s))
            return s;
    throw FormatError("unknown trial state '" + std::string(name) + "' (expected running, complete or failed)");
}

std::string nowTimestamp()
{
    using namespace std::chrono;
    const int64_t ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    const std::time_t secs = std::time_t(ms / 1000);
    std::tm t{};
    gmtime_r(&secs, &t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                  t.tm_hour, t.tm_min, t.tm_sec, int(ms % 1000));
    return buf;
}

namespace {

bool isTerminal(RunStatus s)
{
    return s == RunStatus::Done || s == RunStatus::Failed || s == RunStatus::Cancelled;
}

std::string hostName()
{
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0)
        return "localhost";
    return buf;
}

std::string dumpJson(const json& j, const std::string& what)
{
    try {
        return j.dump();
    } catch (const json::exception& e) {
        throw FormatError(what + " cannot be stored as JSON: " + e.what());
    }
}

// Runs with their experiment's name and trial counts, one grouped count query for all runs selected.
std::string runQuery(const char* trialFilter, const char* runFilter)
{
    return std::string(
               "SELECT r.id, r.experiment_id, e.name, r.kind, r.name, r.base_model, r.config_json, r.status, "
               "r.parent_run_id, r.created_at, r.finished_at, r.error, "
               "COALESCE(c.complete, 0), COALESCE(c.running, 0), COALESCE(c.failed, 0) "
               "FROM runs r JOIN experiments e ON e.id = r.experiment_id "
               "LEFT JOIN (SELECT run_id, SUM(CASE WHEN state = 'complete' THEN 1 ELSE 0 END) AS complete, "
               "SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS running, "
               "SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed FROM trials ") +
           trialFilter + " GROUP BY run_id) c ON c.run_id = r.id " + runFilter + " ORDER BY r.id";
}

const std::string kAllRunsSql = runQuery("", "");
const std::string kExperimentRunsSql =
    runQuery("WHERE run_id IN (SELECT id FROM runs WHERE experiment_id = ?1)", "WHERE r.experiment_id = ?1");
const std::string kOneRunSql = runQuery("WHERE run_id = ?1", "WHERE r.id = ?1");

#define QPRUNER_TRIAL_SUMMARY_COLUMNS                                                                            \
    "id, run_id, number, state, encoding, source, objective, memory_bytes, budgeted_bytes, seconds_quantize, "   \
    "seconds_evaluate, seconds_surrogate, worker, retry_of, finish_order, started_at, finished_at, error, fidelity, " \
    "tokens"
#define QPRUNER_TRIAL_COLUMNS QPRUNER_TRIAL_SUMMARY_COLUMNS ", map_json, metrics_json"

constexpr const char* kTrialsSql =
    "SELECT " QPRUNER_TRIAL_COLUMNS " FROM trials WHERE run_id = ?1 ORDER BY number";
constexpr const char* kTrialSummariesSql =
    "SELECT " QPRUNER_TRIAL_SUMMARY_COLUMNS " FROM trials WHERE run_id = ?1 ORDER BY number";
constexpr const char* kTrialByNumberSql =
    "SELECT " QPRUNER_TRIAL_COLUMNS " FROM trials WHERE run_id = ?1 AND number = ?2";
constexpr const char* kTrialByIdSql = "SELECT " QPRUNER_TRIAL_COLUMNS " FROM trials WHERE id = ?1";

#undef QPRUNER_TRIAL_COLUMNS
#undef QPRUNER_TRIAL_SUMMARY_COLUMNS

} // namespace

struct Store::Impl {
    fs::path path;
    OpenOptions options;
    std::mutex mutex;
    std::unique_ptr<detail::Database> db;

    Statement prepare(const char* sql, const char* purpose) { return db->prepare(sql, purpose); }

    // The single integer a query over one run returns (a count, the next number).
    int64_t runScalar(const char* sql, const char* purpose, int64_t runId)
    {
        auto st = prepare(sql, purpose);
        st.bind(1, runId);
        st.step();
        return st.int64(0);
    }

    // A run's trials by number; `full` parses the map and metrics JSON (summaries leave them null).
    std::vector<TrialRecord> listTrials(int64_t runId, bool full)
    {
        auto st = full ? prepare(kTrialsSql, "list a run's trials")
                       : prepare(kTrialSummariesSql, "list a run's trial summaries");
        st.bind(1, runId);
        std::vector<TrialRecord> out;
        while (st.step())
            out.push_back(readTrial(st, full));
        return out;
    }

    bool postgres() const { return db->dialect() == detail::Dialect::Postgres; }

    // One write transaction around `body`, committed when it returns. A connection to the server lost before the
    // commit was sent (the server rolled the transaction back: pg_terminate_backend, a restart, a network cut) runs
    // `body` once more in a new transaction on a new connection; a loss during the commit itself is not retried,
    // since whether it landed is unknown. Every `body` here only reads and writes the store, so a second run of it
    // sees what the first would have. `idempotent` (a body that may run twice, as the heartbeat's upsert): on
    // PostgreSQL any failure, the commit's included, runs it once more.
    template <class F>
    auto write(F&& body, bool idempotent = false) -> std::invoke_result_t<F&>
    {
        using R = std::invoke_result_t<F&>;
        for (int attempt = 0;; ++attempt) {
            bool committing = false;
            try {
                Transaction tx(*db, true);
                if constexpr (std::is_void_v<R>) {
                    body();
                    committing = true;
                    tx.commit();
                    return;
                } else {
                    R result = body();
                    committing = true;
                    tx.commit();
                    return result;
                }
            } catch (const std::exception&) {
                const bool retry = idempotent ? postgres() : !committing && db->connectionLost();
                if (attempt > 0 || !retry)
                    throw;
            }
        }
    }

    // The transaction of one write. Transaction is not movable: the caller constructs it in place.
    void checkWritable() const
    {
        if (options.readOnly)
            throw Error(db->name() + ": the store is open read-only");
    }

    json parseJson(std::string_view text, const char* table, int64_t rowId, const char* column) const
    {
        try {
            return json::parse(text);
        } catch (const json::exception& e) {
            throw FormatError(path.string() + ": table " + table + ", row " + std::to_string(rowId) + ", column " +
                              column + ": stored JSON does not parse: " + e.what());
        }
    }

    void requireStage(std::optional<int64_t> stageId)
    {
        if (!stageId)
            return;
        auto st = prepare("SELECT 1 FROM stages WHERE id = ?1", "look up a stage");
        st.bind(1, *stageId);
        if (!st.step())
            throw ConfigError("stage " + std::to_string(*stageId) + " does not exist in " + path.string());
    }

    [[noreturn]] void runAbsent(int64_t runId) const
    {
        throw ConfigError("run " + std::to_string(runId) + " does not exist in " + path.string());
    }

    // Inside a write transaction: the run exists, and (PostgreSQL) is locked until the commit, so that two
    // writers numbering its trials or stages take turns.
    void requireRun(int64_t runId)
    {
        auto st = prepare(db->lockRunSql(), "look up a run");
        st.bind(1, runId);
        if (!st.step())
            runAbsent(runId);
    }

    RunRecord readRun(Statement& st) const
    {
        RunRecord r;
        r.id = st.int64(0);
        r.experimentId = st.int64(1);
        r.experiment = st.text(2);
        r.kind = st.text(3);
        r.name = st.text(4);
        r.baseModel = st.text(5);
        r.config = parseJson(st.textView(6), "runs", r.id, "config_json");
        r.status = parseRunStatus(st.textView(7));
        r.parentRunId = st.optInt64(8);
        r.createdAt = st.text(9);
        r.finishedAt = st.text(10);
        r.error = st.text(11);
        r.trialsComplete = st.int64(12);
        r.trialsRunning = st.int64(13);
        r.trialsFailed = st.int64(14);
        return r;
    }

    TrialRecord readTrial(Statement& st, bool full) const
    {
        TrialRecord t;
        t.id = st.int64(0);
        t.runId = st.int64(1);
        t.number = int(st.int64(2));
        t.state = parseTrialState(st.textView(3));
        t.encoding = st.text(4);
        t.source = st.text(5);
        t.objective = st.optReal(6);
        t.memoryBytes = st.int64(7);
        t.budgetedBytes = st.int64(8);
        t.secondsQuantize = st.real(9);
        t.secondsEvaluate = st.real(10);
        t.secondsSurrogate = st.real(11);
        t.worker = st.text(12);
        if (!st.isNull(13))
            t.retryOf = int(st.int64(13));
        t.finishOrder = st.int64(14);
        t.startedAt = st.text(15);
        t.finishedAt = st.text(16);
        t.error = st.text(17);
        t.fidelity = st.real(18);
        t.tokens = st.int64(19);
        if (full) {
            t.map = parseJson(st.textView(20), "trials", t.id, "map_json");
            if (!st.isNull(21))
                t.metrics = parseJson(st.textView(21), "trials", t.id, "metrics_json");
        }
        return t;
    }

    TrialRecord trialById(int64_t id)
    {
        auto st = prepare(kTrialByIdSql, "read a trial");
        st.bind(1, id);
        if (!st.step())
            throw ConfigError("trial id " + std::to_string(id) + " does not exist in " + path.string());
        return readTrial(st, true);
    }
};

Store::Store(const fs::path& path, const OpenOptions& options) : impl_(std::make_unique<Impl>())
{
    impl_->path = path;
    impl_->options = options;
    if (options.migrateTo < 1 || options.migrateTo > kSchemaVersion)
        throw ConfigError("store migrateTo " + std::to_string(options.migrateTo) + " is outside 1.." +
                          std::to_string(kSchemaVersion));
    if (options.busyTimeoutMs < 0)
        throw ConfigError("store busyTimeoutMs must be >= 0, got " + std::to_string(options.busyTimeoutMs));
    if (detail::latestSchemaVersion() != kSchemaVersion)
        throw Error("store: the build knows " + std::to_string(detail::latestSchemaVersion()) +
                    " migrations but kSchemaVersion is " + std::to_string(kSchemaVersion));

    if (detail::isPostgresUrl(path.string())) {
        impl_->db = std::make_unique<detail::PgDatabase>(path.string(), options.readOnly, options.busyTimeoutMs,
                                                         workerId());
        auto& db = *impl_->db;
        const int version = detail::readSchemaVersion(db);
        if (version > kSchemaVersion)
            throw FormatError(db.name() + ": schema version " + std::to_string(version) +
                              " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                              "); use a newer QPruner");
        if (options.readOnly) {
            if (version != kSchemaVersion)
                throw FormatError(db.name() + ": schema version " + std::to_string(version) + ", this build reads " +
                                  std::to_string(kSchemaVersion) + " (open it read-write once to migrate it)");
            return;
        }
        if (version < options.migrateTo)
            detail::migrate(db, options.migrateTo);
        return;
    }

    std::error_code ec;
    if (options.readOnly) {
        if (!fs::exists(path, ec))
            throw FileError(path.string() + ": store database not found");
    } else if (path.has_parent_path() && !fs::exists(path.parent_path(), ec)) {
        fs::create_directories(path.parent_path(), ec);
        if (ec)
            throw FileError(path.parent_path().string() + ": cannot create the store's directory: " + ec.message());
    }
    if (fs::is_directory(path, ec))
        throw FileError(path.string() + ": is a directory, expected a store database file");

    const int flags = (options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_FULLMUTEX;
    auto sqlite = std::make_unique<detail::SqliteDatabase>(path, flags, options.busyTimeoutMs);
    {
        // The first read of the file: refuse anything that is not SQLite before writing a byte.
        const int rc = sqlite->probe("PRAGMA schema_version");
        if ((rc & 0xff) == SQLITE_NOTADB)
            throw FormatError(path.string() + ": not an SQLite database (" + sqlite3_errmsg(sqlite->handle()) + ")");
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            sqlite->fail("read the database header");
    }
    impl_->db = std::move(sqlite);
    auto& db = *impl_->db;
    const int version = detail::readSchemaVersion(db);
    if (version > kSchemaVersion)
        throw FormatError(path.string() + ": schema version " + std::to_string(version) +
                          " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                          "); use a newer QPruner");
    db.prepare("PRAGMA foreign_keys = ON", "enable foreign keys").run();
    // Up to 64 MiB of page cache (SQLite's default is 2 MiB): a run of 100,000 trials is read without re-reading
    // its pages from the file.
    db.prepare("PRAGMA cache_size = -65536", "set the page cache size").run();
    if (options.readOnly) {
        if (version != kSchemaVersion)
            throw FormatError(path.string() + ": schema version " + std::to_string(version) + ", this build reads " +
                              std::to_string(kSchemaVersion) + " (open it read-write once to migrate it)");
        return;
    }
    db.prepare("PRAGMA journal_mode = WAL", "switch to the WAL journal").run();
    db.prepare("PRAGMA synchronous = NORMAL", "set synchronous").run();
    if (version < options.migrateTo)
        detail::migrate(db, options.migrateTo);
}

Store::~Store() = default;

const fs::path& Store::path() const
{
    return impl_->path;
}

bool Store::isServer() const
{
    return impl_->postgres();
}

std::string Store::databaseName() const
{
    return impl_->postgres() ? detail::postgresDatabaseName(impl_->path.string()) : impl_->path.stem().string();
}

int Store::schemaVersion() const
{
    std::lock_guard lock(impl_->mutex);
    return detail::readSchemaVersion(*impl_->db);
}

std::string Store::integrityCheck() const
{
    std::lock_guard lock(impl_->mutex);
    if (impl_->postgres())
        return "ok"; // the server keeps its own consistency (WAL, checksums); nothing to ask of a client
    auto st = impl_->prepare("PRAGMA integrity_check", "check integrity");
    std::string out;
    while (st.step()) {
        if (!out.empty())
            out += '\n';
        out += st.textView(0);
    }
    return out;
}

int64_t Store::experimentId(const std::string& name)
{
    if (name.empty())
        throw ConfigError("experiment name is empty");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> int64_t {
        // Two processes creating the same experiment at once: one inserts, the other's insert does nothing.
        impl_->prepare("INSERT INTO experiments(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                       "create an experiment")
            .bind(1, name)
            .bind(2, nowTimestamp())
            .run();
        int64_t id = 0;
        {
            auto st = impl_->prepare("SELECT id FROM experiments WHERE name = ?1", "look up an experiment");
            st.bind(1, name);
            if (!st.step())
                st.fail();
            id = st.int64(0);
        }
        return id;
    });
}

std::vector<ExperimentRecord> Store::experiments() const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare("SELECT id, name, created_at FROM experiments ORDER BY id", "list experiments");
    std::vector<ExperimentRecord> out;
    while (st.step())
        out.push_back({st.int64(0), st.text(1), st.text(2)});
    return out;
}

int64_t Store::createRun(const RunRecord& run)
{
    if (run.kind.empty())
        throw ConfigError("createRun: the run's kind is empty");
    const std::string config = dumpJson(run.config, "the run's config");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> int64_t {
        {
            auto check = impl_->prepare("SELECT 1 FROM experiments WHERE id = ?1", "look up an experiment");
            check.bind(1, run.experimentId);
            if (!check.step())
                throw ConfigError("experiment " + std::to_string(run.experimentId) + " does not exist in " +
                                  impl_->path.string());
        }
        if (run.parentRunId) {
            auto check = impl_->prepare("SELECT 1 FROM runs WHERE id = ?1", "look up a run");
            check.bind(1, *run.parentRunId);
            if (!check.step())
                throw ConfigError("parent run " + std::to_string(*run.parentRunId) + " does not exist in " +
                                  impl_->path.string());
        }
        auto st = impl_->prepare("INSERT INTO runs(experiment_id, kind, name, base_model, config_json, status, "
                                 "parent_run_id, created_at, finished_at, error) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                                 "create a run");
        const std::string now = nowTimestamp();
        st.bind(1, run.experimentId)
            .bind(2, run.kind)
            .bind(3, run.name)
            .bind(4, run.baseModel)
            .bind(5, config)
            .bind(6, runStatusName(run.status))
            .bind(7, run.parentRunId)
            .bind(8, now)
            .bindTextOrNull(9, isTerminal(run.status) ? now : std::string())
            .bindTextOrNull(10, run.error);
        if (!st.step())
            st.fail();
        const int64_t id = st.int64(0);
        st.run();
        return id;
    });
}

void Store::setRunStatus(int64_t runId, RunStatus status, const std::string& error)
{
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        const int64_t changed =
            impl_->prepare("UPDATE runs SET status = ?2, finished_at = ?3, error = ?4 WHERE id = ?1", "set a run's status")
                .bind(1, runId)
                .bind(2, runStatusName(status))
                .bindTextOrNull(3, isTerminal(status) ? nowTimestamp() : std::string())
                .bindTextOrNull(4, error)
                .run();
        if (changed == 0)
            impl_->runAbsent(runId);
    });
}

void Store::setRunConfig(int64_t runId, const json& config)
{
    const std::string text = dumpJson(config, "the run's config");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        const int64_t changed = impl_->prepare("UPDATE runs SET config_json = ?2 WHERE id = ?1", "set a run's config")
                                    .bind(1, runId)
                                    .bind(2, text)
                                    .run();
        if (changed == 0)
            impl_->runAbsent(runId);
    });
}

RunRecord Store::run(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare(kOneRunSql.c_str(), "read a run");
    st.bind(1, runId);
    if (!st.step())
        impl_->runAbsent(runId);
    return impl_->readRun(st);
}

std::vector<RunRecord> Store::runs(std::optional<int64_t> experimentId) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = experimentId ? impl_->prepare(kExperimentRunsSql.c_str(), "list an experiment's runs")
                           : impl_->prepare(kAllRunsSql.c_str(), "list runs");
    if (experimentId)
        st.bind(1, *experimentId);
    std::vector<RunRecord> out;
    while (st.step())
        out.push_back(impl_->readRun(st));
    return out;
}

int64_t Store::beginStage(int64_t runId, const std::string& name, const json& config)
{
    const std::string text = dumpJson(config, "the stage's config");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> int64_t {
        impl_->requireRun(runId);
        const int64_t ordinal =
            impl_->runScalar("SELECT COALESCE(MAX(ordinal), -1) + 1 FROM stages WHERE run_id = ?1", "number a stage", runId);
        auto st = impl_->prepare("INSERT INTO stages(run_id, name, ordinal, config_json, status, started_at) "
                                 "VALUES (?1, ?2, ?3, ?4, 'running', ?5) RETURNING id",
                                 "begin a stage");
        st.bind(1, runId).bind(2, name).bind(3, ordinal).bind(4, text).bind(5, nowTimestamp());
        if (!st.step())
            st.fail();
        const int64_t id = st.int64(0);
        st.run();
        return id;
    });
}

void Store::finishStage(int64_t stageId, RunStatus status, const json& result, double seconds,
                        const std::string& error)
{
    const std::string text = dumpJson(result, "the stage's result");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        const int64_t changed =
            impl_->prepare("UPDATE stages SET status = ?2, result_json = ?3, seconds = ?4, error = ?5, finished_at = ?6 "
                           "WHERE id = ?1",
                           "finish a stage")
                .bind(1, stageId)
                .bind(2, runStatusName(status))
                .bind(3, text)
                .bind(4, seconds)
                .bindTextOrNull(5, error)
                .bindTextOrNull(6, isTerminal(status) ? nowTimestamp() : std::string())
                .run();
        if (changed == 0)
            throw ConfigError("stage " + std::to_string(stageId) + " does not exist in " + impl_->path.string());
    });
}

std::vector<StageRecord> Store::stages(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare("SELECT id, run_id, name, ordinal, config_json, status, started_at, finished_at, "
                             "seconds, result_json, error FROM stages WHERE run_id = ?1 ORDER BY ordinal",
                             "list a run's stages");
    st.bind(1, runId);
    std::vector<StageRecord> out;
    while (st.step()) {
        StageRecord s;
        s.id = st.int64(0);
        s.runId = st.int64(1);
        s.name = st.text(2);
        s.ordinal = int(st.int64(3));
        s.config = impl_->parseJson(st.textView(4), "stages", s.id, "config_json");
        s.status = parseRunStatus(st.textView(5));
        s.startedAt = st.text(6);
        s.finishedAt = st.text(7);
        s.seconds = st.real(8);
        if (!st.isNull(9))
            s.result = impl_->parseJson(st.textView(9), "stages", s.id, "result_json");
        s.error = st.text(10);
        out.push_back(std::move(s));
    }
    return out;
}

void Store::addLayerScores(int64_t runId, std::optional<int64_t> stageId, const std::vector<LayerScoreRow>& rows)
{
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        impl_->requireRun(runId);
        impl_->requireStage(stageId);
        for (const LayerScoreRow& row : rows) {
            auto st = impl_->prepare("INSERT INTO layer_scores(run_id, stage_id, metric, layer, module, value, normalized) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                     "ON CONFLICT(run_id, metric, layer, module) DO UPDATE SET "
                                     "stage_id = excluded.stage_id, value = excluded.value, "
                                     "normalized = excluded.normalized",
                                     "store layer scores");
            st.bind(1, runId)
                .bind(2, stageId)
                .bind(3, row.metric)
                .bind(4, row.layer)
                .bind(5, row.module)
                .bind(6, row.value)
                .bind(7, row.normalized);
            st.run();
        }
    });
}

std::vector<LayerScoreRow> Store::layerScores(int64_t runId, const std::string& metric) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare("SELECT metric, layer, module, value, normalized FROM layer_scores "
                             "WHERE run_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR metric = ?2) ORDER BY metric, layer, module",
                             "read layer scores");
    st.bind(1, runId).bindTextOrNull(2, metric);
    std::vector<LayerScoreRow> out;
    while (st.step())
        out.push_back({st.text(0), int(st.int64(1)), st.text(2), st.real(3), st.real(4)});
    return out;
}

ArtifactRecord Store::addArtifact(int64_t runId, std::optional<int64_t> stageId, const std::string& kind,
                                  const fs::path& path)
{
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    if (ec || !fs::exists(absolute, ec))
        throw FileError(path.string() + ": artifact does not exist");
    ArtifactRecord a;
    a.runId = runId;
    a.stageId = stageId;
    a.kind = kind;
    a.path = absolute.string();
    // Hashing (possibly gigabytes) happens before taking the lock.
    const io::PathDigest digest = io::sha256Path(absolute);
    a.sha256 = digest.sha256;
    a.bytes = digest.bytes;
    a.createdAt = nowTimestamp();

    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> ArtifactRecord {
        impl_->requireRun(runId);
        impl_->requireStage(stageId);
        auto st = impl_->prepare("INSERT INTO artifacts(run_id, stage_id, kind, path, sha256, bytes, created_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                                 "store an artifact");
        st.bind(1, runId).bind(2, stageId).bind(3, kind).bind(4, a.path).bind(5, a.sha256).bind(6, a.bytes);
        st.bind(7, a.createdAt);
        if (!st.step())
            st.fail();
        a.id = st.int64(0);
        st.run();
        return a;
    });
}

std::vector<ArtifactRecord> Store::artifacts(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare("SELECT id, run_id, stage_id, kind, path, sha256, bytes, created_at FROM artifacts "
                             "WHERE run_id = ?1 ORDER BY id",
                             "list a run's artifacts");
    st.bind(1, runId);
    std::vector<ArtifactRecord> out;
    while (st.step())
        out.push_back({st.int64(0), st.int64(1), st.optInt64(2), st.text(3), st.text(4), st.text(5), st.int64(6),
                       st.text(7)});
    return out;
}

std::optional<TrialRecord> Store::claimTrial(int64_t runId, const TrialRecord& proposal, int maxTrials)
{
    if (proposal.encoding.empty())
        throw ConfigError("claimTrial: the proposal's encoding is empty");
    if (!(proposal.fidelity > 0 && proposal.fidelity <= 1))
        throw ConfigError("claimTrial: the proposal's fidelity " + std::to_string(proposal.fidelity) +
                          " is outside (0, 1]");
    if (proposal.tokens < 0)
        throw ConfigError("claimTrial: the proposal's token count is negative");
    const std::string map = dumpJson(proposal.map, "the trial's precision map");
    const std::string worker = workerId();
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> std::optional<TrialRecord> {
        impl_->requireRun(runId);
        {
            // Without statistics the planner would prefer trials(run_id, state, ...) and scan the run.
            auto st = impl_->postgres()
                          ? impl_->prepare("SELECT 1 FROM trials "
                                           "WHERE run_id = ?1 AND encoding = ?2 AND fidelity = ?3 AND state IN ('running', 'complete') "
                                           "LIMIT 1",
                                           "look for a duplicate trial")
                          : impl_->prepare("SELECT 1 FROM trials INDEXED BY trials_run_encoding "
                                           "WHERE run_id = ?1 AND encoding = ?2 AND fidelity = ?3 AND state IN ('running', 'complete') "
                                           "LIMIT 1",
                                           "look for a duplicate trial");
            st.bind(1, runId).bind(2, proposal.encoding).bind(3, proposal.fidelity);
            if (st.step())
                return std::nullopt;
        }
        if (maxTrials > 0 &&
            impl_->runScalar("SELECT COUNT(*) FROM trials WHERE run_id = ?1 AND state IN ('running', 'complete')",
                             "count a run's trials", runId) >= maxTrials)
            return std::nullopt;
        const int64_t number =
            impl_->runScalar("SELECT COALESCE(MAX(number), -1) + 1 FROM trials WHERE run_id = ?1", "number a trial", runId);
        auto insert = impl_->prepare("INSERT INTO trials(run_id, number, state, encoding, map_json, source, memory_bytes, "
                                     "budgeted_bytes, seconds_surrogate, retry_of, worker, started_at, fidelity, tokens) "
                                     "VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
                                     "claim a trial");
        insert.bind(1, runId)
            .bind(2, number)
            .bind(3, proposal.encoding)
            .bind(4, map)
            .bind(5, proposal.source)
            .bind(6, proposal.memoryBytes)
            .bind(7, proposal.budgetedBytes)
            .bind(8, proposal.secondsSurrogate)
            .bind(9, proposal.retryOf ? std::optional<int64_t>(*proposal.retryOf) : std::nullopt)
            .bind(10, worker)
            .bind(11, nowTimestamp())
            .bind(12, proposal.fidelity)
            .bind(13, proposal.tokens);
        if (!insert.step())
            insert.fail();
        const int64_t id = insert.int64(0);
        insert.run();
        TrialRecord stored = impl_->trialById(id);
        return stored;
    });
}

void Store::completeTrial(const TrialRecord& t)
{
    if (!t.objective)
        throw ConfigError("completeTrial: trial " + std::to_string(t.number) + " has no objective");
    const std::string metrics = t.metrics.is_null() ? std::string() : dumpJson(t.metrics, "the trial's metrics");
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        int64_t runId = 0;
        {
            auto st = impl_->prepare("SELECT run_id, number, state, error FROM trials WHERE id = ?1", "look up a trial");
            st.bind(1, t.id);
            if (!st.step())
                throw ConfigError("trial id " + std::to_string(t.id) + " does not exist in " + impl_->path.string());
            runId = st.int64(0);
            if (st.textView(2) != trialStateName(TrialState::Running)) {
                const std::string error = st.text(3);
                throw Error("trial " + std::to_string(st.int64(1)) + " of run " + std::to_string(runId) +
                            " is not running (" + st.text(2) + "): its result is not stored" +
                            (error.empty() ? std::string() : "; " + error));
            }
        }
        impl_->requireRun(runId); // finish_order is numbered under the run's lock
        impl_->prepare("UPDATE trials SET state = 'complete', objective = ?2, metrics_json = ?3, seconds_quantize = ?4, "
                       "seconds_evaluate = ?5, seconds_surrogate = ?6, finished_at = ?7, "
                       "finish_order = (SELECT COALESCE(MAX(finish_order), 0) + 1 FROM trials WHERE run_id = ?8) "
                       "WHERE id = ?1",
                       "complete a trial")
            .bind(1, t.id)
            .bind(2, *t.objective)
            .bindTextOrNull(3, metrics)
            .bind(4, t.secondsQuantize)
            .bind(5, t.secondsEvaluate)
            .bind(6, t.secondsSurrogate)
            .bind(7, nowTimestamp())
            .bind(8, runId)
            .run();
    });
}

void Store::failTrial(int64_t trialId, const std::string& error)
{
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        {
            auto st = impl_->prepare("SELECT run_id, number, state FROM trials WHERE id = ?1", "look up a trial");
            st.bind(1, trialId);
            if (!st.step())
                throw ConfigError("trial id " + std::to_string(trialId) + " does not exist in " + impl_->path.string());
            const std::string_view state = st.textView(2);
            if (state == trialStateName(TrialState::Failed))
                return; // already failed (e.g. reclaimed): nothing to do
            if (state != trialStateName(TrialState::Running))
                throw Error("trial " + std::to_string(st.int64(1)) + " of run " + std::to_string(st.int64(0)) +
                            " is not running (" + std::string(state) + "): not marking it failed");
        }
        impl_->prepare("UPDATE trials SET state = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1", "fail a trial")
            .bind(1, trialId)
            .bind(2, error)
            .bind(3, nowTimestamp())
            .run();
    });
}

std::vector<int> Store::reclaimTrials(int64_t runId, bool all)
{
    const std::string host = hostName();
    const auto isGone = [&](const std::string& worker) {
        const size_t colon = worker.rfind(':');
        if (colon == std::string::npos || worker.substr(0, colon) != host)
            return false;
        const std::string pidText = worker.substr(colon + 1);
        if (pidText.empty() || pidText.find_first_not_of("0123456789") != std::string::npos || pidText.size() > 9)
            return false;
        const pid_t pid = pid_t(std::stol(pidText));
        return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
    };

    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> std::vector<int> {
        std::vector<std::pair<int64_t, int>> gone; // id, number
        std::vector<std::string> workers;
        {
            auto st = impl_->prepare("SELECT id, number, worker FROM trials WHERE run_id = ?1 AND state = 'running'",
                                     "list running trials");
            st.bind(1, runId);
            while (st.step()) {
                std::string worker = st.text(2);
                if (all || isGone(worker)) {
                    gone.emplace_back(st.int64(0), int(st.int64(1)));
                    workers.push_back(std::move(worker));
                }
            }
        }
        const std::string now = nowTimestamp();
        std::vector<int> numbers;
        for (size_t i = 0; i < gone.size(); ++i) {
            impl_->prepare("UPDATE trials SET state = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                           "reclaim a trial")
                .bind(1, gone[i].first)
                .bind(2, "worker " + workers[i] + " is gone")
                .bind(3, now)
                .run();
            numbers.push_back(gone[i].second);
        }
        std::sort(numbers.begin(), numbers.end());
        return numbers;
    });
}

std::vector<TrialRecord> Store::trials(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->listTrials(runId, true);
}

std::vector<TrialRecord> Store::trialSummaries(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    return impl_->listTrials(runId, false);
}

TrialRecord Store::trial(int64_t runId, int number) const
{
    std::lock_guard lock(impl_->mutex);
    auto st = impl_->prepare(kTrialByNumberSql, "read a trial");
    st.bind(1, runId).bind(2, number);
    if (!st.step())
        throw ConfigError("trial " + std::to_string(number) + " of run " + std::to_string(runId) +
                          " does not exist in " + impl_->path.string());
    return impl_->readTrial(st, true);
}

void Store::heartbeat(int64_t runId)
{
    const std::string id = workerId();
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    static const std::string sqlite =
        std::string("INSERT INTO workers(id, run_id, host, pid, started_at, beat_ms, beats) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ") +
        "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER), 1) "
        "ON CONFLICT(id, run_id) DO UPDATE SET beat_ms = excluded.beat_ms, beats = workers.beats + 1";
    static const std::string postgres =
        std::string("INSERT INTO workers(id, run_id, host, pid, started_at, beat_ms, beats) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ") +
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT), 1) "
        "ON CONFLICT(id, run_id) DO UPDATE SET beat_ms = excluded.beat_ms, beats = workers.beats + 1";
    // The beat is an idempotent upsert: on PostgreSQL any failure (a connection lost, even during the commit) tries
    // it once more, and the new transaction reconnects first.
    impl_->write(
        [&] {
            impl_->prepare((impl_->postgres() ? postgres : sqlite).c_str(), "record a worker's heartbeat")
                .bind(1, id)
                .bind(2, runId)
                .bind(3, hostName())
                .bind(4, int64_t(::getpid()))
                .bind(5, nowTimestamp())
                .run();
        },
        /*idempotent=*/true);
}

void Store::retireWorker(int64_t runId)
{
    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> void {
        impl_->prepare("DELETE FROM workers WHERE id = ?1 AND run_id = ?2", "retire a worker")
            .bind(1, workerId())
            .bind(2, runId)
            .run();
    });
}

std::vector<WorkerRecord> Store::workers(int64_t runId) const
{
    std::lock_guard lock(impl_->mutex);
    static const std::string sqlite = "SELECT id, run_id, host, pid, started_at, "
                                      "(CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) - beat_ms), "
                                      "beats FROM workers WHERE run_id = ?1 ORDER BY id";
    static const std::string postgres = "SELECT id, run_id, host, pid, started_at, "
                                        "(CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) - beat_ms), "
                                        "beats FROM workers WHERE run_id = ?1 ORDER BY id";
    auto st = impl_->prepare((impl_->postgres() ? postgres : sqlite).c_str(), "list a run's workers");
    st.bind(1, runId);
    std::vector<WorkerRecord> out;
    while (st.step())
        out.push_back({st.text(0), st.int64(1), st.text(2), st.int64(3), st.text(4), double(st.int64(5)) / 1000.0,
                       st.int64(6)});
    return out;
}

std::vector<int> Store::reclaimStaleTrials(int64_t runId, double staleSeconds)
{
    const std::string host = hostName();
    const auto parseTime = [](const std::string& t) -> std::optional<std::time_t> {
        std::tm tm{};
        if (t.size() < 19 || !strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
            return std::nullopt;
        return timegm(&tm);
    };
    const std::vector<WorkerRecord> beating = workers(runId);

    std::lock_guard lock(impl_->mutex);
    impl_->checkWritable();
    return impl_->write([&]() -> std::vector<int> {
        std::vector<std::tuple<int64_t, int, std::string>> gone; // id, number, why
        {
            auto st = impl_->prepare("SELECT id, number, worker, started_at FROM trials WHERE run_id = ?1 AND "
                                     "state = 'running'",
                                     "list running trials");
            st.bind(1, runId);
            const std::time_t now = std::time(nullptr);
            while (st.step()) {
                const std::string worker = st.text(2);
                const auto w = std::find_if(beating.begin(), beating.end(),
                                            [&](const WorkerRecord& r) { return r.id == worker; });
                const size_t colon = worker.rfind(':');
                const std::string workerHost = colon == std::string::npos ? worker : worker.substr(0, colon);
                std::string why;
                if (workerHost == host && colon != std::string::npos) {
                    const std::string pidText = worker.substr(colon + 1);
                    if (!pidText.empty() && pidText.size() <= 9 &&
                        pidText.find_first_not_of("0123456789") == std::string::npos) {
                        const pid_t pid = pid_t(std::stol(pidText));
                        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
                            why = "its process is gone";
                    }
                }
                if (why.empty() && w != beating.end() && w->secondsSinceBeat > staleSeconds)
                    why = "no heartbeat for " + std::to_string(int64_t(w->secondsSinceBeat)) + " s";
                if (why.empty() && w == beating.end() && workerHost != host) {
                    const auto started = parseTime(st.text(3));
                    if (started && double(now - *started) > staleSeconds)
                        why = "it never sent a heartbeat";
                }
                if (!why.empty())
                    gone.emplace_back(st.int64(0), int(st.int64(1)), "worker " + worker + " is gone: " + why);
            }
        }
        // Rows of workers that are gone (no heartbeat for staleSeconds, or their process on this host ended).
        for (const WorkerRecord& w : beating) {
            bool dead = w.secondsSinceBeat > staleSeconds;
            if (!dead && w.host == host && w.pid > 0 && ::kill(pid_t(w.pid), 0) != 0 && errno == ESRCH)
                dead = true;
            if (dead)
                impl_->prepare("DELETE FROM workers WHERE id = ?1 AND run_id = ?2", "drop a gone worker")
                    .bind(1, w.id)
                    .bind(2, runId)
                    .run();
        }
        const std::string now = nowTimestamp();
        std::vector<int> numbers;
        for (const auto& [id, number, why] : gone) {
            impl_->prepare("UPDATE trials SET state = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1 AND "
                           "state = 'running'",
                           "reclaim a trial")
                .bind(1, id)
                .bind(2, why)
                .bind(3, now)
                .run();
            numbers.push_back(number);
        }
        std::sort(numbers.begin(), numbers.end());
        return numbers;
    });
}

std::string Store::workerId()
{
    return hostName() + ":" + std::to_string(::getpid());
}

namespace {

// Column kinds of the copied tables: I integer, R real, T text; lower case: may be NULL.
struct CopiedTable {
    const char* name;
    const char* columns;
    const char* kinds;
    const char* order;
};

constexpr CopiedTable kCopiedTables[] = {
    {"experiments", "id, name, created_at", "ITT", "id"},
    {"runs", "id, experiment_id, kind, name, base_model, config_json, status, parent_run_id, created_at, finished_at, "
             "error",
     "IITTTTTiTtt", "id"},
    {"stages", "id, run_id, name, ordinal, config_json, status, started_at, finished_at, seconds, result_json, error",
     "IITITTTtRtt", "id"},
    {"layer_scores", "run_id, stage_id, metric, layer, module, value, normalized", "IiTITRR", "run_id, metric, layer, module"},
    {"trials", "id, run_id, number, state, encoding, map_json, source, objective, metrics_json, memory_bytes, "
               "budgeted_bytes, seconds_quantize, seconds_evaluate, worker, started_at, finished_at, error, "
               "finish_order, retry_of, seconds_surrogate, fidelity, tokens",
     "IIITTTtrtiirrttttIiRRI", "id"},
    {"artifacts", "id, run_id, stage_id, kind, path, sha256, bytes, created_at", "IIiTTTIT", "id"},
};

} // namespace

std::vector<std::pair<std::string, int64_t>> copyStore(const Store& from, Store& to)
{
    std::scoped_lock lock(from.impl_->mutex, to.impl_->mutex);
    to.impl_->checkWritable();
    {
        auto st = to.impl_->prepare("SELECT COUNT(*) FROM experiments", "count the target's experiments");
        st.step();
        if (const int64_t n = st.int64(0); n > 0)
            throw ConfigError(to.impl_->path.string() + " already holds " + std::to_string(n) +
                              " experiment(s): copy into an empty store");
    }
    Transaction tx(*to.impl_->db, true);
    std::vector<std::pair<std::string, int64_t>> counts;
    for (const CopiedTable& table : kCopiedTables) {
        std::string kinds;
        for (const char* k = table.kinds; *k; ++k)
            if (*k != ' ')
                kinds += *k;
        const std::string select = std::string("SELECT ") + table.columns + " FROM " + table.name + " ORDER BY " +
                                   table.order;
        std::string insert = std::string("INSERT INTO ") + table.name + "(" + table.columns + ") VALUES (";
        for (size_t c = 0; c < kinds.size(); ++c)
            insert += (c ? ", ?" : "?") + std::to_string(c + 1);
        insert += ")";
        const bool runs = std::string_view(table.name) == "runs";
        std::vector<std::pair<int64_t, int64_t>> parents; // runs: (id, parent) set after all runs exist
        int64_t n = 0;
        auto read = from.impl_->prepare(select.c_str(), "read a table to copy");
        while (read.step()) {
            auto write = to.impl_->prepare(insert.c_str(), "copy a row");
            for (size_t c = 0; c < kinds.size(); ++c) {
                const int col = int(c);
                const char k = kinds[c];
                if (read.isNull(col) || (runs && c == 7)) {
                    if (runs && c == 7 && !read.isNull(col))
                        parents.emplace_back(read.int64(0), read.int64(col));
                    write.bindNull(col + 1);
                } else if (k == 'I' || k == 'i') {
                    write.bind(col + 1, read.int64(col));
                } else if (k == 'R' || k == 'r') {
                    write.bind(col + 1, read.real(col));
                } else {
                    write.bind(col + 1, read.textView(col));
                }
            }
            write.run();
            ++n;
        }
        for (const auto& [id, parent] : parents)
            to.impl_->prepare("UPDATE runs SET parent_run_id = ?2 WHERE id = ?1", "link a copied run to its parent")
                .bind(1, id)
                .bind(2, parent)
                .run();
        counts.emplace_back(table.name, n);
    }
    if (to.impl_->postgres()) // identity columns continue after the copied ids
        for (const char* table : {"experiments", "runs", "stages", "trials", "artifacts"}) {
            const std::string sql = std::string("SELECT setval(pg_get_serial_sequence('") + table +
                                    "', 'id'), COALESCE((SELECT MAX(id) FROM " + table + "), 0) + 1, false)";
            to.impl_->prepare(sql.c_str(), "continue the ids after the copied ones").run();
        }
    tx.commit();
    return counts;
}

} // namespace qpruner::store
