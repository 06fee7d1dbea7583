// GET handlers: the overview, nodes, vhosts, queues, exchanges, bindings, connections, channels,
// consumers, users and permissions (the default user only, for now), definitions and the health
// checks. Lists of queues, exchanges and connections are built in pieces (Api::list).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "broker/broker.hpp"
#include "broker/durability.hpp"
#include "broker/vhost.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/auth_json.hpp"
#include "mgmt/erlang_hash.hpp"

namespace warren::mgmt {

using broker::Stat;

namespace {

const auto process_start = std::chrono::steady_clock::now();

json exchange_types() {
    json a = json::array();
    for (const char* t : {"direct", "fanout", "headers", "topic"})
        a.push_back(json{{"name", t},
                         {"description", fmt::format("AMQP {} exchange, as per the AMQP specification", t)},
                         {"enabled", true}});
    return a;
}

}  // namespace

void Api::get_overview(Call& call) {
    const auto totals = view_.totals();
    const auto counts = view_.object_totals();
    const auto delayed = view_.delayed_totals();
    json listeners = json::array();
    for (std::uint16_t port : listener_ports_)
        listeners.push_back(json{
            {"node", node_name()},
            {"protocol", "amqp"},
            {"ip_address", broker_.config().listeners.front().bind},
            {"port", port},
            {"socket_opts",
             json{{"backlog", 128}, {"nodelay", true}, {"linger", json::array({true, 0})}, {"exit_on_close", false}}}});
    const auto& cfg = broker_.config();
    json o{{"management_version", cfg.server_version},
           {"rates_mode", "basic"},
           {"sample_retention_policies",
            json{{"global", {600, 3600, 28800, 86400}}, {"basic", {600, 3600}}, {"detailed", {600}}}},
           {"exchange_types", exchange_types()},
           {"product_version", cfg.server_version},
           {"product_name", cfg.server_product},
           {"rabbitmq_version", cfg.server_version},
           {"cluster_name", node_name()},
           {"erlang_version", "none (Warren, C++20)"},
           {"erlang_full_version", "none (Warren, C++20)"},
           {"release_series_support_status", "supported"},
           {"disable_stats", false},
           {"enable_queue_totals", false},
           {"is_op_policy_updating_enabled", true},
           {"statistics_db_event_queue", 0},
           {"node", node_name()},
           {"listeners", listeners},
           {"contexts", json::array({json{{"node", node_name()},
                                          {"description", "RabbitMQ Management"},
                                          {"path", "/"},
                                          {"port", std::to_string(management_port)},
                                          {"ip", management_bind},
                                          {"ssl_opts", json::array()},
                                          {"cowboy_opts", "[]"}}})},
           {"queue_totals",
            json{{"messages", totals[Stat::messages]},
                 {"messages_details", rate(totals.rate_of(Stat::messages))},
                 {"messages_ready", totals[Stat::messages_ready]},
                 {"messages_ready_details", rate(totals.rate_of(Stat::messages_ready))},
                 {"messages_unacknowledged", totals[Stat::messages_unacknowledged]},
                 {"messages_unacknowledged_details", rate(totals.rate_of(Stat::messages_unacknowledged))},
                 {"messages_delayed", delayed.queues},
                 {"exchange_messages_delayed", delayed.exchanges}}},
           {"object_totals", json{{"connections", counts.connections},
                                  {"channels", counts.channels},
                                  {"consumers", counts.consumers},
                                  {"exchanges", counts.exchanges},
                                  {"queues", counts.queues}}}};
    o["message_stats"] = json::parse(object_text([&](JsonOut& w) {
        write_message_stats(
            w, totals,
            {Stat::publish, Stat::confirm, Stat::return_unroutable, Stat::drop_unroutable, Stat::deliver,
             Stat::deliver_no_ack, Stat::get, Stat::get_no_ack, Stat::get_empty, Stat::ack, Stat::redeliver},
            true);
    }))["message_stats"];
    o["message_stats"]["disk_reads"] = 0;
    o["message_stats"]["disk_reads_details"] = rate(0);
    o["message_stats"]["disk_writes"] = 0;
    o["message_stats"]["disk_writes_details"] = rate(0);
    json churn = json::object();
    for (const char* k : {"channel_closed", "channel_created", "connection_closed", "connection_created",
                          "queue_created", "queue_declared", "queue_deleted"}) {
        churn[k] = 0;
        churn[std::string(k) + "_details"] = rate(0);
    }
    o["churn_rates"] = churn;
    call.reply_json(o);
}

void Api::get_whoami(Call& call) {
    call.reply_json(json{{"name", call.user.name}, {"tags", call.user.tags}});
}

void Api::get_nodes(Call& call) {
    if (!require(call, Need::Monitoring)) return;
    const auto& s = call.seg();
    if (s.size() == 3 && s[2] != node_name()) return call.not_found();
    std::optional<std::uint64_t> disk_free;
    if (broker::Durability* d = broker_.durability()) disk_free = d->free_bytes();
    const auto uptime =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - process_start).count();
    json node{{"name", node_name()},
              {"type", "disc"},
              {"running", true},
              {"os_pid", std::to_string(::getpid())},
              {"mem_used", broker_.memory_in_use()},
              {"mem_used_details", rate(0)},
              {"mem_limit", broker_.memory_limit()},
              {"mem_alarm", broker_.memory_alarm()},
              {"mem_calculation_strategy", "allocated"},
              {"disk_free_limit", broker_.config().disk_free_limit},
              {"disk_free", disk_free.value_or(0)},
              {"disk_free_details", rate(0)},
              {"disk_free_alarm", broker_.disk_alarm()},
              {"fd_used", broker_.connection_count()},
              {"fd_total", static_cast<std::uint64_t>(::sysconf(_SC_OPEN_MAX))},
              {"sockets_used", broker_.connection_count()},
              {"sockets_total", static_cast<std::uint64_t>(::sysconf(_SC_OPEN_MAX))},
              {"proc_used", 1},
              {"proc_total", 1},
              {"processors", static_cast<std::uint64_t>(::sysconf(_SC_NPROCESSORS_ONLN))},
              {"run_queue", 0},
              {"uptime", uptime},
              {"rates_mode", "basic"},
              {"net_ticktime", 60},
              {"exchange_types", exchange_types()},
              {"auth_mechanisms",
               json::array(
                   {json{{"name", "PLAIN"}, {"description", "SASL PLAIN authentication mechanism"}, {"enabled", true}},
                    json{{"name", "AMQPLAIN"}, {"description", "QPid AMQPLAIN mechanism"}, {"enabled", true}}})},
              {"applications", json::array()},
              {"contexts", json::array()},
              {"enabled_plugins", json::array({"rabbitmq_management"})},
              {"partitions", json::array()},
              {"cluster_links", json::array()},
              {"log_files", json::array()},
              {"config_files", json::array()},
              {"db_dir", broker_.durability() ? broker_.durability()->data_dir() : std::string()}};
    if (s.size() == 3) return call.reply_json(node);
    call.reply_json(json::array({node}));
}

