// Tests of the Authentication-Results reader and writer (RFC 8601): headers as Gmail,
// Microsoft 365, rspamd, OpenDKIM, OpenDMARC, Yahoo and older writers produce them (taken from
// real messages, addresses replaced), the grammar's corners (nested comments, quoted strings,
// folding, versions, "none"), the trusted-upstream translation, and the header we write.
#include "mailreport/auth/authres.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace mailreport::auth {
namespace {

AuthResults parse_ok(std::string_view v) {
  auto r = parse_authentication_results(v);
  EXPECT_TRUE(r.ok()) << v << "\n" << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : AuthResults{};
}

std::string methods_of(const AuthResults& ar) {
  std::string out;
  for (const auto& m : ar.methods) out += m.method + "=" + m.result + " ";
  return out;
}

TEST(AuthResParse, Gmail) {
  auto ar = parse_ok(
      "mx.google.com;\r\n"
      "       dkim=pass header.i=@googlemail.com header.s=20210112 header.b=PqBP51+l;\r\n"
      "       spf=none (google.com: mail-sor-f69.google.com does not designate permitted "
      "sender hosts) smtp.helo=mail-sor-f69.google.com;\r\n"
      "       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=googlemail.com");
  EXPECT_EQ(ar.authserv_id, "mx.google.com");
  EXPECT_EQ(methods_of(ar), "dkim=pass spf=none dmarc=pass ");
  EXPECT_EQ(ar.methods[0].prop("header", "b"), "PqBP51+l");
  EXPECT_EQ(ar.methods[0].prop("header", "i"), "@googlemail.com");
  EXPECT_EQ(ar.methods[1].prop("smtp", "helo"), "mail-sor-f69.google.com");
  EXPECT_EQ(ar.methods[2].prop("header", "from"), "googlemail.com");

  auto t = verdicts_from(ar);
  ASSERT_EQ(t.dkim.size(), 1u);
  EXPECT_EQ(t.dkim[0].result, DkimResult::Pass);
  EXPECT_EQ(t.dkim[0].domain, "googlemail.com");  // from header.i when header.d is missing
  EXPECT_EQ(t.dkim[0].selector, "20210112");
  EXPECT_EQ(t.dkim[0].header_b, "PqBP51+l");
  ASSERT_EQ(t.spf.size(), 1u);
  EXPECT_EQ(t.spf[0].scope, SpfScope::Helo);
  EXPECT_EQ(t.spf[0].result, SpfResult::None);
  EXPECT_EQ(t.spf[0].domain, "mail-sor-f69.google.com");
  EXPECT_EQ(t.dmarc, DmarcResult::Pass);
  EXPECT_EQ(t.dmarc_header_from, "googlemail.com");
}

TEST(AuthResParse, GmailSpfWithAddress) {
  auto t = verdicts_from(
      parse_ok("gmr-mx.google.com;\n       spf=pass (google.com: domain of kijitora@example.jp "
               "designates 192.0.2.222 as permitted sender) smtp.mailfrom=kijitora@example.jp"));
  ASSERT_EQ(t.spf.size(), 1u);
  EXPECT_EQ(t.spf[0].scope, SpfScope::MailFrom);
  EXPECT_EQ(t.spf[0].identity, "kijitora@example.jp");
  EXPECT_EQ(t.spf[0].domain, "example.jp");
  EXPECT_TRUE(t.dkim.empty());
  EXPECT_FALSE(t.dmarc.has_value());
}

TEST(AuthResParse, Microsoft365WithoutAuthservId) {
  std::string_view v =
      "spf=pass (sender IP is 104.47.124.209)\r\n"
      " smtp.helo=APC01-HK2-obe.outbound.protection.outlook.com; outlook.com;\r\n"
      " dkim=none (message not signed) header.d=none;outlook.com; dmarc=pass\r\n"
      " action=none header.from=outlook.com;compauth=pass reason=100";
  EXPECT_EQ(authserv_id_of(v), "");
  auto ar = parse_ok(v);
  EXPECT_EQ(ar.authserv_id, "");
  // The stray "outlook.com;" entries are skipped.
  EXPECT_EQ(methods_of(ar), "spf=pass dkim=none dmarc=pass compauth=pass ");
  EXPECT_EQ(ar.methods[2].prop("", "action"), "none");
  EXPECT_EQ(ar.methods[3].reason, "100");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.dkim.size(), 1u);
  EXPECT_EQ(t.dkim[0].result, DkimResult::None);
  EXPECT_EQ(t.dmarc, DmarcResult::Pass);
  EXPECT_EQ(t.dmarc_header_from, "outlook.com");
  ASSERT_EQ(t.spf.size(), 1u);
  EXPECT_EQ(t.spf[0].domain, "apc01-hk2-obe.outbound.protection.outlook.com");
}

