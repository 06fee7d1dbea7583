// The FileSystem the broker uses: POSIX calls (pwritev, pread, fdatasync, flock), no mmap.
#pragma once

#include "store/file_system.hpp"

namespace warren::store {

class PosixFileSystem final : public FileSystem {
public:
    Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) override;
    Result<std::shared_ptr<File>> open_directory(const std::string& path) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status unlink(const std::string& path) override;
    Result<std::vector<std::string>> list(const std::string& dir) override;
    Status make_directories(const std::string& path) override;
    Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;
};

}  // namespace warren::store
