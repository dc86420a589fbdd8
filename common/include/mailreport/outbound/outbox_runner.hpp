// outbound/outbox_runner: mailreport serve's outbox pass. Claims due entries from the store,
// builds each report from its payload (failure_report.hpp), signs it with report.<kind>.sign
// (signer.hpp), submits it (submit.hpp) and records the outcome: sent (with its Message-ID),
// retried with backoff on a temporary failure (1 min doubling to 1 h, until
// report.submit.max-age after it was queued), failed for good on a permanent failure or a
// payload that cannot be built. Nothing is lost: a crash between claim and outcome leaves the
// entry queued, and the claim's lease expires.
//
// Aggregate reports (kinds store::kDmarcAggregateKind, kTlsAggregateKind; issue 5): the entry's
// payload (store/aggregate_payload.hpp) names the stored report and the destination's !size.
// Not sent to a suppressed destination (Store::is_suppressed); DMARC mailto destinations pass
// external destination verification (auth/report_destination.hpp) when sent; the message
// (aggregate_message.hpp) must fit the !size and report.<kind>.aggregate.max-size; it is
// signed with report.<kind>.aggregate.sign and submitted like a failure report. TLS reports
// to https URLs are POSTed (https_post.hpp), retried up to 24 h after they were queued
// (RFC 8460 §5.5). Both need set_aggregate_sending(); without it those entries wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/outbound/https_post.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/outbound/submit.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"

namespace mailreport::outbound {

struct OutboxPassStats {
  std::uint64_t sent = 0;
  std::uint64_t retried = 0;
  std::uint64_t failed = 0;
};

// What sending aggregate reports needs beyond failure reports (additive: a runner without it
// sends failure reports as before and leaves aggregate entries queued, retried hourly).
struct AggregateSending {
  // External destination verification of DMARC rua mailto URIs (RFC 7489 §7.1).
  std::shared_ptr<dns::Resolver> resolver;
  // Organizational Domains for that check; null: one is built on `resolver` with
  // config->milter.dmarc_discovery (throws std::runtime_error, as DmarcEvaluator does, when
  // no public suffix list loads).
  std::shared_ptr<const auth::DmarcEvaluator> dmarc;
  // TLS reports to https URLs; null: those entries wait.
  std::shared_ptr<HttpsPoster> https;
};

class OutboxRunner {
 public:
  // All references must outlive the runner.
  OutboxRunner(std::shared_ptr<const config::Config> config, store::Store& store,
               const Signers& signers, Submitter& submitter, Logger& log);
  // One pass: everything due at `now`, in claims of up to `batch` entries.
  OutboxPassStats run_once(std::int64_t now, std::size_t batch = 100);
  // When set, run_once stops after the entry it is working on once `*stop` is true (SIGTERM in
  // mailreport serve); entries claimed but not started wait for their lease to run out.
  void set_stop_flag(const std::atomic<bool>* stop) noexcept { stop_ = stop; }
  // Enables aggregate report sending (see AggregateSending). Call before run_once.
  void set_aggregate_sending(AggregateSending sending);

 private:
  struct Pass;
  void send_failure_report(Pass& pass, const store::OutboxEntry& e);
  void send_aggregate_report(Pass& pass, const store::OutboxEntry& e);

  std::shared_ptr<const config::Config> config_;
  store::Store& store_;
  const Signers& signers_;
  Submitter& submitter_;
  Logger& log_;
  const std::atomic<bool>* stop_ = nullptr;
  AggregateSending aggregate_;
};

}  // namespace mailreport::outbound
