// Synthetic milter evaluations for the store benchmarks (bench-evaluations-record,
// bench-aggregate-populate): what mailreport-milter hands to Store::record_evaluations for a
// message from `source` IP about policy domain "d<NNNNNNN>.example" (rua= published, so it is
// kept), with DKIM and SPF results that vary by `variant` (a sender's messages mostly pass,
// some fail), so that one domain's traffic makes several distinct rows.
#pragma once

#include <cstdint>
#include <string>

#include "mailreport/auth/verdict.hpp"

namespace mailreport::bench {

// Zero-padded, so that the names sort like their numbers: a populate that goes through the
// domains in order appends to the store's B-trees instead of inserting all over them.
inline std::string domain_name(std::uint64_t domain) {
  std::string n = std::to_string(domain);
  if (n.size() < 7) n.insert(0, 7 - n.size(), '0');
  return "d" + n + ".example";
}

// An IPv4 address for source number `n` of a domain: 10.0.0.0/8, distinct per (domain, n).
inline std::string source_ip(std::uint64_t domain, std::uint64_t n) {
  std::uint64_t v = (domain * 64 + n) & 0xffffff;
  return "10." + std::to_string((v >> 16) & 0xff) + "." + std::to_string((v >> 8) & 0xff) + "." +
         std::to_string(v & 0xff);
}

// variant 0: DKIM and SPF pass (aligned); 1: DKIM fails (body changed, a forwarder); 2: SPF
// fails (unaligned); 3: both fail, rejected.
inline auth::Evaluation make_evaluation(std::uint64_t domain, std::uint64_t source,
                                        std::int64_t time, unsigned variant = 0) {
  const std::string d = domain_name(domain);
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = source_ip(domain, source);
  ev.helo = "mail" + std::to_string(source) + "." + d;
  ev.envelope_from = "bounce." + d;
  ev.envelope_to = "ours.example";
  ev.header_from = d;
  ev.message_id = "<m" + std::to_string(time) + "@" + d + ">";
  const bool dkim_ok = variant == 0 || variant == 2;
  const bool spf_ok = variant == 0 || variant == 1;
  ev.spf = {{auth::SpfScope::MailFrom, spf_ok ? auth::SpfResult::Pass : auth::SpfResult::SoftFail,
             "bounce." + d, "a@bounce." + d, ""},
            {auth::SpfScope::Helo, auth::SpfResult::None, ev.helo, ev.helo, ""}};
  ev.dkim = {{dkim_ok ? auth::DkimResult::Pass : auth::DkimResult::Fail, d, "s2024", "@" + d,
              "rsa-sha256", dkim_ok ? "" : "body hash mismatch", false, "abcdefgh", false, "", "",
              ""}};
  auto& v = ev.dmarc;
  v.result = dkim_ok || spf_ok ? auth::DmarcResult::Pass : auth::DmarcResult::Fail;
  v.header_from = d;
  v.policy_domain = d;
  v.org_domain = d;
  v.discovery = auth::Discovery::TreeWalk;
  auth::DmarcRecord r;
  r.p = domain % 3 == 0 ? auth::Policy::None : auth::Policy::Reject;
  r.rua = {"mailto:dmarc-rua@" + d};
  r.text = "v=DMARC1; p=reject; rua=mailto:dmarc-rua@" + d;
  v.record = r;
  v.applied_policy = r.p;
  v.dkim_aligned = dkim_ok;
  v.spf_aligned = spf_ok;
  v.disposition = v.result == auth::DmarcResult::Pass || r.p == auth::Policy::None
                      ? auth::Disposition::None
                      : auth::Disposition::Reject;
  return ev;
}

}  // namespace mailreport::bench
