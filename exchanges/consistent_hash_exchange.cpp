// ConsistentHashExchange: the ring is the bindings' weights laid end to end in binding order
// (the plugin's bucket map, kept as runs so a weight of a million costs one entry); route()
// hashes the message's key, jumps to a bucket and finds its run by binary search.
#include "exchanges/consistent_hash_exchange.hpp"

#include <algorithm>
#include <charconv>

#include "exchanges/header_values.hpp"
#include "protocol/basic_properties.hpp"

namespace warren::exchanges {

namespace {

constexpr std::string_view hash_header = "hash-header";
constexpr std::string_view hash_property = "hash-property";

// A value the plugin hashes as Erlang's `undefined` (no header, no such property): all such
// messages go to one bucket, as they do there. Distinct from the hash of any byte string.
constexpr std::uint64_t undefined_key = 0x9e37'79b9'7f4a'7c15u;

// The plugin reads both arguments only when they are long strings (hash_args/1).
const std::string* string_argument(const protocol::FieldTable& arguments, std::string_view key) {
    const protocol::FieldValue* v = arguments.find(key);
    return v ? v->as_string() : nullptr;
}

// Erlang's list_to_integer/1: an optional sign, then one or more decimal digits, nothing else.
bool parse_erlang_integer(std::string_view s, bool& negative, std::string_view& digits) {
    negative = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    digits = s;
    return true;
}

// The weight a validated binding key stands for.
std::uint64_t weight_of(std::string_view key) {
    bool negative = false;
    std::string_view digits;
    parse_erlang_integer(key, negative, digits);
    std::uint64_t w = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), w);
    return w;
}

}  // namespace

std::optional<std::string> validate_consistent_hash_arguments(const protocol::FieldTable& arguments) {
    const std::string* header = string_argument(arguments, hash_header);
    const std::string* property = string_argument(arguments, hash_property);
    if (header && property) return "hash-header and hash-property are mutually exclusive";
    if (property && *property != "correlation_id" && *property != "message_id" && *property != "timestamp")
        return "Unsupported property: " + *property;
    return std::nullopt;
}

HashSource consistent_hash_source(const protocol::FieldTable& arguments) {
    HashSource source;
    if (const std::string* header = string_argument(arguments, hash_header)) {
        source.kind = HashSource::Kind::Header;
        source.header = *header;
    } else if (const std::string* property = string_argument(arguments, hash_property)) {
        if (*property == "correlation_id") source.kind = HashSource::Kind::CorrelationId;
        if (*property == "message_id") source.kind = HashSource::Kind::MessageId;
        if (*property == "timestamp") source.kind = HashSource::Kind::Timestamp;
    }
    return source;
}

std::uint64_t jump_consistent_hash(std::uint64_t key, std::uint64_t buckets) {
    // Each step is a draw from a linear congruential generator seeded with the key: the next
    // bucket count at which the key would jump. Doubles are exact here up to 2^53 buckets.
    std::int64_t b = -1;
    std::int64_t j = 0;
    const auto n = static_cast<std::int64_t>(buckets);
    while (j < n) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                      (static_cast<double>(1LL << 31) / static_cast<double>((key >> 33) + 1)));
    }
    return static_cast<std::uint64_t>(b);
}

std::uint64_t consistent_hash_of(std::string_view bytes) {
    std::uint64_t h = 0xcbf2'9ce4'8422'2325u;
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 0x0000'0100'0000'01b3u;
    }
    h ^= h >> 33;
    h *= 0xff51'afd7'ed55'8ccdu;
    h ^= h >> 33;
    h *= 0xc4ce'b9fe'1a85'ec53u;
    h ^= h >> 33;
    return h;
}

// rabbit_exchange_type_consistent_hash:validate_binding/2, sent as PRECONDITION_FAILED.
std::optional<std::string> ConsistentHashExchange::validate_binding_key(std::string_view routing_key) const {
    bool negative = false;
    std::string_view digits;
    if (!parse_erlang_integer(routing_key, negative, digits))
        return "The binding key must be an integer: " +
               erlang_term_text(protocol::FieldValue(std::string(routing_key)));
    std::string_view significant = digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
    if (negative || significant.empty()) return std::string("The binding key must be greater than 0");
    if (significant.size() > 10 || weight_of(significant) > max_weight)
        return "The binding key must be at most " + std::to_string(max_weight);
    return std::nullopt;
}

bool ConsistentHashExchange::bind(const Destination& destination, std::string_view routing_key,
                                  const protocol::FieldTable& arguments) {
    auto [id, added] = bindings_.insert(destination, routing_key, arguments);
    if (!added) return false;
    if (!on_ring_.contains(destination)) append_segment(id);
    return true;
}

