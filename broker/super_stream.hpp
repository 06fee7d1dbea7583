// Super streams (partitioned streams): stream queues <name>-0 … <name>-(N-1) behind one
// x-consistent-hash exchange <name> (argument x-super-stream: true, as RabbitMQ marks its super
// stream exchange), each bound with weight "1" and x-stream-partition-order, in partition order.
// Creating one is declaring those; growing one adds partitions at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/field_table.hpp"

namespace warren::broker {

class VHost;

inline constexpr std::uint32_t max_super_stream_partitions = 1000;

struct SuperStreamSpec {
    std::string name;
    std::int64_t partitions = 0;
    protocol::FieldTable queue_arguments;  // for new partitions (x-max-age, …); x-queue-type is set
    std::string hash_header;               // route by this header instead of the routing key
};

struct SuperStreamResult {
    bool created = false;              // a new super stream (else: it existed, perhaps grown)
    std::uint32_t added = 0;           // partitions added
    std::optional<std::string> error;  // the 400 text: nothing was changed
};

// Creates the super stream or grows it to spec.partitions; never shrinks one.
SuperStreamResult put_super_stream(VHost& vhost, const SuperStreamSpec& spec);

// The partitions of super stream `name`: the queues its exchange is bound to, in the order of
// their x-stream-partition-order (then of their bindings); none if there is no exchange of that
// name marked x-super-stream.
std::optional<std::vector<std::string>> super_stream_partitions(VHost& vhost, const std::string& name);

// Deletes the exchange and its partitions; false if there is no such super stream.
bool delete_super_stream(VHost& vhost, const std::string& name);

}  // namespace warren::broker
