// The one generic encoder and decoder for method arguments. Each method struct lists its
// fields (fields()), and the type of each field picks its wire encoding. Runs of Bit fields
// share one octet, least significant bit first, as the spec requires.
#pragma once

#include <cstdint>
#include <tuple>
#include <type_traits>

#include "protocol/reader.hpp"
#include "protocol/table_view.hpp"
#include "protocol/utf8.hpp"
#include "protocol/wire_types.hpp"
#include "protocol/writer.hpp"

namespace warren::protocol {

namespace detail {

struct BitState {
    std::uint8_t octet = 0;
    int used = 8;  // 8 means "no octet open"
    std::size_t at = 0;
};

template <class T>
void read_field(Reader& r, BitState& bits, T& field) {
    if constexpr (std::is_same_v<T, Bit>) {
        if (bits.used == 8) {
            bits.octet = r.u8();
            bits.used = 0;
        }
        field = Bit{((bits.octet >> bits.used) & 1) != 0};
        ++bits.used;
        return;
    } else {
        bits.used = 8;
        if constexpr (std::is_same_v<T, std::uint8_t>) {
            field = r.u8();
        } else if constexpr (std::is_same_v<T, std::uint16_t>) {
            field = r.u16();
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
            field = r.u32();
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
            field = r.u64();
        } else if constexpr (std::is_same_v<T, ShortStr>) {
            field = ShortStr{r.shortstr()};
            if (r.ok() && !is_valid_utf8(field.value)) r.fail_utf8();
        } else if constexpr (std::is_same_v<T, LongStr>) {
            field = LongStr{r.longstr()};
        } else if constexpr (std::is_same_v<T, TableView>) {
            std::uint32_t n = r.u32();
            auto body = r.bytes(n);
            if (!r.ok()) return;
            auto table = TableView::parse(body);
            if (!table) {
                r.fail();
                return;
            }
            field = *table;
        } else {
            static_assert(sizeof(T) == 0, "no wire encoding for this field type");
        }
    }
}

template <class T>
void write_field(Writer& w, BitState& bits, const T& field) {
    if constexpr (std::is_same_v<T, Bit>) {
        if (bits.used == 8) {
            bits.at = w.size();
            w.u8(0);
            bits.used = 0;
        }
        if (field.value) {
            std::byte& b = w.buffer().data()[bits.at];
            b |= std::byte(1u << bits.used);
        }
        ++bits.used;
        return;
    } else {
        bits.used = 8;
        if constexpr (std::is_same_v<T, std::uint8_t>) {
            w.u8(field);
        } else if constexpr (std::is_same_v<T, std::uint16_t>) {
            w.u16(field);
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
            w.u32(field);
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
            w.u64(field);
        } else if constexpr (std::is_same_v<T, ShortStr>) {
            w.shortstr(field.value);
        } else if constexpr (std::is_same_v<T, LongStr>) {
            w.longstr(field.value);
        } else if constexpr (std::is_same_v<T, TableView>) {
            w.u32(static_cast<std::uint32_t>(field.bytes().size()));
            w.bytes(field.bytes());
        } else {
            static_assert(sizeof(T) == 0, "no wire encoding for this field type");
        }
    }
}

}  // namespace detail

// Decodes the arguments of M from r. Check r.ok() and r.at_end() afterwards.
template <class M>
void decode_fields(Reader& r, M& m) {
    detail::BitState bits;
    std::apply([&](auto&... field) { (detail::read_field(r, bits, field), ...); }, M::fields(m));
}

template <class M>
void encode_fields(Writer& w, const M& m) {
    detail::BitState bits;
    std::apply([&](const auto&... field) { (detail::write_field(w, bits, field), ...); }, M::fields(m));
}

// Class id, method id, arguments: the payload of a method frame.
template <class M>
void encode_method(Writer& w, const M& m) {
    w.u16(M::id.class_id);
    w.u16(M::id.method_id);
    encode_fields(w, m);
}

}  // namespace warren::protocol
