// The collector of the MTA's TLS results (see mailreport/ingest/tlsrpt_collector.hpp): an
// AF_UNIX SOCK_DGRAM socket where libtlsrpt (Postfix >= 3.10, smtp_tlsrpt_enable = yes) sends
// one JSON datagram per TLS handshake towards a domain with a TLSRPT record (RFC 8460 §3).
// Datagrams are parsed at once (report::parse_tlsrpt_datagram) and committed in batches of
// one UTC day each (Store::record_tls_results counts them by the batch's day); invalid ones
// are kept aside (Store::record_tls_rejected) and logged, at most kLogBurst lines a minute.
//
// A store failure keeps the batch for the next flush, up to kMaxPendingBatches batches; beyond
// that the oldest are dropped and counted, so that a store that stays down cannot make the
// collector grow without bound. Datagrams that the kernel drops because we read too slowly
// (the socket's receive queue is full: libtlsrpt sends with MSG_DONTWAIT and Postfix logs the
// EAGAIN) are not seen here at all.
//
// Not done: SO_PEERCRED checks (the socket's mode and group are the access control), several
// sockets.
#include "mailreport/ingest/tlsrpt_collector.hpp"

#include "mailreport/util/metrics.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mailreport/report/tlsrpt_datagram.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/privileges.hpp"

