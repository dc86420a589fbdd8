// See privileges.hpp.
#include "mailreport/util/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailreport {

Status drop_privileges(const std::string& user, std::string_view key, std::string_view who) {
  const std::string k(key);
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buf(size > 0 ? static_cast<std::size_t>(size) : 16384u, '\0');
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return make_error(ErrorCode::Invalid, k + ": unknown user '" + user + "'");
  }
  if (pw.pw_uid == 0) {
    return make_error(ErrorCode::Invalid,
                      k + ": '" + user + "' is root; name an unprivileged user");
  }
  if (::geteuid() != 0) {
    if (::getuid() == pw.pw_uid && ::geteuid() == pw.pw_uid) return {};  // already that user
    return make_error(ErrorCode::Io, k + " is '" + user + "' but " + std::string(who) +
                                         " does not run as root and cannot switch to it");
  }
  if (::setgid(pw.pw_gid) != 0) {
    return make_error(ErrorCode::Io, std::string("setgid: ") + std::strerror(errno));
  }
  if (::initgroups(pw.pw_name, pw.pw_gid) != 0) {
    return make_error(ErrorCode::Io, std::string("initgroups: ") + std::strerror(errno));
  }
  if (::setuid(pw.pw_uid) != 0) {
    return make_error(ErrorCode::Io, std::string("setuid: ") + std::strerror(errno));
  }
  if (::getuid() == 0 || ::geteuid() == 0 || ::getgid() == 0 || ::getegid() == 0 ||
      ::setuid(0) == 0) {
    return make_error(ErrorCode::Io,
                      "still privileged after switching to '" + user + "'; refusing to continue");
  }
  return {};
}

}  // namespace mailreport
