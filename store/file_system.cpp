// Helpers over the File interface: whole writes and reads in the face of short ones.
#include "store/file_system.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace warren::store {

Status write_fully(File& file, std::span<const iovec> parts, std::uint64_t offset) {
    // A copy of the iovecs that we advance past what was written.
    constexpr std::size_t max_parts = 8;
    if (parts.size() > max_parts) {
        for (const iovec& part : parts) {
            Status s = write_fully(file, std::span<const iovec>(&part, 1), offset);
            if (!s) return s;
            offset += part.iov_len;
        }
        return {};
    }
    iovec local[max_parts];
    std::size_t count = 0;
    for (const iovec& part : parts)
        if (part.iov_len) local[count++] = part;
    std::size_t first = 0;
    while (first < count) {
        auto written = file.pwritev(std::span<const iovec>(local + first, count - first), offset);
        if (!written) return written.error();
        std::size_t n = *written;
        if (n == 0) return make_error(std::errc::io_error, fmt::format("pwritev {}: wrote nothing", file.path()));
        offset += n;
        while (n && first < count) {
            std::size_t take = std::min(n, local[first].iov_len);
            local[first].iov_base = static_cast<char*>(local[first].iov_base) + take;
            local[first].iov_len -= take;
            n -= take;
            if (local[first].iov_len == 0) ++first;
        }
    }
    return {};
}

Result<std::size_t> read_fully(File& file, std::span<std::byte> into, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < into.size()) {
        auto got = file.pread(into.subspan(done), offset + done);
        if (!got) return got.error();
        if (*got == 0) break;
        done += *got;
    }
    return done;
}

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    if (dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

}  // namespace warren::store
