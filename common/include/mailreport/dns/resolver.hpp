// dns: the one DNS resolver every lookup in mailreport goes through (SPF via libspf2's DNS
// hook, DKIM via libopendkim's DNS hooks, DMARC policy discovery, report destination
// verification). The implementation wraps libunbound: one shared cache, per-query timeout,
// configurable upstream nameservers (`dns.nameservers`) and local records
// (`dns.local-data`, unbound's local-data syntax) that answer before anything leaves the host,
// which is how tests run with no network.
//
// Answers keep DNS semantics apart: NXDOMAIN and NODATA are answers (RFC 7208 §4.3 and
// RFC 7489 §6.6.3 treat them as "no record"); a SERVFAIL or a timeout is a TempError that
// callers must keep apart from a permanent result all the way up.
//
// Not done here: DNSSEC validation (answers carry unbound's `secure` flag only when a trust
// anchor is configured), and parsing of record types other than the ones below.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::dns {

// RR types we ask for (RFC 1035 §3.2.2, RFC 3596 for AAAA).
enum class RType : std::uint16_t {
  A = 1,
  NS = 2,
  CNAME = 5,
  SOA = 6,
  PTR = 12,
  MX = 15,
  TXT = 16,
  AAAA = 28,
};

const char* to_string(RType type) noexcept;

enum class Status {
  Ok,         // NOERROR with at least one record of the asked type
  NoData,     // NOERROR, but no record of that type (RFC 2308 §2.2)
  NxDomain,   // the name does not exist (RCODE 3)
  TempError,  // SERVFAIL, REFUSED, timeout, network or resolver failure: retry later
};

const char* to_string(Status status) noexcept;

struct Answer {
  Status status = Status::TempError;
  std::string why;  // for TempError: what went wrong (rcode name, "timeout", unbound's error)
  // Each record's RDATA as it came off the wire (names uncompressed), in answer order,
  // after following CNAMEs.
  std::vector<std::vector<std::uint8_t>> rdata;
  // The whole reply in wire format (RFC 1035 §4), as libopendkim's DNS hook wants it.
  // Empty for TempError.
  std::vector<std::uint8_t> packet;
  std::uint32_t ttl = 0;  // smallest TTL among the records (0 when none)
  bool secure = false;    // DNSSEC-validated (only with a trust anchor)

  bool ok() const noexcept { return status == Status::Ok; }
};

// Typed views of Answer::rdata. Each returns an empty vector when status != Ok; records that do
// not decode are skipped.
// TXT: each record's character-strings joined with nothing between them (RFC 7208 §3.3,
// RFC 6376 §3.6.2.2, RFC 7489 §6.6.3).
std::vector<std::string> txt_records(const Answer& answer);
// A / AAAA: addresses in presentation form ("192.0.2.1", "2001:db8::1").
std::vector<std::string> addresses(const Answer& answer);
// PTR / CNAME / NS targets as lower-case names without the trailing dot.
std::vector<std::string> names(const Answer& answer);
struct Mx {
  std::uint16_t preference = 0;
  std::string exchange;  // lower case, no trailing dot; "" for a null MX (RFC 7505)
};
std::vector<Mx> mx_records(const Answer& answer);

// Thread-safe: one Resolver is shared by every milter connection thread.
class Resolver {
 public:
  virtual ~Resolver() = default;
  // Blocks until the answer, a timeout, or an error. `name` may end with a dot or not.
  virtual Answer query(std::string_view name, RType type) = 0;
};

struct ResolverOptions {
  // Upstream recursive resolvers ("192.0.2.53", "2001:db8::53", "127.0.0.1@5353").
  // Empty: the system's /etc/resolv.conf.
  std::vector<std::string> nameservers;
  // Local records in unbound's local-data syntax, e.g.
  //   "_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject\""
  // They answer first; every other name under the same zone still goes upstream
  // (unbound's "transparent" local zone).
  std::vector<std::string> local_data;
  // Names that must answer NXDOMAIN locally ("example.test."), for tests and overrides.
  std::vector<std::string> local_nxdomain;
  // When true, names not covered by local_data / local_nxdomain are never sent upstream
  // (answer TempError "no upstream"); tests use this so that nothing leaves the host.
  bool local_only = false;
  std::chrono::milliseconds timeout{5000};  // per query, including retries
  std::size_t cache_size = 8u << 20;        // bytes for unbound's message and rrset caches
};

// Builds the libunbound-backed resolver. Errors (a bad nameserver address, a local-data line
// unbound refuses) are reported with the offending value.
Result<std::shared_ptr<Resolver>> make_unbound_resolver(const ResolverOptions& options,
                                                        Logger& log);

}  // namespace mailreport::dns
