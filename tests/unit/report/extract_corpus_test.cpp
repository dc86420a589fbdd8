// extract_reports over the shared real-world corpus (MANIFEST.tsv): every report file yields
// reports of its kind, every other file ends in a clean outcome, none hangs.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "extract_test_support.hpp"
#include "mailreport/report/extract.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

using extract_test::Extracted;

struct Tally {
  std::size_t files = 0;
  std::size_t with_expected = 0;
  std::vector<std::string> misses;  // "file: outcome"
};

// Runs every file of `kind`; counts those that yield at least one report of `want`.
Tally run_kind(const std::string& kind, std::optional<ReportType> want) {
  Tally t;
  for (const auto& row : test::corpus_manifest()) {
    if (row.kind != kind) continue;
    ++t.files;
    auto input = Input::from_file(test::corpus_dir() / row.file);
    if (!input) {
      ADD_FAILURE() << row.file << ": " << input.error().describe();
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    Extracted r = extract_test::extract(*input);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 10.0) << row.file;
    if (!r.ok()) {
      // A clean outcome: never a sink/I-O error for a readable file.
      EXPECT_TRUE(r.code == ErrorCode::NotAReport || r.code == ErrorCode::Invalid ||
                  r.code == ErrorCode::LimitExceeded)
          << row.file << ": " << to_string(r.code) << ": " << r.error;
    }
    bool hit = r.ok() && (!want || r.count(*want) > 0);
    if (hit) {
      ++t.with_expected;
      if (!want) std::cout << "[corpus]   report from " << row.file << "\n";
    } else {
      t.misses.push_back(row.file + ": " +
                         (r.ok() ? std::to_string(r.sink.reports().size()) + " other report(s)"
                                 : std::string(to_string(r.code)) + ": " + r.error));
    }
  }
  std::cout << "[corpus] " << kind << ": " << t.with_expected << "/" << t.files << " yield "
            << (want ? to_string(*want) : "a report") << "\n";
  for (const auto& m : t.misses) std::cout << "[corpus]   miss " << m << "\n";
  return t;
}

void expect_all(const std::string& kind, ReportType want) {
  Tally t = run_kind(kind, want);
  EXPECT_GT(t.files, 0u) << kind;
  EXPECT_EQ(t.with_expected, t.files) << kind;
}

TEST(ExtractCorpus, DmarcAggregateGzip) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("dmarc-agg-gz", ReportType::DmarcAggregate);
}

TEST(ExtractCorpus, DmarcAggregateZip) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("dmarc-agg-zip", ReportType::DmarcAggregate);
}

TEST(ExtractCorpus, DmarcAggregateEmail) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("dmarc-agg-eml", ReportType::DmarcAggregate);
}

TEST(ExtractCorpus, DmarcAggregateXml) {
  MAILREPORT_REQUIRE_CORPUS();
  // Bare XML goes straight to the DMARC parser; its own tests judge the quirks. Here: most
  // yield a report and none ends badly.
  Tally t = run_kind("dmarc-agg-xml", ReportType::DmarcAggregate);
  EXPECT_GE(t.with_expected * 10, t.files * 9);
}

TEST(ExtractCorpus, TlsReportGzip) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("tlsrpt-gz", ReportType::TlsAggregate);
}

TEST(ExtractCorpus, TlsReportEmail) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("tlsrpt-eml", ReportType::TlsAggregate);
}

TEST(ExtractCorpus, TlsReportJson) {
  MAILREPORT_REQUIRE_CORPUS();
  Tally t = run_kind("tlsrpt-json", ReportType::TlsAggregate);
  EXPECT_GE(t.with_expected * 10, t.files * 9);
}

TEST(ExtractCorpus, ForensicEmail) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("forensic-eml", ReportType::Arf);
}

TEST(ExtractCorpus, ArfAbuseEmail) {
  MAILREPORT_REQUIRE_CORPUS();
  expect_all("arf-abuse-eml", ReportType::Arf);
}

TEST(ExtractCorpus, DeliveryStatusNotifications) {
  MAILREPORT_REQUIRE_CORPUS();
  Tally t = run_kind("dsn-eml", ReportType::Dsn);
  ASSERT_GT(t.files, 0u);
  RecordProperty("dsn_yield", std::to_string(t.with_expected) + "/" + std::to_string(t.files));
  EXPECT_GE(t.with_expected * 100, t.files * 95) << "most DSNs must yield a dsn report";
}

TEST(ExtractCorpus, OtherFilesEndCleanly) {
  MAILREPORT_REQUIRE_CORPUS();
  // Non-RFC-3464 bounces, non-ARF complaints, expected-output JSON, schemas, empty files:
  // a report or a NotAReport/Invalid outcome (checked in run_kind), never a crash or hang.
  Tally t = run_kind("other", std::nullopt);
  EXPECT_GT(t.files, 0u);
}

}  // namespace
}  // namespace mailreport::report
