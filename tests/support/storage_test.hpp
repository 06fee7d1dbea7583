// Shared by the storage tests: a broker on an in-memory file system (faults and crash images
// from store::FaultFileSystem), persistent publishes, and reading a queue out with basic.get.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/fault_file_system.hpp"
#include "support/test_client.hpp"

namespace warren::testing {

inline Config storage_config(bool fsync_confirms = true) {
    Config c;
    c.data_dir = "/data";
    c.fsync_confirms = fsync_confirms;
    return c;
}

inline BasicProperties persistent(std::uint8_t priority = 0) {
    BasicProperties p;
    p.delivery_mode = 2;
    p.set_flag(property_flag::delivery_mode);
    if (priority) {
        p.priority = priority;
        p.set_flag(property_flag::priority);
    }
    return p;
}

// The bodies left in `queue`, taken with basic.get no-ack, in delivery order.
inline std::vector<std::string> drain_bodies(TestClient& c, std::uint16_t channel, std::string_view queue) {
    std::vector<std::string> out;
    for (;;) {
        c.get(channel, queue, true);
        auto d = c.deliveries();
        if (d.empty()) {
            c.take<BasicGetEmpty>();
            return out;
        }
        out.push_back(d.front().body);
    }
}

// A copy of the file system as a crash (kill -9, or a power cut) would leave it.
inline std::shared_ptr<store::FaultFileSystem> crashed(const store::FaultFileSystem& fs,
                                                       store::FaultFileSystem::CrashMode mode =
                                                           store::FaultFileSystem::CrashMode::LoseUnsynced,
                                                       std::uint64_t seed = 0) {
    return std::shared_ptr<store::FaultFileSystem>(fs.crash_image(mode, seed));
}

}  // namespace warren::testing