TEST(AuthResParse, MicrosoftNullSender) {
  auto ar = parse_ok("spf=none (sender IP is ) smtp.mailfrom=<>; ");
  ASSERT_EQ(ar.methods.size(), 1u);
  EXPECT_EQ(ar.methods[0].prop("smtp", "mailfrom"), "<>");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.spf.size(), 1u);
  EXPECT_EQ(t.spf[0].domain, "<");  // nothing after '@': the value as written, minus '>'
}

TEST(AuthResParse, Rspamd) {
  auto ar = parse_ok(
      "mail.example.org;\n\tdkim=pass header.d=example.com header.s=dkim header.b=Xk3nA9bc;\n"
      "\tdkim=fail (body hash did not verify) header.d=example.net header.s=s1 "
      "header.b=\"aB/+9xYz\";\n"
      "\tdmarc=pass (policy=reject) header.from=example.com;\n"
      "\tspf=pass (mail.example.org: domain of bounce@example.com designates 192.0.2.1 as "
      "permitted sender) smtp.mailfrom=bounce@example.com;\n"
      "\tarc=none");
  EXPECT_EQ(ar.authserv_id, "mail.example.org");
  EXPECT_EQ(methods_of(ar), "dkim=pass dkim=fail dmarc=pass spf=pass arc=none ");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.dkim.size(), 2u);
  EXPECT_EQ(t.dkim[0].identity, "@example.com");  // RFC 6376: i= defaults to @d=
  EXPECT_EQ(t.dkim[1].result, DkimResult::Fail);
  EXPECT_EQ(t.dkim[1].header_b, "aB/+9xYz");
  EXPECT_EQ(t.spf[0].domain, "example.com");
}

TEST(AuthResParse, OpenDkim) {
  auto ar = parse_ok(
      "mail.example.org;\n\tdkim=fail reason=\"signature verification failed\" (2048-bit key; "
      "unprotected) header.d=interpublication.org header.i=@interpublication.org "
      "header.b=\"PrsTNnuH\";\n\tdkim-atps=neutral");
  EXPECT_EQ(methods_of(ar), "dkim=fail dkim-atps=neutral ");
  EXPECT_EQ(ar.methods[0].reason, "signature verification failed");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.dkim.size(), 1u);
  EXPECT_EQ(t.dkim[0].reason, "signature verification failed");
  EXPECT_EQ(t.dkim[0].domain, "interpublication.org");
  EXPECT_EQ(t.dkim[0].header_b, "PrsTNnuH");
}

TEST(AuthResParse, OpenDkimWithAlgorithm) {
  auto t = verdicts_from(parse_ok(
      "mx.example.jp; dkim=pass (1024-bit key, unprotected) header.d=ef.example.org "
      "header.i=@ef.example.org header.a=rsa-sha256 header.s=mimecast20180622 header.b=e..."));
  ASSERT_EQ(t.dkim.size(), 1u);
  EXPECT_EQ(t.dkim[0].algorithm, "rsa-sha256");
  EXPECT_EQ(t.dkim[0].selector, "mimecast20180622");
}

