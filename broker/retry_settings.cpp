// See retry_settings.hpp. Texts follow queue_args.cpp (RabbitMQ's invalid-argument reasons as
// Erlang terms), with a plain sentence where RabbitMQ has no check of its own.
#include "broker/retry_settings.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "broker/rabbit_text.hpp"

namespace warren::broker {

std::string_view retry_type_name(RetryType type) {
    switch (type) {
        case RetryType::Disabled:
            return "disabled";
        case RetryType::All:
            return "all";
        case RetryType::Failed:
            return "failed";
        case RetryType::Returned:
            return "returned";
    }
    return "disabled";
}

namespace {

// An integer in [low, high], or the reason it is not.
std::optional<std::uint64_t> bounded(const protocol::FieldValue& v, std::int64_t low, std::uint64_t high,
                                     std::string& error) {
    auto i = v.as_integer();
    if (!i) {
        error = fmt::format("\"expected integer, got {}\"", rabbit_type_name(v.type()));
        return std::nullopt;
    }
    if (*i < 0 && *i < low) {
        error = fmt::format("{{value_negative,{}}}", *i);
        return std::nullopt;
    }
    if (*i < low) {
        error = fmt::format("{{value_zero,{}}}", *i);
        return std::nullopt;
    }
    if (static_cast<std::uint64_t>(*i) > high) {
        error = fmt::format("{{value_too_large,{}}}", *i);
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(*i);
}

}  // namespace

bool parse_retry_arg(std::string_view name, const protocol::FieldValue& value, RetryArgs& out, std::string& error) {
    if (name == "delayed-retry-type") {
        const std::string* s = value.as_string();
        if (!s) {
            error = fmt::format("{{unacceptable_type,{}}}", rabbit_type_name(value.type()));
        } else if (*s == "disabled") {
            out.type = RetryType::Disabled;
        } else if (*s == "all") {
            out.type = RetryType::All;
        } else if (*s == "failed") {
            out.type = RetryType::Failed;
        } else if (*s == "returned") {
            out.type = RetryType::Returned;
        } else {
            error = fmt::format(
                "\"'{}' is not a valid delayed retry type; it must be one of all, failed, "
                "returned, disabled\"",
                *s);
        }
        return true;
    }
    std::optional<std::uint64_t>* slot = nullptr;
    std::int64_t low = 1;
    std::uint64_t high = max_retry_delay_ms;
    if (name == "delayed-retry-min") {
        slot = &out.min_ms;
    } else if (name == "delayed-retry-max") {
        slot = &out.max_ms;
    } else if (name == "delayed-retry-multiplier") {
        slot = &out.multiplier;
    } else if (name == "delayed-retry-jitter") {
        slot = &out.jitter_percent;
        low = 0;
        high = 100;
    } else {
        return false;
    }
    if (auto v = bounded(value, low, high, error)) *slot = *v;
    return true;
}

std::optional<RetryArgsError> check_retry_args(const RetryArgs& a) {
    if (a.min_ms && a.max_ms && *a.max_ms < *a.min_ms)
        return RetryArgsError{"delayed-retry-max",
                              fmt::format("\"{} is smaller than the minimum delay, {}\"", *a.max_ms, *a.min_ms)};
    return std::nullopt;
}

bool RetrySettings::applies_to(ReturnReason reason) const {
    const bool failed = reason == ReturnReason::Rejected || reason == ReturnReason::ChannelClosed;
    switch (type) {
        case RetryType::Disabled:
            return false;
        case RetryType::All:
            return true;
        case RetryType::Failed:
            return failed;
        case RetryType::Returned:
            return !failed;
    }
    return false;
}

std::uint64_t RetrySettings::backoff_ms(std::uint32_t attempt) const {
    attempt = std::max<std::uint32_t>(attempt, 1);
    const std::uint64_t cap = std::min(max_ms, max_retry_delay_ms);
    std::uint64_t d = min_ms;
    if (!multiplier) {
        // min x attempt, saturating: min and attempt are below 2^32, so the product fits.
        d = min_ms * attempt;
    } else if (*multiplier >= 2) {
        for (std::uint32_t i = 1; i < attempt && d < cap; ++i) d = d > cap / *multiplier ? cap : d * *multiplier;
    }
    return std::min(d, cap);
}

std::uint64_t RetrySettings::delay_ms(std::uint32_t attempt, std::uint64_t random) const {
    const std::uint64_t d = backoff_ms(attempt);
    if (jitter_percent == 0 || d == 0) return d;
    // The most that may come off, then a uniform share of it (d < 2^32, so no overflow).
    const std::uint64_t span = d * jitter_percent / 100;
    return d - (span ? random % (span + 1) : 0);
}

RetrySettings resolve_retry(const RetryArgs& arguments, const RetryArgs* policy) {
    RetryArgs a = arguments;
    if (policy) {
        if (policy->type) a.type = policy->type;
        if (policy->multiplier) a.multiplier = policy->multiplier;
        if (policy->jitter_percent) a.jitter_percent = policy->jitter_percent;
        auto lower = [](std::optional<std::uint64_t> x, std::optional<std::uint64_t> y) {
            return x && y ? std::optional(std::min(*x, *y)) : x ? x : y;
        };
        a.min_ms = lower(a.min_ms, policy->min_ms);
        a.max_ms = lower(a.max_ms, policy->max_ms);
    }
    RetrySettings s;
    // Without a minimum there is no delay to compute: RabbitMQ 4.3 leaves retries off.
    if (!a.min_ms || a.type == RetryType::Disabled) return s;
    s.type = a.type.value_or(RetryType::All);
    s.min_ms = *a.min_ms;
    s.multiplier = a.multiplier;
    s.jitter_percent = a.jitter_percent.value_or(0);
    if (a.max_ms)
        s.max_ms = std::max(*a.max_ms, s.min_ms);
    else if (a.type && !a.multiplier)
        s.max_ms = s.min_ms;  // RabbitMQ 4.3: max defaults to min
    return s;
}

}  // namespace warren::broker
