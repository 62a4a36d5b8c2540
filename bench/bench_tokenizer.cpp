// Tokenizer encoding speed (torch-free): every Hugging Face tokenizer.json under <data>/tokenizers/ plus the
// Llama-2 SentencePiece tokenizer.model, each encoding the first --kb KB of WikiText-2 raw test as one string.
// Prints load time, ids and MB/s (median of --repeats runs) per file as a Markdown table and one JSON line
// (bench "tokenizer").
//
//   bench_tokenizer [--data <shared data dir>] [--kb 200] [--repeats 5] [--only <name,...>]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "qpruner/tokenizer.h"

using namespace qpruner;
using bench::arg;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv)
{
    const std::filesystem::path data = arg(argc, argv, "data", QPRUNER_DEFAULT_SHARED_DATA);
    const std::size_t kb = std::stoul(arg(argc, argv, "kb", "200"));
    const int repeats = std::max(1, std::stoi(arg(argc, argv, "repeats", "5")));
    const std::vector<std::string> only = bench::split(arg(argc, argv, "only", ""));

    std::ifstream in(data / "text/wikitext-2-raw/wiki.test.raw", std::ios::binary);
    if (!in) {
        std::cerr << "bench_tokenizer: cannot read " << (data / "text/wikitext-2-raw/wiki.test.raw") << "\n";
        return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str().substr(0, kb * 1000);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
        text.pop_back(); // do not end inside a character
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0)
        text.pop_back();

    std::vector<std::pair<std::string, std::filesystem::path>> files;
    std::vector<std::filesystem::path> dirs;
    for (const auto& e : std::filesystem::directory_iterator(data / "tokenizers"))
        if (std::filesystem::exists(e.path() / "tokenizer.json"))
            dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs)
        files.emplace_back(d.filename().string(), d / "tokenizer.json");
    files.emplace_back("llama2 (.model)", data / "models/llama2-tokenizer/tokenizer.model");

    nlohmann::json results = nlohmann::json::array();
    std::printf("| tokenizer | load s | ids | MB/s |\n|---|---:|---:|---:|\n");
    for (const auto& [name, path] : files) {
        if (!only.empty() && std::find(only.begin(), only.end(), name.substr(0, name.find(' '))) == only.end())
            continue;
        const auto t0 = Clock::now();
        const auto tok = loadTokenizer(path);
        const double load = std::chrono::duration<double>(Clock::now() - t0).count();
        std::vector<double> times;
        std::size_t count = 0;
        for (int r = 0; r < repeats; ++r) {
            const auto t1 = Clock::now();
            count = tok->encode(text).size();
            times.push_back(std::chrono::duration<double>(Clock::now() - t1).count());
        }
        std::sort(times.begin(), times.end());
        const double mbps = static_cast<double>(text.size()) / 1e6 / times[times.size() / 2];
        std::printf("| %s | %.2f | %zu | %.1f |\n", name.c_str(), load, count, mbps);
        std::fflush(stdout);
        results.push_back({{"tokenizer", name}, {"load_s", load}, {"ids", count}, {"mb_per_s", mbps}});
    }
    std::cout << nlohmann::json{{"bench", "tokenizer"}, {"bytes", text.size()}, {"results", results}}.dump() << "\n";
    return 0;
}
