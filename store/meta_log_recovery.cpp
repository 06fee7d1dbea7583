// MetaLog::recover: picks the newest generation with a good snapshot, replays its log, and
// clears away what an interrupted compaction or an older generation left behind.
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "store/format.hpp"
#include "store/meta_log.hpp"
#include "store/record_scanner.hpp"

namespace warren::store {

namespace {

// "0000002a.snap" -> 42, "snap"; "0000002a.log" -> 42, "log".
bool parse_name(const std::string& name, std::uint32_t& generation, std::string& extension) {
    auto dot = name.find('.');
    if (dot != 8) return false;
    extension = name.substr(9);
    if (extension != "snap" && extension != "log") return false;
    generation = 0;
    for (int i = 0; i < 8; ++i) {
        char c = name[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return false;
        generation = generation << 4 | static_cast<std::uint32_t>(digit);
    }
    return true;
}

}  // namespace

bool MetaLog::read_snapshot(std::uint32_t generation, const Visitor& visit, RecoveryStats& stats, Buffer& window) {
    const std::string path = path_of(generation, "snap");
    auto file = fs_.open(path, OpenMode::Read);
    auto size = file ? (*file)->size() : Result<std::uint64_t>(file.error());
    if (!size) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, "cannot open: " + size.error().message);
        return false;
    }
    ++stats.files;
    std::byte bytes[file_header_size];
    auto got = read_fully(**file, bytes, 0);
    if (!got) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, "unreadable: " + got.error().message);
        return false;
    }
    auto header = decode_file_header({bytes, *got});
    if (!header || header->kind != FileKind::Snapshot || header->number != generation ||
        header->version > format_version_of(FileKind::Snapshot)) {
        ++stats.bad_headers;
        report_problem(stats, options_.warn, path, 0, "bad snapshot header");
        return false;
    }
    RecordScanner scan(**file, *size, file_header_size, options_.max_record_size, window);
    auto item = scan.next();
    if (item.step == RecordScanner::Step::ReadError) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, item.offset, "unreadable: " + scan.read_error().message);
        return false;
    }
    if (item.step != RecordScanner::Step::Record || item.offset != file_header_size ||
        item.header.type != RecordType::Snapshot) {
        ++stats.bad_records;
        report_problem(stats, options_.warn, path, file_header_size, "bad snapshot record");
        return false;
    }
    next_seq_ = std::max(next_seq_, item.header.seq + 1);
    ++stats.records;
    visit(Kind::Snapshot, item.payload);
    return true;
}