void Api::get_vhosts(Call& call) {
    const auto& s = call.seg();
    auto write = [this](JsonOut& w, const std::string& v) {
        write_vhost(w, v, broker_.find_vhost(v)->settings(), view_.vhost_stats(v));
    };
    if (s.size() == 3) {
        if (!view_.has_vhost(s[2])) return call.not_found();
        return call.reply(200, object_text([&](JsonOut& w) { write(w, s[2]); }));
    }
    list<std::string>(call, vhosts_for(call), [this, write](const std::string& v, ListSink& out) {
        if (view_.has_vhost(v)) out.add(v, [&](JsonOut& w) { write(w, v); });
    });
}

namespace {
// An array of objects, each written by `write`.
template <class T, class F>
std::string array_text(const std::vector<T>& items, F&& write) {
    std::string out = "[";
    for (const T& item : items) {
        if (out.size() > 1) out += ',';
        JsonOut w(out);
        w.begin();
        write(w, item);
        w.end();
    }
    out += ']';
    return out;
}
}  // namespace

void Api::get_queues(Call& call) {
    const auto& s = call.seg();
    std::optional<std::string> vhost;
    if (s.size() >= 3 && !view_.has_vhost(s[2])) return call.not_found();
    if (s.size() >= 3) vhost = s[2];
    if (s.size() == 4) {
        auto q = view_.queue(s[2], s[3]);
        if (!q) return call.not_found();
        // The single-queue answer also lists its consumers.
        std::vector<broker::ConsumerSnapshot> consumers;
        for (std::uint64_t id : view_.connection_ids())
            for (auto& c : view_.consumers(id))
                if (c.vhost == q->vhost && c.queue == q->name) consumers.push_back(std::move(c));
        return call.reply(200, object_text([&](JsonOut& w) {
                              write_queue(w, *q);
                              w.raw("consumer_details", array_text(consumers, write_consumer));
                              w.raw("deliveries", "[]");
                              w.raw("incoming", "[]");
                          }));
    }
    if (s.size() == 5 && s[4] == "bindings") {
        if (!view_.queue(s[2], s[3])) return call.not_found();
        return call.reply(200, array_text(view_.bindings_to(s[2], s[3], false), write_binding));
    }
    if (s.size() > 3) return call.not_found();
    std::vector<std::pair<std::string, std::string>> keys;
    for (const std::string& v : vhost ? std::vector<std::string>{*vhost} : vhosts_for(call))
        for (std::string& q : view_.queue_names(v)) keys.emplace_back(v, std::move(q));
    list<std::pair<std::string, std::string>>(call, std::move(keys), [this](const auto& k, ListSink& out) {
        if (auto q = view_.queue(k.first, k.second)) out.add(q->name, [&](JsonOut& w) { write_queue(w, *q); });
    });
}

