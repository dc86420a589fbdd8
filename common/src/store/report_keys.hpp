// De-duplication keys and list columns of every report type, independent of the database.
//
// DMARC aggregate (RFC 9990 §3.5.4) and TLS (RFC 8460 §4.4 report-id) reports carry a report
// id; the key is (org, report id, policy domain). When a reporter leaves the id empty, it is
// "sha256:" + a digest of (org, contact address, period, policy domain), so that two reports
// of one org about one domain do not collide on "". ARF (RFC 5965) and DSN (RFC 3464) reports
// carry none, so the key is (From domain or Reporting-MTA, the report message's Message-ID or
// a SHA-256 of its fields when it has none, reported/sender domain).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mailreport/report/model.hpp"

namespace mailreport::store {

struct ReportKey {
  std::string org_name;
  std::string report_id;
  std::string policy_domain;  // lower case, no trailing dot
  std::int64_t date_begin = 0;
  std::int64_t date_end = 0;
};

ReportKey key_of(const report::DmarcHeader& header);
ReportKey key_of(const report::TlsReport& report);
ReportKey key_of(const report::ArfReport& report, std::int64_t received_at);
ReportKey key_of(const report::DsnReport& report, std::int64_t received_at);

// The parser note stored with a DMARC or TLS report whose id was derived (key.report_id).
std::string missing_report_id_note(std::string_view derived);

std::string normalize_domain(std::string_view domain);
// The domain of an address or a From field value ("Name <a@Example.COM>" → "example.com").
std::string domain_of_address(std::string_view address);
// "dns; mx.example.net" → "mx.example.net" (RFC 3464 §2.2.2 mta-name-type is dropped).
std::string strip_type(std::string_view typed_value);

}  // namespace mailreport::store
