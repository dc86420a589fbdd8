// Golden tests over the real-world corpus (../shared/corpus/MANIFEST.tsv): every file of a
// report kind is extracted and rendered as `mailreport parse` renders it, and the result must
// equal the committed expectation in tests/golden/<corpus path>.json. Files of kind `other`
// must end in a clean outcome: a report, or a NotAReport/Invalid/LimitExceeded error.
//
// After a deliberate parser change, regenerate the expectations (these and the per-type ones
// under tests/data) and review the diff:
//   MAILREPORT_BLESS=1 build/release/tests/test-golden
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mailreport/report/extract.hpp"
#include "mailreport/report/json.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_report_kind(const std::string& kind) { return kind != "other"; }

// What `mailreport parse` prints for a file, minus the "file" key.
json parse_output(const fs::path& path) {
  json out = {{"reports", json::array()}, {"error", nullptr}};
  auto input = Input::from_file(path);
  if (!input) {
    out["error"] = input.error().describe();
    return out;
  }
  CollectingSink sink;
  auto outcome = extract_reports(*input, sink, ExtractLimits{});
  for (const auto& r : sink.reports()) out["reports"].push_back(to_json(r));
  if (!outcome) out["error"] = outcome.error().describe();
  return out;
}

fs::path golden_path(const std::string& corpus_file) {
  return test::source_dir() / "tests" / "golden" / (corpus_file + ".json");
}

using test::blessing;

TEST(Golden, EveryReportFileMatchesItsExpectation) {
  MAILREPORT_REQUIRE_CORPUS();
  std::size_t checked = 0, blessed = 0;
  std::vector<std::string> mismatches;
  for (const auto& row : test::corpus_manifest()) {
    if (!is_report_kind(row.kind)) continue;
    json got = parse_output(test::corpus_dir() / row.file);
    fs::path expected_path = golden_path(row.file);
    if (blessing()) {
      fs::create_directories(expected_path.parent_path());
      std::ofstream(expected_path) << got.dump(1) << "\n";
      ++blessed;
      continue;
    }
    if (!fs::exists(expected_path)) {
      mismatches.push_back(row.file + ": no expectation at " + expected_path.string() +
                           " (run with MAILREPORT_BLESS=1 and review)");
      continue;
    }
    json expected = json::parse(test::read_file(expected_path), nullptr, false);
    ++checked;
    if (expected != got) {
      json patch = json::diff(expected, got);
      std::string first = patch.empty() ? "" : patch[0].dump();
      if (first.size() > 400) first = first.substr(0, 400) + "...";
      mismatches.push_back(row.file + ": differs from its expectation; first change: " + first);
    }
  }
  if (blessing()) {
    std::cout << "blessed " << blessed << " expectations under tests/golden/\n";
    return;
  }
  EXPECT_GT(checked, 600u);
  for (const auto& m : mismatches) ADD_FAILURE() << m;
}

// Each report kind yields at least one report of the matching type.
TEST(Golden, ReportKindsYieldTheirType) {
  MAILREPORT_REQUIRE_CORPUS();
  const std::map<std::string, std::string> expected_type = {
      {"dmarc-agg-xml", "dmarc-aggregate"}, {"dmarc-agg-gz", "dmarc-aggregate"},
      {"dmarc-agg-zip", "dmarc-aggregate"}, {"dmarc-agg-eml", "dmarc-aggregate"},
      {"tlsrpt-json", "tls-aggregate"},     {"tlsrpt-gz", "tls-aggregate"},
      {"tlsrpt-eml", "tls-aggregate"},      {"forensic-eml", "arf"},
      {"arf-abuse-eml", "arf"},             {"dsn-eml", "dsn"}};
  std::map<std::string, std::pair<int, int>> per_kind;  // kind -> (files, with the type)
  std::vector<std::string> misses;
  for (const auto& row : test::corpus_manifest()) {
    auto it = expected_type.find(row.kind);
    if (it == expected_type.end()) continue;
    json got = parse_output(test::corpus_dir() / row.file);
    bool found = false;
    for (const auto& r : got["reports"]) found = found || r.value("type", "") == it->second;
    auto& [files, hits] = per_kind[row.kind];
    ++files;
    if (found) {
      ++hits;
    } else {
      misses.push_back(row.kind + " " + row.file + ": " +
                       (got["error"].is_null() ? std::string("no ") + it->second
                                               : got["error"].get<std::string>()));
    }
  }
  for (const auto& [kind, counts] : per_kind) {
    std::cout << kind << ": " << counts.second << "/" << counts.first << " files yield their report\n";
    if (kind != "dsn-eml") {
      EXPECT_EQ(counts.first, counts.second) << kind;
    } else {
      // Many corpus bounces are not RFC 3464 (vendor formats); the DSN ones must parse.
      EXPECT_GE(counts.second * 100, counts.first * 90) << kind;
    }
  }
  for (const auto& m : misses) std::cout << "  miss: " << m << "\n";
}

// Files that are not reports end in a clean outcome: never a crash, a report or an error
// that says why.
TEST(Golden, OtherFilesEndCleanly) {
  MAILREPORT_REQUIRE_CORPUS();
  std::size_t n = 0;
  for (const auto& row : test::corpus_manifest()) {
    if (row.kind != "other") continue;
    json got = parse_output(test::corpus_dir() / row.file);
    ++n;
    if (got["reports"].empty()) {
      ASSERT_FALSE(got["error"].is_null()) << row.file << ": no report and no reason";
      EXPECT_FALSE(got["error"].get<std::string>().empty()) << row.file;
    }
  }
  EXPECT_GT(n, 300u);
}

}  // namespace
}  // namespace mailreport::report
