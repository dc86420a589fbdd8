// /metrics: Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Two sources: the store's metrics rows, which every process of every node flushes
// (store::MetricsFlusher; each series gets its node="<host>" label, put first), and gauges read
// from the store at scrape time: mailreport_outbox_entries{kind,state} (Store::outbox_stats)
// and mailreport_webhook_queue_depth{webhook} (Store::webhook_queue_depths). A scrape-time
// source that fails (or a store that does not have it yet) is left out: the scrape still
// answers with the rest. Every metric name gets one # HELP and one # TYPE line, before its
// samples; all samples of one name are together.
//
// The labels stored with a series are already in exposition syntax (util/metrics.hpp); label
// values made here (node, kind, state, webhook) are escaped as the format says: backslash,
// double quote and line feed as \\, \" and \n.
//
// Not done: timestamps on samples (Prometheus stamps the scrape), OpenMetrics.
#include "mailreport/web/metrics_text.hpp"

#include "mailreport/util/metrics.hpp"

#include <array>
#include <map>
#include <string_view>

namespace mailreport::web {

namespace {

struct Known {
  std::string_view name;
  std::string_view help;
};

// The help text of each metric mailreport writes (docs/metrics.md has the same table).
constexpr std::array kKnown = {
    Known{"mailreport_lmtp_sessions_total", "LMTP sessions accepted by mailreport-lmtp."},
    Known{"mailreport_lmtp_messages_total",
          "Messages received over LMTP, by outcome (stored, duplicate, unparsed, rejected, "
          "tempfail)."},
    Known{"mailreport_reports_received_total", "Reports stored, by type."},
    Known{"mailreport_parse_failures_total",
          "Received messages from which no report could be parsed."},
    Known{"mailreport_milter_sessions_total", "SMTP connections the milter saw."},
    Known{"mailreport_milter_messages_total", "Messages the milter evaluated, by DMARC result."},
    Known{"mailreport_evaluations_recorded_total",
          "Evaluation rows the milter's background writer recorded in the store."},
    Known{"mailreport_failure_reports_queued_total",
          "DMARC failure reports the milter queued in the outbox."},
    Known{"mailreport_failure_reports_rate_limited_total",
          "DMARC failure reports the milter did not queue because of the rate limit."},
    Known{"mailreport_milter_queue_overflow_total",
          "Milter records dropped because the background writer's queue was full."},
    Known{"mailreport_milter_queue_depth",
          "Records waiting in the milter's background writer queue."},
    Known{"mailreport_reports_sent_total", "Outbox entries sent, by kind."},
    Known{"mailreport_reports_failed_total", "Outbox entries given up on, by kind."},
    Known{"mailreport_reports_retried_total",
          "Outbox send attempts that failed and were scheduled again, by kind."},
    Known{"mailreport_aggregate_reports_built_total", "Aggregate reports built, by kind."},
    Known{"mailreport_tls_datagrams_total",
          "TLS result datagrams the collector received, by result (ok, rejected)."},
    Known{"mailreport_outbox_entries", "Outbox entries by kind and state (read at scrape time)."},
    Known{"mailreport_webhook_queue_depth",
          "Webhook events waiting for delivery, by webhook (read at scrape time)."},
};

std::string_view help_for(std::string_view name) {
  for (const Known& k : kKnown) {
    if (k.name == name) return k.help;
  }
  return "mailreport metric.";
}

void append_header(std::string& out, std::string_view name, bool gauge) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help_for(name);
  out += "\n# TYPE ";
  out += name;
  out += gauge ? " gauge\n" : " counter\n";
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::int64_t value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

Result<std::string> render_metrics(store::Store& store) {
  auto rows = store.list_metrics();
  if (!rows) return std::move(rows).error();

  // name -> (gauge, samples); a std::map keeps the names in a stable order.
  struct Family {
    bool gauge = false;
    std::vector<std::pair<std::string, std::int64_t>> samples;  // labels, value
  };
  std::map<std::string, Family, std::less<>> families;
  for (const store::MetricValue& v : *rows) {
    auto [it, inserted] = families.try_emplace(v.name);
    if (inserted) it->second.gauge = v.gauge;
    std::string labels = Metrics::label("node", v.node);
    if (!v.labels.empty()) labels += ',' + v.labels;
    it->second.samples.emplace_back(std::move(labels), v.value);
  }

  // Scrape-time gauges; a failure (Unsupported included) leaves the family out.
  if (auto stats = store.outbox_stats(); stats) {
    Family& f = families["mailreport_outbox_entries"];
    f.gauge = true;
    for (const store::OutboxStat& s : *stats) {
      f.samples.emplace_back(
          Metrics::label("kind", s.kind) + ',' + Metrics::label("state", store::to_string(s.state)),
          static_cast<std::int64_t>(s.count));
    }
  }
  if (auto depths = store.webhook_queue_depths(); depths) {
    Family& f = families["mailreport_webhook_queue_depth"];
    f.gauge = true;
    for (const auto& [webhook, pending] : *depths) {
      f.samples.emplace_back(Metrics::label("webhook", webhook), static_cast<std::int64_t>(pending));
    }
  }

  std::string out;
  for (const auto& [name, family] : families) {
    if (family.samples.empty()) continue;
    append_header(out, name, family.gauge);
    for (const auto& [labels, value] : family.samples) append_sample(out, name, labels, value);
  }
  return out;
}

}  // namespace mailreport::web
