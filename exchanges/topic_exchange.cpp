// TopicExchange: the word trie and its matcher. Semantics follow RabbitMQ's trie_match
// (rabbit_db_topic_exchange.erl): at node N with words W1..Wn it follows the child for W1 and
// the `*` child with W2..Wn, and the `#` child with every suffix Wi..Wn, the empty one included;
// with no words left it takes N's bindings and follows the `#` child once more.
#include "exchanges/topic_exchange.hpp"

namespace warren::exchanges {

void split_topic_words(std::string_view key, std::vector<std::string_view>& out) {
    out.clear();
    if (key.empty()) return;  // split_topic_key(<<>>) is [], not [""]
    std::size_t start = 0;
    for (;;) {
        std::size_t dot = key.find('.', start);
        if (dot == std::string_view::npos) {
            out.push_back(key.substr(start));
            return;
        }
        out.push_back(key.substr(start, dot - start));
        start = dot + 1;
    }
}

TopicExchange::TopicExchange() {
    nodes_.emplace_back();  // the root, never freed
    seen_.push_back(0);
    hash_seen_.push_back(0);
}

TopicExchange::NodeId TopicExchange::child(NodeId parent, std::string_view word) const {
    if (word == "*") return nodes_[parent].star;
    if (word == "#") return nodes_[parent].hash;
    auto it = edges_.find(EdgeView{parent, word});
    return it == edges_.end() ? no_node : it->second;
}

TopicExchange::NodeId TopicExchange::add_child(NodeId parent, std::string_view word) {
    NodeId id;
    if (!free_nodes_.empty()) {
        id = free_nodes_.back();
        free_nodes_.pop_back();
    } else {
        id = static_cast<NodeId>(nodes_.size());
        nodes_.emplace_back();
        seen_.push_back(0);
        hash_seen_.push_back(0);
    }
    Node& node = nodes_[id];
    node.parent = parent;
    node.word = std::string(word);
    if (word == "*")
        nodes_[parent].star = id;
    else if (word == "#")
        nodes_[parent].hash = id;
    else
        edges_.emplace(EdgeKey{parent, std::string(word)}, id);
    ++nodes_[parent].children;
    return id;
}

// Unlinks nodes left with no bindings and no children, walking up towards the root
// (remove_path_if_empty in RabbitMQ), so a churn of unique keys does not grow the trie.
void TopicExchange::prune(NodeId id) {
    while (id != root && nodes_[id].children == 0 && nodes_[id].bindings.empty()) {
        Node& node = nodes_[id];
        NodeId parent = node.parent;
        if (node.word == "*") {
            nodes_[parent].star = no_node;
        } else if (node.word == "#") {
            nodes_[parent].hash = no_node;
        } else {
            auto it = edges_.find(EdgeView{parent, node.word});
            edges_.erase(it);
        }
        --nodes_[parent].children;
        node = Node{};
        free_nodes_.push_back(id);
        id = parent;
    }
}

bool TopicExchange::bind(const Destination& destination, std::string_view routing_key,
                         const protocol::FieldTable& arguments) {
    auto [id, added] = bindings_.insert(destination, routing_key, arguments);
    if (!added) return false;
    split_topic_words(routing_key, bind_words_);
    NodeId node = root;
    for (std::string_view word : bind_words_) {
        NodeId next = child(node, word);
        node = next != no_node ? next : add_child(node, word);
    }
    bindings_[id].owner = node;
    nodes_[node].bindings.add(bindings_, id);
    return true;
}

void TopicExchange::remove(BindingId id) {
    NodeId node = bindings_[id].owner;
    nodes_[node].bindings.remove(bindings_, id);
    bindings_.erase(id);
    prune(node);
}

bool TopicExchange::unbind(const Destination& destination, std::string_view routing_key,
                           const protocol::FieldTable& arguments) {
    BindingId id = bindings_.find(destination, routing_key, arguments);
    if (id == no_binding) return false;
    remove(id);
    return true;
}

std::size_t TopicExchange::remove_destination(const Destination& destination) {
    bindings_.ids_for(destination, scratch_ids_);
    for (BindingId id : scratch_ids_) remove(id);
    return scratch_ids_.size();
}

// A breadth-first walk over word positions 0..n. current_ holds the nodes reached having
// consumed i words, each once (seen_), so a node is visited at most once per position and
// patterns like "#.#.#.#" cost O(words x nodes), not the exponential blow-up of walking every
// path. A `#` child, once reached at position i, stays in the frontier for every later position:
// that is "`#` matches zero or more words" without enumerating the suffixes. A node reached along
// several paths is listed once, where RabbitMQ's walk may list it several times; the caller
// de-duplicates either way.
void TopicExchange::route(const RoutingInput& input, std::vector<Destination>& out) const {
    if (bindings_.size() == 0) return;
    split_topic_words(input.routing_key, words_);
    const std::size_t n = words_.size();
    const std::uint64_t base = stamp_ + 1;  // stamp for position i is base + i; base also tags this route
    stamp_ += n + 2;

    current_.clear();
    hash_nodes_.clear();
    current_.push_back(root);
    seen_[root] = base;
    for (std::size_t i = 0;; ++i) {
        const std::uint64_t here = base + i;
        for (NodeId h : hash_nodes_) {
            if (seen_[h] != here) {
                seen_[h] = here;
                current_.push_back(h);
            }
        }
        next_.clear();
        auto step = [&](NodeId c) {
            if (c != no_node && seen_[c] != here + 1) {
                seen_[c] = here + 1;
                next_.push_back(c);
            }
        };
        // current_ may grow while we walk it (a newly reached `#` child joins this position).
        for (std::size_t k = 0; k < current_.size(); ++k) {
            const NodeId id = current_[k];
            const Node& node = nodes_[id];
            if (node.hash != no_node && hash_seen_[node.hash] != base) {
                hash_seen_[node.hash] = base;
                hash_nodes_.push_back(node.hash);
                if (seen_[node.hash] != here) {
                    seen_[node.hash] = here;
                    current_.push_back(node.hash);
                }
            }
            if (i == n) {
                node.bindings.append_to(out);
                continue;
            }
            // Literal edges never hold "*" or "#". A routing word spelled so finds the wildcard
            // child in RabbitMQ's edge table, but the `*` step and the `#` frontier cover that.
            if (auto it = edges_.find(EdgeView{id, words_[i]}); it != edges_.end()) step(it->second);
            step(node.star);
        }
        if (i == n || (next_.empty() && hash_nodes_.empty())) return;
        std::swap(current_, next_);
    }
}

}  // namespace warren::exchanges
