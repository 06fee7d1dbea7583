// The topic exchange: binding keys are patterns of '.'-separated words where `*` matches one
// word and `#` zero or more, kept in a trie of words split once at bind time, as RabbitMQ's
// rabbit_db_topic_exchange does. route() walks the trie with the routing key's words.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "exchanges/binding_set.hpp"
#include "exchanges/exchange.hpp"

namespace warren::exchanges {

// Splits a routing or binding key into words as rabbit_db_topic_exchange:split_topic_key does:
// "" has no words at all; otherwise every '.' separates, so "a..b" is "a", "", "b" and "a." is
// "a", "". Replaces the contents of `out`; the views point into `key`.
void split_topic_words(std::string_view key, std::vector<std::string_view>& out);

class TopicExchange final : public Exchange {
public:
    TopicExchange();

    ExchangeType type() const override { return ExchangeType::Topic; }

    bool bind(const Destination& destination, std::string_view routing_key,
              const protocol::FieldTable& arguments) override;
    bool unbind(const Destination& destination, std::string_view routing_key,
                const protocol::FieldTable& arguments) override;
    std::size_t remove_destination(const Destination& destination) override;

    // Not re-entrant: uses the exchange's scratch space (one event-loop thread, see STYLE §4).
    void route(const RoutingInput& input, std::vector<Destination>& out) const override;

    std::size_t binding_count() const override { return bindings_.size(); }
    bool has_binding_to(const Destination& destination) const override {
        return bindings_.has_destination(destination);
    }
    void for_each_binding(const std::function<void(const Binding&)>& f) const override { bindings_.for_each(f); }

    // Live trie nodes, the root included: for tests that check pruning on unbind.
    std::size_t node_count() const { return nodes_.size() - free_nodes_.size(); }

private:
    using NodeId = std::uint32_t;
    static constexpr NodeId no_node = ~NodeId{0};
    static constexpr NodeId root = 0;

    struct Node {
        NodeId parent = no_node;
        std::string word;       // the edge from the parent, kept to unlink the node when pruned
        NodeId star = no_node;  // the `*` child
        NodeId hash = no_node;  // the `#` child
        std::uint32_t children = 0;
        DestinationList bindings;  // bindings whose key ends at this node
    };

    // Literal-word edges, (parent, word) -> child, like RabbitMQ's rabbit_topic_trie_edge.
    struct EdgeKey {
        NodeId parent;
        std::string word;
    };
    struct EdgeView {
        NodeId parent;
        std::string_view word;
    };
    struct EdgeHash {
        using is_transparent = void;
        std::size_t operator()(const EdgeView& e) const noexcept {
            return std::hash<std::string_view>{}(e.word) * 31 + e.parent;
        }
        std::size_t operator()(const EdgeKey& e) const noexcept { return (*this)(EdgeView{e.parent, e.word}); }
    };
    struct EdgeEq {
        using is_transparent = void;
        static EdgeView view(const EdgeKey& e) { return {e.parent, e.word}; }
        static EdgeView view(const EdgeView& e) { return e; }
        template <class A, class B>
        bool operator()(const A& a, const B& b) const noexcept {
            EdgeView x = view(a), y = view(b);
            return x.parent == y.parent && x.word == y.word;
        }
    };

    NodeId child(NodeId parent, std::string_view word) const;
    NodeId add_child(NodeId parent, std::string_view word);
    void prune(NodeId node);
    void remove(BindingId id);

    BindingSet bindings_;
    std::vector<Node> nodes_;
    std::vector<NodeId> free_nodes_;
    std::unordered_map<EdgeKey, NodeId, EdgeHash, EdgeEq> edges_;
    std::vector<BindingId> scratch_ids_;
    std::vector<std::string_view> bind_words_;

    // route() scratch, reused so that routing allocates nothing once warm. A node is in the
    // frontier for word position i when seen_[node] == stamp for i; stamps only grow, so stale
    // marks from earlier routes never match.
    mutable std::vector<std::string_view> words_;
    mutable std::vector<NodeId> current_, next_, hash_nodes_;
    mutable std::vector<std::uint64_t> seen_;
    mutable std::vector<std::uint64_t> hash_seen_;
    mutable std::uint64_t stamp_ = 0;
};

}  // namespace warren::exchanges
