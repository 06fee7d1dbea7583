// See erlang_hash.hpp. The algorithm is the Erlang runtime's make_hash2 (Bob Jenkins' mix over
// 32-bit words, one constant per kind of term), which Erlang promises never to change;
// tests/mgmt/erlang_hash_test.cpp checks it against values printed by `erl`.
#include "mgmt/erlang_hash.hpp"

#include <bit>
#include <cstring>

namespace warren::mgmt {

namespace {

constexpr std::uint32_t hconst = 0x9e3779b9u;  // the golden ratio
constexpr std::uint32_t hconst_2 = 0x3c6ef372u;
constexpr std::uint32_t hconst_3 = 0xdaa66d2bu;
constexpr std::uint32_t hconst_4 = 0x78dde6e4u;
constexpr std::uint32_t hconst_9 = 0x8ff34781u;
constexpr std::uint32_t hconst_10 = 0x2e2ac13au;
constexpr std::uint32_t hconst_11 = 0xcc623af3u;
constexpr std::uint32_t hconst_12 = 0x6a99b4acu;
constexpr std::uint32_t hconst_13 = 0x08d12e65u;
constexpr std::uint32_t nil_first = 3468870702u;  // [] as the whole term
constexpr std::uint32_t nil_def = 2;              // NIL_DEF, the tag hashed for [] inside a term

void mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
    a -= b;
    a -= c;
    a ^= (c >> 13);
    b -= c;
    b -= a;
    b ^= (a << 8);
    c -= a;
    c -= b;
    c ^= (b >> 13);
    a -= b;
    a -= c;
    a ^= (c >> 12);
    b -= c;
    b -= a;
    b ^= (a << 16);
    c -= a;
    c -= b;
    c ^= (b >> 5);
    a -= b;
    a -= c;
    a ^= (c >> 3);
    b -= c;
    b -= a;
    b ^= (a << 10);
    c -= a;
    c -= b;
    c ^= (b >> 15);
}

std::uint32_t block_hash(const unsigned char* k, std::size_t length, std::uint32_t initval) {
    std::uint32_t a = hconst, b = hconst, c = initval;
    std::size_t len = length;
    auto word = [](const unsigned char* p) {
        return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
               (std::uint32_t{p[3]} << 24);
    };
    while (len >= 12) {
        a += word(k);
        b += word(k + 4);
        c += word(k + 8);
        mix(a, b, c);
        k += 12;
        len -= 12;
    }
    c += static_cast<std::uint32_t>(length);
    switch (len) {  // every case falls through
        case 11:
            c += std::uint32_t{k[10]} << 24;
            [[fallthrough]];
        case 10:
            c += std::uint32_t{k[9]} << 16;
            [[fallthrough]];
        case 9:
            c += std::uint32_t{k[8]} << 8;
            [[fallthrough]];
        case 8:
            b += std::uint32_t{k[7]} << 24;
            [[fallthrough]];
        case 7:
            b += std::uint32_t{k[6]} << 16;
            [[fallthrough]];
        case 6:
            b += std::uint32_t{k[5]} << 8;
            [[fallthrough]];
        case 5:
            b += k[4];
            [[fallthrough]];
        case 4:
            a += std::uint32_t{k[3]} << 24;
            [[fallthrough]];
        case 3:
            a += std::uint32_t{k[2]} << 16;
            [[fallthrough]];
        case 2:
            a += std::uint32_t{k[1]} << 8;
            [[fallthrough]];
        case 1:
            a += k[0];
            break;
        default:
            break;
    }
    mix(a, b, c);
    return c;
}

// The atom table's hash of an atom's name (hashpjw, with the runtime's latin-1 clutch).
std::uint32_t atom_hash(std::string_view name) {
    std::uint32_t h = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(name.data());
    std::size_t len = name.size();
    while (len--) {
        unsigned v = *p++;
        if (len && (v & 0xFE) == 0xC2 && (*p & 0xC0) == 0x80) {
            v = ((v << 6) | (*p & 0x3F)) & 0xFF;
            ++p;
            --len;
        }
        h = (h << 4) + v;
        if (std::uint32_t g = h & 0xf0000000u) {
            h ^= (g >> 24);
            h ^= g;
        }
    }
    return h;
}

struct Hasher {
    std::uint32_t hash = 0;

    void u32_2(std::uint32_t e1, std::uint32_t e2, std::uint32_t k) {
        std::uint32_t a = k + e1, b = k + e2;
        mix(a, b, hash);
    }
    void u32(std::uint32_t e, std::uint32_t k) { u32_2(e, 0, k); }

    void integer(std::int64_t x) {
        // Small integers (28 bits, signed) are hashed as such; larger ones as bignums.
        if (x >= -(std::int64_t{1} << 27) && x < (std::int64_t{1} << 27)) {
            auto y = static_cast<std::int32_t>(x);
            if (y < 0) u32(static_cast<std::uint32_t>(-y), hconst);
            u32(static_cast<std::uint32_t>(y), hconst);
            return;
        }
        const std::uint64_t magnitude = x < 0 ? ~static_cast<std::uint64_t>(x) + 1 : static_cast<std::uint64_t>(x);
        u32_2(static_cast<std::uint32_t>(magnitude), static_cast<std::uint32_t>(magnitude >> 32),
              x < 0 ? hconst_10 : hconst_11);
    }

