// The store's connection to its database, behind one interface for both engines: the embedded SQLite file (the
// default) and a PostgreSQL server (a study spread over many machines). Store speaks SQL that both understand
// (parameters written ?1, ?2, ...; the PostgreSQL connection rewrites them to $1, $2, ...) and asks dialect() for
// the few statements that differ. Not thread-safe by itself: Store serialises every call with its mutex.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace qpruner::store::detail {

enum class Dialect { Sqlite, Postgres };

// One statement being run: parameters bound, then stepped row by row. Implemented per engine.
class StatementImpl {
public:
    virtual ~StatementImpl() = default;
    virtual void bindInt(int i, int64_t v) = 0;
    virtual void bindReal(int i, double v) = 0;
    virtual void bindText(int i, std::string_view v) = 0;
    virtual void bindNull(int i) = 0;
    // True for a row, false when done; throws Error naming the statement's purpose otherwise.
    virtual bool step() = 0;
    virtual bool isNull(int col) const = 0;
    virtual int64_t int64(int col) const = 0;
    virtual double real(int col) const = 0;
    virtual std::string_view textView(int col) const = 0; // "" for NULL; valid until the next step
    // Rows the statement inserted, updated or deleted (after it ran).
    virtual int64_t changes() const = 0;
    [[noreturn]] virtual void fail() const = 0;
};

// A prepared statement in use; releases (SQLite: resets) it when the call is done with it.
class Statement {
public:
    explicit Statement(std::unique_ptr<StatementImpl> impl) : impl_(std::move(impl)) {}
    Statement(Statement&&) = default;

    // Parameters are 1-based, as in SQL.
    Statement& bind(int i, int64_t v) { impl_->bindInt(i, v); return *this; }
    Statement& bind(int i, int v) { return bind(i, int64_t(v)); }
    Statement& bind(int i, double v) { impl_->bindReal(i, v); return *this; }
    Statement& bind(int i, std::string_view v) { impl_->bindText(i, v); return *this; }
    Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Statement& bindNull(int i) { impl_->bindNull(i); return *this; }
    Statement& bind(int i, const std::optional<int64_t>& v) { return v ? bind(i, *v) : bindNull(i); }
    Statement& bind(int i, const std::optional<double>& v) { return v ? bind(i, *v) : bindNull(i); }
    Statement& bindTextOrNull(int i, std::string_view v) { return v.empty() ? bindNull(i) : bind(i, v); }

    bool step() { return impl_->step(); }
    // Steps to the end of a statement that returns no rows; returns the rows it changed.
    int64_t run()
    {
        while (impl_->step()) {
        }
        return impl_->changes();
    }

    bool isNull(int col) const { return impl_->isNull(col); }
    int64_t int64(int col) const { return impl_->int64(col); }
    double real(int col) const { return impl_->real(col); }
    std::string_view textView(int col) const { return impl_->textView(col); }
    std::string text(int col) const { return std::string(impl_->textView(col)); }
    std::optional<int64_t> optInt64(int col) const
    {
        return isNull(col) ? std::nullopt : std::optional<int64_t>(int64(col));
    }
    std::optional<double> optReal(int col) const
    {
        return isNull(col) ? std::nullopt : std::optional<double>(real(col));
    }
    [[noreturn]] void fail() const
    {
        impl_->fail();
        std::abort(); // not reached: every engine's fail() throws
    }

private:
    std::unique_ptr<StatementImpl> impl_;
};

class Database {
public:
    virtual ~Database() = default;
    virtual Dialect dialect() const = 0;
    // What messages call the database: the file's path, or the PostgreSQL URL (it never holds a password).
    const std::string& name() const { return name_; }

    // A statement, prepared (and cached) on first use. `purpose` names it in error messages.
    virtual Statement prepare(const char* sql, const char* purpose) = 0;
    // Runs a script of several statements (migrations); not cached.
    virtual void execScript(const char* sql, const char* purpose) = 0;

    // Transactions. write: SQLite takes the write lock up front (BEGIN IMMEDIATE); PostgreSQL begins a
    // read-committed transaction and Store locks the rows it numbers within (lockRunSql()).
    virtual void begin(bool write) = 0;
    virtual void commit() = 0;
    virtual void rollback() noexcept = 0; // when a transaction is open

    // Locks run ?1 for the rest of the transaction where the engine needs it to number a run's trials and stages
    // without two writers taking the same number; returns a row when the run exists.
    virtual const char* lockRunSql() const = 0;

    // True after a statement failed because the connection to a server dropped (PostgreSQL); the next transaction
    // reconnects. An SQLite file has no connection to lose.
    virtual bool connectionLost() const { return false; }

protected:
    std::string name_;
};

// BEGIN ... COMMIT; rolls back on destruction unless committed.
class Transaction {
public:
    Transaction(Database& db, bool write) : db_(db) { db_.begin(write); }
    ~Transaction()
    {
        if (!done_)
            db_.rollback();
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit()
    {
        db_.commit();
        done_ = true;
    }

private:
    Database& db_;
    bool done_ = false;
};

// "postgresql://..." or "postgres://...": a PostgreSQL store; anything else is an SQLite file.
bool isPostgresUrl(std::string_view location);

} // namespace qpruner::store::detail
