// outbound/outbox_runner: mailreport serve's outbox pass (see
// mailreport/outbound/outbox_runner.hpp).
//
// Each claimed entry ends the pass in exactly one recorded state:
//   - sent, with the report's Message-ID (for matching bounces later; "" for an https POST);
//   - retried after a temporary failure (submission TempFail, a signing failure — a key or
//     configuration problem a reload can fix, a DNS error during destination verification, a
//     store error reading the report), 1 min doubling to 1 h, never later than the entry's
//     deadline, the last attempt: created_at + report.submit.max-age for mail, created_at + 24 h
//     for an https POST (RFC 8460 §5.5: retry for up to 24 hours, with exponential backoff);
//   - failed: a permanent submission failure, a payload that cannot be read or built, a report
//     larger than the recipient's !size (RFC 7489 §7.1: do not send it) or
//     report.<kind>.aggregate.max-size, report.<kind>.send turned off since it was queued, a
//     suppressed destination, a DMARC destination that external verification does not
//     authorize, or the deadline reached.
// Entries of a kind this build cannot send (queued by a newer build), and aggregate entries
// while set_aggregate_sending() was not called (or without an https poster for an https URL),
// are put back for an hour, untouched otherwise, and expire like any other.
//
// Aggregate reports, the decisions:
// - Size: the whole message as it is submitted (signed) is measured against
//   min(!size, report.<kind>.aggregate.max-size). RFC 7489 §7.1 refuses a URI whose limit "is
//   exceeded by the compressed, encoded report" (standards.md §2.4); the base64 attachment is
//   part of the message, so a message within the limit always has its encoded report within
//   it, and the limit exists so that the destination's mailbox accepts what we send, which is
//   the message (a few hundred bytes stricter than the letter of the RFC). An https POST is
//   measured by its body (the gzip file) against max-size.
// - External destination verification (RFC 7489 §7.1, RFC 9990 §4) happens when the report is
//   sent, with the policy domain of the report: a DNS error retries later (the RFC lets us
//   defer), no authorization fails the entry. A replacement rua= in the verification record
//   (same host only) is followed: the entry goes to its first URI, and its other URIs get
//   entries of their own (queued after the first is sent; an entry whose address is itself in
//   the replacement list goes to that address, so replacements do not chain). The entry keeps
//   its recipient; bounces are matched by the Message-ID sent.
// - TLS reports (RFC 8460) have no destination verification; mailto and https only.
//
// A claim's lease covers the whole batch being worked on (batch × (submit timeout + 10 s)), so
// another sender never takes an entry this one may still submit; a crash leaves them queued
// until the lease runs out.
#include "mailreport/outbound/outbox_runner.hpp"

#include <algorithm>
#include <string>

#include "mailreport/auth/report_destination.hpp"
#include "mailreport/outbound/aggregate_message.hpp"
#include "mailreport/outbound/failure_report.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "mailreport/store/failure_payload.hpp"
#include "mailreport/util/metrics.hpp"