TEST(AuthResParse, OpenDmarc) {
  auto ar = parse_ok("mail.example.org; dmarc=fail (p=reject dis=none) header.from=example.com");
  auto t = verdicts_from(ar);
  EXPECT_EQ(t.dmarc, DmarcResult::Fail);
  EXPECT_EQ(t.dmarc_header_from, "example.com");
  auto spf = verdicts_from(parse_ok("mail.example.org; spf=pass smtp.mailfrom=example.com"));
  ASSERT_EQ(spf.spf.size(), 1u);
  EXPECT_EQ(spf.spf[0].domain, "example.com");
}

TEST(AuthResParse, YahooWithoutSpaceBeforeComment) {
  auto ar = parse_ok(
      "atlas-production.v2-mail-prod1-gq1.omega.yahoo.com; dkim=pass header.i=@example.com "
      "header.s=s1; spf=pass smtp.mailfrom=example.com; dmarc=pass(p=REJECT sp=QUARANTINE "
      "dis=NONE) header.from=example.com;");
  EXPECT_EQ(methods_of(ar), "dkim=pass spf=pass dmarc=pass ");
  EXPECT_EQ(ar.methods[2].prop("header", "from"), "example.com");
}

TEST(AuthResParse, OlderWriters) {
  // Sendmail's Sender-ID filter and smtp.mfrom; MessageLabs' comment glued to the property.
  auto ar = parse_ok(
      "aneyakoji.example.jp; sender-id=pass header.from=sironeko@example.jp; auth=pass "
      "(CRAM-MD5); spf=pass smtp.mfrom=sironeko@example.jp");
  EXPECT_EQ(methods_of(ar), "sender-id=pass auth=pass spf=pass ");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.spf.size(), 1u);
  EXPECT_EQ(t.spf[0].scope, SpfScope::MailFrom);
  EXPECT_EQ(t.spf[0].domain, "example.jp");
  auto ml = parse_ok(
      "r2.messagelabs.com; spf=pass \n  (server-0.tower-0.messagelabs.com: domain of "
      "example.net designates \n  192.0.2.225 as permitted sender)smtp.mailfrom=example.net");
  ASSERT_EQ(ml.methods.size(), 1u);
  EXPECT_EQ(ml.methods[0].prop("smtp", "mailfrom"), "example.net");
  // RFC 5965's example puts a property before the first ';': it is skipped.
  auto arf = parse_ok("mail.example.com\n  smtp.mail=somespammer@example.com;\n  spf=fail");
  EXPECT_EQ(arf.authserv_id, "mail.example.com");
  EXPECT_EQ(methods_of(arf), "spf=fail ");
  // An empty pvalue.
  auto empty = parse_ok("mr.google.com;\n spf=pass (x) smtp.mail=;\n dkim=pass header.i=@x.com");
  EXPECT_EQ(methods_of(empty), "spf=pass dkim=pass ");
}

TEST(AuthResParse, GrammarCorners) {
  // RFC 8601 §2.2 / Appendix B: a version, comments everywhere, nested ones, quoted strings,
  // a method version, reason before properties, upper case names.
  auto ar = parse_ok(
      "(leading (nested) comment) example.com (the id) 1 ; SPF (c) = (c) Pass (x) "
      "reason = \"all is \\\"well\\\"\" smtp (a) . (b) MailFrom (c) = (d) "
      "\"john q\"@example.net ; dkim/1=pass header.d=\"exa mple.org\"");
  EXPECT_EQ(ar.authserv_id, "example.com");
  EXPECT_EQ(ar.version, "1");
  ASSERT_EQ(ar.methods.size(), 2u);
  EXPECT_EQ(ar.methods[0].method, "spf");
  EXPECT_EQ(ar.methods[0].result, "pass");
  EXPECT_EQ(ar.methods[0].reason, "all is \"well\"");
  EXPECT_EQ(ar.methods[0].prop("smtp", "mailfrom"), "\"john q\"@example.net");
  EXPECT_EQ(ar.methods[1].version, "1");
  EXPECT_EQ(ar.methods[1].prop("header", "d"), "exa mple.org");
  EXPECT_EQ(verdicts_from(ar).spf[0].domain, "example.net");

  auto quoted_id = parse_ok("\"my host\"; spf=pass smtp.helo=a.example");
  EXPECT_EQ(quoted_id.authserv_id, "my host");
  EXPECT_EQ(authserv_id_of("  (c) \"my host\" ; spf=pass"), "my host");
}