namespace mailreport::ingest {

namespace {

constexpr std::string_view kLogContext = "tlsrpt";
constexpr std::size_t kMaxPendingBatches = 10;
constexpr std::int64_t kLogWindow = 60;  // seconds
constexpr unsigned kLogBurst = 10;       // invalid-datagram lines per window
constexpr auto kStopCheck = std::chrono::milliseconds(200);
constexpr std::size_t kMaxReasonText = 512;

std::int64_t utc_day(std::int64_t t) {
  std::int64_t d = t / 86400;
  if (t % 86400 < 0) --d;
  return d;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

// ---------------------------------------------------------------- TlsrptBatcher

struct TlsrptBatcher::Impl {
  struct Batch {
    std::int64_t received_at = 0;  // of its first datagram; all of them are of that UTC day
    std::vector<report::TlsrptDatagram> datagrams;
  };

  store::Store& store;
  Logger& log;
  std::size_t batch_size;
  std::deque<Batch> batches;  // the last one is open for more datagrams
  CollectorStats stats;
  // Rate limit of the invalid-datagram log lines.
  std::int64_t log_window_start = 0;
  unsigned logged_in_window = 0;
  std::uint64_t suppressed = 0;
  bool store_failing = false;  // log a store failure once until it recovers
  // This process's counters (docs/metrics.md), looked up once.
  std::atomic<std::uint64_t>& ok_metric =
      Metrics::process().counter("mailreport_tls_datagrams_total", "result", "ok");
  std::atomic<std::uint64_t>& rejected_metric =
      Metrics::process().counter("mailreport_tls_datagrams_total", "result", "rejected");

  Impl(store::Store& s, Logger& l, std::size_t size)
      : store(s), log(l), batch_size(size == 0 ? 1 : size) {}

  void log_invalid(std::int64_t now, const std::string& reason) {
    if (now - log_window_start >= kLogWindow) {
      if (suppressed > 0) {
        log.warning(kLogContext,
                    std::to_string(suppressed) + " more invalid datagrams were not logged");
      }
      log_window_start = now;
      logged_in_window = 0;
      suppressed = 0;
    }
    if (logged_in_window < kLogBurst) {
      ++logged_in_window;
      log.warning(kLogContext, "invalid datagram, kept aside: " + reason);
    } else {
      ++suppressed;
    }
  }

  void reject(std::string_view datagram, std::string reason, std::int64_t received_at) {
    ++stats.rejected;
    rejected_metric.fetch_add(1, std::memory_order_relaxed);
    if (reason.size() > kMaxReasonText) reason.resize(kMaxReasonText);
    log_invalid(received_at, reason);
    if (auto st = store.record_tls_rejected(datagram, reason, received_at); !st) {
      ++stats.store_errors;
      log.error(kLogContext, "could not keep an invalid datagram: " + st.error().describe());
    }
  }

  void add(std::string_view datagram, std::int64_t received_at) {
    ++stats.datagrams;
    auto parsed = report::parse_tlsrpt_datagram(datagram);
    if (!parsed) {
      reject(datagram, parsed.error().message, received_at);
      return;
    }
    ok_metric.fetch_add(1, std::memory_order_relaxed);
    // One batch per UTC day: record_tls_results counts a batch under the day of its time.
    if (batches.empty() || batches.back().datagrams.size() >= batch_size ||
        utc_day(batches.back().received_at) != utc_day(received_at)) {
      batches.push_back(Batch{received_at, {}});
    }
    batches.back().datagrams.push_back(std::move(*parsed));
    if (batches.back().datagrams.size() >= batch_size) {
      flush();
    } else if (batches.size() > 1) {
      flush(/*keep_open=*/true);  // a new day began: the earlier days' batches are complete
    }
  }

  // Commits the batches in order (all, or all but the open one), stopping at a store error.
  void flush(bool keep_open = false) {
    while (batches.size() > (keep_open ? 1u : 0u) && !batches.front().datagrams.empty()) {
      auto& b = batches.front();
      auto st = store.record_tls_results(b.datagrams, b.received_at);
      if (!st) {
        ++stats.store_errors;
        if (!store_failing) {
          log.error(kLogContext,
                    "could not record " + std::to_string(b.datagrams.size()) +
                        " TLS results, kept for the next try: " + st.error().describe());
        }
        store_failing = true;
        break;
      }
      if (store_failing) log.info(kLogContext, "the store takes TLS results again");
      store_failing = false;
      stats.recorded += b.datagrams.size();
      batches.pop_front();
    }
    // Bounded retry: the oldest batches go first.
    while (batches.size() > kMaxPendingBatches) {
      stats.dropped += batches.front().datagrams.size();
      log.error(kLogContext, "dropped " + std::to_string(batches.front().datagrams.size()) +
                                 " TLS results: the store kept failing");
      batches.pop_front();
    }
  }
};

TlsrptBatcher::TlsrptBatcher(store::Store& store, Logger& log, std::size_t batch_size)
    : impl_(std::make_shared<Impl>(store, log, batch_size)) {}

void TlsrptBatcher::add(std::string_view datagram, std::int64_t received_at) {
  impl_->add(datagram, received_at);
}

void TlsrptBatcher::reject(std::string_view datagram, std::string_view reason,
                           std::int64_t received_at) {
  ++impl_->stats.datagrams;
  impl_->reject(datagram, std::string(reason), received_at);
}

void TlsrptBatcher::flush() {
  impl_->flush();
}

const CollectorStats& TlsrptBatcher::stats() const noexcept {
  return impl_->stats;
}

// ---------------------------------------------------------------- TlsrptCollector

struct TlsrptCollector::Impl {
  config::TlsrptConfig config;
  Logger& log;
  std::function<std::int64_t()> clock;
  UniqueFd fd;
  std::filesystem::path path;
  mutable std::mutex mu;  // guards batcher (run() and flush() may be on different threads)
  TlsrptBatcher batcher;
  std::vector<char> buffer = std::vector<char>(kMaxTlsrptDatagram);

  Impl(const config::TlsrptConfig& c, store::Store& store, Logger& l,
       std::function<std::int64_t()> clk)
      : config(c), log(l), clock(std::move(clk)), batcher(store, l, c.batch_size) {}

  // Creates the socket or throws (start-up error).
  void open() {
    path = config.listen;
    const std::string p = path.string();
    if (p.empty()) throw std::runtime_error("tlsrpt.listen is empty: the collector is off");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (p.size() >= sizeof addr.sun_path) {
      throw std::runtime_error("tlsrpt.listen: path too long for a unix socket (" +
                               std::to_string(sizeof addr.sun_path - 1) + " bytes at most): " + p);
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);

    // A socket left by a previous run is replaced; one that a live process reads is not ours.
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        throw std::runtime_error("tlsrpt.listen: " + p + " exists and is not a socket");
      }
      UniqueFd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        throw std::runtime_error("tlsrpt.listen: another process reads " + p);
      }
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
        throw std::runtime_error(errno_text("tlsrpt.listen: remove stale " + p));
      }
      log.info(kLogContext, "removed stale socket " + p);
    }

