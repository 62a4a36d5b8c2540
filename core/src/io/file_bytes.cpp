#include "io/file_bytes.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

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
        throw FileError(path.string() + ": cannot open for reading: " + std::strerror(errno));
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw FileError(path.string() + ": read error");
    return bytes;
}

} // namespace qpruner::io
