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
                                         const std::filesystem::path& log) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, copy[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return make_error(ErrorCode::Io, "cannot start " + copy[0] + ": " + std::strerror(rc));
  }
  return ChildProcess(pid, log);
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), status_(o.status_), log_(std::move(o.log_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    status_ = o.status_;
    log_ = std::move(o.log_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  stop();
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t w = ::waitpid(pid_, &status, WNOHANG);
  if (w == pid_) {
    status_ = decode(status);
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid_, &status, WNOHANG);
    if (w == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  status_ = decode(status);
  pid_ = -1;
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