    fd = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error(errno_text("tlsrpt.listen: socket(AF_UNIX, SOCK_DGRAM)"));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(errno_text("tlsrpt.listen: bind " + p));
    }
    auto fail = [&](const std::string& why) {
      ::unlink(p.c_str());
      fd = UniqueFd();
      throw std::runtime_error(why);
    };
    // The MTA's smtp processes (user postfix) write to it: mode and group say who may.
    if (::chmod(p.c_str(), config.socket_mode) != 0) fail(errno_text("tlsrpt.socket-mode: " + p));
    if (!config.socket_group.empty()) {
      // Without root this works for a group the process is a member of.
      if (auto owned = chown_by_name(p, "", config.socket_group, "", "tlsrpt.socket-group");
          !owned) {
        fail(owned.error().describe());
      }
    }
    log.info(kLogContext, "listening on unix-dgram:" + p);
  }

  void close() {
    if (!fd) return;
    fd = UniqueFd();
    // Only our own socket: a later collector may have replaced it meanwhile.
    ::unlink(path.c_str());
  }

  // Reads every datagram waiting (at most `limit`); false when the socket failed.
  bool drain(std::size_t limit) {
    for (std::size_t i = 0; i < limit; ++i) {
      // MSG_TRUNC: the datagram's real length even when it is longer than the buffer.
      ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        log.error(kLogContext, errno_text("recv"));
        return false;
      }
      const std::int64_t now = clock();
      std::lock_guard lock(mu);
      if (static_cast<std::size_t>(n) > buffer.size()) {
        // Kept aside as far as it was read.
        batcher.reject(std::string_view(buffer.data(), buffer.size()),
                       "datagram of " + std::to_string(n) + " bytes is longer than the " +
                           std::to_string(buffer.size()) + "-byte limit",
                       now);
        continue;
      }
      batcher.add(std::string_view(buffer.data(), static_cast<std::size_t>(n)), now);
    }
    return true;
  }
};

TlsrptCollector::TlsrptCollector(const config::TlsrptConfig& config, store::Store& store,
                                 Logger& log, std::function<std::int64_t()> clock)
    : impl_(std::make_unique<Impl>(config, store, log, std::move(clock))) {
  impl_->open();
}

TlsrptCollector::~TlsrptCollector() {
  flush();
  impl_->close();
}

void TlsrptCollector::run(const std::atomic<bool>& stop) {
  using steady = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<steady::duration>(
      std::max(impl_->config.flush_interval, std::chrono::seconds(0)));
  auto next_flush = steady::now() + interval;
  const std::size_t per_wake = std::max<std::size_t>(impl_->config.batch_size, 1);
  while (!stop.load()) {
    const auto now = steady::now();
    auto wait = std::min<steady::duration>(kStopCheck,
                                           std::max(next_flush - now, steady::duration::zero()));
    pollfd p{impl_->fd.get(), POLLIN, 0};
    int rc =
        ::poll(&p, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    if (rc < 0 && errno != EINTR) {
      impl_->log.error(kLogContext, errno_text("poll"));
      std::this_thread::sleep_for(kStopCheck);
    } else if (rc > 0 && (p.revents & POLLIN)) {
      if (!impl_->drain(per_wake)) std::this_thread::sleep_for(kStopCheck);
    }
    if (steady::now() >= next_flush) {
      flush();
      next_flush = steady::now() + interval;
    }
  }
  // What is still queued in the socket is read before the last flush (bounded: a sender that
  // never pauses must not keep us from stopping).
  impl_->drain(std::max<std::size_t>(per_wake, 1000));
  flush();
}

void TlsrptCollector::flush() {
  std::lock_guard lock(impl_->mu);
  impl_->batcher.flush();
}

CollectorStats TlsrptCollector::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->batcher.stats();
}

}  // namespace mailreport::ingest
