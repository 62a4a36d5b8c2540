// The server engine of the store: one libpq connection to PostgreSQL (a study whose workers run on many machines).
// The URL is libpq's (postgresql://user@host:5432/name, or postgresql:///name?host=/socket/dir); the password comes
// from ~/.pgpass or PGPASSWORD, never from the URL (refused, so that it cannot end up in the recent list, logs or
// the store). Statements run with typed parameters and text results; doubles travel in their shortest exact
// decimal form both ways.
#pragma once

#include <string>
#include <string_view>

#include "store/database.h"

struct pg_conn;

namespace qpruner::store::detail {

class PgDatabase : public Database {
public:
    // Throws ConfigError for a URL holding a password, FileError when the server cannot be reached or refuses
    // the connection (libpq's message, the URL named).
    // applicationName (the worker's host:pid) names the connection in pg_stat_activity.
    PgDatabase(const std::string& url, bool readOnly, int lockTimeoutMs, const std::string& applicationName);
    ~PgDatabase() override;

    Dialect dialect() const override { return Dialect::Postgres; }
    Statement prepare(const char* sql, const char* purpose) override;
    void execScript(const char* sql, const char* purpose) override;
    void begin(bool write) override;
    void commit() override;
    void rollback() noexcept override;
    const char* lockRunSql() const override { return "SELECT 1 FROM runs WHERE id = ?1 FOR UPDATE"; }
    bool connectionLost() const override;

    pg_conn* handle() const { return conn_; }
    [[noreturn]] void fail(const char* purpose, const std::string& message) const;
    // Reconnects once when the connection was lost outside a transaction (the server restarted, an idle
    // connection was terminated); false when it is still down.
    bool recover();

private:
    std::string url_;
    pg_conn* conn_ = nullptr;
    bool inTransaction_ = false;
    bool readOnly_ = false;
    int lockTimeoutMs_ = 0;
    std::string applicationName_;
    void connect();
    void setUpSession();
};

// The dbname of a libpq URL ("postgres" when it names none, as libpq defaults to the user's name: "study" then).
std::string postgresDatabaseName(const std::string& url);

// "?1 ... ?12" -> "$1 ... $12" (no string literal of the store's SQL holds a '?').
std::string postgresPlaceholders(std::string_view sql);

} // namespace qpruner::store::detail
