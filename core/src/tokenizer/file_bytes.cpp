// Whole-file reading for the tokenizer readers (see file_bytes.h).
#include "tokenizer/file_bytes.h"

#include "qpruner/error.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace qpruner {

std::string readFileBytes(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError("tokenizer file " + path.string() + " does not exist");
    if (std::filesystem::is_directory(path, ec))
        throw FileError("tokenizer file " + path.string() + " is a directory, expected a file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw FileError("cannot open tokenizer file " + path.string() + ": " + std::strerror(errno));
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw FileError("cannot read tokenizer file " + path.string());
    return bytes;
}

} // namespace qpruner
