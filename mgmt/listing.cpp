// See listing.hpp.
#include "mgmt/listing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace warren::mgmt {

namespace {
constexpr std::uint64_t max_page_size = 500;  // rabbit_mgmt_util's ?MAX_PAGE_SIZE

std::optional<std::uint64_t> parse_number(const std::string& s) {
    if (s.empty() || s.size() > 12) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace

std::optional<ListError> parse_list_query(const Target& target, ListQuery& q) {
    if (auto name = target.param("name"); name && !name->empty()) q.name = name;
    q.use_regex = target.param("use_regex") == std::optional<std::string>("true");
    if (auto sort = target.param("sort"); sort && !sort->empty()) q.sort = sort;
    q.sort_reverse = target.param("sort_reverse") == std::optional<std::string>("true");
    if (auto cols = target.param("columns"); cols && !cols->empty()) {
        std::size_t start = 0;
        while (start <= cols->size()) {
            std::size_t comma = cols->find(',', start);
            std::string c = cols->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!c.empty()) q.columns.push_back(c);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    auto page = target.param("page");
    auto size = target.param("page_size");
    if (page || size) {
        auto p = page ? parse_number(*page) : std::optional<std::uint64_t>(1);
        auto s = size ? parse_number(*size) : std::optional<std::uint64_t>(100);
        if (!p || !s || *p < 1 || *s < 1 || *s > max_page_size)
            return ListError{400, "invalid_pagination_parameters",
                             fmt::format("Invalid pagination parameters: page number {}, page size {}",
                                         page ? *page : "1", size ? *size : "100")};
        if (page) q.page = *p;
        q.page_size = *s;
    }
    return std::nullopt;
}

std::optional<ListError> finish_list(std::vector<ListItem>& items, const ListQuery& q, std::string& body) {
    const std::size_t total = items.size();
    if (q.name) {
        std::vector<ListItem> kept;
        if (q.use_regex) {
            std::regex re;
            try {
                re = std::regex(*q.name, std::regex::ECMAScript | std::regex::icase);
            } catch (const std::regex_error&) {
                return ListError{400, "bad_request", "invalid regular expression"};
            }
            for (ListItem& item : items)
                if (std::regex_search(item.name, re)) kept.push_back(std::move(item));
        } else {
            const std::string needle = lower(*q.name);
            for (ListItem& item : items)
                if (lower(item.name).find(needle) != std::string::npos) kept.push_back(std::move(item));
        }
        items.swap(kept);
    }
    if (q.sort)
        std::stable_sort(items.begin(), items.end(),
                         [](const ListItem& a, const ListItem& b) { return a.sort_value < b.sort_value; });
    if (q.sort_reverse) std::reverse(items.begin(), items.end());
    const std::size_t filtered = items.size();
    std::size_t first = 0, count = items.size();
    std::uint64_t page_count = 0;
    if (q.page) {
        page_count = (filtered + q.page_size - 1) / q.page_size;
        if (*q.page > std::max<std::uint64_t>(page_count, 1))
            return ListError{
                400, "page_out_of_range",
                fmt::format("Page out of range, page: {} page size: {}, len: {}", *q.page, q.page_size, filtered)};
        first = std::min<std::size_t>(filtered, (*q.page - 1) * q.page_size);
        count = std::min<std::size_t>(filtered - first, q.page_size);
    }
    std::string out = "[";
    for (std::size_t i = first; i < first + count; ++i) {
        if (i > first) out += ',';
        out += items[i].text;
    }
    out += ']';
    if (!q.page) {
        body = std::move(out);
        return std::nullopt;
    }
    body = fmt::format(
        R"({{"filtered_count":{},"item_count":{},"page":{},"page_count":{},"page_size":{},"total_count":{},"items":{}}})",
        filtered, count, *q.page, page_count, q.page_size, total, out);
    return std::nullopt;
}

}  // namespace warren::mgmt
