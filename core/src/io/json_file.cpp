#include "io/json_file.h"

#include "qpruner/error.h"

namespace qpruner::io {

nlohmann::json readJsonFile(const std::filesystem::path& path)
{
    const std::string text = readFileBytes(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(path.string() + ": invalid JSON: " + e.what());
    }
}

} // namespace qpruner::io
