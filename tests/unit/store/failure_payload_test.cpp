// The failure report payload: every field of the evaluation, its verdicts and the request
// survives JSON, bytes that are not UTF-8 included; unknown members are ignored, missing ones
// take defaults, and text without a request is refused.
#include "mailreport/store/failure_payload.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mailreport::store {
namespace {

auth::Evaluation full_evaluation() {
  auth::Evaluation ev;
  ev.time = 1700001234;
  ev.source_ip = "2001:db8::7";
  ev.helo = "mail.sender.example";
  ev.envelope_from = "bounce.example.com";
  ev.envelope_to = "ours.example";
  ev.header_from = "example.com";
  ev.message_id = "<m1@example.com>";
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::SoftFail, "bounce.example.com",
             "a@bounce.example.com", "not permitted"},
            {auth::SpfScope::Helo, auth::SpfResult::PermError, "mail.sender.example",
             "mail.sender.example", "bad record"}};
  auth::DkimVerdict k;
  k.result = auth::DkimResult::Fail;
  k.domain = "example.com";
  k.selector = "s1";
  k.identity = "@sub.example.com";
  k.algorithm = "ed25519-sha256";
  k.reason = "body hash mismatch";
  k.testing = true;
  k.header_b = "abcdefgh";
  k.report_requested = true;
  k.auth_failure = "bodyhash";
  k.canonicalized_header = "from:a@example.com\r\nsubject:h\xe9llo\r\n";  // Latin-1: not UTF-8
  k.canonicalized_body = std::string("body\0with nul\xff\r\n", 17);
  auth::DkimVerdict k2;
  k2.result = auth::DkimResult::TempError;
  k2.domain = "other.example";
  ev.dkim = {k, k2};
  auto& d = ev.dmarc;
  d.result = auth::DmarcResult::Fail;
  d.header_from = "example.com";
  d.policy_domain = "example.com";
  d.org_domain = "example.com";
  d.discovery = auth::Discovery::Psl;
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.sp = auth::Policy::Quarantine;
  r.np = auth::Policy::None;
  r.adkim = auth::Alignment::Strict;
  r.aspf = auth::Alignment::Strict;
  r.pct = 25;
  r.testing = true;
  r.psd = 'n';
  r.fo = "1:d:s";
  r.rua = {"mailto:rua@example.com!10m"};
  r.ruf = {"mailto:ruf@example.com", "mailto:ruf2@example.net!5k"};
  r.ri = 3600;
  r.text = "v=DMARC1; p=reject; ...";
  d.record = r;
  d.applied_policy = auth::Policy::Quarantine;
  d.dkim_aligned = true;
  d.spf_aligned = false;
  d.disposition = auth::Disposition::Quarantine;
  d.overrides = {{auth::OverrideReason::MailingList, "list"},
                 {auth::OverrideReason::PolicyTestMode, ""}};
  d.reason = "why";
  ev.trusted_upstream = true;
  ev.mail_from = "a@bounce.example.com";
  ev.rcpt_to = {"u1@ours.example", "u2@ours.example"};
  ev.authentication_results = "mx.ours.example; dmarc=fail header.from=example.com";
  ev.original = "From: \xc3\xa9t\xc3\xa9 <a@example.com>\r\nX-Bin: \x80\x81\r\n\r\nbody\r\n";
  ev.original_truncated = true;
  return ev;
}

auth::FailureReportRequest full_request() {
  auth::FailureReportRequest r;
  r.kind = auth::FailureKind::Dkim;
  r.recipient = "ra@example.com";
  r.max_size = 10240;
  r.reported_domain = "example.com";
  r.auth_failure = "bodyhash";
  r.dkim_index = 0;
  r.spf_record = "v=spf1 -all ra=x";
  r.identity_alignment = "dkim, spf";
  r.delivery_result = "spam";
  r.limit_count = 7;
  r.limit_period = 43200;
  return r;
}

void expect_same(const auth::SpfVerdict& a, const auth::SpfVerdict& b) {
  EXPECT_EQ(a.scope, b.scope);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.domain, b.domain);
  EXPECT_EQ(a.identity, b.identity);
  EXPECT_EQ(a.explanation, b.explanation);
}

