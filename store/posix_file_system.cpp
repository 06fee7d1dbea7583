// POSIX implementation of the store's file interface. Every call retries on EINTR; every error
// names the call and the path.
#include "store/posix_file_system.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace warren::store {

namespace {

Error errno_error(const char* call, const std::string& path, int err = errno) {
    return make_error(std::error_code(err, std::generic_category()),
                      fmt::format("{} {}: {}", call, path, std::strerror(err)));
}

class PosixFile final : public File {
public:
    PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    ~PosixFile() override {
        ::close(fd_);
        if (append_fd_ >= 0) ::close(append_fd_);
    }
    PosixFile(const PosixFile&) = delete;
    PosixFile& operator=(const PosixFile&) = delete;

    Result<std::size_t> pwritev(std::span<const iovec> parts, std::uint64_t offset) override {
        for (;;) {
            ssize_t n = ::pwritev(fd_, parts.data(), static_cast<int>(parts.size()), static_cast<off_t>(offset));
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) return errno_error("pwritev", path_);
        }
    }

    Result<std::size_t> pread(std::span<std::byte> into, std::uint64_t offset) override {
        for (;;) {
            ssize_t n = ::pread(fd_, into.data(), into.size(), static_cast<off_t>(offset));
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) return errno_error("pread", path_);
        }
    }

    std::error_code sync() override {
        for (;;) {
            if (::fdatasync(fd_) == 0) return {};
            // Directories on some file systems refuse fdatasync; fsync is what they need.
            if (errno == EINVAL && ::fsync(fd_) == 0) return {};
            if (errno != EINTR) return {errno, std::generic_category()};
        }
    }

    std::error_code truncate(std::uint64_t size) override {
        for (;;) {
            if (::ftruncate(fd_, static_cast<off_t>(size)) == 0) return {};
            if (errno != EINTR) return {errno, std::generic_category()};
        }
    }

    Result<std::uint64_t> size() override {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) return errno_error("fstat", path_);
        return static_cast<std::uint64_t>(st.st_size);
    }

    Result<std::uint64_t> append_zeros(std::uint64_t size, std::uint64_t keep_free) override {
        // A second open file description of the same inode (even if renamed or unlinked since),
        // with O_APPEND: the kernel places each write at the end under the inode's lock.
        if (append_fd_ < 0) {
            const std::string self = fmt::format("/proc/self/fd/{}", fd_);
            int fd;
            do fd = ::open(self.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
            while (fd < 0 && errno == EINTR);
            if (fd < 0) return errno_error("open (append)", path_);
            append_fd_ = fd;
        }
        // Chunks of 64 KiB: each holds the inode lock (which the loop's own writes take) briefly.
        static constexpr std::size_t chunk = std::size_t{64} << 10;
        static const std::vector<char> zeros(chunk, 0);
        struct stat st {};
        if (::fstat(append_fd_, &st) != 0) return errno_error("fstat", path_);
        std::uint64_t end = static_cast<std::uint64_t>(st.st_size);
        if (end >= size) return end;
        struct statvfs fs {};
        if (::fstatvfs(append_fd_, &fs) != 0) return errno_error("fstatvfs", path_);
        const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
        if (free < size - end || free - (size - end) < keep_free)
            return make_error(std::errc::no_space_on_device,
                              fmt::format("{}: {} bytes free, fewer than {} to zero-fill and {} to keep free", path_,
                                          free, size - end, keep_free));
        while (end < size) {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - end));
            ssize_t w = ::write(append_fd_, zeros.data(), n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0)
                return w < 0 ? errno_error("write (zeros)", path_)
                             : make_error(std::errc::io_error, fmt::format("write (zeros) {}: wrote nothing", path_));
            // With O_APPEND the file offset is where this write ended.
            off_t at = ::lseek(append_fd_, 0, SEEK_CUR);
            if (at < 0) return errno_error("lseek", path_);
            end = static_cast<std::uint64_t>(at);
        }
        return end;
    }

    std::error_code sync_zeros() override {
        if (append_fd_ < 0) return {};
        for (;;) {
            if (::fdatasync(append_fd_) == 0) return {};
            if (errno != EINTR) return {errno, std::generic_category()};
        }
    }

    const std::string& path() const override { return path_; }

private:
    int fd_;
    int append_fd_ = -1;  // append_zeros()'s own handle, opened on first use (extender thread only)
    std::string path_;
};

class PosixLock final : public FileLock {
public:
    explicit PosixLock(int fd) : fd_(fd) {}
    ~PosixLock() override { ::close(fd_); }  // closing releases the flock
    PosixLock(const PosixLock&) = delete;
    PosixLock& operator=(const PosixLock&) = delete;

private:
    int fd_;
};

int open_flags(OpenMode mode) {
    switch (mode) {
        case OpenMode::Read:
            return O_RDONLY;
        case OpenMode::ReadWrite:
            return O_RDWR;
        case OpenMode::CreateTruncate:
            return O_RDWR | O_CREAT | O_TRUNC;
    }
    return O_RDONLY;
}

}  // namespace

Result<std::shared_ptr<File>> PosixFileSystem::open(const std::string& path, OpenMode mode) {
    int fd;
    do fd = ::open(path.c_str(), open_flags(mode) | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno_error("open", path);
    return std::shared_ptr<File>(std::make_shared<PosixFile>(fd, path));
}

Result<std::shared_ptr<File>> PosixFileSystem::open_directory(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error("open", path);
    return std::shared_ptr<File>(std::make_shared<PosixFile>(fd, path));
}

Status PosixFileSystem::rename(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_error("rename", from + " -> " + to);
    return {};
}

Status PosixFileSystem::unlink(const std::string& path) {
    // An empty directory goes too (a deleted vhost's message log).
    if (::unlink(path.c_str()) != 0 && !(errno == EISDIR && ::rmdir(path.c_str()) == 0)) return errno_error("unlink", path);
    return {};
}

Result<std::vector<std::string>> PosixFileSystem::list(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return errno_error("opendir", dir);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
    }
    int err = errno;
    ::closedir(d);
    if (err) return errno_error("readdir", dir, err);
    return names;
}

Status PosixFileSystem::make_directories(const std::string& path) {
    std::string partial;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t next = path.find('/', pos);
        if (next == std::string::npos) next = path.size();
        partial = path.substr(0, next);
        pos = next + 1;
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("mkdir", partial);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error("stat", path);
    if (!S_ISDIR(st.st_mode)) return make_error(std::errc::not_a_directory, fmt::format("{} is not a directory", path));
    return {};
}

Result<std::unique_ptr<FileLock>> PosixFileSystem::lock(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_error("open", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char text[32] = {};
        ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
        ::close(fd);
        if (err != EWOULDBLOCK) return errno_error("flock", path, err);
        std::string_view pid(text, n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.remove_suffix(1);
        return make_error(std::errc::resource_unavailable_try_again,
                          fmt::format("{} is in use by pid {}", path, pid.empty() ? "?" : pid));
    }
    // Holding the lock: record our pid for the next one who tries.
    std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        Error e = errno_error("write", path);
        ::close(fd);
        return e;
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixLock>(fd));
}

}  // namespace warren::store
