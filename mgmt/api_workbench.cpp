// The dead-letter workbench over HTTP, Warren's own endpoints (RabbitMQ has none): browse a
// queue's ready and unacked messages without taking them, redrive or delete a selection, and the
// queue's dead-letter health. Permissions as basic.get's: read on the queue; a redrive also
// needs write on every exchange it publishes to. Long selections run in bounded pieces.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/durability.hpp"
#include "broker/vhost.hpp"
#include "broker/workbench_browse.hpp"
#include "broker/workbench_redrive.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/message_json.hpp"

namespace warren::mgmt {

namespace wb = broker::workbench;

namespace {

constexpr std::size_t default_truncate = 4096;
constexpr std::size_t max_truncate = 16 * 1024 * 1024;
// A page's bodies at most (count x truncate), so one answer stays a sane size.
constexpr std::size_t max_page_bytes = 64 * 1024 * 1024;
// Handles per request: a page's worth, so a request by handles is bounded work in one turn too.
constexpr std::size_t max_handles = 1000;

// A query parameter as a number in [min, max] into `out` (left as it is when absent); an error text
// when it is not one.
std::optional<std::string> number_param(const Target& t, std::string_view key, std::size_t min, std::size_t max,
                                        std::size_t& out) {
    auto v = t.param(key);
    if (!v) return std::nullopt;
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || v->empty() || n < min || n > max)
        return fmt::format("{} must be a whole number from {} to {}", key, min, max);
    out = n;
    return std::nullopt;
}

std::optional<std::string> encoding_param(const Target& t, std::string& out) {
    out = t.param("encoding").value_or("auto");
    if (out != "auto" && out != "base64" && out != "hex") return "encoding must be auto, base64 or hex";
    return std::nullopt;
}

// The filter from the query string (reason, origin_queue, header, header_value).
std::optional<std::string> filter_params(const Target& t, wb::MessageFilter& f) {
    auto set = [&](const char* key, std::optional<std::string>& field) {
        if (auto v = t.param(key); v && !v->empty()) field = *v;
    };
    set("reason", f.reason);
    set("origin_queue", f.origin_queue);
    set("header", f.header);
    set("header_value", f.header_value);
    if (f.header_value && !f.header) return "header_value needs header";
    return std::nullopt;
}

// The filter from a JSON object with the same fields.
std::optional<std::string> filter_json(const json& j, wb::MessageFilter& f) {
    if (!j.is_object()) return "filter must be an object";
    for (const auto& [key, value] : j.items()) {
        std::optional<std::string>* field = key == "reason"         ? &f.reason
                                            : key == "origin_queue" ? &f.origin_queue
                                            : key == "header"       ? &f.header
                                            : key == "header_value" ? &f.header_value
                                                                    : nullptr;
        if (!field) return fmt::format("unknown filter field '{}' (reason, origin_queue, header, header_value)", key);
        if (!value.is_string()) return fmt::format("filter.{} must be a string", key);
        *field = value.get<std::string>();
    }
    if (f.header_value && !f.header) return "filter.header_value needs filter.header";
    return std::nullopt;
}

std::vector<std::byte> unhex(std::string_view hex) {
    std::vector<std::byte> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
        out[i] = static_cast<std::byte>(v);
    }
    return out;
}

// Where the message died first and where a redrive sends it back (x-death's latest entry),
// read off its headers; null when it has no x-death.
json death_json(const json& headers) {
    if (!headers.is_object()) return nullptr;
    auto text = [&](const char* key) -> json {
        auto it = headers.find(key);
        return it != headers.end() && it->is_string() ? *it : json(nullptr);
    };
    json d{{"first_reason", text("x-first-death-reason")},
           {"first_queue", text("x-first-death-queue")},
           {"first_exchange", text("x-first-death-exchange")}};
    auto xd = headers.find("x-death");
    if (xd == headers.end() || !xd->is_array() || xd->empty() || !(*xd)[0].is_object()) {
        if (d["first_reason"].is_null()) return nullptr;
        return d;
    }
    const json& latest = (*xd)[0];
    d["reason"] = latest.value("reason", json(nullptr));
    d["queue"] = latest.value("queue", json(nullptr));
    d["count"] = latest.value("count", json(nullptr));
    d["origin_exchange"] = latest.value("exchange", json(nullptr));
    auto keys = latest.find("routing-keys");
    d["origin_routing_key"] = keys != latest.end() && keys->is_array() && !keys->empty() ? (*keys)[0] : json(nullptr);
    return d;
}