TEST(AuthResParse, NoResult) {
  auto ar = parse_ok("example.org 1; none");
  EXPECT_EQ(ar.authserv_id, "example.org");
  EXPECT_TRUE(ar.methods.empty());
  auto t = verdicts_from(ar);
  EXPECT_TRUE(t.spf.empty());
  EXPECT_TRUE(t.dkim.empty());
  EXPECT_FALSE(t.dmarc);
  EXPECT_TRUE(parse_ok("example.org;none").methods.empty());
}

TEST(AuthResParse, UnknownMethodsAndPropertiesAreKept) {
  auto ar = parse_ok(
      "mx.example.com; x-custom=ok policy.x=1 body.hash=abc; iprev=pass "
      "policy.iprev=2607:f8b0:4864:20::746; arc=pass (i=1 spf=pass) smtp.remote-ip=192.0.2.1");
  EXPECT_EQ(methods_of(ar), "x-custom=ok iprev=pass arc=pass ");
  EXPECT_EQ(ar.methods[0].prop("body", "hash"), "abc");
  EXPECT_EQ(ar.methods[1].prop("policy", "iprev"), "2607:f8b0:4864:20::746");
  EXPECT_EQ(ar.methods[2].prop("smtp", "remote-ip"), "192.0.2.1");
}

TEST(AuthResParse, UnknownResultWords) {
  auto t = verdicts_from(parse_ok(
      "mx.example.com; spf=hardfail smtp.mailfrom=a.example; spf=weird smtp.helo=b.example; "
      "dkim=bogus header.d=c.example; dmarc=strange header.from=d.example"));
  ASSERT_EQ(t.spf.size(), 2u);
  EXPECT_EQ(t.spf[0].result, SpfResult::Fail);       // RFC 5451's hardfail
  EXPECT_EQ(t.spf[1].result, SpfResult::PermError);  // undefined word
  EXPECT_EQ(t.dkim[0].result, DkimResult::PermError);
  EXPECT_EQ(t.dmarc, DmarcResult::PermError);
}

TEST(AuthResParse, SpfOrderIsMailFromThenHelo) {
  auto t = verdicts_from(parse_ok(
      "mx.example.com; spf=none smtp.helo=mx.example.net; spf=pass smtp.mailfrom=a@example.net"));
  ASSERT_EQ(t.spf.size(), 2u);
  EXPECT_EQ(t.spf[0].scope, SpfScope::MailFrom);
  EXPECT_EQ(t.spf[1].scope, SpfScope::Helo);
}

TEST(AuthResParse, Failures) {
  EXPECT_FALSE(parse_authentication_results("").ok());
  EXPECT_FALSE(parse_authentication_results("  (only a comment) \r\n ").ok());
  EXPECT_FALSE(parse_authentication_results("example.com; garbage; more garbage").ok());
  EXPECT_FALSE(parse_authentication_results("=pass").ok());
  // Hostile input does not hang or crash.
  EXPECT_FALSE(parse_authentication_results(std::string(10000, '(')).ok());
  (void)parse_authentication_results("x; spf=pass reason=\"unterminated");
  (void)parse_authentication_results(std::string("x; spf=pass \0 smtp.helo=a", 25));
}

TEST(AuthResId, Cheap) {
  EXPECT_EQ(authserv_id_of("mx.example.org; spf=pass"), "mx.example.org");
  EXPECT_EQ(authserv_id_of("\r\n mx.example.org\r\n ;spf=pass"), "mx.example.org");
  EXPECT_EQ(authserv_id_of("mx.example.org 1; none"), "mx.example.org");
  EXPECT_EQ(authserv_id_of("mx.example.org(comment);x"), "mx.example.org");
  EXPECT_EQ(authserv_id_of("spf=pass smtp.mailfrom=x"), "");
  EXPECT_EQ(authserv_id_of(""), "");
}

