// The ingest service over a real SQLite store and the real extractor: one transaction per
// message, parse failures kept raw, duplicates counted, store failures returned with nothing
// kept, many threads at once, and reparse.
#include "mailreport/ingest/store_ingestor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../store/store_fixtures.hpp"
#include "mailreport/store/sha256.hpp"
#include "testsupport.hpp"

namespace mailreport::ingest {
namespace {

using test::count_rows;
using test::open_store;
using test::TempDir;

std::string dmarc_xml(const std::string& report_id, int records = 2,
                      const std::string& org = "reporter.example") {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>"
      "<org_name>" +
      org +
      "</org_name><email>dmarc@reporter.example</email>"
      "<report_id>" +
      report_id +
      "</report_id>"
      "<date_range><begin>1700000000</begin><end>1700086399</end></date_range>"
      "</report_metadata>\n<policy_published><domain>example.com</domain><adkim>r</adkim>"
      "<aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>\n";
  for (int i = 0; i < records; ++i) {
    bool pass = i % 2 == 0;
    xml += "<record><row><source_ip>192.0.2." + std::to_string(i % 250 + 1) +
           "</source_ip><count>" + std::to_string(i + 1) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>" +
           (pass ? "pass" : "fail") +
           "</dkim><spf>fail</spf></policy_evaluated></row>"
           "<identifiers><header_from>example.com</header_from></identifiers><auth_results>"
           "<dkim><domain>example.com</domain><selector>s" +
           std::to_string(i) + "</selector><result>" + (pass ? "pass" : "fail") +
           "</result></dkim><spf><domain>example.com</domain><result>fail</result></spf>"
           "</auth_results></record>\n";
  }
  return xml + "</feedback>\n";
}

std::string as_email(const std::string& xml) {
  return "From: DMARC <dmarc@reporter.example>\r\n"
         "To: dmarc@ours.example\r\n"
         "Subject: Report Domain: example.com Submitter: reporter.example\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\nA DMARC report.\r\n"
         "--b1\r\nContent-Type: text/xml\r\n"
         "Content-Disposition: attachment; filename=\"reporter.example!example.com!1700000000!"
         "1700086399.xml\"\r\n\r\n" +
         xml + "\r\n--b1--\r\n";
}

Envelope envelope() {
  Envelope e;
  e.source = "lmtp";
  e.mail_from = "dmarc@reporter.example";
  e.rcpt_to = {"dmarc@ours.example"};
  e.client = "unit";
  e.received_at = 1700090000;
  return e;
}

store::SqliteOptions fast() {
  store::SqliteOptions o;
  o.synchronous_full = false;
  return o;
}

TEST(StoreIngestor, StoresTheRawMessageAndItsReportsInOneGo) {
  TempDir dir;
  auto path = dir / "s.db";
  auto store = open_store(path, fast());
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  std::string msg = as_email(dmarc_xml("r-1"));
  auto out = ingestor.ingest(envelope(), Input::from_memory(msg, "m1"));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(out->reports_stored, 1u);
  EXPECT_EQ(out->duplicates, 0u);
  EXPECT_FALSE(out->parse_error);

  auto raw = store->get_raw_message(out->message_id);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->parse_status, store::ParseStatus::Parsed);
  EXPECT_EQ(raw->sha256, store::Sha256::hex_of(msg));
  EXPECT_EQ(raw->meta.source, "lmtp");
  EXPECT_EQ(raw->meta.received_at, 1700090000);

  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().message_id, out->message_id);
  EXPECT_EQ(list->front().org_name, "reporter.example");
  EXPECT_EQ(list->front().messages, 3u);  // counts 1 + 2
  EXPECT_EQ(list->front().pass, 1u);
  EXPECT_EQ(list->front().fail, 2u);
  EXPECT_EQ(count_rows(path, "dmarc_records"), 2);
}

TEST(StoreIngestor, TheSameReportTwiceIsOneReportAndTwoRawMessages) {
  TempDir dir;
  auto path = dir / "s.db";
  auto store = open_store(path, fast());
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  auto first = ingestor.ingest(envelope(), Input::from_memory(as_email(dmarc_xml("r-1"))));
  auto second = ingestor.ingest(envelope(), Input::from_memory(dmarc_xml("r-1")));  // bare XML
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->reports_stored, 1u);
  EXPECT_EQ(second->reports_stored, 0u);
  EXPECT_EQ(second->duplicates, 1u);
  EXPECT_FALSE(second->parse_error);
  EXPECT_EQ(count_rows(path, "reports"), 1);
  EXPECT_EQ(count_rows(path, "raw_messages"), 2);
  auto raw = store->get_raw_message(second->message_id);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->parse_status, store::ParseStatus::Duplicate);
}

TEST(StoreIngestor, AMessageWithoutAReportIsKeptRawWithTheReason) {
  TempDir dir;
  auto path = dir / "s.db";
  auto store = open_store(path, fast());
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  std::string msg = "From: someone@example.org\r\nSubject: hello\r\n\r\nJust a note.\r\n";
  auto out = ingestor.ingest(envelope(), Input::from_memory(msg));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(out->reports_stored, 0u);
  ASSERT_TRUE(out->parse_error);
  EXPECT_FALSE(out->parse_error->empty());
  auto raw = store->get_raw_message(out->message_id);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->parse_status, store::ParseStatus::Unparsed);
  EXPECT_EQ(raw->parse_error, *out->parse_error);
  std::string back;
  ASSERT_TRUE(store->read_raw(out->message_id, [&](std::span<const char> p) -> Status {
    back.append(p.data(), p.size());
    return {};
  }));
  EXPECT_EQ(back, msg);
}

