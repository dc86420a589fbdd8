// JSON rendering of DMARC aggregate reports (RFC 7489 Appendix C / RFC 9990 Appendix A), as
// printed by `mailreport parse`, `show --json` and `export --format json`.
//
// Keys are the XML element names. Every key is always present, so the output has one stable
// shape: an absent element is an empty string (or an empty list), except <pct>, which is null
// when absent because 0 is a meaningful percentage.
#include "mailreport/report/json.hpp"

namespace mailreport::report {

nlohmann::json to_json(const DmarcHeader& header) {
  const DmarcReportMetadata& md = header.report_metadata;
  const DmarcPolicyPublished& pp = header.policy_published;
  nlohmann::json j;
  j["version"] = header.version;
  j["xml_namespace"] = header.xml_namespace;
  j["report_metadata"] = {
      {"org_name", md.org_name},
      {"email", md.email},
      {"extra_contact_info", md.extra_contact_info},
      {"report_id", md.report_id},
      {"date_range", {{"begin", md.date_range.begin}, {"end", md.date_range.end}}},
      {"error", md.error},
      {"generator", md.generator},
  };
  j["policy_published"] = {
      {"domain", pp.domain}, {"discovery_method", pp.discovery_method},
      {"adkim", pp.adkim},   {"aspf", pp.aspf},
      {"p", pp.p},           {"sp", pp.sp},
      {"np", pp.np},         {"pct", pp.pct ? nlohmann::json(*pp.pct) : nlohmann::json(nullptr)},
      {"fo", pp.fo},         {"testing", pp.testing},
  };
  return j;
}

nlohmann::json to_json(const DmarcRecord& record) {
  const DmarcPolicyEvaluated& ev = record.row.policy_evaluated;
  nlohmann::json reasons = nlohmann::json::array();
  for (const DmarcReason& r : ev.reason) {
    reasons.push_back({{"type", r.type}, {"comment", r.comment}});
  }
  nlohmann::json dkim = nlohmann::json::array();
  for (const DmarcDkimAuth& d : record.auth_results.dkim) {
    dkim.push_back({{"domain", d.domain},
                    {"selector", d.selector},
                    {"result", d.result},
                    {"human_result", d.human_result}});
  }
  nlohmann::json spf = nlohmann::json::array();
  for (const DmarcSpfAuth& s : record.auth_results.spf) {
    spf.push_back({{"domain", s.domain},
                   {"scope", s.scope},
                   {"result", s.result},
                   {"human_result", s.human_result}});
  }
  nlohmann::json j;
  j["row"] = {
      {"source_ip", record.row.source_ip},
      {"count", record.row.count},
      {"policy_evaluated",
       {{"disposition", ev.disposition}, {"dkim", ev.dkim}, {"spf", ev.spf}, {"reason", reasons}}},
  };
  j["identifiers"] = {
      {"envelope_to", record.identifiers.envelope_to},
      {"envelope_from", record.identifiers.envelope_from},
      {"header_from", record.identifiers.header_from},
  };
  j["auth_results"] = {{"dkim", dkim}, {"spf", spf}};
  return j;
}

nlohmann::json to_json(const DmarcAggregate& report) {
  nlohmann::json j = to_json(report.header);
  nlohmann::json records = nlohmann::json::array();
  for (const DmarcRecord& r : report.records) records.push_back(to_json(r));
  j["records"] = std::move(records);
  j["errors"] = report.errors;
  return j;
}

}  // namespace mailreport::report