    void visit(const ErlTerm& t) {
        switch (t.kind) {
            case ErlTerm::Kind::Atom:
                if (hash == 0)
                    hash = atom_hash(t.text);
                else
                    u32(atom_hash(t.text), hconst_3);
                return;
            case ErlTerm::Kind::Integer:
                integer(t.integer);
                return;
            case ErlTerm::Kind::Float: {
                double d = t.number == 0.0 ? 0.0 : t.number;  // -0.0 hashes as 0.0
                std::uint64_t bits = std::bit_cast<std::uint64_t>(d);
                u32_2(static_cast<std::uint32_t>(bits >> 32), static_cast<std::uint32_t>(bits), hconst_12);
                return;
            }
            case ErlTerm::Kind::Binary:
                hash = t.text.empty() ? hconst_13 + hash
                                      : block_hash(reinterpret_cast<const unsigned char*>(t.text.data()), t.text.size(),
                                                   hconst_13 + hash);
                return;
            case ErlTerm::Kind::Tuple:
                u32(static_cast<std::uint32_t>(t.items.size()), hconst_9);
                for (const ErlTerm& e : t.items) visit(e);
                return;
            case ErlTerm::Kind::List:
                list(t.items, 0);
                return;
        }
    }

    static bool is_byte(const ErlTerm& t) {
        return t.kind == ErlTerm::Kind::Integer && t.integer >= 0 && t.integer <= 255;
    }

    // A cons chain from `i`: runs of bytes are packed four to a word (the runtime's string
    // optimisation), the first other element is hashed, then the rest of the chain; [] last.
    void list(const std::vector<ErlTerm>& items, std::size_t i) {
        while (true) {
            int c = 0;
            std::uint32_t s = 0;
            while (i < items.size() && is_byte(items[i])) {
                s = (s << 8) + static_cast<std::uint32_t>(items[i].integer);
                if (c == 3) {
                    u32(s, hconst_4);
                    c = 0;
                    s = 0;
                } else {
                    ++c;
                }
                ++i;
            }
            if (c > 0) u32(s, hconst_4);
            if (i == items.size()) break;
            visit(items[i]);
            ++i;
        }
        if (hash == 0)
            hash = nil_first;
        else
            u32(nil_def, hconst_2);
    }
};

ErlTerm value_term(const protocol::FieldValue& v);

ErlTerm typed(char type, ErlTerm value) {
    return ErlTerm::tuple({ErlTerm::atom(std::string(protocol::field_type_name(type))), std::move(value)});
}

ErlTerm value_term(const protocol::FieldValue& v) {
    using namespace protocol;
    return std::visit(
        [&](const auto& x) -> ErlTerm {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Void>)
                return ErlTerm::atom("undefined");
            else if constexpr (std::is_same_v<T, bool>)
                return ErlTerm::atom(x ? "true" : "false");
            else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
                return ErlTerm::float_of(static_cast<double>(x));
            else if constexpr (std::is_same_v<T, Decimal>)
                return ErlTerm::tuple({ErlTerm::integer_of(x.scale), ErlTerm::integer_of(x.value)});
            else if constexpr (std::is_same_v<T, std::string>)
                return ErlTerm::binary(x);
            else if constexpr (std::is_same_v<T, ByteArray>)
                return ErlTerm::binary(x.bytes);
            else if constexpr (std::is_same_v<T, Timestamp>)
                return ErlTerm::integer_of(static_cast<std::int64_t>(x.seconds));
            else if constexpr (std::is_same_v<T, FieldArray>) {
                std::vector<ErlTerm> items;
                for (const FieldValue& item : x.items) items.push_back(typed(item.type(), value_term(item)));
                return ErlTerm::list(std::move(items));
            } else if constexpr (std::is_same_v<T, FieldTable>)
                return table_term(x);
            else
                return ErlTerm::integer_of(static_cast<std::int64_t>(x));
        },
        v.v);
}

std::string base64url(std::uint32_t v) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    // Four bytes: six characters, no padding (rabbit_misc:base64url strips it).
    std::string out;
    out += alphabet[b[0] >> 2];
    out += alphabet[((b[0] & 3) << 4) | (b[1] >> 4)];
    out += alphabet[((b[1] & 15) << 2) | (b[2] >> 6)];
    out += alphabet[b[2] & 63];
    out += alphabet[b[3] >> 2];
    out += alphabet[(b[3] & 3) << 4];
    return out;
}

// rabbit_http_util:quote_plus, then "~" escaped (it separates the key from the hash).
std::string quote_binding(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
            c == '_') {
            out += static_cast<char>(c);
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace

std::uint32_t phash2(const ErlTerm& term) {
    Hasher h;
    h.visit(term);
    return h.hash;
}

ErlTerm table_term(const protocol::FieldTable& table) {
    std::vector<ErlTerm> entries;
    for (const auto& e : table.entries)
        entries.push_back(ErlTerm::tuple({ErlTerm::binary(e.key),
                                          ErlTerm::atom(std::string(protocol::field_type_name(e.value.type()))),
                                          value_term(e.value)}));
    return ErlTerm::list(std::move(entries));
}

std::string properties_key(std::string_view routing_key, const protocol::FieldTable& arguments) {
    if (arguments.empty()) return routing_key.empty() ? std::string("~") : quote_binding(routing_key);
    return quote_binding(routing_key) + "~" + base64url(phash2(table_term(arguments)));
}

}  // namespace warren::mgmt
