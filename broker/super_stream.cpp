// See super_stream.hpp. Everything is checked before anything is declared, so a refused
// request changes nothing.
#include "broker/super_stream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "broker/exchange_entry.hpp"
#include "broker/queue.hpp"
#include "broker/queue_args.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/vhost.hpp"
#include "exchanges/exchange.hpp"

namespace warren::broker {

namespace {

constexpr std::string_view super_stream_arg = "x-super-stream";
constexpr std::string_view partition_order_arg = "x-stream-partition-order";

std::string partition_name(const std::string& name, std::uint32_t i) {
    return fmt::format("{}-{}", name, i);
}

ExchangeEntry* super_stream_exchange(VHost& vh, const std::string& name) {
    ExchangeEntry* x = vh.find_exchange(name);
    if (!x || x->type != exchanges::ExchangeType::ConsistentHash) return nullptr;
    const protocol::FieldValue* mark = x->arguments.find(super_stream_arg);
    if (!mark || !mark->is<bool>() || !*mark->get_if<bool>()) return nullptr;
    return x;
}

std::uint32_t count_bindings(const ExchangeEntry& x) {
    std::uint32_t n = 0;
    x.router->for_each_binding([&](const exchanges::Binding&) { ++n; });
    return n;
}

}  // namespace

std::optional<std::vector<std::string>> super_stream_partitions(VHost& vh, const std::string& name) {
    ExchangeEntry* x = super_stream_exchange(vh, name);
    if (!x) return std::nullopt;
    std::vector<std::pair<std::int64_t, std::string>> found;
    x->router->for_each_binding([&](const exchanges::Binding& b) {
        if (b.destination.kind != exchanges::DestinationKind::Queue) return;
        Queue* q = vh.queue_by_id(b.destination.id);
        if (!q) return;
        const protocol::FieldValue* order = b.arguments.find(partition_order_arg);
        std::optional<std::int64_t> n = order ? order->as_integer() : std::nullopt;
        found.emplace_back(n.value_or(std::numeric_limits<std::int64_t>::max()), q->name());
    });
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> names;
    for (auto& [order, queue] : found) names.push_back(std::move(queue));
    return names;
}

SuperStreamResult put_super_stream(VHost& vh, const SuperStreamSpec& spec) {
    SuperStreamResult result;
    auto fail = [&](std::string text) {
        result.error = std::move(text);
        return result;
    };
    if (spec.name.empty() || spec.name.size() > 240 || spec.name.starts_with("amq."))
        return fail("a super stream's name must be 1 to 240 bytes and not start with 'amq.'");
    if (spec.partitions < 1 || spec.partitions > max_super_stream_partitions)
        return fail(fmt::format("partitions must be an integer from 1 to {}, got {}", max_super_stream_partitions,
                                spec.partitions));
    const auto wanted = static_cast<std::uint32_t>(spec.partitions);
    std::uint32_t have = 0;
    ExchangeEntry* x = vh.find_exchange(spec.name);
    if (x) {
        if (!super_stream_exchange(vh, spec.name))
            return fail(
                fmt::format("{} exists and is not a super stream", resource_name("exchange", spec.name, vh.name())));
        have = count_bindings(*x);
        if (wanted < have)
            return fail(
                fmt::format("super stream '{}' has {} partitions: partitions cannot be removed", spec.name, have));
    }
    protocol::FieldTable qargs = spec.queue_arguments;
    qargs.set("x-queue-type", std::string("stream"));
    for (std::uint32_t i = have; i < wanted; ++i) {
        const std::string q = partition_name(spec.name, i);
        if (vh.find_queue(q)) return fail(fmt::format("{} exists already", resource_name("queue", q, vh.name())));
    }
    QueueArgsResult parsed =
        parse_queue_args(qargs, resource_name("queue", partition_name(spec.name, have), vh.name()));
    if (!parsed.args) return fail(parsed.error);
    if (!x) {
        protocol::FieldTable xargs;
        xargs.set(std::string(super_stream_arg), true);
        if (!spec.hash_header.empty()) xargs.set("hash-header", spec.hash_header);
        x = &vh.add_exchange(spec.name, exchanges::ExchangeType::ConsistentHash, true, false, false, std::move(xargs));
        result.created = true;
    }
    // Partitions join the ring in order, at its end: the jump hash then moves only the keys the
    // new partitions take.
    for (std::uint32_t i = have; i < wanted; ++i) {
        Queue& q = vh.add_queue(partition_name(spec.name, i), QueueFlags{true, false, false}, *parsed.args, qargs, 0);
        protocol::FieldTable bargs;
        bargs.set(std::string(partition_order_arg), std::int64_t{i});
        vh.bind(*x, q.as_destination(), "1", bargs);
        ++result.added;
    }
    return result;
}

bool delete_super_stream(VHost& vh, const std::string& name) {
    auto partitions = super_stream_partitions(vh, name);
    if (!partitions) return false;
    vh.delete_exchange(*super_stream_exchange(vh, name));
    for (const std::string& p : *partitions)
        if (Queue* q = vh.find_queue(p); q && q->stream()) vh.delete_queue(*q);
    return true;
}

}  // namespace warren::broker
