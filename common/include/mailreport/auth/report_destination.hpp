// auth/report_destination: external destination verification of DMARC report URIs (RFC 7489
// §7.1; RFC 9990 §4 for rua, RFC 9991 for ruf): may mail about `policy_domain` go to a mailto
// destination on another organization's host? Shared by the failure-report planner (ruf, when
// a message is evaluated) and the outbox runner (rua, when an aggregate report is sent).
//
// 1. When the destination host's Organizational Domain is the policy domain's, no check is
//    needed (an unknown one, after a DNS error, counts as different: step 2 decides).
// 2. Else a TXT record starting "v=DMARC1" must exist at
//    <policy-domain>._report._dmarc.<destination host> (a name too long to be one is "not
//    authorized"); a temporary DNS error is TempError (RFC 7489 §7.1: the receiver MAY defer).
// 3. A rua= (aggregate) or ruf= (failure) tag in that record replaces the URI; every
//    replacement must name the same destination host, else neither is used (RFC 7489 §7.1
//    step 4). Replacement URIs that are not usable mailto URIs are ignored.
//
// Not done: RFC 7489's rule that several verification records fail (RFC 9990 §4 accepts any
// one record that starts with v=DMARC1; we follow RFC 9990).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {

// Which tag of the verification record replaces the destination.
enum class ReportUriTag { Rua, Ruf };

enum class DestinationStatus { Authorized, NotAuthorized, TempError };

struct DestinationVerdict {
  DestinationStatus status = DestinationStatus::NotAuthorized;
  // Authorized: where the reports go — the destination itself, or the verification record's
  // replacement URIs (all on the destination's host), in order.
  std::vector<ReportMailto> targets;
  // What was decided and why (for logs and outbox errors).
  std::string why;
};

// `policy_org`: the policy domain's Organizational Domain when the caller knows it ("" = look
// it up with `dmarc`). DNS goes through `resolver` (the same one `dmarc` uses).
DestinationVerdict verify_report_destination(dns::Resolver& resolver, const DmarcEvaluator& dmarc,
                                             std::string_view policy_domain,
                                             std::string_view policy_org,
                                             const ReportMailto& destination, ReportUriTag tag);

}  // namespace mailreport::auth
