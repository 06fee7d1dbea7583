// Users, permissions, topic permissions and vhost limits as RabbitMQ's API and definitions
// files write them (api_auth.cpp): shared by their endpoints and the definitions export.
#pragma once

#include <string>

#include "broker/auth.hpp"
#include "broker/policy.hpp"
#include "mgmt/json_shapes.hpp"

namespace warren::mgmt {

// {"name", "password_hash" (base64, as RabbitMQ stores it), "hashing_algorithm", "tags", "limits"}
json user_json(const broker::User& u);
json permission_json(const std::string& user, const std::string& vhost, const broker::Permissions& p);
json topic_permission_json(const std::string& user, const std::string& vhost, const broker::TopicPermission& t);
// {"max-connections": n, "max-queues": n}, the limits that are set.
json vhost_limits_json(const broker::VHostLimits& l);
// {"vhost", "name", "pattern", "apply-to", "definition", "priority"} (api_policies.cpp)
json policy_json(const std::string& vhost, const broker::Policy& p);

}  // namespace warren::mgmt
