// The file operations the store uses, as an interface: PosixFileSystem for the broker,
// FaultFileSystem (in memory, with injected errors and a crash model) for tests. Paths are
// plain strings; the store only ever works inside the directories it is given.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "store/result.hpp"

namespace warren::store {

// An open file (or a directory opened only to sync it). Safe to use from two threads at once
// (the loop writes while the sync thread syncs), as the underlying system calls are.
class File {
public:
    virtual ~File() = default;

    // Writes at `offset`; may write less than asked (the caller continues), never more.
    virtual Result<std::size_t> pwritev(std::span<const iovec> parts, std::uint64_t offset) = 0;
    // Reads at `offset`; fewer bytes than asked only at the end of the file.
    virtual Result<std::size_t> pread(std::span<std::byte> into, std::uint64_t offset) = 0;
    // fdatasync for a file, fsync for a directory.
    virtual std::error_code sync() = 0;
    virtual std::error_code truncate(std::uint64_t size) = 0;
    virtual Result<std::uint64_t> size() = 0;
    // Zero-filling ahead of a writer (the message log's head segment, by the sync thread's
    // extender): appends zeros at the end of the file until it holds at least `size` bytes and
    // returns where the zeros end. Each append lands at the end of the file as it is at that
    // moment, so a concurrent pwritev past the old end is never overwritten with zeros. Fails
    // with ENOSPC, appending nothing, when fewer than `keep_free` bytes would be left free on
    // the file system: zeros ahead must not take the space the other files' writes need.
    virtual Result<std::uint64_t> append_zeros(std::uint64_t size, std::uint64_t keep_free) = 0;
    // fdatasync through the handle append_zeros() used, never the one the other syncs use: a
    // write-back error it meets is then still reported to sync() as well (Linux reports an error
    // once per open file description), so a concurrent round cannot miss it.
    virtual std::error_code sync_zeros() = 0;
    virtual const std::string& path() const = 0;
};

// Released when destroyed.
class FileLock {
public:
    virtual ~FileLock() = default;
};

enum class OpenMode {
    Read,            // existing file, read only
    ReadWrite,       // existing file
    CreateTruncate,  // create or empty
};

class FileSystem {
public:
    virtual ~FileSystem() = default;

    virtual Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
    virtual Result<std::shared_ptr<File>> open_directory(const std::string& path) = 0;
    virtual Status rename(const std::string& from, const std::string& to) = 0;
    virtual Status unlink(const std::string& path) = 0;  // a file, or an empty directory
    // Names (not paths) of the entries in `dir`, without "." and "..".
    virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
    virtual Status make_directories(const std::string& path) = 0;
    // An exclusive lock on `path` (created if missing) held until the FileLock is destroyed;
    // fails with a message naming the holder's pid when another process (or handle) has it.
    virtual Result<std::unique_ptr<FileLock>> lock(const std::string& path) = 0;
};

// Writes all of `parts` at `offset`, continuing after short writes.
Status write_fully(File& file, std::span<const iovec> parts, std::uint64_t offset);
// Reads exactly into.size() bytes unless the file ends first; returns the count read.
Result<std::size_t> read_fully(File& file, std::span<std::byte> into, std::uint64_t offset);

std::string join_path(const std::string& dir, const std::string& name);

}  // namespace warren::store
