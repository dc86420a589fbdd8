// The `mailreport` command, run as a real process against a store in a temporary directory:
// parse, import (files, folders, mbox, Maildir), list (reports and raw messages), show,
// export (JSON lines, CSV), reparse, purge, check-config and demo. Every test asserts what the
// command printed and its exit code, and what the store then holds.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::lines_of;
using test::RunResult;

// sysexits.h values the command uses.
constexpr int kExitUsage = 64;
constexpr int kExitDataErr = 65;
constexpr int kExitConfig = 78;

fs::path sample(const std::string& name) {
  return test::source_dir() / "samples" / "reports" / name;
}

const std::vector<std::string> kSamples = {
    "01-dmarc-aggregate-gzip.eml", "02-dmarc-aggregate-zip.eml", "03-dmarc-aggregate-xml.eml",
    "04-tls-report.eml",           "05-arf-dmarc-failure.eml",   "06-arf-abuse.eml",
    "07-dsn-bounce.eml",           "08-not-a-report.eml"};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void write(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

// RFC 4180 records (CRLF or LF line ends; quoted fields may hold commas, quotes, line breaks).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\r') {
      continue;
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

// A DMARC aggregate report as bare XML (RFC 7489 Appendix C), with values chosen by the test.
std::string dmarc_xml(const std::string& org, const std::string& report_id,
                      const std::string& domain, std::int64_t begin) {
  auto record = [&](const std::string& ip, int count, const char* dkim) {
    return "<record><row><source_ip>" + ip + "</source_ip><count>" + std::to_string(count) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>" + dkim +
           "</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>" + domain +
           "</header_from></identifiers><auth_results><dkim><domain>" + domain +
           "</domain><selector>s1</selector><result>" + dkim + "</result></dkim><spf><domain>" +
           domain + "</domain><result>fail</result></spf></auth_results></record>\n";
  };
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
         "<report_metadata><org_name>" +
         org +
         "</org_name><email>dmarc@acme.example</email>"
         "<report_id>" +
         report_id + "</report_id><date_range><begin>" + std::to_string(begin) + "</begin><end>" +
         std::to_string(begin + 86399) +
         "</end></date_range></report_metadata>\n"
         "<policy_published><domain>" +
         domain +
         "</domain><adkim>r</adkim><aspf>r</aspf>"
         "<p>none</p></policy_published>\n" +
         record("192.0.2.77", 7, "pass") + record("198.51.100.8", 2, "fail") + "</feedback>\n";
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { write_config(""); }

  fs::path config_path() const { return dir_ / "mailreport.toml"; }
  fs::path db_path() const { return dir_ / "mailreport.db"; }
  const test::TempDir& dir() const { return dir_; }

  // The configuration: the store in the temporary directory, plus `extra` TOML.
  void write_config(const std::string& extra) {
    write(config_path(), "[store]\npath = \"" + db_path().string() + "\"\n" + extra);
  }

  // `mailreport -c CONFIG args...`; a crash or a hang fails the test.
  RunResult mr(const std::vector<std::string>& args, const fs::path& stdin_file = "/dev/null") {
    std::vector<std::string> argv{test::cli_binary().string(), "-c", config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv, stdin_file);
    EXPECT_FALSE(r.timed_out) << "mailreport " << args.front() << " did not finish";
    EXPECT_GE(r.exit_code, 0) << r.err;
    EXPECT_LT(r.exit_code, 128) << "mailreport " << args.front() << " crashed:\n" << r.err;
    return r;
  }

  // A command that must succeed and print one JSON document.
  json mr_json(const std::vector<std::string>& args) {
    auto r = mr(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "):\n" << r.out;
      return json();
    }
  }

  void import_samples() {
    auto r = mr({"import", (test::source_dir() / "samples" / "reports").string()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(contains(r.out, "imported 7, duplicate 0, failed 1")) << r.out;
  }

  // The id of the stored report with this report id (via list --json).
  std::int64_t report_id_of(const std::string& type, const std::string& report_id) {
    for (const auto& row : mr_json({"list", type, "--json"})) {
      if (row.at("report_id") == report_id) return row.at("id").get<std::int64_t>();
    }
    ADD_FAILURE() << "no " << type << " report " << report_id;
    return 0;
  }

 private:
  test::TempDir dir_;
};

// ---------------------------------------------------------------- parse

TEST_F(Cli, ParseGivesEachSampleItsReportTypeAndExit65ForTheOneWithout) {
  std::vector<std::string> args{"parse"};
  for (const auto& s : kSamples) args.push_back(sample(s).string());
  auto r = mr(args);
  EXPECT_EQ(r.exit_code, kExitDataErr) << "08-not-a-report.eml holds no report";

  const std::map<std::string, std::string> expected = {
      {"01-dmarc-aggregate-gzip.eml", "dmarc-aggregate"},
      {"02-dmarc-aggregate-zip.eml", "dmarc-aggregate"},
      {"03-dmarc-aggregate-xml.eml", "dmarc-aggregate"},
      {"04-tls-report.eml", "tls-aggregate"},
      {"05-arf-dmarc-failure.eml", "arf"},
      {"06-arf-abuse.eml", "arf"},
      {"07-dsn-bounce.eml", "dsn"}};
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), kSamples.size()) << r.out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // Keys in the documented order: file, reports, error.
    EXPECT_EQ(lines[i].rfind("{\"file\":", 0), 0u) << lines[i];
    auto reports_at = lines[i].find(",\"reports\":[");
    auto error_at = lines[i].rfind(",\"error\":");
    EXPECT_NE(reports_at, std::string::npos);
    EXPECT_NE(error_at, std::string::npos);
    EXPECT_LT(reports_at, error_at);

    json j = json::parse(lines[i]);
    EXPECT_EQ(j.size(), 3u) << lines[i];
    EXPECT_EQ(j.at("file"), sample(kSamples[i]).string());
    auto it = expected.find(kSamples[i]);
    if (it == expected.end()) {  // 08-not-a-report.eml
      EXPECT_TRUE(j.at("reports").empty());
      ASSERT_TRUE(j.at("error").is_string());
      EXPECT_TRUE(contains(j.at("error"), "no report")) << j.at("error");
      EXPECT_TRUE(contains(r.err, kSamples[i])) << "the reason goes to stderr too";
    } else {
      EXPECT_TRUE(j.at("error").is_null()) << kSamples[i] << ": " << j.at("error");
      ASSERT_EQ(j.at("reports").size(), 1u) << kSamples[i];
      EXPECT_EQ(j.at("reports")[0].at("type"), it->second) << kSamples[i];
    }
  }
  // The fields are the sample's: 03 is Mailbox Provider Example's report about example.net.
  json j3 = json::parse(lines[2]).at("reports")[0];
  EXPECT_EQ(j3.at("report_metadata").at("org_name"), "Mailbox Provider Example");
  EXPECT_EQ(j3.at("report_metadata").at("report_id"), "2026010200.pm.7");
  EXPECT_EQ(j3.at("policy_published").at("domain"), "example.net");
  EXPECT_EQ(j3.at("records").size(), 2u);
}