// ---- writing

Evaluation sample() {
  Evaluation e;
  SpfVerdict mfrom;
  mfrom.scope = SpfScope::MailFrom;
  mfrom.result = SpfResult::Pass;
  mfrom.domain = "example.com";
  mfrom.identity = "bounce@example.com";
  SpfVerdict helo;
  helo.scope = SpfScope::Helo;
  helo.result = SpfResult::None;
  helo.domain = "mx.example.com";
  helo.identity = "mx.example.com";
  e.spf = {mfrom, helo};
  DkimVerdict d1;
  d1.result = DkimResult::Pass;
  d1.domain = "example.com";
  d1.selector = "sel";
  d1.identity = "@example.com";
  d1.header_b = "abcd/+12";
  DkimVerdict d2;
  d2.result = DkimResult::Fail;
  d2.domain = "example.com";
  d2.selector = "sel2";
  d2.identity = "@example.com";
  d2.header_b = "Zyxw9876";
  d2.reason = "body hash mismatch";
  e.dkim = {d1, d2};
  e.dmarc.result = DmarcResult::Pass;
  e.dmarc.header_from = "example.com";
  e.dmarc.record = DmarcRecord{};
  e.dmarc.record->p = Policy::Reject;
  e.dmarc.applied_policy = Policy::Reject;
  e.dmarc.disposition = Disposition::None;
  e.header_from = "example.com";
  return e;
}

void expect_lines_fit(const std::string& value) {
  std::istringstream in("Authentication-Results: " + value);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    EXPECT_LE(line.size(), 78u) << line;
    if (!first) {
      EXPECT_EQ(line.substr(0, 1), "\t") << line;  // folded with LF + TAB
    }
    first = false;
    EXPECT_EQ(line.find('\r'), std::string::npos);
  }
}

TEST(AuthResFormat, TheHeaderWeAdd) {
  std::string v = format_authentication_results("mx.example.org", sample());
  EXPECT_EQ(v,
            "mx.example.org;\n"
            "\tspf=pass smtp.mailfrom=bounce@example.com;\n"
            "\tspf=none smtp.helo=mx.example.com;\n"
            "\tdkim=pass header.d=example.com header.s=sel header.i=@example.com\n"
            "\theader.b=\"abcd/+12\";\n"
            "\tdkim=fail reason=\"body hash mismatch\" header.d=example.com header.s=sel2\n"
            "\theader.i=@example.com header.b=Zyxw9876;\n"
            "\tdmarc=pass (p=reject dis=none) header.from=example.com policy.dmarc=reject");
  expect_lines_fit(v);
}

TEST(AuthResFormat, NoSignatureNoPolicy) {
  Evaluation e;
  SpfVerdict s;
  s.result = SpfResult::SoftFail;
  s.domain = "example.net";
  s.explanation = "mx.example.org: 192.0.2.9 is not\r\ndesignated";  // CR LF never pass through
  e.spf = {s};
  e.dmarc.header_from = "example.net";
  std::string v = format_authentication_results("mx.example.org", e);
  EXPECT_EQ(v,
            "mx.example.org;\n"
            "\tspf=softfail reason=\"mx.example.org: 192.0.2.9 is not  designated\"\n"
            "\tsmtp.mailfrom=example.net;\n"
            "\tdkim=none;\n"
            "\tdmarc=none header.from=example.net");
  expect_lines_fit(v);
}

