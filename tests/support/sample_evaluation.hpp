// A milter evaluation as the store records it (auth::Evaluation with a DMARC record that has
// rua=), for tests that need evaluation rows without caring about every field: change the
// source IP, the time or the policy domain to get another row. Header only, no GoogleTest.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "mailreport/auth/verdict.hpp"

namespace mailreport::test {

inline auth::Evaluation sample_evaluation(std::int64_t time, std::string source_ip = "192.0.2.1",
                                          std::string policy_domain = "example.com",
                                          auth::Policy p = auth::Policy::Reject) {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = std::move(source_ip);
  ev.helo = "mail.sender.example";
  ev.envelope_from = "bounce." + policy_domain;
  ev.envelope_to = "ours.example";
  ev.header_from = policy_domain;
  ev.message_id = "<m1@" + policy_domain + ">";
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Pass, "bounce." + policy_domain,
             "a@bounce." + policy_domain, ""}};
  ev.dkim = {{auth::DkimResult::Pass, policy_domain, "s1", "@" + policy_domain, "rsa-sha256", "",
              false, "abcdefgh", false, "", "", ""}};
  auto& d = ev.dmarc;
  d.result = auth::DmarcResult::Pass;
  d.header_from = policy_domain;
  d.policy_domain = policy_domain;
  d.org_domain = policy_domain;
  d.discovery = auth::Discovery::TreeWalk;
  auth::DmarcRecord r;
  r.p = p;
  r.rua = {"mailto:dmarc@" + policy_domain};
  r.text = "v=DMARC1; p=" + std::string(auth::to_string(p)) + "; rua=mailto:dmarc@" + policy_domain;
  d.record = r;
  d.applied_policy = p;
  d.dkim_aligned = true;
  d.spf_aligned = true;
  d.disposition = auth::Disposition::None;
  return ev;
}

}  // namespace mailreport::test
