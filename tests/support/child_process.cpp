// A server process for tests and benchmarks (see child_process.hpp).
#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "milter_client.hpp"

extern char** environ;

namespace mailreport::test {

namespace {

std::string tail_of(const std::filesystem::path& p, std::size_t max = 2000) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<ChildProcess> ChildProcess::start(const std::vector<std::string>& args,
                                         const std::filesystem::path& log,
                                         const ChildOptions& options) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy = options.env;
  std::vector<char*> envp;
  for (auto& e : env_copy) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (options.own_group) {
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
  }
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, copy[0].c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return make_error(ErrorCode::Io, "cannot start " + copy[0] + ": " + std::strerror(rc));
  }
  return ChildProcess(pid, log, options.own_group);
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      own_group_(o.own_group_),
      status_(o.status_),
      log_(std::move(o.log_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    own_group_ = o.own_group_;
    status_ = o.status_;
    log_ = std::move(o.log_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  stop();
}

void ChildProcess::reaped(int status) {
  status_ = decode(status);
  if (own_group_) ::kill(-pid_, SIGKILL);
  pid_ = -1;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped(status);
    return false;
  }
  return true;
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0) ::kill(own_group_ ? -pid_ : pid_, sig);
}

int ChildProcess::wait(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  signal(SIGTERM);
  if (wait(grace) == -1 && pid_ > 0) {
    signal(SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped(status);
  }
  return status_;
}

std::chrono::microseconds ChildProcess::cpu_time() const {
  if (pid_ <= 0) return std::chrono::microseconds(0);
  std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // proc(5): the command name (field 2) is in parentheses and may hold spaces; utime and stime
  // are fields 14 and 15, in clock ticks.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::chrono::microseconds(0);
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  long long utime = 0;
  long long stime = 0;
  fields >> utime >> stime;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return std::chrono::microseconds((utime + stime) * 1000000LL / (ticks > 0 ? ticks : 100));
}

Status wait_for_listener(std::string_view address, ChildProcess& child,
                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto c = MilterClient::connect(address, std::chrono::seconds(2));
    if (c) return {};
    if (!child.running()) {
      return make_error(ErrorCode::Io, "the server ended before listening on " +
                                           std::string(address) + ":\n" + tail_of(child.log()));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error(ErrorCode::Io, "nothing listens on " + std::string(address) + " after " +
                                           std::to_string(timeout.count()) + " ms:\n" +
                                           tail_of(child.log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace mailreport::test
