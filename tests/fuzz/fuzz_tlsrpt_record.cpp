// Fuzzes the TLSRPT record parser (RFC 8460 §3), whose input is a TXT record anyone can publish
// and which the MTA hands us in every libtlsrpt datagram ("pr"). A record that parses must list
// URIs without the list's delimiters, and those URIs written as a record of their own must
// parse again to the same list.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mailreport/outbound/tls_aggregate.hpp"

using namespace mailreport::outbound;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = parse_tlsrpt_record(in);
  if (!r) return 0;
  if (r->rua.empty()) std::abort();
  std::string again = "v=TLSRPTv1;rua=";
  for (std::size_t i = 0; i < r->rua.size(); ++i) {
    const auto& uri = r->rua[i];
    if (uri.empty() || uri.find_first_of(",;") != std::string::npos) std::abort();
    if (i > 0) again += ",";
    again += uri;
  }
  auto second = parse_tlsrpt_record(again);
  if (!second || second->rua != r->rua) std::abort();
  return 0;
}
