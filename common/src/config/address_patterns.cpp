// AddressPatterns: which recipients are report mailboxes (report.analysis.addresses).
#include <cctype>
#include <string>

#include "mailreport/config/config.hpp"

namespace mailreport::config {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "<Dmarc+Google@Example.COM>" -> "dmarc@example.com". The "+tag" of a sub-addressed local
// part is removed (RFC 5233 sub-addressing, the form Postfix's recipient_delimiter uses).
// Quoted local parts (RFC 5321 §4.1.2 Quoted-string) are not unquoted.
std::string normalise_address(std::string_view address) {
  while (!address.empty() && std::isspace(static_cast<unsigned char>(address.front()))) {
    address.remove_prefix(1);
  }
  while (!address.empty() && std::isspace(static_cast<unsigned char>(address.back()))) {
    address.remove_suffix(1);
  }
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = address.substr(1, address.size() - 2);
  }
  std::string out = lower(address);
  const auto at = out.rfind('@');
  const auto local_end = at == std::string::npos ? out.size() : at;
  const auto plus = out.find('+');
  if (plus != std::string::npos && plus < local_end) out.erase(plus, local_end - plus);
  return out;
}

}  // namespace

AddressPatterns::AddressPatterns(std::vector<std::string> patterns)
    : patterns_(std::move(patterns)) {
  for (auto& p : patterns_) p = lower(p);
}

bool AddressPatterns::matches(std::string_view address) const {
  const std::string a = normalise_address(address);
  if (a.empty()) return false;  // the null reverse-path "<>" is nobody's mailbox
  for (const std::string& p : patterns_) {
    if (p.empty()) continue;
    if (p.front() == '*') {
      if (a.ends_with(std::string_view(p).substr(1))) return true;
    } else if (p.back() == '*') {
      if (a.starts_with(std::string_view(p).substr(0, p.size() - 1))) return true;
    } else if (a == p) {
      return true;
    }
  }
  return false;
}

}  // namespace mailreport::config