TEST(AuthResFormat, QuotesWhatIsNotAToken) {
  Evaluation e;
  DkimVerdict d;
  d.result = DkimResult::PermError;
  d.domain = "example.com";
  d.selector = "we\"ird sel";
  d.identity = "first last@example.com";
  d.reason = "no key";
  e.dkim = {d};
  e.dmarc.result = DmarcResult::TempError;
  e.dmarc.reason = "DNS timeout for _dmarc.example.com";
  std::string v = format_authentication_results("my host", e);
  EXPECT_NE(v.find("\"my host\";"), std::string::npos) << v;
  EXPECT_NE(v.find("header.s=\"we\\\"ird sel\""), std::string::npos) << v;
  EXPECT_NE(v.find("header.i=\"first last@example.com\""), std::string::npos) << v;
  EXPECT_NE(v.find("dmarc=temperror reason=\"DNS timeout for _dmarc.example.com\""),
            std::string::npos)
      << v;
  auto ar = parse_ok(v);
  EXPECT_EQ(ar.authserv_id, "my host");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.dkim.size(), 1u);
  EXPECT_EQ(t.dkim[0].selector, "we\"ird sel");
  EXPECT_EQ(t.dkim[0].identity, "first last@example.com");
  EXPECT_EQ(t.dkim[0].reason, "no key");
  EXPECT_EQ(t.dmarc, DmarcResult::TempError);
}

TEST(AuthResFormat, RoundTrip) {
  Evaluation e = sample();
  std::string v = format_authentication_results("mx.example.org", e);
  EXPECT_EQ(authserv_id_of(v), "mx.example.org");
  auto ar = parse_ok(v);
  EXPECT_EQ(ar.authserv_id, "mx.example.org");
  auto t = verdicts_from(ar);
  ASSERT_EQ(t.spf.size(), e.spf.size());
  for (std::size_t i = 0; i < e.spf.size(); ++i) {
    EXPECT_EQ(t.spf[i].scope, e.spf[i].scope);
    EXPECT_EQ(t.spf[i].result, e.spf[i].result);
    EXPECT_EQ(t.spf[i].domain, e.spf[i].domain);
    EXPECT_EQ(t.spf[i].identity, e.spf[i].identity);
  }
  ASSERT_EQ(t.dkim.size(), e.dkim.size());
  for (std::size_t i = 0; i < e.dkim.size(); ++i) {
    EXPECT_EQ(t.dkim[i].result, e.dkim[i].result);
    EXPECT_EQ(t.dkim[i].domain, e.dkim[i].domain);
    EXPECT_EQ(t.dkim[i].selector, e.dkim[i].selector);
    EXPECT_EQ(t.dkim[i].identity, e.dkim[i].identity);
    EXPECT_EQ(t.dkim[i].header_b, e.dkim[i].header_b);
    EXPECT_EQ(t.dkim[i].reason, e.dkim[i].reason);
  }
  EXPECT_EQ(t.dmarc, e.dmarc.result);
  EXPECT_EQ(t.dmarc_header_from, e.dmarc.header_from);
  EXPECT_EQ(ar.methods.back().prop("policy", "dmarc"), "reject");

  // Every result word survives the trip.
  for (auto r : {SpfResult::None, SpfResult::Neutral, SpfResult::Pass, SpfResult::Fail,
                 SpfResult::SoftFail, SpfResult::TempError, SpfResult::PermError}) {
    Evaluation x;
    SpfVerdict s;
    s.result = r;
    s.domain = "a.example";
    x.spf = {s};
    auto back = verdicts_from(parse_ok(format_authentication_results("h", x)));
    ASSERT_EQ(back.spf.size(), 1u);
    EXPECT_EQ(back.spf[0].result, r);
  }
  for (auto r : {DkimResult::None, DkimResult::Pass, DkimResult::Fail, DkimResult::Policy,
                 DkimResult::Neutral, DkimResult::TempError, DkimResult::PermError}) {
    Evaluation x;
    DkimVerdict d;
    d.result = r;
    d.domain = "a.example";
    x.dkim = {d};
    auto back = verdicts_from(parse_ok(format_authentication_results("h", x)));
    ASSERT_EQ(back.dkim.size(), 1u);
    EXPECT_EQ(back.dkim[0].result, r);
  }
}

}  // namespace
}  // namespace mailreport::auth
