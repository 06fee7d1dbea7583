// See vhost_storage.hpp.
#include "broker/vhost_storage.hpp"

#include <algorithm>
#include <cstring>

#include "broker/delayed_exchange.hpp"
#include "broker/log.hpp"
#include "broker/queue.hpp"

namespace warren::broker {

VHostStorage::VHostStorage(store::MessageLog& log, const Clock& clock) : log_(log), clock_(clock) {}

void VHostStorage::append(Message& message, std::span<const store::QueueEntryRef> queues) {
    store::MessageRecord r;
    r.publish_ms = static_cast<std::uint64_t>(clock_.unix_ms());
    if (auto ttl = message.expiration_ms()) r.ttl_ms = static_cast<std::uint32_t>(std::min<std::uint64_t>(*ttl, store::no_ttl - 1));
    r.priority = message.priority();
    r.flags = message.is_persistent() ? store::message_flags::persistent : 0;
    r.exchange = message.exchange();
    r.routing_key = message.routing_key();
    r.properties = message.properties();
    r.body = message.body();
    r.queues = queues;
    message.set_store_location(log_.append(r));
    ++writes_;
}

void VHostStorage::append_delayed(Message& message, std::span<const store::QueueEntryRef> exchanges,
                                  std::uint32_t delay_ms) {
    store::MessageRecord r;
    r.publish_ms = static_cast<std::uint64_t>(clock_.unix_ms());
    r.ttl_ms = delay_ms;  // the delay, not an expiry: the message's own stays in its properties
    r.priority = message.priority();
    r.flags = message.is_persistent() ? store::message_flags::persistent : 0;
    r.exchange = message.exchange();
    r.routing_key = message.routing_key();
    r.properties = message.properties();
    r.body = message.body();
    r.queues = exchanges;
    message.set_store_location(log_.append(r));
    ++writes_;
}

void VHostStorage::delivered(std::uint64_t location, std::uint32_t queue_id) {
    log_.deliver(location, queue_id);
    ++writes_;
}

void VHostStorage::returned(std::uint64_t location, std::uint32_t queue_id, std::uint32_t delivery_count) {
    log_.ret(location, queue_id, static_cast<std::uint16_t>(std::min<std::uint32_t>(delivery_count, 0xFFFF)));
    ++writes_;
}

void VHostStorage::held(std::uint64_t location, std::uint32_t queue_id, std::uint32_t delivery_count,
                        std::int64_t hold_until_ms) {
    log_.hold(location, queue_id, static_cast<std::uint16_t>(std::min<std::uint32_t>(delivery_count, 0xFFFF)),
              hold_until_ms);
    ++writes_;
}

void VHostStorage::settled(std::uint64_t location, std::uint32_t queue_id) {
    log_.ack(location, queue_id);
    ++writes_;
}

void VHostStorage::write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) {
    // Queue id 0 is never a stored queue's: recovery drops these, and they settle with forget().
    static constexpr store::QueueEntryRef nobody{0, 0};
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const Message& m = *messages[i];
        store::MessageRecord r;
        r.publish_ms = static_cast<std::uint64_t>(clock_.unix_ms());
        r.priority = m.priority();
        r.exchange = m.exchange();
        r.routing_key = m.routing_key();
        r.properties = m.properties();
        r.body = m.body();
        r.queues = std::span(&nobody, 1);
        locations[i] = log_.append(r);
    }
    // Written before the bodies leave memory: the end of the turn's flush has run already.
    if (auto s = log_.flush(); !s) {
        log::error("storage: paging out under memory pressure failed: {}; the messages stay in memory",
                   s.error().message);
        std::fill(locations.begin(), locations.end(), 0);
        return;
    }
    paged_transient_ += messages.size();
}

MessageRef VHostStorage::load(std::uint64_t location, std::size_t read_ahead) {
    auto record = log_.read(location, read_ahead);
    MessageRef m;
    if (record) {
        const store::MessageRecordView& v = *record;
        m = Message::create(v.exchange, v.routing_key, v.properties, v.body.size());
        if (m) {
            if (!v.body.empty()) std::memcpy(m->body_data(), v.body.data(), v.body.size());
            m->set_store_location(location);
        }
    }
    if (!m) {
        ++unreadable_;
        log::error("storage: the message at segment {} offset {} of {} cannot be read ({}); it is dropped",
                   store::location_segment(location), store::location_offset(location), log_.directory(),
                   record ? "its properties do not decode" : record.error().message);
    }
    return m;
}

void VHostStorage::want_page_out(Queue& queue) {
    if (queue.page_out_wanted()) return;
    queue.set_page_out_wanted(true);
    page_out_.push_back(&queue);
}

void VHostStorage::forget_queue(Queue& queue) {
    if (!queue.page_out_wanted()) return;
    queue.set_page_out_wanted(false);
    std::erase(page_out_, &queue);
}

void VHostStorage::want_page_out(DelayedExchange& exchange) {
    if (exchange.page_out_wanted()) return;
    exchange.set_page_out_wanted(true);
    page_out_exchanges_.push_back(&exchange);
}

void VHostStorage::forget_exchange(DelayedExchange& exchange) {
    if (!exchange.page_out_wanted()) return;
    exchange.set_page_out_wanted(false);
    std::erase(page_out_exchanges_, &exchange);
}

void VHostStorage::page_out() {
    std::vector<Queue*> queues;
    queues.swap(page_out_);
    for (Queue* q : queues) {
        q->set_page_out_wanted(false);
        q->page_out();
    }
    std::vector<DelayedExchange*> exchanges;
    exchanges.swap(page_out_exchanges_);
    for (DelayedExchange* x : exchanges) {
        x->set_page_out_wanted(false);
        x->page_out();
    }
}

}  // namespace warren::broker
