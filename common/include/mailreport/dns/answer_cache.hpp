// dns: a small in-process cache of answers in front of another Resolver (the libunbound one).
// libunbound has its own cache, but reaching it costs two thread hand-offs per query (our
// thread → libunbound's worker → our dispatcher thread → our thread, see
// unbound_resolver.cpp); a repeated query answered here costs a map look-up.
//
// What is kept, for how long (RFC 1035 §3.2.1, RFC 2308):
//   - Ok answers: for their TTL (Answer::ttl, the smallest TTL of the records, already the
//     remaining TTL in unbound's cache), at most `max_ttl`;
//   - NXDOMAIN / NODATA answers: RFC 2308 §5, for min(SOA TTL, SOA MINIMUM) of the SOA in the
//     reply's authority section, at most `max_negative_ttl`; without a SOA, not kept;
//   - TempError: never kept. It stands for a timeout, a SERVFAIL or a refused query; keeping it
//     would turn one upstream hiccup into failures for messages that arrive after it is over
//     (RFC 7208 §2.6.7 and RFC 7489 §6.6.3 make a temperror a "try later" for the sender).
//     libunbound already remembers dead servers (its infra cache), so repeated queries during
//     an outage do not pile up upstream.
//   - TTL 0: not kept (RFC 1035 §3.2.1: use for this transaction only).
// An answer from the cache carries the TTL left, like any cache's.
// Bounded: `max_entries` answers, least recently used go first; sharded by name, one mutex per
// shard. Names are keys as asked (a trailing dot ignored): another spelling is another entry.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "mailreport/dns/resolver.hpp"

namespace mailreport::dns {

struct AnswerCacheOptions {
  std::size_t max_entries = 4096;
  std::chrono::seconds max_ttl{3600};
  std::chrono::seconds max_negative_ttl{900};
  // The time source (tests inject one); empty: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class CachingResolver final : public Resolver {
 public:
  CachingResolver(std::shared_ptr<Resolver> inner, AnswerCacheOptions options = {});
  ~CachingResolver() override;
  CachingResolver(const CachingResolver&) = delete;
  CachingResolver& operator=(const CachingResolver&) = delete;

  Answer query(std::string_view name, RType type) override;

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::size_t size = 0;  // answers held now (expired ones included until they are evicted)
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::dns
