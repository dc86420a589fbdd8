// DSNs the MTA generates (see dsn.hpp): recognising them by their Content-Type, and the From
// field report.dsn asks for, formatted by GMime (InternetAddressMailbox).
#include "dsn.hpp"

#include <gmime/gmime.h>

#include <memory>

#include "mailreport/mime/header.hpp"

namespace mailreport::milter::dsn {
namespace {

struct GObjectUnref {
  void operator()(void* p) const noexcept { g_object_unref(p); }
};
struct GFree {
  void operator()(char* p) const noexcept { g_free(p); }
};

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

bool is_delivery_status(std::string_view content_type) {
  std::string ct;
  ct.reserve(content_type.size());
  for (char c : content_type) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '"') ct += lower(c);
  }
  // RFC 2045 §5.1: type "/" subtype *(";" parameter); blanks and quotes were dropped above.
  if (ct.rfind("multipart/report;", 0) != 0) return false;
  for (std::size_t pos = ct.find(';'); pos != std::string::npos; pos = ct.find(';', pos + 1)) {
    constexpr std::string_view kParam = "report-type=delivery-status";
    if (std::string_view(ct).substr(pos + 1, kParam.size()) == kParam) {
      const std::size_t end = pos + 1 + kParam.size();
      if (end == ct.size() || ct[end] == ';') return true;
    }
  }
  return false;
}

std::string from_value(const config::DsnSettings& settings, std::string_view original_from) {
  if (settings.from_name.empty() && settings.from_address.empty()) return "";
  mime::ensure_initialized();
  std::string name = settings.from_name;
  std::string address = settings.from_address;
  if (name.empty() || address.empty()) {
    const std::string text(original_from);
    std::unique_ptr<InternetAddressList, GObjectUnref> list(
        internet_address_list_parse(nullptr, text.c_str()));
    InternetAddress* first = list && internet_address_list_length(list.get()) > 0
                                 ? internet_address_list_get_address(list.get(), 0)
                                 : nullptr;
    if (first != nullptr && INTERNET_ADDRESS_IS_MAILBOX(first)) {
      if (address.empty()) {
        const char* a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(first));
        if (a != nullptr) address = a;
      }
      if (name.empty() && internet_address_get_name(first) != nullptr) {
        name = internet_address_get_name(first);
      }
    }
  }
  if (address.empty()) return "";
  std::unique_ptr<InternetAddress, GObjectUnref> mailbox(
      internet_address_mailbox_new(name.empty() ? nullptr : name.c_str(), address.c_str()));
  // encode = TRUE: RFC 2047 encoded-words for a non-ASCII name, quotes for specials.
  std::unique_ptr<char, GFree> text(internet_address_to_string(mailbox.get(), nullptr, TRUE));
  return text ? std::string(text.get()) : std::string();
}

}  // namespace mailreport::milter::dsn
