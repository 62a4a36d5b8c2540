// Reading JSON documents from disk with errors that name the file (and the line/column of a syntax error).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/file_bytes.h"

namespace qpruner::io {

// Parses `path` as JSON. Throws FileError when it cannot be read, FormatError on a syntax error.
nlohmann::json readJsonFile(const std::filesystem::path& path);

} // namespace qpruner::io
