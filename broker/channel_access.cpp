// Permission checks as rabbit_channel makes them: configure, write or read on an exchange or a
// queue, matched against the user's patterns for the vhost (the default exchange is checked
// as 'amq.default'), and topic permissions on routing keys of topic exchanges. Refusals are
// 403 ACCESS_REFUSED with rabbit_access_control's texts. Grants are cached per channel.
#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
// rabbit_channel keeps its last 12 grants; a channel rarely touches more resources than that.
constexpr std::size_t granted_capacity = 12;
}  // namespace

Status Channel::check_access(Permission permission, ResourceKind kind, std::string_view name) {
    const std::uint64_t epoch = connection_.broker().auth_epoch();
    if (access_epoch_ != epoch) {
        granted_.clear();
        access_epoch_ = epoch;
    }
    for (const Granted& g : granted_)
        if (g.permission == permission && g.kind == kind && g.name == name) return std::nullopt;
    // rabbit_access_control:check_resource_access/4 renames the default exchange.
    const std::string_view subject = kind == ResourceKind::Exchange && name.empty() ? "amq.default" : name;
    const Access& access = connection_.access();
    if (!access.permissions || !access.permissions->of(permission).matches(subject))
        return amqp_error(
            ReplyCode::AccessRefused,
            fmt::format("access to {} refused for user '{}'",
                        resource_name(kind == ResourceKind::Exchange ? "exchange" : "queue", subject, vhost().name()),
                        connection_.user()));
    if (granted_.size() == granted_capacity) granted_.erase(granted_.begin());
    granted_.push_back({permission, kind, std::string(name)});
    return std::nullopt;
}

Status Channel::check_publish_access(const std::string& exchange_name) {
    const std::uint64_t epoch = connection_.broker().auth_epoch();
    if (publish_granted_epoch_ == epoch && publish_granted_exchange_ == exchange_name) return std::nullopt;
    if (Status s = check_access(Permission::Write, ResourceKind::Exchange, exchange_name)) return s;
    publish_granted_exchange_ = exchange_name;
    publish_granted_epoch_ = epoch;
    return std::nullopt;
}

// rabbit_auth_backend_internal:check_topic_access/4: no topic permissions for the exchange
// means everything is allowed.
Status Channel::check_topic_access(Permission permission, const ExchangeEntry& x, std::string_view routing_key) {
    if (x.type != exchanges::ExchangeType::Topic) return std::nullopt;
    const Access& access = connection_.access();
    if (!access.topics) return std::nullopt;
    auto it = access.topics->find(x.name);
    if (it == access.topics->end()) return std::nullopt;
    const bool write = permission == Permission::Write;
    // Publishers mostly repeat a few keys: the last granted write is remembered.
    if (write && topic_granted_epoch_ == access.epoch && topic_granted_key_ == routing_key &&
        topic_granted_exchange_ == x.name)
        return std::nullopt;
    const PermissionRegex& pattern = write ? it->second.write : it->second.read;
    if (!pattern.matches(routing_key))
        return amqp_error(ReplyCode::AccessRefused,
                          fmt::format("access to topic '{}' in exchange '{}' in vhost '{}' refused for user '{}'",
                                      routing_key, x.name, vhost().name(), connection_.user()));
    if (write) {
        topic_granted_epoch_ = access.epoch;
        topic_granted_key_ = routing_key;
        topic_granted_exchange_ = x.name;
    }
    return std::nullopt;
}

}  // namespace warren::broker