namespace mailreport::outbound {

namespace {

// The message signed with the signature ids `ids` (report.<kind>.sign); as it is when there
// are none (unsigned reports, the default for a site without keys).
Result<std::string> sign_if_asked(const Signers& signers, const std::vector<std::string>& ids,
                                  std::string message) {
  if (ids.empty()) return message;
  return signers.sign(ids, message);
}

constexpr std::int64_t kFirstBackoff = 60;  // 1 min
constexpr std::int64_t kMaxBackoff = 3600;  // 1 h
constexpr std::int64_t kPutBackDelay = 3600;
constexpr std::int64_t kHttpsMaxAge = 24 * 3600;  // RFC 8460 §5.5
constexpr std::string_view kTlsrptGzip = "application/tlsrpt+gzip";

// 60 s after the first failure, doubling, at most an hour.
std::int64_t backoff(unsigned attempts_before) {
  std::int64_t d = kFirstBackoff;
  for (unsigned i = 0; i < attempts_before && d < kMaxBackoff; ++i) d *= 2;
  return std::min(d, kMaxBackoff);
}

const config::FailureReportSettings* settings_for(const config::Config& c, auth::FailureKind k) {
  switch (k) {
    case auth::FailureKind::Dkim: return &c.report.dkim;
    case auth::FailureKind::Spf: return &c.report.spf;
    case auth::FailureKind::Dmarc: break;
  }
  return &c.report.dmarc;
}

bool is_failure_kind(std::string_view kind) {
  for (auto k : {auth::FailureKind::Dmarc, auth::FailureKind::Dkim, auth::FailureKind::Spf}) {
    if (kind == store::outbox_kind(k)) return true;
  }
  return false;
}

bool is_aggregate_kind(std::string_view kind) {
  return kind == store::kDmarcAggregateKind || kind == store::kTlsAggregateKind;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool is_https(std::string_view uri) {
  return uri.size() > 8 && iequals(uri.substr(0, 8), "https://");
}

// An https entry is retried for 24 h (RFC 8460 §5.5), a mail for report.submit.max-age.
std::int64_t max_age_of(const store::OutboxEntry& e, const config::SubmitConfig& submit) {
  if (e.kind == store::kTlsAggregateKind && is_https(e.recipient)) return kHttpsMaxAge;
  return submit.max_age.count();
}

std::string context_of(const store::OutboxEntry& e) {
  return "outbox#" + std::to_string(e.id);
}

// The smaller of two limits where 0 means none.
std::uint64_t min_limit(std::uint64_t a, std::uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

// Counts an entry's outcome in this process's metrics (docs/metrics.md), by the entry's kind.
void count_outcome(std::string_view metric, const store::OutboxEntry& e) {
  Metrics::process().counter(metric, "kind", e.kind).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// One pass's clock and counters, and the recording of one entry's outcome. A store failure
// while recording is logged (the lease brings the entry back).
struct OutboxRunner::Pass {
  store::Store& store;
  Logger& log;
  std::int64_t now = 0;
  std::int64_t max_age = 0;  // of the entry being worked on
  OutboxPassStats stats;

  void record(const store::OutboxEntry& e, Status st, const char* what) {
    if (!st)
      log.error(context_of(e), std::string("cannot record ") + what + ": " + st.error().describe());
  }
  void fail(const store::OutboxEntry& e, const std::string& why) {
    log.warning(context_of(e), "failed: " + e.kind + " to " + e.recipient + ": " + why);
    record(e, store.outbox_failed(e.id, now, why), "failure");
    ++stats.failed;
    count_outcome("mailreport_reports_failed_total", e);
  }
  void retry_or_expire(const store::OutboxEntry& e, const std::string& why) {
    if (now - e.created_at >= max_age) {
      fail(e, "gave up after " + std::to_string(e.attempts + 1) + " attempts: " + why);
      return;
    }
    // The last attempt happens at the deadline, not after it.
    std::int64_t next = std::min(now + backoff(e.attempts), e.created_at + max_age);
    log.info(context_of(e), "will retry " + e.kind + " to " + e.recipient + " at " +
                                std::to_string(next) + ": " + why);
    record(e, store.outbox_retry(e.id, next, why), "retry");
    ++stats.retried;
    count_outcome("mailreport_reports_retried_total", e);
  }
  // Not attempted: back in an hour (expires like any other entry).
  void put_back(const store::OutboxEntry& e, const std::string& why) {
    log.warning(context_of(e), why);
    record(e, store.outbox_retry(e.id, now + kPutBackDelay, why), "retry");
    ++stats.retried;
    count_outcome("mailreport_reports_retried_total", e);
  }
  void sent(const store::OutboxEntry& e, const std::string& to, const std::string& message_id) {
    log.info(context_of(e), "sent " + e.kind + " to " + to +
                                (message_id.empty() ? std::string() : " as <" + message_id + ">"));
    record(e, store.outbox_sent(e.id, now, message_id), "sending");
    ++stats.sent;
    count_outcome("mailreport_reports_sent_total", e);
  }
};

OutboxRunner::OutboxRunner(std::shared_ptr<const config::Config> config, store::Store& store,
                           const Signers& signers, Submitter& submitter, Logger& log)
    : config_(std::move(config)),
      store_(store),
      signers_(signers),
      submitter_(submitter),
      log_(log) {}

void OutboxRunner::set_aggregate_sending(AggregateSending sending) {
  aggregate_ = std::move(sending);
  if (aggregate_.resolver && !aggregate_.dmarc) {
    auth::DmarcOptions o;
    o.discovery = config_->milter.dmarc_discovery == config::DmarcDiscovery::Psl
                      ? auth::Discovery::Psl
                      : auth::Discovery::TreeWalk;
    aggregate_.dmarc = std::make_shared<const auth::DmarcEvaluator>(aggregate_.resolver, o);
  }
}

OutboxPassStats OutboxRunner::run_once(std::int64_t now, std::size_t batch) {
  Pass pass{store_, log_, now, 0, {}};
  batch = std::max<std::size_t>(batch, 1);
  const config::SubmitConfig& submit = config_->report.submit;
  const std::int64_t lease =
      static_cast<std::int64_t>(batch) * (static_cast<std::int64_t>(submit.timeout.count()) + 10);

  for (;;) {
    auto claimed = store_.claim_outbox(now, batch, lease);
    if (!claimed) {
      log_.error("outbox", "cannot claim entries: " + claimed.error().describe());
      return pass.stats;
    }
    for (const store::OutboxEntry& e : *claimed) {
      if (stop_ != nullptr && stop_->load()) return pass.stats;
      pass.max_age = max_age_of(e, submit);
      if (now - e.created_at > pass.max_age) {
        std::string why = "expired: queued " + std::to_string(now - e.created_at) + " s ago, " +
                          (pass.max_age == kHttpsMaxAge && is_https(e.recipient)
                               ? std::string("https deliveries are retried for 24 h")
                               : "report.submit.max-age is " + std::to_string(pass.max_age) + " s");
        if (!e.last_error.empty()) why += "; last error: " + e.last_error;
        pass.fail(e, why);
        continue;
      }
      if (is_failure_kind(e.kind)) {
        send_failure_report(pass, e);
      } else if (is_aggregate_kind(e.kind)) {
        send_aggregate_report(pass, e);
      } else {
        pass.put_back(e, "no sender for kind '" + e.kind + "' in this build");
      }
    }
    if (claimed->size() < batch || (stop_ != nullptr && stop_->load())) return pass.stats;
  }
}

void OutboxRunner::send_failure_report(Pass& pass, const store::OutboxEntry& e) {
  auto payload = store::failure_payload_from_json(e.payload);
  if (!payload) return pass.fail(e, "unreadable payload: " + payload.error().message);
  const config::FailureReportSettings& settings = *settings_for(*config_, payload->request.kind);
  if (!settings.send) {
    return pass.fail(e, std::string("report.") + auth::to_string(payload->request.kind) +
                            ".send is false: not sent");
  }
  auto built = build_failure_report(*payload, *config_, pass.now);
  if (!built) return pass.fail(e, "cannot build the report: " + built.error().message);
  auto signed_message = sign_if_asked(signers_, settings.sign, std::move(built->message));
  if (!signed_message) {
    return pass.retry_or_expire(e, "cannot sign: " + signed_message.error().message);
  }
  const std::string& message = *signed_message;
  // RFC 7489 §7.1: a report larger than the URI's "!size" is not sent.
  if (payload->request.max_size > 0 && message.size() > payload->request.max_size) {
    return pass.fail(e, "the report has " + std::to_string(message.size()) +
                            " bytes, more than the " + std::to_string(payload->request.max_size) +
                            " the recipient accepts");
  }
  SubmitOutcome out = submitter_.submit(built->from_address, built->recipient, message);
  switch (out.status) {
    case SubmitStatus::Sent: pass.sent(e, built->recipient, built->message_id); break;
    case SubmitStatus::PermFail: pass.fail(e, out.detail); break;
    case SubmitStatus::TempFail: pass.retry_or_expire(e, out.detail); break;
  }
}

void OutboxRunner::send_aggregate_report(Pass& pass, const store::OutboxEntry& e) {
  const bool tls = e.kind == store::kTlsAggregateKind;
  const config::AggregateReportSettings& settings =
      tls ? config_->report.tls_aggregate : config_->report.dmarc_aggregate;
  const std::string section = tls ? "report.tls.aggregate" : "report.dmarc.aggregate";

  auto payload = store::aggregate_payload_from_json(e.payload);
  if (!payload) return pass.fail(e, "unreadable payload: " + payload.error().message);
  if (settings.send == config::AggregateFrequency::Never) {
    return pass.fail(e, section + ".send is never: not sent");
  }
  const std::string uri = payload->uri.empty() ? e.recipient : payload->uri;
  const bool https = is_https(uri);
  if (https && !tls) {
    // RFC 7489 §6.2 / RFC 9990 §3.5: DMARC aggregate reports go by mail only.
    return pass.fail(e, "not a mailto URI: " + uri);
  }
  if (https && !aggregate_.https) {
    return pass.put_back(e, "no https poster configured for " + uri);
  }
  if (!tls && !aggregate_.resolver) {
    return pass.put_back(e, "no resolver configured for DMARC destination verification");
  }

  // A destination that keeps bouncing (or an admin's `mailreport suppress add`) gets nothing.
  auto suppressed = store_.is_suppressed(e.recipient);
  if (!suppressed) {
    return pass.retry_or_expire(e, "cannot read suppressions: " + suppressed.error().describe());
  }
  if (*suppressed) {
    return pass.fail(e, e.recipient + " is suppressed (mailreport suppress list): not sent");
  }

  auto report = store_.get_aggregate_report(payload->report);
  if (!report) {
    if (report.error().code == ErrorCode::NotFound) {
      return pass.fail(
          e, "aggregate report #" + std::to_string(payload->report) + " is no longer stored");
    }
    return pass.retry_or_expire(e, "cannot read aggregate report #" +
                                       std::to_string(payload->report) + ": " +
                                       report.error().describe());
  }

  if (https) {
    // RFC 8460 §5.4: POST the gzip file as application/tlsrpt+gzip.
    if (settings.max_size > 0 && report->content.size() > settings.max_size) {
      return pass.fail(e, "the report has " + std::to_string(report->content.size()) +
                              " bytes, too large for " + section + ".max-size (" +
                              std::to_string(settings.max_size) + ")");
    }
    SubmitOutcome out = aggregate_.https->post(uri, kTlsrptGzip, report->content);
    switch (out.status) {
      case SubmitStatus::Sent: pass.sent(e, uri, ""); break;
      case SubmitStatus::PermFail: pass.fail(e, out.detail); break;
      case SubmitStatus::TempFail: pass.retry_or_expire(e, out.detail); break;
    }
    return;
  }

  // The mailto destination as published (with its !size), or the entry's address.
  auth::ReportMailto dest;
  if (auto parsed = auth::parse_report_mailto(uri)) {
    dest = std::move(*parsed);
  } else {
    dest.address = e.recipient;
    const auto at = e.recipient.rfind('@');
    if (at == std::string::npos) return pass.fail(e, "not a mail address: " + e.recipient);
    dest.host = e.recipient.substr(at + 1);
    std::transform(dest.host.begin(), dest.host.end(), dest.host.begin(), lower);
  }
  // The payload's !size is the builder's reading of the URI; the stricter of the two holds.
  dest.max_size = min_limit(dest.max_size, payload->max_size);

  auth::ReportMailto target = dest;
  std::vector<auth::ReportMailto> extra;
  if (!tls) {
    // RFC 7489 §7.1 / RFC 9990 §4: external destination verification for the report's
    // policy domain.
    auth::DestinationVerdict v =
        auth::verify_report_destination(*aggregate_.resolver, *aggregate_.dmarc,
                                        report->policy_domain, "", dest, auth::ReportUriTag::Rua);
    if (v.status == auth::DestinationStatus::TempError) return pass.retry_or_expire(e, v.why);
    if (v.status != auth::DestinationStatus::Authorized || v.targets.empty()) {
      return pass.fail(e, "destination not verified for " + report->policy_domain + ": " + v.why);
    }
    auto self = std::find_if(v.targets.begin(), v.targets.end(), [&](const auth::ReportMailto& t) {
      return iequals(t.address, dest.address);
    });
    if (self != v.targets.end()) {
      target.max_size = min_limit(dest.max_size, self->max_size);
    } else {
      // The verification record's rua= replaces the destination (same host, checked).
      target = v.targets.front();
      extra.assign(v.targets.begin() + 1, v.targets.end());
      log_.info(context_of(e), dest.address + " replaced by " + target.address + ": " + v.why);
      auto target_suppressed = store_.is_suppressed(target.address);
      if (!target_suppressed) {
        return pass.retry_or_expire(
            e, "cannot read suppressions: " + target_suppressed.error().describe());
      }
      if (*target_suppressed) {
        return pass.fail(e, target.address + " (replacing " + dest.address +
                                ") is suppressed (mailreport suppress list): not sent");
      }
    }
  }

  auto built = build_aggregate_message(*report, *config_, target.address, pass.now);
  if (!built) return pass.fail(e, "cannot build the report message: " + built.error().message);
  auto signed_message = sign_if_asked(signers_, settings.sign, std::move(built->message));
  if (!signed_message) {
    return pass.retry_or_expire(e, "cannot sign: " + signed_message.error().message);
  }
  const std::string& message = *signed_message;
  // RFC 7489 §7.1 "!size" and our own max-size (see the file comment: the signed message).
  if (target.max_size > 0 && message.size() > target.max_size) {
    return pass.fail(e, "the report message has " + std::to_string(message.size()) +
                            " bytes, too large for " + target.address + " (!size " +
                            std::to_string(target.max_size) + ")");
  }
  if (settings.max_size > 0 && message.size() > settings.max_size) {
    return pass.fail(e, "the report message has " + std::to_string(message.size()) +
                            " bytes, too large for " + section + ".max-size (" +
                            std::to_string(settings.max_size) + ")");
  }

  SubmitOutcome out = submitter_.submit(built->envelope_from, target.address, message);
  switch (out.status) {
    case SubmitStatus::Sent: {
      // The replacement's other URIs: an entry each, due now, with the same deadline.
      for (const auto& t : extra) {
        store::OutboxEntry more;
        more.kind = e.kind;
        more.recipient = t.address;
        more.reported_domain = e.reported_domain;
        more.created_at = e.created_at;
        more.next_attempt_at = pass.now;
        store::AggregatePayload p;
        p.report = payload->report;
        p.uri = "mailto:" + t.address;
        p.max_size = t.max_size;
        more.payload = store::to_json(p);
        auto id = store_.enqueue_outbox(more);
        if (!id) {
          log_.error(context_of(e),
                     "cannot queue the report for " + t.address + ": " + id.error().describe());
        }
      }
      pass.sent(e, target.address, built->message_id);
      break;
    }
    case SubmitStatus::PermFail: pass.fail(e, out.detail); break;
    case SubmitStatus::TempFail: pass.retry_or_expire(e, out.detail); break;
  }
}

}  // namespace mailreport::outbound