json message_json(const wb::BrowsedMessage& m, std::string_view encoding) {
    json j{{"handle", wb::to_string(m.handle)}, {"readable", m.readable}, {"paged_out", m.paged_out}};
    if (!m.readable) return j;
    j["priority"] = m.priority;
    j["redelivered"] = m.redelivered;
    j["delivery_count"] = m.delivery_count;
    j["persistent"] = m.persistent;
    j["exchange"] = m.exchange;
    j["routing_key"] = m.routing_key;
    json props = properties_json(m.properties());
    j["death"] = props.is_object() && props.contains("headers") ? death_json(props["headers"]) : json(nullptr);
    j["properties"] = std::move(props);
    // The preview is the cut body as text, or as hex when it is not UTF-8.
    Payload p;
    if (m.body.is_text)
        p = encode_payload(std::as_bytes(std::span(m.body.text.data(), m.body.text.size())), encoding, "hex");
    else if (encoding == "base64")
        p = encode_payload(unhex(m.body.text), encoding, "hex");
    else
        p = {m.body.text, "hex"};
    j["payload"] = std::move(p.text);
    j["payload_encoding"] = std::move(p.encoding);
    j["payload_bytes"] = m.body.size;
    j["payload_truncated"] = m.body.truncated;
    return j;
}

json counts_json(const wb::LabelCounts& counts) {
    json o = json::object();
    for (const auto& [label, n] : counts) o[label] = n;
    return o;
}

}  // namespace

void Api::get_workbench(Call& call) {
    const auto& s = call.seg();
    broker::VHost* vh = broker_.find_vhost(s[2]);
    if (!vh) return call.not_found();
    broker::Queue* q = vh->find_queue(s[3]);
    if (!q) return call.not_found();
    const bool messages = s[4] == "messages" && s.size() == 5;
    const bool unacked = s[4] == "messages" && s.size() == 6 && s[5] == "unacked";
    const bool health = s[4] == "dead-letter-health" && s.size() == 5;
    if (!messages && !unacked && !health) return call.not_found();
    // Reading messages (or counting their headers) is what basic.get may: read on the queue.
    if (!permits(call, *vh, broker::Permission::Read, false, q->name())) return;
    if (q->stream())
        return call.bad_request("the workbench does not apply to stream queues (they keep no dead letters to move)");
    if (messages) return browse_messages(call, *q);
    if (unacked) return browse_unacked(call, *q);
    get_dead_letter_health(call, *q);
}

void Api::browse_messages(Call& call, broker::Queue& q) {
    const Target& t = call.target;
    wb::BrowseOptions o;
    auto cursor = wb::parse_cursor(t.param("cursor").value_or(""));
    if (!cursor) return call.bad_request("cursor must be one a previous page gave (next_cursor)");
    o.from = *cursor;
    std::string encoding;
    if (auto e = number_param(t, "count", 1, wb::BrowseOptions::max_page, o.count)) return call.bad_request(*e);
    o.max_body_bytes = default_truncate;
    if (auto e = number_param(t, "truncate", 0, max_truncate, o.max_body_bytes)) return call.bad_request(*e);
    if (auto e = encoding_param(t, encoding)) return call.bad_request(*e);
    if (auto e = filter_params(t, o.filter)) return call.bad_request(*e);
    if (o.count * o.max_body_bytes > max_page_bytes)
        return call.bad_request(fmt::format("count x truncate must be at most {} bytes", max_page_bytes));
    wb::BrowsePage page;
    if (o.from.done) {
        page.next = o.from;
        page.ready = q.message_count();
    } else {
        page = wb::browse_ready(q, o);
    }
    json out{{"vhost", q.vhost().name()},
             {"queue", q.name()},
             {"messages_ready", page.ready},
             {"next_cursor", page.next.done ? json(nullptr) : json(wb::to_string(page.next))},
             {"messages", json::array()}};
    for (const auto& m : page.messages) out["messages"].push_back(message_json(m, encoding));
    call.reply_json(out);
}

