#include "mailreport/util/result.hpp"

namespace mailreport {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::Invalid: return "invalid";
    case ErrorCode::NotAReport: return "not a report";
    case ErrorCode::LimitExceeded: return "limit exceeded";
    case ErrorCode::Io: return "i/o error";
    case ErrorCode::Store: return "store error";
    case ErrorCode::Temporary: return "temporary failure";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::NotFound: return "not found";
    case ErrorCode::Conflict: return "conflict";
  }
  return "unknown";
}

}  // namespace mailreport
