// See stream_group.hpp.
#include "broker/stream_group.hpp"

#include <tuple>

#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/consumer.hpp"

namespace warren::broker {

std::uint64_t partition_index(std::string_view queue_name) {
    const std::size_t dash = queue_name.rfind('-');
    if (dash == std::string_view::npos || dash + 1 == queue_name.size() || queue_name.size() - dash > 10) return 0;
    std::uint64_t n = 0;
    for (char c : queue_name.substr(dash + 1)) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

bool ranks_before(const Consumer& a, const Consumer& b) {
    auto key = [](const Consumer& c) {
        return std::make_tuple(c.channel->connection().id(), c.channel->id(), c.serial);
    };
    return key(a) < key(b);
}

std::size_t owner_index(std::uint64_t partition, std::size_t members) {
    return members == 0 ? 0 : static_cast<std::size_t>(partition % members);
}

}  // namespace warren::broker
