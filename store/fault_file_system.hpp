// An in-memory FileSystem for tests, with injected faults (a failing n-th write, sync or zero
// extension, short writes, unreadable files, a power cut after n operations) and a crash model: crash_image()
// gives the files as a crash could leave them: what was synced, plus optionally a prefix of
// what was not (the last write possibly torn), and directory entries likewise.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "store/file_system.hpp"

namespace warren::store {

class FaultFileSystem final : public FileSystem {
public:
    // Extend: append_zeros (`partial` zero bytes land first); ExtendSync: sync_zeros.
    enum class Op { Write, Read, Sync, Truncate, Open, Rename, Unlink, Extend, ExtendSync };
    struct Fault {
        Op op;
        std::uint64_t nth = 1;  // the nth matching operation from now fails (1 = the next one)
        std::errc error = std::errc::io_error;
        std::size_t partial = 0;    // Write: this many bytes land in the file before the error
        std::string path_contains;  // only operations on paths containing this count
    };
    enum class CrashMode {
        LoseUnsynced,  // only what was synced survives
        KeepPrefix,    // plus a random prefix of the unsynced writes and directory changes
    };

    FaultFileSystem();
    ~FaultFileSystem() override;

    Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) override;
    Result<std::shared_ptr<File>> open_directory(const std::string& path) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status unlink(const std::string& path) override;
    Result<std::vector<std::string>> list(const std::string& dir) override;
    Status make_directories(const std::string& path) override;
    Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;

    void inject(Fault fault);
    void clear_faults();
    // Each write then stores at most half of what it was given (at least one byte).
    void set_short_writes(bool on);
    // pread on this file fails with EIO.
    void set_unreadable(const std::string& path, bool on);
    // Power cut: after `ops` more mutating operations (write, truncate, sync, create, rename,
    // unlink) every further one fails with EIO and changes nothing.
    void freeze_after(std::uint64_t ops);
    std::uint64_t mutating_ops() const;
    // While held, sync() waits (the sync thread stalls in fdatasync) until released.
    void hold_syncs(bool on);
    void wait_for_held_syncs(std::size_t count);
    // Likewise for sync_zeros() alone (the extender stalls after appending its zeros).
    void hold_zero_syncs(bool on);
    void wait_for_held_zero_syncs(std::size_t count);
    std::uint64_t syncs() const;       // file and directory syncs done (sync(), not sync_zeros())
    std::uint64_t zero_syncs() const;  // sync_zeros() calls that succeeded
    std::uint64_t reads() const;       // pread calls

    std::unique_ptr<FaultFileSystem> crash_image(CrashMode mode, std::uint64_t seed = 0) const;

    // Direct access for tests; no faults apply.
    bool exists(const std::string& path) const;
    std::string contents(const std::string& path) const;
    void set_contents(const std::string& path, const std::string& bytes);  // durable at once
    std::vector<std::string> paths() const;                                // every file, sorted

    struct State;  // shared with open files, so a file may outlive the FileSystem

private:
    explicit FaultFileSystem(std::shared_ptr<State> state);
    std::shared_ptr<State> state_;
};

}  // namespace warren::store
