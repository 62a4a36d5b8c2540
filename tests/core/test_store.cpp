// Tests of the experiment store (store.h) and of the SHA-256 it hashes artifacts with (io/sha256.h).
//   sha256            FIPS 180-4 vectors, padding boundaries, chunked updates, a 1,500,000-byte file streamed
//   migrations        a new file at version 2 (WAL, tables, indexes, columns); a version 1 file brought to 2 with
//                     its rows intact; a failing migration leaves version 1; newer versions, non-databases and
//                     missing read-only files refused without touching the file
//   runs/stages/...   exact round trips of runs, stages, layer scores and artifacts (file and directory hashes)
//   trial protocol    numbering, duplicates, maxTrials, finish order, failed trials, reclaiming dead workers,
//                     summaries without JSON, stored JSON that does not parse
//   concurrency       threads with their own Stores (distinct and identical encodings), a reader during writes,
//                     two child processes claiming beside the parent
//   large run         100,000 trials: trialSummaries in number order (time printed, not asserted)
#include "qpruner/error.h"
#include "qpruner/store.h"

#include "io/sha256.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>

#include <libpq-fe.h>
#include <QtTest/QtTest>

#include "synthetic_study.h"
#include "pg_server.h"
#include "test_data.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>
#include <typeinfo>

using namespace qpruner;
using namespace qpruner::store;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A second, plain connection for what the API does not expose (and for writing what it would refuse to).
// Direct access to a store's database behind the Store's back (SQLite file, or a PostgreSQL URL).
class RawDb {
public:
    explicit RawDb(const fs::path& path)
    {
        if (path.string().rfind("postgresql://", 0) == 0) {
            pg_ = PQconnectdb(path.c_str());
            if (PQstatus(pg_) != CONNECTION_OK)
                throw std::runtime_error("raw connect failed: " + path.string() + ": " + PQerrorMessage(pg_));
            return;
        }
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw open failed: " + path.string());
        sqlite3_busy_timeout(db_, 60000);
    }
    ~RawDb()
    {
        if (pg_)
            PQfinish(pg_);
        else
            sqlite3_close_v2(db_);
    }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    sqlite3* handle() const { return db_; }

    void exec(const std::string& sql)
    {
        if (pg_) {
            PGresult* r = PQexec(pg_, sql.c_str());
            const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
            const std::string text = PQresultErrorMessage(r);
            PQclear(r);
            if (!ok)
                throw std::runtime_error("raw exec failed: " + text + " in " + sql);
            return;
        }
        char* message = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            const std::string text = message ? message : "?";
            sqlite3_free(message);
            throw std::runtime_error("raw exec failed: " + text + " in " + sql);
        }
    }

    // Every row's column `col` as text ("NULL" for null).
    std::vector<std::string> column(const std::string& sql, int col = 0)
    {
        if (pg_) {
            PGresult* r = PQexec(pg_, sql.c_str());
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                const std::string text = PQresultErrorMessage(r);
                PQclear(r);
                throw std::runtime_error("raw query failed: " + text + " in " + sql);
            }
            std::vector<std::string> out;
            for (int i = 0; i < PQntuples(r); ++i)
                out.push_back(PQgetisnull(r, i, col) ? "NULL" : PQgetvalue(r, i, col));
            PQclear(r);
            return out;
        }
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("raw prepare failed: ") + sqlite3_errmsg(db_) + " in " + sql);
        std::vector<std::string> out;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
            out.push_back(p ? p : "NULL");
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            throw std::runtime_error(std::string("raw step failed: ") + sqlite3_errmsg(db_) + " in " + sql);
        return out;
    }

    std::string text(const std::string& sql)
    {
        const auto rows = column(sql);
        if (rows.empty())
            throw std::runtime_error("raw query returned no row: " + sql);
        return rows.front();
    }

private:
    sqlite3* db_ = nullptr;
    PGconn* pg_ = nullptr;
};

