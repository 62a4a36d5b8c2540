// The embedded engine of the store: one SQLite connection with a cache of prepared statements (the default;
// database.h has the interface Store uses).
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <unordered_map>

#include "store/database.h"

namespace qpruner::store::detail {

class SqliteDatabase : public Database {
public:
    // Throws FileError when SQLite cannot open or create the file.
    SqliteDatabase(const std::filesystem::path& path, int flags, int busyTimeoutMs);
    ~SqliteDatabase() override;

    Dialect dialect() const override { return Dialect::Sqlite; }
    Statement prepare(const char* sql, const char* purpose) override;
    void execScript(const char* sql, const char* purpose) override;
    void begin(bool write) override;
    void commit() override;
    void rollback() noexcept override;
    const char* lockRunSql() const override { return "SELECT 1 FROM runs WHERE id = ?1"; } // BEGIN IMMEDIATE locks

    sqlite3* handle() const { return db_; }
    int busyTimeoutMs() const { return busyTimeoutMs_; }
    // The raw result code of one step of `sql` (the open check: SQLITE_NOTADB for a file that is not SQLite).
    int probe(const char* sql);
    // Throws Error "<purpose>: <SQLite's message> (<file>)".
    [[noreturn]] void fail(const char* purpose) const;

private:
    sqlite3* db_ = nullptr;
    int busyTimeoutMs_ = 0;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

} // namespace qpruner::store::detail
