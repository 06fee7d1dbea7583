// In-memory files with a crash model. Each file (node) keeps its content, the content as of
// its last sync, and the writes and truncates since; each directory keeps its entries, the
// entries as of its last sync, and the changes since. One mutex guards everything.
#include "store/fault_file_system.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>

namespace warren::store {

namespace {

struct PendingWrite {
    bool truncate = false;
    std::uint64_t offset = 0;  // the new size for a truncate
    std::string bytes;
};

struct Node {
    std::string data;
    std::string durable;
    std::vector<PendingWrite> pending;
    bool unreadable = false;
};

void apply_write(std::string& data, const PendingWrite& w, std::size_t limit = std::string::npos) {
    if (w.truncate) {
        data.resize(w.offset);
        return;
    }
    std::size_t n = std::min(limit, w.bytes.size());
    if (data.size() < w.offset + n) data.resize(w.offset + n);
    std::memcpy(data.data() + w.offset, w.bytes.data(), n);
}

struct DirChange {
    enum Kind { Link, Unlink, Rename } kind;
    std::string name, to;
    std::shared_ptr<Node> node;
};

struct Dir {
    std::map<std::string, std::shared_ptr<Node>> entries;
    std::map<std::string, std::shared_ptr<Node>> durable;
    std::vector<DirChange> pending;
};

void apply_change(std::map<std::string, std::shared_ptr<Node>>& entries, const DirChange& c) {
    switch (c.kind) {
        case DirChange::Link:
            entries[c.name] = c.node;
            break;
        case DirChange::Unlink:
            entries.erase(c.name);
            break;
        case DirChange::Rename: {
            auto it = entries.find(c.name);
            if (it == entries.end()) break;
            auto node = it->second;
            entries.erase(it);
            entries[c.to] = node;
            break;
        }
    }
}

std::pair<std::string, std::string> split(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return {".", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string normalize_dir(std::string dir) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
}

Error io_error(std::errc e, const char* call, const std::string& path) {
    return make_error(e, fmt::format("{} {}: {}", call, path, std::make_error_code(e).message()));
}

}  // namespace

struct FaultFileSystem::State {
    mutable std::mutex mutex;
    std::condition_variable held_cv;
    std::map<std::string, Dir> dirs;
    std::vector<Fault> faults;
    std::set<std::string> locks;
    bool short_writes = false;
    bool hold = false;
    std::size_t waiting_syncs = 0;
    bool hold_zeros = false;
    std::size_t waiting_zero_syncs = 0;
    std::uint64_t ops = 0;
    std::uint64_t freeze_at = UINT64_MAX;
    std::uint64_t sync_count = 0;
    std::uint64_t zero_sync_count = 0;
    std::uint64_t read_count = 0;

    Dir* dir(const std::string& path) {
        auto it = dirs.find(normalize_dir(path));
        return it == dirs.end() ? nullptr : &it->second;
    }
    std::shared_ptr<Node> node(const std::string& path) {
        auto [d, name] = split(path);
        Dir* dir_state = dir(d);
        if (!dir_state) return nullptr;
        auto it = dir_state->entries.find(name);
        return it == dir_state->entries.end() ? nullptr : it->second;
    }
    // Fires a matching injected fault, if its turn has come.
    std::optional<Fault> fault(Op op, const std::string& path) {
        for (auto it = faults.begin(); it != faults.end(); ++it) {
            if (it->op != op || path.find(it->path_contains) == std::string::npos) continue;
            if (--it->nth == 0) {
                Fault f = *it;
                faults.erase(it);
                return f;
            }
        }
        return std::nullopt;
    }
    // Counts a mutating operation; false once the power is cut.
    bool mutate() {
        if (ops >= freeze_at) return false;
        ++ops;
        return true;
    }
};

namespace {

class FaultFile final : public File {
public:
    FaultFile(std::shared_ptr<FaultFileSystem::State> s, std::shared_ptr<Node> node, std::string path, bool writable,
              bool is_dir)
        : s_(std::move(s)), node_(std::move(node)), path_(std::move(path)), writable_(writable), is_dir_(is_dir) {}

