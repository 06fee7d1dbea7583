// Writes whole frames into an output buffer: method frames, content headers, heartbeats.
// Body frames are written by the connection's output queue, which can send large bodies
// by reference (see broker/output_queue.hpp); body_frame_header writes their 7-byte headers.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/byte_buffer.hpp"
#include "protocol/frame.hpp"
#include "protocol/method_codec.hpp"
#include "protocol/writer.hpp"

namespace warren::protocol {

inline void write_frame_header(Writer& w, FrameType type, std::uint16_t channel, std::uint32_t size) {
    w.u8(static_cast<std::uint8_t>(type));
    w.u16(channel);
    w.u32(size);
}

template <class M>
void write_method_frame(ByteBuffer& out, std::uint16_t channel, const M& method) {
    Writer w(out);
    write_frame_header(w, FrameType::Method, channel, 0);
    std::size_t start = w.size();
    encode_method(w, method);
    w.patch_u32(start - 4, static_cast<std::uint32_t>(w.size() - start));
    w.u8(frame_end);
}

// `properties` is the encoded property list, flag words included.
inline void write_content_header(ByteBuffer& out, std::uint16_t channel, std::uint16_t class_id,
                                 std::uint64_t body_size, std::span<const std::byte> properties) {
    Writer w(out);
    write_frame_header(w, FrameType::Header, channel, static_cast<std::uint32_t>(12 + properties.size()));
    w.u16(class_id);
    w.u16(0);  // weight
    w.u64(body_size);
    w.bytes(properties);
    w.u8(frame_end);
}

inline void write_heartbeat(ByteBuffer& out) {
    Writer w(out);
    write_frame_header(w, FrameType::Heartbeat, 0, 0);
    w.u8(frame_end);
}

}  // namespace warren::protocol
