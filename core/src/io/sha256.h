// SHA-256 (FIPS 180-4), self-contained: artifact hashes in the experiment store.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace qpruner::io {

// Incremental hashing: update() any number of times, then hexDigest() once.
class Sha256 {
public:
    Sha256();
    void update(std::string_view bytes);
    std::string hexDigest(); // lowercase hex; the object is spent afterwards

private:
    void compress(const uint8_t* block);

    std::array<uint32_t, 8> h_;
    std::array<uint8_t, 64> buffer_{};
    size_t buffered_ = 0;
    uint64_t length_ = 0; // bytes hashed so far
};

std::string sha256Hex(std::string_view bytes);

// Hashes the file in 1 MiB chunks. Throws FileError naming the path when it is missing, a directory or unreadable.
std::string sha256FileHex(const std::filesystem::path& path);

// A file's sha256 and size, or a directory's: the sha256 of the lines "<sha256 of file>  <relative path>\n" over
// its regular files (recursively, sorted by relative path, '/' separators) and the sum of their sizes.
// FileError naming the path when it is missing, unreadable or neither a file nor a directory.
struct PathDigest {
    std::string sha256;
    int64_t bytes = 0;
};
PathDigest sha256Path(const std::filesystem::path& path);

} // namespace qpruner::io
