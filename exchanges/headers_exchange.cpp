// HeadersExchange: RabbitMQ 4.x's rabbit_exchange_type_headers. For each binding, `all`
// requires every compared argument to match and `any` at least one; arguments whose key starts
// with "x-" are skipped unless the mode is all-with-x or any-with-x, and x-match itself always
// is. A void argument matches when the header is present, whatever its value. A message without
// headers is an empty table: `all` bindings with nothing to compare match it, `any` ones never do.
#include "exchanges/headers_exchange.hpp"

#include <algorithm>

#include "exchanges/header_values.hpp"

namespace warren::exchanges {

namespace ft = protocol::field_type;

namespace {

constexpr std::string_view x_match = "x-match";

bool is_x_key(std::string_view key) { return key.starts_with("x-"); }

}  // namespace

// rabbit_exchange_type_headers:validate_binding/2; the broker sends the text as
// "PRECONDITION_FAILED - <text>" (rabbit_channel: binding_invalid -> precondition_failed).
std::optional<std::string> HeadersExchange::validate_binding(const protocol::FieldTable& arguments) const {
    const protocol::FieldValue* mode = arguments.find(x_match);  // the first, as table_lookup
    if (mode == nullptr) return std::nullopt;  // "in practice it's useful to allow people to do this"
    if (const std::string* s = mode->as_string()) {
        if (*s == "all" || *s == "any" || *s == "all-with-x" || *s == "any-with-x") return std::nullopt;
        return "Invalid x-match field value " + erlang_term_text(*mode) +
               "; expected all, any, all-with-x, or any-with-x";
    }
    return "Invalid x-match field type " + std::string(protocol::field_type_name(mode->type())) + " (value " +
           erlang_term_text(*mode) + "); expected longstr";
}

bool HeadersExchange::bind(const Destination& destination, std::string_view routing_key,
                           const protocol::FieldTable& arguments) {
    auto [id, added] = bindings_.insert(destination, routing_key, arguments);
    if (!added) return false;

    // The match list comes from the stored (sorted) arguments. An x-match RabbitMQ would have
    // refused counts as `all`, as its route/3 does for bindings made before validation existed.
    const protocol::FieldTable& stored = bindings_[id].binding.arguments;
    Entry entry;
    entry.destination = destination;
    entry.id = id;
    bool with_x = false;
    if (const protocol::FieldValue* mode = stored.find(x_match)) {
        if (const std::string* s = mode->as_string()) {
            entry.any = *s == "any" || *s == "any-with-x";
            with_x = *s == "all-with-x" || *s == "any-with-x";
        }
    }
    entry.argument_bytes = protocol::encode_table_body(stored);
    protocol::TableView::trusted(entry.argument_bytes.span())
        .for_each([&](std::string_view key, protocol::FieldRef value) {
            if (key == x_match || (!with_x && is_x_key(key))) return;
            entry.args.push_back(MatchArg{key, value});
        });

    bindings_[id].pos = static_cast<std::uint32_t>(entries_.size());
    entries_.push_back(std::move(entry));
    return true;
}

void HeadersExchange::remove(BindingId id) {
    std::uint32_t pos = bindings_[id].pos;
    if (pos + 1 != entries_.size()) {
        entries_[pos] = std::move(entries_.back());
        bindings_[entries_[pos].id].pos = pos;
    }
    entries_.pop_back();
    bindings_.erase(id);
}

bool HeadersExchange::unbind(const Destination& destination, std::string_view routing_key,
                             const protocol::FieldTable& arguments) {
    BindingId id = bindings_.find(destination, routing_key, arguments);
    if (id == no_binding) return false;
    remove(id);
    return true;
}

std::size_t HeadersExchange::remove_destination(const Destination& destination) {
    bindings_.ids_for(destination, scratch_ids_);
    for (BindingId id : scratch_ids_) remove(id);
    return scratch_ids_.size();
}

bool HeadersExchange::matches(const Entry& entry) const {
    // RabbitMQ builds a map from the headers with a left fold, so a repeated key's last value
    // wins: take the last of the equal keys, which sort by wire position.
    auto lookup = [&](std::string_view key) -> const Header* {
        auto it = std::upper_bound(headers_.begin(), headers_.end(), key,
                                   [](std::string_view k, const Header& h) { return k < h.key; });
        if (it == headers_.begin() || (it - 1)->key != key) return nullptr;
        return &*(it - 1);
    };
    auto arg_matches = [&](const MatchArg& arg) {
        const Header* h = lookup(arg.key);
        if (h == nullptr) return false;
        return arg.value.type() == ft::void_value || header_value_matches(arg.value, h->value);
    };
    if (entry.any) return std::any_of(entry.args.begin(), entry.args.end(), arg_matches);
    return std::all_of(entry.args.begin(), entry.args.end(), arg_matches);
}

void HeadersExchange::route(const RoutingInput& input, std::vector<Destination>& out) const {
    if (entries_.empty()) return;
    headers_.clear();
    input.headers.for_each([&](std::string_view key, protocol::FieldRef value) {
        headers_.push_back(Header{key, value, headers_.size()});
    });
    // std::sort, not stable_sort: no temporary buffer, and the index makes the order total.
    std::sort(headers_.begin(), headers_.end(), [](const Header& a, const Header& b) {
        return a.key != b.key ? a.key < b.key : a.index < b.index;
    });
    for (const Entry& entry : entries_)
        if (matches(entry)) out.push_back(entry.destination);
}

}  // namespace warren::exchanges
