// Aggregate records from hourly evaluation rows: identical rows merge with summed counts,
// different ones stay apart, and DKIM results are capped at 100 in RFC 9990 §3.1.3's order.
#include "mailreport/outbound/dmarc_aggregate.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailreport::outbound {
namespace {

// A toy organizational domain: the last two labels.
std::string org(std::string_view d) {
  auto last = d.rfind('.');
  if (last == std::string_view::npos || last == 0) return std::string(d);
  auto prev = d.rfind('.', last - 1);
  return std::string(prev == std::string_view::npos ? d : d.substr(prev + 1));
}

store::EvaluationRow row(std::int64_t id, std::int64_t hour, const std::string& ip,
                         std::uint64_t count, const std::string& dkim = "pass") {
  store::EvaluationRow r;
  r.id = id;
  r.interval_begin = hour;
  r.first_seen = hour + 10;
  r.last_seen = hour + 20;
  r.policy.domain = "example.com";
  r.policy.p = "reject";
  r.record.row.source_ip = ip;
  r.record.row.count = count;
  r.record.row.policy_evaluated = {"none", dkim, "pass", {}};
  r.record.identifiers = {"ours.example", "example.com", "example.com"};
  r.record.auth_results.dkim = {{"example.com", "s1", dkim, ""}};
  r.record.auth_results.spf = {{"example.com", "mfrom", "pass", ""}};
  return r;
}

TEST(MergeEvaluationRows, SumsIdenticalRowsAcrossHoursAndKeepsOthersApart) {
  std::vector<store::EvaluationRow> rows = {
      row(1, 0, "192.0.2.1", 5),    row(2, 3600, "192.0.2.1", 7),
      row(3, 3600, "192.0.2.2", 1), row(4, 7200, "192.0.2.1", 2, "fail"),
      row(5, 7200, "192.0.2.1", 1),
  };
  auto recs = merge_evaluation_rows(rows, org);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].row.source_ip, "192.0.2.1");
  EXPECT_EQ(recs[0].row.policy_evaluated.dkim, "pass");
  EXPECT_EQ(recs[0].row.count, 13u);
  EXPECT_EQ(recs[1].row.source_ip, "192.0.2.2");
  EXPECT_EQ(recs[1].row.count, 1u);
  EXPECT_EQ(recs[2].row.policy_evaluated.dkim, "fail");
  EXPECT_EQ(recs[2].row.count, 2u);
}

TEST(PrioritiseDkimResults, StrictThenRelaxedThenOtherPassesThenFailures) {
  std::vector<report::DmarcDkimAuth> r = {
      {"other.example", "a", "fail", ""},    {"thirdparty.example", "b", "pass", ""},
      {"mail.example.com", "c", "pass", ""}, {"example.com", "d", "pass", ""},
      {"example.com", "e", "fail", ""},
  };
  prioritise_dkim_results(r, "Example.com", org);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].selector, "d");  // strict
  EXPECT_EQ(r[1].selector, "c");  // relaxed
  EXPECT_EQ(r[2].selector, "b");  // another pass
  EXPECT_EQ(r[3].selector, "a");  // failures, in signature order
  EXPECT_EQ(r[4].selector, "e");
}

TEST(PrioritiseDkimResults, KeepsAtMostOneHundred) {
  std::vector<report::DmarcDkimAuth> r;
  for (int i = 0; i < 150; ++i)
    r.push_back({"x" + std::to_string(i) + ".example", "s", "fail", ""});
  r.push_back({"example.com", "aligned", "pass", ""});
  prioritise_dkim_results(r, "example.com", org);
  ASSERT_EQ(r.size(), kMaxDkimResultsPerRecord);
  EXPECT_EQ(r.front().selector, "aligned");  // the aligned pass survives the cut
  EXPECT_EQ(r[1].domain, "x0.example");
}

}  // namespace
}  // namespace mailreport::outbound
