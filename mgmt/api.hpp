// The management HTTP API: RabbitMQ's paths, answers and status codes, on the broker's event
// loop. A request is answered now or, for long lists, after building the list in bounded pieces
// across loop turns (`post` runs the next piece later), so 10,000 queues never stall the loop.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/auth.hpp"
#include "broker/broker_view.hpp"
#include "broker/dead_letter_health.hpp"
#include "mgmt/auth.hpp"
#include "mgmt/http_types.hpp"
#include "mgmt/json_shapes.hpp"
#include "mgmt/listing.hpp"
#include "mgmt/url.hpp"

namespace warren::broker {
class Broker;
class Queue;
class VHost;
}  // namespace warren::broker

namespace warren::mgmt {

// Where a list's objects go: straight into the answer, or (to be filtered, sorted or paged) kept
// as items with their name and sort value.
class ListSink {
public:
    ListSink(const ListQuery& query, std::string* body, std::vector<ListItem>* items)
        : query_(query), body_(body), items_(items) {}
    template <class F>
    void add(std::string_view name, F&& write) {
        if (body_) {
            if (body_->size() > 1) *body_ += ',';
            JsonOut w(*body_, &query_.columns);
            w.begin();
            write(w);
            w.end();
            return;
        }
        ListItem item;
        item.name = name;
        JsonOut w(item.text, &query_.columns, query_.sort ? &*query_.sort : nullptr, &item.sort_value);
        w.begin();
        write(w);
        w.end();
        items_->push_back(std::move(item));
    }

private:
    const ListQuery& query_;
    std::string* body_;
    std::vector<ListItem>* items_;
};

class Api {
public:
    struct Call;  // one request being answered
    // Runs a function on the loop thread after `delay` (zero: on a later turn, after what is
    // already queued).
    using Post = std::function<void(std::chrono::nanoseconds delay, std::function<void()>)>;
    using Respond = std::function<void(HttpResponse)>;

    // `post` runs a function on the loop thread on a later turn; `listener_ports` are the AMQP
    // ports the broker listens on (the port-listener health check, the overview's listeners).
    Api(broker::Broker& broker, Post post, std::vector<std::uint16_t> listener_ports);

    // Where the API itself listens (the overview's contexts).
    void set_http_address(std::string bind, std::uint16_t port) {
        management_bind = std::move(bind);
        management_port = port;
    }

    // Calls `respond` exactly once, now or on a later loop turn.
    void handle(const HttpRequest& request, Respond respond);
    // The Prometheus listener's requests: GET /metrics and /metrics/per-object, without
    // authentication, as rabbitmq_prometheus serves them (prometheus.cpp).
    void handle_metrics(const HttpRequest& request, Respond respond);

    // Objects put into a list per loop turn.
    static constexpr std::size_t list_piece = 200;
    // While AMQP traffic flows, list building takes at most this share of the loop's time: after
    // a piece that took t, the next waits t * (1 / share - 1). An idle broker builds at full speed.
    static constexpr double busy_share = 0.02;

private:
    using Handler = void (Api::*)(Call&);

    // ---- routing (api.cpp)
    void route(Call& call);
    bool require(Call& call, Need need);
    // The vhosts whose objects the caller sees (all of them for monitoring and administrator).
    std::vector<std::string> vhosts_for(const Call& call) const;
    // A path naming a vhost the caller may not see: refused as RabbitMQ refuses it (true: answered).
    bool refuse_vhost(Call& call);

    // ---- reads (api_read.cpp)
    void get_overview(Call& call);
    void get_whoami(Call& call);
    void get_nodes(Call& call);
    void get_vhosts(Call& call);
    void get_queues(Call& call);
    void get_exchanges(Call& call);
    void get_bindings(Call& call);
    void get_connections(Call& call);
    void get_channels(Call& call);
    void get_consumers(Call& call);
    void get_definitions(Call& call);
    void get_health(Call& call);

