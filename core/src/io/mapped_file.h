// A read-only view of a file through a private memory map (copy-on-write: tensors made from it may be
// modified in place without touching the file). Kept alive by shared_ptr while any tensor uses it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

namespace qpruner::io {

class MappedFile {
public:
    // Throws FileError naming the file when it cannot be opened or mapped.
    static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

private:
    MappedFile() = default;
    std::filesystem::path path_;
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// Hands the resident pages of [p, p + bytes) back to the kernel (madvise MADV_PAGEOUT on the whole pages inside the
// range): a mapped file's clean pages leave this process's RSS and are read again from the file when touched;
// modified or anonymous pages are swapped out or, without swap, stay. Never changes what the memory holds.
// False (and nothing done) where the kernel refuses the advice (no MADV_PAGEOUT before Linux 5.4).
bool releaseResidentPages(const void* p, uint64_t bytes);

} // namespace qpruner::io