TEST_F(Cli, ParseExitsZeroWhenEveryFileHeldAReport) {
  auto r = mr({"parse", sample("03-dmarc-aggregate-xml.eml").string(),
               sample("04-tls-report.eml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out).size(), 2u);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(Cli, ParseReadsStandardInput) {
  auto r = mr({"parse", "-"}, sample("04-tls-report.eml"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j.at("file"), "-");
  ASSERT_EQ(j.at("reports").size(), 1u);
  EXPECT_EQ(j.at("reports")[0].at("organization-name"), "Mailbox Provider Example");
}

TEST_F(Cli, ParseGivesAnErrorLineForADirectoryAMissingFileAndAnEmptyFile) {
  write(dir() / "empty.eml", "");
  const std::vector<std::string> files = {dir().path().string(), (dir() / "missing.eml").string(),
                                          (dir() / "empty.eml").string()};
  auto r = mr({"parse", files[0], files[1], files[2]});
  EXPECT_EQ(r.exit_code, kExitDataErr);
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (std::size_t i = 0; i < 3; ++i) {
    json j = json::parse(lines[i]);
    EXPECT_EQ(j.at("file"), files[i]);
    EXPECT_TRUE(j.at("reports").empty());
    ASSERT_TRUE(j.at("error").is_string()) << lines[i];
    EXPECT_FALSE(j.at("error").get<std::string>().empty());
    EXPECT_TRUE(contains(r.err, files[i])) << r.err;
  }
  EXPECT_TRUE(contains(json::parse(lines[1]).at("error"), "No such file")) << lines[1];
  EXPECT_TRUE(contains(json::parse(lines[2]).at("error"), "empty")) << lines[2];
  EXPECT_FALSE(fs::exists(db_path())) << "parse stores nothing";
}

// ---------------------------------------------------------------- import

TEST_F(Cli, ImportFilesThenAFolderThenAgainCountsDuplicates) {
  auto r = mr({"import", sample("01-dmarc-aggregate-gzip.eml").string(),
               sample("08-not-a-report.eml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 1, duplicate 0, failed 1 (unparsed, kept raw)")) << r.out;
  EXPECT_TRUE(contains(r.out, "; 1 new report(s)")) << r.out;
  EXPECT_TRUE(contains(r.err, "08-not-a-report.eml: not parsed (kept raw as message")) << r.err;

  // The folder holds 01 again: a duplicate.
  r = mr({"import", (test::source_dir() / "samples" / "reports").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 6, duplicate 1, failed 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "; 6 new report(s)")) << r.out;

  r = mr({"import", (test::source_dir() / "samples" / "reports").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 0, duplicate 7, failed 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "; 0 new report(s)")) << r.out;

  EXPECT_EQ(mr_json({"list", "dmarc", "--json"}).size(), 3u);
  EXPECT_EQ(mr_json({"list", "tls", "--json"}).size(), 1u);
  EXPECT_EQ(mr_json({"list", "arf", "--json"}).size(), 2u);
  EXPECT_EQ(mr_json({"list", "dsn", "--json"}).size(), 1u);
}

TEST_F(Cli, ImportExitCodesForNothingUsableAndForMissingPaths) {
  auto r = mr({"import", sample("08-not-a-report.eml").string()});
  EXPECT_EQ(r.exit_code, kExitDataErr) << "no input held a report";
  EXPECT_TRUE(contains(r.out, "imported 0, duplicate 0, failed 1")) << r.out;

  r = mr({"import", (dir() / "missing.eml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "not stored 1")) << r.out;
  EXPECT_TRUE(contains(r.err, "missing.eml: NOT STORED")) << r.err;
}

TEST_F(Cli, ImportSplitsAnMboxFileAndKeepsQuotedFromLines) {
  // RFC 4155: each message follows a "From " separator line; a body line starting with
  // "From " is quoted as ">From ".
  std::string dmarc = test::read_file(sample("03-dmarc-aggregate-xml.eml"));
  const std::string attached = "Aggregate report attached.\n";
  ASSERT_TRUE(contains(dmarc, attached));
  dmarc.replace(dmarc.find(attached), attached.size(),
                attached + ">From the provider, with regards.\n");
  const std::string tls = test::read_file(sample("04-tls-report.eml"));
  write(dir() / "reports.mbox",
        "From noreply-dmarc@provider.example Sat Jan  3 03:12:00 2026\n" + dmarc + "\n" +
            "From tlsrpt@provider.example Sat Jan  3 03:13:00 2026\n" + tls + "\n");

  auto r = mr({"import", (dir() / "reports.mbox").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 2, duplicate 0, failed 0")) << r.out;
  auto dmarc_rows = mr_json({"list", "dmarc", "--json"});
  ASSERT_EQ(dmarc_rows.size(), 1u);
  EXPECT_EQ(dmarc_rows[0].at("report_id"), "2026010200.pm.7");
  auto tls_rows = mr_json({"list", "tls", "--json"});
  ASSERT_EQ(tls_rows.size(), 1u);
  EXPECT_EQ(tls_rows[0].at("org_name"), "Mailbox Provider Example");

  // Each message is kept on its own, from its first header on: no separator line, no
  // neighbour, the quoted line as it was.
  auto messages = mr_json({"list", "messages", "--json"});
  ASSERT_EQ(messages.size(), 2u);
  {
    auto store = store::open_sqlite_store({.path = db_path(), .read_only = true});
    ASSERT_TRUE(store) << store.error().describe();
    std::string first;
    auto st = (*store)->read_raw(dmarc_rows[0].at("raw_message_id").get<std::int64_t>(),
                                 [&](std::span<const char> piece) -> Status {
                                   first.append(piece.data(), piece.size());
                                   return {};
                                 });
    ASSERT_TRUE(st) << st.error().describe();
    EXPECT_EQ(first.rfind("Return-Path: <noreply-dmarc@provider.example>", 0), 0u)
        << first.substr(0, 200);
    EXPECT_TRUE(contains(first, "\n>From the provider, with regards.\n"));
    EXPECT_FALSE(contains(first, "From tlsrpt@provider.example"));
    EXPECT_FALSE(contains(first, "\"organization-name\""));
  }

  r = mr({"import", (dir() / "reports.mbox").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 0, duplicate 2, failed 0")) << r.out;
}

TEST_F(Cli, ImportReadsAMaildirsCurAndNewButNotTmp) {
  const fs::path md = dir() / "Maildir";
  for (const char* sub : {"cur", "new", "tmp"}) fs::create_directories(md / sub);
  fs::copy_file(sample("01-dmarc-aggregate-gzip.eml"), md / "cur" / "1700000000.1.host:2,S");
  fs::copy_file(sample("05-arf-dmarc-failure.eml"), md / "new" / "1700000001.2.host");
  fs::copy_file(sample("06-arf-abuse.eml"), md / "tmp" / "1700000002.3.host");  // in delivery
  write(md / "dovecot-uidlist", "3 V1700000000 N3\n");

  auto r = mr({"import", md.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 2, duplicate 0, failed 0")) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
  auto arf = mr_json({"list", "arf", "--json"});
  ASSERT_EQ(arf.size(), 1u) << "tmp/ must not be read";
  EXPECT_EQ(arf[0].at("feedback_type"), "auth-failure");
  EXPECT_EQ(mr_json({"list", "dmarc", "--json"}).size(), 1u);
  EXPECT_EQ(mr_json({"list", "messages", "--json"}).size(), 2u);
}

TEST_F(Cli, ImportReadsEachFolderOnceDespiteALinkBackToItsParent) {
  const fs::path top = dir() / "reports";
  fs::create_directories(top / "sub");
  fs::copy_file(sample("03-dmarc-aggregate-xml.eml"), top / "sub" / "a.eml");
  fs::copy_file(sample("08-not-a-report.eml"), top / "sub" / "b.eml");
  fs::create_directory_symlink("..", top / "sub" / "up");

  auto r = mr({"import", top.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 1, duplicate 0, failed 1")) << r.out;
  EXPECT_TRUE(contains(r.err, "was read already")) << r.err;
  EXPECT_EQ(mr_json({"list", "messages", "--json"}).size(), 2u)
      << "the unparsed message was stored again through the link";
}

TEST_F(Cli, ImportSkipsTheStoreItselfInAFolder) {
  // The store and its configuration live in the folder imported.
  fs::copy_file(sample("03-dmarc-aggregate-xml.eml"), dir() / "a.eml");
  auto r = mr({"import", sample("04-tls-report.eml").string()});  // the store exists now
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mr({"import", dir().path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 1, duplicate 0, failed 1")) << r.out;  // a.eml, .toml
  EXPECT_TRUE(contains(r.err, "mailreport.db: skipped, this is the store")) << r.err;
  EXPECT_FALSE(contains(r.err, "mailreport.db: not parsed")) << r.err;
  EXPECT_FALSE(contains(r.err, "mailreport.db-wal: not parsed")) << r.err;
}

// ---------------------------------------------------------------- list

TEST_F(Cli, ListShowsEveryTypeAsATableAndAsJson) {
  import_samples();
  auto r = mr({"list", "dmarc"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;  // head + 3 reports
  for (const char* col :
       {"ID", "RECEIVED", "ORG", "REPORT ID", "DOMAIN", "PERIOD", "MESSAGES", "PASS", "FAIL"}) {
    EXPECT_TRUE(contains(lines[0], col)) << col;
  }
  // Newest period first: 03 (2026-01-02), then the two of 2026-01-01.
  EXPECT_TRUE(contains(lines[1], "2026010200.pm.7")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "example.net"));
  EXPECT_TRUE(contains(lines[1], "2026-01-02"));
  EXPECT_TRUE(contains(r.out, "Large ISP Example"));
  EXPECT_TRUE(contains(r.out, "isp-7781-20260101"));

  r = mr({"list", "tls"});
  EXPECT_TRUE(contains(r.out, "SESSIONS OK")) << r.out;
  EXPECT_TRUE(contains(r.out, "5210")) << r.out;
  r = mr({"list", "arf"});
  EXPECT_TRUE(contains(r.out, "auth-failure")) << r.out;
  EXPECT_TRUE(contains(r.out, "abuse")) << r.out;
  r = mr({"list", "dsn"});
  EXPECT_TRUE(contains(r.out, "failed")) << r.out;
  EXPECT_TRUE(contains(r.out, "5.1.1")) << r.out;

  auto dmarc = mr_json({"list", "dmarc", "--json"});
  ASSERT_EQ(dmarc.size(), 3u);
  std::map<std::string, json> by_id;
  for (const auto& row : dmarc) by_id[row.at("report_id")] = row;
  ASSERT_TRUE(by_id.count("2026010200.pm.7"));
  const auto& r03 = by_id["2026010200.pm.7"];
  EXPECT_EQ(r03.at("type"), "dmarc-aggregate");
  EXPECT_EQ(r03.at("org_name"), "Mailbox Provider Example");
  EXPECT_EQ(r03.at("policy_domain"), "example.net");
  EXPECT_EQ(r03.at("messages"), 100);
  EXPECT_EQ(r03.at("pass"), 96);
  EXPECT_EQ(r03.at("fail"), 4);

  auto tls = mr_json({"list", "tls", "--json"});
  ASSERT_EQ(tls.size(), 1u);
  EXPECT_EQ(tls[0].at("sessions_ok"), 5210);
  EXPECT_EQ(tls[0].at("sessions_failed"), 14);
  auto arf = mr_json({"list", "arf", "--json"});
  ASSERT_EQ(arf.size(), 2u);
  std::set<std::string> feedback;
  for (const auto& row : arf) feedback.insert(row.at("feedback_type"));
  EXPECT_EQ(feedback, (std::set<std::string>{"abuse", "auth-failure"}));
  auto dsn = mr_json({"list", "dsn", "--json"});
  ASSERT_EQ(dsn.size(), 1u);
  EXPECT_EQ(dsn[0].at("action"), "failed");
  EXPECT_EQ(dsn[0].at("status"), "5.1.1");
}

TEST_F(Cli, ListFiltersByDomainAndSince) {
  import_samples();
  auto net = mr_json({"list", "dmarc", "--domain", "example.net", "--json"});
  ASSERT_EQ(net.size(), 1u);
  EXPECT_EQ(net[0].at("report_id"), "2026010200.pm.7");
  EXPECT_EQ(mr_json({"list", "dmarc", "--domain", "EXAMPLE.NET", "--json"}).size(), 1u)
      << "domains compare case-insensitively";
  EXPECT_EQ(mr_json({"list", "dmarc", "--domain", "example.com", "--json"}).size(), 2u);
  EXPECT_EQ(mr_json({"list", "dmarc", "--domain", "nowhere.example", "--json"}).size(), 0u);

  auto since = mr_json({"list", "dmarc", "--since", "2026-01-02", "--json"});
  ASSERT_EQ(since.size(), 1u);
  EXPECT_EQ(since[0].at("date_begin"), 1767312000);
  // Epoch seconds work as well: 2026-01-01T00:00:00Z.
  EXPECT_EQ(mr_json({"list", "dmarc", "--since", "1767225600", "--json"}).size(), 3u);
  EXPECT_EQ(mr_json({"list", "dmarc", "--since", "2030-01-01", "--json"}).size(), 0u);
  auto r = mr({"list", "dmarc", "--since", "2030-01-01"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "no dmarc reports\n");
  EXPECT_EQ(mr_json({"list", "dmarc", "--limit", "2", "--json"}).size(), 2u);
  EXPECT_EQ(mr_json({"list", "dmarc", "--domain", "example.com", "--since", "2026-01-02", "--json"})
                .size(),
            0u);
}

TEST_F(Cli, ListRefusesBadArgumentsAndSaysWhenThereIsNoStore) {
  auto r = mr({"list", "dmarc"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "no store at")) << r.err;
  EXPECT_FALSE(fs::exists(db_path())) << "a read-only command must not create the store";

  import_samples();
  r = mr({"list", "bogus"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_TRUE(contains(r.err, "unknown report type 'bogus'")) << r.err;
  r = mr({"list", "dmarc", "--since", "yesterday"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_TRUE(contains(r.err, "YYYY-MM-DD")) << r.err;
  r = mr({"list", "dmarc", "--failed"});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

TEST_F(Cli, ListMessagesShowsWhatWasKeptWithoutAReport) {
  write(dir() / "empty.eml", "");
  auto r = mr({"import", sample("03-dmarc-aggregate-xml.eml").string(),
               sample("08-not-a-report.eml").string(), (dir() / "empty.eml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 1, duplicate 0, failed 2")) << r.out;

  auto all = mr_json({"list", "messages", "--json"});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_GT(all[0].at("id").get<std::int64_t>(), all[2].at("id").get<std::int64_t>())
      << "newest first";
  auto failed = mr_json({"list", "messages", "--failed", "--json"});
  ASSERT_EQ(failed.size(), 2u);
  for (const auto& m : failed) {
    EXPECT_EQ(m.at("status"), "unparsed");
    EXPECT_EQ(m.at("source"), "import");
    EXPECT_FALSE(m.at("parse_error").get<std::string>().empty());
    EXPECT_EQ(m.at("sha256").get<std::string>().size(), 64u);
  }
  // The empty file came last: newest first.
  EXPECT_EQ(failed[0].at("size"), 0);
  EXPECT_TRUE(contains(failed[0].at("parse_error"), "empty")) << failed[0];
  EXPECT_EQ(failed[1].at("size"), fs::file_size(sample("08-not-a-report.eml")));
  EXPECT_TRUE(contains(failed[1].at("parse_error"), "no report found")) << failed[1];
  EXPECT_TRUE(contains(failed[1].at("client"), "08-not-a-report.eml")) << failed[1];

  r = mr({"list", "messages", "--failed"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (const char* col : {"ID", "RECEIVED", "SOURCE", "FROM", "SIZE", "STATUS", "PARSE ERROR"}) {
    EXPECT_TRUE(contains(lines[0], col)) << col;
  }
  EXPECT_TRUE(contains(lines[2], "unparsed")) << lines[2];
  EXPECT_TRUE(contains(lines[2], "no report found")) << lines[2];
  EXPECT_TRUE(contains(lines[2], std::to_string(fs::file_size(sample("08-not-a-report.eml")))));

  r = mr({"list", "messages"});
  lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return contains(l, " unparsed "); }),
            2);
  EXPECT_TRUE(lines[3].ends_with(" parsed")) << lines[3];  // 03, the oldest
  EXPECT_EQ(mr_json({"list", "messages", "--limit", "1", "--json"}).size(), 1u);
  EXPECT_EQ(mr_json({"list", "messages", "--since", "2000-01-01", "--json"}).size(), 3u);
  EXPECT_EQ(mr_json({"list", "messages", "--since", "2999-01-01", "--json"}).size(), 0u);
  r = mr({"list", "messages", "--domain", "example.com"});
  EXPECT_EQ(r.exit_code, kExitUsage);

  // Once re-parsed with nothing new, they are still there and still listed.
  r = mr({"reparse"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mr_json({"list", "messages", "--failed", "--json"}).size(), 2u);
}

TEST_F(Cli, ListMessagesSaysSoWhenNothingFailed) {
  auto r = mr({"import", sample("04-tls-report.eml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mr({"list", "messages", "--failed"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "no messages without a report\n");
  EXPECT_EQ(mr_json({"list", "messages", "--failed", "--json"}), json::array());
}

// ---------------------------------------------------------------- show

TEST_F(Cli, ShowPrintsTheSamplesFields) {
  import_samples();
  const auto id = report_id_of("dmarc", "2026010200.pm.7");
  auto r = mr({"show", std::to_string(id)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "(dmarc-aggregate)")) << r.out;
  EXPECT_TRUE(contains(r.out, "Mailbox Provider Example <noreply-dmarc@provider.example>"));
  EXPECT_TRUE(contains(r.out, "2026010200.pm.7"));
  EXPECT_TRUE(contains(r.out, "example.net p=quarantine"));
  EXPECT_TRUE(contains(r.out, "100 (96 pass, 4 fail)"));
  EXPECT_TRUE(contains(r.out, "Records (2):"));
  EXPECT_TRUE(contains(r.out, "203.0.113.5  count 4"));

  // --json: the parser's rendering of the same sample, plus the store's metadata.
  json shown = mr_json({"show", std::to_string(id), "--json"});
  EXPECT_EQ(shown.at("id"), id);
  EXPECT_EQ(shown.at("type"), "dmarc-aggregate");
  EXPECT_EQ(shown.at("report_metadata").at("org_name"), "Mailbox Provider Example");
  EXPECT_EQ(shown.at("report_metadata").at("report_id"), "2026010200.pm.7");
  EXPECT_EQ(shown.at("records").size(), 2u);
  EXPECT_TRUE(shown.contains("raw_message_id"));
  EXPECT_TRUE(shown.contains("received_at"));
  auto parsed = mr({"parse", sample("03-dmarc-aggregate-xml.eml").string()});
  json from_parse = json::parse(parsed.out).at("reports")[0];
  for (const char* meta : {"id", "raw_message_id", "received_at"}) shown.erase(meta);
  EXPECT_EQ(shown, from_parse);

  // Every other type shows as well.
  auto tls = mr({"show", std::to_string(report_id_of("tls", "2026-01-01T00:00:00Z_example.com"))});
  EXPECT_TRUE(contains(tls.out, "5210 successful, 14 failed")) << tls.out;
  auto arf = mr({"show", std::to_string(report_id_of("arf", "<ruf-5521@isp.example>")), "--json"});
  EXPECT_TRUE(contains(arf.out, "\"source_ip\": \"198.51.100.99\"")) << arf.out;
  auto dsn = mr({"show", std::to_string(report_id_of("dsn", "<20260103.DSN1@mx.example.com>"))});
  EXPECT_TRUE(contains(dsn.out, "dmarc@gone.example.org")) << dsn.out;
  EXPECT_TRUE(contains(dsn.out, "5.1.1")) << dsn.out;
}

TEST_F(Cli, ShowOfAnUnknownIdFails) {
  import_samples();
  auto r = mr({"show", "9999"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "no report with id 9999")) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = mr({"show", "nine"});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

// ---------------------------------------------------------------- export

TEST_F(Cli, ExportJsonIsOneStoredReportPerLine) {
  import_samples();
  auto r = mr({"export", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 7u) << r.out;
  std::int64_t last_id = 0;
  std::map<std::string, int> types;
  for (const auto& line : lines) {
    json j = json::parse(line);  // one whole report on each line
    ASSERT_TRUE(j.is_object());
    EXPECT_GT(j.at("id").get<std::int64_t>(), last_id) << "oldest first";
    last_id = j.at("id").get<std::int64_t>();
    ++types[j.at("type")];
    // The same object as show --json.
    EXPECT_EQ(j, mr_json({"show", std::to_string(last_id), "--json"}));
  }
  EXPECT_EQ(types, (std::map<std::string, int>{
                       {"dmarc-aggregate", 3}, {"tls-aggregate", 1}, {"arf", 2}, {"dsn", 1}}));

  auto only = lines_of(
      mr({"export", "--format", "json", "--type", "dmarc", "--domain", "example.net"}).out);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(json::parse(only[0]).at("report_metadata").at("report_id"), "2026010200.pm.7");
}

TEST_F(Cli, ExportCsvQuotesCommasAndQuotes) {
  const std::string org = "Acme, \"Mail\" Inc.";
  write(dir() / "acme.xml", dmarc_xml(org, "acme-1", "acme.example", 1767225600));
  auto r =
      mr({"import", (dir() / "acme.xml").string(), sample("03-dmarc-aggregate-xml.eml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(contains(r.out, "imported 2")) << r.out;

  r = mr({"export", "--format", "csv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // RFC 4180: CRLF line ends; the field doubled its quotes and is quoted.
  EXPECT_TRUE(contains(r.out, "\r\n"));
  EXPECT_TRUE(contains(r.out, ",\"Acme, \"\"Mail\"\" Inc.\",acme-1,acme.example,")) << r.out;
  auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 1u + 2u + 2u) << r.out;  // header, 2 records of each report
  const std::vector<std::string> header = {"id",
                                           "org_name",
                                           "report_id",
                                           "policy_domain",
                                           "date_begin",
                                           "date_end",
                                           "source_ip",
                                           "count",
                                           "disposition",
                                           "dkim_aligned",
                                           "spf_aligned",
                                           "header_from",
                                           "envelope_from",
                                           "envelope_to",
                                           "dkim_domains",
                                           "dkim_selectors",
                                           "dkim_results",
                                           "spf_domains",
                                           "spf_scopes",
                                           "spf_results",
                                           "reasons"};
  EXPECT_EQ(rows[0], header);
  int acme_rows = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i;
    if (rows[i][2] != "acme-1") continue;
    ++acme_rows;
    EXPECT_EQ(rows[i][1], org);
    EXPECT_EQ(rows[i][3], "acme.example");
    EXPECT_EQ(rows[i][4], "2026-01-01T00:00:00Z");
    EXPECT_EQ(rows[i][5], "2026-01-01T23:59:59Z");
  }
  EXPECT_EQ(acme_rows, 2);
  EXPECT_EQ(rows[1][6], "192.0.2.77");
  EXPECT_EQ(rows[1][7], "7");
  EXPECT_EQ(rows[2][6], "198.51.100.8");
  EXPECT_EQ(rows[2][16], "fail");

  // Another type: TLS has its own columns.
  r = mr({"import", sample("04-tls-report.eml").string()});
  auto tls = parse_csv(mr({"export", "--format", "csv", "--type", "tls"}).out);
  ASSERT_GE(tls.size(), 2u);
  EXPECT_EQ(tls[0][6], "policy_type");
  EXPECT_EQ(tls[1][1], "Mailbox Provider Example");

  r = mr({"export", "--format", "xml"});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

// ---------------------------------------------------------------- reparse, purge

TEST_F(Cli, ReparseTakesTheFailedMessagesOrAll) {
  auto r = mr({"import", sample("01-dmarc-aggregate-gzip.eml").string(),
               sample("08-not-a-report.eml").string(), sample("07-dsn-bounce.eml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mr({"reparse"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "reparsed 1 message(s): parsed 0, duplicate 0, failed 1")) << r.out;
  r = mr({"reparse", "--failed"});
  EXPECT_TRUE(contains(r.out, "reparsed 1 message(s)")) << r.out;
  r = mr({"reparse", "--all"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "reparsed 3 message(s): parsed 2, duplicate 0, failed 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "2 report(s) stored")) << r.out;
  // The reports were replaced, not doubled.
  EXPECT_EQ(mr_json({"list", "dmarc", "--json"}).size(), 1u);
  EXPECT_EQ(mr_json({"list", "dsn", "--json"}).size(), 1u);
  r = mr({"reparse", "--all", "--failed"});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

TEST_F(Cli, PurgeAppliesTheRetentionFromTheConfigurationOrTheCommandLine) {
  using namespace std::chrono;
  const std::int64_t now = duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
  {
    auto store = store::open_sqlite_store({.path = db_path()});
    ASSERT_TRUE(store) << store.error().describe();
    NullLogger log;
    ingest::StoreIngestor ingestor(**store, log);
    const std::vector<std::pair<std::string, std::int64_t>> received = {
        {"01-dmarc-aggregate-gzip.eml", now - 40 * 86400},
        {"02-dmarc-aggregate-zip.eml", now - 20 * 86400},
        {"08-not-a-report.eml", now - 20 * 86400},
        {"03-dmarc-aggregate-xml.eml", now - 2 * 86400},
        {"04-tls-report.eml", now}};
    for (const auto& [file, at] : received) {
      auto input = Input::from_file(sample(file));
      ASSERT_TRUE(input);
      ingest::Envelope env;
      env.source = "test";
      env.received_at = at;
      auto out = ingestor.ingest(env, *input);
      ASSERT_TRUE(out) << out.error().describe();
    }
  }
  // The default retention, 30 days: the 40-day-old report goes.
  auto r = mr({"purge"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "removed 1 report(s) and 1 raw message(s)")) << r.out;
  EXPECT_EQ(mr_json({"list", "dmarc", "--json"}).size(), 2u);

  // report.analysis.store = "10d": the 20-day-old report and unparsed message go.
  write_config("[report.analysis]\nstore = \"10d\"\n");
  r = mr({"purge"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "removed 1 report(s) and 2 raw message(s)")) << r.out;
  EXPECT_EQ(mr_json({"list", "messages", "--failed", "--json"}).size(), 0u);

  // --older-than overrides the configuration.
  r = mr({"purge", "--older-than", "1d"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "removed 1 report(s) and 1 raw message(s)")) << r.out;
  EXPECT_EQ(mr_json({"list", "dmarc", "--json"}).size(), 0u);
  EXPECT_EQ(mr_json({"list", "tls", "--json"}).size(), 1u) << "the fresh one stays";

  r = mr({"purge", "--older-than", "soon"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_EQ(mr_json({"list", "tls", "--json"}).size(), 1u);
}

// ---------------------------------------------------------------- check-config

TEST_F(Cli, CheckConfigAcceptsTheShippedConfiguration) {
  const auto shipped = test::source_dir() / "conf" / "mailreport.toml";
  auto r = test::run_command({test::cli_binary().string(), "check-config", "-c", shipped.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, shipped.string() + ": OK")) << r.out;
  EXPECT_TRUE(contains(r.out, "report retention:   30d")) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(Cli, CheckConfigNamesFileLineAndKeyOfEveryProblem) {
  const auto bad = dir() / "bad.toml";
  write(bad,
        "[store]\n"
        "path = 5\n"
        "[lmtp]\n"
        "max-connections = \"many\"\n"
        "no-such-key = 1\n");
  auto r = mr({"check-config", "-c", bad.string()});
  EXPECT_EQ(r.exit_code, kExitConfig);
  auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 3u) << r.err;
  EXPECT_EQ(lines[0].rfind(bad.string() + ":2: store.path: ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind(bad.string() + ":4: lmtp.max-connections: ", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind(bad.string() + ":5: lmtp.no-such-key: ", 0), 0u) << lines[2];
  for (const auto& l : lines) EXPECT_GT(l.size(), l.rfind(": ") + 2) << "a message: " << l;

  // Broken TOML syntax is a problem with a line too.
  write(bad, "[store]\npath = \"unterminated\n");
  r = mr({"check-config", "-c", bad.string()});
  EXPECT_EQ(r.exit_code, kExitConfig);
  EXPECT_EQ(r.err.rfind(bad.string() + ":2", 0), 0u) << r.err;

  // Any command refuses to run on a broken configuration.
  write(config_path(), "[store]\npath = 5\n");
  r = mr({"list", "dmarc"});
  EXPECT_EQ(r.exit_code, kExitConfig);
  EXPECT_TRUE(contains(r.err, ":2: store.path: ")) << r.err;
}

// ---------------------------------------------------------------- demo

// The sample names and the recipient each is delivered to, as demo prints them.
void expect_demo_output(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = lines_of(r.out);
  for (const auto& s : kSamples) {
    auto n = std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.rfind("  " + s + " -> ", 0) == 0 && contains(l, ": 250 ");
    });
    EXPECT_EQ(n, s == kSamples.front() ? 2 : 1) << s << " in:\n" << r.out;
  }
  EXPECT_TRUE(
      contains(r.out, "reports by type:  dmarc-aggregate 3  tls-aggregate 1  arf 2  dsn 1\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out,
                       "top reporting organisations:\n    Mailbox Provider Example: 3 "
                       "reports\n    isp.example: 2 reports\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "    Large ISP Example: 1 report\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "DMARC messages reported: 3076 (pass 3005, fail 71)")) << r.out;
  EXPECT_TRUE(contains(r.out, "TLS sessions reported: 5210 successful, 14 failed")) << r.out;
  EXPECT_TRUE(contains(r.out, "raw messages kept: 9 (1 without a report")) << r.out;
  EXPECT_FALSE(contains(r.err, "delivery(ies) failed")) << r.err;
}

TEST(CliDemo, DeliversEverySampleOnAFreePortAndPrintsTheSummary) {
  test::TempDir state;
  auto r = test::run_command({test::cli_binary().string(), "demo", "--once", "--state-dir",
                              state.path().string(), "--port", "0"});
  ASSERT_FALSE(r.timed_out);
  expect_demo_output(r);
  EXPECT_TRUE(contains(r.out, "LMTP receiver on 127.0.0.1:")) << r.out;
  EXPECT_FALSE(contains(r.out, "127.0.0.1:0 ")) << "the bound port is shown, not 0";

  // The configuration it leaves serves the other commands.
  auto list = test::run_command({test::cli_binary().string(), "-c",
                                 (state / "mailreport.toml").string(), "list", "dmarc", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(json::parse(list.out).size(), 3u);
  auto check = test::run_command(
      {test::cli_binary().string(), "check-config", "-c", (state / "mailreport.toml").string()});
  EXPECT_EQ(check.exit_code, 0) << check.err;

  // A second run starts afresh (no --keep).
  r = test::run_command({test::cli_binary().string(), "demo", "--once", "--state-dir",
                         state.path().string(), "--port", "0"});
  expect_demo_output(r);
}

TEST(CliDemo, TakesAFreePortWhenTheRequestedOneIsBusy) {
  UniqueFd busy(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(busy.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(busy.get(), 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(busy.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));

  test::TempDir state;
  auto r = test::run_command({test::cli_binary().string(), "demo", "--once", "--state-dir",
                              state.path().string(), "--port", port});
  ASSERT_FALSE(r.timed_out);
  EXPECT_TRUE(contains(r.err, "port " + port + " is taken")) << r.err;
  expect_demo_output(r);
  EXPECT_FALSE(contains(r.out, "127.0.0.1:" + port + " ")) << r.out;
}

}  // namespace
}  // namespace mailreport
