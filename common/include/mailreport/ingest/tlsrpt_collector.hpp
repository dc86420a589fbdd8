// ingest/tlsrpt_collector: mailreport serve's collector of the MTA's TLS results (issue 5): a
// unix datagram socket (tlsrpt.listen) where Postfix >= 3.10 (smtp_tlsrpt_enable = yes,
// smtp_tlsrpt_socket_name = ...) sends one libtlsrpt datagram per TLS attempt towards a domain
// with a TLSRPT record (report/tlsrpt_datagram.hpp). Datagrams are parsed as they arrive and
// committed in batches (tlsrpt.batch-size, at least every tlsrpt.flush-interval) with
// Store::record_tls_results; invalid ones are logged (rate-limited) and kept aside with
// Store::record_tls_rejected. Datagrams about our own report traffic are not counted: a
// datagram does not say which message it is about, so our reports must not produce any — the
// MTA sends them through a transport with smtp_tlsrpt_enable = no (docs/tlsrpt.md,
// packaging/postfix/tlsrpt.cf), as RFC 8460 §3 asks (SHOULD NOT be counted; delivered despite
// TLS failures).
//
// Datagram size: libtlsrpt has no limit of its own (it writes into open_memstream and sends
// with one sendto, without SO_SNDBUF), so the kernel's is the one that counts: on Linux an
// AF_UNIX datagram longer than the sender's send buffer less 32 bytes fails with EMSGSIZE, i.e.
// 212960 bytes with the default net.core.wmem_default of 212992. Postfix (tlsrpt_wrapper.c)
// sends one policy per datagram with at most one failure detail: a few KiB. We read up to
// kMaxTlsrptDatagram bytes; a longer one is refused (kept aside, truncated), not miscounted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::ingest {

struct CollectorStats {
  std::uint64_t datagrams = 0;  // received
  std::uint64_t recorded = 0;   // committed to the store
  std::uint64_t rejected = 0;   // invalid
  std::uint64_t store_errors = 0;
  std::uint64_t dropped = 0;  // parsed, but lost: the store kept failing (see flush)
};

// The largest datagram read whole (see above).
inline constexpr std::size_t kMaxTlsrptDatagram = 256 * 1024;

// The part without a socket (tests feed datagrams directly).
class TlsrptBatcher {
 public:
  TlsrptBatcher(store::Store& store, Logger& log, std::size_t batch_size);
  // Parses one datagram and adds it to the pending batch (committing when it is full).
  void add(std::string_view datagram, std::int64_t received_at);
  // Counts a datagram that could not be read whole and keeps it aside with `reason`.
  void reject(std::string_view datagram, std::string_view reason, std::int64_t received_at);
  // Commits what is pending (a store error is logged and the batch kept for the next try,
  // up to 10 batches; beyond that the oldest datagrams are dropped and counted).
  void flush();
  const CollectorStats& stats() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

class TlsrptCollector {
 public:
  // Creates the socket (replacing a stale one), with tlsrpt.socket-mode and -group. Throws
  // std::runtime_error when it cannot (start-up error).
  TlsrptCollector(const config::TlsrptConfig& config, store::Store& store, Logger& log,
                  std::function<std::int64_t()> clock);
  ~TlsrptCollector();  // flushes, closes and unlinks the socket
  // Receives until `stop` is true (checked at least every 200 ms); flushes at the end.
  void run(const std::atomic<bool>& stop);
  // Flushes now (mailreport serve calls it before building TLS reports).
  void flush();
  CollectorStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::ingest
