// TopicExchange: RabbitMQ's topic matching (rabbit_db_topic_exchange.erl, trie_match and
// split_topic_key), checked case by case, against RabbitMQ's own routing_SUITE fixture, against a
// plain recursive matcher on random patterns, and with 100,000 bindings.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "exchanges/topic_exchange.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

std::vector<std::string> words_of(std::string_view key) {
    std::vector<std::string_view> views;
    split_topic_words(key, views);
    return {views.begin(), views.end()};
}

TEST_CASE("topic keys split into words as split_topic_key does", "[routing]") {
    struct Row {
        std::string_view key;
        std::vector<std::string> words;
    };
    const Row rows[] = {
        {"", {}},  // no words at all: split_topic_key(<<>>, [], []) -> []
        {"a", {"a"}},
        {"a.b", {"a", "b"}},
        {"a..b", {"a", "", "b"}},  // empty words are words
        {".", {"", ""}},
        {"a.", {"a", ""}},
        {".a", {"", "a"}},
        {"..", {"", "", ""}},
        {"*.#", {"*", "#"}},
    };
    for (const Row& row : rows) {
        INFO("key: \"" << row.key << "\"");
        CHECK(words_of(row.key) == row.words);
    }
}

// One binding, one routing key: does it match? The comments name the rule each row pins down.
TEST_CASE("topic patterns match keys by RabbitMQ's rules", "[routing]") {
    struct Row {
        std::string_view pattern, key;
        bool matches;
    };
    const Row rows[] = {
        // `#` matches zero or more words, so every key, the empty key included.
        {"#", "", true},
        {"#", "a", true},
        {"#", "a.b.c", true},
        {"#", ".", true},
        {"#.#", "", true},
        {"#.#.#", "", true},
        // The empty key has no words (not one empty word): `*` needs a word.
        {"*", "", false},
        {"", "", true},
        {"", "a", false},
        {"", ".", false},
        {".", "", false},
        {".", ".", true},
        {"*", ".", false},  // "." is two empty words
        {"*.*", ".", true},
        {"*", "a", true},
        {"*", "a.b", false},
        {"*.*.*", "a.b", false},
        {"*.*.*", "a.b.c", true},
        // Empty words are words, matched by `*`, by `#` and by an empty literal.
        {"a.*.b", "a..b", true},
        {"a..b", "a..b", true},
        {"a.#.b", "a..b", true},
        {"a.b", "a..b", false},
        {"a.*", "a.", true},
        {"a.*", "a", false},
        {"*.a", ".a", true},
        // `#` at the end, at the start, in the middle, and repeated: zero words each.
        {"a.#", "a", true},
        {"a.#", "a.", true},
        {"a.#", "a.b.c", true},
        {"a.#", "ab", false},
        {"a.#", "b.a", false},
        {"#.b", "b", true},
        {"#.b", "a.b", true},
        {"#.b", "a.b.c", false},
        {"a.#.b", "a.b", true},
        {"a.#.b", "a.x.y.b", true},
        {"a.#.b", "a.b.c", false},
        {"a.#.#.b", "a.b", true},
        {"a.#.#.b", "a.x.b", true},
        {"a.#.#.b", "a.x.y.z.b", true},
        {"a.#.#.b", "a.b.c", false},
        {"a.#.#.b", "b.a.b", false},
        {"#.b.#", "b", true},
        {"#.b.#", "a.b.c", true},
        {"#.b.#", "abc", false},
        {"#.*.#", "", false},  // `*` still needs its word
        {"#.*.#", "x", true},
        {"*.#.#", "", false},
        {"*.#", "x", true},
        {"a.*.#", "a", false},
        {"a.*.#", "a.b", true},
        // Words compare as bytes: case matters, and no partial words.
        {"A.b", "a.b", false},
        {"a.b", "a.bc", false},
        {"a.b*", "a.bc", false},
        {"a.b*", "a.b*", true},
        // A routing word spelled like a wildcard is a word like any other.
        {"a", "*", false},
        {"*", "*", true},
        {"#", "#", true},
        {"a.#", "a.#", true},
        {"#", "*.#", true},
    };
    for (const Row& row : rows) {
        INFO("pattern \"" << row.pattern << "\", key \"" << row.key << "\"");
        TopicExchange x;
        x.bind(queue(1), row.pattern, {});
        CHECK(!route_ids(x, row.key).empty() == row.matches);
    }
}

