// Building and sending the aggregate reports, shared by `mailreport send-reports` and
// `mailreport serve`: the resolver and DMARC evaluator the DMARC source needs (organizational
// domains for relaxed alignment, as mailreport-milter builds them from [dns] and
// milter.dmarc-discovery) and the outbox runner needs (external destination verification),
// the https poster of TLS reports, one outbound::AggregateBuilder per kind, and a log line per
// kind.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/outbound/aggregate_builder.hpp"
#include "mailreport/outbound/https_post.hpp"
#include "mailreport/outbound/outbox_runner.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::cli {

enum class AggregateKinds { Dmarc, Tls, All };

// The resolver, DMARC evaluator and https poster of the configuration (start-up: errors are
// configuration errors: a [dns] that does not load, a public suffix list that cannot be read).
struct AggregateEnv {
  std::shared_ptr<dns::Resolver> resolver;
  std::shared_ptr<const auth::DmarcEvaluator> dmarc;
  std::shared_ptr<outbound::HttpsPoster> https;  // timeout report.submit.timeout

  // What the outbox runner needs to send aggregate reports.
  outbound::AggregateSending sending() const { return {resolver, dmarc, https}; }
};
Result<AggregateEnv> make_aggregate_env(const config::Config& config, Logger& log);

// What one kind's build gave.
struct KindOutcome {
  const char* name = "";  // "dmarc" | "tls"
  bool enabled = true;    // false: report.<kind>.aggregate.send = never
  Result<outbound::BuildStats> stats = outbound::BuildStats{};
};

// Runs the builder of each kind of `kinds` with `options` (errors of one kind do not stop the
// other). Logs one line per kind that built something, and each error.
std::vector<KindOutcome> build_due(store::Store& store,
                                   const std::shared_ptr<const config::Config>& config,
                                   const AggregateEnv& env, AggregateKinds kinds,
                                   const outbound::BuildOptions& options, Logger& log);

// "3 reports, 4 deliveries, 120 messages" (TLS: sessions).
std::string describe(const char* kind, const outbound::BuildStats& stats);

}  // namespace mailreport::cli
