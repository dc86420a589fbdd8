// Domains of the mailboxes in an address header (RFC 5322 §3.4), parsed by GMime.
#include "mailreport/mime/address.hpp"

#include <gmime/gmime.h>

#include <memory>

#include "mailreport/mime/header.hpp"

namespace mailreport::mime {
namespace {

struct GObjectDeleter {
  void operator()(void* p) const noexcept { g_object_unref(p); }
};

std::string domain_of(std::string_view addr) {
  auto at = addr.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(addr.substr(at + 1));
  while (!d.empty() && (d.back() == '.' || d.back() == ' ')) d.pop_back();
  for (char& c : d) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return d;
}

void collect(InternetAddressList* list, std::vector<std::string>& out, int depth) {
  if (!list || depth > 8) return;
  int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
      auto* mb = INTERNET_ADDRESS_MAILBOX(a);
      // The IDN form is the addr-spec with its domain in A-labels (ASCII domains unchanged).
      const char* idn = internet_address_mailbox_get_idn_addr(mb);
      const char* addr = idn ? idn : internet_address_mailbox_get_addr(mb);
      if (!addr) continue;
      std::string d = domain_of(addr);
      if (!d.empty()) out.push_back(std::move(d));
    } else if (INTERNET_ADDRESS_IS_GROUP(a)) {
      collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), out, depth + 1);
    }
  }
}

}  // namespace

std::vector<std::string> address_domains(std::string_view header_value) {
  ensure_initialized();
  std::vector<std::string> out;
  std::string text(header_value);
  std::unique_ptr<InternetAddressList, GObjectDeleter> list(
      internet_address_list_parse(nullptr, text.c_str()));
  collect(list.get(), out, 0);
  return out;
}

}  // namespace mailreport::mime
