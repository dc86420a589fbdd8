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
};

}  // namespace mailreport::auth
