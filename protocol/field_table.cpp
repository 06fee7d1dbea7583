// Field tables: validation of wire bytes, conversion to owned values, and encoding.
#include <algorithm>

#include "protocol/table_view.hpp"
#include "protocol/writer.hpp"

namespace warren::protocol {

// ---- owned tables -------------------------------------------------------------------------

bool FieldArray::operator==(const FieldArray& other) const { return items == other.items; }

bool FieldTable::operator==(const FieldTable& other) const { return entries == other.entries; }

const FieldValue* FieldTable::find(std::string_view key) const {
    for (const auto& e : entries)
        if (e.key == key) return &e.value;
    return nullptr;
}

FieldValue* FieldTable::find(std::string_view key) {
    for (auto& e : entries)
        if (e.key == key) return &e.value;
    return nullptr;
}

void FieldTable::set(std::string key, FieldValue value) {
    if (FieldValue* existing = find(key)) {
        *existing = std::move(value);
        return;
    }
    entries.push_back(FieldEntry{std::move(key), std::move(value)});
}

bool FieldTable::erase(std::string_view key) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const FieldEntry& e) { return e.key == key; });
    if (it == entries.end()) return false;
    entries.erase(it);
    return true;
}

char FieldValue::type() const {
    static constexpr char letters[] = {
        field_type::void_value, field_type::boolean,   field_type::int8,        field_type::uint8,
        field_type::int16,      field_type::uint16,    field_type::int32,       field_type::uint32,
        field_type::int64,      field_type::float32,   field_type::float64,     field_type::decimal,
        field_type::long_string, field_type::byte_array, field_type::timestamp, field_type::array,
        field_type::table};
    static_assert(sizeof letters == std::variant_size_v<Variant>);
    return letters[v.index()];
}

std::optional<std::int64_t> FieldValue::as_integer() const {
    return std::visit(
        [](const auto& x) -> std::optional<std::int64_t> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
                return static_cast<std::int64_t>(x);
            else
                return std::nullopt;
        },
        v);
}

std::string_view field_type_name(char type) {
    switch (type) {
    case field_type::boolean: return "bool";
    case field_type::int8: return "byte";
    case field_type::uint8: return "unsignedbyte";
    case field_type::int16: return "short";
    case field_type::uint16: return "unsignedshort";
    case field_type::int32: return "signedint";
    case field_type::uint32: return "unsignedint";
    case field_type::int64:
    case field_type::int64_alt: return "long";
    case field_type::float32: return "float";
    case field_type::float64: return "double";
    case field_type::decimal: return "decimal";
    case field_type::long_string: return "longstr";
    case field_type::byte_array: return "binary";
    case field_type::timestamp: return "timestamp";
    case field_type::array: return "array";
    case field_type::table: return "table";
    case field_type::void_value: return "void";
    default: return "unknown";
    }
}

// ---- encoding -----------------------------------------------------------------------------

namespace {

void encode_value(Writer& w, const FieldValue& value);

void encode_entries(Writer& w, const FieldTable& table) {
    for (const auto& e : table.entries) {
        w.shortstr(e.key);
        encode_value(w, e.value);
    }
}

void encode_value(Writer& w, const FieldValue& value) {
    w.u8(static_cast<std::uint8_t>(value.type()));
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Void>) {
            } else if constexpr (std::is_same_v<T, bool>) {
                w.u8(x ? 1 : 0);
            } else if constexpr (std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t>) {
                w.u8(static_cast<std::uint8_t>(x));
            } else if constexpr (std::is_same_v<T, std::int16_t> || std::is_same_v<T, std::uint16_t>) {
                w.u16(static_cast<std::uint16_t>(x));
            } else if constexpr (std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t>) {
                w.u32(static_cast<std::uint32_t>(x));
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                w.u64(static_cast<std::uint64_t>(x));
            } else if constexpr (std::is_same_v<T, float>) {
                w.f32(x);
            } else if constexpr (std::is_same_v<T, double>) {
                w.f64(x);
            } else if constexpr (std::is_same_v<T, Decimal>) {
                w.u8(x.scale);
                w.u32(x.value);
            } else if constexpr (std::is_same_v<T, std::string>) {
                w.longstr(x);
            } else if constexpr (std::is_same_v<T, ByteArray>) {
                w.longstr(x.bytes);
            } else if constexpr (std::is_same_v<T, Timestamp>) {
                w.u64(x.seconds);
            } else if constexpr (std::is_same_v<T, FieldArray>) {
                std::size_t at = w.reserve_u32();
                for (const auto& item : x.items) encode_value(w, item);
                w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
            } else if constexpr (std::is_same_v<T, FieldTable>) {
                std::size_t at = w.reserve_u32();
                encode_entries(w, x);
                w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
            }
        },
        value.v);
}

}  // namespace

void encode_table(ByteBuffer& out, const FieldTable& table) {
    Writer w(out);
    std::size_t at = w.reserve_u32();
    encode_entries(w, table);
    w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
}

void encode_array(ByteBuffer& out, const FieldArray& array) {
    Writer w(out);
    std::size_t at = w.reserve_u32();
    for (const auto& item : array.items) encode_value(w, item);
    w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
}

ByteBuffer encode_table_body(const FieldTable& table) {
    ByteBuffer out;
    Writer w(out);
    encode_entries(w, table);
    return out;
}

// ---- validation ---------------------------------------------------------------------------

