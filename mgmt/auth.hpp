// Who is asking, and what their tags let them do: HTTP Basic auth against the broker's users,
// and RabbitMQ's management tag rules (management < policymaker, monitoring < administrator).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mgmt/http_types.hpp"

namespace warren::broker {
class Broker;
}

namespace warren::mgmt {

// What an endpoint needs, in RabbitMQ's terms (rabbit_mgmt_util:is_authorized_*).
enum class Need { Management, Monitoring, Policymaker, Administrator };

struct AuthUser {
    std::string name;
    std::vector<std::string> tags;
};

// The user's tags, as the broker's users have them (none for a user that does not exist).
std::vector<std::string> user_tags(const broker::Broker& broker, std::string_view user);

// Checks the Authorization header ("Basic base64(user:password)") with the broker's login
// check: its users and password hashes, the default user only from loopback (RabbitMQ's
// loopback_users). Nothing: 401.
std::optional<AuthUser> authenticate(const broker::Broker& broker, const HttpRequest& request);

// Whether the user sees a vhost's objects: monitoring and administrator see every vhost, others
// the vhosts they have permissions in (rabbit_mgmt_util:list_login_vhosts).
bool sees_vhost(const broker::Broker& broker, const AuthUser& user, std::string_view vhost);

// RabbitMQ's tag rules: any of management, policymaker, monitoring or administrator may use the
// API; monitoring and administrator see every connection and the nodes; policymaker and
// administrator manage policies; only administrator manages users, vhosts and definitions.
bool allows(const std::vector<std::string>& tags, Need need);

}  // namespace warren::mgmt
