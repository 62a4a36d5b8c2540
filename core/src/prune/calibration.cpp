#include "prune/calibration.h"

#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/task_data.h"
#include "finetune/train_data.h"
#include "io/file_bytes.h"
#include "io/json_file.h"
#include "qpruner/error.h"

namespace qpruner::prune {

at::Tensor sampleCalibration(const std::vector<int32_t>& stream, const CalibrationOptions& options)
{
    if (options.samples < 1)
        throw ConfigError("calibration: --samples must be at least 1, got " + std::to_string(options.samples));
    if (options.seqLen < 2)
        throw ConfigError("calibration: --seq-len must be at least 2, got " + std::to_string(options.seqLen));
    const auto n = static_cast<int64_t>(stream.size());
    if (n < options.seqLen)
        throw ConfigError("calibration: the text has " + std::to_string(n) + " tokens, fewer than one window of " +
                          std::to_string(options.seqLen));
    std::mt19937_64 rng(options.seed);
    std::uniform_int_distribution<int64_t> offset(0, n - options.seqLen);
    auto out = at::empty({options.samples, options.seqLen}, at::kLong);
    auto* p = out.data_ptr<int64_t>();
    for (int s = 0; s < options.samples; ++s) {
        const int64_t o = offset(rng);
        for (int t = 0; t < options.seqLen; ++t)
            *p++ = stream[static_cast<size_t>(o + t)];
    }
    return out;
}

CalibrationFormat parseCalibrationFormat(const std::string& name)
{
    if (name == "text")
        return CalibrationFormat::Text;
    if (name == "task")
        return CalibrationFormat::Task;
    if (name == "alpaca")
        return CalibrationFormat::Alpaca;
    throw ConfigError("unknown calibration format '" + name + "' (expected text, task or alpaca)");
}

std::string calibrationFormatName(CalibrationFormat f)
{
    switch (f) {
    case CalibrationFormat::Text: return "text";
    case CalibrationFormat::Task: return "task";
    case CalibrationFormat::Alpaca: return "alpaca";
    }
    return "?";
}

std::string calibrationText(const std::filesystem::path& file, CalibrationFormat format)
{
    std::string text;
    switch (format) {
    case CalibrationFormat::Text: {
        text = io::readFileBytes(file);
        break;
    }
    case CalibrationFormat::Task: {
        const auto set = eval::loadTaskSet(file.stem().string(), file);
        for (size_t i = 0; i < set.items.size(); ++i) {
            const auto& item = set.items[i];
            if (item.gold < 0 || size_t(item.gold) >= item.choices.size())
                throw FormatError(file.string() + ": item " + std::to_string(i) + ": gold answer " +
                                  std::to_string(item.gold) + " is not one of its " +
                                  std::to_string(item.choices.size()) + " choices");
            const auto& gold = item.choices[size_t(item.gold)];
            text += (text.empty() ? "" : "\n\n") + gold.context + gold.continuation;
        }
        break;
    }
    case CalibrationFormat::Alpaca: {
        const auto j = io::readJsonFile(file);
        if (!j.is_array())
            throw FormatError(file.string() + ": expected a JSON array of {instruction, input, output} records");
        for (size_t i = 0; i < j.size(); ++i) {
            const auto& r = j[i];
            auto str = [&](const char* key, bool required) {
                if (!r.is_object() || (!r.contains(key) && required) || (r.contains(key) && !r.at(key).is_string()))
                    throw FormatError(file.string() + ": record " + std::to_string(i) + ": \"" + key +
                                      "\" must be a string");
                return r.contains(key) ? r.at(key).get<std::string>() : std::string();
            };
            text += (text.empty() ? "" : "\n\n") + finetune::alpacaPrompt(str("instruction", true), str("input", false)) +
                    str("output", true);
        }
        break;
    }
    }
    if (text.empty())
        throw FormatError(file.string() + ": no calibration text (empty file or no records)");
    return text;
}

std::filesystem::path calibrationSourceFile(const std::string& source, const std::filesystem::path& dataDir)
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
            return shared(dataDir / rel);
    for (const auto& task : eval::knownTasks())
        if (source == task)
            return shared(eval::taskFile(task, dataDir / "eval"));
    return source;
}

CalibrationFormat calibrationSourceFormat(const std::string& source, const std::string& format)
{
    if (format != "auto")
        return parseCalibrationFormat(format);
    if (source == "alpaca")
        return CalibrationFormat::Alpaca;
    for (const auto& task : eval::knownTasks())
        if (source == task)
            return CalibrationFormat::Task;
    return CalibrationFormat::Text;
}

std::string calibrationSourceText(const std::string& source, const std::string& format,
                                  const std::filesystem::path& dataDir)
{
    const auto f = calibrationSourceFormat(source, format);
    const auto file = calibrationSourceFile(source, dataDir);
    return f == CalibrationFormat::Text ? io::readUtf8File(file) : calibrationText(file, f);
}

at::Tensor calibrationWindows(const std::string& source, const std::string& format, const CalibrationOptions& options,
                              const Tokenizer& tokenizer, const std::filesystem::path& dataDir, CalibrationInfo* info)
{
    auto windows = sampleCalibration(tokenizer.encode(calibrationSourceText(source, format, dataDir)), options);
    if (info) {
        info->source = source;
        info->format = calibrationFormatName(calibrationSourceFormat(source, format));
        info->samples = options.samples;
        info->seqLen = options.seqLen;
        info->seed = options.seed;
        info->tokens = windows.numel();
    }
    return windows;
}

} // namespace qpruner::prune
