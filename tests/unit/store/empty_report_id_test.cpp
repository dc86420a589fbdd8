// De-duplication of DMARC aggregate and TLS reports that arrive without a report id: the store
// derives a stable "sha256:" id from (org, contact, period, domain), so that different reports
// of one org about one domain are not merged on "", while a re-sent copy still is a duplicate.
// On SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::filter;
using test::open_store;
using test::TempDir;

struct Written {
  std::size_t stored = 0;
  std::size_t duplicates = 0;
};

template <class Fill>
Written write_message(Store& store, Fill&& fill) {
  Written w;
  auto tx = store.begin_write();
  EXPECT_TRUE(tx) << tx.error().describe();
  if (!tx) return w;
  const std::string raw = "From: reporter@example.org\r\n\r\nbody\r\n";  // outlives src
  MemorySource src(raw);
  auto info =
      (*tx)->add_raw_message({1700090000, "test", "a@b.example", {"dmarc@ours.example"}, ""}, src);
  EXPECT_TRUE(info) << info.error().describe();
  if (!info) return w;
  auto writer = (*tx)->report_writer(info->id, 1700090000);
  fill(*writer);
  EXPECT_TRUE(writer->finish());
  w.stored = writer->stored();
  w.duplicates = writer->duplicates();
  writer.reset();
  EXPECT_TRUE((*tx)->set_parse_outcome(info->id, ParseStatus::Parsed, ""));
  EXPECT_TRUE((*tx)->commit());
  return w;
}

bool has_note_about_id(const std::vector<std::string>& errors) {
  for (const auto& e : errors) {
    if (e.find("no report id") != std::string::npos) return true;
  }
  return false;
}

class EmptyReportId : public test::StoreTest {};

TEST_P(EmptyReportId, DifferentDmarcReportsOfOneOrgAndDomainAreBothStored) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto day1 = test::sample_dmarc("", "Example Org", "example.com", 1700000000);
  auto day2 = test::sample_dmarc("", "Example Org", "example.com", 1700086400);
  day2.records.resize(1);

  auto w1 = write_message(*store, [&](report::ReportSink& s) { test::write_dmarc(s, day1); });
  auto w2 = write_message(*store, [&](report::ReportSink& s) { test::write_dmarc(s, day2); });
  EXPECT_EQ(w1.stored, 1u);
  EXPECT_EQ(w2.stored, 1u) << "a second report without id was taken for a duplicate";
  EXPECT_EQ(w2.duplicates, 0u);

  auto rows = store->list_reports(filter(report::ReportType::DmarcAggregate));
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_NE((*rows)[0].report_id, (*rows)[1].report_id);
  for (const auto& r : *rows) {
    EXPECT_EQ(r.report_id.rfind("sha256:", 0), 0u) << r.report_id;
    EXPECT_EQ(r.report_id.size(), 7u + 64u) << r.report_id;
    auto full = store->get_report(r.id);
    ASSERT_TRUE(full) << full.error().describe();
    const auto& d = std::get<report::DmarcAggregate>(full->report);
    EXPECT_TRUE(has_note_about_id(d.errors)) << "the derived id is not noted";
    // The parser's own notes are kept beside it.
    EXPECT_NE(std::find(d.errors.begin(), d.errors.end(), "line 3: salvaged something"),
              d.errors.end());
  }
  // Newest period first: day2 holds its first record only (10 messages), day1 18.
  EXPECT_EQ((*rows)[0].messages, 10u);
  EXPECT_EQ((*rows)[1].messages, 18u);
}

TEST_P(EmptyReportId, AResentDmarcReportWithoutIdIsStillADuplicate) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto r = test::sample_dmarc("", "Example Org", "example.com", 1700000000);
  auto again = r;
  again.header.report_metadata.report_id = "  \t";  // blank is as good as empty
  again.header.report_metadata.org_name = " Example Org ";
  again.header.policy_published.domain = "Example.COM.";

  EXPECT_EQ(write_message(*store, [&](report::ReportSink& s) { test::write_dmarc(s, r); }).stored,
            1u);
  auto w = write_message(*store, [&](report::ReportSink& s) { test::write_dmarc(s, again); });
  EXPECT_EQ(w.stored, 0u);
  EXPECT_EQ(w.duplicates, 1u);
  auto rows = store->list_reports(filter(report::ReportType::DmarcAggregate));
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 1u);
}

TEST_P(EmptyReportId, OtherOrgsAndDomainsDeriveOtherIds) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = test::sample_dmarc("", "Example Org", "example.com");
  auto b = test::sample_dmarc("", "Example Org", "example.net");
  auto c = test::sample_dmarc("", "Other Org", "example.com");
  auto named = test::sample_dmarc("r-1", "Example Org", "example.com");
  for (const auto* m : {&a, &b, &c, &named}) {
    auto w = write_message(*store, [&](report::ReportSink& s) { test::write_dmarc(s, *m); });
    EXPECT_EQ(w.stored, 1u);
  }
  auto rows = store->list_reports(filter(report::ReportType::DmarcAggregate));
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 4u);
  std::set<std::string> ids;
  for (const auto& r : *rows) ids.insert(r.policy_domain + "/" + r.org_name + "/" + r.report_id);
  EXPECT_EQ(ids.size(), 4u);
  // A report that has an id keeps it, without a note.
  auto it = std::find_if(rows->begin(), rows->end(),
                         [](const ReportSummary& s) { return s.report_id == "r-1"; });
  ASSERT_NE(it, rows->end());
  auto full = store->get_report(it->id);
  ASSERT_TRUE(full);
  EXPECT_FALSE(has_note_about_id(std::get<report::DmarcAggregate>(full->report).errors));
}

TEST_P(EmptyReportId, TlsReportsWithoutIdAreNotMerged) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto t1 = test::sample_tls("");
  auto t2 = test::sample_tls("");
  t2.date_range = {1700086400, 1700172799};
  auto store_tls = [&](const report::TlsReport& t) {
    return write_message(*store, [&](report::ReportSink& s) {
      report::TlsReport copy = t;
      ASSERT_TRUE(s.tls(std::move(copy)));
    });
  };
  EXPECT_EQ(store_tls(t1).stored, 1u);
  EXPECT_EQ(store_tls(t2).stored, 1u);
  auto w = store_tls(t1);
  EXPECT_EQ(w.stored, 0u);
  EXPECT_EQ(w.duplicates, 1u);
  auto rows = store->list_reports(filter(report::ReportType::TlsAggregate));
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2u);
  auto full = store->get_report((*rows)[0].id);
  ASSERT_TRUE(full);
  const auto& t = std::get<report::TlsReport>(full->report);
  EXPECT_EQ(t.report_id.rfind("sha256:", 0), 0u);
  EXPECT_TRUE(has_note_about_id(t.errors));
  EXPECT_NE(std::find(t.errors.begin(), t.errors.end(), "date without zone"), t.errors.end());
}

INSTANTIATE_TEST_SUITE_P(Backends, EmptyReportId, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
