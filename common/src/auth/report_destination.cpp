// auth/report_destination: external destination verification of DMARC report URIs (RFC 7489
// §7.1, RFC 9990 §4, RFC 9991); see mailreport/auth/report_destination.hpp for the rules.
// Moved here from the failure-report planner so that aggregate sending applies the same check.
#include "mailreport/auth/report_destination.hpp"

#include "dmarc_internal.hpp"

namespace mailreport::auth {

DestinationVerdict verify_report_destination(dns::Resolver& resolver, const DmarcEvaluator& dmarc,
                                             std::string_view policy_domain_in,
                                             std::string_view policy_org_in,
                                             const ReportMailto& dest, ReportUriTag tag) {
  DestinationVerdict v;
  const std::string policy_domain = dmarc_detail::normalize_domain(policy_domain_in);
  std::string policy_org(policy_org_in);
  if (policy_org.empty() || !dmarc_detail::is_at_or_below(policy_domain, policy_org)) {
    policy_org = dmarc.organizational_domain(policy_domain);
  }
  // RFC 7489 §7.1: only when the Organizational Domains differ. An unknown one (DNS error on
  // the walk) is taken as different: the check below then decides.
  const std::string dest_org = dmarc.organizational_domain(dest.host);
  if (!policy_org.empty() && !dest_org.empty() && dest_org == policy_org) {
    v.status = DestinationStatus::Authorized;
    v.targets.push_back(dest);
    v.why = dest.host + " is in " + policy_domain + "'s organization";
    return v;
  }
  const std::string name = policy_domain + "._report._dmarc." + dest.host;
  if (!dmarc_detail::is_domain_name(name)) {
    v.why = name + " is too long to be a domain name: not authorized";
    return v;
  }
  const dns::Answer a = resolver.query(name, dns::RType::TXT);
  if (a.status == dns::Status::TempError) {
    // RFC 7489 §7.1: on a temporary DNS error the receiver MAY defer.
    v.status = DestinationStatus::TempError;
    v.why = "DNS error looking up " + name + ": " + a.why;
    return v;
  }
  for (const auto& txt : dns::txt_records(a)) {
    auto parsed = dmarc_detail::parse_record(txt);  // RFC 9990 §4: starts with v=DMARC1
    if (!parsed) continue;
    const auto& replacement = tag == ReportUriTag::Rua ? parsed->record.rua : parsed->record.ruf;
    for (const auto& r : replacement) {
      auto other = parse_report_mailto(r);
      if (!other) continue;
      // RFC 7489 §7.1 step 4: the replacement must keep the destination host; if one does not,
      // reports go to neither.
      if (other->host != dest.host) {
        v.targets.clear();
        v.why = name + " replaces the destination with " + other->address +
                ", on another host: not authorized";
        return v;
      }
      v.targets.push_back(std::move(*other));
    }
    v.status = DestinationStatus::Authorized;
    if (v.targets.empty()) {
      v.targets.push_back(dest);
      v.why = "authorized by " + name;
    } else {
      v.why = "authorized by " + name + ", which replaces the destination";
    }
    return v;
  }
  v.why = "no v=DMARC1 record at " + name + ": not authorized";
  return v;
}

}  // namespace mailreport::auth
