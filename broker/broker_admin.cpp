// The Broker's admin API: vhosts, users, permissions and limits. Every call checks all of its
// input before it changes anything (an error names the field), applies the change at once,
// and appends a definitions record. Deleting a vhost or a user closes its connections with
// 320 CONNECTION_FORCED, as RabbitMQ does.
#include <fmt/format.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/vhost_storage.hpp"
#include "protocol/utf8.hpp"

namespace warren::broker {

namespace {

// Names travel in shortstrs (connection.open, PLAIN responses are longer but a name beyond
// this could not be used in every method), and in logs: UTF-8, at most 255 bytes.
constexpr std::size_t max_name_size = 255;

AdminError invalid(std::string field, std::string detail) {
    std::string text = fmt::format("field '{}': {}", field, detail);
    return {AdminError::Kind::Invalid, std::move(field), std::move(text)};
}

AdminError not_found(std::string field, std::string detail) {
    return {AdminError::Kind::NotFound, std::move(field), std::move(detail)};
}

AdminStatus check_name(std::string_view field, std::string_view what, std::string_view name,
                       bool may_be_empty = false) {
    if (name.empty() && !may_be_empty)
        return invalid(std::string(field), fmt::format("a {} name cannot be empty", what));
    if (name.size() > max_name_size)
        return invalid(std::string(field),
                       fmt::format("a {} name is at most {} bytes ({} given)", what, max_name_size, name.size()));
    if (!protocol::is_valid_utf8(name))
        return invalid(std::string(field), fmt::format("a {} name must be UTF-8", what));
    return std::nullopt;
}

// Tags as rabbitmqctl takes them: surrounding spaces dropped; none empty, none with a comma.
std::variant<std::vector<std::string>, AdminError> check_tags(const std::vector<std::string>& tags) {
    std::vector<std::string> out;
    for (const std::string& t : tags) {
        auto first = t.find_first_not_of(' ');
        if (first == std::string::npos) return invalid("tags", "a tag cannot be empty");
        std::string tag = t.substr(first, t.find_last_not_of(' ') - first + 1);
        if (tag.find(',') != std::string::npos)
            return invalid("tags", fmt::format("tag '{}' contains a comma (give each tag on its own)", tag));
        if (tag.size() > max_name_size || !protocol::is_valid_utf8(tag))
            return invalid("tags", "a tag is UTF-8, at most 255 bytes");
        if (std::find(out.begin(), out.end(), tag) == out.end()) out.push_back(std::move(tag));
    }
    return out;
}

std::variant<PermissionRegex, AdminError> check_regex(std::string_view field, std::string_view pattern) {
    auto compiled = PermissionRegex::compile(pattern);
    if (auto* error = std::get_if<std::string>(&compiled)) return invalid(std::string(field), *error);
    return std::get<PermissionRegex>(std::move(compiled));
}

definitions::StoredLimits stored(const VHostLimits& l) {
    return {l.max_connections, l.max_queues, std::nullopt};
}
definitions::StoredLimits stored(const UserLimits& l) {
    return {l.max_connections, std::nullopt, l.max_channels};
}

}  // namespace

// ---- records --------------------------------------------------------------------------------

// Recorded, and synced at the end of this turn (an admin change is asked for once and must
// stick); a caller that answers someone waits with durability()->when_stored(ticket()).
void Broker::append_admin_record(const std::string& record) {
    durability_->append_definition(record);
    durability_->ticket();
}

void Broker::record_vhost(const VHost& vh) {
    if (!durability_) return;
    append_admin_record(definitions::vhost_record(
        {vh.name(), vh.id(), vh.settings().description, vh.settings().tags, stored(vh.limits())}));
}

void Broker::record_user(const User& u) {
    if (!durability_) return;
    append_admin_record(definitions::user_record({u.name, encode_password_hash(u.password),
                                                  std::string(hashing_algorithm_name(u.password.algorithm)), u.tags,
                                                  stored(u.limits)}));
}

void Broker::record_permissions(std::string_view user, const VHost& vh) {
    if (!durability_) return;
    const Permissions* p = auth_.find_permissions(user, vh.name());
    if (!p) {
        append_admin_record(definitions::permission_delete_record(user, vh.id()));
        return;
    }
    append_admin_record(definitions::permission_record(
        {std::string(user), vh.id(), p->configure.pattern(), p->write.pattern(), p->read.pattern()}));
}

void Broker::record_topic_permission(std::string_view user, const VHost& vh, std::string_view exchange) {
    if (!durability_) return;
    Access a = auth_.access(user, vh.name());
    const TopicPermission* t = nullptr;
    if (a.topics)
        if (auto it = a.topics->find(exchange); it != a.topics->end()) t = &it->second;
    if (!t) {
        append_admin_record(definitions::topic_permission_delete_record(user, vh.id(), exchange));
        return;
    }
    append_admin_record(definitions::topic_permission_record(
        {std::string(user), vh.id(), t->exchange, t->write_pattern, t->read_pattern}));
}

// ---- vhosts ---------------------------------------------------------------------------------

AdminStatus Broker::check_vhost_input(std::string_view name, const VHostSettings& settings) {
    if (auto e = check_name("name", "vhost", name)) return e;
    if (auto tags = check_tags(settings.tags); std::holds_alternative<AdminError>(tags))
        return std::get<AdminError>(tags);
    if (!protocol::is_valid_utf8(settings.description)) return invalid("description", "must be UTF-8");
    return std::nullopt;
}

AdminStatus Broker::add_vhost(std::string_view name, const VHostSettings& settings) {
    if (auto e = check_vhost_input(name, settings)) return e;
    VHostSettings checked{settings.description, std::get<std::vector<std::string>>(check_tags(settings.tags))};
    if (VHost* existing = find_vhost(name)) {
        existing->set_settings(std::move(checked));
        record_vhost(*existing);
        return std::nullopt;
    }
    auto vh = std::make_unique<VHost>(*this, std::string(name));
    vh->set_id(next_vhost_id_++);
    vh->set_settings(std::move(checked));
    if (durability_) {
        // Its message log (empty: ids are never reused), then recorded like every change.
        auto opened = recover_messages(*vh);
        if (auto* error = std::get_if<std::string>(&opened))
            return AdminError{AdminError::Kind::Storage, "name", *error};
        vh->set_durability(durability_.get());
    }
    VHost& ref = *vhosts_.emplace(std::string(name), std::move(vh)).first->second;
    record_vhost(ref);
    log::info("vhost '{}' created", log::escaped(name));
    return std::nullopt;
}

AdminStatus Broker::delete_vhost(std::string_view name) {
    VHost* vh = find_vhost(name);
    if (!vh) return not_found("name", fmt::format("vhost '{}' does not exist", name));
    const std::string vhost_name = vh->name();
    const std::uint32_t id = vh->id();
    log::info("closing all connections in vhost '{}' because it is being deleted", log::escaped(vhost_name));
    force_close_connections([vh](const Connection& c) { return c.vhost() == vh; },
                            fmt::format("vhost '{}' is deleted", vhost_name));
    // What the closes requeued and dead-lettered settles before the vhost's queues go.
    drain_dead_letters();
    auth_.erase_vhost(vhost_name);
    vh->set_durability(nullptr);  // its queues and exchanges go with the one record below
    vhosts_.erase(vhosts_.find(vhost_name));
    if (durability_) {
        append_admin_record(definitions::vhost_delete_record(id));
        // The messages go once the deletion is stored: a crash before that brings the vhost
        // back whole, never a vhost without its messages.
        durability_->when_stored(durability_->ticket(), [d = durability_.get(), id](bool ok) {
            if (ok) d->remove_message_log(id);
        });
    }
    log::info("vhost '{}' deleted", log::escaped(vhost_name));
    return std::nullopt;
}

AdminStatus Broker::set_vhost_limits(std::string_view name, const VHostLimits& limits) {
    VHost* vh = find_vhost(name);
    if (!vh) return not_found("vhost", fmt::format("vhost '{}' does not exist", name));
    vh->set_limits(limits);
    record_vhost(*vh);
    return std::nullopt;
}

// ---- users ----------------------------------------------------------------------------------

AdminStatus Broker::add_user(std::string_view name, std::string_view password, const std::vector<std::string>& tags) {
    if (auth_.find_user(name))
        return AdminError{AdminError::Kind::Exists, "name", fmt::format("user '{}' already exists", name)};
    UserSpec spec;
    spec.name = name;
    spec.password = password;
    spec.tags = tags;
    return put_user(spec);
}

AdminStatus Broker::check_user_input(const UserSpec& spec) {
    if (auto e = check_name("name", "user", spec.name)) return e;
    if (auto tags = check_tags(spec.tags); std::holds_alternative<AdminError>(tags)) return std::get<AdminError>(tags);
    if (spec.password && spec.password_hash)
        return invalid("password_hash", "give a password or a password_hash, not both");
    if (spec.password_hash) {
        auto algorithm = parse_hashing_algorithm(spec.hashing_algorithm);
        if (!algorithm)
            return invalid("hashing_algorithm", fmt::format("unknown hashing algorithm '{}' (rabbit_password_hashing_"
                                                            "sha256, _sha512 or _md5)",
                                                            spec.hashing_algorithm));
        auto decoded = decode_password_hash(*spec.password_hash, *algorithm);
        if (auto* error = std::get_if<std::string>(&decoded)) return invalid("password_hash", *error);
    }
    return std::nullopt;
}

AdminStatus Broker::put_user(const UserSpec& spec) {
    if (auto e = check_user_input(spec)) return e;
    auto tags = check_tags(spec.tags);
    User user;
    const User* existing = auth_.find_user(spec.name);
    if (existing) user = *existing;
    user.name = spec.name;
    user.tags = std::get<std::vector<std::string>>(std::move(tags));
    if (spec.password_hash) {
        auto decoded = decode_password_hash(*spec.password_hash, *parse_hashing_algorithm(spec.hashing_algorithm));
        user.password = std::get<PasswordHash>(std::move(decoded));
    } else if (spec.password) {
        user.password = hash_password(*spec.password);
    } else if (!existing) {
        user.password = {};
    }
    auth_.put_user(user);
    record_user(user);
    return std::nullopt;
}

AdminStatus Broker::delete_user(std::string_view name) {
    if (!auth_.find_user(name)) return not_found("name", fmt::format("user '{}' does not exist", name));
    const std::string user(name);
    auth_.erase_user(user);
    if (durability_) append_admin_record(definitions::user_delete_record(user));
    log::info("closing all connections of user '{}' because it is being deleted", log::escaped(user));
    force_close_connections([&](const Connection& c) { return c.user() == user && c.vhost(); },
                            fmt::format("user '{}' is deleted", user));
    return std::nullopt;
}

AdminStatus Broker::set_password(std::string_view name, std::string_view password) {
    User* u = auth_.find_user(name);
    if (!u) return not_found("user", fmt::format("user '{}' does not exist", name));
    User changed = *u;
    changed.password = hash_password(password);
    auth_.put_user(changed);
    record_user(changed);
    return std::nullopt;
}

AdminStatus Broker::set_password_hash(std::string_view name, std::string_view password_hash,
                                      std::string_view hashing_algorithm) {
    if (!auth_.find_user(name)) return not_found("user", fmt::format("user '{}' does not exist", name));
    UserSpec spec;
    spec.name = name;
    spec.password_hash = password_hash;
    spec.hashing_algorithm = hashing_algorithm;
    spec.tags = auth_.find_user(name)->tags;
    return put_user(spec);
}

AdminStatus Broker::set_tags(std::string_view name, const std::vector<std::string>& tags) {
    User* u = auth_.find_user(name);
    if (!u) return not_found("user", fmt::format("user '{}' does not exist", name));
    auto checked = check_tags(tags);
    if (auto* e = std::get_if<AdminError>(&checked)) return *e;
    User changed = *u;
    changed.tags = std::get<std::vector<std::string>>(std::move(checked));
    auth_.put_user(changed);
    record_user(changed);
    return std::nullopt;
}

AdminStatus Broker::set_user_limits(std::string_view name, const UserLimits& limits) {
    User* u = auth_.find_user(name);
    if (!u) return not_found("user", fmt::format("user '{}' does not exist", name));
    User changed = *u;
    changed.limits = limits;
    auth_.put_user(changed);
    record_user(changed);
    return std::nullopt;
}

// ---- permissions ----------------------------------------------------------------------------

AdminStatus Broker::set_permissions(std::string_view user, std::string_view vhost, std::string_view configure,
                                    std::string_view write, std::string_view read) {
    auto c = check_regex("configure", configure);
    if (auto* e = std::get_if<AdminError>(&c)) return *e;
    auto w = check_regex("write", write);
    if (auto* e = std::get_if<AdminError>(&w)) return *e;
    auto r = check_regex("read", read);
    if (auto* e = std::get_if<AdminError>(&r)) return *e;
    VHost* vh = find_vhost(vhost);
    if (!vh) return not_found("vhost", fmt::format("vhost '{}' does not exist", vhost));
    if (!auth_.find_user(user)) return not_found("user", fmt::format("user '{}' does not exist", user));
    auth_.put_permissions(std::string(user), vh->name(),
                          {std::get<PermissionRegex>(std::move(c)), std::get<PermissionRegex>(std::move(w)),
                           std::get<PermissionRegex>(std::move(r))});
    record_permissions(user, *vh);
    return std::nullopt;
}

AdminStatus Broker::clear_permissions(std::string_view user, std::string_view vhost) {
    VHost* vh = find_vhost(vhost);
    if (!vh) return not_found("vhost", fmt::format("vhost '{}' does not exist", vhost));
    if (!auth_.find_user(user)) return not_found("user", fmt::format("user '{}' does not exist", user));
    auth_.erase_permissions(user, vh->name());
    record_permissions(user, *vh);
    return std::nullopt;
}

AdminStatus Broker::set_topic_permissions(std::string_view user, std::string_view vhost, std::string_view exchange,
                                          std::string_view write, std::string_view read) {
    if (auto e = check_name("exchange", "exchange", exchange, true)) return e;
    // Checked as given and as each check will see it ({username} and {vhost} replaced).
    auto w = check_regex("write", write);
    if (auto* e = std::get_if<AdminError>(&w)) return *e;
    auto r = check_regex("read", read);
    if (auto* e = std::get_if<AdminError>(&r)) return *e;
    VHost* vh = find_vhost(vhost);
    if (!vh) return not_found("vhost", fmt::format("vhost '{}' does not exist", vhost));
    if (!auth_.find_user(user)) return not_found("user", fmt::format("user '{}' does not exist", user));
    auto we = check_regex("write", expand_topic_variables(write, user, vhost));
    if (auto* e = std::get_if<AdminError>(&we)) return *e;
    auto re = check_regex("read", expand_topic_variables(read, user, vhost));
    if (auto* e = std::get_if<AdminError>(&re)) return *e;
    auth_.put_topic_permission(std::string(user), vh->name(),
                               {std::string(exchange), std::string(write), std::string(read),
                                std::get<PermissionRegex>(std::move(we)), std::get<PermissionRegex>(std::move(re))});
    record_topic_permission(user, *vh, exchange);
    return std::nullopt;
}

AdminStatus Broker::clear_topic_permissions(std::string_view user, std::string_view vhost,
                                            std::optional<std::string_view> exchange) {
    VHost* vh = find_vhost(vhost);
    if (!vh) return not_found("vhost", fmt::format("vhost '{}' does not exist", vhost));
    if (!auth_.find_user(user)) return not_found("user", fmt::format("user '{}' does not exist", user));
    std::vector<std::string> cleared;
    Access a = auth_.access(user, vh->name());
    if (a.topics)
        for (const auto& [name, t] : *a.topics)
            if (!exchange || name == *exchange) cleared.push_back(name);
    auth_.erase_topic_permissions(user, vh->name(), exchange);
    for (const std::string& x : cleared) record_topic_permission(user, *vh, x);
    return std::nullopt;
}

// ---- the default user and connections -------------------------------------------------------

void Broker::create_default_user() {
    User u;
    u.name = config_.default_user;
    u.password = hash_password(config_.default_pass);
    u.tags = {"administrator"};
    auth_.put_user(u);
    if (VHost* vh = find_vhost(config_.default_vhost)) {
        auto all = std::get<PermissionRegex>(PermissionRegex::compile(".*"));
        auth_.put_permissions(u.name, vh->name(), {all, all, all});
    }
}

void Broker::force_close_connections(const std::function<bool(const Connection&)>& which, const std::string& text) {
    std::vector<Connection*> all;
    all.reserve(connections_.size());
    for (const auto& [id, c] : connections_) all.push_back(c);
    for (Connection* c : all)
        if (which(*c)) c->force_close(text);
}

std::size_t Broker::connections_in_vhost(const VHost& vhost) const {
    std::size_t n = 0;
    for (const auto& [id, c] : connections_)
        if (c->state() == Connection::State::Open && c->vhost() == &vhost) ++n;
    return n;
}

std::size_t Broker::connections_of_user(std::string_view user) const {
    std::size_t n = 0;
    for (const auto& [id, c] : connections_)
        if (c->state() == Connection::State::Open && c->user() == user) ++n;
    return n;
}

std::size_t Broker::channels_of_user(std::string_view user) const {
    std::size_t n = 0;
    for (const auto& [id, c] : connections_)
        if (c->state() == Connection::State::Open && c->user() == user) n += c->channel_count();
    return n;
}

}  // namespace warren::broker
