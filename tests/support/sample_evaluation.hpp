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

// A DMARC failure of `policy_domain` (p=reject, fo=1, SPF fail) asking for one DMARC failure
// report to `recipient` (ruf=), without rua= (so it queues a report and adds no aggregated row).
inline auth::Evaluation failing_evaluation(std::int64_t time, const std::string& recipient,
                                           const std::string& policy_domain = "example.com",
                                           std::string source_ip = "192.0.2.1",
                                           std::string message_id = "") {
  const std::string& d = policy_domain;
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = std::move(source_ip);
  ev.helo = "mail." + d;
  ev.envelope_from = d;
  ev.envelope_to = "ours.example";
  ev.header_from = d;
  ev.message_id = message_id.empty() ? "<m1@" + d + ">" : std::move(message_id);
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Fail, d, "a@" + d, ""}};
  ev.dmarc.result = auth::DmarcResult::Fail;
  ev.dmarc.header_from = d;
  ev.dmarc.policy_domain = d;
  ev.dmarc.org_domain = d;
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.fo = "1";
  r.ruf = {"mailto:" + recipient};
  ev.dmarc.record = r;
  ev.dmarc.applied_policy = auth::Policy::Reject;
  ev.dmarc.disposition = auth::Disposition::Reject;
  ev.mail_from = "a@" + d;
  ev.rcpt_to = {"user@ours.example"};
  ev.authentication_results = "mx.ours.example; dmarc=fail header.from=" + d;
  ev.original = "From: A <a@" + d +
                ">\r\nTo: user@ours.example\r\nSubject: hello\r\nMessage-ID: " + ev.message_id +
                "\r\n\r\n";
  auth::FailureReportRequest q;
  q.kind = auth::FailureKind::Dmarc;
  q.recipient = recipient;
  q.reported_domain = d;
  q.auth_failure = "dmarc";
  q.identity_alignment = "none";
  q.delivery_result = "reject";
  ev.failure_reports = {q};
  return ev;
}

}  // namespace mailreport::test
