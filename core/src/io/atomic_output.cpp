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
    const auto tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" + uniqueSuffix());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw FileError(path.string() + ": cannot create temporary file: " + std::strerror(errno));
    for (const std::string_view bytes : pieces) {
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                const int err = errno;
                ::close(fd);
                ::unlink(tmp.c_str());
                throw FileError(path.string() + ": write failed: " + std::strerror(err));
            }
            done += static_cast<size_t>(n);
        }
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw FileError(path.string() + ": cannot flush: " + std::strerror(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw FileError(path.string() + ": cannot rename into place: " + std::strerror(err));
    }
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