void Api::get_exchanges(Call& call) {
    const auto& s = call.seg();
    if (s.size() >= 3 && !view_.has_vhost(s[2])) return call.not_found();
    if (s.size() >= 4) {
        auto x = view_.exchange(s[2], s[3]);
        if (!x) return call.not_found();
        if (s.size() == 4)
            return call.reply(200, object_text([&](JsonOut& w) {
                                  write_exchange(w, *x);
                                  w.raw("incoming", "[]");
                                  w.raw("outgoing", "[]");
                              }));
        if (s.size() == 6 && s[4] == "bindings" && (s[5] == "source" || s[5] == "destination")) {
            auto found = s[5] == "source" ? view_.bindings_from(s[2], s[3]) : view_.bindings_to(s[2], s[3], true);
            return call.reply(200, array_text(found, write_binding));
        }
        return call.not_found();
    }
    std::vector<std::pair<std::string, std::string>> keys;
    for (const std::string& v : s.size() == 3 ? std::vector<std::string>{s[2]} : vhosts_for(call))
        for (std::string& x : view_.exchange_names(v)) keys.emplace_back(v, std::move(x));
    list<std::pair<std::string, std::string>>(call, std::move(keys), [this](const auto& k, ListSink& out) {
        if (auto x = view_.exchange(k.first, k.second)) out.add(x->name, [&](JsonOut& w) { write_exchange(w, *x); });
    });
}

void Api::get_bindings(Call& call) {
    const auto& s = call.seg();
    if (s.size() >= 3 && !view_.has_vhost(s[2])) return call.not_found();
    if (s.size() >= 7 && s[3] == "e" && (s[5] == "q" || s[5] == "e")) {
        // /api/bindings/{vhost}/e/{source}/{q|e}/{destination}[/{props}]
        if (!view_.exchange(s[2], s[4])) return call.not_found();
        const bool to_exchange = s[5] == "e";
        if (to_exchange ? !view_.exchange(s[2], s[6]) : !view_.queue(s[2], s[6])) return call.not_found();
        std::vector<broker::BindingSnapshot> found;
        for (auto& b : view_.bindings_from(s[2], s[4])) {
            if (b.destination != s[6] || b.to_exchange != to_exchange) continue;
            if (s.size() == 8 && properties_key(b.routing_key, b.arguments) != s[7]) continue;
            found.push_back(std::move(b));
        }
        if (s.size() == 8) {
            if (found.empty()) return call.not_found();
            return call.reply(200, object_text([&](JsonOut& w) { write_binding(w, found.front()); }));
        }
        return call.reply(200, array_text(found, write_binding));
    }
    if (s.size() > 3) return call.not_found();
    // One exchange's bindings per key (the default exchange's implicit ones among them).
    std::vector<std::pair<std::string, std::string>> keys;
    for (const std::string& v : s.size() == 3 ? std::vector<std::string>{s[2]} : vhosts_for(call))
        for (std::string& x : view_.exchange_names(v)) keys.emplace_back(v, std::move(x));
    list<std::pair<std::string, std::string>>(call, std::move(keys), [this](const auto& k, ListSink& out) {
        for (const auto& b : view_.bindings_from(k.first, k.second))
            out.add(b.source, [&](JsonOut& w) { write_binding(w, b); });
    });
}

