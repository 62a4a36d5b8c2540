// A thin RAII layer over the sqlite3 C API for the store: one connection with a cache of prepared statements,
// statements that reset themselves when a call is done with them, and a transaction guard. Not thread-safe by
// itself: Store serialises every call with its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace qpruner::store::detail {

class Statement;

class Database {
public:
    // Throws FileError when SQLite cannot open or create the file.
    Database(const std::filesystem::path& path, int flags, int busyTimeoutMs);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    sqlite3* handle() const { return db_; }
    const std::string& name() const { return name_; }
    int busyTimeoutMs() const { return busyTimeoutMs_; }

    // A cached statement, prepared on first use. `purpose` names it in error messages.
    Statement prepare(const char* sql, const char* purpose);
    // Runs a script of several statements (migrations); not cached.
    void execScript(const char* sql, const char* purpose);

    int64_t lastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
    int64_t changes() const { return sqlite3_changes64(db_); }

    // Throws Error "<purpose>: <SQLite's message> (<file>)".
    [[noreturn]] void fail(const char* purpose) const;

private:
    sqlite3* db_ = nullptr;
    std::string name_;
    int busyTimeoutMs_ = 0;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A prepared statement in use. The destructor resets it and clears its bindings, so that no read transaction
// outlives the call that stepped it.
class Statement {
public:
    Statement(Database& db, sqlite3_stmt* stmt, const char* purpose) : db_(db), stmt_(stmt), purpose_(purpose) {}
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, as in SQL.
    Statement& bind(int i, int64_t v);
    Statement& bind(int i, int v) { return bind(i, int64_t(v)); }
    Statement& bind(int i, double v);
    Statement& bind(int i, std::string_view v);
    Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Statement& bindNull(int i);
    Statement& bind(int i, const std::optional<int64_t>& v) { return v ? bind(i, *v) : bindNull(i); }
    Statement& bind(int i, const std::optional<double>& v) { return v ? bind(i, *v) : bindNull(i); }
    Statement& bindTextOrNull(int i, std::string_view v) { return v.empty() ? bindNull(i) : bind(i, v); }

    // The raw result code of one step, after retrying SQLITE_BUSY (before the first row) for up to the busy
    // timeout; the caller handles errors.
    int stepRc();
    // True for a row, false when done; throws Error otherwise.
    bool step();
    // Steps to the end of a statement that returns no rows.
    void run();

    bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const { return sqlite3_column_double(stmt_, col); }
    std::string text(int col) const; // "" for NULL
    std::string_view textView(int col) const; // valid until the next step
    std::optional<int64_t> optInt64(int col) const;
    std::optional<double> optReal(int col) const;

    [[noreturn]] void fail() const { db_.fail(purpose_); }

private:
    void checkBind(int rc);

    Database& db_;
    sqlite3_stmt* stmt_;
    const char* purpose_;
    bool rowsSeen_ = false;
};

// BEGIN [IMMEDIATE] ... COMMIT; rolls back on destruction unless committed.
class Transaction {
public:
    enum class Kind { Deferred, Immediate };
    Transaction(Database& db, Kind kind);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit();

private:
    Database& db_;
    bool done_ = false;
};

} // namespace qpruner::store::detail
