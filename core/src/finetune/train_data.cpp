#include "finetune/train_data.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/file_bytes.h"
#include "qpruner/error.h"

namespace qpruner::finetune {

namespace {

std::string formatNumber(double value)
{
    std::ostringstream s;
    s << value;
    return s.str();
}

// The options every format shares: the window / cutoff length, the validation share, the example limit.
void checkOptions(const DataOptions& options)
{
    if (options.seqLen < 2)
        throw ConfigError("training data: the sequence length (seqLen) must be at least 2, got " +
                          std::to_string(options.seqLen));
    // Written so that NaN fails too.
    if (!(options.validationFraction >= 0.0 && options.validationFraction < 1.0))
        throw ConfigError("training data: the validation fraction must be in [0, 1), got " +
                          formatNumber(options.validationFraction));
    if (options.maxExamples == 0)
        throw ConfigError("training data: maxExamples must be at least 1 (or -1 for all), got 0");
}

// How many of `n` examples go to validation: the count when given, else the rounded fraction.
int64_t validationSize(const DataOptions& options, int64_t n)
{
    if (options.validationCount >= 0)
        return options.validationCount;
    return static_cast<int64_t>(std::llround(options.validationFraction * static_cast<double>(n)));
}

std::string validationSource(const DataOptions& options)
{
    if (options.validationCount >= 0)
        return "validationCount " + std::to_string(options.validationCount);
    return "validation fraction " + formatNumber(options.validationFraction);
}

// A uniform integer in [0, bound) from the raw generator output, by rejection, so it is the same on every
// standard library (std::uniform_int_distribution's algorithm is implementation-defined).
uint64_t uniformBelow(std::mt19937_64& rng, uint64_t bound)
{
    const uint64_t threshold = (0 - bound) % bound; // 2^64 mod bound: the biased low remainder is rejected
    for (;;) {
        const uint64_t r = rng();
        if (r >= threshold)
            return r % bound;
    }
}

const char* jsonTypeName(const nlohmann::json& value) { return value.type_name(); }

// The string under `key` of record `index`; `required` false: absent or null is the empty string.
std::string recordString(const nlohmann::json& record, const char* key, bool required, size_t index,
                         const std::string& sourceName)
{
    const std::string where = sourceName + ": record " + std::to_string(index) + ": \"" + key + "\"";
    const auto it = record.find(key);
    if (it == record.end() || (!required && it->is_null())) {
        if (required)
            throw FormatError(where + " is missing");
        return {};
    }
    if (!it->is_string())
        throw FormatError(where + " must be a string, got " + jsonTypeName(*it));
    return it->get<std::string>();
}

} // namespace

DataFormat parseDataFormat(const std::string& name)
{
    if (name == "text")
        return DataFormat::Text;
    if (name == "alpaca")
        return DataFormat::Alpaca;
    throw ConfigError("unknown training data format '" + name + "' (expected text or alpaca)");
}

std::string dataFormatName(DataFormat format)
{
    switch (format) {
    case DataFormat::Text: return "text";
    case DataFormat::Alpaca: return "alpaca";
    }
    return "?";
}

int64_t TrainData::targetCount(const std::vector<TrainExample>& examples)
{
    int64_t total = 0;
    for (const auto& e : examples) {
        const int64_t context = std::max<int64_t>(e.promptTokens, 1);
        total += std::max<int64_t>(static_cast<int64_t>(e.tokens.size()) - context, 0);
    }
    return total;
}

std::string alpacaPrompt(const std::string& instruction, const std::string& input)
{
    if (input.empty())
        return "Below is an instruction that describes a task. Write a response that appropriately completes the "
               "request.\n\n### Instruction:\n" +
               instruction + "\n\n### Response:\n";
    return "Below is an instruction that describes a task, paired with an input that provides further context. "
           "Write a response that appropriately completes the request.\n\n### Instruction:\n" +
           instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

TrainData buildTextData(const std::vector<int32_t>& stream, const DataOptions& options)
{
    checkOptions(options);
    TrainData data;
    data.streamTokens = static_cast<int64_t>(stream.size());
    const int64_t seqLen = options.seqLen;
    const int64_t available = data.streamTokens / seqLen; // a last partial window is dropped
    int64_t windows = available;
    if (options.maxExamples > 0)
        windows = std::min(windows, options.maxExamples);
    const int64_t nVal = validationSize(options, windows);
    if (windows < nVal + 1) {
        std::string msg = "training data: the text stream has " + std::to_string(data.streamTokens) +
                          " tokens, " + std::to_string(available) + " window(s) of " + std::to_string(seqLen);
        if (windows < available)
            msg += " (" + std::to_string(windows) + " used, maxExamples " + std::to_string(options.maxExamples) + ")";
        msg += "; too short for 1 training window and " + std::to_string(nVal) + " validation window(s) (" +
               validationSource(options) + ")";
        throw ConfigError(msg);
    }
    data.records = windows;
    // Windows in stream order; the last nVal are validation, so validation text follows the training text.
    const int64_t nTrain = windows - nVal;
    data.train.reserve(static_cast<size_t>(nTrain));
    data.validation.reserve(static_cast<size_t>(nVal));
    for (int64_t w = 0; w < windows; ++w) {
        TrainExample e;
        const auto begin = stream.begin() + static_cast<std::ptrdiff_t>(w * seqLen);
        e.tokens.assign(begin, begin + static_cast<std::ptrdiff_t>(seqLen));
        (w < nTrain ? data.train : data.validation).push_back(std::move(e));
    }
    return data;
}

TrainData buildAlpacaData(const std::string& json, const Tokenizer& tokenizer, const DataOptions& options,
                          const std::string& sourceName)
{
    checkOptions(options);
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(json);
    } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(sourceName + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
    }
    if (!doc.is_array())
        throw FormatError(sourceName + ": expected a JSON array of {instruction, input, output} records, got " +
                          jsonTypeName(doc));

    // Every record is checked, even past maxExamples, so a malformed file fails whatever the limit.
    size_t count = doc.size();
    if (options.maxExamples > 0)
        count = std::min(count, static_cast<size_t>(options.maxExamples));
    struct Record {
        std::string prompt, output;
    };
    std::vector<Record> records;
    records.reserve(count);
    for (size_t i = 0; i < doc.size(); ++i) {
        const auto& r = doc[i];
        if (!r.is_object())
            throw FormatError(sourceName + ": record " + std::to_string(i) + " is not an object, got " +
                              jsonTypeName(r));
        const std::string instruction = recordString(r, "instruction", true, i, sourceName);
        const std::string input = recordString(r, "input", false, i, sourceName);
        std::string output = recordString(r, "output", true, i, sourceName);
        if (i < count)
            records.push_back({alpacaPrompt(instruction, input), std::move(output)});
    }

    // As alpaca-lora's generate_and_tokenize_prompt.
    TrainData data;
    data.records = static_cast<int64_t>(records.size());
    const size_t cutoff = static_cast<size_t>(options.seqLen);
    const int32_t eos = tokenizer.eosId();
    std::vector<TrainExample> examples;
    examples.reserve(records.size());
    for (const auto& rec : records) {
        TrainExample e;
        e.tokens = tokenizer.encode(rec.prompt + rec.output, /*addBos=*/true, /*addEos=*/false);
        if (e.tokens.size() > cutoff) {
            e.tokens.resize(cutoff);
            ++data.truncatedRecords;
        }
        if (options.addEos && eos >= 0 && !e.tokens.empty() && e.tokens.back() != eos && e.tokens.size() < cutoff)
            e.tokens.push_back(eos);
        if (!options.trainOnInputs) {
            const size_t promptLen = tokenizer.encode(rec.prompt, /*addBos=*/true, /*addEos=*/false).size();
            e.promptTokens = static_cast<int32_t>(std::min(promptLen, e.tokens.size()));
        }
        if (e.tokens.size() < 2 || static_cast<size_t>(e.promptTokens) >= e.tokens.size()) {
            ++data.droppedRecords; // no response token left to learn under the cutoff
            continue;
        }
        examples.push_back(std::move(e));
    }

    const auto n = static_cast<int64_t>(examples.size());
    if (n == 0)
        throw ConfigError(sourceName + ": no training example left: " + std::to_string(data.droppedRecords) +
                          " of " + std::to_string(data.records) +
                          " record(s) dropped, no response token fits under the cutoff of " +
                          std::to_string(options.seqLen) + " tokens");
    const int64_t nVal = validationSize(options, n);
    if (nVal >= n)
        throw ConfigError(sourceName + ": " + validationSource(options) + " asks for " + std::to_string(nVal) +
                          " validation example(s) of " + std::to_string(n) + ", leaving no training example");

    // The split: a Fisher-Yates shuffle of the example indices driven by mt19937_64(seed) through uniformBelow
    // (written out rather than std::shuffle, whose algorithm differs between standard libraries, so a seed gives
    // the same split everywhere); the first nVal shuffled indices are validation, the rest training. Each set is
    // then put back in the file's record order (the indices are sorted). Like alpaca-lora's
    // train_test_split(shuffle=True, seed) in effect, not in its exact draw.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::mt19937_64 rng(options.seed);
    for (size_t i = order.size() - 1; i > 0; --i) {
        const auto j = static_cast<size_t>(uniformBelow(rng, static_cast<uint64_t>(i) + 1));
        std::swap(order[i], order[j]);
    }
    std::vector<int64_t> valIdx(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nVal));
    std::vector<int64_t> trainIdx(order.begin() + static_cast<std::ptrdiff_t>(nVal), order.end());
    std::sort(valIdx.begin(), valIdx.end());
    std::sort(trainIdx.begin(), trainIdx.end());
    data.validation.reserve(valIdx.size());
    data.train.reserve(trainIdx.size());
    for (const int64_t i : valIdx)
        data.validation.push_back(std::move(examples[static_cast<size_t>(i)]));
    for (const int64_t i : trainIdx)
        data.train.push_back(std::move(examples[static_cast<size_t>(i)]));
    return data;
}

TrainData loadTrainData(const std::filesystem::path& file, const Tokenizer& tokenizer, const DataOptions& options)
{
    switch (options.format) {
    case DataFormat::Text: {
        checkOptions(options);
        const std::string text = io::readUtf8File(file);
        const auto stream = tokenizer.encode(text, /*addBos=*/false, /*addEos=*/false);
        try {
            return buildTextData(stream, options);
        } catch (const ConfigError& e) {
            throw ConfigError(file.string() + ": " + e.what());
        }
    }
    case DataFormat::Alpaca: {
        checkOptions(options);
        return buildAlpacaData(io::readFileBytes(file), tokenizer, options, file.string());
    }
    }
    throw ConfigError("training data: unknown data format");
}

} // namespace qpruner::finetune
