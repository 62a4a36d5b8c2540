#include "cli_context.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <sys/resource.h>

#include "eval/task_data.h"
#include "finetune/adapter_io.h"
#include "io/file_bytes.h"
#include "model/dtype.h"
#include "prune/calibration.h"
#include "qpruner/error.h"
#include "qpruner/store.h"

namespace qpruner::cli {

void addModelOptions(ArgParser& p)
{
    p.option("dtype", "DTYPE",
             "weight dtype: float32, bfloat16 or float16; float64 for a reference pass whose matmuls run in float64 "
             "(checking numerical error) (default: the checkpoint's)");
    p.option("device", "DEV", "cpu, cuda or cuda:N", "cpu");
    p.option("threads", "N", "intra-op threads (0: one per core)", "0");
    p.option("compute-dtype", "DTYPE",
             "dtype matmuls run in: auto (bf16 only where the CPU has native bf16, else float32), float32 or "
             "bfloat16",
             "auto");
}

void addTokenizerOption(ArgParser& p)
{
    p.option("tokenizer", "PATH",
             "SentencePiece .model, llama2.c .bin or tokenizer.json (default: found beside the model)");
}

namespace {

// Applies --threads; the load options of --dtype and --device.
model::LoadOptions loadOptionsFromArgs(const ArgParser& p)
{
    model::setIntraOpThreads(p.getInt("threads"));
    applyComputeDtype(p);
    model::LoadOptions opts;
    if (auto d = p.find("dtype")) // float64: a reference pass for numerical checks, not a storage dtype
        opts.dtype = *d == "float64" ? at::kDouble : model::parseDtype(*d);
    opts.device = model::parseDevice(p.get("device"));
    return opts;
}

} // namespace

void applyComputeDtype(const ArgParser& p)
{
    if (const auto d = p.find("compute-dtype"))
        model::setComputeDtypeOverride(model::parseComputeDtype(*d));
}

nlohmann::json computeJson(const model::LlamaModel& m)
{
    const auto choice = model::computeChoiceFor(m.weightDtype(), m.device());
    return {{"dtype", model::dtypeName(m.computeDtype())}, {"reason", choice.reason},
            {"cpu", model::hostCpuFeatures().describe()}};
}

std::unique_ptr<model::LlamaModel> loadModelFromArgs(const ArgParser& p, const std::string& modelArg)
{
    return model::loadModel(p.get(modelArg), loadOptionsFromArgs(p));
}

void addAdapterOption(ArgParser& p)
{
    p.option("adapter", "DIR",
             "evaluate with this LoRA adapter (from `qpruner finetune`) on the base it was trained on");
}

std::unique_ptr<model::LlamaModel> loadModelOrAdaptedFromArgs(const ArgParser& p)
{
    const auto adapter = p.find("adapter");
    if (!adapter)
        return loadModelFromArgs(p);
    if (p.find("map") || p.find("format"))
        throw UsageError("--adapter brings its own precision map; do not give --map or --format with it");
    return finetune::loadModelWithAdapter(p.get("MODEL"), *adapter, loadOptionsFromArgs(p));
}

std::unique_ptr<Tokenizer> loadTokenizerFromArgs(const ArgParser& p, const std::string& modelArg)
{
    if (auto t = p.find("tokenizer"))
        return loadTokenizer(*t);
    const auto m = p.find(modelArg);
    if (!m)
        throw UsageError("--tokenizer is required");
    return loadTokenizer(findTokenizerBeside(*m));
}

std::string readTextFile(const std::filesystem::path& path)
{
    return io::readUtf8File(path);
}

std::filesystem::path sharedDataDir()
{
    if (const char* env = std::getenv("QPRUNER_SHARED_DATA"); env && *env)
        return env;
    return "../shared/data";
}

std::filesystem::path calibrationFile(const std::string& source)
{
    return prune::calibrationSourceFile(source, sharedDataDir());
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
    return prune::calibrationWindows(p.get("calib"), p.get("calib-format"), co, tok, sharedDataDir(), info);
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

// Text fields can hold invalid UTF-8 (a model's output cut inside a multi-byte character, a tokenizer's byte
// pieces): such bytes are written as U+FFFD rather than failing the whole command.
void printJson(const nlohmann::json& j)
{
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

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

void addStoreOptions(ArgParser& p)
{
    p.option("db", "FILE", "record this command (config, status, timing, result, artifacts) in an experiment store");
    p.option("experiment", "NAME", "experiment the recorded run belongs to", "default");
}

namespace {

class NullSink : public StageSink {
public:
    void artifact(const std::string&, const std::filesystem::path&) override {}
};

class StoreSink : public StageSink {
public:
    StoreSink(store::Store& s, int64_t run, int64_t stage) : store_(s), run_(run), stage_(stage) {}
    void artifact(const std::string& kind, const std::filesystem::path& path) override
    {
        artifacts_.emplace_back(kind, std::filesystem::absolute(path));
    }
    // Artifacts are hashed once the command has finished writing them.
    void commit()
    {
        for (const auto& [kind, path] : artifacts_)
            store_.addArtifact(run_, stage_, kind, path);
    }

private:
    store::Store& store_;
    int64_t run_, stage_;
    std::vector<std::pair<std::string, std::filesystem::path>> artifacts_;
};

} // namespace

nlohmann::json recordStage(const ArgParser& p, const std::string& kind,
                           const std::function<nlohmann::json(StageSink&)>& body)
{
    const auto db = p.find("db");
    if (!db) {
        NullSink sink;
        return body(sink);
    }
    store::Store st(*db);
    store::RunRecord rec;
    rec.experimentId = st.experimentId(p.get("experiment"));
    rec.kind = kind;
    rec.baseModel = p.find("MODEL").value_or("");
    rec.config = p.values();
    rec.config["command"] = kind;
    const int64_t run = st.createRun(rec);
    const int64_t stage = st.beginStage(run, kind, rec.config);
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    try {
        StoreSink sink(st, run, stage);
        nlohmann::json result = body(sink);
        sink.commit();
        st.finishStage(stage, store::RunStatus::Done, result, seconds());
        st.setRunStatus(run, store::RunStatus::Done);
        return result;
    } catch (const std::exception& e) {
        const auto status = dynamic_cast<const CancelledError*>(&e) ? store::RunStatus::Cancelled
                                                                     : store::RunStatus::Failed;
        st.finishStage(stage, status, nlohmann::json::object(), seconds(), e.what());
        st.setRunStatus(run, status, e.what());
        throw;
    }
}

} // namespace qpruner::cli
