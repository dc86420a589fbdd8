// outbound/outbox_runner: mailreport serve's outbox pass (see
// mailreport/outbound/outbox_runner.hpp).
//
// Each claimed entry ends the pass in exactly one recorded state:
//   - sent, with the report's Message-ID (for matching bounces later);
//   - retried after a temporary failure (submission TempFail, a signing failure — a key or
//     configuration problem a reload can fix), 1 min doubling to 1 h, never later than
//     created_at + report.submit.max-age, the last attempt;
//   - failed: a permanent submission failure, a payload that cannot be read or built, a report
//     larger than the recipient's !size (RFC 7489 §7.1: do not send it), report.<kind>.send
//     turned off since it was queued, or max-age reached.
// Entries of a kind this build cannot send (aggregate kinds queued by a newer build) are put
// back for an hour, untouched otherwise, and expire like any other.
//
// A claim's lease covers the whole batch being worked on (batch × (submit timeout + 10 s)), so
// another sender never takes an entry this one may still submit; a crash leaves them queued
// until the lease runs out.
#include "mailreport/outbound/outbox_runner.hpp"

#include <algorithm>
#include <string>

#include "mailreport/outbound/failure_report.hpp"
#include "mailreport/store/failure_payload.hpp"

namespace mailreport::outbound {

namespace {

constexpr std::int64_t kFirstBackoff = 60;  // 1 min
constexpr std::int64_t kMaxBackoff = 3600;  // 1 h
constexpr std::int64_t kUnknownKindDelay = 3600;

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

std::string context_of(const store::OutboxEntry& e) {
  return "outbox#" + std::to_string(e.id);
}

}  // namespace

OutboxRunner::OutboxRunner(std::shared_ptr<const config::Config> config, store::Store& store,
                           const Signers& signers, Submitter& submitter, Logger& log)
    : config_(std::move(config)),
      store_(store),
      signers_(signers),
      submitter_(submitter),
      log_(log) {}

OutboxPassStats OutboxRunner::run_once(std::int64_t now, std::size_t batch) {
  OutboxPassStats stats;
  batch = std::max<std::size_t>(batch, 1);
  const config::SubmitConfig& submit = config_->report.submit;
  const std::int64_t lease =
      static_cast<std::int64_t>(batch) * (static_cast<std::int64_t>(submit.timeout.count()) + 10);
  const std::int64_t max_age = submit.max_age.count();

  for (;;) {
    auto claimed = store_.claim_outbox(now, batch, lease);
    if (!claimed) {
      log_.error("outbox", "cannot claim entries: " + claimed.error().describe());
      return stats;
    }
    for (const store::OutboxEntry& e : *claimed) {
      if (stop_ != nullptr && stop_->load()) return stats;
      const std::string ctx = context_of(e);
      // Records one outcome; a store failure is logged (the lease brings the entry back).
      auto record = [&](Status st, const char* what) {
        if (!st)
          log_.error(ctx, std::string("cannot record ") + what + ": " + st.error().describe());
      };
      auto fail = [&](const std::string& why) {
        log_.warning(ctx, "failed: " + e.kind + " to " + e.recipient + ": " + why);
        record(store_.outbox_failed(e.id, now, why), "failure");
        ++stats.failed;
      };
      auto retry_or_expire = [&](const std::string& why) {
        if (now - e.created_at >= max_age) {
          fail("gave up after " + std::to_string(e.attempts + 1) + " attempts: " + why);
          return;
        }
        // The last attempt happens at the deadline, not after it.
        std::int64_t next = std::min(now + backoff(e.attempts), e.created_at + max_age);
        log_.info(ctx, "will retry " + e.kind + " to " + e.recipient + " at " +
                           std::to_string(next) + ": " + why);
        record(store_.outbox_retry(e.id, next, why), "retry");
        ++stats.retried;
      };

      if (now - e.created_at > max_age) {
        std::string why = "expired: queued " + std::to_string(now - e.created_at) +
                          " s ago, report.submit.max-age is " + std::to_string(max_age) + " s";
        if (!e.last_error.empty()) why += "; last error: " + e.last_error;
        fail(why);
        continue;
      }
      if (!is_failure_kind(e.kind)) {
        log_.warning(ctx, "no sender for outbox kind '" + e.kind + "' in this build");
        record(store_.outbox_retry(e.id, now + kUnknownKindDelay,
                                   "no sender for kind '" + e.kind + "' in this build"),
               "retry");
        ++stats.retried;
        continue;
      }
      auto payload = store::failure_payload_from_json(e.payload);
      if (!payload) {
        fail("unreadable payload: " + payload.error().message);
        continue;
      }
      const config::FailureReportSettings& settings =
          *settings_for(*config_, payload->request.kind);
      if (!settings.send) {
        fail(std::string("report.") + auth::to_string(payload->request.kind) +
             ".send is false: not sent");
        continue;
      }
      auto built = build_failure_report(*payload, *config_, now);
      if (!built) {
        fail("cannot build the report: " + built.error().message);
        continue;
      }
      std::string message = std::move(built->message);
      if (!settings.sign.empty()) {
        auto signed_message = signers_.sign(settings.sign, message);
        if (!signed_message) {
          retry_or_expire("cannot sign: " + signed_message.error().message);
          continue;
        }
        message = std::move(*signed_message);
      }
      // RFC 7489 §7.1: a report larger than the URI's "!size" is not sent.
      if (payload->request.max_size > 0 && message.size() > payload->request.max_size) {
        fail("the report has " + std::to_string(message.size()) + " bytes, more than the " +
             std::to_string(payload->request.max_size) + " the recipient accepts");
        continue;
      }
      SubmitOutcome out = submitter_.submit(built->from_address, built->recipient, message);
      switch (out.status) {
        case SubmitStatus::Sent:
          log_.info(ctx, "sent " + e.kind + " to " + built->recipient + " as <" +
                             built->message_id + ">");
          record(store_.outbox_sent(e.id, now, built->message_id), "sending");
          ++stats.sent;
          break;
        case SubmitStatus::PermFail: fail(out.detail); break;
        case SubmitStatus::TempFail: retry_or_expire(out.detail); break;
      }
    }
    if (claimed->size() < batch || (stop_ != nullptr && stop_->load())) return stats;
  }
}

}  // namespace mailreport::outbound
