#include "eval/task_data.h"

#include <cctype>
#include <fstream>

#include <nlohmann/json.hpp>

#include "qpruner/error.h"

namespace qpruner::eval {

const std::vector<std::string>& knownTasks()
{
    static const std::vector<std::string> tasks = {"boolq",     "piqa",      "hellaswag",  "winogrande",
                                                   "arc_easy",  "arc_challenge", "openbookqa", "social_i_qa"};
    return tasks;
}

std::filesystem::path taskFile(const std::string& task, const std::filesystem::path& evalDir)
{
    bool known = false;
    for (const auto& t : knownTasks())
        known = known || t == task;
    if (!known) {
        std::string list;
        for (const auto& t : knownTasks())
            list += (list.empty() ? "" : ", ") + t;
        throw ConfigError("unknown task '" + task + "' (known: " + list + ")");
    }
    if (task == "hellaswag")
        return evalDir / "hellaswag" / "val_1000.jsonl";
    return evalDir / task / "icl.jsonl";
}

std::string pythonCapitalize(const std::string& text)
{
    std::string out = text;
    for (size_t i = 0; i < out.size(); ++i) {
        const auto c = static_cast<unsigned char>(out[i]);
        out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
    }
    return out;
}

std::string hellaswagPreprocess(const std::string& text)
{
    // strip() (Python strips all whitespace)
    size_t b = 0, e = text.size();
    while (b < e && std::isspace(static_cast<unsigned char>(text[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1])))
        --e;
    std::string s = text.substr(b, e - b);
    // replace(" [title]", ". ")
    std::string r;
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 8, " [title]") == 0) {
            r += ". ";
            i += 8;
        } else {
            r += s[i++];
        }
    }
    // re.sub("\[.*?\]", "", r): remove each shortest bracketed span
    std::string u;
    for (size_t i = 0; i < r.size();) {
        if (r[i] == '[') {
            const size_t close = r.find(']', i + 1);
            if (close != std::string::npos) {
                i = close + 1;
                continue;
            }
        }
        u += r[i++];
    }
    // replace("  ", " ") (one pass, non-overlapping, as Python does)
    std::string v;
    for (size_t i = 0; i < u.size();) {
        if (u.compare(i, 2, "  ") == 0) {
            v += ' ';
            i += 2;
        } else {
            v += u[i++];
        }
    }
    return v;
}

TaskSet loadTaskSet(const std::string& name, const std::filesystem::path& file, int64_t limit)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw FileError(file.string() + ": cannot open task file");
    TaskSet set;
    set.name = name;
    set.file = file;
    std::string line;
    int64_t lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (limit >= 0 && static_cast<int64_t>(set.items.size()) >= limit)
            break;
        if (line.find_first_not_of(" \t\r") == std::string::npos)
            continue;
        const std::string where = file.string() + ":" + std::to_string(lineNo);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
            throw FormatError(where + ": invalid JSON: " + e.what());
        }
        TaskItem item;
        try {
            if (j.contains("context_options")) { // WinoGrande partial scoring
                const auto cont = j.at("continuation").get<std::string>();
                for (const auto& ctx : j.at("context_options"))
                    item.choices.push_back({ctx.get<std::string>(), " " + cont});
                item.gold = j.at("gold").get<int>();
            } else if (j.contains("endings")) { // HellaSwag
                const std::string ctx = j.at("ctx_a").get<std::string>() + " " +
                                        pythonCapitalize(j.at("ctx_b").get<std::string>());
                const std::string query = hellaswagPreprocess(j.at("activity_label").get<std::string>() + ": " + ctx);
                for (const auto& e : j.at("endings"))
                    item.choices.push_back({query, " " + hellaswagPreprocess(e.get<std::string>())});
                const auto& label = j.at("label");
                item.gold = label.is_string() ? std::stoi(label.get<std::string>()) : label.get<int>();
            } else if (j.contains("query")) { // llm-foundry icl.jsonl
                const auto query = j.at("query").get<std::string>();
                for (const auto& c : j.at("choices"))
                    item.choices.push_back({query, " " + c.get<std::string>()});
                item.gold = j.at("gold").get<int>();
            } else {
                throw FormatError(where + ": unknown item format (expected query/choices/gold, "
                                          "context_options/continuation/gold or HellaSwag's ctx_a/endings/label)");
            }
        } catch (const nlohmann::json::exception& e) {
            throw FormatError(where + ": malformed item: " + e.what());
        } catch (const std::invalid_argument&) {
            throw FormatError(where + ": label is not a number");
        }
        if (item.choices.size() < 2)
            throw FormatError(where + ": an item needs at least two choices");
        if (item.gold < 0 || item.gold >= static_cast<int>(item.choices.size()))
            throw FormatError(where + ": gold index " + std::to_string(item.gold) + " out of range for " +
                              std::to_string(item.choices.size()) + " choices");
        set.items.push_back(std::move(item));
    }
    if (set.items.empty())
        throw FormatError(file.string() + ": no items");
    return set;
}

} // namespace qpruner::eval
