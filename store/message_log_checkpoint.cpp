// The clean-shutdown checkpoint of a MessageLog: every unsettled pair and the size of every file,
// in one record of a file written atomically (tmp, fdatasync, rename, fsync the directory). The
// next recover() uses it instead of reading every segment and sidecar, but only if the files are
// exactly as it describes them (any append, event or deletion since changes a size or the set of
// files); it is deleted once read, so it is never used twice. Anything doubtful means a full scan,
// which is always correct: the checkpoint is a shortcut, never the only copy of anything.
#include <fmt/format.h>

#include <map>
#include <set>

#include "store/bytes.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"

namespace warren::store {

namespace {

constexpr const char* checkpoint_name = "checkpoint";
constexpr std::size_t file_entry_size = 4 + 8 + 8;
constexpr std::size_t pair_entry_size = 56;

struct FileSizes {
    std::uint64_t seg = 0;
    std::uint64_t evt = 0;  // 0: no sidecar
};

// Payload: next_seq u64, file count u32, per file {number u32, seg size u64, evt size u64},
// pair count u64, per pair {queue id u32, queue seq u64, location u64, body size u32, priority
// u8, flags u8, delivery count u16, delivered u8, has deadline u8, 6 reserved, deadline i64,
// hold until i64, 4 reserved} (the hold deadline is new in format version 2).
void put_pair(std::byte* p, const RecoveredEntry& e) {
    std::memset(p, 0, pair_entry_size);
    put_u32(p, e.queue_id);
    put_u64(p + 4, e.queue_seq);
    put_u64(p + 12, e.location);
    put_u32(p + 20, e.body_size);
    put_u8(p + 24, e.priority);
    put_u8(p + 25, e.flags);
    put_u16(p + 26, e.delivery_count);
    put_u8(p + 28, e.delivered ? 1 : 0);
    put_u8(p + 29, e.has_deadline ? 1 : 0);
    put_u64(p + 36, static_cast<std::uint64_t>(e.deadline_ms));
    put_u64(p + 44, static_cast<std::uint64_t>(e.hold_until_ms));
}

RecoveredEntry get_pair(const std::byte* p) {
    RecoveredEntry e;
    e.queue_id = get_u32(p);
    e.queue_seq = get_u64(p + 4);
    e.location = get_u64(p + 12);
    e.body_size = get_u32(p + 20);
    e.priority = get_u8(p + 24);
    e.flags = get_u8(p + 25);
    e.delivery_count = get_u16(p + 26);
    e.delivered = get_u8(p + 28) != 0;
    e.has_deadline = get_u8(p + 29) != 0;
    e.deadline_ms = static_cast<std::int64_t>(get_u64(p + 36));
    e.hold_until_ms = static_cast<std::int64_t>(get_u64(p + 44));
    return e;
}

}  // namespace

Status MessageLog::write_checkpoint(std::span<const RecoveredEntry> pairs) {
    if (!recovered_) throw std::logic_error("store: MessageLog::write_checkpoint before recover()");
    if (has_unflushed()) return make_error(std::errc::operation_not_permitted, "store: checkpoint with unflushed data");
    // The indexes first: they stand on their own, whatever becomes of the checkpoint. Written by
    // the extender, after its zero-fills; this waits for them (and every earlier one).
    write_indexes();
    seal_head();
    wait_for_index_writes();
    // The pairs must be exactly the unsettled ones the log counts, segment by segment.
    std::map<std::uint32_t, std::uint64_t> counted;
    for (const RecoveredEntry& e : pairs) {
        Segment* s = holder(e.location);
        if (!s || location_offset(e.location) >= s->written)
            return make_error(std::errc::invalid_argument,
                              fmt::format("store: checkpoint pair at {:x} is not a written record", e.location));
        ++counted[s->number];
    }
    if (Status st = trim_preallocation(); !st) return st;
    std::vector<const Segment*> files;
    for (const auto& s : segments_) {
        if (!s || s->doomed) continue;
        if (counted[s->number] != s->live)
            return make_error(std::errc::invalid_argument,
                              fmt::format("store: checkpoint has {} pairs in segment {} where the log counts {}",
                                          counted[s->number], s->number, s->live));
        if (s->file) files.push_back(s.get());
    }

    Buffer payload;
    std::byte* p = payload.extend(8 + 4);
    put_u64(p, next_seq_);
    put_u32(p + 8, static_cast<std::uint32_t>(files.size()));
    for (const Segment* s : files) {
        p = payload.extend(file_entry_size);
        put_u32(p, s->number);
        put_u64(p + 4, s->written);
        put_u64(p + 12, s->sidecar ? s->sidecar_written : 0);
    }
    put_u64(payload.extend(8), pairs.size());
    for (const RecoveredEntry& e : pairs) put_pair(payload.extend(pair_entry_size), e);

    std::byte file_header[file_header_size];
    encode_file_header(file_header, {FileKind::Checkpoint, 0, options_.epoch});
    std::byte record_header[record_header_size];
    RecordHeader h;
    h.payload_size = static_cast<std::uint32_t>(payload.size());
    h.epoch = options_.epoch;
    h.seq = next_seq_;
    h.type = RecordType::Checkpoint;
    if (payload.size() > options_.max_record_size)
        return make_error(std::errc::file_too_large, "store: checkpoint over max_record_size");
    seal_record_header(record_header, h, payload.span());
    iovec parts[3] = {
        {file_header, file_header_size}, {record_header, record_header_size}, {payload.data(), payload.size()}};
    const std::string tmp = join_path(dir_, "checkpoint.tmp");
    auto file = fs_.open(tmp, OpenMode::CreateTruncate);
    if (!file) return file.error();
    if (Status st = write_fully(**file, parts, 0); !st) return st;
    if (std::error_code e = (*file)->sync()) return make_error(e, fmt::format("fdatasync {}: {}", tmp, e.message()));
    if (Status st = fs_.rename(tmp, join_path(dir_, checkpoint_name)); !st) return st;
    if (std::error_code e = dir_handle_->sync()) return make_error(e, fmt::format("fsync {}: {}", dir_, e.message()));
    return {};
}

bool MessageLog::recover_from_checkpoint(const Visitor& visit, RecoveryStats& stats) {
    const std::string path = join_path(dir_, checkpoint_name);
    auto opened = fs_.open(path, OpenMode::Read);
    if (!opened) return false;  // none: a crash, or the first start
    // Whatever happens next, it is read once only.
    auto forget = [&] {
        (void)fs_.unlink(path);
        (void)dir_handle_->sync();
    };
    auto refuse = [&](const std::string& why) {
        report_problem(stats, options_.warn, path, 0, why + "; reading the segments instead");
        forget();
        return false;
    };
    File& file = **opened;
    auto size = file.size();
    if (!size || *size < file_header_size + record_header_size) return refuse("checkpoint too short");
    Buffer bytes;
    bytes.resize(*size);
    auto got = read_fully(file, {bytes.data(), bytes.size()}, 0);
    if (!got || *got != *size) return refuse("checkpoint unreadable");
    auto header = decode_file_header({bytes.data(), file_header_size});
    if (!header || header->kind != FileKind::Checkpoint) return refuse("bad checkpoint header");
    // Another version lays its pairs out differently; reading the segments is always right.
    if (header->version != format_version_of(FileKind::Checkpoint))
        return refuse(fmt::format("checkpoint of format version {}", header->version));
    const std::byte* record = bytes.data() + file_header_size;
    RecordHeader h = peek_record_header(record);
    if (!has_record_magic(record) || h.type != RecordType::Checkpoint ||
        h.payload_size != *size - file_header_size - record_header_size || !record_checksum_ok(record, h.payload_size))
        return refuse("checkpoint record fails its checks");
    const std::byte* p = record + record_header_size;
    const std::byte* end = p + h.payload_size;
    auto need = [&](std::size_t n) { return static_cast<std::size_t>(end - p) >= n; };
    if (!need(12)) return refuse("checkpoint truncated");
    const std::uint64_t next_seq = get_u64(p);
    const std::uint32_t file_count = get_u32(p + 8);
    p += 12;
    if (!need(std::size_t{file_count} * file_entry_size + 8)) return refuse("checkpoint truncated");
    std::map<std::uint32_t, FileSizes> described;
    for (std::uint32_t i = 0; i < file_count; ++i, p += file_entry_size)
        described[get_u32(p)] = {get_u64(p + 4), get_u64(p + 12)};
    const std::uint64_t pair_count = get_u64(p);
    p += 8;
    if (pair_count > static_cast<std::uint64_t>(end - p) / pair_entry_size || p + pair_count * pair_entry_size != end)
        return refuse("checkpoint truncated");

    // The files must be exactly those it describes, at the sizes it describes.
    auto names = fs_.list(dir_);
    if (!names) return refuse("cannot list the directory");
    std::size_t seen = 0;
    std::set<std::uint32_t> indexed;  // segments with an .idx (deleted with them)
    for (const std::string& name : *names) {
        if (name.size() != 12 || name[8] != '.') continue;
        const std::string ext = name.substr(9);
        std::uint32_t number = static_cast<std::uint32_t>(std::strtoul(name.substr(0, 8).c_str(), nullptr, 16));
        if (ext == "idx") indexed.insert(number);
        if (ext != "seg" && ext != "evt") continue;
        auto it = described.find(number);
        if (it == described.end()) return refuse(fmt::format("{} is not in the checkpoint", name));
        auto f = fs_.open(join_path(dir_, name), OpenMode::Read);
        auto fsize = f ? (*f)->size() : Result<std::uint64_t>(f.error());
        const std::uint64_t expected = ext == "seg" ? it->second.seg : it->second.evt;
        if (!fsize || *fsize != expected) return refuse(fmt::format("{} changed since the checkpoint", name));
        ++seen;
    }
    std::size_t expected_files = 0;
    for (const auto& [number, sizes] : described) expected_files += 1 + (sizes.evt ? 1 : 0);
    if (seen != expected_files) return refuse("files of the checkpoint are missing");

    // It matches. Open every file first: once a pair has gone to the caller, there is no way back.
    struct Opened {
        std::shared_ptr<File> seg, evt;
    };
    std::map<std::uint32_t, Opened> opened_files;
    for (const auto& [number, sizes] : described) {
        auto seg = fs_.open(path_of(number, "seg"), OpenMode::ReadWrite);
        if (!seg) return refuse(seg.error().message);
        Opened& o = opened_files[number];
        o.seg = std::move(*seg);
        if (sizes.evt) {
            auto evt = fs_.open(path_of(number, "evt"), OpenMode::ReadWrite);
            if (!evt) return refuse(evt.error().message);
            o.evt = std::move(*evt);
        }
    }
    for (std::uint64_t i = 0; i < pair_count; ++i)
        if (!described.contains(location_segment(get_pair(p + i * pair_entry_size).location)))
            return refuse("a checkpoint pair is outside its files");
    std::map<std::uint32_t, std::uint64_t> live;
    for (std::uint64_t i = 0; i < pair_count; ++i, p += pair_entry_size) {
        RecoveredEntry e = get_pair(p);
        if (visit(e)) {
            ++live[location_segment(e.location)];
            ++stats.live;
        } else {
            ++stats.dropped;
        }
    }
    std::uint32_t max_number = 0;
    for (const auto& [number, sizes] : described) {
        max_number = std::max(max_number, number);
        if (live[number] == 0) {
            if (fs_.unlink(path_of(number, "seg"))) ++stats.deleted_files;
            if (sizes.evt && fs_.unlink(path_of(number, "evt"))) ++stats.deleted_files;
            if (indexed.contains(number) && fs_.unlink(path_of(number, "idx"))) ++stats.deleted_files;
            sync_.mark_dirty(dir_handle_, SyncClass::Directory);
            continue;
        }
        Segment& s = add_segment(number);
        s.has_index_file = indexed.contains(number);
        s.indexable = false;
        s.file = std::move(opened_files[number].seg);
        s.written = sizes.seg;
        s.sidecar = std::move(opened_files[number].evt);
        s.sidecar_written = sizes.evt;
        s.live = live[number];
        s.sealed = true;
        ++stats.files;
    }
    next_number_ = max_number + 1;
    next_seq_ = next_seq;
    stats.checkpoint = true;
    forget();
    return true;
}

}  // namespace warren::store
