// The consistent-hash exchange (x-consistent-hash), with the interface of RabbitMQ's
// rabbitmq_consistent_hash_exchange plugin: a binding's routing key is its weight (a number of
// buckets), a message goes to the one destination owning the bucket its hash jumps to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "exchanges/binding_set.hpp"
#include "exchanges/exchange.hpp"

namespace warren::exchanges {

// What the exchange hashes, from its `hash-header` / `hash-property` arguments.
struct HashSource {
    enum class Kind : std::uint8_t { RoutingKey, Header, CorrelationId, MessageId, Timestamp };
    Kind kind = Kind::RoutingKey;
    std::string header;  // Kind::Header: the header's name
};

// The plugin's validate/1 on exchange.declare: the detail of a 406, or nothing.
std::optional<std::string> validate_consistent_hash_arguments(const protocol::FieldTable& arguments);
HashSource consistent_hash_source(const protocol::FieldTable& arguments);

// Lamping and Veach's jump consistent hash: a bucket in [0, buckets) for a 64-bit key, such
// that growing `buckets` by one moves only 1/(buckets+1) of the keys (all to the new bucket).
std::uint64_t jump_consistent_hash(std::uint64_t key, std::uint64_t buckets);
// The 64-bit hash of the bytes a message is routed on (FNV-1a, then a murmur3 finalizer so
// that keys differing in one byte spread over the whole range).
std::uint64_t consistent_hash_of(std::string_view bytes);

class ConsistentHashExchange final : public Exchange {
public:
    // Weights above this are refused: RabbitMQ would build that many buckets in memory.
    static constexpr std::uint64_t max_weight = 0xFFFF'FFFFu;

    explicit ConsistentHashExchange(HashSource source) : source_(std::move(source)) {}

    ExchangeType type() const override { return ExchangeType::ConsistentHash; }

    std::optional<std::string> validate_binding_key(std::string_view routing_key) const override;

    bool bind(const Destination& destination, std::string_view routing_key,
              const protocol::FieldTable& arguments) override;
    bool unbind(const Destination& destination, std::string_view routing_key,
                const protocol::FieldTable& arguments) override;
    std::size_t remove_destination(const Destination& destination) override;

    void route(const RoutingInput& input, std::vector<Destination>& out) const override;

    std::size_t binding_count() const override { return bindings_.size(); }
    bool has_binding_to(const Destination& destination) const override {
        return bindings_.has_destination(destination);
    }
    // Ring order first, so that a definitions snapshot replayed in this order rebuilds the same
    // ring (and every key keeps its destination across a restart); then the bindings off it.
    void for_each_binding(const std::function<void(const Binding&)>& f) const override;

    std::uint64_t bucket_count() const { return total_; }

private:
    // One destination's run of buckets: [end - weight, end) of the ring, in binding order.
    struct Segment {
        Destination destination;
        BindingId id = no_binding;
        std::uint64_t end = 0;
    };

    void remove(BindingId id);
    void append_segment(BindingId id);
    void recompute_ends();
    std::uint64_t key_of(const RoutingInput& input) const;

    HashSource source_;
    BindingSet bindings_;
    std::vector<Segment> ring_;
    // The binding whose weight places each destination on the ring: the first one made, as in
    // the plugin, which ignores further bindings to a destination already on the ring.
    std::unordered_map<Destination, BindingId, DestinationHash> on_ring_;
    std::uint64_t total_ = 0;
    std::vector<BindingId> scratch_ids_;
};

}  // namespace warren::exchanges