void Api::list_per_connection(Call& call, const std::optional<std::string>& vhost,
                              std::function<void(std::uint64_t, ListSink&)> make) {
    // A management user sees only its own connections; monitoring and administrator see all.
    const bool all = allows(call.user.tags, Need::Monitoring);
    list<std::uint64_t>(call, view_.connection_ids(),
                        [this, vhost, all, user = call.user.name, make](const std::uint64_t& id, ListSink& out) {
                            auto c = view_.connection(id);
                            if (!c || (vhost && c->vhost != *vhost) || (!all && c->user != user)) return;
                            make(id, out);
                        });
}

void Api::get_connections(Call& call) {
    const auto& s = call.seg();
    std::optional<std::string> vhost;
    if (s[1] == "vhosts") {
        if (!view_.has_vhost(s[2])) return call.not_found();
        vhost = s[2];
    } else if (s.size() >= 3) {
        for (std::uint64_t id : view_.connection_ids()) {
            auto c = view_.connection(id);
            if (!c || c->name != s[2]) continue;
            if (s.size() == 3) return call.reply(200, object_text([&](JsonOut& w) { write_connection(w, *c, true); }));
            if (s.size() == 4 && s[3] == "channels")
                return call.reply(200, array_text(view_.channels(id), write_channel));
        }
        return call.not_found();
    }
    list_per_connection(call, vhost, [this](std::uint64_t id, ListSink& out) {
        if (auto c = view_.connection(id)) out.add(c->name, [&](JsonOut& w) { write_connection(w, *c); });
    });
}

void Api::get_channels(Call& call) {
    const auto& s = call.seg();
    std::optional<std::string> vhost;
    if (s[1] == "vhosts") {
        if (!view_.has_vhost(s[2])) return call.not_found();
        vhost = s[2];
    } else if (s.size() == 3) {
        for (std::uint64_t id : view_.connection_ids())
            for (const auto& ch : view_.channels(id))
                if (ch.name == s[2]) {
                    std::vector<broker::ConsumerSnapshot> consumers;
                    for (auto& c : view_.consumers(id))
                        if (c.channel_number == ch.number) consumers.push_back(std::move(c));
                    return call.reply(200, object_text([&](JsonOut& w) {
                                          write_channel(w, ch);
                                          w.raw("consumer_details", array_text(consumers, write_consumer));
                                          w.raw("deliveries", "[]");
                                          w.raw("publishes", "[]");
                                      }));
                }
        return call.not_found();
    }
    list_per_connection(call, vhost, [this](std::uint64_t id, ListSink& out) {
        for (const auto& ch : view_.channels(id)) out.add(ch.name, [&](JsonOut& w) { write_channel(w, ch); });
    });
}

void Api::get_consumers(Call& call) {
    const auto& s = call.seg();
    std::optional<std::string> vhost;
    if (s.size() == 3) {
        if (!view_.has_vhost(s[2])) return call.not_found();
        vhost = s[2];
    }
    list_per_connection(call, vhost, [this, vhost](std::uint64_t id, ListSink& out) {
        for (const auto& c : view_.consumers(id))
            if (!vhost || c.vhost == *vhost) out.add(c.tag, [&](JsonOut& w) { write_consumer(w, c); });
    });
}

