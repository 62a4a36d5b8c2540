// Zero-shot multiple-choice task sets: llm-foundry `icl.jsonl` ({query, choices, gold}), WinoGrande's partial
// scoring form ({context_options, continuation, gold}) and HellaSwag's original schema (ctx_a, ctx_b,
// activity_label, endings, label; the query is built as lm-evaluation-harness does).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qpruner::eval {

// One choice to score: log P(continuation | context), continuation = " " + choice text.
struct ChoiceRequest {
    std::string context;
    std::string continuation;
};

struct TaskItem {
    std::vector<ChoiceRequest> choices;
    int gold = 0;
};

struct TaskSet {
    std::string name;
    std::filesystem::path file;
    std::vector<TaskItem> items;
};

// The tasks this build knows, with the file each uses under an eval data directory.
const std::vector<std::string>& knownTasks();
std::filesystem::path taskFile(const std::string& task, const std::filesystem::path& evalDir);

// Reads a task file (format detected per line). `limit` >= 0 keeps the first `limit` items.
// Throws FileError / FormatError naming the file and line.
TaskSet loadTaskSet(const std::string& name, const std::filesystem::path& file, int64_t limit = -1);

// lm-evaluation-harness's HellaSwag clean-up: strip, " [title]" -> ". ", drop "[...]", "  " -> " ".
std::string hellaswagPreprocess(const std::string& text);
// Python's str.capitalize() on ASCII: first character upper-cased, the rest lower-cased.
std::string pythonCapitalize(const std::string& text);

} // namespace qpruner::eval
