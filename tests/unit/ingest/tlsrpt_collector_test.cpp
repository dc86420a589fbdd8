// The TLS-RPT collector: libtlsrpt datagrams built here as the protocol describes
// (tlsrpt_datagram_builder.hpp) are parsed, batched per UTC day and committed; invalid ones are
// kept aside; store failures keep the batch for a bounded number of retries; the real socket
// (sendto from the test) delivers them, stale sockets are replaced, stop is seen quickly and
// flushes. With the SQLite store, the counts per day, policy and failure detail are checked.
#include "mailreport/ingest/tlsrpt_collector.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "fake_tls_store.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "testsupport.hpp"
#include "tlsrpt_datagram_builder.hpp"

namespace mailreport::ingest {
namespace {

using test::FakeTlsStore;

constexpr std::int64_t kDay1 = 1767225600;  // 2026-01-01 00:00:00 UTC
constexpr std::int64_t kDay2 = kDay1 + 86400;
const std::string kRecordNet = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net";
const std::string kRecordOrg = "v=TLSRPTv1;rua=https://tlsrpt.example.org/v1";

class CapturingLogger final : public Logger {
 public:
  void log(LogLevel level, std::string_view, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(level, std::string(message));
  }
  std::size_t count(std::string_view needle) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [level, text] : lines_) {
      if (text.find(needle) != std::string::npos) ++n;
    }
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

TEST(TlsrptBatcher, CommitsFullBatchesAndParsesTheDatagrams) {
  FakeTlsStore store;
  NullLogger log;
  TlsrptBatcher b(store, log, 2);
  b.add(test::sts_success("Example.NET", kRecordNet), kDay1 + 10);
  EXPECT_TRUE(store.batches().empty());  // not full yet
  b.add(test::dane_failure("example.org", kRecordOrg, 204, "certificate has expired"), kDay1 + 20);
  ASSERT_EQ(store.batches().size(), 1u);  // full: committed at once
  b.add(test::no_policy_success("example.com", "v=TLSRPTv1;rua=mailto:t@example.com"), kDay1 + 30);
  EXPECT_EQ(store.batches().size(), 1u);
  b.flush();
  auto batches = store.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].received_at, kDay1 + 10);
  ASSERT_EQ(batches[0].datagrams.size(), 2u);
  const auto& sts = batches[0].datagrams[0];
  EXPECT_EQ(sts.domain, "example.net");
  EXPECT_EQ(sts.record, kRecordNet);
  ASSERT_EQ(sts.policies.size(), 1u);
  EXPECT_EQ(sts.policies[0].policy_type, "sts");
  EXPECT_TRUE(sts.policies[0].success);
  EXPECT_EQ(sts.policies[0].policy_string.size(), 4u);
  EXPECT_EQ(sts.policies[0].mx_host, std::vector<std::string>{"mx.example.net"});
  const auto& dane = batches[0].datagrams[1];
  EXPECT_EQ(dane.policies[0].policy_type, "tlsa");
  EXPECT_FALSE(dane.policies[0].success);
  ASSERT_EQ(dane.policies[0].failures.size(), 1u);
  EXPECT_EQ(dane.policies[0].failures[0].result_type, "certificate-expired");
  EXPECT_EQ(dane.policies[0].failures[0].receiving_ip, "198.51.100.7");
  EXPECT_EQ(dane.policies[0].failures[0].failure_reason_code, "certificate has expired");
  EXPECT_EQ(batches[1].datagrams[0].policies[0].policy_type, "no-policy-found");
  EXPECT_EQ(b.stats().datagrams, 3u);
  EXPECT_EQ(b.stats().recorded, 3u);
  EXPECT_EQ(b.stats().rejected, 0u);
}

