// See privileges.hpp.
#include "mailreport/util/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailreport {

namespace {

Result<uid_t> lookup_user(const std::string& name, std::string_view key) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buf(size > 0 ? static_cast<std::size_t>(size) : 16384u, '\0');
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return make_error(ErrorCode::Invalid, std::string(key) + ": unknown user '" + name + "'");
  }
  return pw.pw_uid;
}

Result<gid_t> lookup_group(const std::string& name, std::string_view key) {
  long size = ::sysconf(_SC_GETGR_R_SIZE_MAX);
  std::string buf(size > 0 ? static_cast<std::size_t>(size) : 16384u, '\0');
  group gr{};
  group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) {
    return make_error(ErrorCode::Invalid, std::string(key) + ": unknown group '" + name + "'");
  }
  return gr.gr_gid;
}

}  // namespace

Status chown_by_name(const std::string& path, const std::string& owner, const std::string& group,
                     std::string_view owner_key, std::string_view group_key) {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!owner.empty()) {
    auto u = lookup_user(owner, owner_key);
    if (!u) return std::move(u).error();
    uid = *u;
  }
  if (!group.empty()) {
    auto g = lookup_group(group, group_key);
    if (!g) return std::move(g).error();
    gid = *g;
  }
  if (::chown(path.c_str(), uid, gid) != 0) {
    return make_error(ErrorCode::Io, "chown " + path + ": " + std::strerror(errno));
  }
  return {};
}

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
