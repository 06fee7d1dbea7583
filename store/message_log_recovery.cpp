// MessageLog::recover: rebuilds the unsettled (message, queue) pairs from the segments and their
// sidecars after a restart or a crash. Trusts nothing it reads; never throws on bad bytes.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "store/bytes.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store/record_scanner.hpp"
#include "store/segment_index.hpp"

namespace warren::store {

namespace {

struct Record {
    std::uint32_t offset;
    std::uint32_t size;
    std::uint32_t body_size;
    std::uint32_t ttl_ms;
    std::uint64_t publish_ms;
    std::uint32_t first_pair;
    std::uint32_t pair_count;
    std::uint8_t priority;
    std::uint8_t flags;
};

struct Pair {
    std::uint32_t queue_id;
    std::uint64_t queue_seq;
    std::int64_t hold_until_ms = -1;
    std::uint16_t delivery_count = 0;
    bool delivered = false;
    bool settled = false;
};

// "0000002a.seg" -> 42, "seg". Anything else (LOCK, *.unreadable) is not ours to read.
bool parse_name(const std::string& name, std::uint32_t& number, std::string& extension) {
    if (name.size() != 12 || name[8] != '.') return false;
    extension = name.substr(9);
    if (extension != "seg" && extension != "evt" && extension != "idx") return false;
    number = 0;
    for (int i = 0; i < 8; ++i) {
        char c = name[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return false;
        number = number << 4 | static_cast<std::uint32_t>(digit);
    }
    return number != 0;
}

}  // namespace

struct MessageLog::RecoveryScratch {
    Buffer window;
    Buffer index;  // an .idx read, or one being built
    std::vector<Record> records;
    std::vector<Pair> pairs;
    std::uint64_t max_seq = 0;
    std::size_t hint = 0;

