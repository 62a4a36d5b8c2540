// Reading JSON documents from disk with errors that name the file (and the line/column of a syntax error).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace qpruner::io {

// Parses `path` as JSON. Throws FileError when it cannot be read, FormatError on a syntax error.
nlohmann::json readJsonFile(const std::filesystem::path& path);

// Reads the whole file as bytes. Throws FileError when it cannot be read.
std::string readFileBytes(const std::filesystem::path& path);

// Typed field access with errors naming the file and the field.
template <typename T>
T requireField(const nlohmann::json& obj, const std::string& key, const std::filesystem::path& file);

} // namespace qpruner::io
