// Field tables as wire bytes. A TableView is validated once when a method is decoded
// (types, lengths, nesting depth); lookups then walk the bytes without allocating.
// A view points into the read buffer and is valid only during the handler call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/field_table.hpp"
#include "protocol/reader.hpp"

namespace warren::protocol {

class TableView;
class ArrayView;

// Deepest nesting of tables and arrays accepted from a peer.
inline constexpr int max_table_depth = 64;

// One field value inside validated bytes: its type letter and its encoded payload.
class FieldRef {
public:
    FieldRef(char type, std::span<const std::byte> payload) : type_(type), payload_(payload) {}

    char type() const { return type_; }
    std::span<const std::byte> payload() const { return payload_; }

    bool is_integer() const;
    bool is_string() const { return type_ == field_type::long_string; }
    std::optional<std::int64_t> as_integer() const;
    std::optional<std::string_view> as_string() const;  // 'S' only
    std::optional<bool> as_bool() const;
    TableView as_table() const;  // 'F' only; empty otherwise
    ArrayView as_array() const;  // 'A' only; empty otherwise

    FieldValue to_value() const;

private:
    char type_;
    std::span<const std::byte> payload_;
};

class TableView {
public:
    TableView() = default;

    // Checks that `body` (the entries, without the length prefix) is a well-formed table.
    static std::optional<TableView> parse(std::span<const std::byte> body, int depth = 0);
    // For bytes we produced ourselves (encode_table_body) or already validated.
    static TableView trusted(std::span<const std::byte> body) { return TableView(body); }

    std::span<const std::byte> bytes() const { return body_; }
    bool empty() const { return body_.empty(); }

    std::optional<FieldRef> find(std::string_view key) const;

    // Calls f(std::string_view key, FieldRef value) for each entry in wire order.
    template <class F>
    void for_each(F&& f) const {
        Reader r(body_);
        while (r.remaining() > 0) {
            std::string_view key = r.shortstr();
            FieldRef value = read_value(r);
            f(key, value);
        }
    }

    FieldTable to_table() const;

    // Reads one (already validated) value: its type letter and payload.
    static FieldRef read_value(Reader& r);

private:
    explicit TableView(std::span<const std::byte> body) : body_(body) {}
    std::span<const std::byte> body_;
};

class ArrayView {
public:
    ArrayView() = default;
    static ArrayView trusted(std::span<const std::byte> body) { return ArrayView(body); }
    std::span<const std::byte> bytes() const { return body_; }

    template <class F>
    void for_each(F&& f) const {
        Reader r(body_);
        while (r.remaining() > 0) f(TableView::read_value(r));
    }
    FieldArray to_array() const;

private:
    explicit ArrayView(std::span<const std::byte> body) : body_(body) {}
    std::span<const std::byte> body_;
};

// Validates one field value's bytes (type letter already read) and skips over it.
bool skip_field_value(Reader& r, char type, int depth);

}  // namespace warren::protocol
