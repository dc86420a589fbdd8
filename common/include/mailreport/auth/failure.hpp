// auth/failure: decides which failure reports a message calls for (the milter asks at end of
// message; the store queues them; mailreport serve builds and sends them).
//
// - DMARC (RFC 7489 §7.3, RFC 9991; RFC 9989 §4.7 fo=): the applied record has ruf= and fo=
//   asks for it — 0: no mechanism produced an aligned pass; 1: any mechanism failed to produce
//   an aligned pass; d: a DKIM signature failed evaluation (aligned or not); s: SPF failed
//   (aligned or not). Never for a record with psd=y. Every ruf mailto URI passes external
//   destination verification (RFC 7489 §7.1, RFC 9991 §?: `<policy-domain>._report._dmarc.
//   <dest-host>` TXT starting "v=DMARC1") unless the destination's organizational domain is the
//   policy domain's; non-mailto URIs are skipped.
// - DKIM (RFC 6651): a failing signature with r=y, and `_report._domainkey.<d>` publishes ra=;
//   rp= (percentage sampling, default 100) and rr= (classes: all, d, o, p, s, u, v, x; default
//   all) honoured; the report goes to ra@d.
// - SPF (RFC 6652): the evaluated record (the MAIL FROM domain's own v=spf1 record, not one
//   reached by include) has ra=; rp= and rr= (all, e, f, s, n; default all) honoured; to
//   ra@domain.
// - Nothing for a message that is itself a report or our own report traffic (see
//   MessageTraits), nor for a kind whose report.<kind>.send is false.
//
// DNS goes through the one Resolver (cached); a lookup that fails means no report (never a
// guess).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/auth/verdict.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {

// What the milter knows about the message beyond its verdicts.
struct MessageTraits {
  // multipart/report (any report-type), or Auto-Submitted other than "no" (RFC 3834), or every
  // recipient is a report mailbox (report.analysis.addresses).
  bool is_report = false;
  // The author or envelope sender is one of our report from-addresses
  // (report.{dmarc,dkim,spf,dsn}.from-address) — our own report traffic.
  bool own_traffic = false;
};

class FailurePlanner {
 public:
  // `random_percent` returns a uniform value in [0, 100) for rp= sampling (tests inject it).
  // `dmarc` gives the Organizational Domains for external destination verification (the
  // milter passes its own evaluator so that milter.dmarc-discovery applies and the public
  // suffix list is loaded once); null: one is built from config->milter.dmarc-discovery
  // (throws std::runtime_error, as DmarcEvaluator does, when no public suffix list loads).
  FailurePlanner(std::shared_ptr<dns::Resolver> resolver,
                 std::shared_ptr<const config::Config> config,
                 std::function<double()> random_percent = {},
                 std::shared_ptr<const DmarcEvaluator> dmarc = nullptr);

  // The reports due for an evaluated message, each to one verified recipient, with the rate
  // limit of its kind filled in. Does not touch `ev`.
  std::vector<FailureReportRequest> plan(const Evaluation& ev, const MessageTraits& traits) const;

  // A cheap test without DNS or configuration: false when no kind of report can be due (DMARC
  // passed with both mechanisms aligned or has no ruf=, no failed DKIM signature with r=y, SPF
  // passed or found no record). Most mail stops here; plan() is only worth calling when true.
  static bool may_report(const Evaluation& ev) noexcept;

 private:
  std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<const config::Config> config_;
  std::function<double()> random_percent_;
  std::shared_ptr<const DmarcEvaluator> dmarc_;
};

}  // namespace mailreport::auth
