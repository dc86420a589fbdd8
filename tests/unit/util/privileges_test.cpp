// drop_privileges: the refusals, and a real switch in a child process when run as root.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace mailreport
