// What stream queues read from arguments: x-max-age ("7D", "12h": RabbitMQ's
// rabbit_amqqueue:check_max_age/1), the consumer's x-stream-offset (first, last, next, an
// offset, a timestamp, an interval), its filter (x-stream-filter, x-stream-match-unfiltered)
// and the name under which the broker tracks its offset (x-stream-consumer-name).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/table_view.hpp"

namespace warren::broker {

namespace stream_args {
inline constexpr std::string_view max_age = "x-max-age";
inline constexpr std::string_view max_segment_size = "x-stream-max-segment-size-bytes";
inline constexpr std::string_view offset = "x-stream-offset";
inline constexpr std::string_view filter = "x-stream-filter";
inline constexpr std::string_view match_unfiltered = "x-stream-match-unfiltered";
inline constexpr std::string_view filter_value = "x-stream-filter-value";  // a message header
inline constexpr std::string_view consumer_name = "x-stream-consumer-name";
inline constexpr std::string_view group = "x-stream-group";  // Warren's consumer groups
}  // namespace stream_args

// RabbitMQ's default x-stream-max-segment-size-bytes.
inline constexpr std::uint64_t default_stream_segment_bytes = 500'000'000;

// "<digits><unit>" with unit Y (365 days), M (30 days), D, h, m or s and a value above 0, in
// milliseconds; nothing when RabbitMQ says invalid_max_age.
std::optional<std::uint64_t> parse_max_age_ms(std::string_view text);

struct OffsetSpec {
    enum class Kind : std::uint8_t { First, Last, Next, Offset, Timestamp };
    Kind kind = Kind::Next;
    std::int64_t value = 0;  // Offset: the offset (negative: first); Timestamp: unix ms
};

// rabbit_stream_queue:parse_offset_arg/1: absent means next; a timestamp ('T') is in seconds;
// a string other than first/last/next is an interval back from `now_ms`. An error is the 406
// detail after "invalid arg 'x-stream-offset' for <queue>: ".
std::variant<OffsetSpec, std::string> parse_offset_spec(std::optional<protocol::FieldRef> value, std::int64_t now_ms);

struct StreamFilter {
    bool active = false;  // x-stream-filter given: only matching messages are delivered
    std::vector<std::string> values;
    bool match_unfiltered = false;  // also messages without x-stream-filter-value
};

// rabbit_stream_queue:filter_spec/1: a string or an array of strings (other elements ignored).
StreamFilter parse_stream_filter(protocol::TableView arguments);

}  // namespace warren::broker
