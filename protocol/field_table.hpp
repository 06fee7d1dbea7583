// Owned field tables and arrays: what the broker stores or builds (queue arguments, x-death).
// Values use RabbitMQ's field-type letters on the wire (see field_type below).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/byte_buffer.hpp"

namespace warren::protocol {

// RabbitMQ's field-value type letters (rabbit_binary_parser / rabbit_binary_generator).
namespace field_type {
inline constexpr char boolean = 't';
inline constexpr char int8 = 'b';
inline constexpr char uint8 = 'B';
inline constexpr char int16 = 's';
inline constexpr char uint16 = 'u';
inline constexpr char int32 = 'I';
inline constexpr char uint32 = 'i';
inline constexpr char int64 = 'l';
// Read only: RabbitMQ decodes 'L' as a signed 64-bit integer too, and writes it back as 'l'.
inline constexpr char int64_alt = 'L';
inline constexpr char float32 = 'f';
inline constexpr char float64 = 'd';
inline constexpr char decimal = 'D';
inline constexpr char long_string = 'S';
inline constexpr char byte_array = 'x';
inline constexpr char timestamp = 'T';
inline constexpr char array = 'A';
inline constexpr char table = 'F';
inline constexpr char void_value = 'V';
}  // namespace field_type

// RabbitMQ's name for a field type, as its error texts print it: 'I' -> "signedint",
// 'S' -> "longstr", 'x' -> "binary"; "unknown" for a letter it does not know.
std::string_view field_type_name(char type);

struct Void {
    friend bool operator==(Void, Void) = default;
};
struct Decimal {
    std::uint8_t scale = 0;
    std::uint32_t value = 0;
    friend bool operator==(Decimal, Decimal) = default;
};
struct Timestamp {
    std::uint64_t seconds = 0;
    friend bool operator==(Timestamp, Timestamp) = default;
};
struct ByteArray {
    std::string bytes;
    friend bool operator==(const ByteArray&, const ByteArray&) = default;
};

struct FieldValue;
struct FieldEntry;

struct FieldArray {
    std::vector<FieldValue> items;
    bool operator==(const FieldArray& other) const;
};

struct FieldTable {
    std::vector<FieldEntry> entries;  // in wire order; keys are unique in what we build

    bool empty() const;
    std::size_t size() const;
    const FieldValue* find(std::string_view key) const;
    FieldValue* find(std::string_view key);
    // Replaces the value of an existing key in place, or appends a new entry.
    void set(std::string key, FieldValue value);
    bool erase(std::string_view key);
    bool operator==(const FieldTable& other) const;
};

struct FieldValue {
    using Variant = std::variant<Void, bool, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                                 std::int32_t, std::uint32_t, std::int64_t, float, double, Decimal,
                                 std::string, ByteArray, Timestamp, FieldArray, FieldTable>;
    Variant v;

    FieldValue() = default;
    template <class T>
        requires std::is_constructible_v<Variant, T&&> &&
                 (!std::is_same_v<std::remove_cvref_t<T>, FieldValue>) &&
                 (!std::is_same_v<std::remove_cvref_t<T>, const char*>)
    FieldValue(T&& value) : v(std::forward<T>(value)) {}
    FieldValue(const char* s);

    char type() const;  // the wire type letter
    template <class T>
    const T* get_if() const { return std::get_if<T>(&v); }
    template <class T>
    bool is() const { return std::holds_alternative<T>(v); }

    // Any integer type, as RabbitMQ's type_class 'int'.
    std::optional<std::int64_t> as_integer() const;
    const std::string* as_string() const { return std::get_if<std::string>(&v); }

    bool operator==(const FieldValue& other) const { return v == other.v; }
};

struct FieldEntry {
    std::string key;
    FieldValue value;
    bool operator==(const FieldEntry& other) const = default;
};

// Defined here, where FieldEntry is complete: clang instantiates vector<FieldEntry> members
// (size, the destructor a variant constructor needs) at the end of the class that uses them.
inline bool FieldTable::empty() const { return entries.empty(); }
inline std::size_t FieldTable::size() const { return entries.size(); }
inline FieldValue::FieldValue(const char* s) : v(std::string(s)) {}

// Encoding: the table's 32-bit length followed by its entries.
void encode_table(ByteBuffer& out, const FieldTable& table);
void encode_array(ByteBuffer& out, const FieldArray& array);
// Just the entries, without the length prefix (what a TableView holds).
ByteBuffer encode_table_body(const FieldTable& table);

}  // namespace warren::protocol