    Record* find(std::uint32_t offset) {
        std::size_t n = records.size();
        if (hint < n && records[hint].offset == offset) return &records[hint];
        if (hint + 1 < n && records[hint + 1].offset == offset) return &records[++hint];
        auto it = std::lower_bound(records.begin(), records.end(), offset,
                                   [](const Record& r, std::uint32_t o) { return r.offset < o; });
        if (it == records.end() || it->offset != offset) return nullptr;
        hint = static_cast<std::size_t>(it - records.begin());
        return &*it;
    }
    Pair* find(const Record& r, std::uint32_t queue_id) {
        for (std::uint32_t i = 0; i < r.pair_count; ++i) {
            Pair& p = pairs[r.first_pair + i];
            if (p.queue_id == queue_id && !p.settled) return &p;
        }
        return nullptr;
    }
};

namespace {

// What is left after the last good record: cut it off, so that appends follow good records.
// Only zeros (the unused end of a preallocated segment) or a reused file's earlier content: cut
// without a word.
void cut_tail(File& file, const std::string& path, const RecordScanner::Tail& tail, RecoveryStats& stats,
              const WarnSink& warn) {
    if (tail.length == 0) return;
    if (tail.data() == 0 || tail.earlier) {
        stats.unused_bytes += tail.length;
    } else if (tail.torn) {
        ++stats.torn_tails;
        report_problem(stats, warn, path, tail.offset, fmt::format("torn tail of {} bytes cut off", tail.length));
    } else {
        ++stats.bad_records;
        report_problem(stats, warn, path, tail.offset, fmt::format("{} bad bytes at the end cut off", tail.length));
    }
    if (tail.data()) stats.truncated_bytes += tail.length;
    if (std::error_code e = file.truncate(tail.offset))
        report_problem(stats, warn, path, tail.offset, "cannot truncate: " + e.message());
}

// Reads and checks the file header; false when the file is of a newer format (leave it alone).
enum class HeaderCheck { Good, Bad, TooNew, Unreadable };
HeaderCheck check_header(File& file, FileKind kind, const std::string& path, RecoveryStats& stats,
                         const WarnSink& warn, FileHeader* good = nullptr) {
    std::byte bytes[file_header_size];
    auto got = read_fully(file, bytes, 0);
    if (!got || *got < file_header_size) {
        ++stats.unreadable_files;
        report_problem(stats, warn, path, 0, "unreadable: " + (got ? std::string("short read") : got.error().message));
        return HeaderCheck::Unreadable;
    }
    auto h = decode_file_header(bytes);
    if (h && h->kind == kind && h->version > format_version_of(kind)) {
        ++stats.unreadable_files;
        report_problem(stats, warn, path, 0, fmt::format("format version {} is newer than this broker's", h->version));
        return HeaderCheck::TooNew;
    }
    if (!h || h->kind != kind) {
        ++stats.bad_headers;
        report_problem(stats, warn, path, 0, "bad file header (records are checked one by one)");
        return HeaderCheck::Bad;
    }
    if (good) *good = *h;
    return HeaderCheck::Good;
}

}  // namespace

Result<RecoveryStats> MessageLog::recover(const Visitor& visit) {
    if (recovered_) throw std::logic_error("store: MessageLog::recover called twice");
    auto names = fs_.list(dir_);
    if (!names) return names.error();
    struct Files {
        bool seg = false, evt = false, idx = false;
    };
    std::map<std::uint32_t, Files> numbers;
    RecoveryStats stats;
    for (const std::string& name : *names) {
        if (name.size() > 6 && name.ends_with(".spare")) {
            // A settled segment's file kept for reuse: reused only within the life that kept it.
            if (fs_.unlink(join_path(dir_, name))) ++stats.deleted_files;
            sync_.mark_dirty(dir_handle_, SyncClass::Directory);
            continue;
        }
        std::uint32_t number;
        std::string extension;
        if (!parse_name(name, number, extension)) continue;
        Files& f = numbers[number];
        (extension == "seg" ? f.seg : extension == "evt" ? f.evt : f.idx) = true;
    }
    if (recover_from_checkpoint(visit, stats)) {
        recovered_ = true;
        return stats;
    }
    RecoveryScratch scratch;
    std::uint32_t max_number = 0;
    for (const auto& [number, has] : numbers) {
        max_number = std::max(max_number, number);
        if (!has.seg) {
            // A sidecar or index whose segment is gone (a crash between the unlinks).
            if (has.evt && fs_.unlink(path_of(number, "evt"))) ++stats.deleted_files;
            if (has.idx && fs_.unlink(path_of(number, "idx"))) ++stats.deleted_files;
            sync_.mark_dirty(dir_handle_, SyncClass::Directory);
            continue;
        }
        recover_segment(number, has.evt, has.idx, visit, stats, scratch);
    }
    // New segments get numbers above every file seen, so no stale sidecar is ever reused.
    next_number_ = max_number + 1;
    next_seq_ = scratch.max_seq + 1;
    recovered_ = true;
    return stats;
}

void MessageLog::recover_segment(std::uint32_t number, bool has_sidecar, bool has_index, const Visitor& visit,
                                 RecoveryStats& stats, RecoveryScratch& scratch) {
    const std::string path = path_of(number, "seg");
    auto opened = fs_.open(path, OpenMode::ReadWrite);
    Result<std::uint64_t> size = opened ? (*opened)->size() : Result<std::uint64_t>(opened.error());
    if (!size) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, "cannot open: " + size.error().message);
        return;  // left as it is; its number stays taken
    }
    File& file = **opened;
    ++stats.files;
    scratch.records.clear();
    scratch.pairs.clear();
    scratch.hint = 0;
    std::uint64_t good_end = 0;
    std::uint64_t last_seq = 0;  // of this segment's last message record
    std::uint32_t last_crc = 0;
    bool indexed = false;
    bool reused = false;
    if (*size < file_header_size) {
        // Created, but its header never reached the disk whole: no records.
        cut_tail(file, path, {0, *size, 0, true}, stats, options_.warn);
    } else {
        FileHeader fields;
        HeaderCheck header = check_header(file, FileKind::Segment, path, stats, options_.warn, &fields);
        if (header == HeaderCheck::Unreadable || header == HeaderCheck::TooNew) return;
        // Version 3: written into a reused file. A header naming another segment: a reused file
        // whose new header was never written (a crash right after its rename), all of whose
        // records name that other segment. Either way what follows this segment's records (if
        // any) is the file's earlier content.
        reused = header == HeaderCheck::Good && (fields.version >= 3 || fields.number != number);
        // A sealed segment's index stands for its records, whose checksums are checked when they
        // are read; reading the header above proved the segment readable, as a scan would.
        indexed = header == HeaderCheck::Good && has_index && read_segment_index(number, file, *size, stats, scratch);
        if (indexed) good_end = *size;
    }
    if (!indexed && *size >= file_header_size) {
        RecordScanner scan(file, *size, file_header_size, options_.max_record_size, scratch.window);
        scan.set_segment(number, reused);
        for (bool more = true; more;) {
            auto item = scan.next();
            switch (item.step) {
                case RecordScanner::Step::Record: {
                    scratch.max_seq = std::max(scratch.max_seq, item.header.seq);
                    auto view =
                        item.header.type == RecordType::Message ? decode_message_payload(item.payload) : std::nullopt;
                    if (!view) {
                        ++stats.bad_records;
                        report_problem(stats, options_.warn, path, item.offset, "not a message record");
                        break;
                    }
                    ++stats.records;
                    last_seq = item.header.seq;
                    last_crc = item.header.crc;
                    scratch.records.push_back({static_cast<std::uint32_t>(item.offset),
                                               static_cast<std::uint32_t>(item.length),
                                               static_cast<std::uint32_t>(view->body.size()), view->ttl_ms,
                                               view->publish_ms, static_cast<std::uint32_t>(scratch.pairs.size()),
                                               view->queues.size(), view->priority, view->flags});
                    for (std::uint32_t i = 0; i < view->queues.size(); ++i)
                        scratch.pairs.push_back({view->queues[i].queue_id, view->queues[i].queue_seq});
                    break;
                }
                case RecordScanner::Step::Bad:
                    ++stats.bad_records;
                    report_problem(stats, options_.warn, path, item.offset,
                                   fmt::format("bad record, {} bytes skipped", item.length));
                    break;
                case RecordScanner::Step::ReadError:
                    ++stats.unreadable_files;
                    report_problem(stats, options_.warn, path, item.offset, "unreadable: " + scan.read_error().message);
                    return;  // left as it is
                case RecordScanner::Step::End:
                    more = false;
                    break;
            }
        }
        good_end = scan.tail().offset;
        cut_tail(file, path, scan.tail(), stats, options_.warn);
    }

