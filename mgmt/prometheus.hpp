// Prometheus metrics in the text exposition format, with rabbitmq_prometheus's names and labels
// (what Grafana dashboard 10991 "RabbitMQ-Overview" queries, in its 3.10 and current versions):
// aggregated at /metrics, per queue, connection and channel at /metrics/per-object. Read from
// the broker's counters and the management API's snapshots; nothing on the message path.
#pragma once

#include <string>

#include "broker/broker_view.hpp"

namespace warren::broker {
class Broker;
}

namespace warren::mgmt {

// The body of GET `path` ("/metrics" or "/metrics/per-object"); nothing for another path.
std::optional<std::string> prometheus_text(const broker::Broker& broker, const broker::BrokerView& view,
                                           std::string_view path);

}  // namespace warren::mgmt
