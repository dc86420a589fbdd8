// libtlsrpt datagrams, written here byte for byte as libtlsrpt 0.5 builds them (its
// init_delivery_request / init_policy / add_* / finish_policy / finish_delivery_request
// sequence), parse to the policies and failures they describe; malformed ones are refused
// with a reason.
#include "mailreport/report/tlsrpt_datagram.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailreport::report {
namespace {

// A successful DANE delivery and a failed MTA-STS one, as Postfix reports them.
const std::string kSuccess =
    R"({"dpv": "1","d": "Example.NET","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@example.net",)"
    R"("policies":[{"policy-type":1,"policy-domain": "example.net",)"
    R"("policy-string":["3 1 1 0123456789ABCDEF"],"mx-host":["mx1.example.net"],"t":0,"f":0}]})";

const std::string kFailure =
    R"({"dpv": "1","d": "example.org","pr": "v=TLSRPTv1;rua=https://r.example.org/tlsrpt",)"
    R"("policies":[{"policy-type":2,"policy-domain": "example.org",)"
    R"("policy-string":["version: STSv1","mode: enforce","mx: *.example.org","max_age: 86400"],)"
    R"("mx-host":["*.example.org"],"failure-details":[{"c":204,"s": "192.0.2.1",)"
    R"("n": "mx.example.org","r": "198.51.100.7"},{"c":205,"s": "192.0.2.1",)"
    R"("n": "mx.example.org","h": "mx.example.org","r": "198.51.100.7",)"
    R"("a": "https://example.org/why","f": "X509_V_ERR_CERT_UNTRUSTED"}],"t":2,"f":1}]})";

TEST(TlsrptDatagram, SuccessfulDaneDelivery) {
  auto d = parse_tlsrpt_datagram(kSuccess);
  ASSERT_TRUE(d) << d.error().describe();
  EXPECT_EQ(d->domain, "example.net");
  EXPECT_EQ(d->record, "v=TLSRPTv1; rua=mailto:tlsrpt@example.net");
  ASSERT_EQ(d->policies.size(), 1u);
  const auto& p = d->policies[0];
  EXPECT_EQ(p.policy_type, "tlsa");
  EXPECT_EQ(p.policy_domain, "example.net");
  EXPECT_EQ(p.policy_string, std::vector<std::string>{"3 1 1 0123456789ABCDEF"});
  EXPECT_EQ(p.mx_host, std::vector<std::string>{"mx1.example.net"});
  EXPECT_TRUE(p.success);
  EXPECT_TRUE(p.failures.empty());
}

TEST(TlsrptDatagram, FailedStsDeliveryWithDetails) {
  auto d = parse_tlsrpt_datagram(kFailure);
  ASSERT_TRUE(d) << d.error().describe();
  ASSERT_EQ(d->policies.size(), 1u);
  const auto& p = d->policies[0];
  EXPECT_EQ(p.policy_type, "sts");
  EXPECT_EQ(p.policy_string.size(), 4u);
  EXPECT_FALSE(p.success);
  ASSERT_EQ(p.failures.size(), 2u);
  EXPECT_EQ(p.failures[0].result_type, "certificate-expired");
  EXPECT_EQ(p.failures[0].sending_mta_ip, "192.0.2.1");
  EXPECT_EQ(p.failures[0].receiving_mx_hostname, "mx.example.org");
  EXPECT_EQ(p.failures[0].receiving_ip, "198.51.100.7");
  EXPECT_TRUE(p.failures[0].receiving_mx_helo.empty());
  EXPECT_EQ(p.failures[1].result_type, "validation-failure");
  EXPECT_EQ(p.failures[1].receiving_mx_helo, "mx.example.org");
  EXPECT_EQ(p.failures[1].additional_information, "https://example.org/why");
  EXPECT_EQ(p.failures[1].failure_reason_code, "X509_V_ERR_CERT_UNTRUSTED");
}

TEST(TlsrptDatagram, NoPolicyFoundAndSeveralPolicies) {
  const std::string dg =
      R"({"dpv":"1","d":"example.com","pr":"v=TLSRPTv1;rua=mailto:t@example.com",)"
      R"("policies":[{"policy-type":9,"t":0,"f":0},)"
      R"({"policy-type":2,"policy-domain":"example.com","failure-details":[{"c":301}],"t":1,"f":1}]})";
  auto d = parse_tlsrpt_datagram(dg);
  ASSERT_TRUE(d) << d.error().describe();
  ASSERT_EQ(d->policies.size(), 2u);
  EXPECT_EQ(d->policies[0].policy_type, "no-policy-found");
  EXPECT_TRUE(d->policies[0].policy_domain.empty());
  EXPECT_EQ(d->policies[1].failures.at(0).result_type, "sts-policy-fetch-error");
}

TEST(TlsrptDatagram, DatagramWithoutVersionIsVersionOne) {
  std::string dg = kSuccess;
  dg.erase(1, std::string(R"("dpv": "1",)").size());
  EXPECT_TRUE(parse_tlsrpt_datagram(dg));
}

TEST(TlsrptDatagram, RefusesWhatIsNotADatagram) {
  auto why = [](const std::string& dg) {
    auto d = parse_tlsrpt_datagram(dg);
    return d ? std::string("accepted") : d.error().message;
  };
  EXPECT_EQ(why("not json"), "not JSON");
  EXPECT_EQ(why("[1,2]"), "not a JSON object");
  EXPECT_NE(why(R"({"dpv":"2","d":"a","pr":"","policies":[]})").find("dpv"), std::string::npos);
  EXPECT_EQ(why(R"({"pr":"x","policies":[{"policy-type":1,"t":0,"f":0}]})"), "d: missing");
  EXPECT_EQ(why(R"({"d":"a","pr":"x","policies":[]})"),
            "policies: missing, not an array, or empty");
  EXPECT_EQ(why(R"({"d":"a","pr":"x","policies":[{"policy-type":3,"t":0,"f":0}]})"),
            "policies[0].policy-type: unknown value 3");
  EXPECT_EQ(why(R"({"d":"a","pr":"x","policies":[{"policy-type":1,"t":1,"f":1}]})"),
            "policies[0].t: says 1 failure details, 0 present");
  EXPECT_EQ(
      why(R"({"d":"a","pr":"x","policies":[{"policy-type":1,"failure-details":[{"c":999}],"t":1,"f":1}]})"),
      "policies[0].failure-details[0].c: unknown failure code 999");
  EXPECT_EQ(why(R"({"d":"a","pr":"x","policies":[{"policy-type":1,"t":0,"f":7}]})"),
            "policies[0].f: unknown final result 7");
  EXPECT_EQ(why(R"({"d":5,"pr":"x","policies":[{"policy-type":1,"t":0,"f":0}]})"),
            "d: not a string");
}

TEST(TlsrptDatagram, EveryLibtlsrptFailureCodeHasAnRfc8460Name) {
  for (int c : {201, 202, 203, 204, 205, 301, 302, 303, 304, 305, 306}) {
    EXPECT_FALSE(tlsrpt_result_type(c).empty()) << c;
  }
  EXPECT_TRUE(tlsrpt_result_type(901).empty());  // libtlsrpt-internal, never sent
}

}  // namespace
}  // namespace mailreport::report
