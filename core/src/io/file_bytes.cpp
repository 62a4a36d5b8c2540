#include "io/file_bytes.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "qpruner/error.h"
#include "tokenizer/utf8.h"

namespace qpruner::io {

std::ifstream openForReading(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError(path.string() + ": file not found");
    if (std::filesystem::is_directory(path, ec))
        throw FileError(path.string() + ": is a directory, expected a file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw FileError(path.string() + ": cannot open for reading: " + std::strerror(errno));
    return in;
}

std::string readFileBytes(const std::filesystem::path& path)
{
    std::ifstream in = openForReading(path);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw FileError(path.string() + ": read error");
    return bytes;
}

std::string readUtf8File(const std::filesystem::path& path)
{
    std::string text = readFileBytes(path);
    // The evaluation protocol reads text files as UTF-8: refuse anything else rather than score garbage.
    for (size_t i = 0; i < text.size();) {
        const Utf8Char c = decodeUtf8(std::string_view(text).substr(i));
        if (!c.valid)
            throw FormatError(path.string() + ": not valid UTF-8 at byte " + std::to_string(i));
        i += c.length;
    }
    return text;
}

} // namespace qpruner::io
