// outbound/aggregate_message: the mail message that carries an aggregate report (built with
// GMime, CRLF line ends, unsigned: the runner signs it).
// - DMARC (RFC 7489 §7.2.1.1, RFC 9990 §3.2? / standards.md): From from-name <from-address>,
//   To the destination, Subject "Report Domain: D Submitter: S Report-ID: <ID>", Date,
//   Message-ID, MIME-Version, Auto-Submitted: auto-generated; multipart/mixed with a short
//   text/plain part and the report as application/gzip, Content-Disposition attachment,
//   filename the report's (S!D!BEGIN!END!ID.xml.gz), base64.
// - TLS (RFC 8460 §5.3): multipart/report; report-type="tlsrpt" with a text/plain part and the
//   report as application/tlsrpt+gzip (filename S!D!BEGIN!END!ID.json.gz), headers
//   TLS-Report-Domain: D and TLS-Report-Submitter: S, Subject "Report Domain: D Submitter: S
//   Report-ID: <ID>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

struct AggregateMessage {
  std::string message;     // CRLF line ends
  std::string message_id;  // without angle brackets
  std::string envelope_from;
};

// `report` with its content; settings = report.dmarc.aggregate or report.tls.aggregate by the
// report's kind; report.submitter names the submitter. `message_id` "" = a new one
// (<random@report.domain>).
Result<AggregateMessage> build_aggregate_message(const store::AggregateReport& report,
                                                 const config::Config& config, std::string_view to,
                                                 std::int64_t date,
                                                 std::string_view message_id = {});

}  // namespace mailreport::outbound
