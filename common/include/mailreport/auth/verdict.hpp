// auth/verdict: the typed outcome of SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489,
// RFC 9989) for one message, shared by the verifiers (auth/spf, auth/dkim, auth/dmarc), the
// Authentication-Results writer and reader (auth/authres), the milter, and the store's
// evaluation table that aggregate and failure reports are built from.
//
// Temporary failures are kept apart from permanent ones everywhere (TempError vs PermError),
// so that a DNS outage is never reported as a policy failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailreport::auth {

// RFC 7208 §2.6; RFC 8601 §2.7.2 spells them in Authentication-Results.
enum class SpfResult { None, Neutral, Pass, Fail, SoftFail, TempError, PermError };
// RFC 8601 §2.7.1; the DMARC aggregate schema uses the same names (RFC 7489 App. C).
enum class DkimResult { None, Pass, Fail, Policy, Neutral, TempError, PermError };
// RFC 7489 §11.2 / RFC 8601 §2.7.
enum class DmarcResult { None, Pass, Fail, TempError, PermError };
enum class SpfScope { MailFrom, Helo };  // "mfrom" / "helo" in aggregate reports
// Policy values of p=, sp=, np= (RFC 9989 §4.7).
enum class Policy { None, Quarantine, Reject };
// The disposition applied to the message; in aggregate reports `none` also stands for
// "delivered" (RFC 7489 App. C). RFC 9990 adds `pass`; we write `none` unless the schema asks.
enum class Disposition { None, Quarantine, Reject };
enum class Alignment { Relaxed, Strict };  // adkim= / aspf=: "r" / "s"
// How the policy record was found: RFC 9989 §4.10 tree walk, or the RFC 7489 §3.2 public
// suffix list.
enum class Discovery { TreeWalk, Psl };
// RFC 7489 App. C PolicyOverrideType, plus RFC 9990's policy_test_mode.
enum class OverrideReason {
  Forwarded,
  SampledOut,
  TrustedForwarder,
  MailingList,
  LocalPolicy,
  PolicyTestMode,
  Other,
};

const char* to_string(SpfResult v) noexcept;       // "pass", "softfail", "temperror", ...
const char* to_string(DkimResult v) noexcept;      // "pass", "fail", "policy", ...
const char* to_string(DmarcResult v) noexcept;     // "pass", "fail", ...
const char* to_string(SpfScope v) noexcept;        // "mfrom", "helo"
const char* to_string(Policy v) noexcept;          // "none", "quarantine", "reject"
const char* to_string(Disposition v) noexcept;     // "none", "quarantine", "reject"
const char* to_string(Alignment v) noexcept;       // "r", "s"
const char* to_string(Discovery v) noexcept;       // "treewalk", "psl"
const char* to_string(OverrideReason v) noexcept;  // "forwarded", "sampled_out", ...
// Inverses; nullopt for an unknown spelling (case-insensitive).
std::optional<SpfResult> spf_result_from(std::string_view s) noexcept;
std::optional<DkimResult> dkim_result_from(std::string_view s) noexcept;
std::optional<DmarcResult> dmarc_result_from(std::string_view s) noexcept;
std::optional<Policy> policy_from(std::string_view s) noexcept;

struct SpfVerdict {
  SpfScope scope = SpfScope::MailFrom;
  SpfResult result = SpfResult::None;
  // The domain checked: MAIL FROM's domain, or the HELO name (also when MAIL FROM is <>,
  // RFC 7208 §2.4: then the mfrom identity is postmaster@HELO).
  std::string domain;
  std::string identity;     // smtp.mailfrom / smtp.helo value as written in A-R
  std::string explanation;  // libspf2's comment / exp= text, for logs and A-R comments
};

struct DkimVerdict {  // one per DKIM-Signature header, in header order
  DkimResult result = DkimResult::None;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string identity;   // i= (default "@" + d=)
  std::string algorithm;  // a= ("rsa-sha256", "ed25519-sha256")
  // Why it is not a pass, in words ("body hash mismatch", "key revoked", "no key"); becomes
  // human_result in aggregate reports and reason= in A-R.
  std::string reason;
  bool testing = false;  // the key record has t=y (RFC 6376 §3.6.1)
  std::string header_b;  // first 8+ characters of b=, to tell signatures apart (RFC 6008)
  // The signature has r=y (RFC 6651 §3.1): the signer asks for failure reports. Only ever
  // set by our own verifier (trusted upstream A-R do not carry it).
  bool report_requested = false;
  // RFC 6591 §3.2.2 Auth-Failure for a failed signature: "bodyhash", "revoked", "signature"
  // ("" when it passed or failed for another reason, e.g. no key).
  std::string auth_failure;
  // The canonicalized header and body the verifier hashed (RFC 6591 §3.1
  // DKIM-Canonicalized-Header/Body), only for failed signatures with r=y and only when the
  // verifier can give them; capped in size. Empty when not available.
  std::string canonicalized_header;
  std::string canonicalized_body;
};

