// Helpers shared by the routing tests: destinations by number, argument tables, a headers
// table encoded and validated the way the codec hands it to route(), and route() results as
// sorted queue ids (duplicates kept, so tests can count how often a destination came back).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "exchanges/exchange.hpp"
#include "protocol/byte_buffer.hpp"
#include "protocol/field_table.hpp"
#include "protocol/table_view.hpp"

namespace warren::exchanges::test {

using protocol::FieldTable;
using protocol::FieldValue;

inline Destination queue(std::uint64_t id) { return Destination{DestinationKind::Queue, id}; }
inline Destination exchange(std::uint64_t id) { return Destination{DestinationKind::Exchange, id}; }

inline FieldTable table(std::initializer_list<protocol::FieldEntry> entries) {
    return FieldTable{std::vector<protocol::FieldEntry>(entries)};
}

// Owns encoded header bytes; view() is what a decoded basic.publish carries.
class Headers {
public:
    Headers() = default;
    explicit Headers(const FieldTable& t) : bytes_(protocol::encode_table_body(t)) {}
    protocol::TableView view() const {
        auto parsed = protocol::TableView::parse(bytes_.span());
        return parsed ? *parsed : protocol::TableView{};
    }

private:
    protocol::ByteBuffer bytes_;
};

// Routes and returns the destination ids, sorted, duplicates kept.
inline std::vector<std::uint64_t> route_ids(const Exchange& x, std::string_view key, const Headers& headers = {}) {
    std::vector<Destination> out;
    x.route(RoutingInput{key, headers.view()}, out);
    std::vector<std::uint64_t> ids;
    for (const Destination& d : out) ids.push_back(d.id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

// The same, with duplicates removed (what the broker delivers to).
inline std::vector<std::uint64_t> routed_set(const Exchange& x, std::string_view key, const Headers& headers = {}) {
    auto ids = route_ids(x, key, headers);
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

inline std::vector<Binding> bindings_of(const Exchange& x) {
    std::vector<Binding> all;
    x.for_each_binding([&](const Binding& b) { all.push_back(b); });
    return all;
}

}  // namespace warren::exchanges::test
