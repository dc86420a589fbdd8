// Aggregate reports for the sending tests: a DMARC report (XML by our writer) and a TLS report
// (JSON by our writer), gzip-compressed as the builders store them, wrapped as the
// store::AggregateReport an outbox entry points at; and the configuration sections they need.
#pragma once

#include <string>

#include "../report/extract_test_support.hpp"

#include "mailreport/config/config.hpp"
#include "mailreport/report/dmarc_xml_writer.hpp"
#include "mailreport/report/tlsrpt_writer.hpp"
#include "mailreport/store/store.hpp"

namespace mailreport::outbound::aggregate_test {

inline constexpr std::int64_t kBegin = 1763683200;  // 2025-11-21 00:00 UTC
inline constexpr std::int64_t kEnd = kBegin + 86400;

inline report::DmarcAggregate sample_dmarc(const std::string& domain = "example.com") {
  report::DmarcAggregate a;
  a.header.version = "1.0";
  auto& m = a.header.report_metadata;
  m.org_name = "ours.example";
  m.email = "noreply-dmarc@ours.example";
  m.report_id = "20251121.0123456789abcdef";
  m.date_range = {kBegin, kEnd - 1};
  m.generator = "mailreport/test";
  auto& p = a.header.policy_published;
  p.domain = domain;
  p.discovery_method = "treewalk";
  p.p = "reject";
  p.adkim = "r";
  p.aspf = "r";
  p.testing = "n";
  report::DmarcRecord r;
  r.row.source_ip = "192.0.2.1";
  r.row.count = 7;
  r.row.policy_evaluated = {"none", "pass", "fail", {}};
  r.identifiers.header_from = domain;
  r.identifiers.envelope_from = domain;
  r.auth_results.dkim = {{domain, "s1", "pass", ""}};
  r.auth_results.spf = {{domain, "mfrom", "fail", ""}};
  a.records.push_back(r);
  r.row.source_ip = "2001:db8::5";
  r.row.count = 2;
  r.row.policy_evaluated = {"reject", "fail", "fail", {}};
  r.auth_results.dkim = {{domain, "s1", "fail", ""}};
  a.records.push_back(r);
  return a;
}

inline report::TlsReport sample_tls(const std::string& domain = "example.com") {
  report::TlsReport t;
  t.organization_name = "ours.example";
  t.date_range = {kBegin, kEnd - 1};
  t.contact_info = "noreply-tls@ours.example";
  t.report_id = "20251121.fedcba9876543210";
  report::TlsPolicy p;
  p.policy_type = "sts";
  p.policy_string = {"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"};
  p.policy_domain = domain;
  p.mx_host = {"mx.example.com"};
  p.total_successful_session_count = 40;
  p.total_failure_session_count = 2;
  report::TlsFailureDetail f;
  f.result_type = "certificate-expired";
  f.sending_mta_ip = "198.51.100.7";
  f.receiving_mx_hostname = "mx.example.com";
  f.receiving_ip = "203.0.113.9";
  f.failed_session_count = 2;
  p.failure_details.push_back(f);
  t.policies.push_back(p);
  return t;
}

inline store::AggregateReport dmarc_report(const report::DmarcAggregate& a) {
  store::AggregateReport r;
  r.id = 1;
  r.kind = std::string(store::kDmarcAggregateKind);
  r.report_id = a.header.report_metadata.report_id;
  r.policy_domain = a.header.policy_published.domain;
  r.date_begin = kBegin;
  r.date_end = kEnd;
  r.created_at = kEnd + 300;
  r.filename = "mx.ours.example!" + r.policy_domain + "!" + std::to_string(kBegin) + "!" +
               std::to_string(kEnd - 1) + "!" + r.report_id + ".xml.gz";
  r.records = a.records.size();
  for (const auto& rec : a.records) r.messages += rec.row.count;
  auto xml = report::write_dmarc_xml(a, report::DmarcXmlFormat::Rfc9990);
  if (xml) r.content = report::extract_test::gzip(*xml);
  return r;
}

inline store::AggregateReport tls_report(const report::TlsReport& t) {
  store::AggregateReport r;
  r.id = 2;
  r.kind = std::string(store::kTlsAggregateKind);
  r.report_id = t.report_id;
  r.policy_domain = t.policies.front().policy_domain;
  r.date_begin = kBegin;
  r.date_end = kEnd;
  r.created_at = kEnd + 300;
  r.filename = "ours.example!" + r.policy_domain + "!" + std::to_string(kBegin) + "!" +
               std::to_string(kEnd - 1) + "!" + r.report_id + ".json.gz";
  r.records = t.policies.size();
  r.messages = 42;
  r.content = report::extract_test::gzip(report::write_tlsrpt_json(t));
  return r;
}

// report.domain, report.submitter and both aggregate sections set as the configuration
// defaults would (the keys' parsing is tested in config/).
inline void configure(config::Config& c) {
  c.report.domain = "ours.example";
  c.report.submitter = "mx.ours.example";
  c.report.dmarc_aggregate.from_name = "DMARC Report";
  c.report.dmarc_aggregate.from_address = "noreply-dmarc@ours.example";
  c.report.dmarc_aggregate.org_name = "ours.example";
  c.report.tls_aggregate.from_name = "TLS Report";
  c.report.tls_aggregate.from_address = "noreply-tls@ours.example";
  c.report.tls_aggregate.org_name = "ours.example";
}

}  // namespace mailreport::outbound::aggregate_test
