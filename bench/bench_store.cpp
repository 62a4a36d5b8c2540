// Experiment store at scale: loading every trial of a 100,000-trial search run (the GUI's Pareto plot of a
// large run must come back in under a second).
//
// The run is created through the Store API, then --trials complete trials are written into the same file with
// the sqlite3 C API inside one transaction (as tests/core/test_store.cpp's largeRun does). Each trial carries a
// realistic per-module precision map of a 32-layer (7B-sized) model, {"default":"bf16","layers":{"0":{"down":
// "nf4",...},...},"version":1} (about 2.6 KB of JSON), a 224-character encoding, metrics JSON, and a memory /
// perplexity pair that forms a non-trivial Pareto front.
//
// Each measurement runs in a fresh child process (this executable with --child; the OS page cache stays warm,
// SQLite's and the allocator's state do not) that opens a new Store and times:
//   summaries  Store::trialSummaries(run)       (the GUI's plot query: no JSON columns)
//   front      qpruner::paretoFront over the (memory_bytes, objective) points of those summaries
//   trials     Store::trials(run)               (everything, maps and metrics parsed; for reference)
// --repeats times each; medians are printed as a Markdown table and one JSON line (bench "store").
//
// --postgres URL: the same run copied (copyStore) into that empty PostgreSQL database, and measured there.
//
//   bench_store [--trials 100000] [--repeats 5] [--db PATH (kept; default a temp file, removed)] [--postgres URL]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "qpruner/pareto.h"
#include "qpruner/store.h"

using namespace qpruner;
using bench::arg;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kLayers = 32;
// Modules in the order of the encoding; parameters of a LLaMA-2-7B layer.
const char* const kModules[] = {"q", "k", "v", "o", "gate", "up", "down"};
constexpr double kModuleParams[] = {4096.0 * 4096, 4096.0 * 4096, 4096.0 * 4096, 4096.0 * 4096,
                                    4096.0 * 11008, 4096.0 * 11008, 4096.0 * 11008};
const char* const kFormats[] = {"nf4", "int8", "bf16"};
constexpr double kFormatBits[] = {4.5, 8.5, 16.0};
constexpr double kFormatError[] = {1.0, 0.06, 0.0}; // relative perplexity damage of a module in that format
constexpr int64_t kOtherBytes = 2LL * 32000 * 4096 * 2; // embedding and head, bf16

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? NAN : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string timestamp(int64_t epochMs)
{
    const std::time_t s = epochMs / 1000;
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(epochMs % 1000));
    return buf;
}

void check(int rc, int want, sqlite3* db, const char* what)
{
    if (rc != want)
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
}

void execSql(sqlite3* db, const char* sql)
{
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : "?";
        sqlite3_free(message);
        throw std::runtime_error(std::string(sql) + ": " + text);
    }
}

