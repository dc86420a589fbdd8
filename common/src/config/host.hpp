// Private helper of the config module: this host's names, for the defaults of report.domain
// and report.submitter.
#pragma once

#include <string>
#include <string_view>

namespace mailreport::config::detail {

struct HostNames {
  std::string fqdn;    // gethostname(), or its canonical name when it has no dot
  std::string domain;  // fqdn without its first label (fqdn itself when it has no dot)
};

// Looked up once per process. Never fails: without a network (or a resolver) the canonical
// name lookup fails and the plain host name is used.
const HostNames& host_names();

// "mx1.example.com" -> "example.com"; "localhost" -> "localhost".
std::string domain_of_host(std::string_view host);

}  // namespace mailreport::config::detail
