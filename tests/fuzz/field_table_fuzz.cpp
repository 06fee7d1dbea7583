// libFuzzer target for field tables. The input is taken twice: as a table body for
// TableView::parse, and as one value (first byte the type letter) for skip_field_value.
// Whatever validates must convert to an owned FieldTable/FieldValue and re-encode to the very
// same bytes; the only exceptions are RabbitMQ's own normalisations (a boolean octet other than
// 0 or 1 becomes 1, 'L' becomes 'l'), which must still keep the size and be stable.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <string_view>

#include "protocol/field_table.hpp"
#include "protocol/table_view.hpp"

using namespace warren::protocol;

namespace {

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "field table fuzzer: invariant failed: %s\n", what);
    std::abort();
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool is_canonical(TableView table);

// Reads the value through every accessor and says whether re-encoding it can give its bytes back.
bool is_canonical(FieldRef value) {
    require(value.is_integer() == value.as_integer().has_value(), "is_integer agrees with as_integer");
    require(value.as_string().has_value() == (value.type() == field_type::long_string), "as_string only for 'S'");
    require(value.as_bool().has_value() == (value.type() == field_type::boolean), "as_bool only for 't'");
    switch (value.type()) {
        case field_type::boolean:
            return std::to_integer<unsigned>(value.payload()[0]) <= 1;
        case field_type::int64_alt:
            return false;
        case field_type::table:
            return is_canonical(value.as_table());
        case field_type::array: {
            bool canonical = true;
            value.as_array().for_each([&](FieldRef item) { canonical = is_canonical(item) && canonical; });
            return canonical;
        }
        default:
            require(value.as_table().empty() && value.as_array().bytes().empty(), "as_table/as_array only for F/A");
            return true;
    }
}

bool is_canonical(TableView table) {
    bool canonical = true;
    std::map<std::string_view, const std::byte*> first;
    table.for_each([&](std::string_view key, FieldRef value) {
        first.emplace(key, value.payload().data());
        canonical = is_canonical(value) && canonical;
    });
    // Lookups answer with the first of duplicate keys, as rabbit_misc:table_lookup does.
    for (auto [key, payload] : first) {
        auto found = table.find(key);
        require(found.has_value() && found->payload().data() == payload, "find returns the first entry");
    }
    return canonical;
}

void check_table(std::span<const std::byte> body) {
    auto view = TableView::parse(body);
    if (!view) return;
    bool canonical = is_canonical(*view);
    FieldTable owned = view->to_table();
    ByteBuffer again = encode_table_body(owned);
    if (canonical) {
        require(same_bytes(again.span(), body), "table re-encodes to the same bytes");
        return;
    }
    require(again.size() == body.size(), "normalised table keeps its size");
    auto reparsed = TableView::parse(again.span());
    require(reparsed.has_value(), "normalised table parses");
    require(is_canonical(*reparsed), "normalised table is canonical");
    require(same_bytes(encode_table_body(reparsed->to_table()).span(), again.span()), "normalisation is stable");
}

void check_value(char type, std::span<const std::byte> bytes) {
    Reader r(bytes);
    if (!skip_field_value(r, type, 0)) return;
    require(r.ok(), "a skipped value leaves the reader ok");
    FieldRef value(type, bytes.first(r.position()));
    bool canonical = is_canonical(value);

    ByteBuffer again;
    encode_array(again, FieldArray{{value.to_value()}});
    auto items = again.span().subspan(4);  // the array's length, then type letter and payload
    require(items.size() == 1 + value.payload().size(), "value re-encodes to its size");
    if (canonical) {
        require(std::to_integer<char>(items[0]) == type, "value keeps its type letter");
        require(same_bytes(items.subspan(1), value.payload()), "value re-encodes to the same bytes");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    check_table(in);
    if (size > 0) check_value(static_cast<char>(data[0]), in.subspan(1));
    return 0;
}