void expect_same(const auth::DkimVerdict& a, const auth::DkimVerdict& b) {
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.domain, b.domain);
  EXPECT_EQ(a.selector, b.selector);
  EXPECT_EQ(a.identity, b.identity);
  EXPECT_EQ(a.algorithm, b.algorithm);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.testing, b.testing);
  EXPECT_EQ(a.header_b, b.header_b);
  EXPECT_EQ(a.report_requested, b.report_requested);
  EXPECT_EQ(a.auth_failure, b.auth_failure);
  EXPECT_EQ(a.canonicalized_header, b.canonicalized_header);
  EXPECT_EQ(a.canonicalized_body, b.canonicalized_body);
}

void expect_same(const auth::DmarcRecord& a, const auth::DmarcRecord& b) {
  EXPECT_EQ(a.p, b.p);
  EXPECT_EQ(a.sp, b.sp);
  EXPECT_EQ(a.np, b.np);
  EXPECT_EQ(a.adkim, b.adkim);
  EXPECT_EQ(a.aspf, b.aspf);
  EXPECT_EQ(a.pct, b.pct);
  EXPECT_EQ(a.testing, b.testing);
  EXPECT_EQ(a.psd, b.psd);
  EXPECT_EQ(a.fo, b.fo);
  EXPECT_EQ(a.rua, b.rua);
  EXPECT_EQ(a.ruf, b.ruf);
  EXPECT_EQ(a.ri, b.ri);
  EXPECT_EQ(a.text, b.text);
}

void expect_same(const auth::Evaluation& a, const auth::Evaluation& b) {
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.source_ip, b.source_ip);
  EXPECT_EQ(a.helo, b.helo);
  EXPECT_EQ(a.envelope_from, b.envelope_from);
  EXPECT_EQ(a.envelope_to, b.envelope_to);
  EXPECT_EQ(a.header_from, b.header_from);
  EXPECT_EQ(a.message_id, b.message_id);
  ASSERT_EQ(a.spf.size(), b.spf.size());
  for (std::size_t i = 0; i < a.spf.size(); ++i) expect_same(a.spf[i], b.spf[i]);
  ASSERT_EQ(a.dkim.size(), b.dkim.size());
  for (std::size_t i = 0; i < a.dkim.size(); ++i) expect_same(a.dkim[i], b.dkim[i]);
  const auto &da = a.dmarc, &db = b.dmarc;
  EXPECT_EQ(da.result, db.result);
  EXPECT_EQ(da.header_from, db.header_from);
  EXPECT_EQ(da.policy_domain, db.policy_domain);
  EXPECT_EQ(da.org_domain, db.org_domain);
  EXPECT_EQ(da.discovery, db.discovery);
  ASSERT_EQ(da.record.has_value(), db.record.has_value());
  if (da.record) expect_same(*da.record, *db.record);
  EXPECT_EQ(da.applied_policy, db.applied_policy);
  EXPECT_EQ(da.dkim_aligned, db.dkim_aligned);
  EXPECT_EQ(da.spf_aligned, db.spf_aligned);
  EXPECT_EQ(da.disposition, db.disposition);
  EXPECT_EQ(da.overrides, db.overrides);
  EXPECT_EQ(da.reason, db.reason);
  EXPECT_EQ(a.trusted_upstream, b.trusted_upstream);
  EXPECT_EQ(a.mail_from, b.mail_from);
  EXPECT_EQ(a.rcpt_to, b.rcpt_to);
  EXPECT_EQ(a.authentication_results, b.authentication_results);
  EXPECT_EQ(a.original, b.original);
  EXPECT_EQ(a.original_truncated, b.original_truncated);
}

void expect_same(const auth::FailureReportRequest& a, const auth::FailureReportRequest& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.recipient, b.recipient);
  EXPECT_EQ(a.max_size, b.max_size);
  EXPECT_EQ(a.reported_domain, b.reported_domain);
  EXPECT_EQ(a.auth_failure, b.auth_failure);
  EXPECT_EQ(a.dkim_index, b.dkim_index);
  EXPECT_EQ(a.spf_record, b.spf_record);
  EXPECT_EQ(a.identity_alignment, b.identity_alignment);
  EXPECT_EQ(a.delivery_result, b.delivery_result);
  EXPECT_EQ(a.limit_count, b.limit_count);
  EXPECT_EQ(a.limit_period, b.limit_period);
}

TEST(FailurePayload, EveryFieldRoundTrips) {
  auto ev = full_evaluation();
  auto req = full_request();
  ev.failure_reports = {req, full_request()};
  std::string text = failure_payload_to_json(ev, req);
  auto j = nlohmann::json::parse(text);  // valid JSON, though the input held non-UTF-8 bytes
  EXPECT_EQ(j["version"], 1);
  EXPECT_FALSE(j["evaluation"].contains("failure_reports"));
  auto back = failure_payload_from_json(text);
  ASSERT_TRUE(back) << back.error().describe();
  expect_same(back->evaluation, ev);
  expect_same(back->request, req);
  EXPECT_TRUE(back->evaluation.failure_reports.empty());
}