// RabbitMQ's deps/rabbit/test/routing_SUITE.erl, topic1/1: 28 bindings to queues t1..t27 (two
// differ only in their arguments), routed before and after removing six of them.
TEST_CASE("topic routing agrees with RabbitMQ's routing_SUITE topic fixture", "[routing]") {
    struct Bind {
        std::string_view key;
        std::uint64_t q;
        FieldTable args;
    };
    const std::vector<Bind> binds = {
        {"a.b.c", 1, {}},         {"a.*.c", 2, {}},     {"a.#.b", 3, {}},          {"a.b.b.c", 4, {}},
        {"#", 5, {}},             {"#.#", 6, {}},       {"#.b", 7, {}},            {"*.*", 8, {}},
        {"a.*", 9, {}},           {"*.b.c", 10, {}},    {"a.#", 11, {}},           {"a.#.#", 12, {}},
        {"b.b.c", 13, {}},        {"a.b.b", 14, {}},    {"a.b", 15, {}},           {"b.c", 16, {}},
        {"", 17, {}},             {"*.*.*", 18, {}},    {"vodka.martini", 19, {}}, {"a.b.c", 20, {}},
        {"*.#", 21, {}},          {"#.*.#", 22, {}},    {"*.#.#", 23, {}},         {"#.#.#", 24, {}},
        {"*", 25, {}},            {"#.b.#", 26, {}},
        {"args-test", 27, table({{"foo", "bar"}})},
        {"args-test", 27, table({{"foo", "baz"}})},  // "Note aliasing": same queue, other arguments
    };
    TopicExchange x;
    for (const Bind& b : binds) REQUIRE(x.bind(queue(b.q), b.key, b.args));
    CHECK(x.binding_count() == 28);

    struct Expect {
        std::string_view key;
        std::vector<std::uint64_t> queues;
    };
    auto check = [&](const std::vector<Expect>& expectations) {
        for (const Expect& e : expectations) {
            INFO("routing key: \"" << e.key << "\"");
            CHECK(routed_set(x, e.key) == e.queues);
        }
    };
    check({
        {"a.b.c", {1, 2, 5, 6, 10, 11, 12, 18, 20, 21, 22, 23, 24, 26}},
        {"a.b", {3, 5, 6, 7, 8, 9, 11, 12, 15, 21, 22, 23, 24, 26}},
        {"a.b.b", {3, 5, 6, 7, 11, 12, 14, 18, 21, 22, 23, 24, 26}},
        {"", {5, 6, 17, 24}},
        {"b.c.c", {5, 6, 18, 21, 22, 23, 24, 26}},
        {"a.a.a.a.a", {5, 6, 11, 12, 21, 22, 23, 24}},
        {"vodka.gin", {5, 6, 8, 21, 22, 23, 24}},
        {"vodka.martini", {5, 6, 8, 19, 21, 22, 23, 24}},
        {"b.b.c", {5, 6, 10, 13, 18, 21, 22, 23, 24, 26}},
        {"nothing.here.at.all", {5, 6, 21, 22, 23, 24}},
        {"oneword", {5, 6, 21, 22, 23, 24, 25}},
        {"args-test", {5, 6, 21, 22, 23, 24, 25, 27}},
    });

    // The suite removes bindings 1, 5, 11, 19, 21 and 28 (1-based).
    for (std::size_t n : {1, 5, 11, 19, 21, 28}) {
        const Bind& b = binds[n - 1];
        REQUIRE(x.unbind(queue(b.q), b.key, b.args));
    }
    check({
        {"a.b.c", {2, 6, 10, 12, 18, 20, 22, 23, 24, 26}},
        {"a.b", {3, 6, 7, 8, 9, 12, 15, 22, 23, 24, 26}},
        {"a.b.b", {3, 6, 7, 12, 14, 18, 22, 23, 24, 26}},
        {"", {6, 17, 24}},
        {"b.c.c", {6, 18, 22, 23, 24, 26}},
        {"a.a.a.a.a", {6, 12, 22, 23, 24}},
        {"vodka.gin", {6, 8, 22, 23, 24}},
        {"vodka.martini", {6, 8, 22, 23, 24}},
        {"b.b.c", {6, 10, 13, 18, 22, 23, 24, 26}},
        {"nothing.here.at.all", {6, 22, 23, 24}},
        {"oneword", {6, 22, 23, 24, 25}},
        {"args-test", {6, 22, 23, 24, 25, 27}},
    });
}

