#include "io/atomic_output.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <unistd.h>

#include "qpruner/error.h"

namespace qpruner::io {

namespace {

std::string uniqueSuffix()
{
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000007ULL);
}

} // namespace

void writeFileAtomic(const std::filesystem::path& path, std::string_view bytes)
{
    writeFileAtomic(path, std::vector<std::string_view>{bytes});
}

void writeFileAtomic(const std::filesystem::path& path, const std::vector<std::string_view>& pieces)
{
    AtomicFileWriter out(path);
    for (const std::string_view bytes : pieces)
        out.append(bytes.data(), bytes.size());
    out.commit();
}

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path)
    : path_(std::move(path)),
      tmp_(path_.parent_path() / ("." + path_.filename().string() + ".tmp-" + uniqueSuffix()))
{
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw FileError(path_.string() + ": cannot create temporary file: " + std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter()
{
    if (fd_ >= 0)
        ::close(fd_);
    if (!committed_)
        ::unlink(tmp_.c_str());
}

void AtomicFileWriter::append(const void* data, size_t size)
{
    const auto* bytes = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd_, bytes + done, size - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw FileError(path_.string() + ": write failed: " + std::strerror(errno));
        }
        done += static_cast<size_t>(n);
    }
}

void AtomicFileWriter::commit()
{
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        throw FileError(path_.string() + ": cannot flush: " + std::strerror(err));
    }
    if (::close(fd) != 0)
        throw FileError(path_.string() + ": cannot flush: " + std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
        throw FileError(path_.string() + ": cannot rename into place: " + std::strerror(errno));
    committed_ = true;
}

StagedDirectory::StagedDirectory(std::filesystem::path target) : target_(std::move(target))
{
    auto parent = target_.parent_path();
    if (parent.empty())
        parent = ".";
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (std::filesystem::exists(target_) && !std::filesystem::is_directory(target_))
        throw FileError(target_.string() + ": exists and is not a directory");
    staging_ = parent / ("." + target_.filename().string() + ".staging-" + uniqueSuffix());
    if (!std::filesystem::create_directory(staging_, ec) || ec)
        throw FileError(staging_.string() + ": cannot create directory: " + ec.message());
}

StagedDirectory::~StagedDirectory()
{
    if (!committed_) {
        std::error_code ec;
        std::filesystem::remove_all(staging_, ec);
    }
}

void StagedDirectory::commit()
{
    std::error_code ec;
    std::filesystem::path old;
    if (std::filesystem::exists(target_)) {
        old = target_.parent_path() / ("." + target_.filename().string() + ".old-" + uniqueSuffix());
        std::filesystem::rename(target_, old, ec);
        if (ec)
            throw FileError(target_.string() + ": cannot move the previous version aside: " + ec.message());
    }
    std::filesystem::rename(staging_, target_, ec);
    if (ec) {
        if (!old.empty())
            std::filesystem::rename(old, target_); // put the previous version back
        throw FileError(target_.string() + ": cannot move the new version into place: " + ec.message());
    }
    committed_ = true;
    if (!old.empty())
        std::filesystem::remove_all(old, ec);
}

} // namespace qpruner::io
