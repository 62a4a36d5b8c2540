#include "store/migrations.h"

#include <array>
#include <string>

#include "qpruner/error.h"

namespace qpruner::store::detail {

namespace {

// Migration i + 1 is kMigrations[i]. Add a version by appending a script (and bumping kSchemaVersion).
constexpr std::array kMigrations = {
    // v1
    R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version(version) VALUES (0);
CREATE TABLE experiments(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL);
CREATE TABLE runs(
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    base_model TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    parent_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT);
CREATE TABLE stages(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    result_json TEXT,
    error TEXT,
    UNIQUE(run_id, ordinal));
CREATE TABLE layer_scores(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage_id INTEGER REFERENCES stages(id) ON DELETE SET NULL,
    metric TEXT NOT NULL,
    layer INTEGER NOT NULL,
    module TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL,
    normalized REAL NOT NULL,
    PRIMARY KEY(run_id, metric, layer, module));
CREATE TABLE trials(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL CHECK(state IN ('running', 'complete', 'failed')),
    encoding TEXT NOT NULL,
    map_json TEXT NOT NULL,
    source TEXT,
    objective REAL,
    metrics_json TEXT,
    memory_bytes INTEGER,
    budgeted_bytes INTEGER,
    seconds_quantize REAL,
    seconds_evaluate REAL,
    worker TEXT,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    UNIQUE(run_id, number));
CREATE TABLE artifacts(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage_id INTEGER REFERENCES stages(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL);
CREATE INDEX runs_experiment ON runs(experiment_id);
CREATE INDEX stages_run ON stages(run_id);
CREATE INDEX trials_run_encoding ON trials(run_id, encoding);
CREATE INDEX artifacts_run ON artifacts(run_id);
)sql",
    // v2
    R"sql(
ALTER TABLE trials ADD COLUMN finish_order INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN retry_of INTEGER;
ALTER TABLE trials ADD COLUMN seconds_surrogate REAL NOT NULL DEFAULT 0;
CREATE INDEX trials_run_state_memory ON trials(run_id, state, memory_bytes);
CREATE INDEX trials_run_finish_order ON trials(run_id, finish_order);
-- Every column of a trial summary, so that listing a run never reads the table's rows: with precision maps of
-- a few KB those rows span several pages each.
CREATE INDEX trials_run_summary ON trials(run_id, number, state, encoding, source, objective, memory_bytes,
    budgeted_bytes, seconds_quantize, seconds_evaluate, seconds_surrogate, worker, retry_of, finish_order,
    started_at, finished_at, error);
)sql",
    // v3
    R"sql(
-- One row per worker process of a run's search, beating every few seconds (beat_ms: the database's clock, so
-- hosts with skewed clocks agree); a running trial whose worker stopped beating is reclaimed by the others.
CREATE TABLE workers(
    id TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    beat_ms INTEGER NOT NULL,
    beats INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(id, run_id));
)sql",
    // v4
    R"sql(
-- Multi-fidelity search: the fraction of the validation tokens a trial was scored on (1: all) and how many tokens
-- that was; a map may be evaluated once per fidelity.
ALTER TABLE trials ADD COLUMN fidelity REAL NOT NULL DEFAULT 1;
ALTER TABLE trials ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
DROP INDEX trials_run_summary;
CREATE INDEX trials_run_summary ON trials(run_id, number, state, encoding, source, objective, memory_bytes,
    budgeted_bytes, seconds_quantize, seconds_evaluate, seconds_surrogate, worker, retry_of, finish_order,
    started_at, finished_at, error, fidelity, tokens);
)sql",
};