TEST(FailurePayload, DefaultsAndEveryEnumValueRoundTrip) {
  auth::Evaluation ev;  // all defaults, no DMARC record
  for (auto kind : {auth::FailureKind::Dmarc, auth::FailureKind::Dkim, auth::FailureKind::Spf}) {
    auth::FailureReportRequest req;
    req.kind = kind;
    req.recipient = "x@example.com";
    auto back = failure_payload_from_json(failure_payload_to_json(ev, req));
    ASSERT_TRUE(back);
    expect_same(back->evaluation, ev);
    expect_same(back->request, req);
  }
  for (auto r : {auth::SpfResult::None, auth::SpfResult::Neutral, auth::SpfResult::Pass,
                 auth::SpfResult::Fail, auth::SpfResult::SoftFail, auth::SpfResult::TempError,
                 auth::SpfResult::PermError}) {
    auth::Evaluation e;
    e.spf = {{auth::SpfScope::Helo, r, "d", "i", "x"}};
    auth::FailureReportRequest req;
    req.recipient = "x@example.com";
    auto back = failure_payload_from_json(failure_payload_to_json(e, req));
    ASSERT_TRUE(back);
    expect_same(back->evaluation, e);
  }
  for (auto r : {auth::DkimResult::None, auth::DkimResult::Pass, auth::DkimResult::Fail,
                 auth::DkimResult::Policy, auth::DkimResult::Neutral, auth::DkimResult::TempError,
                 auth::DkimResult::PermError}) {
    auth::Evaluation e;
    e.dkim.resize(1);
    e.dkim[0].result = r;
    auth::FailureReportRequest req;
    req.recipient = "x@example.com";
    auto back = failure_payload_from_json(failure_payload_to_json(e, req));
    ASSERT_TRUE(back);
    expect_same(back->evaluation, e);
  }
  for (auto o : {auth::OverrideReason::Forwarded, auth::OverrideReason::SampledOut,
                 auth::OverrideReason::TrustedForwarder, auth::OverrideReason::MailingList,
                 auth::OverrideReason::LocalPolicy, auth::OverrideReason::PolicyTestMode,
                 auth::OverrideReason::Other}) {
    auth::Evaluation e;
    e.dmarc.overrides = {{o, "c"}};
    e.dmarc.result = auth::DmarcResult::PermError;
    e.dmarc.disposition = auth::Disposition::Reject;
    auth::FailureReportRequest req;
    req.recipient = "x@example.com";
    auto back = failure_payload_from_json(failure_payload_to_json(e, req));
    ASSERT_TRUE(back);
    expect_same(back->evaluation, e);
  }
}

TEST(FailurePayload, UnknownMembersIgnoredMissingOnesDefault) {
  auto back = failure_payload_from_json(
      R"({"version": 9, "future": [1, 2], "request": {"kind": "spf", "recipient": "r@x.example",
          "new_field": true}, "evaluation": {"time": 5, "helo": "h", "dmarc": {"what": 1}}})");
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->request.kind, auth::FailureKind::Spf);
  EXPECT_EQ(back->request.dkim_index, -1);
  EXPECT_EQ(back->evaluation.time, 5);
  EXPECT_EQ(back->evaluation.helo, "h");
  EXPECT_FALSE(back->evaluation.dmarc.record);
}

TEST(FailurePayload, RefusesTextWithoutARequest) {
  EXPECT_FALSE(failure_payload_from_json("not json"));
  EXPECT_FALSE(failure_payload_from_json("[1]"));
  EXPECT_FALSE(failure_payload_from_json(R"({"evaluation": {}})"));
  EXPECT_FALSE(failure_payload_from_json(R"({"request": {"kind": "dmarc"}})"));
}

TEST(FailurePayload, OutboxKinds) {
  EXPECT_EQ(outbox_kind(auth::FailureKind::Dmarc), "dmarc-failure");
  EXPECT_EQ(outbox_kind(auth::FailureKind::Dkim), "dkim-failure");
  EXPECT_EQ(outbox_kind(auth::FailureKind::Spf), "spf-failure");
}

}  // namespace
}  // namespace mailreport::store
