// `mailreport list evaluations`, run as a real process against a store that the test fills
// through Store::record_evaluations (as the milter's writer does): the table, the JSON shape,
// and the --domain, --since and --limit filters.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::int64_t kHour = 1767268800;  // 2026-01-01 12:00:00 UTC

auth::Evaluation evaluation(std::int64_t time, const std::string& policy_domain,
                            const std::string& ip) {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = ip;
  ev.envelope_from = policy_domain;
  ev.envelope_to = "ours.example";
  ev.header_from = policy_domain;
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Fail, policy_domain, "", ""}};
  ev.dkim = {{auth::DkimResult::Pass, policy_domain, "sel1", "@" + policy_domain, "rsa-sha256", "",
              false, "", false, "", "", ""}};
  ev.dmarc.result = auth::DmarcResult::Pass;
  ev.dmarc.header_from = policy_domain;
  ev.dmarc.policy_domain = policy_domain;
  auth::DmarcRecord r;
  r.p = auth::Policy::Quarantine;
  r.rua = {"mailto:agg@" + policy_domain};
  ev.dmarc.record = r;
  ev.dmarc.applied_policy = auth::Policy::Quarantine;
  ev.dmarc.dkim_aligned = true;
  return ev;
}

class CliEvaluations : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "mailreport.toml")
        << "[store]\npath = \"" << (dir_ / "mailreport.db").string() << "\"\n";
  }

  void record(const std::vector<auth::Evaluation>& batch) {
    store::SqliteOptions o;
    o.path = dir_ / "mailreport.db";
    auto s = store::open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().describe();
    auto st = (*s)->record_evaluations(batch);
    ASSERT_TRUE(st) << st.error().describe();
  }

  test::RunResult mr(std::vector<std::string> args) {
    std::vector<std::string> argv{test::cli_binary().string(), "-c",
                                  (dir_ / "mailreport.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv);
    EXPECT_FALSE(r.timed_out);
    return r;
  }

  json mr_json(std::vector<std::string> args) {
    args.push_back("--json");
    auto r = mr(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << r.out;
    return j;
  }

  test::TempDir dir_;
};

TEST_F(CliEvaluations, ListsAggregatedRowsAsATableAndAsJson) {
  record({evaluation(kHour + 60, "example.com", "192.0.2.1"),
          evaluation(kHour + 120, "example.com", "192.0.2.1"),
          evaluation(kHour + 180, "example.com", "198.51.100.2"),
          evaluation(kHour + 3600 + 5, "other.example", "192.0.2.1")});

  auto r = mr({"list", "evaluations"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("HOUR", 0), 0u) << lines[0];
  // Newest hour first: other.example at 13:00, then example.com's two rows at 12:00.
  EXPECT_NE(lines[1].find("2026-01-01 13:00"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("other.example"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("example.com"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("p=quarantine"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("example.com/sel1 pass"), std::string::npos) << lines[2];

  auto all = mr_json({"list", "evaluations"});
  ASSERT_EQ(all.size(), 3u);
  const json& first = all[1];  // example.com, 192.0.2.1 (id order inside the hour)
  EXPECT_EQ(first.at("interval_begin"), kHour);
  EXPECT_EQ(first.at("interval_end"), kHour + 3600);
  EXPECT_EQ(first.at("first_seen"), kHour + 60);
  EXPECT_EQ(first.at("last_seen"), kHour + 120);
  EXPECT_EQ(first.at("policy_published").at("domain"), "example.com");
  EXPECT_EQ(first.at("policy_published").at("p"), "quarantine");
  EXPECT_EQ(first.at("policy_published").at("pct"), 100);
  EXPECT_EQ(first.at("policy_published").at("psd"), "u");
  EXPECT_EQ(first.at("policy_published").at("rua"), json({"mailto:agg@example.com"}));
  EXPECT_EQ(first.at("row").at("source_ip"), "192.0.2.1");
  EXPECT_EQ(first.at("row").at("count"), 2);
  EXPECT_EQ(first.at("row").at("policy_evaluated").at("dkim"), "pass");
  EXPECT_EQ(first.at("row").at("policy_evaluated").at("spf"), "fail");
  EXPECT_EQ(first.at("identifiers").at("header_from"), "example.com");
  EXPECT_EQ(first.at("auth_results").at("dkim")[0].at("selector"), "sel1");
  EXPECT_EQ(first.at("auth_results").at("spf")[0].at("scope"), "mfrom");
}

TEST_F(CliEvaluations, FiltersByDomainSinceAndLimit) {
  record({evaluation(kHour + 60, "example.com", "192.0.2.1"),
          evaluation(kHour + 86400, "example.com", "192.0.2.1"),
          evaluation(kHour + 5, "other.example", "192.0.2.1")});
  EXPECT_EQ(mr_json({"list", "evaluations", "--domain", "EXAMPLE.COM"}).size(), 2u);
  EXPECT_EQ(mr_json({"list", "evaluations", "--domain", "nowhere.example"}).size(), 0u);
  auto since = mr_json({"list", "evaluations", "--since", "2026-01-02"});
  ASSERT_EQ(since.size(), 1u);
  EXPECT_EQ(since[0].at("interval_begin"), kHour + 86400);
  EXPECT_EQ(mr_json({"list", "evaluations", "--since", std::to_string(kHour)}).size(), 3u);
  EXPECT_EQ(mr_json({"list", "evaluations", "--limit", "1"}).size(), 1u);
}

TEST_F(CliEvaluations, SaysSoWhenThereAreNone) {
  record({});
  auto r = mr({"list", "evaluations"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no evaluations\n");
  r = mr({"list", "evaluations", "--failed"});
  EXPECT_EQ(r.exit_code, 64);
}

}  // namespace
}  // namespace mailreport