    // ---- users, vhosts, permissions, limits (api_auth.cpp)
    void get_users(Call& call);
    void get_permissions(Call& call);
    void get_topic_permissions(Call& call);
    void get_limits(Call& call);
    void put_user(Call& call, const std::string& name);
    void delete_user(Call& call, const std::string& name);
    void bulk_delete_users(Call& call);
    void put_permission(Call& call, const std::string& vhost, const std::string& user);
    void delete_permission(Call& call, const std::string& vhost, const std::string& user);
    void put_topic_permission(Call& call, const std::string& vhost, const std::string& user);
    void delete_topic_permission(Call& call, const std::string& vhost, const std::string& user);
    void put_vhost(Call& call, const std::string& name);
    void delete_vhost(Call& call, const std::string& name);
    void change_limit(Call& call);
    void get_empty_list(Call& call);

    // ---- changes (api_write.cpp)
    // The user's permission on a queue or exchange, as the AMQP method would check it; refused: 401.
    bool permits(Call& call, const broker::VHost& vh, broker::Permission p, bool is_exchange, std::string_view name);
    void put_queue(Call& call, broker::VHost& vhost, const std::string& name);
    void delete_queue(Call& call, broker::VHost& vhost, const std::string& name);
    void purge_queue(Call& call, broker::VHost& vhost, const std::string& name);
    void get_messages(Call& call, broker::VHost& vhost, const std::string& name);
    void put_exchange(Call& call, broker::VHost& vhost, const std::string& name);
    void delete_exchange(Call& call, broker::VHost& vhost, const std::string& name);
    void publish(Call& call, broker::VHost& vhost, const std::string& name);
    void post_binding(Call& call);
    void delete_binding(Call& call);
    void delete_connection(Call& call, std::uint64_t id);
    void post_definitions(Call& call);

    // ---- policies, and the whole broker's definitions (api_policies.cpp)
    void get_policies(Call& call);
    void put_policy(Call& call, const std::string& vhost, const std::string& name);
    void delete_policy(Call& call, const std::string& vhost, const std::string& name);
    void post_all_definitions(Call& call);

    // ---- the dead-letter workbench (api_workbench.cpp): Warren's own, RabbitMQ has none
    // GET .../messages, .../messages/unacked, .../dead-letter-health of /api/queues/{vhost}/{name}.
    void get_workbench(Call& call);
    void browse_messages(Call& call, broker::Queue& queue);
    void browse_unacked(Call& call, broker::Queue& queue);
    void get_dead_letter_health(Call& call, broker::Queue& queue);
    // POST .../messages/redrive and .../messages/delete.
    void workbench_action(Call& call, broker::VHost& vhost, const std::string& name, bool redrive);
    // ---- super streams: /api/stream/super-streams/{vhost}/{name} (api_super_streams.cpp)
    void super_stream(Call& call);

    // ---- lists built in pieces (api.cpp)
    // Each key gives the objects it stands for (none, if it is gone by then), piece by piece.
    template <class Key>
    void list(Call& call, std::vector<Key> keys, std::function<void(const Key&, ListSink&)> make);
    // Every connection's objects (channels, consumers) for the user, optionally one vhost.
    void list_per_connection(Call& call, const std::optional<std::string>& vhost,
                             std::function<void(std::uint64_t, ListSink&)> make);

    // Bytes read from AMQP clients so far (a live counter): a change means traffic flows.
    std::uint64_t amqp_input() const;
    // Posts the next piece of a long answer: on the next turn, or, while AMQP traffic flows (the
    // input counter moved since `input_seen`), after a pause that keeps the API to busy_share
    // of the loop's time. `started`: when the piece just done began.
    void post_piece(std::chrono::steady_clock::time_point started, std::uint64_t& input_seen,
                    std::function<void()> next);

    // Answers a change: at once, or once the durable change is stored when `durable`.
    void answer_change(Call& call, int status, bool durable);

    broker::Broker& broker_;
    broker::BrokerView view_;
    // Dead-letter health between reads: one book for the default error header (the API's and
    // Prometheus's reads), one for the headers an API caller chooses, so neither restarts the
    // other's census.
    broker::workbench::HealthBook health_default_, health_chosen_;
    Post post_;
    std::vector<std::uint16_t> listener_ports_;
    std::string management_bind = "127.0.0.1";
    std::uint16_t management_port = 15672;
};

}  // namespace warren::mgmt
