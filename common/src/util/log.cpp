#include "mailreport/util/log.hpp"

#include <cstdio>

namespace mailreport {

namespace {
const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
  }
  return "?";
}
}  // namespace

void StderrLogger::log(LogLevel level, std::string_view context, std::string_view message) {
  if (level < min_) return;
  std::lock_guard lock(mu_);
  if (context.empty()) {
    std::fprintf(stderr, "%s: %.*s\n", level_name(level), static_cast<int>(message.size()),
                 message.data());
  } else {
    std::fprintf(stderr, "%s: [%.*s] %.*s\n", level_name(level), static_cast<int>(context.size()),
                 context.data(), static_cast<int>(message.size()), message.data());
  }
}

}  // namespace mailreport
