// The frame reader: never trusts a length read off the wire.
#include <fmt/format.h>

#include "protocol/frame.hpp"
#include "protocol/reader.hpp"

namespace warren::protocol {

namespace {

bool is_known_type(std::uint8_t t) {
    return t == 1 || t == 2 || t == 3 || t == 8;
}

}  // namespace

FrameParse parse_frame(std::span<const std::byte> in, std::uint32_t frame_max) {
    FrameParse result;
    if (in.size() < frame_header_size) return result;
    Reader r(in.first(frame_header_size));
    std::uint8_t type = r.u8();
    std::uint16_t channel = r.u16();
    std::uint32_t size = r.u32();

    // rabbit_reader: PayloadSize > FrameMax - ?EMPTY_FRAME_SIZE + ?FRAME_SIZE_FUDGE is frame_too_large.
    // The fudge (8) forgives clients that count frame_max as the payload size, so a payload of
    // exactly frame_max bytes passes. The error names FrameMax - 8 and shows no octets (<<>>),
    // since it is raised on the header alone.
    if (frame_max != 0 && size > frame_max) {
        result.status = FrameStatus::Error;
        result.error = FrameError{FrameErrorKind::TooLarge, type, channel, size, frame_max - std::uint32_t(frame_overhead), 0, {}};
        return result;
    }
    std::uint64_t total = std::uint64_t{size} + frame_overhead;
    if (in.size() < total) return result;

    auto payload = in.subspan(frame_header_size, size);
    std::uint8_t end = std::to_integer<std::uint8_t>(in[frame_header_size + size]);
    if (end != frame_end) {
        result.status = FrameStatus::Error;
        result.error = FrameError{FrameErrorKind::BadFrameEnd, type, channel, size, 0, end, payload};
        return result;
    }
    if (!is_known_type(type)) {
        result.status = FrameStatus::Error;
        result.error = FrameError{FrameErrorKind::UnknownType, type, channel, size, 0, 0, payload};
        return result;
    }
    result.status = FrameStatus::Ready;
    result.frame = Frame{static_cast<FrameType>(type), channel, payload};
    result.consumed = static_cast<std::size_t>(total);
    return result;
}

std::string erlang_binary(std::span<const std::byte> bytes) {
    bool printable = !bytes.empty();
    for (std::byte b : bytes) {
        auto c = std::to_integer<unsigned char>(b);
        if (c < 32 || c > 126 || c == '"' || c == '\\') printable = false;
    }
    std::string out = "<<";
    if (printable) {
        out += '"';
        out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        out += '"';
    } else {
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            if (i) out += ',';
            out += std::to_string(std::to_integer<unsigned>(bytes[i]));
        }
    }
    out += ">>";
    return out;
}

std::string FrameError::text() const {
    auto snippet = payload.size() <= 16 ? payload : payload.first(16);
    std::string what;
    switch (kind) {
    case FrameErrorKind::TooLarge:
        what = fmt::format("{{frame_too_large,{},{}}}", size, limit);
        break;
    case FrameErrorKind::BadFrameEnd:
        what = fmt::format("{{invalid_frame_end_marker,{}}}", end_octet);
        break;
    case FrameErrorKind::UnknownType:
        what = "unknown_frame";
        break;
    }
    return fmt::format("FRAME_ERROR - type {}, {} octets = {}: {}", type, payload.size() <= 16 ? "all" : "first 16",
                       erlang_binary(snippet), what);
}

}  // namespace warren::protocol
