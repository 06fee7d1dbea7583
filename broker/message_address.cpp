// See message_address.hpp. The table maps the length-prefixed pair to its address; the last
// address acquired is checked first, since consecutive publishes usually share it.
#include "broker/message_address.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>

namespace warren::broker {

namespace {

struct Table {
    std::unordered_map<std::string_view, MessageAddress*> by_key;
    MessageAddress* last = nullptr;
};

Table& table() {
    static Table t;
    return t;
}

bool same(const MessageAddress* a, std::string_view exchange, std::string_view key) {
    return a && a->exchange() == exchange && a->routing_key() == key;
}

}  // namespace

MessageAddress* MessageAddress::acquire(std::string_view exchange, std::string_view routing_key) {
    Table& t = table();
    if (!same(t.last, exchange, routing_key)) {
        char lookup[1 + 255 + 255];
        lookup[0] = static_cast<char>(exchange.size());
        std::memcpy(lookup + 1, exchange.data(), exchange.size());
        std::memcpy(lookup + 1 + exchange.size(), routing_key.data(), routing_key.size());
        std::string_view k(lookup, 1 + exchange.size() + routing_key.size());
        auto it = t.by_key.find(k);
        if (it != t.by_key.end()) {
            t.last = it->second;
        } else {
            void* memory = std::malloc(sizeof(MessageAddress) + k.size());
            if (!memory) throw std::bad_alloc();
            auto* a = new (memory) MessageAddress();
            a->exchange_len_ = static_cast<std::uint8_t>(exchange.size());
            a->key_len_ = static_cast<std::uint8_t>(routing_key.size());
            std::memcpy(reinterpret_cast<char*>(a + 1), k.data(), k.size());
            t.by_key.emplace(a->key(), a);
            t.last = a;
        }
    }
    ++t.last->refs_;
    return t.last;
}

void MessageAddress::release() {
    if (--refs_ != 0) return;
    Table& t = table();
    t.by_key.erase(key());
    if (t.last == this) t.last = nullptr;
    this->~MessageAddress();
    std::free(this);
}

std::size_t MessageAddress::live_count() { return table().by_key.size(); }

}  // namespace warren::broker
