// libcurl behind RAII for outbound/ (SMTP submission in submit.cpp, https POST in
// https_post.cpp): easy handles and header lists are freed on every path, and
// curl_global_init runs once per process, before the first handle.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace mailreport::outbound::curl {

struct EasyDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// A new easy handle (null when libcurl cannot make one), after curl_global_init (once, for
// every caller: an inline function's static is one object program-wide).
inline EasyPtr new_easy() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return EasyPtr(curl_easy_init());
}

}  // namespace mailreport::outbound::curl
