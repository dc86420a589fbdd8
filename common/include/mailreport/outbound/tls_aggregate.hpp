// outbound/tls_aggregate: the AggregateSource (aggregate_builder.hpp) for SMTP TLS reports
// (RFC 8460 §4): one report per recipient domain and TLSRPT record, daily, from the
// collector's counts (store::TlsPolicyCount): organization-name, date-range, contact-info
// (report.tls.aggregate.contact-info, else from-address), report-id, and per policy the type,
// strings, domain, MX hosts, summary and failure details with RFC 8460 §4.3 result types;
// written with report::write_tlsrpt_json, gzip. Deliveries: the record's rua= URIs (RFC 8460
// §3: mailto: and https:, comma-separated), in order; a record that does not parse
// (v=TLSRPTv1 first, a valid rua=) gives no report and is logged.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/outbound/aggregate_builder.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

// RFC 8460 §3: a TLSRPT record's rua= URIs (mailto: with %-decoding, or https:). Invalid when
// it is not "v=TLSRPTv1" first or has no usable rua=.
struct TlsrptRecord {
  std::vector<std::string> rua;  // "mailto:..." | "https://..." as written
};
Result<TlsrptRecord> parse_tlsrpt_record(std::string_view txt);

// The reports' sender domain: RFC 8460 §5.1's filename "sender" and §5.3's
// TLS-Report-Submitter, which must be the domain of contact-info (report.tls.aggregate.
// contact-info, else from-address); report.submitter when that is not an address.
std::string tls_report_submitter(const config::Config& config);

std::unique_ptr<AggregateSource> make_tls_source(std::shared_ptr<const config::Config> config,
                                                 Logger& log);

}  // namespace mailreport::outbound
