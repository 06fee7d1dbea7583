// See auth.hpp.
#include "broker/auth.hpp"

#include <algorithm>

namespace warren::broker {

std::string_view permission_name(Permission p) {
    switch (p) {
        case Permission::Configure:
            return "configure";
        case Permission::Write:
            return "write";
        case Permission::Read:
            return "read";
    }
    return "read";
}

std::optional<std::int64_t> limit_reached(const std::optional<std::int64_t>& limit, std::size_t current) {
    if (!limit || *limit < 0) return std::nullopt;
    if (current >= static_cast<std::uint64_t>(*limit)) return *limit;
    return std::nullopt;
}

bool User::has_tag(std::string_view tag) const {
    return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

const User* AuthRegistry::find_user(std::string_view name) const {
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : &it->second;
}

User* AuthRegistry::find_user(std::string_view name) {
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : &it->second;
}

void AuthRegistry::put_user(User user) {
    std::string name = user.name;
    users_.insert_or_assign(std::move(name), std::move(user));
    ++epoch_;
}

void AuthRegistry::erase_user(std::string_view name) {
    users_.erase(std::string(name));
    std::erase_if(permissions_, [&](const auto& e) { return e.first.first == name; });
    std::erase_if(topics_, [&](const auto& e) { return e.first.first == name; });
    ++epoch_;
}

const Permissions* AuthRegistry::find_permissions(std::string_view user, std::string_view vhost) const {
    auto it = permissions_.find(key(user, vhost));
    return it == permissions_.end() ? nullptr : it->second.get();
}

void AuthRegistry::put_permissions(std::string user, std::string vhost, Permissions p) {
    permissions_.insert_or_assign({std::move(user), std::move(vhost)},
                                  std::make_shared<const Permissions>(std::move(p)));
    ++epoch_;
}

void AuthRegistry::erase_permissions(std::string_view user, std::string_view vhost) {
    permissions_.erase(key(user, vhost));
    ++epoch_;
}

void AuthRegistry::put_topic_permission(std::string user, std::string vhost, TopicPermission p) {
    Key k{std::move(user), std::move(vhost)};
    // Copy on write: connections may hold the old map.
    auto next = std::make_shared<TopicPermissions>();
    if (auto it = topics_.find(k); it != topics_.end()) *next = *it->second;
    std::string exchange = p.exchange;
    next->insert_or_assign(std::move(exchange), std::move(p));
    topics_.insert_or_assign(std::move(k), std::move(next));
    ++epoch_;
}

void AuthRegistry::erase_topic_permissions(std::string_view user, std::string_view vhost,
                                           std::optional<std::string_view> exchange) {
    auto it = topics_.find(key(user, vhost));
    if (it == topics_.end()) return;
    if (exchange) {
        auto next = std::make_shared<TopicPermissions>(*it->second);
        if (auto x = next->find(*exchange); x != next->end()) next->erase(x);
        if (next->empty())
            topics_.erase(it);
        else
            it->second = std::move(next);
    } else {
        topics_.erase(it);
    }
    ++epoch_;
}

void AuthRegistry::erase_vhost(std::string_view vhost) {
    std::erase_if(permissions_, [&](const auto& e) { return e.first.second == vhost; });
    std::erase_if(topics_, [&](const auto& e) { return e.first.second == vhost; });
    ++epoch_;
}

Access AuthRegistry::access(std::string_view user, std::string_view vhost) const {
    Access a;
    a.epoch = epoch_;
    if (auto it = permissions_.find(key(user, vhost)); it != permissions_.end()) a.permissions = it->second;
    if (auto it = topics_.find(key(user, vhost)); it != topics_.end()) a.topics = it->second;
    return a;
}

std::string expand_topic_variables(std::string_view pattern, std::string_view user, std::string_view vhost) {
    // rabbit_auth_backend_internal:expand_topic_permission/2 folds over the variable map in key
    // order: {username} first, then {vhost}.
    auto replace_all = [](std::string s, std::string_view from, std::string_view to) {
        std::string out;
        std::size_t pos = 0;
        for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
            out.append(s, pos, hit - pos);
            out.append(to);
        }
        out.append(s, pos);
        return out;
    };
    return replace_all(replace_all(std::string(pattern), "{username}", user), "{vhost}", vhost);
}

}  // namespace warren::broker