void Api::get_empty_list(Call& call) {
    const auto& s = call.seg();
    const std::string& top = s[1];
    if (top == "policies" || top == "operator-policies") {
        if (!require(call, Need::Policymaker)) return;
    } else if (!require(call, Need::Administrator)) {
        return;
    }
    // /api/policies/{vhost}: 404 for a vhost that does not exist; one named item: 404.
    if (s.size() >= 3 && top != "vhosts" && top != "users" && !view_.has_vhost(s[2]) && top != "user-limits")
        return call.not_found();
    if (s.size() >= 4 && top != "vhosts") return call.not_found();
    call.reply_json(json::array());
}

namespace {
void write_definition_binding(JsonOut& w, const broker::BindingSnapshot& b) {
    w.field("source", b.source);
    w.field("vhost", b.vhost);
    w.field("destination", b.destination);
    w.field("destination_type", b.to_exchange ? "exchange" : "queue");
    w.field("routing_key", b.routing_key);
    w.table("arguments", b.arguments);
}

void append_object(std::string& list, const auto& write) {
    if (list.size() > 1) list += ',';
    JsonOut w(list);
    w.begin();
    write(w);
    w.end();
}
}  // namespace

// The export is built in pieces too: 10,000 queues must not stall the loop here either.
void Api::get_definitions(Call& call) {
    if (!require(call, Need::Administrator)) return;
    const auto& s = call.seg();
    // RabbitMQ 3.10 answers an unknown vhost here with 400, not 404 (recorded).
    if (s.size() == 3 && !view_.has_vhost(s[2])) return call.bad_request("vhost_not_found");
    const std::vector<std::string> vhosts = s.size() == 3 ? std::vector<std::string>{s[2]} : view_.vhost_names();
    const auto& cfg = broker_.config();
    json head{{"rabbit_version", cfg.server_version},
              {"rabbitmq_version", cfg.server_version},
              {"product_name", cfg.server_product},
              {"product_version", cfg.server_version},
              {"policies", json::array()},
              {"parameters", json::array()}};
    // Policies, and operator policies as RabbitMQ exports them: "operator_policy" parameters.
    json policies = json::array(), operator_policies = json::array();
    for (const std::string& v : vhosts) {
        const broker::VHost* vh = broker_.find_vhost(v);
        for (const broker::PolicyRef& p : vh->policies(broker::PolicyKind::Policy)) policies.push_back(policy_json(v, *p));
        for (const broker::PolicyRef& p : vh->policies(broker::PolicyKind::Operator)) {
            json value = policy_json(v, *p);
            value.erase("vhost");
            value.erase("name");
            operator_policies.push_back(
                json{{"vhost", v}, {"component", "operator_policy"}, {"name", p->name}, {"value", value}});
        }
    }
    head["policies"] = policies;
    head["parameters"] = operator_policies;
    if (s.size() != 3) {
        const auto& auth = broker_.auth();
        json vhost_list = json::array(), users = json::array(), perms = json::array(), topics = json::array(),
             parameters = json::array();
        for (const std::string& v : vhosts) {
            const broker::VHost* vh = broker_.find_vhost(v);
            json limits = vhost_limits_json(vh->limits());
            vhost_list.push_back(
                json{{"name", v},
                     {"limits", json::array()},
                     {"metadata", json{{"description", vh->settings().description}, {"tags", vh->settings().tags}}}});
            if (!limits.empty())
                parameters.push_back(
                    json{{"vhost", v}, {"component", "vhost-limits"}, {"name", "limits"}, {"value", limits}});
        }
        for (const auto& [name, u] : auth.users()) users.push_back(user_json(u));
        for (const auto& [key, p] : auth.permissions()) perms.push_back(permission_json(key.first, key.second, *p));
        for (const auto& [key, ts] : auth.topic_permissions())
            for (const auto& [x, t] : *ts) topics.push_back(topic_permission_json(key.first, key.second, t));
        head["users"] = users;
        head["vhosts"] = vhost_list;
        head["permissions"] = perms;
        head["topic_permissions"] = topics;
        for (json& p : operator_policies) parameters.push_back(std::move(p));
        head["parameters"] = parameters;
        head["global_parameters"] = json::array({json{{"name", "internal_cluster_id"}, {"value", node_name()}}});
    }
    struct Key {
        bool queue;
        std::string vhost, name;
    };
    struct Job : std::enable_shared_from_this<Job> {
        std::shared_ptr<Call> call;
        std::vector<Key> keys;
        std::size_t next = 0;
        std::string head, queues = "[", exchanges = "[", bindings = "[";
        std::uint64_t input_seen = 0;

        void run(Api& api) {
            const auto started = std::chrono::steady_clock::now();
            const std::size_t end = std::min(keys.size(), next + list_piece);
            for (; next < end; ++next) {
                const Key& k = keys[next];
                if (k.queue) {
                    auto q = api.view_.queue(k.vhost, k.name);
                    if (!q || q->exclusive) continue;  // exclusive queues are not definitions
                    append_object(queues, [&](JsonOut& w) {
                        w.field("name", q->name);
                        w.field("vhost", q->vhost);
                        w.field("durable", q->durable);
                        w.field("auto_delete", q->auto_delete);
                        w.table("arguments", q->arguments);
                    });
                    continue;
                }
                const bool builtin = k.name.empty() || k.name.starts_with("amq.");
                if (!builtin)
                    if (auto x = api.view_.exchange(k.vhost, k.name))
                        append_object(exchanges, [&](JsonOut& w) {
                            w.field("name", x->name);
                            w.field("vhost", x->vhost);
                            w.field("type", x->type);
                            w.field("durable", x->durable);
                            w.field("auto_delete", x->auto_delete);
                            w.field("internal", x->internal);
                            w.table("arguments", x->arguments);
                        });
                if (k.name.empty()) continue;  // the default exchange's bindings are implicit
                for (const auto& b : api.view_.bindings_from(k.vhost, k.name))
                    append_object(bindings, [&](JsonOut& w) { write_definition_binding(w, b); });
            }
            if (next < keys.size())
                return api.post_piece(started, input_seen, [self = this->shared_from_this(), &api] { self->run(api); });
            head.pop_back();  // the closing brace: the three lists go in before it
            head += ",\"queues\":" + queues + "],\"exchanges\":" + exchanges + "],\"bindings\":" + bindings + "]}";
            call->reply(200, std::move(head));
        }
    };
    auto job = std::make_shared<Job>();
    job->call = call.shared_from_this();
    for (const std::string& v : vhosts) {
        for (std::string& x : view_.exchange_names(v)) job->keys.push_back(Key{false, v, std::move(x)});
        for (std::string& q : view_.queue_names(v)) job->keys.push_back(Key{true, v, std::move(q)});
    }
    job->head = head.dump();
    job->input_seen = amqp_input();
    job->run(*this);
}

