// AMQP 0-9-1 frame layout: type (1), channel (2), payload size (4), payload, frame-end 0xCE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace warren::protocol {

enum class FrameType : std::uint8_t { Method = 1, Header = 2, Body = 3, Heartbeat = 8 };

inline constexpr std::size_t frame_header_size = 7;
inline constexpr std::size_t frame_overhead = 8;  // header plus the frame-end octet
inline constexpr std::uint8_t frame_end = 0xCE;
inline constexpr std::uint32_t frame_min_size = 4096;

// The protocol header a client sends first, and the one we answer a wrong header with.
inline constexpr char protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

struct Frame {
    FrameType type;
    std::uint16_t channel;
    std::span<const std::byte> payload;  // a view into the read buffer
};

// Why a frame could not be read. Each is a 501 FRAME_ERROR connection close.
enum class FrameErrorKind { TooLarge, BadFrameEnd, UnknownType };

struct FrameError {
    FrameErrorKind kind;
    std::uint8_t type = 0;
    std::uint16_t channel = 0;
    std::uint32_t size = 0;
    std::uint32_t limit = 0;       // TooLarge: frame_max - 8, the limit RabbitMQ's text names
    std::uint8_t end_octet = 0;    // BadFrameEnd: what stood where 0xCE belongs
    std::span<const std::byte> payload;  // what we have of the payload, for the error text

    // RabbitMQ's reply text, e.g. "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,…}".
    std::string text() const;
};

enum class FrameStatus { NeedMore, Ready, Error };

struct FrameParse {
    FrameStatus status = FrameStatus::NeedMore;
    Frame frame{};
    std::size_t consumed = 0;  // bytes the frame took, when Ready
    FrameError error{};
};

// Reads the first frame of `in`. The payload size is checked against frame_max (0 means no
// limit other than 32 bits; like RabbitMQ, a payload of up to frame_max bytes passes, see
// frame_reader.cpp) as soon as the 7-byte header is in, before anything is buffered;
// the frame-end octet and the frame type are checked once the frame is complete.
FrameParse parse_frame(std::span<const std::byte> in, std::uint32_t frame_max);

// Erlang's ~p rendering of a binary, used in RabbitMQ's frame error texts: <<1,2,3>> or <<"abc">>.
std::string erlang_binary(std::span<const std::byte> bytes);

}  // namespace warren::protocol
