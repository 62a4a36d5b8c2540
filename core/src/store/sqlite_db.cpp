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

} // namespace

Database::Database(const std::filesystem::path& path, int flags, int busyTimeoutMs)
    : name_(path.string()), busyTimeoutMs_(busyTimeoutMs)
{
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

Database::~Database()
{
    for (auto& [sql, stmt] : cache_)
        sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
}

void Database::fail(const char* purpose) const
{
    throw Error(std::string(purpose) + ": " + sqlite3_errmsg(db_) + " (" + name_ + ")");
}

Statement Database::prepare(const char* sql, const char* purpose)
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
    return Statement(*this, it->second, purpose);
}

void Database::execScript(const char* sql, const char* purpose)
{
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : sqlite3_errmsg(db_);
        sqlite3_free(message);
        throw Error(std::string(purpose) + ": " + text + " (" + name_ + ")");
    }
}

Statement::~Statement()
{
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

void Statement::checkBind(int rc)
{
    if (rc != SQLITE_OK)
        fail();
}

Statement& Statement::bind(int i, int64_t v)
{
    checkBind(sqlite3_bind_int64(stmt_, i, v));
    return *this;
}

Statement& Statement::bind(int i, double v)
{
    checkBind(sqlite3_bind_double(stmt_, i, v));
    return *this;
}

Statement& Statement::bind(int i, std::string_view v)
{
    checkBind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
}

Statement& Statement::bindNull(int i)
{
    checkBind(sqlite3_bind_null(stmt_, i));
    return *this;
}

int Statement::stepRc()
{
    const auto deadline = Clock::now() + std::chrono::milliseconds(db_.busyTimeoutMs());
    for (;;) {
        const int rc = sqlite3_step(stmt_);
        if ((rc & 0xff) == SQLITE_BUSY && !rowsSeen_ && Clock::now() < deadline) {
            sqlite3_reset(stmt_);
            std::this_thread::sleep_for(kBusyRetrySleep);
            continue;
        }
        if (rc == SQLITE_ROW)
            rowsSeen_ = true;
        return rc;
    }
}

bool Statement::step()
{
    const int rc = stepRc();
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    fail();
}

void Statement::run()
{
    while (step()) {
    }
}

std::string Statement::text(int col) const
{
    return std::string(textView(col));
}

std::string_view Statement::textView(int col) const
{
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    if (!p)
        return {};
    return std::string_view(p, size_t(sqlite3_column_bytes(stmt_, col)));
}

std::optional<int64_t> Statement::optInt64(int col) const
{
    if (isNull(col))
        return std::nullopt;
    return int64(col);
}

std::optional<double> Statement::optReal(int col) const
{
    if (isNull(col))
        return std::nullopt;
    return real(col);
}

Transaction::Transaction(Database& db, Kind kind) : db_(db)
{
    if (kind == Kind::Immediate)
        db_.prepare("BEGIN IMMEDIATE", "begin a write transaction").run();
    else
        db_.prepare("BEGIN", "begin a read transaction").run();
}

Transaction::~Transaction()
{
    if (!done_ && !sqlite3_get_autocommit(db_.handle()))
        sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit()
{
    db_.prepare("COMMIT", "commit").run();
    done_ = true;
}

} // namespace qpruner::store::detail
