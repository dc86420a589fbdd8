// dns: CachingResolver, an answer cache in front of another Resolver (see
// mailreport/dns/answer_cache.hpp for what is kept and for how long). The SOA of a negative
// answer (RFC 2308 §3, §5) is read from the reply's authority section with libresolv's ns_*
// parser. Not done: prefetching before expiry, serving stale answers (RFC 8767).
#include "mailreport/dns/answer_cache.hpp"

#include <arpa/nameser.h>
#include <resolv.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace mailreport::dns {
namespace {

using Clock = std::chrono::steady_clock;

// RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM) seconds. nullopt when the
// reply has no parsable SOA in its authority section.
std::optional<std::uint32_t> negative_ttl(const std::vector<std::uint8_t>& packet) {
  if (packet.empty()) return std::nullopt;
  ns_msg msg;
  if (::ns_initparse(packet.data(), static_cast<int>(packet.size()), &msg) < 0) {
    return std::nullopt;
  }
  const int count = ns_msg_count(msg, ns_s_ns);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (::ns_parserr(&msg, ns_s_ns, i, &rr) < 0) return std::nullopt;
    if (ns_rr_type(rr) != ns_t_soa) continue;
    // SOA RDATA (RFC 1035 §3.3.13): MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
    const unsigned char* p = ns_rr_rdata(rr);
    const unsigned char* end = p + ns_rr_rdlen(rr);
    for (int name = 0; name < 2; ++name) {
      int n = ::dn_skipname(p, end);
      if (n < 0) return std::nullopt;
      p += n;
    }
    if (end - p < 20) return std::nullopt;
    const std::uint32_t minimum = ns_get32(p + 16);
    return std::min<std::uint32_t>(ns_rr_ttl(rr), minimum);
  }
  return std::nullopt;
}

struct Entry {
  std::string key;
  Answer answer;
  Clock::time_point stored;
  Clock::time_point expires;
};

struct Shard {
  std::mutex mu;
  std::list<Entry> lru;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // into lru's keys
};

constexpr std::size_t kShards = 8;

}  // namespace

struct CachingResolver::Impl {
  std::shared_ptr<Resolver> inner;
  AnswerCacheOptions options;
  std::size_t per_shard = 0;
  std::size_t shard_count = 1;
  std::array<Shard, kShards> shards;
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};

  Clock::time_point now() const { return options.clock ? options.clock() : Clock::now(); }

  Shard& shard_of(const std::string& key) {
    return shards[std::hash<std::string>{}(key) % shard_count];
  }

  // How long `a` may be kept; 0: not at all.
  std::chrono::seconds lifetime(const Answer& a) const {
    using std::chrono::seconds;
    switch (a.status) {
      case Status::Ok: return std::min<seconds>(seconds(a.ttl), options.max_ttl);
      case Status::NoData:
      case Status::NxDomain: {
        auto ttl = negative_ttl(a.packet);
        return ttl ? std::min<seconds>(seconds(*ttl), options.max_negative_ttl) : seconds(0);
      }
      case Status::TempError: return seconds(0);  // never (see the header)
    }
    return seconds(0);
  }
};

CachingResolver::CachingResolver(std::shared_ptr<Resolver> inner, AnswerCacheOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->inner = std::move(inner);
  impl_->options = std::move(options);
  // Shard only when each shard still holds a useful number; the total never exceeds the bound.
  impl_->shard_count = impl_->options.max_entries >= 64 ? kShards : 1;
  impl_->per_shard = impl_->options.max_entries / impl_->shard_count;
}

CachingResolver::~CachingResolver() = default;

Answer CachingResolver::query(std::string_view name, RType type) {
  Impl& m = *impl_;
  if (m.per_shard == 0) return m.inner->query(name, type);
  std::string_view bare = name;
  if (bare.size() > 1 && bare.back() == '.') bare.remove_suffix(1);
  std::string key;
  key.reserve(bare.size() + 3);
  key.append(bare);
  key += '\0';
  const auto t = static_cast<std::uint16_t>(type);
  key += static_cast<char>(t >> 8);
  key += static_cast<char>(t & 0xff);
  Shard& shard = m.shard_of(key);
  const auto now = m.now();
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (it != shard.index.end()) {
      Entry& e = *it->second;
      if (now < e.expires) {
        shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
        m.hits.fetch_add(1, std::memory_order_relaxed);
        Answer a = e.answer;
        // The TTL left (RFC 1035 §3.2.1), as any cache answers.
        const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - e.stored);
        const auto age_s = static_cast<std::uint64_t>(std::max<std::int64_t>(0, age.count()));
        a.ttl = a.ttl > age_s ? static_cast<std::uint32_t>(a.ttl - age_s) : 0;
        return a;
      }
      auto entry = it->second;  // expired
      shard.index.erase(it);
      shard.lru.erase(entry);
    }
  }
  m.misses.fetch_add(1, std::memory_order_relaxed);
  Answer a = m.inner->query(name, type);
  const auto keep = m.lifetime(a);
  if (keep.count() <= 0) return a;
  const auto stored = m.now();
  std::lock_guard lock(shard.mu);
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    // Another thread asked meanwhile: keep the newer answer.
    auto entry = it->second;
    shard.index.erase(it);
    shard.lru.erase(entry);
  }
  shard.lru.push_front(Entry{std::move(key), a, stored, stored + keep});
  shard.index.emplace(shard.lru.front().key, shard.lru.begin());
  while (shard.lru.size() > m.per_shard) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
  }
  return a;
}

CachingResolver::Stats CachingResolver::stats() const {
  Stats s;
  s.hits = impl_->hits.load();
  s.misses = impl_->misses.load();
  for (std::size_t i = 0; i < impl_->shard_count; ++i) {
    std::lock_guard lock(impl_->shards[i].mu);
    s.size += impl_->shards[i].lru.size();
  }
  return s;
}

}  // namespace mailreport::dns