TEST_CASE("topic lists a destination once per matching binding, not once per path", "[routing]") {
    TopicExchange x;
    // Overlapping patterns: three bindings of queue 1 match, so it is listed three times.
    x.bind(queue(1), "a.*", {});
    x.bind(queue(1), "#", {});
    x.bind(queue(1), "a.b", {});
    x.bind(queue(2), "a.b", table({{"x-v", 1}}));
    x.bind(queue(2), "a.b", table({{"x-v", 2}}));
    CHECK(route_ids(x, "a.b") == std::vector<std::uint64_t>{1, 1, 1, 2, 2});
    CHECK(route_ids(x, "z") == std::vector<std::uint64_t>{1});

    // One binding reachable along many paths ("#.#.#" splits "a.b.c" many ways): once.
    TopicExchange y;
    y.bind(queue(3), "#.#.#", {});
    y.bind(queue(4), "a.#.#.c", {});
    CHECK(route_ids(y, "a.b.c") == std::vector<std::uint64_t>{3, 4});
    CHECK(route_ids(y, "a.b.b.b.b.b.c") == std::vector<std::uint64_t>{3, 4});
}

std::string repeat_words(std::string_view word, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) out += '.';
        out += word;
    }
    return out;
}

TEST_CASE("topic handles 255-byte keys and patterns full of `#`", "[routing]") {
    const std::string words128 = repeat_words("a", 128);  // "a.a...a": 255 bytes, the shortstr maximum
    REQUIRE(words128.size() == 255);
    const std::string one_word(255, 'x');
    const std::string dots(127, '.');  // 128 empty words
    struct Row {
        std::string pattern, key;
        bool matches;
    };
    const Row rows[] = {
        {"#", words128, true},
        {"a.#", words128, true},
        {"#.a", words128, true},
        {repeat_words("*", 128), words128, true},
        {repeat_words("*", 127), words128, false},
        {repeat_words("*", 127) + ".#", words128, true},
        {words128, words128, true},
        {"*", one_word, true},
        {one_word, one_word, true},
        {one_word.substr(1), one_word, false},
        {repeat_words("*", 128), dots, true},
        {repeat_words("*", 127), dots, false},
        {"#", dots, true},
        {"*.#", dots, true},
        // Each `#` can take any number of the 128 words: an exhaustive walk would try
        // astronomically many splits before failing on the final "b".
        {repeat_words("#", 127) + ".b", words128, false},
        {repeat_words("#", 127), words128, true},
        {repeat_words("#.a", 63) + ".#", words128, true},
        {repeat_words("#.a", 64) + ".#.b", words128, false},
        {repeat_words("a.#", 64), words128, true},
        {repeat_words("a.#", 64), repeat_words("a", 63), false},
    };
    for (const Row& row : rows) {
        INFO("pattern of " << row.pattern.size() << " bytes: " << row.pattern.substr(0, 40) << "...");
        TopicExchange x;
        x.bind(queue(1), row.pattern, {});
        CHECK(!route_ids(x, row.key).empty() == row.matches);
    }
}

// The rules as a plain recursion over words, for cross-checking the trie.
bool reference_match(const std::vector<std::string>& p, std::size_t i, const std::vector<std::string>& k,
                     std::size_t j) {
    if (i == p.size()) return j == k.size();
    if (p[i] == "#") return reference_match(p, i + 1, k, j) || (j < k.size() && reference_match(p, i, k, j + 1));
    if (j == k.size()) return false;
    return (p[i] == "*" || p[i] == k[j]) && reference_match(p, i + 1, k, j + 1);
}

// An independent split: "" is no words, otherwise the pieces between dots.
std::vector<std::string> reference_split(const std::string& key) {
    std::vector<std::string> words;
    if (key.empty()) return words;
    std::string word;
    for (char c : key) {
        if (c == '.') {
            words.push_back(word);
            word.clear();
        } else {
            word += c;
        }
    }
    words.push_back(word);
    return words;
}

std::string random_key(std::mt19937& rng, const std::vector<std::string>& alphabet, int max_words) {
    int n = std::uniform_int_distribution<int>(0, max_words)(rng);
    std::string key;
    for (int i = 0; i < n; ++i) {
        if (i) key += '.';
        key += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    }
    return key;
}

TEST_CASE("topic routing agrees with a recursive matcher on random patterns and keys", "[routing]") {
    std::mt19937 rng(20240611);
    const std::vector<std::string> pattern_words = {"a", "b", "", "*", "#"};
    const std::vector<std::string> key_words = {"a", "b", ""};
    TopicExchange x;
    std::vector<std::string> patterns;
    for (std::uint64_t q = 0; q < 400; ++q) {
        patterns.push_back(random_key(rng, pattern_words, 5));
        x.bind(queue(q), patterns.back(), {});
    }
    for (int round = 0; round < 300; ++round) {
        std::string key = random_key(rng, key_words, 6);
        std::vector<std::uint64_t> expected;
        auto kw = reference_split(key);
        for (std::uint64_t q = 0; q < patterns.size(); ++q)
            if (reference_match(reference_split(patterns[q]), 0, kw, 0)) expected.push_back(q);
        INFO("routing key: \"" << key << "\"");
        REQUIRE(route_ids(x, key) == expected);  // each binding here has its own queue: no repeats
    }
}

