// The list writer: columns (dotted paths keep their nesting), the sort field's value, floats
// that stay floats, and strings that stay valid JSON whatever bytes a name holds.
#include "mgmt/json_out.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using warren::mgmt::JsonOut;
using json = nlohmann::json;

namespace {
std::string write(const std::vector<std::string>* columns, const std::string* capture = nullptr,
                  json* captured = nullptr) {
    std::string out;
    JsonOut w(out, columns, capture, captured);
    w.begin();
    w.field("name", "q");
    w.field("messages", std::uint64_t{3});
    w.object("message_stats");
    w.field("publish", std::uint64_t{25});
    w.rate("publish_details", 0.0);
    w.close();
    w.null("policy");
    w.end();
    return out;
}
}  // namespace

TEST_CASE("every field without columns; only the named ones, nested, with them", "[mgmt]") {
    CHECK(
        json::parse(write(nullptr)) ==
        json::parse(
            R"({"name":"q","messages":3,"message_stats":{"publish":25,"publish_details":{"rate":0.0}},"policy":null})"));
    std::vector<std::string> cols{"name", "message_stats.publish"};
    CHECK(write(&cols) == R"({"name":"q","message_stats":{"publish":25}})");
    std::vector<std::string> whole{"message_stats"};
    CHECK(write(&whole) == R"({"message_stats":{"publish":25,"publish_details":{"rate":0.0}}})");
}

TEST_CASE("the sort field's value is captured whatever the columns", "[mgmt]") {
    std::vector<std::string> cols{"name"};
    std::string path = "message_stats.publish";
    json captured;
    write(&cols, &path, &captured);
    CHECK(captured == 25);
}

TEST_CASE("floats keep a decimal point; bytes that are not UTF-8 become U+FFFD", "[mgmt]") {
    std::string out;
    JsonOut::number(out, 0.0);
    CHECK(out == "0.0");
    out.clear();
    JsonOut::number(out, 2.5);
    CHECK(out == "2.5");
    out.clear();
    JsonOut::escape(out, std::string("a\"b\\c\n\x01\xff\xc3\xa9", 10));
    CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"");
    CHECK(json::parse(out).get<std::string>() == "a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9");
}
