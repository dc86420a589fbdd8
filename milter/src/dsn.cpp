// DSNs the MTA generates (see dsn.hpp): recognising them by their Content-Type (parsed by
// GMime), and the From field report.dsn asks for, formatted by GMime (InternetAddressMailbox).
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

}  // namespace

bool is_delivery_status(std::string_view content_type) {
  mime::ensure_initialized();
  const std::string text(content_type);
  // RFC 2045 §5.1 / RFC 3462 §1: multipart/report with report-type=delivery-status; GMime's
  // parser handles case, quoting, comments and folding.
  std::unique_ptr<GMimeContentType, GObjectUnref> ct(
      g_mime_content_type_parse(nullptr, text.c_str()));
  if (!ct || !g_mime_content_type_is_type(ct.get(), "multipart", "report")) return false;
  const char* type = g_mime_content_type_get_parameter(ct.get(), "report-type");
  return type != nullptr && g_ascii_strcasecmp(type, "delivery-status") == 0;
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
