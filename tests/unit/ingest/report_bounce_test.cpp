// Bounces of our own reports: a DSN that mailreport-lmtp stores and whose returned message is
// a report we sent (matched by Message-ID) counts a failure against that report's destination;
// at report.suppress-after failures the destination is suppressed. Delays, DSNs about other
// mail and a DSN delivered twice are not counted.
#include <gtest/gtest.h>

#include "../store/store_fixtures.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "testsupport.hpp"

namespace mailreport::ingest {
namespace {

using test::open_store;
using test::TempDir;

// A Postfix-style bounce for the message `returned_id`, itself identified by `dsn_id`.
std::string dsn(const std::string& dsn_id, const std::string& returned_id,
                const std::string& action = "failed", const std::string& status = "5.1.1") {
  return "From: MAILER-DAEMON@mx.test (Mail Delivery System)\r\n"
         "To: noreply-dmarc@ours.test\r\n"
         "Subject: Undelivered Mail Returned to Sender\r\n"
         "Message-ID: <" +
         dsn_id +
         ">\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
         "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
         "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
         "Reporting-MTA: dns; mx.test\r\n\r\n"
         "Final-Recipient: rfc822; dmarc@reports.example\r\n"
         "Action: " +
         action + "\r\nStatus: " + status +
         "\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
         "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
         "From: DMARC Report <noreply-dmarc@ours.test>\r\n"
         "To: dmarc@reports.example\r\n"
         "Subject: Report Domain: example.com Submitter: mx.ours.test Report-ID: <x>\r\n"
         "Message-ID: <" +
         returned_id + ">\r\n\r\n--b--\r\n";
}

Envelope envelope() {
  Envelope e;
  e.source = "lmtp";
  e.mail_from = "";
  e.rcpt_to = {"noreply-dmarc@ours.test"};
  e.received_at = 1700090000;
  return e;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<store::Store> store;
  std::int64_t entry = 0;

  Fixture() {
    store::SqliteOptions o;
    o.synchronous_full = false;
    store = open_store(dir / "s.db", o);
    store::OutboxEntry e;
    e.kind = std::string(store::kDmarcAggregateKind);
    e.recipient = "Dmarc@Reports.Example";
    e.reported_domain = "example.com";
    e.created_at = 1700000000;
    e.payload = "{}";
    auto id = store->enqueue_outbox(e);
    EXPECT_TRUE(id) << id.error().describe();
    entry = id ? *id : 0;
    EXPECT_TRUE(store->outbox_sent(entry, 1700000100, "report-1@ours.test"));
  }
};

TEST(ReportBounce, FailedDsnsForOurReportSuppressItsDestinationAtTheThreshold) {
  Fixture f;
  NullLogger log;
  IngestOptions options;
  options.suppress_after = 2;
  StoreIngestor ingestor(*f.store, log, options);

  ASSERT_TRUE(ingestor.ingest(envelope(),
                              Input::from_memory(dsn("d1@mx.test", "report-1@ours.test"), "d1")));
  auto s = f.store->list_suppressions();
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->front().address, "dmarc@reports.example");
  EXPECT_EQ(s->front().failures, 1u);
  EXPECT_FALSE(s->front().suppressed);
  EXPECT_NE(s->front().reason.find("5.1.1"), std::string::npos);
  EXPECT_FALSE(*f.store->is_suppressed("dmarc@reports.example"));

  // The same DSN again (a duplicate) does not count; a delay does not either.
  ASSERT_TRUE(ingestor.ingest(envelope(),
                              Input::from_memory(dsn("d1@mx.test", "report-1@ours.test"), "d1b")));
  ASSERT_TRUE(ingestor.ingest(
      envelope(),
      Input::from_memory(dsn("d2@mx.test", "report-1@ours.test", "delayed", "4.4.1"), "d2")));
  EXPECT_EQ(f.store->list_suppressions()->front().failures, 1u);

  // A bounce of some other message is not ours.
  ASSERT_TRUE(
      ingestor.ingest(envelope(), Input::from_memory(dsn("d3@mx.test", "other@elsewhere"), "d3")));
  EXPECT_EQ(f.store->list_suppressions()->front().failures, 1u);

  // A second real bounce reaches the threshold.
  ASSERT_TRUE(ingestor.ingest(envelope(),
                              Input::from_memory(dsn("d4@mx.test", "report-1@ours.test"), "d4")));
  s = f.store->list_suppressions();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->front().failures, 2u);
  EXPECT_TRUE(s->front().suppressed);
  EXPECT_TRUE(*f.store->is_suppressed("DMARC@reports.example"));
}

TEST(ReportBounce, ReparsingADsnDoesNotCountItAgain) {
  Fixture f;
  NullLogger log;
  IngestOptions options;
  options.suppress_after = 0;  // count only
  StoreIngestor ingestor(*f.store, log, options);
  auto out = ingestor.ingest(envelope(),
                             Input::from_memory(dsn("d1@mx.test", "report-1@ours.test"), "d1"));
  ASSERT_TRUE(out);
  ASSERT_TRUE(ingestor.reparse(out->message_id));
  auto s = f.store->list_suppressions();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->front().failures, 1u);
  EXPECT_FALSE(s->front().suppressed);
}

}  // namespace
}  // namespace mailreport::ingest