    std::shared_ptr<File> sidecar;
    std::uint64_t sidecar_end = 0;
    if (has_sidecar) {
        const std::string evt_path = path_of(number, "evt");
        auto ev = fs_.open(evt_path, OpenMode::ReadWrite);
        bool known = false;
        if (ev) {
            std::uint64_t before = stats.unreadable_files;
            scan_sidecar(**ev, evt_path, stats, scratch);
            known = stats.unreadable_files == before;
            if (known) {
                sidecar = *ev;
                auto end = sidecar->size();
                sidecar_end = end && *end >= file_header_size ? *end : 0;
            }
        } else {
            ++stats.unreadable_files;
            report_problem(stats, options_.warn, evt_path, 0, "cannot open: " + ev.error().message);
        }
        if (!known) {
            // Which of its messages were acked is unknown: keep them all (as delivered, so they
            // go out marked redelivered), and set the unreadable file aside for the operator.
            for (Pair& p : scratch.pairs) p.delivered = p.delivered || !p.settled;
            if (Status st = fs_.rename(evt_path, evt_path + ".unreadable"); !st) {
                report_problem(stats, options_.warn, evt_path, 0, "cannot set aside: " + st.error().message);
                return;  // the segment is left as it is, and its number stays taken
            }
            report_problem(stats, options_.warn, evt_path, 0, "set aside as .unreadable; its messages are kept");
            sync_.mark_dirty(dir_handle_, SyncClass::Directory);
        }
    }

