// Shared by the delayed-delivery, retry and dead-letter restart tests: publishing with x-delay,
// declaring delayed exchanges, queues and queues that dead-letter (their oks taken), finding an
// exchange, and waiting for a delivery on the manual clock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "broker/delayed_exchange.hpp"
#include "support/storage_test.hpp"

namespace warren::testing {

// `base` with the headers property set to `headers`, encoded into `storage` (which must outlive
// the properties).
inline BasicProperties with_headers(const FieldTable& headers, ByteBuffer& storage, BasicProperties base = {}) {
    storage = encode_table_body(headers);
    base.headers = TableView::trusted(storage.span());
    base.set_flag(property_flag::headers);
    return base;
}

// Publishes `body` on channel 1 with x-delay `delay` (any field value) and the `extra` headers.
inline void publish_delayed(TestClient& c, std::string_view exchange, std::string_view key, std::string_view body,
                            FieldValue delay, bool mandatory = false, FieldTable extra = {},
                            BasicProperties base = {}) {
    extra.set("x-delay", std::move(delay));
    ByteBuffer storage;
    c.publish(1, exchange, key, body, with_headers(extra, storage, base), mandatory);
}

// The plugin's x-delayed-message exchange routing as `underlying`, on channel 1.
inline void declare_delayed(TestClient& c, std::string_view name, std::string_view underlying, bool durable = false) {
    ExchangeDeclare d;
    d.exchange = name;
    d.type = "x-delayed-message";
    d.durable = durable;
    ByteBuffer args = encode_table_body(table({{"x-delayed-type", std::string(underlying)}}));
    d.arguments = TableView::trusted(args.span());
    c.send(1, d);
    REQUIRE(c.take<ExchangeDeclareOk>().size() == 1);
}

// A queue on channel 1, its declare-ok taken.
inline void declare_queue_ok(TestClient& c, std::string_view name, const FieldTable& args = {}, bool durable = false) {
    c.declare_queue(1, name, args, durable);
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
}

inline void declare_and_bind(TestClient& c, std::string_view queue, std::string_view exchange, std::string_view key,
                             const FieldTable& binding_args = {}, bool durable = false) {
    declare_queue_ok(c, queue, {}, durable);
    c.bind_queue(1, queue, exchange, key, binding_args);
    REQUIRE(c.take<QueueBindOk>().size() == 1);
}

// `dlq`, and `queue` with `args` dead-lettering to it through the default exchange.
inline void declare_dead_lettering(TestClient& c, std::string_view queue, std::string_view dlq, FieldTable args = {},
                                   bool durable = false) {
    declare_queue_ok(c, dlq, {}, durable);
    args.set("x-dead-letter-exchange", std::string(""));
    args.set("x-dead-letter-routing-key", std::string(dlq));
    declare_queue_ok(c, queue, args, durable);
}

inline ExchangeEntry& exchange(TestBroker& b, std::string_view name) {
    auto* x = b.broker->default_vhost().find_exchange(name);
    REQUIRE(x);
    return *x;
}

inline std::size_t delayed_in(TestBroker& b, std::string_view exchange_name) {
    return exchange(b, exchange_name).messages_delayed();
}

inline std::vector<std::string> bodies(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.body);
    return out;
}

inline std::optional<std::int64_t> delivery_count(const Delivery& d) {
    FieldTable h = d.headers();
    const FieldValue* v = h.find("x-delivery-count");
    return v ? v->as_integer() : std::nullopt;
}

// Advances the clock 1 ms at a time until one delivery comes (into `out`); how long it took.
inline std::chrono::milliseconds wait_for_delivery(TestBroker& b, TestClient& c, Delivery& out,
                                                   std::chrono::milliseconds limit = std::chrono::seconds(100)) {
    using std::chrono::milliseconds;
    for (milliseconds waited{0}; waited <= limit; waited += milliseconds(1)) {
        auto got = c.deliveries();
        if (!got.empty()) {
            REQUIRE(got.size() == 1);
            out = got[0];
            return waited;
        }
        b.advance(milliseconds(1));
    }
    FAIL("no delivery within the limit");
    return limit;
}

}  // namespace warren::testing
