// Spellings of the verdict enums, as RFC 8601 (Authentication-Results) and the DMARC aggregate
// schema (RFC 7489 App. C, RFC 9990) write them.
#include "mailreport/auth/verdict.hpp"

#include <strings.h>
#include <array>

namespace mailreport::auth {
namespace {

template <class E, std::size_t N>
std::optional<E> lookup(const std::array<const char*, N>& names, std::string_view s) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    std::string_view n = names[i];
    if (n.size() == s.size() && ::strncasecmp(n.data(), s.data(), n.size()) == 0) {
      return static_cast<E>(i);
    }
  }
  return std::nullopt;
}

constexpr std::array<const char*, 7> kSpf = {"none",     "neutral",   "pass",     "fail",
                                             "softfail", "temperror", "permerror"};
constexpr std::array<const char*, 7> kDkim = {"none",    "pass",      "fail",     "policy",
                                              "neutral", "temperror", "permerror"};
constexpr std::array<const char*, 5> kDmarc = {"none", "pass", "fail", "temperror", "permerror"};
constexpr std::array<const char*, 3> kPolicy = {"none", "quarantine", "reject"};
constexpr std::array<const char*, 7> kOverride = {
    "forwarded",        "sampled_out", "trusted_forwarder", "mailing_list", "local_policy",
    "policy_test_mode", "other"};

}  // namespace

const char* to_string(SpfResult v) noexcept {
  return kSpf[static_cast<std::size_t>(v)];
}
const char* to_string(DkimResult v) noexcept {
  return kDkim[static_cast<std::size_t>(v)];
}
const char* to_string(DmarcResult v) noexcept {
  return kDmarc[static_cast<std::size_t>(v)];
}
const char* to_string(FailureKind v) noexcept {
  switch (v) {
    case FailureKind::Dkim:
      return "dkim";
    case FailureKind::Spf:
      return "spf";
    case FailureKind::Dmarc:
      break;
  }
  return "dmarc";
}
const char* to_string(SpfScope v) noexcept {
  return v == SpfScope::Helo ? "helo" : "mfrom";
}
const char* to_string(Policy v) noexcept {
  return kPolicy[static_cast<std::size_t>(v)];
}
const char* to_string(Disposition v) noexcept {
  return kPolicy[static_cast<std::size_t>(v)];
}
const char* to_string(Alignment v) noexcept {
  return v == Alignment::Strict ? "s" : "r";
}
const char* to_string(Discovery v) noexcept {
  return v == Discovery::Psl ? "psl" : "treewalk";
}
const char* to_string(OverrideReason v) noexcept {
  return kOverride[static_cast<std::size_t>(v)];
}

std::optional<SpfResult> spf_result_from(std::string_view s) noexcept {
  return lookup<SpfResult>(kSpf, s);
}
std::optional<DkimResult> dkim_result_from(std::string_view s) noexcept {
  return lookup<DkimResult>(kDkim, s);
}
std::optional<DmarcResult> dmarc_result_from(std::string_view s) noexcept {
  return lookup<DmarcResult>(kDmarc, s);
}
std::optional<Policy> policy_from(std::string_view s) noexcept {
  return lookup<Policy>(kPolicy, s);
}

}  // namespace mailreport::auth
