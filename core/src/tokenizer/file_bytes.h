// Whole-file reading for the tokenizer readers: tokenizer files are small (at most a few MB), so each reader
// parses an in-memory copy and can check every length against the real end of the data.
#pragma once

#include <filesystem>
#include <string>

namespace qpruner {

// The bytes of `path`. Throws FileError naming the file when it is missing, a directory or unreadable.
std::string readFileBytes(const std::filesystem::path& path);

} // namespace qpruner
