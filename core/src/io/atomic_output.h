// Writing outputs so that nothing is ever half-written: files go to a temporary sibling and are renamed
// into place; whole directories are built beside the target and swapped in, so an existing result is
// replaced only once the new one is complete.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

namespace qpruner::io {

// Writes `bytes` to `path` atomically (temp file + fsync + rename). Throws FileError.
void writeFileAtomic(const std::filesystem::path& path, std::string_view bytes);
// The same for a file made of several pieces written one after another (e.g. a header and tensors' memory),
// without gathering them first.
void writeFileAtomic(const std::filesystem::path& path, const std::vector<std::string_view>& pieces);

// A file too large to gather first (a GGUF model), written piece by piece with the same guarantee: append() goes
// to a temporary sibling of `path`; commit() flushes it (fsync) and renames it over `path`. Destroyed without
// commit() (an exception on the way), it removes the temporary file and leaves `path` untouched. Throws FileError
// naming `path`.
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::filesystem::path path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void append(const void* data, size_t size);
    void commit();

private:
    std::filesystem::path path_;
    std::filesystem::path tmp_;
    int fd_ = -1;
    bool committed_ = false;
};

// A directory under construction. Write into path(); commit() swaps it in for `target`; if commit() is never
// called the temporary directory is removed and `target` is untouched.
class StagedDirectory {
public:
    explicit StagedDirectory(std::filesystem::path target);
    ~StagedDirectory();
    StagedDirectory(const StagedDirectory&) = delete;
    StagedDirectory& operator=(const StagedDirectory&) = delete;

    const std::filesystem::path& path() const { return staging_; }
    void commit();

private:
    std::filesystem::path target_;
    std::filesystem::path staging_;
    bool committed_ = false;
};

} // namespace qpruner::io
