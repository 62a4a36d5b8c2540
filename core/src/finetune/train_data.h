// Training data for the recovery fine-tune (method.md §3.4, §7), torch-free: plain text cut into windows of L
// tokens, or Alpaca-style instruction records {instruction, input, output} rendered with the Alpaca prompt
// template (as alpaca-lora's generate_prompt), the prompt's tokens masked out of the loss, cut at a cutoff length.
// Either way split into a training and a validation set.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "qpruner/tokenizer.h"

namespace qpruner::finetune {

enum class DataFormat { Text, Alpaca };

// "text" or "alpaca"; ConfigError naming the text otherwise.
DataFormat parseDataFormat(const std::string& name);
std::string dataFormatName(DataFormat format);

// One training sequence. The loss covers predicting tokens[t] for every t >= max(promptTokens, 1): the first
// promptTokens tokens are context only.
struct TrainExample {
    std::vector<int32_t> tokens; // at least 2
    int32_t promptTokens = 0;
};

struct DataOptions {
    DataFormat format = DataFormat::Text;
    // text: the window length (consecutive, non-overlapping windows of the stream; a last partial window is
    // dropped); alpaca: the cutoff length, at most this many tokens per record (BOS, prompt, response, EOS).
    int seqLen = 256;
    // Share of the examples held out for validation, in [0, 1). text: the last windows of the stream (so
    // validation text follows the training text, nothing overlaps); alpaca: a seeded random subset, in effect
    // alpaca-lora's train_test_split(shuffle=True, seed) (not the same draw; both keep file order inside each set).
    double validationFraction = 0.1;
    // When >= 0, the number of validation examples instead of the fraction (alpaca-lora's val_set_size).
    int64_t validationCount = -1;
    uint64_t seed = 42;          // alpaca: the split's shuffle (training order is the trainer's business)
    bool trainOnInputs = false;  // alpaca: learn the prompt tokens too (promptTokens = 0)
    bool addEos = true;          // alpaca: EOS after the response when it fits under the cutoff
    int64_t maxExamples = -1;    // use at most the first this many records (alpaca: before dropping) or windows; -1: all
};

struct TrainData {
    std::vector<TrainExample> train;
    std::vector<TrainExample> validation;
    int64_t records = 0;        // alpaca: records read; text: windows cut
    int64_t droppedRecords = 0; // alpaca: records left without a response token under the cutoff (dropped)
    int64_t truncatedRecords = 0; // alpaca: records cut at the cutoff (kept)
    int64_t streamTokens = 0;   // text: tokens of the whole file

    // Loss targets (predicted tokens) of a set.
    static int64_t targetCount(const std::vector<TrainExample>& examples);
};

// The Alpaca prompt (alpaca-lora templates/alpaca.json), with or without an input:
//   "Below is an instruction that describes a task, paired with an input that provides further context. Write a
//    response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n
//    ### Response:\n"
//   "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n
//    ### Instruction:\n{instruction}\n\n### Response:\n"
// (an empty input selects the second).
std::string alpacaPrompt(const std::string& instruction, const std::string& input);

// Text: the stream (no BOS) cut into windows. Throws ConfigError for seqLen < 2, a fraction outside [0, 1), a
// stream too short for one training window and (when the split asks for any) one validation window.
TrainData buildTextData(const std::vector<int32_t>& stream, const DataOptions& options);

// Alpaca: per record, tokens = encode(prompt + output) with BOS, truncated to seqLen, EOS appended when it fits;
// promptTokens = length of encode(prompt) with BOS (capped at the record's length) unless trainOnInputs. A record
// whose response is cut away entirely is dropped (counted). Throws FormatError naming the file, the record's
// index and the key for a JSON document that is not an array of objects with string "instruction" and "output"
// (and optional string "input"); ConfigError as buildTextData and when no example is left.
TrainData buildAlpacaData(const std::string& json, const Tokenizer& tokenizer, const DataOptions& options,
                          const std::string& sourceName = "alpaca data");

// Reads the file (FileError when missing or unreadable; a text file must be UTF-8) and builds the data in its
// format.
TrainData loadTrainData(const std::filesystem::path& file, const Tokenizer& tokenizer, const DataOptions& options);

} // namespace qpruner::finetune
