// Tests of CachingResolver (mailreport/dns/answer_cache.hpp): answers kept for their TTL with an
// injected clock and handed out with the TTL left, TempError and TTL 0 never kept, negative
// answers kept for the SOA's negative TTL (RFC 2308 §5, with libunbound local data) and not at
// all without a SOA, the bound, names with and without the trailing dot, and many threads.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mailreport/dns/answer_cache.hpp"

namespace mailreport::dns {
namespace {

using namespace std::chrono_literals;

// Answers from a script, counting the queries that reach it.
class FakeResolver : public Resolver {
 public:
  Answer query(std::string_view name, RType) override {
    ++calls;
    std::lock_guard lock(mu);
    Answer a = next;
    a.why = std::string(name);
    return a;
  }
  std::atomic<int> calls{0};
  std::mutex mu;
  Answer next;
};

Answer ok_answer(std::uint32_t ttl, std::string txt = "v=spf1 -all") {
  Answer a;
  a.status = Status::Ok;
  a.ttl = ttl;
  std::vector<std::uint8_t> rd{static_cast<std::uint8_t>(txt.size())};
  rd.insert(rd.end(), txt.begin(), txt.end());
  a.rdata.push_back(rd);
  return a;
}

struct FakeClock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point(1000s);
  AnswerCacheOptions options(std::size_t max_entries = 4096) {
    AnswerCacheOptions o;
    o.max_entries = max_entries;
    o.clock = [this] { return t; };
    return o;
  }
};

TEST(AnswerCache, KeepsAnswersForTheirTtlAndCountsItDown) {
  auto fake = std::make_shared<FakeResolver>();
  fake->next = ok_answer(300);
  FakeClock clock;
  CachingResolver c(fake, clock.options());
  Answer a1 = c.query("example.com", RType::TXT);
  EXPECT_EQ(fake->calls, 1);
  clock.t += 100s;
  Answer a2 = c.query("example.com.", RType::TXT);  // same name with the root dot
  EXPECT_EQ(fake->calls, 1);
  EXPECT_EQ(a2.status, Status::Ok);
  EXPECT_EQ(txt_records(a2), std::vector<std::string>{"v=spf1 -all"});
  EXPECT_EQ(a2.ttl, 200u);
  // Another type of the same name is another answer.
  (void)c.query("example.com", RType::A);
  EXPECT_EQ(fake->calls, 2);
  clock.t += 200s;  // 300 s after it was stored: expired
  fake->next = ok_answer(300, "v=spf1 +all");
  Answer a3 = c.query("example.com", RType::TXT);
  EXPECT_EQ(fake->calls, 3);
  EXPECT_EQ(txt_records(a3), std::vector<std::string>{"v=spf1 +all"});
  EXPECT_EQ(a3.ttl, 300u);
  auto s = c.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 3u);
}

TEST(AnswerCache, TempErrorAndTtlZeroAreNeverKept) {
  auto fake = std::make_shared<FakeResolver>();
  FakeClock clock;
  CachingResolver c(fake, clock.options());
  fake->next.status = Status::TempError;
  EXPECT_EQ(c.query("down.example", RType::TXT).status, Status::TempError);
  EXPECT_EQ(c.query("down.example", RType::TXT).status, Status::TempError);
  EXPECT_EQ(fake->calls, 2);
  // The upstream is back: the next message sees the answer at once.
  fake->next = ok_answer(60);
  EXPECT_EQ(c.query("down.example", RType::TXT).status, Status::Ok);
  EXPECT_EQ(fake->calls, 3);
  fake->next = ok_answer(0);
  (void)c.query("zero.example", RType::TXT);
  (void)c.query("zero.example", RType::TXT);
  EXPECT_EQ(fake->calls, 5);
}

TEST(AnswerCache, NegativeAnswersWithoutSoaAreNotKept) {
  auto fake = std::make_shared<FakeResolver>();
  fake->next.status = Status::NxDomain;  // no packet, hence no SOA
  CachingResolver c(fake);
  (void)c.query("nx.example", RType::TXT);
  (void)c.query("nx.example", RType::TXT);
  EXPECT_EQ(fake->calls, 2);
}

