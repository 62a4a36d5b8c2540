// A large synthetic search run written straight into a store's trials table (one transaction, shuffled insert
// order so that reads in number order rely on the index): what the store's and the GUI's 100,000-trial tests
// open. Trial n: state failed when n % 10 == 9, else complete with objective 10 + n, finish_order n + 1;
// memory and budgeted bytes 1,000,000 + n; encoding "n"; source "acquisition"; a map JSON of about 3 KB
// ({"layers": "000...", "n": n}) so that rows overflow their pages like a 32-layer per-module map does.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace qpruner::testing {

inline void insertSyntheticTrials(const std::filesystem::path& db, int64_t runId, int count)
{
    sqlite3* h = nullptr;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
        throw std::runtime_error("cannot open " + db.string());
    sqlite3_busy_timeout(h, 60000);
    auto fail = [&](const char* what) {
        const std::string message = std::string(what) + ": " + sqlite3_errmsg(h);
        sqlite3_close_v2(h);
        throw std::runtime_error(message);
    };
    if (sqlite3_exec(h, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
        fail("begin");
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h,
                           "INSERT INTO trials(run_id, number, state, encoding, map_json, source, objective, "
                           "metrics_json, memory_bytes, budgeted_bytes, seconds_quantize, seconds_evaluate, "
                           "seconds_surrogate, worker, started_at, finished_at, finish_order) VALUES (?1, ?2, ?3, "
                           "?4, ?5, 'acquisition', ?6, ?7, ?8, ?8, 0.5, 1.5, 0.25, 'h:1', "
                           "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', ?9)",
                           -1, &st, nullptr) != SQLITE_OK)
        fail("prepare");
    std::vector<int> order(static_cast<size_t>(count));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(11));
    const std::string layers(3000, '0');
    for (int n : order) {
        const bool failed = n % 10 == 9;
        const std::string enc = std::to_string(n);
        const std::string mapJson = "{\"layers\":\"" + layers + "\",\"n\":" + enc + "}";
        sqlite3_bind_int64(st, 1, runId);
        sqlite3_bind_int(st, 2, n);
        sqlite3_bind_text(st, 3, failed ? "failed" : "complete", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, enc.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, mapJson.c_str(), -1, SQLITE_TRANSIENT);
        if (failed) {
            sqlite3_bind_null(st, 6);
            sqlite3_bind_null(st, 7);
            sqlite3_bind_int(st, 9, 0);
        } else {
            sqlite3_bind_double(st, 6, 10.0 + n);
            sqlite3_bind_text(st, 7, "{\"ppl\":10.0}", -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 9, n + 1);
        }
        sqlite3_bind_int64(st, 8, 1000000 + n);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            fail("insert");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        fail("commit");
    sqlite3_close_v2(h);
}

} // namespace qpruner::testing
