// Whole-file reading. Tokenizer files, configs and text sets are small enough to parse from an in-memory copy,
// which lets every reader check each length against the real end of the data.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace qpruner::io {

// The bytes of `path`. Throws FileError naming the file when it is missing, a directory or unreadable.
// An open binary stream; FileError naming the path when it is missing, a directory or cannot be opened.
std::ifstream openForReading(const std::filesystem::path& path);

std::string readFileBytes(const std::filesystem::path& path);

// The file's bytes, checked to be valid UTF-8 (FormatError naming the byte offset).
std::string readUtf8File(const std::filesystem::path& path);

} // namespace qpruner::io
