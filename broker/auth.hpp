// Users, their permissions per vhost and their topic permissions: the model the Broker's admin
// API edits (broker_admin.cpp) and that logins and channels check. Permission objects are
// immutable and shared: a connection keeps the ones of its user and vhost, and looks again only
// when the epoch (raised by every change) moves, so a change is effective at once and a check
// costs no map lookup on the hot path.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/password.hpp"
#include "broker/permission_regex.hpp"
#include "broker/string_map.hpp"

namespace warren::broker {

enum class Permission { Configure, Write, Read };
std::string_view permission_name(Permission p);  // "configure", "write", "read"

// RabbitMQ's limits: absent means none; a negative value means none too; 0 allows nothing.
struct UserLimits {
    std::optional<std::int64_t> max_connections;
    std::optional<std::int64_t> max_channels;
    bool operator==(const UserLimits&) const = default;
};
struct VHostLimits {
    std::optional<std::int64_t> max_connections;
    std::optional<std::int64_t> max_queues;
    bool operator==(const VHostLimits&) const = default;
};
// The limit in force for a count of `current`: the limit when reached, nullopt when not.
std::optional<std::int64_t> limit_reached(const std::optional<std::int64_t>& limit, std::size_t current);

// The user tags RabbitMQ's management and CLI know; others are kept as given.
inline constexpr std::string_view known_user_tags[] = {"administrator", "monitoring", "management", "policymaker",
                                                       "impersonator"};

struct User {
    std::string name;
    PasswordHash password;
    std::vector<std::string> tags;
    UserLimits limits;
    bool has_tag(std::string_view tag) const;
};

// configure, write and read patterns of one user in one vhost.
struct Permissions {
    PermissionRegex configure, write, read;
    const PermissionRegex& of(Permission p) const {
        return p == Permission::Configure ? configure : p == Permission::Write ? write : read;
    }
};

// Write and read patterns on the routing keys of one topic exchange. The patterns as given
// (with {username} and {vhost} variables) and compiled after expanding them, as RabbitMQ
// expands them for each check; the user and vhost of a record never change, so once is enough.
struct TopicPermission {
    std::string exchange;
    std::string write_pattern, read_pattern;
    PermissionRegex write, read;
};
using TopicPermissions = std::map<std::string, TopicPermission, std::less<>>;  // by exchange

// What a connection holds for its user and vhost (null pointers: no such permissions).
struct Access {
    std::shared_ptr<const Permissions> permissions;
    std::shared_ptr<const TopicPermissions> topics;  // null or non-empty
    std::uint64_t epoch = 0;
};

class AuthRegistry {
public:
    const StringMap<User>& users() const { return users_; }
    const User* find_user(std::string_view name) const;
    User* find_user(std::string_view name);
    void put_user(User user);
    void erase_user(std::string_view name);  // with its permissions

    using Key = std::pair<std::string, std::string>;  // user, vhost
    const std::map<Key, std::shared_ptr<const Permissions>>& permissions() const { return permissions_; }
    const std::map<Key, std::shared_ptr<const TopicPermissions>>& topic_permissions() const { return topics_; }
    const Permissions* find_permissions(std::string_view user, std::string_view vhost) const;
    void put_permissions(std::string user, std::string vhost, Permissions p);
    void erase_permissions(std::string_view user, std::string_view vhost);
    void put_topic_permission(std::string user, std::string vhost, TopicPermission p);
    // One exchange's, or (exchange nullopt) all of the user's in the vhost.
    void erase_topic_permissions(std::string_view user, std::string_view vhost,
                                 std::optional<std::string_view> exchange);
    void erase_vhost(std::string_view vhost);  // every permission in it

    Access access(std::string_view user, std::string_view vhost) const;
    // Raised by every change: connections refresh their Access, channels drop their caches.
    std::uint64_t epoch() const { return epoch_; }

private:
    static Key key(std::string_view user, std::string_view vhost) { return {std::string(user), std::string(vhost)}; }
    StringMap<User> users_;
    std::map<Key, std::shared_ptr<const Permissions>> permissions_;
    std::map<Key, std::shared_ptr<const TopicPermissions>> topics_;
    std::uint64_t epoch_ = 1;
};

// RabbitMQ's topic variables: {username} and {vhost} in a topic permission pattern.
std::string expand_topic_variables(std::string_view pattern, std::string_view user, std::string_view vhost);

}  // namespace warren::broker
