// Super streams through the API, in the shape of RabbitMQ's stream management plugin's path:
// PUT /api/stream/super-streams/{vhost}/{name} {"partitions": N, "arguments": {…},
// "hash-header": "…"} creates one (201) or grows it (204); GET shows it; DELETE removes the
// exchange and its partitions. Refusals are 400 with the reason; nothing is half-made.
#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/super_stream.hpp"
#include "broker/vhost.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/json_shapes.hpp"

namespace warren::mgmt {

void Api::super_stream(Call& call) {
    const auto& s = call.seg();
    broker::VHost* vh = broker_.find_vhost(s[3]);
    if (!vh) return call.error(404, "not_found", "vhost_not_found");
    const std::string& name = s[4];
    if (call.is("GET") || call.is("HEAD")) {
        auto partitions = broker::super_stream_partitions(*vh, name);
        if (!partitions) return call.not_found();
        return call.reply_json(json{{"name", name}, {"vhost", vh->name()}, {"partitions", *partitions}});
    }
    if (!permits(call, *vh, broker::Permission::Configure, true, name)) return;
    if (call.is("DELETE")) {
        if (!broker::delete_super_stream(*vh, name)) return call.not_found();
        return answer_change(call, 204, true);
    }
    if (!call.is("PUT")) return call.method_not_allowed();
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    broker::SuperStreamSpec spec;
    spec.name = name;
    auto p = body->find("partitions");
    if (p == body->end()) return call.bad_request("partitions is required: the number of partitions");
    if (p->is_number_integer())
        spec.partitions = p->get<std::int64_t>();
    else if (p->is_string() && !p->get<std::string>().empty() && p->get<std::string>().size() < 10 &&
             p->get<std::string>().find_first_not_of("0123456789") == std::string::npos)
        spec.partitions = std::stoll(p->get<std::string>());
    else
        return call.bad_request(fmt::format("partitions must be an integer from 1 to {}, got {}",
                                            broker::max_super_stream_partitions, p->dump()));
    if (auto it = body->find("arguments"); it != body->end() && !it->is_null()) {
        auto t = table_from_json(*it);
        if (!t) return call.bad_request("arguments must be an object");
        spec.queue_arguments = std::move(*t);
    }
    if (auto it = body->find("hash-header"); it != body->end() && !it->is_null()) {
        if (!it->is_string()) return call.bad_request("hash-header must be a string");
        spec.hash_header = it->get<std::string>();
    }
    broker::SuperStreamResult r = broker::put_super_stream(*vh, spec);
    if (r.error) return call.bad_request(*r.error);
    answer_change(call, r.created ? 201 : 204, true);
}

}  // namespace warren::mgmt
