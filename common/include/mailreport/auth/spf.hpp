// auth/spf: SPF verification (RFC 7208) of the HELO and MAIL FROM identities with libspf2,
// every DNS lookup going through the one dns::Resolver (so it shares unbound's cache and tests
// answer from local data).
//
// libspf2 does the evaluation: record selection (§4.5, two records = permerror), mechanisms and
// modifiers (§5, §6), macros (§7) and the limit of 10 DNS-querying terms (§4.6.4). We add: the
// explanation (exp=, §6.2: fetched and expanded by our DNS layer, see spf.cpp), the
// identities (§2.3 HELO, §2.4 MAIL FROM, null sender → postmaster@HELO), the "none" for
// identities that are not multi-label domain names (§2.3, §4.3), and the mapping to SpfVerdict.
//
// Not done (libspf2 1.2.10 does not): the limit of two void lookups (§4.6.4, a SHOULD; counting
// per DNS query in our layer would turn legitimate records into permerrors). libspf2's own
// §4.6.4 variant for "mx" and "ptr": more than 10 names → permerror only when none of the
// first 10 matched. libspf2 answers pass for loopback clients (127.0.0.0/8, ::1) without
// looking at DNS; the milter does not evaluate local connections anyway.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::auth {

// Thread-safe: one SpfVerifier is shared by every milter connection. The libspf2 server
// (SPF_server_t: compiled default explanation, receiver name, limits) is built once and only
// read afterwards; each check() makes its own SPF_request_t / SPF_response_t, and the DNS layer
// keeps no per-query state outside the call (the Resolver is thread-safe).
class SpfVerifier {
 public:
  // receiver_host is %{r} (RFC 7208 §7.3) and the name in explanations. `log` must outlive the
  // verifier.
  static Result<std::shared_ptr<SpfVerifier>> create(std::shared_ptr<dns::Resolver> resolver,
                                                     std::string receiver_host, Logger& log);

  ~SpfVerifier();
  SpfVerifier(const SpfVerifier&) = delete;
  SpfVerifier& operator=(const SpfVerifier&) = delete;

  // RFC 7208 §2.3, §2.4: evaluates the MAIL FROM identity and the HELO identity for a client.
  // client_ip: presentation form ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1").
  // mail_from: the address without <>, "" for the null sender (then the identity is
  // postmaster@helo). Returns {mfrom, helo} in that order, with scope set.
  std::vector<SpfVerdict> check(std::string_view client_ip, std::string_view helo,
                                std::string_view mail_from) const;

  // One identity only (the milter may check HELO at HELO time).
  SpfVerdict check_mail_from(std::string_view client_ip, std::string_view helo,
                             std::string_view mail_from) const;
  SpfVerdict check_helo(std::string_view client_ip, std::string_view helo) const;

  struct Impl;

 private:
  explicit SpfVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::auth
