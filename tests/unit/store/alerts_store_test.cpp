// The store's side of warnings and webhooks (issue 6), on SQLite and PostgreSQL: the alert
// scanner's compare-and-set commit (events and watermarks together or not at all), claims of
// due webhook events with a lease, delivered / retry / discard, queue depths and lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store_fixtures.hpp"

namespace mailreport::store {
namespace {

using test::Backend;

WebhookEvent event(std::string webhook, std::string type, std::int64_t created_at,
                   std::string body = "{}") {
  WebhookEvent e;
  e.webhook = std::move(webhook);
  e.type = std::move(type);
  e.created_at = created_at;
  e.body = std::move(body);
  return e;
}

std::vector<std::int64_t> ids_of(const std::vector<WebhookEvent>& events) {
  std::vector<std::int64_t> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

class AlertsStore : public test::StoreTest {};

TEST_P(AlertsStore, CommitSetsWatermarksAndQueuesEvents) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto none = store->alert_watermark("reports");
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_FALSE(none->has_value());

  AlertBatch b;
  b.events = {event("ops", "dmarc.failures", 1000, R"({"id":"a"})"),
              event("siem", "dmarc.failures", 1000, R"({"id":"a"})")};
  b.watermarks = {{"reports", 7}, {"raw", 3}};
  b.expect = {{"reports", std::nullopt}, {"raw", std::nullopt}};
  auto st = store->commit_alerts(b);
  ASSERT_TRUE(st) << st.error().describe();

  EXPECT_EQ(*store->alert_watermark("reports"), std::optional<std::int64_t>(7));
  EXPECT_EQ(*store->alert_watermark("raw"), std::optional<std::int64_t>(3));
  auto all = store->list_webhook_events("");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].webhook, "ops");
  EXPECT_EQ((*all)[0].type, "dmarc.failures");
  EXPECT_EQ((*all)[0].body, R"({"id":"a"})");
  EXPECT_EQ((*all)[0].next_attempt_at, 1000);  // 0 on enqueue: created_at
  EXPECT_EQ((*all)[0].attempts, 0u);
  EXPECT_EQ(store->list_webhook_events("siem")->size(), 1u);
  EXPECT_EQ(count_rows("webhook_events"), 2);
}

TEST_P(AlertsStore, CommitWithStaleExpectationConflictsAndChangesNothing) {
  auto a = open_store();
  auto b = open_store();  // a second node on the same database
  ASSERT_TRUE(a && b);
  AlertBatch first;
  first.watermarks = {{"reports", 5}};
  first.expect = {{"reports", std::nullopt}};
  first.events = {event("ops", "tls.failures", 10)};
  ASSERT_TRUE(a->commit_alerts(first));

  // b read "unset" too, before a committed.
  AlertBatch second = first;
  second.watermarks = {{"reports", 6}};
  auto st = b->commit_alerts(second);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Conflict) << st.error().describe();
  EXPECT_EQ(*b->alert_watermark("reports"), std::optional<std::int64_t>(5));
  EXPECT_EQ(count_rows("webhook_events"), 1);

  // Reading the current value again, it commits.
  AlertBatch third;
  third.watermarks = {{"reports", 9}};
  third.expect = {{"reports", 5}};
  third.events = {event("ops", "arf.abuse", 11)};
  ASSERT_TRUE(b->commit_alerts(third));
  EXPECT_EQ(*a->alert_watermark("reports"), std::optional<std::int64_t>(9));
  EXPECT_EQ(count_rows("webhook_events"), 2);

  // A wrong value (not unset) conflicts as well.
  third.expect = {{"reports", 5}};
  auto again = a->commit_alerts(third);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);
}

