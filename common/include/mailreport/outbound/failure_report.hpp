// outbound/failure_report: builds an authentication failure report (RFC 6591 / RFC 9991 for
// DMARC, RFC 6651 for DKIM, RFC 6652 for SPF) from a queued FailurePayload, as an RFC 5965
// multipart/report; report-type=feedback-report message (GMime):
//   1. text/plain: a human-readable summary;
//   2. message/feedback-report: Feedback-Type: auth-failure, User-Agent, Version: 1,
//      Original-Mail-From, Original-Rcpt-To, Arrival-Date, Source-IP, Reporting-MTA,
//      Reported-Domain, Authentication-Results, Auth-Failure, Delivery-Result,
//      DKIM-Domain/Identity/Selector and DKIM-Canonicalized-Header/Body (dkim, when known),
//      SPF-DNS (spf), Identity-Alignment (dmarc);
//   3. the original as text/rfc822-headers (report.failure.include = "headers", default) or
//      message/rfc822 ("message").
// Header: From `from-name <from-address>` of report.<kind>, To the recipient, Subject
// report.<kind>.subject (with the reported domain appended), Date, Message-ID, MIME-Version,
// Auto-Submitted: auto-generated (RFC 3834). RFC 6590 redaction when report.failure.redact.
// The result is unsigned, with CRLF line ends; outbound/signer signs it.
#pragma once

#include <cstdint>
#include <string>

#include "mailreport/config/config.hpp"
#include "mailreport/store/failure_payload.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

struct BuiltFailureReport {
  std::string from_address;  // envelope sender and From address (aligned with the signature)
  std::string recipient;
  std::string message_id;  // without <>
  std::string message;     // the whole message, CRLF line ends
};

// `now`: Date; `message_id`: without <> ("" = generated: random@report.domain).
Result<BuiltFailureReport> build_failure_report(const store::FailurePayload& payload,
                                                const config::Config& config, std::int64_t now,
                                                std::string message_id = {});

}  // namespace mailreport::outbound