bool skip_field_value(Reader& r, char type, int depth) {
    switch (type) {
    case field_type::void_value:
        return true;
    case field_type::boolean:
    case field_type::int8:
    case field_type::uint8:
        r.u8();
        return r.ok();
    case field_type::int16:
    case field_type::uint16:
        r.u16();
        return r.ok();
    case field_type::int32:
    case field_type::uint32:
    case field_type::float32:
        r.u32();
        return r.ok();
    case field_type::int64:
    case field_type::int64_alt:
    case field_type::float64:
    case field_type::timestamp:
        r.u64();
        return r.ok();
    case field_type::decimal:
        r.bytes(5);
        return r.ok();
    case field_type::long_string:
    case field_type::byte_array:
        r.longstr();
        return r.ok();
    case field_type::table: {
        std::uint32_t n = r.u32();
        auto body = r.bytes(n);
        if (!r.ok() || depth + 1 > max_table_depth) return false;
        return TableView::parse(body, depth + 1).has_value();
    }
    case field_type::array: {
        std::uint32_t n = r.u32();
        auto body = r.bytes(n);
        if (!r.ok() || depth + 1 > max_table_depth) return false;
        Reader items(body);
        while (items.remaining() > 0) {
            char t = static_cast<char>(items.u8());
            if (!skip_field_value(items, t, depth + 1)) return false;
        }
        return items.ok();
    }
    default:
        return false;
    }
}

std::optional<TableView> TableView::parse(std::span<const std::byte> body, int depth) {
    Reader r(body);
    while (r.remaining() > 0) {
        r.shortstr();
        char t = static_cast<char>(r.u8());
        if (!r.ok() || !skip_field_value(r, t, depth)) return std::nullopt;
    }
    if (!r.ok()) return std::nullopt;
    return TableView(body);
}

FieldRef TableView::read_value(Reader& r) {
    char t = static_cast<char>(r.u8());
    std::size_t start = r.position();
    Reader probe = r;
    skip_field_value(probe, t, 0);
    std::size_t n = probe.position() - start;
    return FieldRef(t, r.bytes(n));
}

std::optional<FieldRef> TableView::find(std::string_view key) const {
    Reader r(body_);
    while (r.remaining() > 0) {
        std::string_view k = r.shortstr();
        FieldRef value = read_value(r);
        if (k == key) return value;
    }
    return std::nullopt;
}

// Duplicate keys stay, in wire order, as in RabbitMQ's decoded list: FieldTable::find then sees
// the first, like TableView::find and rabbit_misc:table_lookup, and re-encoding gives the same bytes.
FieldTable TableView::to_table() const {
    FieldTable table;
    for_each([&](std::string_view key, FieldRef value) {
        table.entries.push_back(FieldEntry{std::string(key), value.to_value()});
    });
    return table;
}

FieldArray ArrayView::to_array() const {
    FieldArray array;
    for_each([&](FieldRef value) { array.items.push_back(value.to_value()); });
    return array;
}

// ---- one value ----------------------------------------------------------------------------

bool FieldRef::is_integer() const {
    switch (type_) {
    case field_type::int8:
    case field_type::uint8:
    case field_type::int16:
    case field_type::uint16:
    case field_type::int32:
    case field_type::uint32:
    case field_type::int64:
    case field_type::int64_alt:
        return true;
    default:
        return false;
    }
}

std::optional<std::int64_t> FieldRef::as_integer() const {
    Reader r(payload_);
    switch (type_) {
    case field_type::int8: return static_cast<std::int8_t>(r.u8());
    case field_type::uint8: return r.u8();
    case field_type::int16: return static_cast<std::int16_t>(r.u16());
    case field_type::uint16: return r.u16();
    case field_type::int32: return static_cast<std::int32_t>(r.u32());
    case field_type::uint32: return r.u32();
    case field_type::int64:
    case field_type::int64_alt: return static_cast<std::int64_t>(r.u64());
    default: return std::nullopt;
    }
}

std::optional<std::string_view> FieldRef::as_string() const {
    if (type_ != field_type::long_string) return std::nullopt;
    Reader r(payload_);
    return r.longstr();
}

std::optional<bool> FieldRef::as_bool() const {
    if (type_ != field_type::boolean) return std::nullopt;
    Reader r(payload_);
    return r.u8() != 0;
}

TableView FieldRef::as_table() const {
    if (type_ != field_type::table) return {};
    Reader r(payload_);
    std::uint32_t n = r.u32();
    return TableView::trusted(r.bytes(n));
}

ArrayView FieldRef::as_array() const {
    if (type_ != field_type::array) return {};
    Reader r(payload_);
    std::uint32_t n = r.u32();
    return ArrayView::trusted(r.bytes(n));
}

FieldValue FieldRef::to_value() const {
    Reader r(payload_);
    switch (type_) {
    case field_type::void_value: return Void{};
    case field_type::boolean: return r.u8() != 0;
    case field_type::int8: return static_cast<std::int8_t>(r.u8());
    case field_type::uint8: return r.u8();
    case field_type::int16: return static_cast<std::int16_t>(r.u16());
    case field_type::uint16: return r.u16();
    case field_type::int32: return static_cast<std::int32_t>(r.u32());
    case field_type::uint32: return r.u32();
    case field_type::int64:
    case field_type::int64_alt: return static_cast<std::int64_t>(r.u64());
    case field_type::float32: return r.f32();
    case field_type::float64: return r.f64();
    case field_type::decimal: {
        Decimal d;
        d.scale = r.u8();
        d.value = r.u32();
        return d;
    }
    case field_type::long_string: return std::string(r.longstr());
    case field_type::byte_array: return ByteArray{std::string(r.longstr())};
    case field_type::timestamp: return Timestamp{r.u64()};
    case field_type::table: return as_table().to_table();
    case field_type::array: return as_array().to_array();
    default: return Void{};
    }
}

}  // namespace warren::protocol