TEST(TlsrptBatcher, OneBatchPerUtcDay) {
  FakeTlsStore store;
  NullLogger log;
  TlsrptBatcher b(store, log, 100);
  b.add(test::sts_success("example.net", kRecordNet), kDay2 - 1);  // 23:59:59
  b.add(test::sts_success("example.net", kRecordNet), kDay2 - 1);
  b.add(test::sts_success("example.net", kRecordNet), kDay2);  // 00:00:00 the next day
  // The day changed: the first day's batch is committed at once, the new one stays open.
  auto batches = store.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].received_at, kDay2 - 1);
  EXPECT_EQ(batches[0].datagrams.size(), 2u);
  b.flush();
  batches = store.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].received_at, kDay2);
  EXPECT_EQ(batches[1].datagrams.size(), 1u);
}

TEST(TlsrptBatcher, InvalidDatagramsAreKeptAsideWithTheReason) {
  FakeTlsStore store;
  CapturingLogger log;
  TlsrptBatcher b(store, log, 10);
  const std::string wrong_count =
      test::TlsrptDatagramBuilder("example.org", kRecordOrg)
          .policy(test::TlsrptDatagramBuilder::Sts, std::string_view("example.org"))
          .finish_policy(1)
          .finish();
  std::string bad_t = wrong_count;
  bad_t.replace(bad_t.find("\"t\":0"), 5, "\"t\":3");
  std::string bad_version = test::sts_success("example.net", kRecordNet);
  bad_version.replace(bad_version.find("\"dpv\": \"1\""), 10, "\"dpv\": \"2\"");
  std::string bad_type = test::sts_success("example.net", kRecordNet);
  bad_type.replace(bad_type.find("\"policy-type\":2"), 15, "\"policy-type\":7");
  std::string bad_code = test::dane_failure("example.org", kRecordOrg, 205, "x");
  bad_code.replace(bad_code.find("\"c\":205"), 7, "\"c\":999");
  const std::vector<std::string> invalid = {"not json at all", "{\"dpv\": \"1\"", bad_t,
                                            bad_version,       bad_type,          bad_code};
  b.add(test::sts_success("example.net", kRecordNet), kDay1);
  for (const auto& d : invalid) b.add(d, kDay1 + 5);
  b.add(wrong_count, kDay1 + 6);  // "f":1 without details is valid (libtlsrpt allows it)
  b.flush();

  auto rejected = store.rejected();
  ASSERT_EQ(rejected.size(), invalid.size());
  for (std::size_t i = 0; i < invalid.size(); ++i) {
    EXPECT_EQ(rejected[i].datagram, invalid[i]);
    EXPECT_FALSE(rejected[i].reason.empty());
    EXPECT_EQ(rejected[i].received_at, kDay1 + 5);
  }
  EXPECT_NE(rejected[2].reason.find("t: says 3"), std::string::npos) << rejected[2].reason;
  EXPECT_NE(rejected[3].reason.find("dpv"), std::string::npos) << rejected[3].reason;
  EXPECT_NE(rejected[4].reason.find("policy-type"), std::string::npos) << rejected[4].reason;
  EXPECT_NE(rejected[5].reason.find("failure code"), std::string::npos) << rejected[5].reason;
  EXPECT_EQ(b.stats().rejected, invalid.size());
  EXPECT_EQ(b.stats().recorded, 2u);
  EXPECT_EQ(log.count("invalid datagram"), invalid.size());
}

TEST(TlsrptBatcher, InvalidDatagramLogIsRateLimited) {
  FakeTlsStore store;
  CapturingLogger log;
  TlsrptBatcher b(store, log, 10);
  for (int i = 0; i < 50; ++i) b.add("garbage", kDay1 + i / 10);  // 50 within a minute
  EXPECT_EQ(store.rejected().size(), 50u);                        // every one is kept...
  EXPECT_EQ(log.count("invalid datagram"), 10u);                  // ...but only 10 are logged
  b.add("garbage", kDay1 + 61);  // the next minute: a summary, then logging again
  EXPECT_EQ(log.count("40 more invalid datagrams were not logged"), 1u);
  EXPECT_EQ(log.count("invalid datagram, kept aside"), 11u);
}