// The same schema for PostgreSQL: 64-bit integers, identity ids, double precision.
constexpr std::array kPgMigrations = {
    // v1
    R"sql(
CREATE TABLE schema_version(version BIGINT NOT NULL);
INSERT INTO schema_version(version) VALUES (0);
CREATE TABLE experiments(
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL);
CREATE TABLE runs(
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    base_model TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    parent_run_id BIGINT REFERENCES runs(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT);
CREATE TABLE stages(
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    result_json TEXT,
    error TEXT,
    UNIQUE(run_id, ordinal));
CREATE TABLE layer_scores(
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage_id BIGINT REFERENCES stages(id) ON DELETE SET NULL,
    metric TEXT NOT NULL,
    layer BIGINT NOT NULL,
    module TEXT NOT NULL DEFAULT '',
    value DOUBLE PRECISION NOT NULL,
    normalized DOUBLE PRECISION NOT NULL,
    PRIMARY KEY(run_id, metric, layer, module));
CREATE TABLE trials(
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    state TEXT NOT NULL CHECK(state IN ('running', 'complete', 'failed')),
    encoding TEXT NOT NULL,
    map_json TEXT NOT NULL,
    source TEXT,
    objective DOUBLE PRECISION,
    metrics_json TEXT,
    memory_bytes BIGINT,
    budgeted_bytes BIGINT,
    seconds_quantize DOUBLE PRECISION,
    seconds_evaluate DOUBLE PRECISION,
    worker TEXT,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    UNIQUE(run_id, number));
CREATE TABLE artifacts(
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage_id BIGINT REFERENCES stages(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at TEXT NOT NULL);
CREATE INDEX runs_experiment ON runs(experiment_id);
CREATE INDEX stages_run ON stages(run_id);
CREATE INDEX trials_run_encoding ON trials(run_id, encoding);
CREATE INDEX artifacts_run ON artifacts(run_id);
)sql",
    // v2
    R"sql(
ALTER TABLE trials ADD COLUMN finish_order BIGINT NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN retry_of BIGINT;
ALTER TABLE trials ADD COLUMN seconds_surrogate DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX trials_run_state_memory ON trials(run_id, state, memory_bytes);
CREATE INDEX trials_run_finish_order ON trials(run_id, finish_order);
-- (No covering summary index: PostgreSQL limits an index row to ~2.7 kB and a trial's error text may be
-- longer; its visibility map makes the (run_id, number) index enough.)
)sql",
    // v3
    R"sql(
-- One row per worker process of a run's search, beating every few seconds (beat_ms: the database's clock, so
-- hosts with skewed clocks agree); a running trial whose worker stopped beating is reclaimed by the others.
CREATE TABLE workers(
    id TEXT NOT NULL,
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    beat_ms BIGINT NOT NULL,
    beats BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY(id, run_id));
)sql",
    // v4
    R"sql(
ALTER TABLE trials ADD COLUMN fidelity DOUBLE PRECISION NOT NULL DEFAULT 1;
ALTER TABLE trials ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0;
)sql",
};
static_assert(kPgMigrations.size() == kMigrations.size());


} // namespace

int latestSchemaVersion()
{
    return int(kMigrations.size());
}

int readSchemaVersion(Database& db)
{
    bool hasVersionTable = false;
    bool hasOtherTables = false;
    {
        auto st = db.dialect() == Dialect::Sqlite
                      ? db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'", "read the schema")
                      : db.prepare("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = current_schema()",
                                   "read the schema");
        while (st.step()) {
            if (st.textView(0) == "schema_version")
                hasVersionTable = true;
            else
                hasOtherTables = true;
        }
    }
    if (!hasVersionTable) {
        if (hasOtherTables)
            throw FormatError(db.name() + (db.dialect() == Dialect::Sqlite ? ": an SQLite database" : ": a database") +
                              " but not an experiment store (no schema_version table)");
        return 0;
    }
    auto st = db.prepare("SELECT version FROM schema_version", "read the schema version");
    if (!st.step())
        throw FormatError(db.name() + ": the schema_version table is empty");
    return int(st.int64(0));
}

void migrate(Database& db, int target)
{
    for (int version = 1; version <= target; ++version) {
        Transaction tx(db, true);
        if (db.dialect() == Dialect::Postgres) // two processes opening a new database: one migrates, one waits
            db.prepare("SELECT pg_advisory_xact_lock(7261001)", "wait for another migration").run();
        const int current = readSchemaVersion(db);
        if (current >= version)
            continue;
        const std::string purpose = "migrate the store to schema version " + std::to_string(version);
        db.execScript(db.dialect() == Dialect::Sqlite ? kMigrations[size_t(version - 1)]
                                                      : kPgMigrations[size_t(version - 1)],
                      purpose.c_str());
        db.prepare("UPDATE schema_version SET version = ?1", "record the schema version").bind(1, version).run();
        tx.commit();
    }
}

} // namespace qpruner::store::detail
