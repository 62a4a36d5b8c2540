// Calibration data for importance estimation: N windows of L tokens drawn at seeded random offsets from a
// tokenized text (LLM-Pruner uses 10 windows of 64 tokens).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>

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
//           with the Alpaca prompt template (alpacaPrompt) followed by its output, records separated by a blank
//           line
enum class CalibrationFormat { Text, Task, Alpaca };
CalibrationFormat parseCalibrationFormat(const std::string& name); // ConfigError listing the names
std::string calibrationFormatName(CalibrationFormat f);

// The Stanford Alpaca prompt (with or without the "### Input:" section, as `input` is empty or not), ending in
// "### Response:\n"; the response text follows it.
std::string alpacaPrompt(const std::string& instruction, const std::string& input);

// The text of a calibration file in `format`. FileError when it cannot be read, FormatError naming the file and
// record when a record is malformed or the file holds no records.
std::string calibrationText(const std::filesystem::path& file, CalibrationFormat format);

} // namespace qpruner::prune
