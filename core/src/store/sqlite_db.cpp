#include "store/sqlite_db.h"

#include <chrono>
#include <thread>

#include "qpruner/error.h"

namespace qpruner::store::detail {

namespace {

using Clock = std::chrono::steady_clock;

// SQLite returns SQLITE_BUSY without consulting the busy handler in a few cases (WAL recovery by another
// connection, a checkpoint racing an open); those are retried here with short sleeps.
constexpr auto kBusyRetrySleep = std::chrono::milliseconds(2);

class SqliteStatement : public StatementImpl {
public:
    SqliteStatement(SqliteDatabase& db, sqlite3_stmt* stmt, const char* purpose)
        : db_(db), stmt_(stmt), purpose_(purpose)
    {
    }
    ~SqliteStatement() override
    {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    void bindInt(int i, int64_t v) override { check(sqlite3_bind_int64(stmt_, i, v)); }
    void bindReal(int i, double v) override { check(sqlite3_bind_double(stmt_, i, v)); }
    void bindText(int i, std::string_view v) override
    {
        check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    }
    void bindNull(int i) override { check(sqlite3_bind_null(stmt_, i)); }
    bool step() override
    {
        const auto deadline = Clock::now() + std::chrono::milliseconds(db_.busyTimeoutMs());
        for (;;) {
            const int rc = sqlite3_step(stmt_);
            if ((rc & 0xff) == SQLITE_BUSY && !rowsSeen_ && Clock::now() < deadline) {
                sqlite3_reset(stmt_);
                std::this_thread::sleep_for(kBusyRetrySleep);
                continue;
            }
            if (rc == SQLITE_ROW) {
                rowsSeen_ = true;
                return true;
            }
            if (rc == SQLITE_DONE) {
                changes_ = sqlite3_changes64(db_.handle());
                return false;
            }
            fail();
        }
    }
    bool isNull(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    int64_t int64(int col) const override { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const override { return sqlite3_column_double(stmt_, col); }
    std::string_view textView(int col) const override
    {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        if (!p)
            return {};
        return std::string_view(p, size_t(sqlite3_column_bytes(stmt_, col)));
    }
    int64_t changes() const override { return changes_; }
    [[noreturn]] void fail() const override { db_.fail(purpose_); }

private:
    void check(int rc)
    {
        if (rc != SQLITE_OK)
            fail();
    }

    SqliteDatabase& db_;
    sqlite3_stmt* stmt_;
    const char* purpose_;
    bool rowsSeen_ = false;
    int64_t changes_ = 0;
};

} // namespace

SqliteDatabase::SqliteDatabase(const std::filesystem::path& path, int flags, int busyTimeoutMs)
    : busyTimeoutMs_(busyTimeoutMs)
{
    name_ = path.string();
    const int rc = sqlite3_open_v2(name_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw FileError(name_ + ": cannot open the store database: " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busyTimeoutMs_);
}

SqliteDatabase::~SqliteDatabase()
{
    for (auto& [sql, stmt] : cache_)
        sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
}

void SqliteDatabase::fail(const char* purpose) const
{
    throw Error(std::string(purpose) + ": " + sqlite3_errmsg(db_) + " (" + name_ + ")");
}

Statement SqliteDatabase::prepare(const char* sql, const char* purpose)
{
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(busyTimeoutMs_);
        sqlite3_stmt* stmt = nullptr;
        for (;;) {
            const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
            if (rc == SQLITE_OK)
                break;
            if ((rc & 0xff) == SQLITE_BUSY && Clock::now() < deadline) {
                std::this_thread::sleep_for(kBusyRetrySleep);
                continue;
            }
            fail(purpose);
        }
        it = cache_.emplace(sql, stmt).first;
    }
    return Statement(std::make_unique<SqliteStatement>(*this, it->second, purpose));
}

int SqliteDatabase::probe(const char* sql)
{
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

void SqliteDatabase::execScript(const char* sql, const char* purpose)
{
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : sqlite3_errmsg(db_);
        sqlite3_free(message);
        throw Error(std::string(purpose) + ": " + text + " (" + name_ + ")");
    }
}

void SqliteDatabase::begin(bool write)
{
    if (write)
        prepare("BEGIN IMMEDIATE", "begin a write transaction").run();
    else
        prepare("BEGIN", "begin a read transaction").run();
}

void SqliteDatabase::commit()
{
    prepare("COMMIT", "commit").run();
}

void SqliteDatabase::rollback() noexcept
{
    if (!sqlite3_get_autocommit(db_))
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

bool isPostgresUrl(std::string_view location)
{
    return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

} // namespace qpruner::store::detail
