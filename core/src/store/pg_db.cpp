#include "store/pg_db.h"

#include <libpq-fe.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "qpruner/error.h"

namespace qpruner::store::detail {

namespace {

// Type OIDs of the parameters (pg_type.h): bound with their types, so "?2 IS NULL" needs no cast.
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;

std::string resultMessage(const PGresult* r, pg_conn* conn)
{
    std::string m = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
        m.pop_back();
    return m;
}

class PgStatement : public StatementImpl {
public:
    PgStatement(PgDatabase& db, const std::string& sql, const char* purpose) : db_(db), sql_(sql), purpose_(purpose) {}
    ~PgStatement() override { PQclear(result_); }

    void bindInt(int i, int64_t v) override { set(i, std::to_string(v), kInt8Oid); }
    void bindReal(int i, double v) override
    {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v); // shortest form that reads back exactly
        set(i, std::string(buf, r.ptr), kFloat8Oid);
    }
    void bindText(int i, std::string_view v) override { set(i, std::string(v), kTextOid); }
    void bindNull(int i) override
    {
        grow(i);
        values_[size_t(i - 1)].reset();
        types_[size_t(i - 1)] = 0; // the server infers it from where the parameter is used
    }
    bool step() override
    {
        if (!result_)
            execute();
        ++row_;
        return row_ < PQntuples(result_);
    }
    bool isNull(int col) const override { return PQgetisnull(result_, row_, col) != 0; }
    int64_t int64(int col) const override
    {
        const std::string_view t = textView(col);
        int64_t v = 0;
        // PostgreSQL writes booleans as t/f.
        if (t == "t")
            return 1;
        if (t == "f")
            return 0;
        std::from_chars(t.data(), t.data() + t.size(), v);
        return v;
    }
    double real(int col) const override
    {
        const std::string_view t = textView(col);
        if (t.empty())
            return 0.0;
        return std::strtod(std::string(t).c_str(), nullptr); // also "Infinity", "NaN"
    }
    std::string_view textView(int col) const override
    {
        if (PQgetisnull(result_, row_, col))
            return {};
        return std::string_view(PQgetvalue(result_, row_, col), size_t(PQgetlength(result_, row_, col)));
    }
    int64_t changes() const override
    {
        const char* n = result_ ? PQcmdTuples(result_) : "";
        return *n ? std::atoll(n) : 0;
    }
    [[noreturn]] void fail() const override { db_.fail(purpose_, resultMessage(result_, db_.handle())); }

private:
    void grow(int i)
    {
        if (int(values_.size()) < i) {
            values_.resize(size_t(i));
            types_.resize(size_t(i), kTextOid);
        }
    }
    void set(int i, std::string v, Oid type)
    {
        grow(i);
        values_[size_t(i - 1)] = std::move(v);
        types_[size_t(i - 1)] = type;
    }
    void execute()
    {
        std::vector<const char*> params(values_.size());
        for (size_t i = 0; i < values_.size(); ++i)
            params[i] = values_[i] ? values_[i]->c_str() : nullptr;
        for (int attempt = 0;; ++attempt) {
            result_ = PQexecParams(db_.handle(), sql_.c_str(), int(params.size()), types_.data(), params.data(),
                                   nullptr, nullptr, 0);
            const ExecStatusType s = result_ ? PQresultStatus(result_) : PGRES_FATAL_ERROR;
            if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
                return;
            // A lost connection outside a transaction: reconnect once and run the statement again.
            if (attempt == 0 && PQstatus(db_.handle()) == CONNECTION_BAD && db_.recover()) {
                PQclear(result_);
                result_ = nullptr;
                continue;
            }
            fail();
        }
    }

    PgDatabase& db_;
    const std::string& sql_;
    const char* purpose_;
    std::vector<std::optional<std::string>> values_;
    std::vector<Oid> types_;
    PGresult* result_ = nullptr;
    int row_ = -1;
};

// Translated SQL per original text (node-based: a statement keeps a reference to its entry).
std::unordered_map<std::string, std::string>& sqlCache()
{
    thread_local std::unordered_map<std::string, std::string> cache;
    return cache;
}

} // namespace

std::string postgresDatabaseName(const std::string& url)
{
    std::string name, user;
    if (PQconninfoOption* options = PQconninfoParse(url.c_str(), nullptr)) {
        for (PQconninfoOption* o = options; o->keyword; ++o) {
            if (std::string_view(o->keyword) == "dbname" && o->val)
                name = o->val;
            if (std::string_view(o->keyword) == "user" && o->val)
                user = o->val;
        }
        PQconninfoFree(options);
    }
    return !name.empty() ? name : !user.empty() ? user : std::string("study");
}