TEST(AnswerCache, MaxTtlCapsLongTtls) {
  auto fake = std::make_shared<FakeResolver>();
  fake->next = ok_answer(86400);
  FakeClock clock;
  auto o = clock.options();
  o.max_ttl = 60s;
  CachingResolver c(fake, o);
  (void)c.query("long.example", RType::TXT);
  clock.t += 59s;
  (void)c.query("long.example", RType::TXT);
  EXPECT_EQ(fake->calls, 1);
  clock.t += 1s;
  (void)c.query("long.example", RType::TXT);
  EXPECT_EQ(fake->calls, 2);
}

TEST(AnswerCache, BoundIsRespected) {
  for (std::size_t bound : {std::size_t{5}, std::size_t{100}}) {
    auto fake = std::make_shared<FakeResolver>();
    fake->next = ok_answer(300);
    FakeClock clock;
    CachingResolver c(fake, clock.options(bound));
    for (int i = 0; i < 1000; ++i) {
      (void)c.query("n" + std::to_string(i) + ".example", RType::TXT);
      ASSERT_LE(c.stats().size, bound);
    }
    EXPECT_GT(c.stats().size, 0u);
    // The most recent name is still there; the first ones are gone.
    const int before = fake->calls;
    (void)c.query("n999.example", RType::TXT);
    EXPECT_EQ(fake->calls, before);
    (void)c.query("n0.example", RType::TXT);
    EXPECT_EQ(fake->calls, before + 1);
  }
  auto fake = std::make_shared<FakeResolver>();
  fake->next = ok_answer(300);
  AnswerCacheOptions none;
  none.max_entries = 0;
  CachingResolver off(fake, none);
  (void)off.query("a.example", RType::TXT);
  (void)off.query("a.example", RType::TXT);
  EXPECT_EQ(fake->calls, 2);
  EXPECT_EQ(off.stats().size, 0u);
}

// libunbound local data with a SOA: NXDOMAIN and NODATA carry it in the authority section.
TEST(AnswerCache, NegativeAnswersLiveForTheSoaNegativeTtl) {
  static NullLogger log;
  ResolverOptions o;
  o.local_only = true;
  o.local_data = {
      "example.test. 300 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60",
      "example.test. 300 IN TXT \"v=spf1 -all\"",
  };
  auto unbound = make_unbound_resolver(o, log);
  ASSERT_TRUE(unbound.ok()) << unbound.error().describe();
  struct Counting : Resolver {
    std::shared_ptr<Resolver> inner;
    int calls = 0;
    Answer query(std::string_view n, RType t) override {
      ++calls;
      return inner->query(n, t);
    }
  };
  auto counting = std::make_shared<Counting>();
  counting->inner = *unbound;
  FakeClock clock;
  CachingResolver c(counting, clock.options());
  EXPECT_EQ(c.query("nx.example.test", RType::TXT).status, Status::NxDomain);
  EXPECT_EQ(c.query("example.test", RType::MX).status, Status::NoData);
  clock.t += 59s;  // min(SOA TTL 300, MINIMUM 60)
  EXPECT_EQ(c.query("nx.example.test", RType::TXT).status, Status::NxDomain);
  EXPECT_EQ(c.query("example.test", RType::MX).status, Status::NoData);
  EXPECT_EQ(counting->calls, 2);
  clock.t += 1s;
  EXPECT_EQ(c.query("nx.example.test", RType::TXT).status, Status::NxDomain);
  EXPECT_EQ(counting->calls, 3);
  Answer txt = c.query("example.test", RType::TXT);
  EXPECT_EQ(txt_records(txt), std::vector<std::string>{"v=spf1 -all"});
  EXPECT_FALSE(txt.packet.empty());  // libopendkim's hook still gets the wire reply
}

TEST(AnswerCache, ManyThreads) {
  auto fake = std::make_shared<FakeResolver>();
  fake->next = ok_answer(300);
  AnswerCacheOptions o;
  o.max_entries = 64;
  CachingResolver c(fake, o);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        Answer a = c.query("n" + std::to_string((i * 7 + t) % 100) + ".example", RType::TXT);
        if (a.status != Status::Ok || txt_records(a).size() != 1) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_LE(c.stats().size, 64u);
}

}  // namespace
}  // namespace mailreport::dns