void Api::get_health(Call& call) {
    const auto& s = call.seg();
    if (s.size() < 4 || s[2] != "checks") return call.not_found();
    const std::string& check = s[3];
    if ((check == "alarms" || check == "local-alarms") && s.size() == 4) {
        if (!broker_.memory_alarm() && !broker_.disk_alarm()) return call.reply_json(json{{"status", "ok"}});
        json alarms = json::array();
        if (broker_.memory_alarm()) alarms.push_back(json{{"node", node_name()}, {"resource", "memory"}});
        if (broker_.disk_alarm()) alarms.push_back(json{{"node", node_name()}, {"resource", "disk"}});
        return call.reply_json(
            json{{"status", "failed"}, {"reason", "resource alarm(s) in effect in the cluster"}, {"alarms", alarms}},
            503);
    }
    if (check == "port-listener" && s.size() == 5) {
        std::uint64_t port = 0;
        for (char c : s[4]) {
            if (c < '0' || c > '9' || port > 65535) return call.bad_request("invalid port");
            port = port * 10 + static_cast<std::uint64_t>(c - '0');
        }
        for (std::uint16_t p : listener_ports_)
            if (p == port) return call.reply_json(json{{"status", "ok"}, {"port", p}});
        json ports = json::array();
        for (std::uint16_t p : listener_ports_) ports.push_back(p);
        return call.reply_json(
            json{{"status", "failed"}, {"reason", "No active listener"}, {"missing", port}, {"ports", ports}}, 503);
    }
    if (check == "virtual-hosts" && s.size() == 4) return call.reply_json(json{{"status", "ok"}});
    call.not_found();
}

}  // namespace warren::mgmt