void Api::browse_unacked(Call& call, broker::Queue& q) {
    const Target& t = call.target;
    std::size_t offset = 0, count = 50, truncate = default_truncate;
    std::string encoding;
    if (auto e = number_param(t, "offset", 0, SIZE_MAX, offset)) return call.bad_request(*e);
    if (auto e = number_param(t, "count", 1, wb::BrowseOptions::max_page, count)) return call.bad_request(*e);
    if (auto e = number_param(t, "truncate", 0, max_truncate, truncate)) return call.bad_request(*e);
    if (auto e = encoding_param(t, encoding)) return call.bad_request(*e);
    if (count * truncate > max_page_bytes)
        return call.bad_request(fmt::format("count x truncate must be at most {} bytes", max_page_bytes));
    // The vhost's channels, in a stable order: by connection, then channel number.
    std::vector<std::pair<std::uint64_t, const broker::Channel*>> open;
    for (const auto& [id, c] : broker_.connections())
        if (c->vhost() == &q.vhost())
            for (const auto& [number, ch] : c->channels()) open.emplace_back(id, ch.get());
    std::sort(open.begin(), open.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : a.second->id() < b.second->id();
    });
    std::vector<const broker::Channel*> channels;
    for (const auto& [id, ch] : open) channels.push_back(ch);
    wb::UnackedPage page = wb::browse_unacked(q, channels, offset, count, truncate);
    const broker::TimePoint now = broker_.now();
    json list = json::array();
    for (const auto& u : page.messages) {
        json j = message_json(u.message, encoding);
        std::string cname;
        if (broker::Connection* c = broker_.find_connection(u.connection_id)) cname = broker::connection_name(*c);
        j["connection_name"] = cname;
        j["channel_number"] = u.channel;
        j["channel_name"] = fmt::format("{} ({})", cname, u.channel);
        j["consumer_tag"] = u.consumer_tag;
        j["delivery_tag"] = u.delivery_tag;
        j["unacked_for_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(now - u.delivered_at).count();
        list.push_back(std::move(j));
    }
    call.reply_json(json{{"vhost", q.vhost().name()},
                         {"queue", q.name()},
                         {"offset", offset},
                         {"more", page.more},
                         {"messages", std::move(list)}});
}

void Api::get_dead_letter_health(Call& call, broker::Queue& q) {
    const std::string header = call.target.param("header").value_or("");
    const bool chosen = !header.empty() && header != wb::default_error_header;
    wb::HealthBook& book = chosen ? health_chosen_ : health_default_;
    wb::HealthOptions o;
    if (chosen) o.header = header;
    book.prune([&](broker::QueueId id) {
        for (const auto& [name, vh] : broker_.vhosts())
            if (vh->queue_by_id(id)) return true;
        return false;
    });
    const wb::QueueHealth h = book.read(q, broker_.now(), o);
    auto seconds = [](broker::Duration d) { return std::chrono::duration<double>(d).count(); };
    call.reply_json(json{{"vhost", q.vhost().name()},
                         {"queue", q.name()},
                         {"messages_ready", h.ready},
                         {"arrivals", h.arrivals},
                         {"oldest_message_age_seconds", h.oldest_age ? json(seconds(*h.oldest_age)) : json(nullptr)},
                         {"growth_rate", h.growth_per_second},
                         {"arrival_rate", h.arrivals_per_second},
                         {"rate_window_seconds", seconds(h.rate_window)},
                         {"header", h.header},
                         {"counts_complete", h.counts_complete},
                         {"by_reason", counts_json(h.by_reason)},
                         {"by_origin_queue", counts_json(h.by_origin_queue)},
                         {"by_header", counts_json(h.by_header)},
                         {"unreadable", h.unreadable}});
}

