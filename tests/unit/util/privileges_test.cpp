// drop_privileges: the refusals, and a real switch in a child process when run as root.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <unistd.h>
#include <cstdlib>
#include <string>

#include "mailreport/util/privileges.hpp"

namespace mailreport {
namespace {

TEST(DropPrivileges, AnUnknownUserIsRefusedWithTheKeyNamed) {
  auto st = drop_privileges("no-such-user-mailreport", "milter.user", "the milter");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Invalid);
  EXPECT_EQ(st.error().message, "milter.user: unknown user 'no-such-user-mailreport'");
}

TEST(DropPrivileges, RootIsNotAnUnprivilegedUser) {
  auto st = drop_privileges("root", "lmtp.user", "the receiver");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "lmtp.user: 'root' is root; name an unprivileged user");
}

TEST(DropPrivileges, SwitchesToTheUserAndKeepsNoRootIdentity) {
  if (::geteuid() != 0) {
    // Not root: naming the user we already are is fine, any other is refused.
    passwd* me = ::getpwuid(::getuid());
    ASSERT_NE(me, nullptr);
    EXPECT_TRUE(drop_privileges(me->pw_name, "lmtp.user", "the receiver").ok());
    return;
  }
  // Root (as in CI): switch for real, in a child process.
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const uid_t uid = nobody->pw_uid;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto st = drop_privileges("nobody", "milter.user", "the milter");
    bool good =
        st.ok() && ::getuid() == uid && ::geteuid() == uid && ::getgid() != 0 && ::setuid(0) != 0;
    ::_exit(good ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ChownByName, UnknownNamesAreRefusedWithTheirKey) {
  auto u = chown_by_name("/nonexistent", "no-such-user-mailreport", "", "lmtp.unix-socket-owner",
                         "lmtp.unix-socket-group");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message, "lmtp.unix-socket-owner: unknown user 'no-such-user-mailreport'");
  auto g = chown_by_name("/nonexistent", "", "no-such-group-mailreport", "milter.socket-owner",
                         "milter.socket-group");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().message, "milter.socket-group: unknown group 'no-such-group-mailreport'");
}

TEST(ChownByName, GivesTheFileTheNamedOwner) {
  char path[] = "/tmp/mailreport-chown-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  passwd* me = ::getpwuid(::geteuid());
  ASSERT_NE(me, nullptr);
  // As root (CI) the file goes to nobody; otherwise naming ourselves is the one allowed chown.
  std::string owner = ::geteuid() == 0 ? "nobody" : me->pw_name;
  auto st = chown_by_name(path, owner, "", "k.owner", "k.group");
  EXPECT_TRUE(st.ok()) << st.error().message;
  struct stat sb {};
  ASSERT_EQ(::stat(path, &sb), 0);
  EXPECT_EQ(sb.st_uid, ::getpwnam(owner.c_str())->pw_uid);
  ::unlink(path);
}

}  // namespace
}  // namespace mailreport
