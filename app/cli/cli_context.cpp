#include "cli_context.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <sys/resource.h>

#include "eval/task_data.h"
#include "io/file_bytes.h"
#include "model/dtype.h"
#include "prune/calibration.h"
#include "qpruner/error.h"
#include "tokenizer/utf8.h"

namespace qpruner::cli {

void addModelOptions(ArgParser& p)
{
    p.option("dtype", "DTYPE", "weight dtype: float32, bfloat16 or float16 (default: the checkpoint's)");
    p.option("device", "DEV", "cpu, cuda or cuda:N", "cpu");
    p.option("threads", "N", "intra-op threads (0: one per core)", "0");
}

void addTokenizerOption(ArgParser& p)
{
    p.option("tokenizer", "PATH",
             "SentencePiece .model, llama2.c .bin or tokenizer.json (default: found beside the model)");
}

std::unique_ptr<model::LlamaModel> loadModelFromArgs(const ArgParser& p, const std::string& modelArg)
{
    model::setIntraOpThreads(p.getInt("threads"));
    model::LoadOptions opts;
    if (auto d = p.find("dtype"))
        opts.dtype = model::parseDtype(*d);
    opts.device = model::parseDevice(p.get("device"));
    return model::loadModel(p.get(modelArg), opts);
}

std::unique_ptr<Tokenizer> loadTokenizerFromArgs(const ArgParser& p, const std::string& modelArg)
{
    if (auto t = p.find("tokenizer"))
        return loadTokenizer(*t);
    const auto m = p.find(modelArg);
    if (!m)
        throw UsageError("--tokenizer is required");
    const std::filesystem::path model(*m);
    const auto dir = std::filesystem::is_directory(model) ? model : model.parent_path();
    for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer.bin"})
        if (std::filesystem::exists(dir / name))
            return loadTokenizer(dir / name);
    for (const char* ext : {".model", ".bin"}) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
            const auto fn = e.path().filename().string();
            if (fn.rfind("tok", 0) == 0 && e.path().extension() == ext)
                return loadTokenizer(e.path());
        }
    }
    throw UsageError("no tokenizer found beside " + model.string() + "; pass --tokenizer");
}

std::string readTextFile(const std::filesystem::path& path)
{
    std::string text = io::readFileBytes(path);
    // The evaluation protocol reads text files as UTF-8: refuse anything else rather than score garbage.
    for (size_t i = 0; i < text.size();) {
        const Utf8Char c = decodeUtf8(std::string_view(text).substr(i));
        if (!c.valid)
            throw FormatError(path.string() + ": not valid UTF-8 at byte " + std::to_string(i));
        i += c.length;
    }
    return text;
}

std::filesystem::path sharedDataDir()
{
    if (const char* env = std::getenv("QPRUNER_SHARED_DATA"); env && *env)
        return env;
    return "../shared/data";
}

std::filesystem::path calibrationFile(const std::string& source)
{
    const std::pair<const char*, const char*> builtIn[] = {
        {"tinystories", "text/tinystories/tinystories_valid_subset.txt"},
        {"wikitext2", "text/wikitext-2/wiki.valid.tokens"},
        {"alpaca", "finetune/alpaca_small_2000.json"}};
    auto shared = [&](const std::filesystem::path& path) {
        if (!std::filesystem::exists(path))
            throw FileError("calibration source '" + source + "': " + path.string() +
                            " not found (set QPRUNER_SHARED_DATA to the shared data directory, or pass a file)");
        return path;
    };
    for (const auto& [name, rel] : builtIn)
        if (source == name)
            return shared(sharedDataDir() / rel);
    for (const auto& task : eval::knownTasks())
        if (source == task)
            return shared(eval::taskFile(task, sharedDataDir() / "eval"));
    return source;
}

static prune::CalibrationFormat calibrationFormat(const std::string& source, const std::string& format)
{
    if (format != "auto")
        return prune::parseCalibrationFormat(format);
    if (source == "alpaca")
        return prune::CalibrationFormat::Alpaca;
    for (const auto& task : eval::knownTasks())
        if (source == task)
            return prune::CalibrationFormat::Task;
    return prune::CalibrationFormat::Text;
}

void addPrecisionMapOptions(ArgParser& p)
{
    p.option("map", "FILE", "precision map JSON (see README: Precision maps)");
    p.option("format", "F", "one format for every decoder linear (fp32, bf16, fp16, int8, nf4, nf4-dq, int4, "
                            "int4-g128, int3, int3-g128, int2, int2-g128), embedding and head bf16");
}

PrecisionMap precisionMapFromArgs(const ArgParser& p)
{
    const auto file = p.find("map");
    const auto format = p.find("format");
    if (file && format)
        throw UsageError("give either --map or --format, not both");
    if (file)
        return PrecisionMap::load(*file);
    if (format)
        return PrecisionMap(parseQuantSpec(*format));
    throw UsageError("--map FILE or --format F is required");
}

void addCalibrationOptions(ArgParser& p, int defaultSamples, int defaultSeqLen)
{
    p.option("calib", "SOURCE",
             "calibration data: tinystories, wikitext2, alpaca, a task name (boolq, piqa, ...) or a file",
             "tinystories");
    p.option("calib-format", "F",
             "text, task (zero-shot task file: contexts with gold answers) or alpaca (instruction JSON); auto: "
             "from the source name, text for files",
             "auto");
    p.option("samples", "N", "calibration windows", std::to_string(defaultSamples));
    p.option("seq-len", "N", "tokens per calibration window", std::to_string(defaultSeqLen));
    p.option("seed", "N", "seed for the calibration windows", "0");
}

at::Tensor calibrationFromArgs(const ArgParser& p, const Tokenizer& tok, CalibrationInfo* info)
{
    prune::CalibrationOptions co;
    co.samples = p.getInt("samples");
    co.seqLen = p.getInt("seq-len");
    co.seed = static_cast<uint64_t>(p.getInt64("seed"));
    const std::string source = p.get("calib");
    const auto format = calibrationFormat(source, p.get("calib-format"));
    const auto file = calibrationFile(source);
    const std::string text = format == prune::CalibrationFormat::Text ? readTextFile(file)
                                                                      : prune::calibrationText(file, format);
    auto windows = prune::sampleCalibration(tok.encode(text), co);
    if (info) {
        info->source = source;
        info->format = prune::calibrationFormatName(format);
        info->samples = co.samples;
        info->seqLen = co.seqLen;
        info->seed = co.seed;
        info->tokens = windows.numel();
    }
    return windows;
}

int64_t peakRssBytes()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<int64_t>(u.ru_maxrss) * 1024; // Linux reports KiB
}

int parseLayerIndex(const std::string& text, const std::string& error)
{
    if (text.empty() || text.size() > 9 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw UsageError(error);
    return std::stoi(text);
}

std::pair<int, int> parseLayerSpan(const std::string& text, const std::string& error)
{
    const auto colon = text.find(':');
    if (colon == std::string::npos)
        throw UsageError(error);
    return {parseLayerIndex(text.substr(0, colon), error), parseLayerIndex(text.substr(colon + 1), error)};
}

std::vector<std::string> splitList(const std::string& text)
{
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty())
            out.push_back(item);
    return out;
}

void printJson(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

std::string withThousands(int64_t n)
{
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
}

std::string humanBytes(int64_t bytes)
{
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
    return buf;
}

} // namespace qpruner::cli
