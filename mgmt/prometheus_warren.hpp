// Warren's own metrics for Prometheus (RabbitMQ has none): messages each queue dead-lettered, by
// reason; the health of each dead-letter queue (oldest message's age, growth rate, contents by
// reason, origin queue and error header) from the API's HealthBook; fdatasync latency.
#pragma once

#include <string>

#include "broker/dead_letter_health.hpp"

namespace warren::broker {
class Broker;
}

namespace warren::mgmt {

// Appends the families to `out`: dead-letter totals by reason at /metrics, per queue at
// /metrics/per-object, where `book` advances each dead-letter queue's census by its bounded
// budget; the fdatasync histogram at both.
void warren_metrics(std::string& out, broker::Broker& broker, broker::workbench::HealthBook& book, bool per_object);

// A dead-letter queue's label values kept per family (the rest are summed under "(other)"):
// an application's error header may hold free text, which must not explode a scrape.
inline constexpr std::size_t max_label_values = 20;

}  // namespace warren::mgmt