TEST(StoreIngestor, AStoreFailureReturnsAnErrorAndKeepsNothing) {
  TempDir dir;
  auto path = dir / "s.db";
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
  }
  {
    auto ro = store::open_sqlite_store(test::options_for(path, /*read_only=*/true));
    ASSERT_TRUE(ro);
    NullLogger log;
    StoreIngestor ingestor(**ro, log);
    auto out = ingestor.ingest(envelope(), Input::from_memory(dmarc_xml("r-1")));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, ErrorCode::Store);
  }
  // A store that fills up while the records are written: the raw message went in first, and
  // must not stay behind.
  auto options = fast();
  options.max_size = 1 << 20;
  auto store = open_store(path, options);
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  std::string big = dmarc_xml("big", 20000);  // compresses to little, but 20000 rows do not
  auto out = ingestor.ingest(envelope(), Input::from_memory(big));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::Store);
  EXPECT_EQ(count_rows(path, "raw_messages"), 0);
  EXPECT_EQ(count_rows(path, "reports"), 0);
  EXPECT_EQ(count_rows(path, "dmarc_records"), 0);
  auto small = ingestor.ingest(envelope(), Input::from_memory(dmarc_xml("small")));
  ASSERT_TRUE(small) << small.error().describe();
  EXPECT_EQ(small->reports_stored, 1u);
}

TEST(StoreIngestor, FileInputsAreStreamed) {
  TempDir dir;
  auto store = open_store(dir / "s.db", fast());
  ASSERT_TRUE(store);
  auto file = dir / "report.eml";
  {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string msg = as_email(dmarc_xml("file-1", 500));
    std::fwrite(msg.data(), 1, msg.size(), f);
    std::fclose(f);
  }
  auto input = Input::from_file(file);
  ASSERT_TRUE(input);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  auto out = ingestor.ingest(envelope(), *input);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(out->reports_stored, 1u);
  auto raw = store->get_raw_message(out->message_id);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size, input->size());
}

TEST(StoreIngestor, EightThreadsIngestAtOnce) {
  TempDir dir;
  auto path = dir / "s.db";
  auto store = open_store(path, fast());
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 6;
  std::atomic<int> errors{0};
  std::atomic<int> stored{0};
  std::atomic<int> duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every other message is one report that all threads send.
        std::string id = i % 2 == 0 ? "shared" : "t" + std::to_string(t) + "-" + std::to_string(i);
        auto out = ingestor.ingest(envelope(), Input::from_memory(as_email(dmarc_xml(id))));
        if (!out) {
          ++errors;
          continue;
        }
        stored += static_cast<int>(out->reports_stored);
        duplicates += static_cast<int>(out->duplicates);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(count_rows(path, "raw_messages"), kThreads * kPerThread);
  const int unique = kThreads * kPerThread / 2 + 1;
  EXPECT_EQ(stored.load(), unique);
  EXPECT_EQ(duplicates.load(), kThreads * kPerThread - unique);
  EXPECT_EQ(count_rows(path, "reports"), unique);
  EXPECT_EQ(count_rows(path, "dmarc_records"), 2 * unique);
}

TEST(StoreIngestor, ReparseReplacesTheReportsOfAMessage) {
  TempDir dir;
  auto path = dir / "s.db";
  auto store = open_store(path, fast());
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  auto a = ingestor.ingest(envelope(), Input::from_memory(as_email(dmarc_xml("r-1", 3))));
  auto b = ingestor.ingest(envelope(), Input::from_memory("not a report"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  // Lose the derived rows of `a` (as if an old parser had missed them).
  {
    auto tx = store->begin_write();
    ASSERT_TRUE(tx);
    ASSERT_TRUE((*tx)->delete_reports_of(a->message_id));
    ASSERT_TRUE((*tx)->commit());
  }
  EXPECT_EQ(count_rows(path, "reports"), 0);

  auto failed = ingestor.reparse_all(store::ParseStatus::Unparsed);
  ASSERT_TRUE(failed) << failed.error().describe();
  EXPECT_EQ(failed->messages, 1u);
  EXPECT_EQ(failed->unparsed, 1u);

  auto all = ingestor.reparse_all(std::nullopt);
  ASSERT_TRUE(all) << all.error().describe();
  EXPECT_EQ(all->messages, 2u);
  EXPECT_EQ(all->parsed, 1u);
  EXPECT_EQ(all->unparsed, 1u);
  EXPECT_EQ(all->reports_stored, 1u);
  EXPECT_EQ(count_rows(path, "reports"), 1);
  EXPECT_EQ(count_rows(path, "dmarc_records"), 3);

  // Reparsing a parsed message again gives the same reports, not duplicates of itself.
  auto again = ingestor.reparse(a->message_id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->reports_stored, 1u);
  EXPECT_EQ(again->duplicates, 0u);
  EXPECT_EQ(count_rows(path, "reports"), 1);
  EXPECT_EQ(count_rows(path, "raw_messages"), 2);

  auto missing = ingestor.reparse(999);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
}

}  // namespace
}  // namespace mailreport::ingest
