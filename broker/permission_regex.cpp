// See permission_regex.hpp.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "broker/permission_regex.hpp"

#include <fmt/format.h>
#include <pcre2.h>

#include <new>

namespace warren::broker {

struct PermissionRegex::Code {
    pcre2_code* code = nullptr;
    explicit Code(pcre2_code* c) : code(c) {}
    ~Code() { pcre2_code_free(code); }
    Code(const Code&) = delete;
    Code& operator=(const Code&) = delete;
};

namespace {
// One match-data block for the whole (single) loop thread: a yes/no match needs one pair.
pcre2_match_data* match_data() {
    thread_local std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
    if (!data) throw std::bad_alloc();
    return data.get();
}
}  // namespace

std::variant<PermissionRegex, std::string> PermissionRegex::compile(std::string_view pattern) {
    // rabbit_auth_backend_internal: an empty permission is "^$".
    std::string_view effective = pattern.empty() ? std::string_view("^$") : pattern;
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(effective.data()), effective.size(), 0, &error, &offset, nullptr);
    if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        return fmt::format("invalid regular expression '{}': {} at offset {}", pattern,
                           reinterpret_cast<const char*>(message), offset);
    }
    PermissionRegex r;
    r.pattern_ = std::string(pattern);
    r.code_ = std::make_shared<const Code>(code);
    return r;
}

bool PermissionRegex::matches(std::string_view subject) const {
    if (!code_) return false;
    int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, match_data(),
                         nullptr);
    // No match, and errors (a match limit hit by a pathological pattern): refused.
    return rc >= 0;
}

}  // namespace warren::broker
