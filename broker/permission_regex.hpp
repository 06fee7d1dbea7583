// A permission pattern: a regular expression matched against resource names and routing keys
// as RabbitMQ matches them with Erlang's re (PCRE, bytes, unanchored unless the pattern says
// so; an empty pattern means "^$", nothing). PCRE2 gives the same dialect; std::regex is
// ECMAScript, slower, and recursive. Compiled once; matching needs no allocation.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace warren::broker {

class PermissionRegex {
public:
    PermissionRegex() = default;  // matches nothing
    // The compiled pattern, or why it does not compile (PCRE2's message and offset).
    static std::variant<PermissionRegex, std::string> compile(std::string_view pattern);
    bool matches(std::string_view subject) const;
    const std::string& pattern() const { return pattern_; }

private:
    struct Code;
    std::string pattern_;
    std::shared_ptr<const Code> code_;  // immutable; shared by copies
};

}  // namespace warren::broker
