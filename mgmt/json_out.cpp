// See json_out.hpp.
#include "mgmt/json_out.hpp"

#include <fmt/format.h>

#include <cmath>

namespace warren::mgmt {

JsonOut::JsonOut(std::string& out, const std::vector<std::string>* columns, const std::string* capture,
                 nlohmann::json* captured)
    : out_(out),
      columns_(columns && !columns->empty() ? columns : nullptr),
      capture_(capture && !capture->empty() ? capture : nullptr),
      captured_(captured) {}

void JsonOut::begin() {
    out_ += '{';
    frames_.push_back(Frame{0, columns_ == nullptr, false});
}

void JsonOut::end() {
    out_ += '}';
    frames_.pop_back();
}

bool JsonOut::selected(std::string_view k, bool leaf, bool& all) {
    const Frame& f = frames_.back();
    all = f.all;
    if (f.skip) return false;
    if (f.all) return true;
    // The field's dotted path: selected if a column names it or an object above it, and an
    // object is opened when a column names something inside it.
    std::string path = path_.empty() ? std::string(k) : path_ + "." + std::string(k);
    for (const std::string& c : *columns_) {
        if (c == path) {
            all = true;
            return true;
        }
        if (!leaf && c.size() > path.size() && c.compare(0, path.size(), path) == 0 && c[path.size()] == '.')
            return true;
    }
    return false;
}

void JsonOut::key(std::string_view k) {
    Frame& f = frames_.back();
    if (!f.first) out_ += ',';
    f.first = false;
    escape(out_, k);
    out_ += ':';
}

namespace {
bool path_is(const std::string& path, std::string_view k, const std::string& target) {
    if (path.empty()) return target == k;
    return target.size() == path.size() + 1 + k.size() && target.compare(0, path.size(), path) == 0 &&
           target[path.size()] == '.' && std::string_view(target).substr(path.size() + 1) == k;
}
}  // namespace

#define WARREN_CAPTURE(k, expr) \
    if (capture_ && captured_ && path_is(path_, k, *capture_)) *captured_ = (expr)

void JsonOut::field(std::string_view k, std::string_view v) {
    WARREN_CAPTURE(k, std::string(v));
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    escape(out_, v);
}

void JsonOut::field(std::string_view k, bool v) {
    WARREN_CAPTURE(k, v);
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    out_ += v ? "true" : "false";
}

void JsonOut::field(std::string_view k, std::int64_t v) {
    WARREN_CAPTURE(k, v);
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    fmt::format_to(std::back_inserter(out_), "{}", v);
}

void JsonOut::field(std::string_view k, std::uint64_t v) {
    WARREN_CAPTURE(k, v);
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    fmt::format_to(std::back_inserter(out_), "{}", v);
}

void JsonOut::field(std::string_view k, double v) {
    WARREN_CAPTURE(k, v);
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    number(out_, v);
}

void JsonOut::null(std::string_view k) {
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    out_ += "null";
}

void JsonOut::raw(std::string_view k, std::string_view json_text) {
    bool all = false;
    if (!selected(k, true, all)) return;
    key(k);
    out_ += json_text;
}

void JsonOut::object(std::string_view k) {
    bool all = false;
    const bool sel = selected(k, false, all);
    const std::size_t len = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += k;
    if (sel) {
        key(k);
        out_ += '{';
    }
    frames_.push_back(Frame{len, all, !sel});
}

void JsonOut::array(std::string_view k) {
    bool all = false;
    const bool sel = selected(k, true, all);
    const std::size_t len = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += k;
    if (sel) {
        key(k);
        out_ += '[';
    }
    frames_.push_back(Frame{len, true, !sel, true, true});
}

void JsonOut::close() {
    const Frame f = frames_.back();
    frames_.pop_back();
    path_.resize(f.path_len);
    if (!f.skip) out_ += f.is_array ? ']' : '}';
}

void JsonOut::rate(std::string_view k, double v) {
    bool all = false;
    if (!selected(k, false, all)) return;
    key(k);
    out_ += "{\"rate\":";
    number(out_, v);
    out_ += '}';
}

void JsonOut::item(std::string_view v) {
    Frame& f = frames_.back();
    if (f.skip) return;
    if (!f.first) out_ += ',';
    f.first = false;
    escape(out_, v);
}

void JsonOut::item(std::int64_t v) {
    Frame& f = frames_.back();
    if (f.skip) return;
    if (!f.first) out_ += ',';
    f.first = false;
    fmt::format_to(std::back_inserter(out_), "{}", v);
}

void JsonOut::item(bool v) {
    Frame& f = frames_.back();
    if (f.skip) return;
    if (!f.first) out_ += ',';
    f.first = false;
    out_ += v ? "true" : "false";
}

void JsonOut::value(const protocol::FieldValue& v) {
    using namespace protocol;
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Void>) {
                out_ += "null";
            } else if constexpr (std::is_same_v<T, bool>) {
                out_ += x ? "true" : "false";
            } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
                number(out_, static_cast<double>(x));
            } else if constexpr (std::is_same_v<T, Decimal>) {
                double d = x.value;
                for (int i = 0; i < x.scale; ++i) d /= 10;
                number(out_, d);
            } else if constexpr (std::is_same_v<T, std::string>) {
                escape(out_, x);
            } else if constexpr (std::is_same_v<T, ByteArray>) {
                escape(out_, x.bytes);
            } else if constexpr (std::is_same_v<T, Timestamp>) {
                fmt::format_to(std::back_inserter(out_), "{}", x.seconds);
            } else if constexpr (std::is_same_v<T, FieldArray>) {
                out_ += '[';
                for (std::size_t i = 0; i < x.items.size(); ++i) {
                    if (i) out_ += ',';
                    value(x.items[i]);
                }
                out_ += ']';
            } else if constexpr (std::is_same_v<T, FieldTable>) {
                out_ += '{';
                for (std::size_t i = 0; i < x.entries.size(); ++i) {
                    if (i) out_ += ',';
                    escape(out_, x.entries[i].key);
                    out_ += ':';
                    value(x.entries[i].value);
                }
                out_ += '}';
            } else {
                fmt::format_to(std::back_inserter(out_), "{}", static_cast<std::int64_t>(x));
            }
        },
        v.v);
}

void JsonOut::table(std::string_view k, const protocol::FieldTable& t) {
    bool all = false;
    if (!selected(k, false, all)) return;
    key(k);
    value(protocol::FieldValue{t});
}

void JsonOut::escape(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0;  // plain characters are copied in runs
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            // Names come off the wire as bytes: a sequence that is not UTF-8 becomes U+FFFD, so
            // the answer stays valid JSON.
            const std::size_t n = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
            bool ok = n > 0 && i + n < s.size();
            for (std::size_t k = 1; ok && k <= n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
            if (ok) {
                i += n;
                continue;
            }
            out.append(s.data() + run, i - run);
            run = i + 1;
            out += "\\ufffd";
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

void JsonOut::number(std::string& out, double v) {
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    const std::size_t start = out.size();
    fmt::format_to(std::back_inserter(out), "{}", v);
    // "0" would read back as an integer: RabbitMQ's rates and ratios are floats.
    if (out.find_first_of(".e", start) == std::string::npos) out += ".0";
}

}  // namespace warren::mgmt
