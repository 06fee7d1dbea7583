// RabbitMQ's list parameters: the `name` filter (a substring, or a regular expression with
// use_regex=true), `sort` (a field, dotted for nested ones) and `sort_reverse`, pagination
// (`page`, `page_size`: a paged answer is an object with items and counts), and `columns` (only
// the named fields, dotted for nested ones; applied by JsonOut as each object is written).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mgmt/json_shapes.hpp"
#include "mgmt/url.hpp"

namespace warren::mgmt {

struct ListQuery {
    std::optional<std::string> name;
    bool use_regex = false;
    std::optional<std::string> sort;
    bool sort_reverse = false;
    std::optional<std::uint64_t> page;
    std::uint64_t page_size = 100;
    std::vector<std::string> columns;
};

struct ListError {
    int status = 400;
    std::string error, reason;
};

// Reads the parameters; an error for a bad page or page_size (RabbitMQ's texts).
std::optional<ListError> parse_list_query(const Target& target, ListQuery& out);

// One object of a list, already written (with `columns` applied), with what filtering and sorting
// look at.
struct ListItem {
    std::string name;
    json sort_value;  // the `sort` field's value (null when absent)
    std::string text;
};

// Filters, sorts and pages `items` (in name order already). Returns the body to send, or an
// error (page out of range, a bad regular expression).
std::optional<ListError> finish_list(std::vector<ListItem>& items, const ListQuery& query, std::string& body);

}  // namespace warren::mgmt