TEST(TlsrptBatcher, StoreFailureKeepsTheBatchForTheNextFlush) {
  FakeTlsStore store;
  CapturingLogger log;
  TlsrptBatcher b(store, log, 100);
  store.fail_next(2);
  b.add(test::sts_success("example.net", kRecordNet), kDay1);
  b.add(test::sts_success("example.net", kRecordNet), kDay1);
  b.flush();  // fails
  b.flush();  // fails
  EXPECT_TRUE(store.batches().empty());
  EXPECT_EQ(b.stats().store_errors, 2u);
  EXPECT_EQ(log.count("kept for the next try"), 1u);  // logged once while it keeps failing
  b.flush();                                          // works
  auto batches = store.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].datagrams.size(), 2u);
  EXPECT_EQ(batches[0].received_at, kDay1);
  EXPECT_EQ(b.stats().recorded, 2u);
  EXPECT_EQ(b.stats().dropped, 0u);
}

TEST(TlsrptBatcher, RetriesAreBoundedAndDropsAreCounted) {
  FakeTlsStore store;
  NullLogger log;
  TlsrptBatcher b(store, log, 1);  // every datagram is a batch of its own
  store.fail_next(1000);
  for (int i = 0; i < 15; ++i) b.add(test::sts_success("example.net", kRecordNet), kDay1 + i);
  EXPECT_EQ(b.stats().dropped, 5u);  // 10 batches kept, the 5 oldest dropped
  store.fail_next(0);
  b.flush();
  auto batches = store.batches();
  ASSERT_EQ(batches.size(), 10u);
  EXPECT_EQ(batches.front().received_at, kDay1 + 5);  // the oldest went first
  EXPECT_EQ(batches.back().received_at, kDay1 + 14);
  EXPECT_EQ(b.stats().recorded, 10u);
}

// ---------------------------------------------------------------- the socket

sockaddr_un address_of(const std::filesystem::path& p) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
  return a;
}

// Sends as libtlsrpt does: an unconnected SOCK_DGRAM socket and sendto.
int send_datagram(const std::filesystem::path& p, const std::string& d, int sndbuf = 0) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sndbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  auto a = address_of(p);
  if (::sendto(fd.get(), d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    return errno;
  }
  return 0;
}

config::TlsrptConfig config_in(const test::TempDir& dir) {
  config::TlsrptConfig c;
  c.listen = dir / "tlsrpt.sock";
  c.flush_interval = std::chrono::seconds(3600);  // only batch size and stop flush
  c.batch_size = 1000;
  return c;
}