    std::uint64_t live = 0;
    RecoveredEntry e;
    for (const Record& r : scratch.records) {
        e.location = (Location{number} << 32) | r.offset;
        e.record_size = r.size;
        e.body_size = r.body_size;
        e.publish_ms = r.publish_ms;
        e.ttl_ms = r.ttl_ms;
        e.priority = r.priority;
        e.flags = r.flags;
        for (std::uint32_t i = 0; i < r.pair_count; ++i) {
            const Pair& p = scratch.pairs[r.first_pair + i];
            if (p.settled) continue;
            e.queue_id = p.queue_id;
            e.queue_seq = p.queue_seq;
            e.delivery_count = p.delivery_count;
            e.delivered = p.delivered;
            e.hold_until_ms = p.hold_until_ms;
            if (visit(e))
                ++live;
            else
                ++stats.dropped;
        }
    }
    stats.live += live;
    if (!scratch.records.empty()) ++stats.segments;
    if (indexed) ++stats.indexed_segments;
    if (live == 0) {
        // Everything in it is settled: the segment first, then its sidecar (see delete_doomed).
        if (fs_.unlink(path)) ++stats.deleted_files;
        if (sidecar && fs_.unlink(path_of(number, "evt"))) ++stats.deleted_files;
        if (has_index && fs_.unlink(path_of(number, "idx"))) ++stats.deleted_files;
        sync_.mark_dirty(dir_handle_, SyncClass::Directory);
        return;
    }
    Segment& s = add_segment(number);
    s.has_index_file = has_index;
    s.file = std::move(*opened);
    s.written = good_end;
    s.sidecar = std::move(sidecar);
    s.sidecar_written = sidecar_end;
    s.live = live;
    s.sealed = true;  // appends go to a new segment: offsets past a cut tail are never reused
    s.indexable = false;
    if (!indexed) index_recovered(s, stats, scratch, last_seq, last_crc);
}

bool MessageLog::read_segment_index(std::uint32_t number, File& file_of_segment, std::uint64_t segment_size,
                                    RecoveryStats& stats, RecoveryScratch& scratch) {
    const std::string path = path_of(number, "idx");
    auto refuse = [&](const std::string& why) {
        ++stats.bad_indexes;
        report_problem(stats, options_.warn, path, 0, why + "; reading the segment instead");
        scratch.records.clear();
        scratch.pairs.clear();
        return false;
    };
    auto file = fs_.open(path, OpenMode::Read);
    if (!file) return refuse("cannot open: " + file.error().message);
    auto size = (*file)->size();
    if (!size) return refuse("unreadable: " + size.error().message);
    if (*size > std::uint64_t{options_.max_record_size} + file_header_size + record_header_size)
        return refuse("index too large");
    scratch.index.resize(static_cast<std::size_t>(*size));
    auto got = read_fully(**file, {scratch.index.data(), scratch.index.size()}, 0);
    if (!got || *got != *size) return refuse("index unreadable");
    std::string why;
    auto summary = read_index(
        scratch.index.span(), number, segment_size, options_.max_record_size,
        [&](const IndexRecord& r) {
            scratch.records.push_back({r.offset, r.size, r.body_size, r.ttl_ms, r.publish_ms,
                                       static_cast<std::uint32_t>(scratch.pairs.size()), r.queues.size(), r.priority,
                                       r.flags});
            for (std::uint32_t i = 0; i < r.queues.size(); ++i)
                scratch.pairs.push_back({r.queues[i].queue_id, r.queues[i].queue_seq});
        },
        why);
    if (!summary) return refuse(why);
    // Its last record must be the one the index was made from (seq and checksum): an index
    // that outlived its segment never stands for a later segment of the same number and size.
    std::byte last[record_header_size];
    auto read = read_fully(file_of_segment, last, summary->last_offset);
    if (!read || *read != record_header_size) return refuse("the segment's last record is unreadable");
    RecordHeader h = peek_record_header(last);
    if (!has_record_magic(last) || h.seq != summary->last_seq || h.crc != summary->last_crc)
        return refuse("the segment's last record is not the one indexed");
    scratch.max_seq = std::max(scratch.max_seq, summary->last_seq);
    stats.records += scratch.records.size();
    return true;
}