TEST_CASE("100,000 topic bindings route correctly", "[routing]") {
    TopicExchange x;
    std::vector<std::string> patterns(100000);
    std::vector<std::vector<std::string>> split(patterns.size());
    for (std::uint64_t i = 0; i < patterns.size(); ++i) {
        switch (i % 4) {
        case 0: patterns[i] = "a" + std::to_string(i % 1000) + ".b" + std::to_string(i / 1000 % 100) + ".c"; break;
        case 1: patterns[i] = "a" + std::to_string(i % 1000) + ".*.c"; break;
        case 2: patterns[i] = "#.b" + std::to_string(i / 7 % 100); break;
        case 3: patterns[i] = "a" + std::to_string(i % 1000) + ".#"; break;
        }
        split[i] = reference_split(patterns[i]);
        REQUIRE(x.bind(queue(i), patterns[i], {}));
    }
    CHECK(x.binding_count() == 100000);

    // Worked by hand: "a1.*.c" is bound by every i with i % 1000 == 1 (all have i % 4 == 1);
    // nothing else can match a key that starts "a1." and ends in "c".
    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 1; i < 100000; i += 1000) expected.push_back(i);
    CHECK(route_ids(x, "a1.zz.c") == expected);

    auto check_against_reference = [&](std::string_view key) {
        std::vector<std::uint64_t> want;
        auto kw = reference_split(std::string(key));
        for (std::uint64_t i = 0; i < patterns.size(); ++i)
            if (!patterns[i].empty() && reference_match(split[i], 0, kw, 0)) want.push_back(i);
        INFO("routing key: \"" << key << "\"");
        CHECK(route_ids(x, key) == want);
        return want.size();
    };
    const std::string_view keys[] = {"a8.b0.c", "a999.b99.c", "a3.b9", "x.y.b42", "a17", "", "a1.b1.c.d",
                                     "b5", "a40.b40", "a44.b0.c"};
    std::size_t total = 0;
    for (std::string_view key : keys) total += check_against_reference(key);
    CHECK(total > 1000);  // the keys do exercise the bindings

    // Remove three quarters (unbind odd i, remove_destination for i % 4 == 2) and check again.
    for (std::uint64_t i = 1; i < patterns.size(); i += 2) REQUIRE(x.unbind(queue(i), patterns[i], {}));
    for (std::uint64_t i = 2; i < patterns.size(); i += 4) REQUIRE(x.remove_destination(queue(i)) == 1);
    for (std::uint64_t i = 0; i < patterns.size(); ++i)
        if (i % 4 != 0) patterns[i].clear();
    CHECK(x.binding_count() == 25000);
    for (std::string_view key : keys) check_against_reference(key);
    CHECK(route_ids(x, "a1.zz.c").empty());
}

TEST_CASE("topic unbind prunes trie nodes that no binding needs", "[routing]") {
    TopicExchange x;
    CHECK(x.node_count() == 1);
    x.bind(queue(1), "a.b.c", {});
    x.bind(queue(2), "a.b.d", {});
    x.bind(queue(3), "a.*.#", {});
    x.bind(queue(4), "", {});
    CHECK(x.node_count() == 7);  // root, a, a.b, a.b.c, a.b.d, a.*, a.*.#
    x.unbind(queue(1), "a.b.c", {});
    CHECK(x.node_count() == 6);
    CHECK(route_ids(x, "a.b.d") == std::vector<std::uint64_t>{2, 3});
    x.remove_destination(queue(2));
    x.remove_destination(queue(3));
    CHECK(x.node_count() == 1);
    CHECK(route_ids(x, "") == std::vector<std::uint64_t>{4});
    CHECK(route_ids(x, "a.b.d").empty());
    // Rebinding after pruning builds the path again.
    x.bind(queue(5), "a.*.#", {});
    CHECK(route_ids(x, "a.x") == std::vector<std::uint64_t>{5});
}

TEST_CASE("topic routes the same way twice in a row (scratch space is reset)", "[routing]") {
    TopicExchange x;
    x.bind(queue(1), "a.#", {});
    x.bind(queue(2), "#.b", {});
    x.bind(queue(3), "*", {});
    for (int i = 0; i < 3; ++i) {
        CHECK(route_ids(x, "a.b") == std::vector<std::uint64_t>{1, 2});
        CHECK(route_ids(x, "a") == std::vector<std::uint64_t>{1, 3});
        CHECK(route_ids(x, "") == std::vector<std::uint64_t>{});
        CHECK(route_ids(x, "b") == std::vector<std::uint64_t>{2, 3});
    }
}

}  // namespace
}  // namespace warren::exchanges