    Result<std::size_t> pwritev(std::span<const iovec> parts, std::uint64_t offset) override {
        std::lock_guard lock(s_->mutex);
        if (is_dir_ || !writable_) return io_error(std::errc::bad_file_descriptor, "pwritev", path_);
        std::string bytes;
        for (const iovec& p : parts) bytes.append(static_cast<const char*>(p.iov_base), p.iov_len);
        if (auto f = s_->fault(FaultFileSystem::Op::Write, path_)) {
            if (f->partial && s_->mutate()) store(offset, bytes.substr(0, std::min(f->partial, bytes.size())));
            return io_error(f->error, "pwritev", path_);
        }
        if (!s_->mutate()) return io_error(std::errc::io_error, "pwritev", path_);
        if (s_->short_writes && bytes.size() > 1) bytes.resize(bytes.size() / 2);
        store(offset, bytes);
        return bytes.size();
    }

    Result<std::size_t> pread(std::span<std::byte> into, std::uint64_t offset) override {
        std::lock_guard lock(s_->mutex);
        if (is_dir_) return io_error(std::errc::is_a_directory, "pread", path_);
        ++s_->read_count;
        if (node_->unreadable) return io_error(std::errc::io_error, "pread", path_);
        if (auto f = s_->fault(FaultFileSystem::Op::Read, path_)) return io_error(f->error, "pread", path_);
        if (offset >= node_->data.size()) return std::size_t{0};
        std::size_t n = std::min<std::size_t>(into.size(), node_->data.size() - offset);
        std::memcpy(into.data(), node_->data.data() + offset, n);
        return n;
    }

    std::error_code sync() override {
        std::unique_lock lock(s_->mutex);
        if (s_->hold) {
            ++s_->waiting_syncs;
            s_->held_cv.notify_all();
            s_->held_cv.wait(lock, [&] { return !s_->hold; });
            --s_->waiting_syncs;
        }
        if (auto f = s_->fault(FaultFileSystem::Op::Sync, path_)) return std::make_error_code(f->error);
        if (!s_->mutate()) return std::make_error_code(std::errc::io_error);
        ++s_->sync_count;
        if (is_dir_) {
            Dir* d = s_->dir(path_);
            if (d) {
                d->durable = d->entries;
                d->pending.clear();
            }
        } else {
            node_->durable = node_->data;
            node_->pending.clear();
        }
        return {};
    }

    std::error_code truncate(std::uint64_t size) override {
        std::lock_guard lock(s_->mutex);
        if (is_dir_ || !writable_) return std::make_error_code(std::errc::bad_file_descriptor);
        if (auto f = s_->fault(FaultFileSystem::Op::Truncate, path_)) return std::make_error_code(f->error);
        if (!s_->mutate()) return std::make_error_code(std::errc::io_error);
        PendingWrite w{true, size, {}};
        apply_write(node_->data, w);
        node_->pending.push_back(std::move(w));
        return {};
    }

    Result<std::uint64_t> size() override {
        std::lock_guard lock(s_->mutex);
        return std::uint64_t{node_->data.size()};
    }

    // Zeros appended at the end as it is now: one pending write, which a crash may keep in part.
    // No capacity model: `keep_free` is not checked (an Extend fault stands for a full disk).
    Result<std::uint64_t> append_zeros(std::uint64_t size, std::uint64_t) override {
        std::lock_guard lock(s_->mutex);
        if (is_dir_ || !writable_) return io_error(std::errc::bad_file_descriptor, "write (zeros)", path_);
        const std::uint64_t end = node_->data.size();
        if (auto f = s_->fault(FaultFileSystem::Op::Extend, path_)) {
            if (f->partial && end < size && s_->mutate())
                store(end, std::string(std::min<std::uint64_t>(f->partial, size - end), '\0'));
            return io_error(f->error, "write (zeros)", path_);
        }
        if (end >= size) return end;
        if (!s_->mutate()) return io_error(std::errc::io_error, "write (zeros)", path_);
        store(end, std::string(size - end, '\0'));
        return size;
    }