std::string postgresPlaceholders(std::string_view sql)
{
    std::string out;
    out.reserve(sql.size());
    for (size_t i = 0; i < sql.size(); ++i) {
        if (sql[i] == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9')
            out += '$';
        else
            out += sql[i];
    }
    return out;
}

PgDatabase::PgDatabase(const std::string& url, bool readOnly, int lockTimeoutMs, const std::string& applicationName)
    : url_(url), readOnly_(readOnly), lockTimeoutMs_(lockTimeoutMs)
{
    for (char c : applicationName) // it goes into a SQL literal: keep it plain
        if (std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '-' || c == '_')
            applicationName_ += c;
    name_ = url;
    // A password in the URL would end up in recent lists, logs and the runs' records.
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
    if (!options) {
        const std::string m = error ? error : "cannot parse it";
        PQfreemem(error);
        throw ConfigError(url + ": not a PostgreSQL URL libpq understands: " + m);
    }
    bool hasPassword = false;
    for (PQconninfoOption* o = options; o->keyword; ++o)
        if (std::string_view(o->keyword) == "password" && o->val && *o->val)
            hasPassword = true;
    PQconninfoFree(options);
    if (hasPassword) {
        name_ = "the PostgreSQL URL given";
        throw ConfigError("the PostgreSQL URL holds a password: put it in ~/.pgpass or PGPASSWORD instead, so that "
                          "it never reaches a command line, the recent list or the store");
    }
    connect();
}

void PgDatabase::connect()
{
    conn_ = PQconnectdb(url_.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string m = PQerrorMessage(conn_);
        while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
            m.pop_back();
        PQfinish(conn_);
        conn_ = nullptr;
        throw FileError(url_ + ": cannot connect to the PostgreSQL store: " + m);
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    setUpSession();
}

void PgDatabase::setUpSession()
{
    // Quiet notices ("relation already exists, skipping"), a lock wait bounded like SQLite's busy timeout,
    // read-only sessions for readers, and the worker's id in pg_stat_activity (host:pid).
    std::string setup = "SET client_min_messages = warning; SET lock_timeout = " + std::to_string(lockTimeoutMs_) +
                        "; SET extra_float_digits = 3; SET application_name = 'qpruner " + applicationName_ + "';";
    if (readOnly_)
        setup += " SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;";
    PGresult* r = PQexec(conn_, setup.c_str());
    const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string m = resultMessage(r, conn_);
    PQclear(r);
    if (!ok)
        fail("set up the session", m);
}

PgDatabase::~PgDatabase()
{
    if (conn_)
        PQfinish(conn_);
}

bool PgDatabase::recover()
{
    if (inTransaction_)
        return false; // the transaction's earlier statements are gone: let the caller's error stand
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
        return false;
    try { // a new session: its settings again
        setUpSession();
    } catch (const std::exception&) {
        return false;
    }
    return true;
}

bool PgDatabase::connectionLost() const
{
    return PQstatus(conn_) == CONNECTION_BAD;
}

void PgDatabase::fail(const char* purpose, const std::string& message) const
{
    throw Error(std::string(purpose) + ": " + message + " (" + name_ + ")");
}

Statement PgDatabase::prepare(const char* sql, const char* purpose)
{
    auto& cache = sqlCache();
    auto it = cache.find(sql);
    if (it == cache.end())
        it = cache.emplace(sql, postgresPlaceholders(sql)).first;
    return Statement(std::make_unique<PgStatement>(*this, it->second, purpose));
}

void PgDatabase::execScript(const char* sql, const char* purpose)
{
    for (int attempt = 0;; ++attempt) {
        PGresult* r = PQexec(conn_, sql);
        const ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
            PQclear(r);
            return;
        }
        const std::string m = resultMessage(r, conn_);
        PQclear(r);
        // The connection went away (server restart, pg_terminate_backend, a network cut) outside a transaction:
        // reconnect once and run it again (BEGIN, a session setting).
        if (attempt == 0 && PQstatus(conn_) == CONNECTION_BAD && recover())
            continue;
        fail(purpose, m);
    }
}

void PgDatabase::begin(bool write)
{
    if (PQstatus(conn_) == CONNECTION_BAD && !recover())
        fail("begin a transaction", PQerrorMessage(conn_));
    execScript(write ? "BEGIN" : "BEGIN READ ONLY", write ? "begin a write transaction" : "begin a read transaction");
    inTransaction_ = true;
}

void PgDatabase::commit()
{
    // Still "in a transaction" while COMMIT runs, so a connection lost during it is not retried on a new one: a
    // COMMIT there finds no transaction, answers OK, and would report work the server rolled back as stored.
    struct Done {
        bool& inTransaction;
        ~Done() { inTransaction = false; }
    } done{inTransaction_};
    execScript("COMMIT", "commit");
}

void PgDatabase::rollback() noexcept
{
    if (!inTransaction_)
        return;
    inTransaction_ = false;
    PGresult* r = PQexec(conn_, "ROLLBACK");
    PQclear(r);
}

} // namespace qpruner::store::detail