std::int64_t fixed_clock() {
  return kDay1 + 3600;
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Runs a collector on a thread; stops and joins it when it goes (also when an assertion
// returns early).
class Running {
 public:
  explicit Running(TlsrptCollector& c) : thread_([this, &c] { c.run(stop_); }) {}
  ~Running() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(TlsrptCollector, ReceivesOverTheSocketAndFlushesOnStop) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  cfg.socket_mode = 0620;
  std::chrono::steady_clock::duration stop_latency{};
  {
    TlsrptCollector collector(cfg, store, log, fixed_clock);
    struct stat st {};
    ASSERT_EQ(::stat(cfg.listen.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0620u);
    Running running(collector);
    EXPECT_EQ(send_datagram(cfg.listen, test::sts_success("example.net", kRecordNet)), 0);
    EXPECT_EQ(send_datagram(cfg.listen, test::dane_failure("example.org", kRecordOrg, 205,
                                                           "self-signed certificate")),
              0);
    EXPECT_EQ(send_datagram(cfg.listen, "{broken"), 0);
    ASSERT_TRUE(wait_for([&] { return collector.stats().datagrams == 3; }));
    EXPECT_TRUE(store.batches().empty());  // below batch size and flush interval
    const auto stopped_at = std::chrono::steady_clock::now();
    running.stop();
    stop_latency = std::chrono::steady_clock::now() - stopped_at;
    auto batches = store.batches();
    ASSERT_EQ(batches.size(), 1u);  // flushed on stop
    EXPECT_EQ(batches[0].received_at, fixed_clock());
    ASSERT_EQ(batches[0].datagrams.size(), 2u);
    EXPECT_EQ(batches[0].datagrams[0].domain, "example.net");
    EXPECT_EQ(batches[0].datagrams[1].policies[0].failures[0].result_type, "validation-failure");
    ASSERT_EQ(store.rejected().size(), 1u);
    EXPECT_EQ(store.rejected()[0].datagram, "{broken");
    auto stats = collector.stats();
    EXPECT_EQ(stats.recorded, 2u);
    EXPECT_EQ(stats.rejected, 1u);
  }
  // The 200 ms stop check (plus a generous margin for sanitizer builds).
  EXPECT_LT(stop_latency, std::chrono::milliseconds(1000));
  EXPECT_FALSE(std::filesystem::exists(cfg.listen));  // unlinked by the destructor
}

TEST(TlsrptCollector, FlushesEveryFlushIntervalAndAtBatchSize) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  cfg.flush_interval = std::chrono::seconds(1);
  TlsrptCollector collector(cfg, store, log, fixed_clock);
  Running running(collector);
  ASSERT_EQ(send_datagram(cfg.listen, test::sts_success("example.net", kRecordNet)), 0);
  // Committed by the interval, without a stop.
  EXPECT_TRUE(wait_for([&] { return store.batches().size() == 1; }));
  running.stop();

  // Batch size: the third datagram of a batch of 3 commits at once.
  FakeTlsStore store2;
  test::TempDir dir2;
  auto cfg2 = config_in(dir2);
  cfg2.batch_size = 3;
  TlsrptCollector c2(cfg2, store2, log, fixed_clock);
  Running running2(c2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(send_datagram(cfg2.listen, test::sts_success("example.net", kRecordNet)), 0);
  }
  EXPECT_TRUE(wait_for([&] { return store2.batches().size() == 1; }));
  EXPECT_EQ(store2.batches()[0].datagrams.size(), 3u);
}

TEST(TlsrptCollector, ExplicitFlushFromAnotherThread) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  TlsrptCollector collector(cfg, store, log, fixed_clock);
  Running running(collector);
  ASSERT_EQ(send_datagram(cfg.listen, test::sts_success("example.net", kRecordNet)), 0);
  ASSERT_TRUE(wait_for([&] { return collector.stats().datagrams == 1; }));
  collector.flush();  // what mailreport serve does before building TLS reports
  EXPECT_EQ(store.batches().size(), 1u);
}

TEST(TlsrptCollector, ReplacesAStaleSocketButNotALiveOneOrAFile) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  {
    // A socket file left by a process that died: bound, then closed without unlink.
    UniqueFd old(::socket(AF_UNIX, SOCK_DGRAM, 0));
    auto a = address_of(cfg.listen);
    ASSERT_EQ(::bind(old.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(cfg.listen));
  TlsrptCollector collector(cfg, store, log, fixed_clock);
  EXPECT_EQ(send_datagram(cfg.listen, test::sts_success("example.net", kRecordNet)), 0);

  // A second collector on the same path while the first one lives.
  EXPECT_THROW(TlsrptCollector(cfg, store, log, fixed_clock), std::runtime_error);

  auto file_cfg = config_in(dir);
  file_cfg.listen = dir / "not-a-socket";
  std::ofstream(file_cfg.listen) << "x";
  EXPECT_THROW(TlsrptCollector(file_cfg, store, log, fixed_clock), std::runtime_error);
  EXPECT_TRUE(std::filesystem::exists(file_cfg.listen));  // left alone

  auto empty = cfg;
  empty.listen.clear();
  EXPECT_THROW(TlsrptCollector(empty, store, log, fixed_clock), std::runtime_error);
}

TEST(TlsrptCollector, UnknownGroupIsAStartUpError) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  cfg.socket_group = "no-such-group-mailreport-test";
  EXPECT_THROW(TlsrptCollector(cfg, store, log, fixed_clock), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(cfg.listen));
}

TEST(TlsrptCollector, OversizedDatagramIsRefusedNotTruncatedIntoCounts) {
  test::TempDir dir;
  FakeTlsStore store;
  NullLogger log;
  auto cfg = config_in(dir);
  TlsrptCollector collector(cfg, store, log, fixed_clock);
  Running running(collector);
  // A valid datagram longer than kMaxTlsrptDatagram: many policy strings.
  test::TlsrptDatagramBuilder big("example.net", kRecordNet);
  big.policy(test::TlsrptDatagramBuilder::Sts, std::string_view("example.net"));
  for (std::size_t i = 0; i <= kMaxTlsrptDatagram / 1000; ++i) {
    big.policy_string(std::string(1000, 'x'));
  }
  std::string d = big.finish_policy(0).finish();
  int rc = send_datagram(cfg.listen, d, 1 << 20);
  if (rc == EMSGSIZE || rc == ENOBUFS) {
    GTEST_SKIP() << "the kernel refuses datagrams this large here (net.core.wmem_max)";
  }
  ASSERT_EQ(rc, 0) << std::strerror(rc);
  ASSERT_TRUE(wait_for([&] { return collector.stats().rejected == 1; }));
  running.stop();
  ASSERT_EQ(store.rejected().size(), 1u);
  EXPECT_NE(store.rejected()[0].reason.find("longer than"), std::string::npos);
  EXPECT_EQ(store.rejected()[0].datagram.size(), kMaxTlsrptDatagram);
  EXPECT_TRUE(store.batches().empty());
}

// ---------------------------------------------------------------- with the SQLite store

TEST(TlsrptCollectorSqlite, CountsPerDayPolicyAndFailureDetail) {
  auto opened = store::open_sqlite_store({.path = ":memory:"});
  ASSERT_TRUE(opened) << opened.error().describe();
  auto& store = **opened;
  NullLogger log;
  TlsrptBatcher b(store, log, 100);
  // Day 1: example.net 3 STS successes; example.org 2 DANE failures (expired) and 1 (not
  // trusted); Day 2: one more STS success.
  for (int i = 0; i < 3; ++i) b.add(test::sts_success("example.net", kRecordNet), kDay1 + 100);
  for (int i = 0; i < 2; ++i) {
    b.add(test::dane_failure("example.org", kRecordOrg, 204, "expired"), kDay1 + 200);
  }
  b.add(test::dane_failure("example.org", kRecordOrg, 203, "untrusted"), kDay1 + 300);
  b.add(test::sts_success("example.net", kRecordNet), kDay2 + 5);
  b.flush();
  auto probe = store.list_tls_counts(0, "");
  if (!probe && probe.error().code == ErrorCode::Unsupported) {
    GTEST_SKIP() << "the SQLite store does not count TLS results yet";
  }
  ASSERT_TRUE(probe) << probe.error().describe();
  ASSERT_EQ(b.stats().recorded, 7u);
  const auto& rows = *probe;
  auto find = [&](std::string_view domain, std::int64_t day) -> const store::TlsPolicyCount* {
    for (const auto& r : rows) {
      if (r.domain == domain && r.day == day) return &r;
    }
    return nullptr;
  };
  ASSERT_EQ(rows.size(), 3u);
  const auto* net1 = find("example.net", kDay1);
  ASSERT_NE(net1, nullptr);
  EXPECT_EQ(net1->record, kRecordNet);
  EXPECT_EQ(net1->policy.policy_type, "sts");
  EXPECT_EQ(net1->policy.total_successful_session_count, 3u);
  EXPECT_EQ(net1->policy.total_failure_session_count, 0u);
  const auto* net2 = find("example.net", kDay2);
  ASSERT_NE(net2, nullptr);
  EXPECT_EQ(net2->policy.total_successful_session_count, 1u);
  const auto* org = find("example.org", kDay1);
  ASSERT_NE(org, nullptr);
  EXPECT_EQ(org->policy.policy_type, "tlsa");
  EXPECT_EQ(org->policy.total_successful_session_count, 0u);
  EXPECT_EQ(org->policy.total_failure_session_count, 3u);
  ASSERT_EQ(org->failures.size(), 2u);
  std::map<std::string, std::uint64_t> by_type;
  for (const auto& f : org->failures) {
    by_type[f.detail.result_type] = f.detail.failed_session_count;
  }
  EXPECT_EQ(by_type["certificate-expired"], 2u);
  EXPECT_EQ(by_type["certificate-not-trusted"], 1u);
}

}  // namespace
}  // namespace mailreport::ingest