    std::error_code sync_zeros() override {
        std::unique_lock lock(s_->mutex);
        if (s_->hold_zeros) {
            ++s_->waiting_zero_syncs;
            s_->held_cv.notify_all();
            s_->held_cv.wait(lock, [&] { return !s_->hold_zeros; });
            --s_->waiting_zero_syncs;
        }
        if (auto f = s_->fault(FaultFileSystem::Op::ExtendSync, path_)) return std::make_error_code(f->error);
        if (!s_->mutate()) return std::make_error_code(std::errc::io_error);
        ++s_->zero_sync_count;
        node_->durable = node_->data;
        node_->pending.clear();
        return {};
    }

    const std::string& path() const override { return path_; }

private:
    void store(std::uint64_t offset, std::string bytes) {
        PendingWrite w{false, offset, std::move(bytes)};
        apply_write(node_->data, w);
        node_->pending.push_back(std::move(w));
    }

    std::shared_ptr<FaultFileSystem::State> s_;
    std::shared_ptr<Node> node_;
    std::string path_;
    bool writable_;
    bool is_dir_;
};

class FaultLock final : public FileLock {
public:
    FaultLock(std::shared_ptr<FaultFileSystem::State> s, std::string path) : s_(std::move(s)), path_(std::move(path)) {}
    ~FaultLock() override {
        std::lock_guard lock(s_->mutex);
        s_->locks.erase(path_);
    }

private:
    std::shared_ptr<FaultFileSystem::State> s_;
    std::string path_;
};

}  // namespace

FaultFileSystem::FaultFileSystem() : state_(std::make_shared<State>()) {}
FaultFileSystem::FaultFileSystem(std::shared_ptr<State> state) : state_(std::move(state)) {}
FaultFileSystem::~FaultFileSystem() = default;

Result<std::shared_ptr<File>> FaultFileSystem::open(const std::string& path, OpenMode mode) {
    std::lock_guard lock(state_->mutex);
    if (auto f = state_->fault(Op::Open, path)) return io_error(f->error, "open", path);
    auto [d, name] = split(path);
    Dir* dir = state_->dir(d);
    if (!dir) return io_error(std::errc::no_such_file_or_directory, "open", path);
    auto node = state_->node(path);
    if (mode == OpenMode::CreateTruncate) {
        if (!state_->mutate()) return io_error(std::errc::io_error, "open", path);
        if (!node) {
            node = std::make_shared<Node>();
            dir->entries[name] = node;
            dir->pending.push_back({DirChange::Link, name, {}, node});
        } else if (!node->data.empty()) {
            PendingWrite w{true, 0, {}};
            apply_write(node->data, w);
            node->pending.push_back(std::move(w));
        }
    } else if (!node) {
        return io_error(std::errc::no_such_file_or_directory, "open", path);
    }
    return std::shared_ptr<File>(std::make_shared<FaultFile>(state_, node, path, mode != OpenMode::Read, false));
}

Result<std::shared_ptr<File>> FaultFileSystem::open_directory(const std::string& path) {
    std::lock_guard lock(state_->mutex);
    if (!state_->dir(path)) return io_error(std::errc::no_such_file_or_directory, "open", path);
    return std::shared_ptr<File>(
        std::make_shared<FaultFile>(state_, std::make_shared<Node>(), normalize_dir(path), false, true));
}

Status FaultFileSystem::rename(const std::string& from, const std::string& to) {
    std::lock_guard lock(state_->mutex);
    if (auto f = state_->fault(Op::Rename, from)) return io_error(f->error, "rename", from);
    auto [from_dir, from_name] = split(from);
    auto [to_dir, to_name] = split(to);
    if (normalize_dir(from_dir) != normalize_dir(to_dir)) return io_error(std::errc::cross_device_link, "rename", from);
    Dir* dir = state_->dir(from_dir);
    if (!dir || !dir->entries.count(from_name)) return io_error(std::errc::no_such_file_or_directory, "rename", from);
    if (!state_->mutate()) return io_error(std::errc::io_error, "rename", from);
    DirChange c{DirChange::Rename, from_name, to_name, dir->entries[from_name]};
    apply_change(dir->entries, c);
    dir->pending.push_back(std::move(c));
    return {};
}

Status FaultFileSystem::unlink(const std::string& path) {
    std::lock_guard lock(state_->mutex);
    if (auto f = state_->fault(Op::Unlink, path)) return io_error(f->error, "unlink", path);
    auto [d, name] = split(path);
    Dir* dir = state_->dir(d);
    if (!dir || !dir->entries.count(name)) return io_error(std::errc::no_such_file_or_directory, "unlink", path);
    if (!state_->mutate()) return io_error(std::errc::io_error, "unlink", path);
    DirChange c{DirChange::Unlink, name, {}, {}};
    apply_change(dir->entries, c);
    dir->pending.push_back(std::move(c));
    return {};
}

Result<std::vector<std::string>> FaultFileSystem::list(const std::string& dir_path) {
    std::lock_guard lock(state_->mutex);
    Dir* dir = state_->dir(dir_path);
    if (!dir) return io_error(std::errc::no_such_file_or_directory, "opendir", dir_path);
    std::vector<std::string> names;
    for (const auto& [name, node] : dir->entries) names.push_back(name);
    return names;
}

Status FaultFileSystem::make_directories(const std::string& path) {
    std::lock_guard lock(state_->mutex);
    // Directories themselves are durable at once: the store never depends on creating them.
    std::string norm = normalize_dir(path);
    for (std::size_t pos = 0; pos != std::string::npos;) {
        pos = norm.find('/', pos + 1);
        std::string prefix = norm.substr(0, pos);
        if (!prefix.empty()) state_->dirs[prefix];
    }
    return {};
}

Result<std::unique_ptr<FileLock>> FaultFileSystem::lock(const std::string& path) {
    std::lock_guard lock(state_->mutex);
    if (!state_->locks.insert(path).second)
        return make_error(std::errc::resource_unavailable_try_again,
                          fmt::format("{} is in use by pid {}", path, ::getpid()));
    return std::unique_ptr<FileLock>(std::make_unique<FaultLock>(state_, path));
}

void FaultFileSystem::inject(Fault fault) {
    std::lock_guard lock(state_->mutex);
    state_->faults.push_back(std::move(fault));
}

void FaultFileSystem::clear_faults() {
    std::lock_guard lock(state_->mutex);
    state_->faults.clear();
    state_->freeze_at = UINT64_MAX;
}

void FaultFileSystem::set_short_writes(bool on) {
    std::lock_guard lock(state_->mutex);
    state_->short_writes = on;
}

void FaultFileSystem::set_unreadable(const std::string& path, bool on) {
    std::lock_guard lock(state_->mutex);
    if (auto node = state_->node(path)) node->unreadable = on;
}

void FaultFileSystem::freeze_after(std::uint64_t ops) {
    std::lock_guard lock(state_->mutex);
    state_->freeze_at = state_->ops + ops;
}

std::uint64_t FaultFileSystem::mutating_ops() const {
    std::lock_guard lock(state_->mutex);
    return state_->ops;
}

void FaultFileSystem::hold_syncs(bool on) {
    std::lock_guard lock(state_->mutex);
    state_->hold = on;
    state_->held_cv.notify_all();
}

void FaultFileSystem::hold_zero_syncs(bool on) {
    std::lock_guard lock(state_->mutex);
    state_->hold_zeros = on;
    state_->held_cv.notify_all();
}

void FaultFileSystem::wait_for_held_zero_syncs(std::size_t count) {
    std::unique_lock lock(state_->mutex);
    state_->held_cv.wait(lock, [&] { return state_->waiting_zero_syncs >= count; });
}

void FaultFileSystem::wait_for_held_syncs(std::size_t count) {
    std::unique_lock lock(state_->mutex);
    state_->held_cv.wait(lock, [&] { return state_->waiting_syncs >= count; });
}

std::uint64_t FaultFileSystem::syncs() const {
    std::lock_guard lock(state_->mutex);
    return state_->sync_count;
}

std::unique_ptr<FaultFileSystem> FaultFileSystem::crash_image(CrashMode mode, std::uint64_t seed) const {
    std::lock_guard lock(state_->mutex);
    std::mt19937_64 rng(seed);
    auto pick = [&](std::size_t n) {  // 0..n inclusive
        return mode == CrashMode::LoseUnsynced ? std::size_t{0} : std::uniform_int_distribution<std::size_t>(0, n)(rng);
    };
    auto image = std::make_shared<State>();
    std::map<const Node*, std::shared_ptr<Node>> copies;  // a node under two names stays one node
    auto node_image = [&](const std::shared_ptr<Node>& node) {
        auto& copy = copies[node.get()];
        if (copy) return copy;
        copy = std::make_shared<Node>();
        std::string data = node->durable;
        std::size_t keep = pick(node->pending.size());
        for (std::size_t i = 0; i < keep; ++i) apply_write(data, node->pending[i]);
        if (keep < node->pending.size() && mode == CrashMode::KeepPrefix) {
            const PendingWrite& torn = node->pending[keep];  // may reach the disk in part
            if (!torn.truncate) apply_write(data, torn, pick(torn.bytes.size()));
        }
        copy->data = copy->durable = std::move(data);
        return copy;
    };
    for (const auto& [path, dir] : state_->dirs) {
        auto entries = dir.durable;
        std::size_t keep = pick(dir.pending.size());
        for (std::size_t i = 0; i < keep; ++i) apply_change(entries, dir.pending[i]);
        Dir& out = image->dirs[path];
        for (const auto& [name, node] : entries) out.entries[name] = node_image(node);
        out.durable = out.entries;
    }
    return std::unique_ptr<FaultFileSystem>(new FaultFileSystem(std::move(image)));
}

std::uint64_t FaultFileSystem::zero_syncs() const {
    std::lock_guard lock(state_->mutex);
    return state_->zero_sync_count;
}

std::uint64_t FaultFileSystem::reads() const {
    std::lock_guard lock(state_->mutex);
    return state_->read_count;
}

bool FaultFileSystem::exists(const std::string& path) const {
    std::lock_guard lock(state_->mutex);
    return state_->node(path) != nullptr;
}

std::string FaultFileSystem::contents(const std::string& path) const {
    std::lock_guard lock(state_->mutex);
    auto node = state_->node(path);
    return node ? node->data : std::string();
}

void FaultFileSystem::set_contents(const std::string& path, const std::string& bytes) {
    std::lock_guard lock(state_->mutex);
    auto [d, name] = split(path);
    Dir& dir = state_->dirs[normalize_dir(d)];
    auto& node = dir.entries[name];
    if (!node) node = std::make_shared<Node>();
    node->data = node->durable = bytes;
    node->pending.clear();
    dir.durable[name] = node;
}

std::vector<std::string> FaultFileSystem::paths() const {
    std::lock_guard lock(state_->mutex);
    std::vector<std::string> out;
    for (const auto& [path, dir] : state_->dirs)
        for (const auto& [name, node] : dir.entries) out.push_back(join_path(path, name));
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace warren::store