void MetaLog::read_log(const Visitor& visit, RecoveryStats& stats, Buffer& window) {
    const std::string path = path_of(generation_, "log");
    auto file = fs_.open(path, OpenMode::ReadWrite);
    auto size = file ? (*file)->size() : Result<std::uint64_t>(file.error());
    if (!size) {
        // The definitions after the snapshot are lost to this run; the file stays for the
        // operator, and nothing is appended until compact() starts a new generation.
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, "cannot open: " + size.error().message);
        log_unusable_ = true;
        return;
    }
    ++stats.files;
    if (*size < file_header_size) {
        if (*size) {
            ++stats.torn_tails;
            stats.truncated_bytes += *size;
            report_problem(stats, options_.warn, path, 0, fmt::format("torn tail of {} bytes cut off", *size));
            (void)(*file)->truncate(0);
        }
        log_ = std::move(*file);
        written_ = 0;
        return;
    }
    std::byte bytes[file_header_size];
    auto got = read_fully(**file, bytes, 0);
    auto header = got ? decode_file_header({bytes, *got}) : std::nullopt;
    if (header && header->kind == FileKind::MetaLog && header->version > format_version_of(FileKind::MetaLog)) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, fmt::format("format version {} is newer", header->version));
        log_unusable_ = true;
        return;
    }
    if (!header || header->kind != FileKind::MetaLog) {
        ++stats.bad_headers;
        report_problem(stats, options_.warn, path, 0, "bad file header (records are checked one by one)");
    }
    RecordScanner scan(**file, *size, file_header_size, options_.max_record_size, window);
    for (;;) {
        auto item = scan.next();
        if (item.step == RecordScanner::Step::End) break;
        if (item.step == RecordScanner::Step::ReadError) {
            ++stats.unreadable_files;
            report_problem(stats, options_.warn, path, item.offset, "unreadable: " + scan.read_error().message);
            log_unusable_ = true;  // never append after bytes we could not read
            return;
        }
        if (item.step == RecordScanner::Step::Bad || item.header.type != RecordType::Entry) {
            ++stats.bad_records;
            report_problem(stats, options_.warn, path, item.offset,
                           item.step == RecordScanner::Step::Bad
                               ? fmt::format("bad record, {} bytes skipped", item.length)
                               : std::string("not an entry record"));
            continue;
        }
        next_seq_ = std::max(next_seq_, item.header.seq + 1);
        ++stats.records;
        ++stats.live;
        visit(Kind::Entry, item.payload);
    }
    const auto& tail = scan.tail();
    if (tail.length) {
        (tail.torn ? stats.torn_tails : stats.bad_records) += 1;
        stats.truncated_bytes += tail.length;
        report_problem(stats, options_.warn, path, tail.offset,
                       tail.torn ? fmt::format("torn tail of {} bytes cut off", tail.length)
                                 : fmt::format("{} bad bytes at the end cut off", tail.length));
        if (std::error_code e = (*file)->truncate(tail.offset))
            report_problem(stats, options_.warn, path, tail.offset, "cannot truncate: " + e.message());
    }
    log_ = std::move(*file);
    written_ = tail.offset;
}

Result<RecoveryStats> MetaLog::recover(const Visitor& visit) {
    if (recovered_) throw std::logic_error("store: MetaLog::recover called twice");
    auto names = fs_.list(dir_);
    if (!names) return names.error();
    std::set<std::uint32_t> snapshots, logs;
    bool tmp = false;
    std::uint32_t max_generation = 0;
    for (const std::string& name : *names) {
        std::uint32_t generation;
        std::string extension;
        if (name == "snapshot.tmp") tmp = true;
        if (!parse_name(name, generation, extension)) continue;
        (extension == "snap" ? snapshots : logs).insert(generation);
        max_generation = std::max(max_generation, generation);
    }
    RecoveryStats stats;
    Buffer window;
    // An interrupted compaction's snapshot, never renamed: not part of any generation.
    if (tmp && fs_.unlink(join_path(dir_, "snapshot.tmp"))) ++stats.deleted_files;

    // The newest good snapshot decides the generation; generation 0 needs none.
    std::uint32_t chosen = 0;
    bool found = false;
    for (auto it = snapshots.rbegin(); it != snapshots.rend() && !found; ++it) {
        if (read_snapshot(*it, visit, stats, window)) {
            chosen = *it;
            found = true;
        }
    }
    if (!found && !snapshots.empty())
        report_problem(stats, options_.warn, dir_, 0,
                       "no readable snapshot: definitions recovered from generation 0's log only");
    generation_ = chosen;
    next_generation_ = max_generation + 1;
    if (logs.count(chosen)) read_log(visit, stats, window);

    // Older generations are superseded; a newer log without a snapshot file is what an
    // interrupted compaction left (empty). Bad newer snapshots stay, for the operator.
    for (std::uint32_t g : logs) {
        if (g < chosen || (g > chosen && !snapshots.count(g))) {
            if (fs_.unlink(path_of(g, "log"))) ++stats.deleted_files;
        }
    }
    for (std::uint32_t g : snapshots) {
        if (g < chosen && fs_.unlink(path_of(g, "snap"))) ++stats.deleted_files;
    }
    sync_.mark_dirty(dir_handle_, SyncClass::Directory);
    recovered_ = true;
    return stats;
}

}  // namespace warren::store
