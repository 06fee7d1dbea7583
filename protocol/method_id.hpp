// A method's (class id, method id) pair, packed into 32 bits for switch dispatch.
#pragma once

#include <cstdint>

namespace warren::protocol {

struct MethodId {
    std::uint16_t class_id = 0;
    std::uint16_t method_id = 0;

    constexpr std::uint32_t packed() const { return (std::uint32_t{class_id} << 16) | method_id; }
    friend constexpr bool operator==(MethodId, MethodId) = default;
};

}  // namespace warren::protocol
