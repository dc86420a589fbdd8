// A server process started by a test or a benchmark (a milter, a receiver, a cluster node):
// spawned with its output in a log file, stopped with SIGTERM (then SIGKILL) when the object
// goes away, and its CPU time readable from /proc/<pid>/stat while it runs — the figure a
// benchmark reports per message because it survives a noisy machine. Optionally in a process
// group of its own, so that it and whatever it started (a node's sendmail) are signalled, and
// killed when it ends, together.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/result.hpp"

namespace mailreport::test {

struct ChildOptions {
  std::vector<std::string> env;  // "NAME=value" added to the test's environment
  bool own_group = false;        // a process group of its own (see the file comment)
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments; stdout and stderr are appended to `log`.
  static Result<ChildProcess> start(const std::vector<std::string>& argv,
                                    const std::filesystem::path& log,
                                    const ChildOptions& options = {});

  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // stop()

  pid_t pid() const noexcept { return pid_; }
  bool running();
  // Sends `sig` (to the whole group with own_group).
  void signal(int sig);
  // Waits up to `limit` for it to end: its exit status (128 + signal when killed by one), or
  // -1 when it is still running.
  int wait(std::chrono::milliseconds limit);
  // SIGTERM, then SIGKILL after `grace`; returns the exit status (128 + signal when killed by
  // one), or -1 when it was not running.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // User + system CPU time of the process (all its threads) so far; zero once it has ended.
  std::chrono::microseconds cpu_time() const;
  const std::filesystem::path& log() const noexcept { return log_; }

 private:
  ChildProcess(pid_t pid, std::filesystem::path log, bool own_group)
      : pid_(pid), own_group_(own_group), log_(std::move(log)) {}
  // Records how it ended; with own_group, what it started goes with it.
  void reaped(int status);

  pid_t pid_ = -1;
  bool own_group_ = false;
  int status_ = -1;
  std::filesystem::path log_;
};

// Waits until `address` ("unix:/path", "/path" or "inet:PORT@HOST") accepts a connection;
// fails when `child` ended meanwhile (its log's tail in the message) or after `timeout`.
Status wait_for_listener(std::string_view address, ChildProcess& child,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace mailreport::test
