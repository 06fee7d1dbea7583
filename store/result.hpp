// How the store reports failures: an Error is an error code plus a message naming the file and
// the operation; Result<T> holds a value or an Error, Status is success or an Error. The store
// never throws on bad bytes or failed I/O; exceptions are for bugs (a broken precondition).
#pragma once

#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace warren::store {

struct Error {
    std::error_code code;
    std::string message;  // e.g. "pwritev /data/vhost/00000003.seg: No space left on device"
};

inline Error make_error(std::errc e, std::string message) {
    return {std::make_error_code(e), std::move(message)};
}
inline Error make_error(std::error_code e, std::string message) {
    return {e, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Error error) : error_(std::move(error)) {}

    bool ok() const { return !error_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *error_; }
    std::error_code code() const { return error_ ? error_->code : std::error_code{}; }

private:
    std::optional<Error> error_;
};

}  // namespace warren::store