// Creates the run through the Store API and writes `n` complete trials with raw SQL; returns the run id.
int64_t generate(const fs::path& db, int n)
{
    int64_t run = 0;
    {
        store::Store s(db);
        store::RunRecord r;
        r.experimentId = s.experimentId("bench-store");
        r.kind = "search";
        r.name = "synthetic " + std::to_string(n) + " trials";
        r.baseModel = "llama-2-7b (synthetic)";
        r.config = {{"budget", "4.5bpw"}, {"trials", n}, {"granularity", "module"},
                    {"candidates", {"nf4", "int8", "bf16"}}, {"strategy", "bayes"}};
        run = s.createRun(r);
    }
    sqlite3* h = nullptr;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
        throw std::runtime_error("cannot open " + db.string());
    sqlite3_busy_timeout(h, 60000);
    try {
        execSql(h, "BEGIN IMMEDIATE");
        sqlite3_stmt* st = nullptr;
        check(sqlite3_prepare_v2(h,
                                 "INSERT INTO trials(run_id, number, state, encoding, map_json, source, objective, "
                                 "metrics_json, memory_bytes, budgeted_bytes, seconds_quantize, seconds_evaluate, "
                                 "seconds_surrogate, worker, started_at, finished_at, finish_order) VALUES (?1, ?2, "
                                 "'complete', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                                 -1, &st, nullptr),
              SQLITE_OK, h, "prepare");
        // Layer keys in the order nlohmann::json writes them (std::map: lexicographic).
        std::vector<std::string> layerKeys;
        for (int l = 0; l < kLayers; ++l)
            layerKeys.push_back(std::to_string(l));
        std::sort(layerKeys.begin(), layerKeys.end());
        // Module keys sorted likewise, with their index into kModules.
        std::vector<int> moduleOrder = {6, 4, 1, 3, 0, 5, 2}; // down, gate, k, o, q, up, v
        std::mt19937_64 rng(11);
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        std::vector<double> layerWeight(kLayers);
        for (int l = 0; l < kLayers; ++l) // early and late layers matter more
            layerWeight[size_t(l)] = 0.5 + std::abs(l - 15.5) / 15.5;
        const int64_t t0Ms = 1795000000000LL;
        std::string enc(size_t(kLayers) * 7, '0');
        std::string mapJson;
        for (int num = 0; num < n; ++num) {
            // A map: each module's format drawn with a per-trial bias, so memory spans the whole range.
            const double p8 = unit(rng), p16 = unit(rng) * 0.3;
            double bits = 0, damage = 0, weightSum = 0;
            for (int l = 0; l < kLayers; ++l)
                for (int m = 0; m < 7; ++m) {
                    const double u = unit(rng);
                    const int f = u < p16 ? 2 : u < p16 + p8 * (1 - p16) ? 1 : 0;
                    enc[size_t(l * 7 + m)] = char('0' + f);
                    bits += kModuleParams[m] * kFormatBits[f];
                    damage += layerWeight[size_t(l)] * kModuleParams[m] * kFormatError[f];
                    weightSum += layerWeight[size_t(l)] * kModuleParams[m];
                }
            mapJson = "{\"default\":\"bf16\",\"layers\":{";
            for (size_t k = 0; k < layerKeys.size(); ++k) {
                const int l = std::stoi(layerKeys[k]);
                mapJson += (k ? ",\"" : "\"") + layerKeys[k] + "\":{";
                for (size_t j = 0; j < moduleOrder.size(); ++j) {
                    const int m = moduleOrder[j];
                    mapJson += (j ? ",\"" : "\"") + std::string(kModules[m]) + "\":\"" +
                               kFormats[enc[size_t(l * 7 + m)] - '0'] + "\"";
                }
                mapJson += "}";
            }
            mapJson += "},\"version\":1}";
            const int64_t linearBytes = int64_t(bits / 8);
            const int64_t memory = linearBytes + kOtherBytes;
            const double ppl = 5.47 * (1 + 0.08 * damage / weightSum) * (1 + 0.004 * (unit(rng) - 0.5));
            const double meanNll = std::log(ppl);
            char metrics[400];
            std::snprintf(metrics, sizeof metrics,
                          "{\"mean_nll\":%.17g,\"memory\":{\"bf16_fraction\":%.17g,\"linear_bits_per_weight\":%.17g,"
                          "\"linear_bytes\":%lld,\"total_bytes\":%lld},\"ppl\":%.17g,\"tokens\":4080}",
                          meanNll, double(kOtherBytes) / double(memory), bits / (32 * 4 * 4096.0 * 4096 +
                                                                                    32 * 3 * 4096.0 * 11008),
                          (long long)linearBytes, (long long)memory, ppl);
            const std::string source = num < 3 ? std::string("initial:uniform:") + kFormats[num]
                                       : num < 8 ? std::string(num == 3 ? "initial:importance" : "initial:sample")
                                                 : std::string("acquisition");
            const int64_t startMs = t0Ms + int64_t(num) * 2500;
            sqlite3_bind_int64(st, 1, run);
            sqlite3_bind_int(st, 2, num);
            sqlite3_bind_text(st, 3, enc.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 4, mapJson.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 5, source.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(st, 6, ppl);
            sqlite3_bind_text(st, 7, metrics, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 8, memory);
            sqlite3_bind_int64(st, 9, linearBytes);
            sqlite3_bind_double(st, 10, 0.3 + 0.1 * unit(rng));
            sqlite3_bind_double(st, 11, 2.0 + 0.2 * unit(rng));
            sqlite3_bind_double(st, 12, num < 8 ? 0.0 : 0.02 + 0.01 * unit(rng));
            sqlite3_bind_text(st, 13, "bench:1", -1, SQLITE_STATIC);
            const std::string started = timestamp(startMs), finished = timestamp(startMs + 2400);
            sqlite3_bind_text(st, 14, started.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 15, finished.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 16, num + 1);
            check(sqlite3_step(st), SQLITE_DONE, h, "insert");
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        execSql(h, "COMMIT");
    } catch (...) {
        sqlite3_close_v2(h);
        throw;
    }
    sqlite3_close_v2(h);
    return run;
}

// --child: one measurement in this (fresh) process; prints one JSON object.
int child(int argc, char** argv)
{
    const fs::path db = arg(argc, argv, "db", "");
    const int64_t run = std::stoll(arg(argc, argv, "run", "0"));
    const std::string what = arg(argc, argv, "child", "");
    const int expect = std::stoi(arg(argc, argv, "trials", "0"));
    json out = {{"what", what}};
    auto t = std::chrono::steady_clock::now();
    store::Store s(db);
    out["open_s"] = secondsSince(t);
    if (what == "summaries") {
        t = std::chrono::steady_clock::now();
        const auto rows = s.trialSummaries(run);
        out["summaries_s"] = secondsSince(t);
        t = std::chrono::steady_clock::now();
        std::vector<ObjectivePoint> pts;
        pts.reserve(rows.size());
        for (const auto& r : rows)
            if (r.state == store::TrialState::Complete && r.objective)
                pts.push_back({double(r.memoryBytes), *r.objective});
        const auto front = paretoFront(pts);
        out["front_s"] = secondsSince(t);
        out["rows"] = rows.size();
        out["points"] = pts.size();
        out["front_size"] = front.size();
        if (int(rows.size()) != expect || rows.back().number != expect - 1 || !rows[0].map.is_null())
            throw std::runtime_error("trialSummaries returned the wrong rows");
    } else if (what == "trials") {
        t = std::chrono::steady_clock::now();
        const auto rows = s.trials(run);
        out["trials_s"] = secondsSince(t);
        out["rows"] = rows.size();
        if (int(rows.size()) != expect || rows.back().map["layers"].size() != size_t(kLayers))
            throw std::runtime_error("trials returned the wrong rows");
    } else {
        throw std::runtime_error("--child summaries|trials");
    }
    std::cout << out.dump() << std::endl;
    return 0;
}

json runChild(const fs::path& exe, const std::string& what, const fs::path& db, int64_t run, int trials)
{
    const std::string cmd = "'" + exe.string() + "' --child " + what + " --db '" + db.string() + "' --run " +
                            std::to_string(run) + " --trials " + std::to_string(trials);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        throw std::runtime_error("cannot run " + cmd);
    std::string text;
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, p)) > 0)
        text.append(buf, k);
    if (pclose(p) != 0)
        throw std::runtime_error("failed: " + cmd + "\n" + text);
    return json::parse(text);
}

} // namespace

