// /metrics: the store's metrics (store::MetricValue from every process of every node, labelled
// node="<host>") and gauges read from the store at scrape time (outbox and webhook queue
// depths), in Prometheus text exposition format 0.0.4, with # HELP and # TYPE for each name.
#pragma once

#include <string>

#include "mailreport/store/store.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::web {

Result<std::string> render_metrics(store::Store& store);

}  // namespace mailreport::web