std::string readBytes(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void writeBytes(const fs::path& p, const std::string& bytes)
{
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << bytes;
}

bool isTimestamp(const std::string& s)
{
    static const std::regex re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
    return std::regex_match(s, re);
}

std::string thisHost()
{
    const std::string id = Store::workerId();
    return id.substr(0, id.rfind(':'));
}

TrialRecord proposal(const std::string& encoding, int64_t memory = 1000)
{
    TrialRecord p;
    p.encoding = encoding;
    p.map = json{{"layers", encoding}, {"version", 1}};
    p.source = "initial:sample";
    p.memoryBytes = memory;
    p.budgetedBytes = memory / 2;
    p.secondsSurrogate = 0.5;
    return p;
}

int64_t newRun(Store& s, const std::string& experiment = "exp", const std::string& kind = "search")
{
    RunRecord r;
    r.experimentId = s.experimentId(experiment);
    r.kind = kind;
    return s.createRun(r);
}

// Like VERIFY_THROWS for the base qpruner::Error itself: fails on any subclass (FileError, ConfigError, ...).
bool throwsPlainError(const std::function<void()>& fn, std::initializer_list<std::string> needles, std::string* why)
{
    try {
        fn();
        *why = "nothing was thrown";
    } catch (const Error& e) {
        if (typeid(e) != typeid(Error)) {
            *why = std::string("a subclass of Error was thrown: ") + e.what();
            return false;
        }
        for (const std::string& needle : needles)
            if (std::string(e.what()).find(needle) == std::string::npos) {
                *why = "message lacks '" + needle + "': " + e.what();
                return false;
            }
        return true;
    } catch (const std::exception& e) {
        *why = std::string("untyped exception: ") + e.what();
    }
    return false;
}

#define VERIFY_THROWS_PLAIN_ERROR(expr, ...)                                                     \
    do {                                                                                        \
        std::string why_;                                                                       \
        const bool ok_ = throwsPlainError([&] { (void)(expr); }, {__VA_ARGS__}, &why_);        \
        QVERIFY2(ok_, (std::string("Error expected from " #expr ": ") + why_).c_str());         \
    } while (0)

// A pid that belonged to a process which has exited and been reaped.
pid_t deadPid()
{
    const pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

// `--child-claim DB RUN N PREFIX`: claims N trials with encodings PREFIX0000.. and exits 0, or prints the error
// and exits 1.
int childClaim(int argc, char** argv)
{
    if (argc != 6) {
        std::fprintf(stderr, "usage: --child-claim DB RUN N PREFIX\n");
        return 2;
    }
    try {
        Store s(argv[2]);
        const int64_t run = std::stoll(argv[3]);
        const int n = std::stoi(argv[4]);
        for (int i = 0; i < n; ++i) {
            char enc[64];
            std::snprintf(enc, sizeof enc, "%s%04d", argv[5], i);
            if (!s.claimTrial(run, proposal(enc), 0)) {
                std::fprintf(stderr, "claim of %s refused\n", enc);
                return 1;
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "child error: %s\n", e.what());
        return 1;
    }
    return 0;
}

} // namespace

// Built twice: test_store on SQLite files, test_store_pg (QPRUNER_TEST_POSTGRES) on a real PostgreSQL server the
// test starts itself, with every test that is not about SQLite's file format run against it.
#ifdef QPRUNER_TEST_POSTGRES
constexpr bool kPostgres = true;
#define SQLITE_ONLY() QSKIP("about the SQLite file (its pragmas, file format or query plans)")
#else
constexpr bool kPostgres = false;
#define SQLITE_ONLY() (void)0
#endif

class TestStore : public QObject {
    Q_OBJECT

private:
    QTemporaryDir tmp_;
    int dbCounter_ = 0;
    testing::PgServer pg_;

    // A location for a new store: a file in a directory that does not exist yet, or a new PostgreSQL database.
    fs::path freshDb()
    {
        ++dbCounter_;
        if (kPostgres) {
            const QString name = QStringLiteral("db%1").arg(dbCounter_);
            QString error;
            if (!pg_.createDatabase(name, &error))
                throw std::runtime_error("createdb failed: " + error.toStdString());
            return pg_.url(name);
        }
        return fs::path(tmp_.path().toStdString()) / ("db" + std::to_string(dbCounter_)) / "s.db";
    }

private slots:
    void initTestCase()
    {
        QVERIFY(tmp_.isValid());
        if (kPostgres) {
            const QString why = pg_.start();
            if (!why.isEmpty()) {
                if (testing::dataRequired())
                    QFAIL(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
                QSKIP(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
            }
        }
    }
    void cleanupTestCase() { pg_.stop(); }

    void sha256Vectors()
    {
        if (kPostgres)
            QSKIP("not about the store's engine (run by test_store)");
        using io::sha256Hex;
        QCOMPARE(sha256Hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        QCOMPARE(sha256Hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        QCOMPARE(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                 std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
        QCOMPARE(sha256Hex(std::string(1000000, 'a')),
                 std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
        // Padding boundaries: the length field fits in the last block (55), does not (56), whole blocks (64).
        const std::map<size_t, std::string> boundaries = {
            {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
            {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
            {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
            {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
            {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
            {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
            {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
        };
        for (const auto& [n, hex] : boundaries)
            QCOMPARE(sha256Hex(std::string(n, 'a')), hex);

        // Updates of every small size give the one-shot digest.
        std::mt19937 rng(7);
        std::string bytes(5000, '\0');
        for (char& c : bytes)
            c = char(rng());
        const std::string whole = sha256Hex(bytes);
        for (size_t step : {1, 3, 63, 64, 65, 1000}) {
            io::Sha256 h;
            for (size_t i = 0; i < bytes.size(); i += step)
                h.update(std::string_view(bytes).substr(i, step));
            QCOMPARE(h.hexDigest(), whole);
        }

        // 1,500,000 bytes cross the 1 MiB read chunk.
        std::string big(1500000, '\0');
        for (char& c : big)
            c = char(rng());
        const fs::path file = fs::path(tmp_.path().toStdString()) / "big.bin";
        writeBytes(file, big);
        QCOMPARE(fs::file_size(file), uintmax_t(1500000));
        QCOMPARE(io::sha256FileHex(file), sha256Hex(big));
        QVERIFY(io::sha256FileHex(file) != sha256Hex(big.substr(0, 1048576)));
        const fs::path missing = fs::path(tmp_.path().toStdString()) / "missing.bin";
        VERIFY_THROWS(FileError, io::sha256FileHex(missing), missing.string());
    }

    void migrationsFromEmpty()
    {
        if (kPostgres) {
            // The same schema on the server: its tables, the version, foreign keys enforced, reopening a no-op.
            const fs::path db = freshDb();
            Store s(db);
            QVERIFY(s.isServer());
            QCOMPARE(s.schemaVersion(), 4);
            QCOMPARE(s.integrityCheck(), std::string("ok"));
            QCOMPARE(s.databaseName(), "db" + std::to_string(dbCounter_));
            RawDb raw(db);
            QCOMPARE(raw.column("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                "current_schema() ORDER BY table_name"),
                     (std::vector<std::string>{"artifacts", "experiments", "layer_scores", "runs", "schema_version",
                                               "stages", "trials", "workers"}));
            QCOMPARE(raw.column("SELECT data_type FROM information_schema.columns WHERE table_name = 'trials' AND "
                                "column_name IN ('objective', 'memory_bytes') ORDER BY column_name"),
                     (std::vector<std::string>{"bigint", "double precision"}));
            RunRecord r;
            r.experimentId = 12345;
            r.kind = "search";
            VERIFY_THROWS(ConfigError, s.createRun(r), "experiment 12345 does not exist");
            Store again(db);
            QCOMPARE(again.schemaVersion(), 4);
            QCOMPARE(raw.column("SELECT version FROM schema_version"), std::vector<std::string>{"4"});
            // A password in the URL is refused before anything connects.
            VERIFY_THROWS(ConfigError, Store("postgresql://me:secret@localhost/x"), "~/.pgpass or PGPASSWORD");
            return;
        }
        const fs::path db = freshDb(); // its directory does not exist yet
        Store s(db);
        QCOMPARE(s.schemaVersion(), 4);
        QCOMPARE(s.integrityCheck(), std::string("ok"));
        QCOMPARE(s.path(), db);

        RawDb raw(db);
        QCOMPARE(raw.text("PRAGMA journal_mode"), std::string("wal"));
        QCOMPARE(raw.column("SELECT version FROM schema_version"), std::vector<std::string>{"4"});
        QCOMPARE(raw.column("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
                 (std::vector<std::string>{"artifacts", "experiments", "layer_scores", "runs", "schema_version",
                                           "stages", "trials", "workers"}));
        QCOMPARE(raw.column("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"),
                 (std::vector<std::string>{"artifacts_run", "runs_experiment", "stages_run", "trials_run_encoding",
                                           "trials_run_finish_order", "trials_run_state_memory",
                                           "trials_run_summary"}));
        QCOMPARE(raw.column("SELECT name FROM pragma_index_info('trials_run_state_memory') ORDER BY seqno"),
                 (std::vector<std::string>{"run_id", "state", "memory_bytes"}));
        QCOMPARE(raw.column("SELECT name FROM pragma_index_info('trials_run_finish_order') ORDER BY seqno"),
                 (std::vector<std::string>{"run_id", "finish_order"}));
        QCOMPARE(raw.column("SELECT name FROM pragma_index_info('trials_run_encoding') ORDER BY seqno"),
                 (std::vector<std::string>{"run_id", "encoding"}));
        // UNIQUE(run_id, number) gives the index trials are listed by.
        QCOMPARE(raw.column("SELECT ii.name FROM pragma_index_list('trials') il, pragma_index_info(il.name) ii "
                            "WHERE il.origin = 'u' ORDER BY ii.seqno"),
                 (std::vector<std::string>{"run_id", "number"}));
        const auto trialColumns = raw.column("SELECT name FROM pragma_table_info('trials')");
        for (const char* c : {"finish_order", "retry_of", "seconds_surrogate", "map_json", "metrics_json", "worker"})
            QVERIFY2(std::count(trialColumns.begin(), trialColumns.end(), c) == 1, c);
        QCOMPARE(raw.column("SELECT \"table\" || '.' || \"from\" || '->' || \"to\" || ' ' || on_delete "
                            "FROM pragma_foreign_key_list('trials')"),
                 std::vector<std::string>{"runs.run_id->id CASCADE"});

        // Foreign keys are on in the Store's connection: a run of a missing experiment is refused.
        RunRecord r;
        r.experimentId = 12345;
        r.kind = "search";
        VERIFY_THROWS(ConfigError, s.createRun(r), "experiment 12345 does not exist");
        QCOMPARE(raw.text("SELECT COUNT(*) FROM runs"), std::string("0"));

        // Reopening an up-to-date store changes nothing.
        Store again(db);
        QCOMPARE(again.schemaVersion(), 4);
        QCOMPARE(raw.column("SELECT version FROM schema_version"), std::vector<std::string>{"4"});
    }

    void migrationsFromOlder()
    {
        SQLITE_ONLY();
        const fs::path db = freshDb();
        int64_t runId = 0;
        {
            OpenOptions o;
            o.migrateTo = 1;
            Store s(db, o);
            QCOMPARE(s.schemaVersion(), 1);
            RunRecord r;
            r.experimentId = s.experimentId("old");
            r.kind = "search";
            r.name = "v1 run";
            r.config = json{{"budget", "4.5bpw"}, {"seed", 3}};
            runId = s.createRun(r);
            RawDb raw(db);
            const auto columns = raw.column("SELECT name FROM pragma_table_info('trials')");
            QCOMPARE(std::count(columns.begin(), columns.end(), std::string("finish_order")), 0);
            raw.exec("INSERT INTO trials(run_id, number, state, encoding, map_json, source, objective, metrics_json, "
                     "memory_bytes, budgeted_bytes, seconds_quantize, seconds_evaluate, worker, started_at, "
                     "finished_at) VALUES (" +
                     std::to_string(runId) +
                     ", 0, 'complete', '0120', '{\"layers\":\"0120\"}', 'initial:uniform:nf4', 7.25, '{\"ppl\":7.25}', "
                     "4096, 2048, 1.5, 2.5, 'h:1', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z')");
        }
        Store s(db);
        QCOMPARE(s.schemaVersion(), 4);
        QCOMPARE(s.integrityCheck(), std::string("ok"));
        const RunRecord r = s.run(runId);
        QCOMPARE(r.name, std::string("v1 run"));
        QCOMPARE(r.experiment, std::string("old"));
        QCOMPARE(r.config, (json{{"budget", "4.5bpw"}, {"seed", 3}}));
        QCOMPARE(r.trialsComplete, int64_t(1));
        const TrialRecord t = s.trial(runId, 0);
        QCOMPARE(t.encoding, std::string("0120"));
        QCOMPARE(t.state, TrialState::Complete);
        QCOMPARE(t.map, (json{{"layers", "0120"}}));
        QCOMPARE(t.metrics, (json{{"ppl", 7.25}}));
        QCOMPARE(t.objective, std::optional<double>(7.25));
        QCOMPARE(t.memoryBytes, int64_t(4096));
        QCOMPARE(t.budgetedBytes, int64_t(2048));
        QCOMPARE(t.secondsQuantize, 1.5);
        QCOMPARE(t.secondsEvaluate, 2.5);
        QCOMPARE(t.finishOrder, int64_t(0));
        QVERIFY(!t.retryOf.has_value());
        QCOMPARE(t.secondsSurrogate, 0.0);
        QCOMPARE(t.fidelity, 1.0); // v4: trials before multi-fidelity were scored on every validation token
        QCOMPARE(t.tokens, int64_t(0));
        RawDb raw(db);
        QCOMPARE(raw.text("SELECT finish_order || '/' || (retry_of IS NULL) || '/' || seconds_surrogate FROM trials"),
                 std::string("0/1/0.0"));
        // The new columns work: the next claim is numbered after the old trial.
        const auto next = s.claimTrial(runId, proposal("0121"), 0);
        QVERIFY(next);
        QCOMPARE(next->number, 1);
    }

    void failedMigrationKeepsOldVersion()
    {
        SQLITE_ONLY();
        const fs::path db = freshDb();
        {
            OpenOptions o;
            o.migrateTo = 1;
            Store s(db, o);
            newRun(s);
        }
        {
            RawDb raw(db); // an object named like one migration 2 creates makes it fail half-way
            raw.exec("CREATE INDEX trials_run_finish_order ON experiments(name)");
        }
        VERIFY_THROWS_PLAIN_ERROR(Store(db), "schema version 2", "trials_run_finish_order");
        RawDb raw(db);
        QCOMPARE(raw.column("SELECT version FROM schema_version"), std::vector<std::string>{"1"});
        const auto columns = raw.column("SELECT name FROM pragma_table_info('trials')");
        QCOMPARE(std::count(columns.begin(), columns.end(), std::string("finish_order")), 0);
        QCOMPARE(std::count(columns.begin(), columns.end(), std::string("retry_of")), 0);
        QCOMPARE(raw.text("SELECT COUNT(*) FROM runs"), std::string("1"));
    }

    void refusedFiles()
    {
        SQLITE_ONLY();
        // A newer schema.
        const fs::path db = freshDb();
        { Store s(db); }
        {
            RawDb raw(db);
            raw.exec("UPDATE schema_version SET version = 99");
        }
        VERIFY_THROWS(FormatError, Store(db), db.string(), "schema version 99", "(4)");
        OpenOptions ro;
        ro.readOnly = true;
        VERIFY_THROWS(FormatError, Store(db, ro), "schema version 99", "(4)");
        {
            RawDb raw(db);
            QCOMPARE(raw.column("SELECT version FROM schema_version"), std::vector<std::string>{"99"});
        }

        // Not a database: 4 KB of text, untouched afterwards.
        const fs::path text = fs::path(tmp_.path().toStdString()) / "notes.db";
        std::string bytes;
        while (bytes.size() < 4096)
            bytes += "This is a text file, not an SQLite database. ";
        bytes.resize(4096);
        writeBytes(text, bytes);
        VERIFY_THROWS(FormatError, Store(text), text.string(), "not an SQLite database");
        VERIFY_THROWS(FormatError, Store(text, ro), text.string(), "not an SQLite database");
        QCOMPARE(readBytes(text), bytes);
        QVERIFY(!fs::exists(text.string() + "-wal"));
        QVERIFY(!fs::exists(text.string() + "-shm"));
        QVERIFY(!fs::exists(text.string() + "-journal"));

        // An SQLite database of something else.
        const fs::path other = fs::path(tmp_.path().toStdString()) / "other.db";
        {
            sqlite3* h = nullptr;
            sqlite3_open(other.c_str(), &h);
            sqlite3_exec(h, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
            sqlite3_close(h);
        }
        VERIFY_THROWS(FormatError, Store(other), other.string(), "no schema_version");

        // Read-only: a missing file is not created; an older version is not migrated; writes are refused.
        const fs::path missing = fs::path(tmp_.path().toStdString()) / "nowhere" / "missing.db";
        VERIFY_THROWS(FileError, Store(missing, ro), missing.string());
        QVERIFY(!fs::exists(missing));
        QVERIFY(!fs::exists(missing.parent_path()));

        const fs::path v1 = freshDb();
        {
            OpenOptions o;
            o.migrateTo = 1;
            Store s(v1, o);
        }
        VERIFY_THROWS(FormatError, Store(v1, ro), "schema version 1", "reads 4");
        const fs::path v2 = freshDb();
        int64_t run = 0;
        {
            Store s(v2);
            run = newRun(s);
        }
        Store reader(v2, ro);
        QCOMPARE(reader.schemaVersion(), 4);
        QCOMPARE(reader.run(run).kind, std::string("search"));
        VERIFY_THROWS_PLAIN_ERROR(reader.experimentId("x"), "read-only");

        OpenOptions bad;
        bad.migrateTo = 5;
        VERIFY_THROWS(ConfigError, Store(freshDb(), bad), "migrateTo 5");
        VERIFY_THROWS(FileError, Store(fs::path(tmp_.path().toStdString())), "is a directory");
    }

    void runsRoundTrip()
    {
        Store s(freshDb());
        const int64_t e1 = s.experimentId("alpha");
        const int64_t e2 = s.experimentId("beta");
        QCOMPARE(s.experimentId("alpha"), e1);
        QVERIFY(e1 != e2);
        const auto exps = s.experiments();
        QCOMPARE(exps.size(), size_t(2));
        QCOMPARE(exps[0].name, std::string("alpha"));
        QCOMPARE(exps[1].id, e2);
        QVERIFY(isTimestamp(exps[0].createdAt));

        const json config = json::parse(R"({"budget":{"bpw":4.25},"candidates":["nf4","int8","bf16"],
            "eps":1e-7,"third":0.1,"big":9007199254740993,"neg":-12,"name":"µ-search \"q\"","nested":[[1,2],{}],
            "flag":true,"none":null})");
        RunRecord r;
        r.experimentId = e1;
        r.kind = "search";
        r.name = "first";
        r.baseModel = "/models/stories260K";
        r.config = config;
        r.status = RunStatus::Pending;
        const int64_t run1 = s.createRun(r);
        RunRecord child;
        child.experimentId = e1;
        child.kind = "prune";
        child.parentRunId = run1;
        const int64_t run2 = s.createRun(child);
        RunRecord other;
        other.experimentId = e2;
        other.kind = "eval-ppl";
        const int64_t run3 = s.createRun(other);

        RunRecord got = s.run(run1);
        QCOMPARE(got.id, run1);
        QCOMPARE(got.experimentId, e1);
        QCOMPARE(got.experiment, std::string("alpha"));
        QCOMPARE(got.kind, std::string("search"));
        QCOMPARE(got.name, std::string("first"));
        QCOMPARE(got.baseModel, std::string("/models/stories260K"));
        QCOMPARE(got.config, config);
        QCOMPARE(got.config.dump(), config.dump());
        QCOMPARE(got.config["big"].get<int64_t>(), int64_t(9007199254740993));
        QCOMPARE(got.config["third"].get<double>(), 0.1);
        QCOMPARE(got.status, RunStatus::Pending);
        QVERIFY(!got.parentRunId);
        QVERIFY(isTimestamp(got.createdAt));
        QCOMPARE(got.finishedAt, std::string());
        QCOMPARE(s.run(run2).parentRunId, std::optional<int64_t>(run1));
        RawDb raw(s.path());
        QCOMPARE(raw.text("SELECT config_json FROM runs WHERE id = " + std::to_string(run1)), config.dump());

        s.setRunStatus(run1, RunStatus::Done);
        got = s.run(run1);
        QCOMPARE(got.status, RunStatus::Done);
        QVERIFY(isTimestamp(got.finishedAt));
        s.setRunStatus(run1, RunStatus::Running);
        QCOMPARE(s.run(run1).finishedAt, std::string());
        s.setRunStatus(run1, RunStatus::Failed, "out of memory");
        got = s.run(run1);
        QCOMPARE(got.status, RunStatus::Failed);
        QCOMPARE(got.error, std::string("out of memory"));
        QVERIFY(isTimestamp(got.finishedAt));
        s.setRunStatus(run1, RunStatus::Cancelled);
        QCOMPARE(s.run(run1).error, std::string());
        QCOMPARE(raw.text("SELECT status FROM runs WHERE id = " + std::to_string(run1)), std::string("cancelled"));
        s.setRunConfig(run1, json{{"k", 2}});
        QCOMPARE(s.run(run1).config, (json{{"k", 2}}));

        VERIFY_THROWS(ConfigError, s.run(404), "run 404 does not exist", s.path().string());
        VERIFY_THROWS(ConfigError, s.setRunStatus(404, RunStatus::Done), "run 404 does not exist");
        VERIFY_THROWS(ConfigError, s.setRunConfig(404, json::object()), "run 404 does not exist");
        RunRecord orphan;
        orphan.experimentId = 777;
        orphan.kind = "search";
        VERIFY_THROWS(ConfigError, s.createRun(orphan), "experiment 777 does not exist");
        RunRecord badParent;
        badParent.experimentId = e1;
        badParent.kind = "search";
        badParent.parentRunId = 888;
        VERIFY_THROWS(ConfigError, s.createRun(badParent), "parent run 888 does not exist");

        const std::vector<std::pair<RunStatus, std::string>> names = {{RunStatus::Pending, "pending"},
            {RunStatus::Running, "running"}, {RunStatus::Done, "done"}, {RunStatus::Failed, "failed"},
            {RunStatus::Cancelled, "cancelled"}};
        for (const auto& [status, name] : names) {
            QCOMPARE(std::string(runStatusName(status)), name);
            QCOMPARE(parseRunStatus(name), status);
        }
        VERIFY_THROWS(FormatError, parseRunStatus("finished"), "finished");
        QCOMPARE(std::string(trialStateName(TrialState::Complete)), std::string("complete"));
        QCOMPARE(parseTrialState("failed"), TrialState::Failed);
        VERIFY_THROWS(FormatError, parseTrialState("done"), "done");

        // Trial counts from runs(): run1 2 complete, 1 running, 1 failed; run3 1 running.
        std::vector<TrialRecord> claimed;
        for (const char* enc : {"00", "01", "02", "03"})
            claimed.push_back(*s.claimTrial(run1, proposal(enc), 0));
        for (int i : {0, 1}) {
            TrialRecord t = claimed[size_t(i)];
            t.objective = 1.0 + i;
            s.completeTrial(t);
        }
        s.failTrial(claimed[3].id, "nan loss");
        s.claimTrial(run3, proposal("00"), 0);
        const auto all = s.runs();
        QCOMPARE(all.size(), size_t(3));
        QCOMPARE(all[0].id, run1);
        QCOMPARE(all[1].id, run2);
        QCOMPARE(all[2].id, run3);
        QCOMPARE(all[0].trialsComplete, int64_t(2));
        QCOMPARE(all[0].trialsRunning, int64_t(1));
        QCOMPARE(all[0].trialsFailed, int64_t(1));
        QCOMPARE(all[1].trialsComplete + all[1].trialsRunning + all[1].trialsFailed, int64_t(0));
        QCOMPARE(all[2].trialsRunning, int64_t(1));
        QCOMPARE(all[2].experiment, std::string("beta"));
        QCOMPARE(s.run(run1).trialsComplete, int64_t(2));
        QCOMPARE(s.run(run1).trialsFailed, int64_t(1));
        const auto alpha = s.runs(e1);
        QCOMPARE(alpha.size(), size_t(2));
        QCOMPARE(alpha[0].trialsComplete, int64_t(2));
        QCOMPARE(alpha[1].id, run2);
        const auto beta = s.runs(e2);
        QCOMPARE(beta.size(), size_t(1));
        QCOMPARE(beta[0].trialsRunning, int64_t(1));
        QVERIFY(s.runs(999).empty());
    }

    void stagesScoresArtifacts()
    {
        Store s(freshDb());
        const int64_t run = newRun(s, "exp", "pipeline");
        const int64_t s0 = s.beginStage(run, "prune", json{{"ratio", 0.2}});
        const int64_t s1 = s.beginStage(run, "importance", json{{"metric", "mi"}});
        const int64_t s2 = s.beginStage(run, "search", json::object());
        s.finishStage(s1, RunStatus::Done, json{{"layers", 8}, {"kl", 0.125}}, 1.5);
        s.finishStage(s2, RunStatus::Failed, json::object(), 0.25, "boom");
        VERIFY_THROWS(ConfigError, s.finishStage(9999, RunStatus::Done, json::object(), 0), "stage 9999");
        VERIFY_THROWS(ConfigError, s.beginStage(404, "x", json::object()), "run 404 does not exist");

        const auto stages = s.stages(run);
        QCOMPARE(stages.size(), size_t(3));
        QCOMPARE(stages[0].id, s0);
        QCOMPARE(stages[1].id, s1);
        QCOMPARE(stages[2].id, s2);
        for (int i = 0; i < 3; ++i) {
            QCOMPARE(stages[size_t(i)].ordinal, i);
            QCOMPARE(stages[size_t(i)].runId, run);
            QVERIFY(isTimestamp(stages[size_t(i)].startedAt));
        }
        QCOMPARE(stages[0].name, std::string("prune"));
        QCOMPARE(stages[0].config, (json{{"ratio", 0.2}}));
        QCOMPARE(stages[0].status, RunStatus::Running);
        QCOMPARE(stages[0].finishedAt, std::string());
        QCOMPARE(stages[0].result, json::object());
        QCOMPARE(stages[0].seconds, 0.0);
        QCOMPARE(stages[1].status, RunStatus::Done);
        QCOMPARE(stages[1].result, (json{{"layers", 8}, {"kl", 0.125}}));
        QCOMPARE(stages[1].seconds, 1.5);
        QCOMPARE(stages[1].error, std::string());
        QVERIFY(isTimestamp(stages[1].finishedAt));
        QCOMPARE(stages[2].status, RunStatus::Failed);
        QCOMPARE(stages[2].seconds, 0.25);
        QCOMPARE(stages[2].error, std::string("boom"));
        QCOMPARE(s.beginStage(newRun(s), "other", json::object()), s2 + 1); // ordinals are per run
        QCOMPARE(s.stages(run + 1).front().ordinal, 0);

        // Layer scores: replaced on the same key, read by metric, layer, module.
        s.addLayerScores(run, s1, {{"mi", 1, "", 0.5, 1.0}, {"mi", 0, "", 0.25, 0.0}, {"mi", 0, "q", 0.3, 0.2},
                                   {"bi", 0, "", 2.0, 1.0}});
        s.addLayerScores(run, std::nullopt, {{"mi", 0, "", 0.75, 0.5}});
        auto mi = s.layerScores(run, "mi");
        QCOMPARE(mi.size(), size_t(3));
        QCOMPARE(mi[0].layer, 0);
        QCOMPARE(mi[0].module, std::string(""));
        QCOMPARE(mi[0].value, 0.75);
        QCOMPARE(mi[0].normalized, 0.5);
        QCOMPARE(mi[1].module, std::string("q"));
        QCOMPARE(mi[1].value, 0.3);
        QCOMPARE(mi[2].layer, 1);
        QCOMPARE(mi[2].value, 0.5);
        const auto every = s.layerScores(run);
        QCOMPARE(every.size(), size_t(4));
        QCOMPARE(every[0].metric, std::string("bi"));
        QCOMPARE(every[0].value, 2.0);
        QCOMPARE(every[1].metric, std::string("mi"));
        QVERIFY(s.layerScores(run, "taylor").empty());
        RawDb raw(s.path());
        QCOMPARE(raw.text("SELECT COALESCE(CAST(stage_id AS TEXT), 'NULL') FROM layer_scores WHERE metric = 'mi' AND layer = 0 "
                          "AND module = ''"),
                 std::string("NULL"));
        QCOMPARE(raw.text("SELECT stage_id FROM layer_scores WHERE metric = 'bi'"), std::to_string(s1));
        VERIFY_THROWS(ConfigError, s.addLayerScores(run, 5555, {{"taylor", 0, "", 1, 1}}), "stage 5555");
        QVERIFY(s.layerScores(run, "taylor").empty()); // the transaction was rolled back
        VERIFY_THROWS(ConfigError, s.addLayerScores(404, std::nullopt, {}), "run 404 does not exist");

        // Artifacts: a file.
        const fs::path base = fs::path(tmp_.path().toStdString()) / "artifacts";
        const std::string content = "precision map {\"layers\": []}\n";
        writeBytes(base / "map.json", content);
        const ArtifactRecord file = s.addArtifact(run, s2, "precision-map", base / "map.json");
        QCOMPARE(file.sha256, io::sha256FileHex(base / "map.json"));
        QCOMPARE(file.sha256, io::sha256Hex(content));
        QCOMPARE(file.bytes, int64_t(content.size()));
        QCOMPARE(file.path, (base / "map.json").string());
        QCOMPARE(file.stageId, std::optional<int64_t>(s2));
        QCOMPARE(file.kind, std::string("precision-map"));
        QVERIFY(isTimestamp(file.createdAt));

        // A directory: sha256 of "<sha256>  <relative path>\n" lines in sorted path order, bytes summed.
        const fs::path ckpt = base / "checkpoint";
        const std::map<std::string, std::string> files = {{"z.txt", "last"}, {"a/c.bin", std::string(3000, 'c')},
            {"a/d.txt", "d"}, {"b.safetensors", std::string(70000, '\x01')}, {"a/empty", ""}};
        for (const auto& [rel, bytes] : files)
            writeBytes(ckpt / rel, bytes);
        fs::create_directories(ckpt / "empty-dir");
        std::string lines;
        int64_t total = 0;
        for (const auto& [rel, bytes] : files) { // std::map iterates in sorted order
            lines += io::sha256Hex(bytes) + "  " + rel + "\n";
            total += int64_t(bytes.size());
        }
        QCOMPARE(lines.substr(66, 8), std::string("a/c.bin\n"));
        const ArtifactRecord dir = s.addArtifact(run, std::nullopt, "checkpoint", ckpt);
        QCOMPARE(dir.sha256, io::sha256Hex(lines));
        QCOMPARE(dir.bytes, total);
        QCOMPARE(dir.bytes, int64_t(73005));
        QVERIFY(!dir.stageId);

        VERIFY_THROWS(FileError, s.addArtifact(run, std::nullopt, "report", base / "absent.txt"), "absent.txt");
        VERIFY_THROWS(ConfigError, s.addArtifact(404, std::nullopt, "report", base / "map.json"), "run 404");
        const auto listed = s.artifacts(run);
        QCOMPARE(listed.size(), size_t(2));
        QCOMPARE(listed[0].id, file.id);
        QCOMPARE(listed[0].sha256, file.sha256);
        QCOMPARE(listed[0].stageId, std::optional<int64_t>(s2));
        QCOMPARE(listed[1].id, dir.id);
        QCOMPARE(listed[1].path, ckpt.string());
        QCOMPARE(listed[1].bytes, total);
        QCOMPARE(listed[1].createdAt, dir.createdAt);
    }

    void trialProtocol()
    {
        Store s(freshDb());
        const int64_t run = newRun(s);
        const int64_t otherRun = newRun(s, "exp2");

        std::vector<TrialRecord> t;
        for (const char* enc : {"000", "001", "002"}) {
            const auto claimed = s.claimTrial(run, proposal(enc, 100 + int64_t(t.size())), 0);
            QVERIFY(claimed);
            t.push_back(*claimed);
        }
        for (int i = 0; i < 3; ++i) {
            QCOMPARE(t[size_t(i)].number, i);
            QCOMPARE(t[size_t(i)].runId, run);
            QCOMPARE(t[size_t(i)].state, TrialState::Running);
        }
        QCOMPARE(t[0].encoding, std::string("000"));
        QCOMPARE(t[0].map, (json{{"layers", "000"}, {"version", 1}}));
        QCOMPARE(t[0].source, std::string("initial:sample"));
        QCOMPARE(t[1].memoryBytes, int64_t(101));
        QCOMPARE(t[1].budgetedBytes, int64_t(50));
        QCOMPARE(t[0].secondsSurrogate, 0.5);
        QCOMPARE(t[0].worker, Store::workerId());
        QCOMPARE(Store::workerId(), thisHost() + ":" + std::to_string(::getpid()));
        QVERIFY(isTimestamp(t[0].startedAt));
        QVERIFY(!t[0].objective);
        QCOMPARE(t[0].finishOrder, int64_t(0));
        QCOMPARE(t[0].finishedAt, std::string());

        // The same encoding in another run is a different trial.
        QCOMPARE(s.claimTrial(otherRun, proposal("000"), 0)->number, 0);
        // ... and so is the same map at another fidelity (multi-fidelity search), with its token count.
        {
            TrialRecord low = proposal("000");
            low.fidelity = 0.125;
            low.tokens = 384;
            const auto c = s.claimTrial(otherRun, low, 0);
            QVERIFY(c);
            QCOMPARE(c->number, 1);
            QCOMPARE(c->fidelity, 0.125);
            QCOMPARE(c->tokens, int64_t(384));
            QVERIFY(!s.claimTrial(otherRun, low, 0));
            QCOMPARE(s.trialSummaries(otherRun).at(1).fidelity, 0.125);
            QCOMPARE(s.trialSummaries(otherRun).at(1).tokens, int64_t(384));
            QCOMPARE(s.trialSummaries(otherRun).at(0).fidelity, 1.0);
            low.fidelity = 0;
            VERIFY_THROWS(ConfigError, s.claimTrial(otherRun, low, 0), "fidelity", "outside (0, 1]");
            low.fidelity = 1.5;
            VERIFY_THROWS(ConfigError, s.claimTrial(otherRun, low, 0), "fidelity");
        }
        // Duplicates refused while running, allowed after the first failed; numbers are never reused.
        QVERIFY(!s.claimTrial(run, proposal("000"), 0));
        s.failTrial(t[0].id, "out of memory");
        s.failTrial(t[0].id, "again"); // already failed: nothing changes
        QCOMPARE(s.trial(run, 0).error, std::string("out of memory"));
        QCOMPARE(s.trial(run, 0).state, TrialState::Failed);
        QVERIFY(isTimestamp(s.trial(run, 0).finishedAt));
        TrialRecord retry = proposal("000");
        retry.retryOf = 0;
        retry.source = "retry";
        const auto t3 = s.claimTrial(run, retry, 0);
        QVERIFY(t3);
        QCOMPARE(t3->number, 3);
        QCOMPARE(t3->retryOf, std::optional<int>(0));
        QCOMPARE(t3->source, std::string("retry"));
        QVERIFY(!s.claimTrial(run, proposal("000"), 0));

        // maxTrials counts running and complete trials (1, 2, 3 now), not failed ones.
        QVERIFY(!s.claimTrial(run, proposal("010"), 3));
        QVERIFY(!s.claimTrial(run, proposal("010"), 2));
        const auto t4 = s.claimTrial(run, proposal("010"), 4);
        QVERIFY(t4);
        QCOMPARE(t4->number, 4);
        QVERIFY(!s.claimTrial(run, proposal("011"), 4));
        RawDb raw(s.path());
        QCOMPARE(raw.text("SELECT COUNT(*) FROM trials WHERE run_id = " + std::to_string(run)), std::string("5"));

        // Completion order, not number order, gives finishOrder.
        TrialRecord done2 = t[2];
        done2.objective = 2.5;
        done2.metrics = json{{"ppl", 2.5}, {"mean_nll", 0.9162907318741551}};
        done2.secondsQuantize = 1.25;
        done2.secondsEvaluate = 3.5;
        done2.secondsSurrogate = 0.75;
        s.completeTrial(done2);
        TrialRecord done1 = t[1];
        done1.objective = 1.5;
        s.completeTrial(done1);
        const TrialRecord got2 = s.trial(run, 2);
        QCOMPARE(got2.state, TrialState::Complete);
        QCOMPARE(got2.objective, std::optional<double>(2.5));
        QCOMPARE(got2.metrics, done2.metrics);
        QCOMPARE(got2.secondsQuantize, 1.25);
        QCOMPARE(got2.secondsEvaluate, 3.5);
        QCOMPARE(got2.secondsSurrogate, 0.75);
        QCOMPARE(got2.finishOrder, int64_t(1));
        QVERIFY(isTimestamp(got2.finishedAt));
        QCOMPARE(got2.map, t[2].map);
        QCOMPARE(s.trial(run, 1).finishOrder, int64_t(2));
        QVERIFY(s.trial(run, 1).metrics.is_null());
        QCOMPARE(s.trial(otherRun, 0).finishOrder, int64_t(0));

        // A failed (or complete) trial is not overwritten.
        TrialRecord late = t[0];
        late.objective = 0.1;
        VERIFY_THROWS_PLAIN_ERROR(s.completeTrial(late),
                      "trial 0 of run " + std::to_string(run) + " is not running (failed)", "out of memory");
        QCOMPARE(s.trial(run, 0).state, TrialState::Failed);
        QVERIFY(!s.trial(run, 0).objective);
        QCOMPARE(s.trial(run, 0).finishOrder, int64_t(0));
        done2.objective = 9.0;
        VERIFY_THROWS_PLAIN_ERROR(s.completeTrial(done2), "trial 2 of run", "is not running (complete)");
        QCOMPARE(s.trial(run, 2).objective, std::optional<double>(2.5));
        QCOMPARE(s.trial(run, 2).finishOrder, int64_t(1));
        VERIFY_THROWS_PLAIN_ERROR(s.failTrial(t[2].id, "x"), "is not running (complete)");
        TrialRecord noObjective = *t4;
        VERIFY_THROWS(ConfigError, s.completeTrial(noObjective), "no objective");
        VERIFY_THROWS(ConfigError, s.trial(run, 99), "trial 99 of run");
        TrialRecord ghost = t[1];
        ghost.id = 987654;
        ghost.objective = 1;
        VERIFY_THROWS(ConfigError, s.completeTrial(ghost), "trial id 987654 does not exist");

        // Reclaiming: trial 3 of a dead worker on this host, 4 of this live process, 5 of another host.
        const pid_t dead = deadPid();
        QCOMPARE(::kill(dead, 0), -1);
        const auto t5 = s.claimTrial(run, proposal("020"), 0);
        QCOMPARE(t5->number, 5);
        const std::string deadWorker = thisHost() + ":" + std::to_string(dead);
        raw.exec("UPDATE trials SET worker = '" + deadWorker + "' WHERE id = " + std::to_string(t3->id));
        raw.exec("UPDATE trials SET worker = 'elsewhere.example:1' WHERE id = " + std::to_string(t5->id));
        QCOMPARE(s.reclaimTrials(run), std::vector<int>{3});
        const TrialRecord reclaimed = s.trial(run, 3);
        QCOMPARE(reclaimed.state, TrialState::Failed);
        QCOMPARE(reclaimed.error, "worker " + deadWorker + " is gone");
        QVERIFY(isTimestamp(reclaimed.finishedAt));
        QCOMPARE(s.trial(run, 4).state, TrialState::Running);
        QCOMPARE(s.trial(run, 5).state, TrialState::Running);
        QVERIFY(s.reclaimTrials(run).empty());
        QCOMPARE(s.reclaimTrials(run, true), (std::vector<int>{4, 5}));
        QCOMPARE(s.trial(run, 5).error, std::string("worker elsewhere.example:1 is gone"));
        QCOMPARE(s.trial(otherRun, 0).state, TrialState::Running); // another run is left alone
        QCOMPARE(s.claimTrial(run, proposal("030"), 0)->number, 6);

        // Summaries: everything but the JSON columns.
        const auto full = s.trials(run);
        const auto summary = s.trialSummaries(run);
        QCOMPARE(full.size(), size_t(7));
        QCOMPARE(summary.size(), size_t(7));
        for (size_t i = 0; i < full.size(); ++i) {
            QCOMPARE(summary[i].number, int(i));
            QCOMPARE(full[i].number, int(i));
            QVERIFY(summary[i].map.is_null());
            QVERIFY(summary[i].metrics.is_null());
            QVERIFY(!full[i].map.is_null());
            QCOMPARE(summary[i].id, full[i].id);
            QCOMPARE(summary[i].state, full[i].state);
            QCOMPARE(summary[i].encoding, full[i].encoding);
            QCOMPARE(summary[i].source, full[i].source);
            QCOMPARE(summary[i].objective, full[i].objective);
            QCOMPARE(summary[i].memoryBytes, full[i].memoryBytes);
            QCOMPARE(summary[i].budgetedBytes, full[i].budgetedBytes);
            QCOMPARE(summary[i].secondsSurrogate, full[i].secondsSurrogate);
            QCOMPARE(summary[i].worker, full[i].worker);
            QCOMPARE(summary[i].retryOf, full[i].retryOf);
            QCOMPARE(summary[i].finishOrder, full[i].finishOrder);
            QCOMPARE(summary[i].startedAt, full[i].startedAt);
            QCOMPARE(summary[i].finishedAt, full[i].finishedAt);
            QCOMPARE(summary[i].error, full[i].error);
        }
        QCOMPARE(full[2].metrics, done2.metrics);
        QCOMPARE(summary[2].objective, std::optional<double>(2.5));
        QCOMPARE(summary[2].finishOrder, int64_t(1));
        QCOMPARE(summary[3].retryOf, std::optional<int>(0));
        QCOMPARE(summary[3].error, "worker " + deadWorker + " is gone");

        // Stored JSON that does not parse: named by table, row and column; summaries do not read it.
        raw.exec("UPDATE trials SET map_json = '{\"layers\": ' WHERE id = " + std::to_string(t[1].id));
        VERIFY_THROWS(FormatError, s.trials(run), "table trials", "row " + std::to_string(t[1].id), "map_json");
        VERIFY_THROWS(FormatError, s.trial(run, 1), "map_json");
        QCOMPARE(s.trialSummaries(run).size(), size_t(7));
        raw.exec("UPDATE runs SET config_json = 'nope' WHERE id = " + std::to_string(otherRun));
        VERIFY_THROWS(FormatError, s.run(otherRun), "table runs", "row " + std::to_string(otherRun), "config_json");
    }

    void concurrentThreadsDistinct()
    {
        const fs::path db = freshDb();
        int64_t run = 0;
        {
            Store s(db);
            run = newRun(s);
        }
        std::atomic<int> refused{0};
        std::vector<std::string> errors(2);
        auto worker = [&](int w) {
            try {
                Store s(db);
                for (int i = 0; i < 200; ++i)
                    if (!s.claimTrial(run, proposal((w ? "B" : "A") + std::to_string(i)), 0))
                        ++refused;
            } catch (const std::exception& e) {
                errors[size_t(w)] = e.what();
            }
        };
        std::thread a(worker, 0), b(worker, 1);
        a.join();
        b.join();
        QVERIFY2(errors[0].empty(), errors[0].c_str());
        QVERIFY2(errors[1].empty(), errors[1].c_str());
        QCOMPARE(refused.load(), 0);
        Store s(db);
        const auto trials = s.trialSummaries(run);
        QCOMPARE(trials.size(), size_t(400));
        std::set<std::string> encodings;
        for (size_t i = 0; i < trials.size(); ++i) {
            QCOMPARE(trials[i].number, int(i));
            encodings.insert(trials[i].encoding);
        }
        QCOMPARE(encodings.size(), size_t(400));
        QCOMPARE(s.integrityCheck(), std::string("ok"));
    }

    void concurrentThreadsSameEncodings()
    {
        const fs::path db = freshDb();
        int64_t run = 0;
        {
            Store s(db);
            run = newRun(s);
        }
        // Two Stores of their own and a third thread sharing the first Store.
        Store shared(db);
        std::atomic<int> claimed{0};
        std::vector<std::string> errors(3);
        auto worker = [&](int w) {
            try {
                std::unique_ptr<Store> own;
                Store* s = &shared;
                if (w < 2) {
                    own = std::make_unique<Store>(db);
                    s = own.get();
                }
                const int stride = std::array{1, 3, 7}[size_t(w)]; // each thread visits all 100 in its own order
                for (int i = 0; i < 100; ++i)
                    if (s->claimTrial(run, proposal("E" + std::to_string((i * stride) % 100)), 0))
                        ++claimed;
            } catch (const std::exception& e) {
                errors[size_t(w)] = e.what();
            }
        };
        std::thread a(worker, 0), b(worker, 1), c(worker, 2);
        a.join();
        b.join();
        c.join();
        for (const auto& e : errors)
            QVERIFY2(e.empty(), e.c_str());
        QCOMPARE(claimed.load(), 100);
        const auto trials = shared.trialSummaries(run);
        QCOMPARE(trials.size(), size_t(100));
        std::set<std::string> encodings;
        for (size_t i = 0; i < trials.size(); ++i) {
            QCOMPARE(trials[i].number, int(i));
            encodings.insert(trials[i].encoding);
        }
        QCOMPARE(encodings.size(), size_t(100));
    }

    void readerDuringWrites()
    {
        const fs::path db = freshDb();
        int64_t run = 0;
        {
            Store s(db);
            run = newRun(s);
        }
        constexpr int kTrials = 300;
        std::atomic<bool> writing{true};
        std::string writerError, readerError, violation;
        int reads = 0;
        int64_t maxCompleteSeen = 0;
        std::thread writer([&] {
            try {
                Store s(db);
                for (int i = 0; i < kTrials; ++i) {
                    TrialRecord t = *s.claimTrial(run, proposal("R" + std::to_string(i)), 0);
                    t.objective = double(i);
                    t.metrics = json{{"ppl", i}};
                    s.completeTrial(t);
                }
            } catch (const std::exception& e) {
                writerError = e.what();
            }
            writing = false;
        });
        std::thread reader([&] {
            try {
                Store s(db);
                bool last = false;
                while (!last && violation.empty()) {
                    last = !writing;
                    const auto trials = s.trialSummaries(run);
                    ++reads;
                    std::set<int64_t> orders;
                    for (size_t i = 0; i < trials.size(); ++i) {
                        const TrialRecord& t = trials[i];
                        if (t.number != int(i))
                            violation = "numbers not dense";
                        if (t.state == TrialState::Complete) {
                            if (!t.objective || *t.objective != double(t.number) || t.finishOrder <= 0 ||
                                t.finishedAt.empty())
                                violation = "complete trial " + std::to_string(t.number) + " is half-written";
                            orders.insert(t.finishOrder);
                        } else if (t.objective || t.finishOrder != 0) {
                            violation = "running trial " + std::to_string(t.number) + " has results";
                        }
                    }
                    // Finish orders of the complete trials are exactly 1..k.
                    if (!orders.empty() && (*orders.begin() != 1 || *orders.rbegin() != int64_t(orders.size())))
                        violation = "finish orders are not 1..k";
                    maxCompleteSeen = std::max(maxCompleteSeen, int64_t(orders.size()));
                }
            } catch (const std::exception& e) {
                readerError = e.what();
            }
        });
        writer.join();
        reader.join();
        QVERIFY2(writerError.empty(), writerError.c_str());
        QVERIFY2(readerError.empty(), readerError.c_str());
        QVERIFY2(violation.empty(), violation.c_str());
        QVERIFY(reads >= 2);
        QCOMPARE(maxCompleteSeen, int64_t(kTrials)); // the last read came after the writer finished
        qInfo("reader made %d reads during %d claim+complete pairs", reads, kTrials);
    }

    void concurrentProcesses()
    {
        const fs::path db = freshDb();
        Store s(db);
        const int64_t run = newRun(s);
        constexpr int kEach = 100;
        const QString exe = QCoreApplication::applicationFilePath();
        std::vector<std::unique_ptr<QProcess>> children;
        std::vector<qint64> pids;
        for (const char* prefix : {"P", "Q"}) {
            auto p = std::make_unique<QProcess>();
            p->start(exe, {"--child-claim", QString::fromStdString(db.string()), QString::number(run),
                           QString::number(kEach), prefix});
            QVERIFY2(p->waitForStarted(10000), qPrintable(p->errorString()));
            pids.push_back(p->processId());
            children.push_back(std::move(p));
        }
        int parentClaimed = 0;
        for (int i = 0; i < kEach; ++i)
            if (s.claimTrial(run, proposal("M" + std::to_string(i)), 0))
                ++parentClaimed;
        for (auto& p : children) {
            QVERIFY(p->waitForFinished(60000));
            const QByteArray err = p->readAllStandardError();
            QVERIFY2(!err.contains("locked"), err.constData());
            QCOMPARE(p->exitStatus(), QProcess::NormalExit);
            QVERIFY2(p->exitCode() == 0, err.constData());
        }
        QCOMPARE(parentClaimed, kEach);
        const auto trials = s.trialSummaries(run);
        QCOMPARE(trials.size(), size_t(3 * kEach));
        std::map<char, int> byPrefix;
        std::map<std::string, int> byWorker;
        std::set<std::string> encodings;
        for (size_t i = 0; i < trials.size(); ++i) {
            QCOMPARE(trials[i].number, int(i));
            ++byPrefix[trials[i].encoding[0]];
            ++byWorker[trials[i].worker];
            encodings.insert(trials[i].encoding);
        }
        QCOMPARE(encodings.size(), size_t(3 * kEach));
        QCOMPARE(byPrefix['P'], kEach);
        QCOMPARE(byPrefix['Q'], kEach);
        QCOMPARE(byPrefix['M'], kEach);
        QCOMPARE(byWorker[Store::workerId()], kEach);
        QCOMPARE(byWorker[thisHost() + ":" + std::to_string(pids[0])], kEach);
        QCOMPARE(byWorker[thisHost() + ":" + std::to_string(pids[1])], kEach);
        QCOMPARE(s.run(run).trialsRunning, int64_t(3 * kEach));
        QCOMPARE(s.integrityCheck(), std::string("ok"));
        // The children have exited: every trial of theirs is reclaimable, the parent's are not.
        const auto reclaimed = s.reclaimTrials(run);
        QCOMPARE(reclaimed.size(), size_t(2 * kEach));
        QCOMPARE(s.run(run).trialsRunning, int64_t(kEach));
    }

    // Heartbeats: one row per worker process, beats counted, the database's clock; trials of workers that
    // stopped beating (another host), never beat (another host, old trial) or whose process ended are reclaimed.
    void heartbeatsAndStaleWorkers()
    {
        Store s(freshDb());
        const int64_t run = newRun(s);
        QVERIFY(s.workers(run).empty());
        s.heartbeat(run);
        s.heartbeat(run);
        auto w = s.workers(run);
        QCOMPARE(w.size(), size_t(1));
        QCOMPARE(w[0].id, Store::workerId());
        QCOMPARE(w[0].beats, int64_t(2));
        QCOMPARE(w[0].pid, int64_t(::getpid()));
        QVERIFY2(w[0].secondsSinceBeat >= -1 && w[0].secondsSinceBeat < 5, std::to_string(w[0].secondsSinceBeat).c_str());

        const auto mine = s.claimTrial(run, proposal("A"), 0);
        const auto far = s.claimTrial(run, proposal("B"), 0);
        const auto never = s.claimTrial(run, proposal("C"), 0);
        const auto fresh = s.claimTrial(run, proposal("D"), 0);
        const auto recent = s.claimTrial(run, proposal("E"), 0);
        {
            RawDb raw(s.path());
            raw.exec("UPDATE trials SET worker = 'far.example:7' WHERE id = " + std::to_string(far->id));
            raw.exec("UPDATE trials SET worker = 'never.example:9', started_at = '2020-01-01T00:00:00.000Z' "
                     "WHERE id = " + std::to_string(never->id));
            raw.exec("UPDATE trials SET worker = 'fresh.example:3' WHERE id = " + std::to_string(fresh->id));
            raw.exec("UPDATE trials SET worker = 'recent.example:4' WHERE id = " + std::to_string(recent->id));
            // far.example beat last at the epoch; fresh.example just now (copied from this worker's row).
            raw.exec("INSERT INTO workers(id, run_id, host, pid, started_at, beat_ms, beats) VALUES "
                     "('far.example:7', " + std::to_string(run) + ", 'far.example', 7, '2020-01-01T00:00:00.000Z', 0, 3)");
            raw.exec("INSERT INTO workers(id, run_id, host, pid, started_at, beat_ms, beats) SELECT 'fresh.example:3', "
                     "run_id, 'fresh.example', 3, started_at, beat_ms, 1 FROM workers WHERE id = '" +
                     Store::workerId() + "'");
        }
        QCOMPARE(s.workers(run).size(), size_t(3));
        const auto reclaimed = s.reclaimStaleTrials(run, 60);
        QCOMPARE(reclaimed, (std::vector<int>{far->number, never->number}));
        const auto t = s.trials(run);
        QVERIFY2(t[size_t(far->number)].error.find("worker far.example:7 is gone: no heartbeat for") == 0,
                 t[size_t(far->number)].error.c_str());
        QCOMPARE(t[size_t(never->number)].error, std::string("worker never.example:9 is gone: it never sent a heartbeat"));
        QCOMPARE(t[size_t(mine->number)].state, TrialState::Running);   // alive, here
        QCOMPARE(t[size_t(fresh->number)].state, TrialState::Running);  // beating
        QCOMPARE(t[size_t(recent->number)].state, TrialState::Running); // no row yet, but started just now
        // The gone worker's row went with it.
        w = s.workers(run);
        QCOMPARE(w.size(), size_t(2));
        QVERIFY(std::none_of(w.begin(), w.end(), [](const WorkerRecord& r) { return r.id == "far.example:7"; }));
        s.retireWorker(run);
        QCOMPARE(s.workers(run).size(), size_t(1));
        QCOMPARE(s.workers(run)[0].id, std::string("fresh.example:3"));
    }

    // PostgreSQL: a connection the server drops inside a write transaction (here a trigger that terminates its own
    // backend on the first trial insert) is retried once on a new connection: claimTrial succeeds with one trial
    // stored. One dropped during the commit (a deferred trigger, run by COMMIT) is not retried, since whether it
    // landed is unknown to the client: the call fails naming the loss, nothing is stored, and the next call works.
    void connectionLostMidTransaction()
    {
        if (!kPostgres)
            QSKIP("about a server connection (run by test_store_pg)");
        Store s(freshDb());
        const int64_t run = newRun(s);
        RawDb raw(s.path());
        raw.exec("CREATE SEQUENCE cut_insert; CREATE SEQUENCE cut_commit; "
                 "CREATE FUNCTION cut_insert() RETURNS trigger AS $$ BEGIN "
                 "IF nextval('cut_insert') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
                 "PERFORM pg_sleep(5); END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                 "CREATE TRIGGER cut_insert BEFORE INSERT ON trials FOR EACH ROW EXECUTE FUNCTION cut_insert()");
        const auto a = s.claimTrial(run, proposal("A"), 0);
        QVERIFY(a);
        QCOMPARE(a->number, 0);
        QCOMPARE(raw.text("SELECT last_value FROM cut_insert"), std::string("2")); // cut once, then inserted
        QCOMPARE(raw.column("SELECT encoding FROM trials ORDER BY number"), std::vector<std::string>{"A"});
        s.failTrial(a->id, "x"); // the store goes on on its new connection

        raw.exec("DROP TRIGGER cut_insert ON trials; "
                 "CREATE FUNCTION cut_commit() RETURNS trigger AS $$ BEGIN "
                 "IF nextval('cut_commit') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
                 "PERFORM pg_sleep(5); END IF; RETURN NULL; END $$ LANGUAGE plpgsql; "
                 "CREATE CONSTRAINT TRIGGER cut_commit AFTER INSERT ON trials DEFERRABLE INITIALLY DEFERRED "
                 "FOR EACH ROW EXECUTE FUNCTION cut_commit()");
        bool threw = false;
        try {
            s.claimTrial(run, proposal("B"), 0);
        } catch (const Error& e) {
            threw = true;
            QVERIFY2(std::string(e.what()).find("commit") != std::string::npos, e.what());
        }
        QVERIFY(threw);
        QCOMPARE(raw.text("SELECT last_value FROM cut_commit"), std::string("1")); // not run again
        QCOMPARE(raw.column("SELECT encoding FROM trials ORDER BY number"), std::vector<std::string>{"A"});
        const auto b = s.claimTrial(run, proposal("B"), 0);
        QVERIFY(b);
        QCOMPARE(b->number, 1);
    }

    // db copy: every record, ids and values exactly (doubles bit for bit), into an empty store; here SQLite ->
    // this suite's engine -> a fresh SQLite file, compared record by record; the copy takes new rows after the
    // copied ids; a store that holds experiments is refused.
    void copyBetweenEngines()
    {
        const fs::path source = fs::path(tmp_.path().toStdString()) / ("copy" + std::to_string(++dbCounter_)) / "a.db";
        Store a(source);
        const int64_t r1 = newRun(a, "first");
        RunRecord child;
        child.experimentId = a.experimentId("second");
        child.kind = "pipeline";
        child.name = "child \u00e9 'quoted'";
        child.baseModel = "/models/x.bin";
        child.config = json{{"seed", 3}, {"budget", "6bpw"}, {"ratio", 0.1 + 0.2}};
        child.parentRunId = r1;
        const int64_t r2 = a.createRun(child);
        a.setRunStatus(r1, RunStatus::Failed, "out of memory");
        const int64_t st1 = a.beginStage(r2, "prune", json{{"ratio", 0.25}});
        a.finishStage(st1, RunStatus::Done, json{{"kept", 0.75}, {"pi", 3.141592653589793}}, 1.0 / 3.0);
        a.beginStage(r2, "search", json::object());
        a.addLayerScores(r2, st1, {{"mi", 0, "", 0.1, 1.0 / 7.0}, {"mi", 1, "q", 2.5e-300, 0}});
        const fs::path file = fs::path(tmp_.path().toStdString()) / "artifact.txt";
        writeBytes(file, "artifact bytes");
        a.addArtifact(r2, st1, "report", file);
        auto t0 = a.claimTrial(r2, proposal("00"), 0);
        t0->objective = 1.0 / 3.0;
        t0->metrics = json{{"ppl", 12.345678901234567}};
        t0->secondsQuantize = 0.1;
        a.completeTrial(*t0);
        auto low = proposal("01");
        low.fidelity = 1.0 / 3.0;
        low.tokens = 1234;
        auto t1 = a.claimTrial(r2, low, 0);
        a.failTrial(t1->id, "cancelled");
        auto retry = low;
        retry.retryOf = t1->number;
        a.claimTrial(r2, retry, 0);

        const fs::path middle = freshDb();
        Store b(middle);
        const auto counts = copyStore(a, b);
        QCOMPARE(counts.size(), size_t(6));
        QCOMPARE(counts[0], (std::pair<std::string, int64_t>{"experiments", 2}));
        QCOMPARE(counts[1], (std::pair<std::string, int64_t>{"runs", 2}));
        QCOMPARE(counts[4], (std::pair<std::string, int64_t>{"trials", 3}));

        auto same = [&](const Store& x, const Store& y) {
            QCOMPARE(x.experiments().size(), y.experiments().size());
            for (size_t i = 0; i < x.experiments().size(); ++i) {
                QCOMPARE(x.experiments()[i].id, y.experiments()[i].id);
                QCOMPARE(x.experiments()[i].name, y.experiments()[i].name);
                QCOMPARE(x.experiments()[i].createdAt, y.experiments()[i].createdAt);
            }
            const auto xr = x.runs(), yr = y.runs();
            QCOMPARE(xr.size(), yr.size());
            for (size_t i = 0; i < xr.size(); ++i) {
                QCOMPARE(xr[i].id, yr[i].id);
                QCOMPARE(xr[i].name, yr[i].name);
                QCOMPARE(xr[i].config.dump(), yr[i].config.dump());
                QCOMPARE(xr[i].status, yr[i].status);
                QCOMPARE(xr[i].parentRunId, yr[i].parentRunId);
                QCOMPARE(xr[i].createdAt, yr[i].createdAt);
                QCOMPARE(xr[i].finishedAt, yr[i].finishedAt);
                QCOMPARE(xr[i].error, yr[i].error);
                QCOMPARE(xr[i].trialsComplete, yr[i].trialsComplete);
                QCOMPARE(xr[i].trialsFailed, yr[i].trialsFailed);
                QCOMPARE(xr[i].trialsRunning, yr[i].trialsRunning);
                const auto xs = x.stages(xr[i].id), ys = y.stages(yr[i].id);
                QCOMPARE(xs.size(), ys.size());
                for (size_t k = 0; k < xs.size(); ++k) {
                    QCOMPARE(xs[k].id, ys[k].id);
                    QCOMPARE(xs[k].result.dump(), ys[k].result.dump());
                    QCOMPARE(xs[k].seconds, ys[k].seconds); // exactly
                    QCOMPARE(xs[k].status, ys[k].status);
                    QCOMPARE(xs[k].finishedAt, ys[k].finishedAt);
                }
                const auto xl = x.layerScores(xr[i].id), yl = y.layerScores(yr[i].id);
                QCOMPARE(xl.size(), yl.size());
                for (size_t k = 0; k < xl.size(); ++k) {
                    QCOMPARE(xl[k].value, yl[k].value);
                    QCOMPARE(xl[k].normalized, yl[k].normalized);
                    QCOMPARE(xl[k].module, yl[k].module);
                }
                const auto xa = x.artifacts(xr[i].id), ya = y.artifacts(yr[i].id);
                QCOMPARE(xa.size(), ya.size());
                for (size_t k = 0; k < xa.size(); ++k) {
                    QCOMPARE(xa[k].sha256, ya[k].sha256);
                    QCOMPARE(xa[k].stageId, ya[k].stageId);
                    QCOMPARE(xa[k].bytes, ya[k].bytes);
                }
                const auto xt = x.trials(xr[i].id), yt = y.trials(yr[i].id);
                QCOMPARE(xt.size(), yt.size());
                for (size_t k = 0; k < xt.size(); ++k) {
                    QCOMPARE(xt[k].id, yt[k].id);
                    QCOMPARE(xt[k].state, yt[k].state);
                    QCOMPARE(xt[k].objective, yt[k].objective);
                    QCOMPARE(xt[k].metrics.dump(), yt[k].metrics.dump());
                    QCOMPARE(xt[k].map.dump(), yt[k].map.dump());
                    QCOMPARE(xt[k].retryOf, yt[k].retryOf);
                    QCOMPARE(xt[k].secondsQuantize, yt[k].secondsQuantize);
                    QCOMPARE(xt[k].secondsSurrogate, yt[k].secondsSurrogate);
                    QCOMPARE(xt[k].finishOrder, yt[k].finishOrder);
                    QCOMPARE(xt[k].fidelity, yt[k].fidelity);
                    QCOMPARE(xt[k].tokens, yt[k].tokens);
                    QCOMPARE(xt[k].worker, yt[k].worker);
                    QCOMPARE(xt[k].error, yt[k].error);
                    QCOMPARE(xt[k].startedAt, yt[k].startedAt);
                }
            }
        };
        same(a, b);
        QCOMPARE(b.run(r2).config["ratio"].get<double>(), 0.1 + 0.2);
        QCOMPARE(b.layerScores(r2)[1].value, 2.5e-300);

        // And back to a fresh SQLite file.
        const fs::path back = fs::path(tmp_.path().toStdString()) / ("copy" + std::to_string(++dbCounter_)) / "c.db";
        Store c(back);
        copyStore(b, c);
        same(a, c);

        // New rows continue after the copied ids.
        const int64_t r3 = newRun(b, "third");
        QCOMPARE(r3, r2 + 1);
        const auto next = b.claimTrial(r2, proposal("10"), 0);
        QCOMPARE(next->number, 3);
        QVERIFY(next->id > t0->id + 2);
        VERIFY_THROWS(ConfigError, copyStore(a, b), "already holds 3 experiment(s)");
    }

    void largeRun()
    {
        SQLITE_ONLY();
        const fs::path db = freshDb();
        int64_t run = 0;
        int64_t small = 0;
        {
            Store s(db);
            run = newRun(s);
            small = newRun(s);
            s.claimTrial(small, proposal("0"), 0);
        }
        constexpr int kTrials = 100000;
        testing::insertSyntheticTrials(db, run, kTrials);
        {
            // Summaries come from an index holding all their columns, not from the rows with the large maps.
            RawDb raw(db);
            const auto plan = raw.column("EXPLAIN QUERY PLAN SELECT number, state, objective, finish_order, error, "
                                         "worker FROM trials WHERE run_id = 1 ORDER BY number",
                                         3);
            QCOMPARE(plan.size(), size_t(1));
            QVERIFY2(plan[0].find("COVERING INDEX trials_run_summary") != std::string::npos, plan[0].c_str());
        }
        Store s(db);
        QElapsedTimer timer;
        timer.start();
        const auto summaries = s.trialSummaries(run);
        const qint64 summaryMs = timer.elapsed();
        QCOMPARE(summaries.size(), size_t(kTrials));
        for (int i = 0; i < kTrials; ++i) {
            const TrialRecord& t = summaries[size_t(i)];
            if (t.number != i || t.encoding != std::to_string(i) || t.memoryBytes != 1000000 + i)
                QFAIL(qPrintable(QString("summary %1 is trial %2").arg(i).arg(t.number)));
            if ((i % 10 == 9) != (t.state == TrialState::Failed) || (i % 10 != 9 && t.objective != 10.0 + i))
                QFAIL(qPrintable(QString("summary %1 has the wrong state or objective").arg(i)));
        }
        QVERIFY(summaries[5].map.is_null());
        timer.restart();
        const auto runs = s.runs();
        const qint64 runsMs = timer.elapsed();
        QCOMPARE(runs.size(), size_t(2));
        QCOMPARE(runs[0].trialsComplete, int64_t(90000));
        QCOMPARE(runs[0].trialsFailed, int64_t(10000));
        QCOMPARE(runs[1].trialsRunning, int64_t(1));
        timer.restart();
        const auto full = s.trials(run);
        const qint64 fullMs = timer.elapsed();
        QCOMPARE(full.size(), size_t(kTrials));
        QCOMPARE(full[12345].map["n"].get<int>(), 12345);
        timer.restart();
        const auto next = s.claimTrial(run, proposal("new"), 0);
        const qint64 claimMs = timer.elapsed();
        QCOMPARE(next->number, kTrials);
        qInfo("100,000 trials: trialSummaries %lld ms, runs() %lld ms, trials() %lld ms, claimTrial %lld ms",
              summaryMs, runsMs, fullMs, claimMs);
    }
};

int main(int argc, char** argv)
{
    if (argc >= 2 && std::string_view(argv[1]) == "--child-claim")
        return childClaim(argc, argv);
    QCoreApplication app(argc, argv);
    TestStore tc;
    return QTest::qExec(&tc, argc, argv);
}

#include "test_store.moc"
