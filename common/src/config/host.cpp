// This host's names for the computed defaults (report.domain, report.submitter): gethostname(2),
// then getaddrinfo(3) with AI_CANONNAME when the host name is not fully qualified.
#include "config/host.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <memory>

namespace mailreport::config::detail {

namespace {

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const noexcept { freeaddrinfo(ai); }
};

std::string normalise(std::string name) {
  while (!name.empty() && name.back() == '.') name.pop_back();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string canonical_name(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* raw = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &raw) != 0 || raw == nullptr) return {};
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(raw);
  return list->ai_canonname != nullptr ? normalise(list->ai_canonname) : std::string();
}

HostNames look_up() {
  std::array<char, 256> buf{};
  std::string host;
  if (gethostname(buf.data(), buf.size() - 1) == 0) host = normalise(buf.data());
  if (host.empty()) host = "localhost";
  if (host.find('.') == std::string::npos) {
    std::string canon = canonical_name(host);
    if (canon.find('.') != std::string::npos) host = std::move(canon);
  }
  HostNames names;
  names.domain = domain_of_host(host);
  names.fqdn = std::move(host);
  return names;
}

}  // namespace

const HostNames& host_names() {
  static const HostNames names = look_up();
  return names;
}

std::string domain_of_host(std::string_view host) {
  const auto dot = host.find('.');
  if (dot == std::string_view::npos || dot + 1 == host.size()) return std::string(host);
  return std::string(host.substr(dot + 1));
}

}  // namespace mailreport::config::detail