void MessageLog::index_recovered(Segment& s, RecoveryStats& stats, RecoveryScratch& scratch, std::uint64_t last_seq,
                                 std::uint32_t last_crc) {
    // Only a segment whose file ends where its last good record does (its tail was cut), and
    // whose message records follow each other with nothing between (what an index describes).
    auto size = s.file->size();
    if (scratch.records.empty() || !size || *size != s.written) return;
    std::uint64_t next = file_header_size;
    for (const Record& r : scratch.records) {
        if (r.offset != next) return;
        next += r.size;
    }
    if (next != s.written) return;
    Buffer& payload = scratch.index;
    begin_index(payload);
    Buffer queues;
    for (const Record& r : scratch.records) {
        queues.resize(std::size_t{r.pair_count} * queue_entry_size);
        for (std::uint32_t i = 0; i < r.pair_count; ++i) {
            const Pair& p = scratch.pairs[r.first_pair + i];
            put_u32(queues.data() + i * queue_entry_size, p.queue_id);
            put_u64(queues.data() + i * queue_entry_size + 4, p.queue_seq);
        }
        append_index_entry(payload, {r.offset, r.size, r.body_size, r.ttl_ms, r.publish_ms, r.priority, r.flags, {}},
                           queues.span());
    }
    if (payload.size() > options_.max_record_size) return;
    const std::string path = path_of(s.number, "idx");
    std::shared_ptr<File> file;
    if (Status st = write_index_file(fs_, path, file, s.number, options_.epoch, s.written, last_seq, last_crc,
                                     static_cast<std::uint32_t>(scratch.records.size()), payload);
        !st) {
        report_problem(stats, options_.warn, path, 0, "cannot write: " + st.error().message);
        if (file) (void)fs_.unlink(path);
        return;
    }
    s.has_index_file = true;  // not synced, as at run time (write_indexes)
    ++stats.indexes_written;
}

void MessageLog::scan_sidecar(File& file, const std::string& path, RecoveryStats& stats, RecoveryScratch& scratch) {
    auto size = file.size();
    if (!size) {
        ++stats.unreadable_files;
        report_problem(stats, options_.warn, path, 0, "unreadable: " + size.error().message);
        return;
    }
    ++stats.files;
    if (*size < file_header_size) {
        cut_tail(file, path, {0, *size, 0, true}, stats, options_.warn);
        return;
    }
    HeaderCheck header = check_header(file, FileKind::Sidecar, path, stats, options_.warn);
    if (header == HeaderCheck::Unreadable) return;
    if (header == HeaderCheck::TooNew) return;  // counted as unreadable: the segment's acks are unknown
    RecordScanner scan(file, *size, file_header_size, options_.max_record_size, scratch.window);
    for (;;) {
        auto item = scan.next();
        if (item.step == RecordScanner::Step::End) break;
        if (item.step == RecordScanner::Step::ReadError) {
            ++stats.unreadable_files;
            report_problem(stats, options_.warn, path, item.offset, "unreadable: " + scan.read_error().message);
            return;
        }
        if (item.step == RecordScanner::Step::Bad) {
            ++stats.bad_records;
            report_problem(stats, options_.warn, path, item.offset,
                           fmt::format("bad record, {} bytes skipped", item.length));
            continue;
        }
        scratch.max_seq = std::max(scratch.max_seq, item.header.seq);
        std::size_t count = item.header.type == RecordType::Events ? event_count(item.payload) : 0;
        if (count == 0) {
            ++stats.bad_records;
            report_problem(stats, options_.warn, path, item.offset, "not an events record");
            continue;
        }
        EventCursor events(item.payload);
        for (Event ev; events.next(ev);) {
            Record* r = scratch.find(ev.offset);
            Pair* p = r ? scratch.find(*r, ev.queue_id) : nullptr;
            if (!p) {
                ++stats.stale_events;  // about a record that did not survive: harmless
                continue;
            }
            ++stats.events;
            switch (ev.kind) {
                case EventKind::Deliver:
                    p->delivered = true;
                    p->hold_until_ms = -1;
                    break;
                case EventKind::Return:
                    p->delivered = false;
                    p->delivery_count = ev.delivery_count;
                    p->hold_until_ms = -1;
                    break;
                case EventKind::Hold:
                    p->delivered = false;
                    p->delivery_count = ev.delivery_count;
                    p->hold_until_ms = ev.hold_until_ms;
                    break;
                case EventKind::Ack:
                    p->settled = true;
                    break;
            }
        }
        stats.stale_events += events.bad();  // unreadable events count as stale, as before
    }
    cut_tail(file, path, scan.tail(), stats, options_.warn);
}

}  // namespace warren::store