int main(int argc, char** argv)
{
    try {
        if (!arg(argc, argv, "child", "").empty())
            return child(argc, argv);
        const int trials = std::stoi(arg(argc, argv, "trials", "100000"));
        const int repeats = std::stoi(arg(argc, argv, "repeats", "5"));
        const std::string dbArg = arg(argc, argv, "db", "");
        const bool temp = dbArg.empty();
        const fs::path db = temp ? fs::temp_directory_path() / ("bench_store-" + std::to_string(getpid()) + ".db")
                                 : fs::path(dbArg);
        if (fs::exists(db))
            throw std::runtime_error(db.string() + " exists; remove it or pass another --db");
        const fs::path exe = fs::read_symlink("/proc/self/exe");
        auto removeDb = [&] {
            if (temp)
                for (const char* suffix : {"", "-wal", "-shm"})
                    fs::remove(db.string() + suffix);
        };

        json result;
        try {
            auto t = std::chrono::steady_clock::now();
            const int64_t run = generate(db, trials);
            const double generateS = secondsSince(t);
            const std::string postgres = arg(argc, argv, "postgres", "");
            fs::path measured = db;
            double copyS = 0;
            if (!postgres.empty()) {
                t = std::chrono::steady_clock::now();
                store::OpenOptions ro;
                ro.readOnly = true;
                const store::Store from(db, ro);
                store::Store to(postgres);
                store::copyStore(from, to);
                copyS = secondsSince(t);
                measured = postgres;
            }
            std::vector<double> open, summaries, front, both, full;
            json last;
            for (int r = 0; r < repeats; ++r) {
                const json a = runChild(exe, "summaries", measured, run, trials);
                const json b = runChild(exe, "trials", measured, run, trials);
                open.push_back(a["open_s"]);
                summaries.push_back(a["summaries_s"]);
                front.push_back(a["front_s"]);
                both.push_back(a["summaries_s"].get<double>() + a["front_s"].get<double>());
                full.push_back(b["trials_s"]);
                last = a;
            }
            const auto ms = [](const std::vector<double>& v) {
                std::vector<double> m;
                for (double x : v)
                    m.push_back(1e3 * x);
                return m;
            };
            result = {{"bench", "store"},
                      {"trials", trials},
                      {"repeats", repeats},
                      {"db_bytes", fs::file_size(db)},
                      {"generate_s", generateS},
                      {"engine", postgres.empty() ? "sqlite" : "postgresql"},
                      {"copy_s", copyS},
                      {"front_size", last["front_size"]},
                      {"open_ms", median(ms(open))},
                      {"summaries_ms", median(ms(summaries))},
                      {"pareto_front_ms", median(ms(front))},
                      {"summaries_plus_front_ms", median(ms(both))},
                      {"trials_full_ms", median(ms(full))},
                      {"summaries_ms_all", ms(summaries)},
                      {"pareto_front_ms_all", ms(front)},
                      {"trials_full_ms_all", ms(full)},
                      {"under_1s", median(both) < 1.0}};
        } catch (...) {
            removeDb();
            throw;
        }
        removeDb();
        std::printf("| %d trials (db %.0f MB, written in %.1f s) | median of %d, ms |\n|---|---|\n", trials,
                    result["db_bytes"].get<double>() / 1e6, result["generate_s"].get<double>(), repeats);
        std::printf("| open Store | %.1f |\n| trialSummaries | %.1f |\n| paretoFront (%d front points) | %.1f |\n"
                    "| trialSummaries + paretoFront | %.1f |\n| trials (full parse) | %.1f |\n",
                    result["open_ms"].get<double>(), result["summaries_ms"].get<double>(),
                    result["front_size"].get<int>(), result["pareto_front_ms"].get<double>(),
                    result["summaries_plus_front_ms"].get<double>(), result["trials_full_ms"].get<double>());
        std::cout << result.dump() << std::endl;
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_store: " << e.what() << std::endl;
        return 1;
    }
}
