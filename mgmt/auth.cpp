// See auth.hpp.
#include "mgmt/auth.hpp"

#include <algorithm>

#include "broker/base64.hpp"
#include "broker/broker.hpp"
#include "broker/log.hpp"

namespace warren::mgmt {

std::vector<std::string> user_tags(const broker::Broker& broker, std::string_view user) {
    const broker::User* u = broker.auth().find_user(user);
    return u ? u->tags : std::vector<std::string>{};
}

bool sees_vhost(const broker::Broker& broker, const AuthUser& user, std::string_view vhost) {
    return allows(user.tags, Need::Monitoring) || broker.auth().find_permissions(user.name, vhost) != nullptr;
}

std::optional<AuthUser> authenticate(const broker::Broker& broker, const HttpRequest& request) {
    const std::string* header = request.header("authorization");
    if (!header) return std::nullopt;
    std::string_view h = *header;
    constexpr std::string_view basic = "Basic ";
    if (h.size() <= basic.size() || h.substr(0, basic.size()) != basic) return std::nullopt;
    h.remove_prefix(basic.size());
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    auto decoded = broker::base64_decode(h);
    if (!decoded) return std::nullopt;
    std::string pair(reinterpret_cast<const char*>(decoded->data()), decoded->size());
    auto colon = pair.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string user = pair.substr(0, colon), password = pair.substr(colon + 1);
    std::string reason;
    if (!broker.check_login(user, password, request.peer_is_loopback, reason)) {
        log::peer(log::Level::Warning, request.peer_address, "HTTP access denied: {}", reason);
        return std::nullopt;
    }
    return AuthUser{user, user_tags(broker, user)};
}

bool allows(const std::vector<std::string>& tags, Need need) {
    auto has = [&](std::string_view t) { return std::find(tags.begin(), tags.end(), t) != tags.end(); };
    const bool admin = has("administrator");
    switch (need) {
        case Need::Administrator:
            return admin;
        case Need::Monitoring:
            return admin || has("monitoring");
        case Need::Policymaker:
            return admin || has("policymaker");
        case Need::Management:
            return admin || has("monitoring") || has("policymaker") || has("management");
    }
    return false;
}

}  // namespace warren::mgmt