void ConsistentHashExchange::append_segment(BindingId id) {
    const Binding& b = bindings_[id].binding;
    total_ += weight_of(b.routing_key);
    ring_.push_back(Segment{b.destination, id, total_});
    on_ring_[b.destination] = id;
}

void ConsistentHashExchange::recompute_ends() {
    total_ = 0;
    for (Segment& s : ring_) {
        total_ += weight_of(bindings_[s.id].binding.routing_key);
        s.end = total_;
    }
}

void ConsistentHashExchange::remove(BindingId id) {
    const Destination destination = bindings_[id].binding.destination;
    auto it = on_ring_.find(destination);
    const bool was_on_ring = it != on_ring_.end() && it->second == id;
    bindings_.erase(id);
    if (!was_on_ring) return;
    // The buckets after the removed run move down by its weight, as the plugin renumbers them:
    // keys that hashed to other destinations keep them only if they jumped below the gap.
    std::erase_if(ring_, [&](const Segment& s) { return s.id == id; });
    on_ring_.erase(it);
    recompute_ends();
    // The plugin drops a destination from the ring when any of its bindings goes, even if
    // another remains; Warren keeps it reachable through the remaining one, at the ring's end.
    bindings_.ids_for(destination, scratch_ids_);
    if (!scratch_ids_.empty()) append_segment(*std::min_element(scratch_ids_.begin(), scratch_ids_.end()));
}

bool ConsistentHashExchange::unbind(const Destination& destination, std::string_view routing_key,
                                    const protocol::FieldTable& arguments) {
    BindingId id = bindings_.find(destination, routing_key, arguments);
    if (id == no_binding) return false;
    remove(id);
    return true;
}

std::size_t ConsistentHashExchange::remove_destination(const Destination& destination) {
    bindings_.ids_for(destination, scratch_ids_);
    std::vector<BindingId> ids = scratch_ids_;
    for (BindingId id : ids) {
        on_ring_.erase(destination);  // no re-adding: every binding to it goes
        std::erase_if(ring_, [&](const Segment& s) { return s.id == id; });
        bindings_.erase(id);
    }
    recompute_ends();
    return ids.size();
}

std::uint64_t ConsistentHashExchange::key_of(const RoutingInput& input) const {
    switch (source_.kind) {
        case HashSource::Kind::RoutingKey:
            return consistent_hash_of(input.routing_key);
        case HashSource::Kind::Header: {
            auto value = input.headers.find(source_.header);
            if (!value) return undefined_key;
            // Type and value together, as the plugin hashes the {Type, Value} pair.
            std::string bytes(1, value->type());
            bytes.append(reinterpret_cast<const char*>(value->payload().data()), value->payload().size());
            return consistent_hash_of(bytes);
        }
        case HashSource::Kind::CorrelationId:
        case HashSource::Kind::MessageId:
        case HashSource::Kind::Timestamp: {
            auto props = protocol::decode_properties(input.properties);
            if (!props) return undefined_key;
            namespace pf = protocol::property_flag;
            if (source_.kind == HashSource::Kind::CorrelationId)
                return props->has(pf::correlation_id) ? consistent_hash_of(props->correlation_id) : undefined_key;
            if (source_.kind == HashSource::Kind::MessageId)
                return props->has(pf::message_id) ? consistent_hash_of(props->message_id) : undefined_key;
            // The plugin hashes the timestamp's decimal text.
            return props->has(pf::timestamp) ? consistent_hash_of(std::to_string(props->timestamp)) : undefined_key;
        }
    }
    return undefined_key;
}

void ConsistentHashExchange::for_each_binding(const std::function<void(const Binding&)>& f) const {
    for (const Segment& s : ring_) f(bindings_[s.id].binding);
    bindings_.for_each([&](const Binding& b) {
        auto it = on_ring_.find(b.destination);
        if (it == on_ring_.end() || &bindings_[it->second].binding != &b) f(b);
    });
}

void ConsistentHashExchange::route(const RoutingInput& input, std::vector<Destination>& out) const {
    if (total_ == 0) return;
    const std::uint64_t bucket = jump_consistent_hash(key_of(input), total_);
    auto it = std::upper_bound(ring_.begin(), ring_.end(), bucket,
                               [](std::uint64_t b, const Segment& s) { return b < s.end; });
    if (it != ring_.end()) out.push_back(it->destination);
}

}  // namespace warren::exchanges
