// Calibration data for importance estimation: N windows of L tokens drawn at seeded random offsets from a
// tokenized text (LLM-Pruner uses 10 windows of 64 tokens).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "qpruner/importance_scores.h"
#include "qpruner/tokenizer.h"

namespace qpruner::prune {

struct CalibrationOptions {
    int samples = 10;
    int seqLen = 64;
    uint64_t seed = 0;
};

// [samples, seqLen] int64 token windows. The same stream and options always give the same windows.
// Throws ConfigError when the stream is shorter than one window or an option is out of range.
at::Tensor sampleCalibration(const std::vector<int32_t>& stream, const CalibrationOptions& options);

// What a calibration file holds. The windows are drawn from one text built from it:
//   text    the file as it is (UTF-8)
//   task    a zero-shot task file (eval/task_data.h formats): each item's context followed by its gold
//           continuation, items separated by a blank line
//   alpaca  Alpaca-style instruction JSON (an array of {"instruction", "input", "output"}): each record rendered
//           with the Alpaca prompt template (finetune::alpacaPrompt) followed by its output, records separated by a blank
//           line
enum class CalibrationFormat { Text, Task, Alpaca };
CalibrationFormat parseCalibrationFormat(const std::string& name); // ConfigError listing the names
std::string calibrationFormatName(CalibrationFormat f);

// The text of a calibration file in `format`. FileError when it cannot be read, FormatError naming the file and
// record when a record is malformed or the file holds no records.
std::string calibrationText(const std::filesystem::path& file, CalibrationFormat format);

// A calibration source: "tinystories" (the TinyStories validation subset), "wikitext2" (WikiText-2 validation
// split), "alpaca" (the Alpaca subset) or a task name (its evaluation file), under `dataDir` (FileError when
// absent there), or else a path.
std::filesystem::path calibrationSourceFile(const std::string& source, const std::filesystem::path& dataDir);
// `format` ("auto", "text", "task", "alpaca"); auto: alpaca for "alpaca", task for a task name, text otherwise.
CalibrationFormat calibrationSourceFormat(const std::string& source, const std::string& format);
// The text of a source in a format (UTF-8 checked for text).
std::string calibrationSourceText(const std::string& source, const std::string& format,
                                  const std::filesystem::path& dataDir);
// Seeded windows [samples, seq_len] drawn from the encoded source; `info` (optional) receives what they came from.
at::Tensor calibrationWindows(const std::string& source, const std::string& format, const CalibrationOptions& options,
                              const Tokenizer& tokenizer, const std::filesystem::path& dataDir,
                              CalibrationInfo* info = nullptr);

} // namespace qpruner::prune
