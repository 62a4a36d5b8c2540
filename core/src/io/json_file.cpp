#include "io/json_file.h"

#include <fstream>
#include <sstream>

#include "qpruner/error.h"

namespace qpruner::io {

std::string readFileBytes(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError(path.string() + ": file not found");
    if (std::filesystem::is_directory(path, ec))
        throw FileError(path.string() + ": is a directory, expected a file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw FileError(path.string() + ": cannot open for reading");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad())
        throw FileError(path.string() + ": read error");
    return ss.str();
}

nlohmann::json readJsonFile(const std::filesystem::path& path)
{
    const std::string text = readFileBytes(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(path.string() + ": invalid JSON: " + e.what());
    }
}

template <typename T>
T requireField(const nlohmann::json& obj, const std::string& key, const std::filesystem::path& file)
{
    if (!obj.is_object() || !obj.contains(key))
        throw FormatError(file.string() + ": missing field '" + key + "'");
    try {
        return obj.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
        throw FormatError(file.string() + ": field '" + key + "' has the wrong type (" +
                          obj.at(key).type_name() + ")");
    }
}

template int requireField<int>(const nlohmann::json&, const std::string&, const std::filesystem::path&);
template int64_t requireField<int64_t>(const nlohmann::json&, const std::string&, const std::filesystem::path&);
template double requireField<double>(const nlohmann::json&, const std::string&, const std::filesystem::path&);
template bool requireField<bool>(const nlohmann::json&, const std::string&, const std::filesystem::path&);
template std::string requireField<std::string>(const nlohmann::json&, const std::string&,
                                               const std::filesystem::path&);

} // namespace qpruner::io