TEST_P(AlertsStore, ClaimTakesDueEventsOfOneWebhookWithALease) {
  auto store = open_store();
  ASSERT_TRUE(store);
  AlertBatch b;
  for (int i = 0; i < 5; ++i) b.events.push_back(event("ops", "e" + std::to_string(i), 100 + i));
  b.events.push_back(event("other", "x", 100));
  WebhookEvent later = event("ops", "later", 100);
  later.next_attempt_at = 500;
  b.events.push_back(later);
  ASSERT_TRUE(store->commit_alerts(b));

  auto first = store->claim_webhook_events("ops", 200, 3, 60);
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].type, "e0");
  EXPECT_EQ((*first)[2].type, "e2");
  for (const auto& e : *first) {
    EXPECT_EQ(e.webhook, "ops");
    EXPECT_EQ(e.next_attempt_at, 260);
  }
  // A second claimant at the same time gets the rest, not the same ones.
  auto second = store->claim_webhook_events("ops", 200, 10, 60);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*second)[0].type, "e3");
  EXPECT_TRUE(store->claim_webhook_events("ops", 200, 10, 60)->empty());
  // After the lease the unfinished claims are due again; "later" too.
  auto third = store->claim_webhook_events("ops", 600, 0, 60);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->size(), 6u);
}

TEST_P(AlertsStore, DeliveredDeletesRetryCountsAndPostpones) {
  auto store = open_store();
  ASSERT_TRUE(store);
  AlertBatch b;
  for (int i = 0; i < 4; ++i) b.events.push_back(event("ops", "e" + std::to_string(i), 100));
  ASSERT_TRUE(store->commit_alerts(b));
  auto claimed = store->claim_webhook_events("ops", 100, 0, 30);
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->size(), 4u);
  auto ids = ids_of(*claimed);

  std::vector<std::int64_t> done(ids.begin(), ids.begin() + 2);
  ASSERT_TRUE(store->webhook_delivered(done));
  std::vector<std::int64_t> retry(ids.begin() + 2, ids.end());
  ASSERT_TRUE(store->webhook_retry(retry, 150, "HTTP 500"));
  ASSERT_TRUE(store->webhook_retry(retry, 170, "timeout"));

  auto left = store->list_webhook_events("ops");
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 2u);
  for (const auto& e : *left) {
    EXPECT_EQ(e.attempts, 2u);
    EXPECT_EQ(e.next_attempt_at, 170);
    EXPECT_EQ(e.last_error, "timeout");
  }
  EXPECT_TRUE(store->claim_webhook_events("ops", 169, 0, 30)->empty());
  EXPECT_EQ(store->claim_webhook_events("ops", 170, 0, 30)->size(), 2u);
  // Empty spans are no-ops.
  EXPECT_TRUE(store->webhook_delivered({}));
  EXPECT_TRUE(store->webhook_retry({}, 1, ""));
}

TEST_P(AlertsStore, DiscardDropsOldEventsOfOneWebhookAndDepthsCount) {
  auto store = open_store();
  ASSERT_TRUE(store);
  AlertBatch b;
  b.events = {event("ops", "a", 100),  event("ops", "b", 200),  event("ops", "c", 300),
              event("siem", "a", 100), event("gone", "a", 100), event("gone", "b", 400)};
  ASSERT_TRUE(store->commit_alerts(b));
  auto depths = store->webhook_queue_depths();
  ASSERT_TRUE(depths) << depths.error().describe();
  using Depths = std::vector<std::pair<std::string, std::uint64_t>>;
  EXPECT_EQ(*depths, (Depths{{"gone", 2}, {"ops", 3}, {"siem", 1}}));

  auto dropped = store->discard_webhook_events("ops", 300);  // created before 300
  ASSERT_TRUE(dropped) << dropped.error().describe();
  EXPECT_EQ(*dropped, 2u);
  auto all_gone = store->discard_webhook_events("gone", std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(all_gone);
  EXPECT_EQ(*all_gone, 2u);
  EXPECT_EQ(*store->webhook_queue_depths(), (Depths{{"ops", 1}, {"siem", 1}}));
  auto ops = store->list_webhook_events("ops");
  ASSERT_EQ(ops->size(), 1u);
  EXPECT_EQ((*ops)[0].type, "c");
}

INSTANTIATE_TEST_SUITE_P(Backends, AlertsStore, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
