// What the subcommands share: the common model options (--dtype, --device, --threads, --tokenizer), finding a
// tokenizer beside a model, reading text files, the shared data directory, and JSON/human output.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "arg_parser.h"
#include "model/checkpoint.h"
#include "qpruner/importance_scores.h"
#include "qpruner/precision_map.h"
#include "qpruner/tokenizer.h"

namespace qpruner::cli {

// Adds --dtype, --device, --threads and --compute-dtype.
void addModelOptions(ArgParser& p);
// Applies --compute-dtype (when the command has it) process-wide, before any model is loaded.
void applyComputeDtype(const ArgParser& p);
// {"dtype", "reason", "cpu"}: the dtype a loaded model computes in and why (model/dtype.h's policy).
nlohmann::json computeJson(const model::LlamaModel& m);
// Adds --tokenizer.
void addTokenizerOption(ArgParser& p);

// Applies --threads and loads MODEL with --dtype/--device.
std::unique_ptr<model::LlamaModel> loadModelFromArgs(const ArgParser& p, const std::string& modelArg = "MODEL");

// Adds --adapter DIR (a LoRA adapter directory written by `qpruner finetune`).
void addAdapterOption(ArgParser& p);
// With --adapter: the model the adapter was trained on (its base/ directory, else MODEL quantized with the
// adapter's precision map) with the adapter attached; otherwise loadModelFromArgs(). --threads, --dtype and
// --device apply either way.
std::unique_ptr<model::LlamaModel> loadModelOrAdaptedFromArgs(const ArgParser& p);

// --tokenizer, or a tokenizer found beside the model (tokenizer.model/.json/.bin, tok*.model, tok*.bin).
std::unique_ptr<Tokenizer> loadTokenizerFromArgs(const ArgParser& p, const std::string& modelArg = "MODEL");

// The file's bytes, checked to be valid UTF-8 (the error names the byte offset).
std::string readTextFile(const std::filesystem::path& path);

// QPRUNER_SHARED_DATA, else ../shared/data relative to the working directory.
std::filesystem::path sharedDataDir();

// A calibration file: "tinystories" (the TinyStories validation subset), "wikitext2" (WikiText-2 tokenized validation
// split; evaluation uses the test split), "alpaca" (the Alpaca subset) or a task name (its evaluation file) from the
// shared data directory, or a path.
std::filesystem::path calibrationFile(const std::string& source);

// Adds --map FILE and --format F (shorthand for {"version": 1, "default": F}).
void addPrecisionMapOptions(ArgParser& p);
// The map from --map or --format (UsageError when neither or both are given).
PrecisionMap precisionMapFromArgs(const ArgParser& p);

// Adds --calib, --calib-format, --samples, --seq-len and --seed for calibration windows.
void addCalibrationOptions(ArgParser& p, int defaultSamples, int defaultSeqLen);
// Calibration windows [samples, seq_len] (int64) from those options, encoded with `tok`; `info` (optional)
// receives what they were drawn from.
at::Tensor calibrationFromArgs(const ArgParser& p, const Tokenizer& tok, CalibrationInfo* info = nullptr);

// Peak resident set size of this process so far, in bytes.
int64_t peakRssBytes();

// A layer index (decimal digits, no sign) and "BEGIN:END" of two; UsageError(`error`) for anything else.
int parseLayerIndex(const std::string& text, const std::string& error);
std::pair<int, int> parseLayerSpan(const std::string& text, const std::string& error);

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> splitList(const std::string& text);

void printJson(const nlohmann::json& j);

// Adds --db FILE and --experiment NAME: record this command in an experiment store.
void addStoreOptions(ArgParser& p);

// What a recorded command adds to its stage.
class StageSink {
public:
    virtual ~StageSink() = default;
    // Records a file or directory the command wrote (sha256 and size are taken now); no-op without --db.
    virtual void artifact(const std::string& kind, const std::filesystem::path& path) = 0;
};

// Runs `body`. With --db, the command is recorded as a run of kind `kind` (config: the command's options,
// p.values(), plus "command") holding one stage of the same name: status, timing, the result `body` returns,
// and the artifacts it names; a failure is recorded as such (and rethrown).
nlohmann::json recordStage(const ArgParser& p, const std::string& kind,
                           const std::function<nlohmann::json(StageSink&)>& body);

// Human-readable sizes: "1.23 MiB", "260,032".
std::string humanBytes(int64_t bytes);
std::string withThousands(int64_t n);

} // namespace qpruner::cli
