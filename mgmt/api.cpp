// The Api's entry point: authentication, routing of RabbitMQ's paths to handlers, and lists
// built in bounded pieces across loop turns.
#include "mgmt/api.hpp"

#include "broker/broker.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/vhost.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/prometheus.hpp"
#include "mgmt/prometheus_warren.hpp"
#include "mgmt/console/static_files.hpp"

namespace warren::mgmt {

std::string_view status_text(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 204:
            return "No Content";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Payload Too Large";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

Api::Api(broker::Broker& broker, Post post, std::vector<std::uint16_t> listener_ports)
    : broker_(broker), view_(broker), post_(std::move(post)), listener_ports_(std::move(listener_ports)) {}

void Api::handle(const HttpRequest& request, Respond respond) {
    auto call = std::make_shared<Call>();
    call->request = request;
    call->respond = std::move(respond);
    auto target = parse_target(request.target);
    if (!target) {
        call->bad_request("bad URL encoding");
        return;
    }
    call->target = std::move(*target);
    if (call->size() == 0 || call->seg()[0] != "api") {
        // Everything outside /api is the web console's files (mgmt/console/).
        call->answered = true;
        call->respond(console::serve_static(request));
        return;
    }
    auto user = authenticate(broker_, request);
    if (!user || !allows(user->tags, Need::Management)) {
        // RabbitMQ answers a missing or refused login, and a user without a management tag, with
        // 401 and a Basic challenge: no body without credentials, and its own two texts (with
        // their two spellings) for a refused login and a missing tag.
        HttpResponse r;
        r.status = 401;
        r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"RabbitMQ Management\"");
        if (user)
            r.body = json{{"error", "not_authorised"}, {"reason", "Not management user"}}.dump();
        else if (request.header("authorization"))
            r.body = json{{"error", "not_authorized"}, {"reason", "Login failed"}}.dump();
        call->answered = true;
        call->respond(std::move(r));
        return;
    }
    call->user = std::move(*user);
    try {
        route(*call);
    } catch (const std::exception& e) {
        log::error("management API: internal error on {} {}: {}", request.method, request.target, e.what());
        call->error(500, "internal_error", e.what());
    }
}

void Api::handle_metrics(const HttpRequest& request, Respond respond) {
    HttpResponse r;
    auto target = parse_target(request.target);
    std::string path = "/";
    if (target)
        for (const std::string& s : target->segments) path += (path.size() > 1 ? "/" : "") + s;
    std::optional<std::string> text;
    if (request.method == "GET" || request.method == "HEAD") text = prometheus_text(broker_, view_, path);
    if (text) warren_metrics(*text, broker_, health_default_, path == "/metrics/per-object");
    if (!text) {
        r.status = 404;
        r.content_type = "text/plain";
        r.body = "Not Found\n";
    } else {
        r.content_type = "text/plain; version=0.0.4";
        r.body = std::move(*text);
    }
    respond(std::move(r));
}

bool Api::require(Call& call, Need need) {
    if (allows(call.user.tags, need)) return true;
    // RabbitMQ 3.10 answers a missing tag with 401 too (recorded: GET /api/users as monitoring).
    const char* what = need == Need::Administrator ? "Not administrator user"
                       : need == Need::Monitoring  ? "Not monitor user"
                                                   : "Not policymaker user";
    call.error(401, "not_authorised", what);
    return false;
}

std::vector<std::string> Api::vhosts_for(const Call& call) const {
    std::vector<std::string> names = view_.vhost_names();
    if (allows(call.user.tags, Need::Monitoring)) return names;
    std::erase_if(names, [&](const std::string& v) { return !sees_vhost(broker_, call.user, v); });
    return names;
}

bool Api::refuse_vhost(Call& call) {
    const auto& s = call.seg();
    if (s.size() < 3) return false;
    const std::string& top = s[1];
    const bool names_vhost = top == "queues" || top == "exchanges" || top == "bindings" || top == "consumers" ||
                             top == "vhosts" || top == "policies" || top == "operator-policies";
    // A vhost that does not exist is each handler's 404 (or 400). One that exists is refused,
    // as RabbitMQ 3.10 refuses it (recorded), to any user without permissions in it, whatever
    // the tags: the lists show monitoring users every vhost, a path naming one needs access.
    if (!names_vhost || !view_.has_vhost(s[2]) || broker_.auth().find_permissions(call.user.name, s[2])) return false;
    if (top == "vhosts" && s.size() == 3) {
        // The vhost itself: what an administrator may read (and change) anyway.
        if (allows(call.user.tags, Need::Administrator)) return false;
        call.error(401, "not_authorised", "Not administrator user");
        return true;
    }
    if (top == "vhosts" && s.size() == 4 && (s[3] == "permissions" || s[3] == "topic-permissions")) return false;
    call.error(401, "not_authorised", "User not authorised to access virtual host");
    return true;
}

void Api::route(Call& call) {
    const auto& s = call.seg();
    const std::string& top = s.size() > 1 ? s[1] : std::string();
    if (s.size() == 1) return call.not_found();
    if (refuse_vhost(call)) return;
    // Reads.
    if (call.is("GET") || call.is("HEAD")) {
        if (top == "overview" && s.size() == 2) return get_overview(call);
        if (top == "whoami" && s.size() == 2) return get_whoami(call);
        if (top == "nodes" && s.size() <= 3) return get_nodes(call);
        if (top == "vhosts") {
            if (s.size() == 4 && s[3] == "connections") return get_connections(call);
            if (s.size() == 4 && s[3] == "channels") return get_channels(call);
            if (s.size() == 4 && s[3] == "permissions") return get_permissions(call);
            if (s.size() == 4 && s[3] == "topic-permissions") return get_topic_permissions(call);
            if (s.size() <= 3) return get_vhosts(call);
        }
        if (top == "queues" && s.size() >= 5 && (s[4] == "messages" || s[4] == "dead-letter-health"))
            return get_workbench(call);
        if (top == "queues") return get_queues(call);
        if (top == "exchanges") return get_exchanges(call);
        if (top == "bindings") return get_bindings(call);
        if (top == "connections") return get_connections(call);
        if (top == "channels" && s.size() <= 3) return get_channels(call);
        if (top == "consumers" && s.size() <= 3) return get_consumers(call);
        if (top == "users") return get_users(call);
        if (top == "permissions" && (s.size() == 2 || s.size() == 4)) return get_permissions(call);
        if (top == "topic-permissions" && (s.size() == 2 || s.size() == 4)) return get_topic_permissions(call);
        if (top == "vhost-limits" || top == "user-limits") return get_limits(call);
        if ((top == "policies" || top == "operator-policies") && s.size() <= 4) return get_policies(call);
        if ((top == "parameters" || top == "global-parameters") && s.size() <= 4) return get_empty_list(call);
        if (top == "definitions" && s.size() <= 3) return get_definitions(call);
        if (top == "health") return get_health(call);
        if (top == "stream" && s.size() == 5 && s[2] == "super-streams") return super_stream(call);
        if (top == "extensions" && s.size() == 2) return call.reply_json(json::array());
        if (top == "cluster-name" && s.size() == 2) return call.reply_json(json{{"name", node_name()}});
        return call.not_found();
    }
    // Changes.
    auto vhost_or_404 = [&](const std::string& name) -> broker::VHost* {
        broker::VHost* vh = broker_.find_vhost(name);
        if (!vh) call.error(404, "not_found", "vhost_not_found");
        return vh;
    };
    if ((top == "queues" || top == "exchanges") && s.size() >= 4) {
        broker::VHost* vh = vhost_or_404(s[2]);
        if (!vh) return;
        const std::string& name = s[3];
        if (top == "queues") {
            if (s.size() == 4 && call.is("PUT")) return put_queue(call, *vh, name);
            if (s.size() == 4 && call.is("DELETE")) return delete_queue(call, *vh, name);
            if (s.size() == 5 && s[4] == "contents" && call.is("DELETE")) return purge_queue(call, *vh, name);
            if (s.size() == 5 && s[4] == "get" && call.is("POST")) return get_messages(call, *vh, name);
            if (s.size() == 6 && s[4] == "messages" && (s[5] == "redrive" || s[5] == "delete") && call.is("POST"))
                return workbench_action(call, *vh, name, s[5] == "redrive");
        } else {
            if (s.size() == 4 && call.is("PUT")) return put_exchange(call, *vh, name);
            if (s.size() == 4 && call.is("DELETE")) return delete_exchange(call, *vh, name);
            if (s.size() == 5 && s[4] == "publish" && call.is("POST")) return publish(call, *vh, name);
        }
        return call.method_not_allowed();
    }
    if (top == "stream" && s.size() == 5 && s[2] == "super-streams") return super_stream(call);
    if (top == "bindings" && s.size() == 7 && call.is("POST")) return post_binding(call);
    if (top == "bindings" && s.size() == 8 && call.is("DELETE")) return delete_binding(call);
    if (top == "connections" && s.size() == 3 && call.is("DELETE")) {
        for (std::uint64_t id : view_.connection_ids())
            if (auto c = view_.connection(id); c && c->name == s[2]) return delete_connection(call, id);
        return call.not_found();
    }
    if (top == "definitions" && s.size() == 2 && call.is("POST")) return post_all_definitions(call);
    if (top == "definitions" && s.size() == 3 && call.is("POST")) return post_definitions(call);
    // Users, vhosts, permissions and limits: administrators only.
    const bool admin_path = top == "users" || top == "permissions" || top == "topic-permissions" || top == "vhosts" ||
                            top == "vhost-limits" || top == "user-limits";
    if (admin_path && !require(call, Need::Administrator)) return;
    if (top == "users" && s.size() == 3 && s[2] == "bulk-delete" && call.is("POST")) return bulk_delete_users(call);
    if (top == "users" && s.size() == 3 && call.is("PUT")) return put_user(call, s[2]);
    if (top == "users" && s.size() == 3 && call.is("DELETE")) return delete_user(call, s[2]);
    if (top == "permissions" && s.size() == 4 && call.is("PUT")) return put_permission(call, s[2], s[3]);
    if (top == "permissions" && s.size() == 4 && call.is("DELETE")) return delete_permission(call, s[2], s[3]);
    if (top == "topic-permissions" && s.size() == 4 && call.is("PUT")) return put_topic_permission(call, s[2], s[3]);
    if (top == "topic-permissions" && s.size() == 4 && call.is("DELETE"))
        return delete_topic_permission(call, s[2], s[3]);
    if (top == "vhosts" && s.size() == 3 && call.is("PUT")) return put_vhost(call, s[2]);
    if (top == "vhosts" && s.size() == 3 && call.is("DELETE")) return delete_vhost(call, s[2]);
    if ((top == "vhost-limits" || top == "user-limits") && s.size() == 4) return change_limit(call);
    if (admin_path) return call.method_not_allowed();
    if ((top == "policies" || top == "operator-policies") && s.size() == 4) {
        if (call.is("PUT")) return put_policy(call, s[2], s[3]);
        if (call.is("DELETE")) return delete_policy(call, s[2], s[3]);
        return call.method_not_allowed();
    }
    return call.not_found();
}

template <class Key>
void Api::list(Call& call, std::vector<Key> keys, std::function<void(const Key&, ListSink&)> make) {
    ListQuery query;
    if (auto err = parse_list_query(call.target, query)) return call.error(err->status, err->error, err->reason);
    struct Job : std::enable_shared_from_this<Job> {
        std::shared_ptr<Call> call;
        std::vector<Key> keys;
        std::function<void(const Key&, ListSink&)> make;
        ListQuery query;
        bool streaming = false;  // no filter, sort or page: each object goes into the answer at once
        std::size_t next = 0;
        std::vector<ListItem> items;
        std::string body = "[";
        std::uint64_t input_seen = 0;

        // One piece per loop turn; the next piece is posted, so sockets and queues run between.
        void run(Api& api) {
            const auto started = std::chrono::steady_clock::now();
            const std::size_t end = std::min(keys.size(), next + list_piece);
            try {
                ListSink sink(query, streaming ? &body : nullptr, &items);
                for (; next < end; ++next) make(keys[next], sink);  // gone since: nothing added
            } catch (const std::exception& e) {
                log::error("management API: internal error while listing: {}", e.what());
                return call->error(500, "internal_error", e.what());
            }
            if (next < keys.size())
                return api.post_piece(started, input_seen, [self = this->shared_from_this(), &api] { self->run(api); });
            if (streaming) {
                body += ']';
                return call->reply(200, std::move(body));
            }
            std::string out;
            if (auto err = finish_list(items, query, out)) return call->error(err->status, err->error, err->reason);
            call->reply(200, std::move(out));
        }
    };
    auto job = std::make_shared<Job>();
    job->call = call.shared_from_this();
    job->keys = std::move(keys);
    job->make = std::move(make);
    job->query = std::move(query);
    job->streaming = !job->query.name && !job->query.sort && !job->query.sort_reverse && !job->query.page;
    job->input_seen = amqp_input();
    job->run(*this);
}

// Explicit instantiations for the key types the handlers use.
template void Api::list<std::string>(Call&, std::vector<std::string>,
                                     std::function<void(const std::string&, ListSink&)>);
template void Api::list<std::pair<std::string, std::string>>(
    Call&, std::vector<std::pair<std::string, std::string>>,
    std::function<void(const std::pair<std::string, std::string>&, ListSink&)>);
template void Api::list<std::uint64_t>(Call&, std::vector<std::uint64_t>,
                                       std::function<void(const std::uint64_t&, ListSink&)>);

void Api::post_piece(std::chrono::steady_clock::time_point started, std::uint64_t& input_seen,
                     std::function<void()> next) {
    // Under AMQP traffic the API takes a small share of the loop, never a stall.
    std::chrono::nanoseconds pause{0};
    const std::uint64_t input = amqp_input();
    if (input != input_seen) {
        pause = std::chrono::duration_cast<std::chrono::nanoseconds>((std::chrono::steady_clock::now() - started) *
                                                                     (1.0 / busy_share - 1.0));
        input_seen = input;
    }
    post_(pause, std::move(next));
}

std::uint64_t Api::amqp_input() const {
    std::uint64_t n = 0;
    for (const std::string& v : view_.vhost_names()) n += view_.vhost_stats(v)[broker::Stat::recv_cnt];
    return n;
}

void Api::answer_change(Call& call, int status, bool durable) {
    broker::Durability* d = broker_.durability();
    if (!durable || !d) return call.reply(status);
    // As a durable declare-ok waits for its definition to be stored, so does the HTTP answer.
    broker::Durability::Done done = [c = call.shared_from_this(), status](bool ok) {
        if (ok)
            c->reply(status);
        else
            c->error(500, "internal_error", "the change could not be stored");
    };
    d->when_stored(d->ticket(), std::move(done));
}

}  // namespace warren::mgmt