// A parsed DMARC policy record (RFC 9989 §4.7; RFC 7489 §6.3 for pct and ri).
struct DmarcRecord {
  Policy p = Policy::None;
  std::optional<Policy> sp;
  std::optional<Policy> np;
  Alignment adkim = Alignment::Relaxed;
  Alignment aspf = Alignment::Relaxed;
  int pct = 100;                 // RFC 7489 §6.3 (removed by RFC 9989; honoured when present)
  bool testing = false;          // t=y (RFC 9989)
  char psd = 'u';                // psd= 'y', 'n', 'u'
  std::string fo = "0";          // fo= as published ("0", "1", "d", "s", or "1:d" ...)
  std::vector<std::string> rua;  // URIs as published (mailto:..., with !size kept)
  std::vector<std::string> ruf;
  std::uint32_t ri = 86400;  // RFC 7489 §6.3 report interval
  std::string text;          // the record as published
};

struct DmarcVerdict {
  DmarcResult result = DmarcResult::None;
  std::string header_from;    // the RFC5322.From domain (Author Domain)
  std::string policy_domain;  // where the applied record was found
  std::string org_domain;     // the Author Domain's organizational domain
  Discovery discovery = Discovery::TreeWalk;
  std::optional<DmarcRecord> record;            // the applied record (none when result is None)
  Policy applied_policy = Policy::None;         // p, sp or np as RFC 9989 §4.10.1 chooses
  bool dkim_aligned = false;                    // an aligned DKIM pass exists
  bool spf_aligned = false;                     // SPF (mfrom) passed and is aligned
  Disposition disposition = Disposition::None;  // what enforcement would do / did
  std::vector<std::pair<OverrideReason, std::string>> overrides;  // (reason, comment)
  std::string reason;  // why None/PermError/TempError, for logs and A-R
};

// RFC 6651 / RFC 6652 / RFC 7489 §7.3 failure reports: which kinds (failure.hpp plans them).
enum class FailureKind { Dmarc, Dkim, Spf };
const char* to_string(FailureKind v) noexcept;  // "dmarc", "dkim", "spf"

// One failure report due for a message, to one destination address (rate limits and the
// outbox work per address). Decided by auth::FailurePlanner (failure.hpp) in the milter, queued
// by Store::record_evaluations, built and sent by outbound/ in mailreport serve.
struct FailureReportRequest {
  FailureKind kind = FailureKind::Dmarc;
  std::string recipient;        // a plain address (mailto: and !size removed), verified
  std::uint64_t max_size = 0;   // DMARC ruf "!size" in bytes (0 = no limit)
  std::string reported_domain;  // Reported-Domain: the policy domain, DKIM d=, SPF domain
  // Auth-Failure (RFC 6591 §3.2.2): "dmarc", "bodyhash", "revoked", "signature", "spf".
  std::string auth_failure;
  int dkim_index = -1;  // the signature reported on (index in Evaluation::dkim), -1: none
  std::string spf_record;  // SPF-DNS: the v=spf1 TXT record evaluated (as published)
  // Identity-Alignment (RFC 9991 / RFC 6591 §3.2): "none", "dkim", "spf", "dkim, spf".
  std::string identity_alignment;
  // Delivery-Result (RFC 6591 §3.1): "delivered", "spam", "policy", "reject", "other".
  std::string delivery_result;
  // The rate limit that applies (from report.<kind>.send): at most limit_count reports to this
  // recipient per fixed window of limit_period seconds. limit_count 0 = unlimited.
  std::uint32_t limit_count = 0;
  std::int64_t limit_period = 0;
};

// Everything the milter learns about one message and hands to the store. One message with
// several RCPTs is one Evaluation (envelope_to is the first recipient's domain, as mox and
// OpenDMARC do).
struct Evaluation {
  std::int64_t time = 0;  // UTC epoch seconds, end of DATA
  std::string source_ip;  // presentation form
  std::string helo;
  std::string envelope_from;    // MAIL FROM domain ("" for <>)
  std::string envelope_to;      // first RCPT TO domain
  std::string header_from;      // From domain ("" when missing or multiple)
  std::string message_id;       // Message-ID header, for logs and failure reports
  std::vector<SpfVerdict> spf;  // mfrom first, then helo
  std::vector<DkimVerdict> dkim;
  DmarcVerdict dmarc;
  bool trusted_upstream = false;  // results came from a trusted Authentication-Results

  // Filled only when failure_reports is not empty (most messages carry none of this):
  std::vector<FailureReportRequest> failure_reports;
  std::string mail_from;             // MAIL FROM address without <> (Original-Mail-From)
  std::vector<std::string> rcpt_to;  // RCPT TO addresses (Original-Rcpt-To)
  std::string authentication_results;  // the A-R value we added (or would have added)
  // The reported message as received: its header block (CRLF line ends), plus the body when
  // report.failure.include = "message", cut at report.failure.max-original bytes.
  std::string original;
  bool original_truncated = false;
};

}  // namespace mailreport::auth