void Api::workbench_action(Call& call, broker::VHost& vh, const std::string& name, bool redrive) {
    broker::Queue* q = vh.find_queue(name);
    if (!q) return call.not_found();
    // Taking messages out is what basic.get may: read on the queue (as a purge needs).
    if (!permits(call, vh, broker::Permission::Read, false, name)) return;
    if (q->stream()) return call.bad_request("the workbench does not apply to stream queues");
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");

    wb::ActionRequest req;
    wb::RedriveTarget target;
    int forms = 0;
    for (const auto& [key, value] : body->items()) {
        if (key == "handles") {
            ++forms;
            if (!value.is_array()) return call.bad_request("handles must be an array of message handles");
            if (value.empty()) return call.bad_request("handles is empty");
            if (value.size() > max_handles) return call.bad_request(fmt::format("at most {} handles", max_handles));
            for (const json& h : value) {
                auto parsed = h.is_string() ? wb::parse_handle(h.get<std::string>()) : std::nullopt;
                if (!parsed) return call.bad_request(fmt::format("'{}' is not a message handle", h.dump()));
                req.selection.handles.push_back(*parsed);
            }
        } else if (key == "filter") {
            ++forms;
            if (auto e = filter_json(value, req.selection.filter)) return call.bad_request(*e);
        } else if (key == "all") {
            if (value != true) return call.bad_request("all must be true");
            ++forms;
        } else if (key == "dry_run") {
            if (!value.is_boolean()) return call.bad_request("dry_run must be true or false");
            req.dry_run = value.get<bool>();
        } else if (key == "target" && redrive) {
            if (!value.is_object()) return call.bad_request("target must be an object");
            for (const auto& [k, v] : value.items()) {
                if (k != "exchange" && k != "routing_key")
                    return call.bad_request(fmt::format("unknown target field '{}' (exchange, routing_key)", k));
                if (!v.is_string()) return call.bad_request(fmt::format("target.{} must be a string", k));
                (k == "exchange" ? target.exchange : target.routing_key) = v.get<std::string>();
            }
            if (target.routing_key && !target.exchange)
                return call.bad_request("target.routing_key needs target.exchange");
        } else {
            return call.bad_request(fmt::format("unknown field '{}'", key));
        }
    }
    if (forms != 1) return call.bad_request("give exactly one of handles, filter or all");
    if (req.selection.filter.empty() && body->contains("filter"))
        return call.bad_request("filter is empty (use \"all\": true to select every message)");
    if (target.exchange) {
        // A chosen exchange: checked once here, as basic.publish would check it.
        const std::string& x = *target.exchange;
        if (!vh.find_exchange(x))
            return call.error(404, "not_found", fmt::format("no exchange '{}' in vhost '{}'", x, vh.name()));
        if (!permits(call, vh, broker::Permission::Write, true, x)) return;
    }

    // Runs the selection piece by piece across loop turns (a filter's or all: at most a piece's
    // worth per turn), then answers once every stored copy is stored.
    struct Job : std::enable_shared_from_this<Job> {
        std::shared_ptr<Call> call;
        std::string vhost;
        std::uint32_t vhost_id = 0;
        broker::QueueId queue = 0;
        bool redrive = false;
        wb::ActionRequest req;
        wb::RedriveTarget target;
        std::size_t matched = 0, done = 0, failed = 0;
        json failures = json::array();
        std::size_t pending = 0;  // tickets not yet stored
        bool store_failed = false, walked = false;
        std::uint64_t input_seen = 0;

        void run(Api& api) {
            const auto started = std::chrono::steady_clock::now();
            broker::VHost* vh = api.broker_.find_vhost(vhost);
            broker::Queue* q = vh && vh->id() == vhost_id ? vh->queue_by_id(queue) : nullptr;
            if (!q) return finish_walk();  // deleted meanwhile: what was done stands
            const std::string user = call->user.name;
            wb::MayPublish may = [&](std::string_view x) {
                const broker::Permissions* p = api.broker_.auth().find_permissions(user, vhost);
                return p && p->write.matches(x.empty() ? std::string_view("amq.default") : x);
            };
            wb::ActionResult r = redrive ? wb::redrive(*q, req, target, may) : wb::delete_messages(*q, req);
            matched += r.matched;
            done += r.done;
            failed += r.failed;
            for (const auto& f : r.failures)
                if (failures.size() < wb::ActionResult::max_failures)
                    failures.push_back(json{{"handle", wb::to_string(f.handle)}, {"reason", f.reason}});
            if (r.ticket) {
                ++pending;
                api.broker_.durability()->when_stored(r.ticket, [self = shared_from_this()](bool ok) {
                    --self->pending;
                    if (!ok) self->store_failed = true;
                    self->answer();
                });
            }
            if (r.next.done) return finish_walk();
            req.from = r.next;
            req.seq_limit = r.seq_limit;
            api.post_piece(started, input_seen, [self = shared_from_this(), &api] { self->run(api); });
        }
        void finish_walk() {
            walked = true;
            answer();
        }
        void answer() {
            if (!walked || pending) return;
            if (store_failed)
                return call->error(500, "internal_error",
                                   "the redriven copies could not be stored; their originals stay in the queue");
            call->reply_json(json{{"dry_run", req.dry_run},
                                  {"matched", matched},
                                  {redrive ? "redriven" : "deleted", done},
                                  {"failed", failed},
                                  {"failures", failures}});
        }
    };
    auto job = std::make_shared<Job>();
    job->call = call.shared_from_this();
    job->vhost = vh.name();
    job->vhost_id = vh.id();
    job->queue = q->id();
    job->redrive = redrive;
    job->req = std::move(req);
    job->target = std::move(target);
    job->input_seen = amqp_input();
    job->run(*this);
}

}  // namespace warren::mgmt
