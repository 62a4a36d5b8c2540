#include "io/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qpruner/error.h"

namespace qpruner::io {

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw FileError(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw FileError(path.string() + ": cannot stat: " + std::strerror(err));
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = static_cast<uint64_t>(st.st_size);
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw FileError(path.string() + ": cannot map: " + std::strerror(err));
        }
        f->data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
    return f;
}

MappedFile::~MappedFile()
{
    if (data_)
        ::munmap(data_, size_);
}

bool releaseResidentPages(const void* p, uint64_t bytes)
{
#ifdef MADV_PAGEOUT
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const auto end = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
    if (!p || end <= begin)
        return true; // no whole page inside
    return ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT) == 0;
#else
    (void)p;
    (void)bytes;
    return false;
#endif
}

} // namespace qpruner::io
