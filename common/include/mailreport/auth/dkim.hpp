// auth/dkim: DKIM signature verification (RFC 6376) with libopendkim, one verdict per
// DKIM-Signature header, every key lookup going through the one dns::Resolver (libopendkim's
// DNS hooks are answered with the wire reply our Resolver got from unbound).
//
// Algorithms: rsa-sha256 (RFC 6376 §3.3) and ed25519-sha256 (RFC 8463) pass; rsa-sha1 is
// verified but never passes (RFC 8301 §3.1: "permanently failed evaluation" → permerror, the
// reason says whether the signature itself was good); RSA keys under 1024 bits → policy
// (RFC 8301 §3.2). Result words per RFC 8601 §2.7.1:
//   pass       signature and body hash verified
//   fail       signature or body hash mismatch; key revoked (empty p=, RFC 6376 §6.1.2 step 7)
//   policy     verified cryptographically but not acceptable here (key too small)
//   temperror  the key could not be fetched now (SERVFAIL, timeout: RFC 6376 §6.1.2 TEMPFAIL)
//   permerror  signature or key record unusable: syntax, expired, no key (NXDOMAIN / no TXT),
//              several key records, rsa-sha1
// Keys with t=y (testing) keep their result and set DkimVerdict::testing; RFC 6376 §3.6.1 asks
// that such mail be treated like unsigned mail, which is the DMARC evaluator's decision.
//
// Failure reports: r=y (RFC 6651) and the RFC 6591 Auth-Failure word are on each verdict; the
// canonicalized header/body are not (see dkim.cpp).
//
// Not done: l= bodies beyond the signed length are accepted as libopendkim does; ATPS and
// DNSSEC status (answers are marked unknown unless unbound says secure); no cap on the number
// of signatures a message may carry.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::auth {

// One message. Not thread-safe; created by DkimVerifier::start().
class DkimVerification {
 public:
  struct Impl;
  explicit DkimVerification(std::unique_ptr<Impl> impl);
  ~DkimVerification();
  DkimVerification(const DkimVerification&) = delete;
  DkimVerification& operator=(const DkimVerification&) = delete;

  // One header field as the milter protocol hands it: name, and value with folded lines joined
  // by "\n" or "\r\n" (bare LF becomes CRLF, as OpenDKIM's milter does). The field is rebuilt
  // as OpenDKIM's milter rebuilds it: "name: value" when the MTA strips the space after the
  // colon (the default), "name:value" when start() was told the MTA keeps it
  // (SMFIP_HDR_LEADSPC). A malformed DKIM-Signature is not an error here: it gets a permerror
  // verdict. Errors: a field name that is not printable ASCII, or a call after end_of_headers().
  Status header(std::string_view name, std::string_view value);
  Status end_of_headers();
  // Body bytes as received (CRLF line ends, as the milter gives them), in any chunking.
  Status body(std::span<const char> chunk);
  // One verdict per DKIM-Signature header, in header order; empty when there is none. Call once.
  std::vector<DkimVerdict> finish();

 private:
  std::unique_ptr<Impl> impl_;
};

// Thread-safe factory holding the library handle (DKIM_LIB) and the DNS hooks; one per process,
// shared by every milter connection.
class DkimVerifier {
 public:
  // `log` must outlive the verifier and the verifications it starts.
  static Result<std::shared_ptr<DkimVerifier>> create(std::shared_ptr<dns::Resolver> resolver,
                                                      Logger& log);
  ~DkimVerifier();
  DkimVerifier(const DkimVerifier&) = delete;
  DkimVerifier& operator=(const DkimVerifier&) = delete;

  // job_id names the message in logs. header_leading_space_kept: the MTA hands header values
  // with the space after the colon kept (milter SMFIP_HDR_LEADSPC negotiated).
  // The verification keeps the verifier alive.
  std::unique_ptr<DkimVerification> start(std::string_view job_id,
                                          bool header_leading_space_kept = false) const;

  // Whether libopendkim was built with ed25519-sha256 (RFC 8463); Debian 12's is.
  bool supports_ed25519() const noexcept;

  struct Impl;

 private:
  explicit DkimVerifier(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailreport::auth
