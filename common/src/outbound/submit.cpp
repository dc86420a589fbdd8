// outbound/submit: hands a finished report to the MTA (see mailreport/outbound/submit.hpp).
//
// - sendmail(1): `<sendmail-path> -i -f FROM -- RCPT`, spawned with posix_spawn; the message
//   goes to its stdin with LF line ends (the local submission convention: sendmail turns them
//   back into CRLF), `-i` so a line holding a lone "." does not end it. The exit status follows
//   sysexits.h: 0 sent, EX_TEMPFAIL (75) temporary, any other code permanent; death by a signal
//   and our timeout (report.submit.timeout; the child is killed) are temporary. stdout and
//   stderr are read into the outcome's detail (capped).
//   stdin is a socketpair, not a pipe, so a child that exits early gives EPIPE on send()
//   (MSG_NOSIGNAL) instead of a SIGPIPE that would end mailreport serve.
// - SMTP relay (libcurl, smtp:// or smtps://): MAIL FROM / RCPT TO / DATA with the message as
//   is (CRLF; libcurl dot-stuffs it). RFC 5321 §4.2.1: a 4yz reply is a transient failure, 5yz
//   a permanent one; failing to connect or a timeout is transient.
//
// Not done: SMTP AUTH (a relay on loopback or the local MTA does not ask for it); LMTP.
#include "mailreport/outbound/submit.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "outbound/curl_handle.hpp"

extern char** environ;

namespace mailreport::outbound {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kDetailCap = 4096;  // bytes of the MTA's words kept

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// ---------------------------------------------------------------- sendmail(1)

// The message with CRLF turned into LF (a lone CR is left alone).
std::string to_lf(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue;
    out += message[i];
  }
  return out;
}

// posix_spawn's attribute objects, destroyed on every path.
class SpawnActions {
 public:
  SpawnActions() { ok_ = posix_spawn_file_actions_init(&a_) == 0; }
  ~SpawnActions() {
    if (ok_) posix_spawn_file_actions_destroy(&a_);
  }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  bool ok() const noexcept { return ok_; }
  posix_spawn_file_actions_t* get() noexcept { return &a_; }

 private:
  posix_spawn_file_actions_t a_{};
  bool ok_ = false;
};

class SpawnAttr {
 public:
  SpawnAttr() { ok_ = posix_spawnattr_init(&a_) == 0; }
  ~SpawnAttr() {
    if (ok_) posix_spawnattr_destroy(&a_);
  }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  bool ok() const noexcept { return ok_; }
  posix_spawnattr_t* get() noexcept { return &a_; }

 private:
  posix_spawnattr_t a_{};
  bool ok_ = false;
};

// A spawned child that is killed and reaped if still running when this goes away.
class Child {
 public:
  explicit Child(pid_t pid) noexcept : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st = 0;
      while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  // The wait status once the child has ended; nullopt when it is still running.
  std::optional<int> poll() {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return st;
    }
    return std::nullopt;
  }

 private:
  pid_t pid_;
};

class SendmailSubmitter final : public Submitter {
 public:
  explicit SendmailSubmitter(config::SubmitConfig config) : config_(std::move(config)) {}

  SubmitOutcome submit(std::string_view envelope_from, std::string_view recipient,
                       std::string_view message) override {
    const auto deadline = Clock::now() + config_.timeout;
    int in[2];  // [0] ours, [1] the child's stdin
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
      return {SubmitStatus::TempFail, errno_text("socketpair", errno)};
    }
    UniqueFd in_ours(in[0]), in_child(in[1]);
    int out[2];  // [0] ours, [1] the child's stdout and stderr
    if (pipe2(out, O_CLOEXEC) != 0) return {SubmitStatus::TempFail, errno_text("pipe", errno)};
    UniqueFd out_ours(out[0]), out_child(out[1]);

    SpawnActions actions;
    SpawnAttr attr;
    if (!actions.ok() || !attr.ok()) return {SubmitStatus::TempFail, "posix_spawn setup failed"};
    posix_spawn_file_actions_adddup2(actions.get(), in_child.get(), 0);
    posix_spawn_file_actions_adddup2(actions.get(), out_child.get(), 1);
    posix_spawn_file_actions_adddup2(actions.get(), out_child.get(), 2);
    // The child starts with default signal dispositions (serve ignores SIGPIPE, handles TERM).
    sigset_t all;
    sigfillset(&all);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(attr.get(), &all);
    posix_spawnattr_setsigmask(attr.get(), &none);
    posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::string path = config_.sendmail_path.string();
    std::string from(envelope_from), rcpt(recipient);
    std::vector<char*> argv = {path.data(), const_cast<char*>("-i"), const_cast<char*>("-f"),
                               from.data(), const_cast<char*>("--"), rcpt.data(),
                               nullptr};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path.c_str(), actions.get(), attr.get(), argv.data(), environ);
    if (rc != 0) return {SubmitStatus::TempFail, errno_text(("cannot run " + path).c_str(), rc)};
    Child child(pid);
    in_child = UniqueFd();
    out_child = UniqueFd();

    const std::string data = to_lf(message);
    std::size_t written = 0;
    std::string words;  // what the child said
    bool out_open = true;
    bool in_open = true;
    if (data.empty()) {
      shutdown(in_ours.get(), SHUT_WR);
      in_open = false;
    }
    // Until it has the whole message and has closed its output (a sendmail may close its
    // stderr before it has read its stdin).
    while (out_open || in_open) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return timed_out(words);
      // A closed descriptor is left out of poll() with a negative fd.
      pollfd fds[2] = {{out_open ? out_ours.get() : -1, POLLIN, 0},
                       {in_open ? in_ours.get() : -1, POLLOUT, 0}};
      int n = ::poll(fds, 2, static_cast<int>(left.count()));
      if (n < 0) {
        if (errno == EINTR) continue;
        return {SubmitStatus::TempFail, errno_text("poll", errno)};
      }
      if (out_open && fds[0].revents != 0) {
        char buf[4096];
        ssize_t got = read(out_ours.get(), buf, sizeof buf);
        if (got > 0) {
          if (words.size() < kDetailCap) {
            words.append(buf, std::min<std::size_t>(static_cast<std::size_t>(got),
                                                    kDetailCap - words.size()));
          }
        } else if (got == 0 || errno != EINTR) {
          out_open = false;
        }
      }
      if (in_open && fds[1].revents != 0) {
        ssize_t sent = send(in_ours.get(), data.data() + written, data.size() - written,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) written += static_cast<std::size_t>(sent);
        if (sent < 0 && errno != EINTR && errno != EAGAIN) {
          // The child stopped reading (EPIPE: it exited); its status says why.
          in_open = false;
        } else if (written == data.size()) {
          shutdown(in_ours.get(), SHUT_WR);
          in_open = false;
        }
      }
    }
    // It has the message and its output is closed: wait for it to end, within the deadline.
    for (;;) {
      if (auto status = child.poll()) return outcome(*status, written == data.size(), words);
      if (Clock::now() >= deadline) return timed_out(words);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  SubmitOutcome timed_out(const std::string& words) const {
    std::string d = config_.sendmail_path.string() + " timed out after " +
                    std::to_string(config_.timeout.count()) + "s";
    if (!words.empty()) d += ": " + trimmed(words);
    return {SubmitStatus::TempFail, d};
  }

  SubmitOutcome outcome(int status, bool all_written, const std::string& words) const {
    std::string said = trimmed(words);
    auto with_words = [&said](std::string d) { return said.empty() ? d : d + ": " + said; };
    if (WIFSIGNALED(status)) {
      return {SubmitStatus::TempFail,
              with_words(config_.sendmail_path.string() + " killed by signal " +
                         std::to_string(WTERMSIG(status)))};
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
    if (code == 0) {
      // Exit 0 before reading the whole message would be a broken sendmail; do not trust it.
      if (!all_written) {
        return {SubmitStatus::TempFail,
                with_words("sendmail exited 0 before reading the whole message")};
      }
      return {SubmitStatus::Sent, said};
    }
    std::string d = with_words(config_.sendmail_path.string() + " exited " + std::to_string(code));
    // sysexits.h: EX_TEMPFAIL asks to try again later; every other code is final.
    return {code == EX_TEMPFAIL ? SubmitStatus::TempFail : SubmitStatus::PermFail, d};
  }

  config::SubmitConfig config_;
};

// ---------------------------------------------------------------- SMTP (libcurl)

using curl::SlistPtr;

struct Upload {
  std::string_view data;
  std::size_t pos = 0;
};

// CURLOPT_READFUNCTION: C callback, no exceptions can leave it (it only copies bytes).
extern "C" size_t read_upload(char* buf, size_t size, size_t nitems, void* user) noexcept {
  auto* u = static_cast<Upload*>(user);
  std::size_t n = std::min(size * nitems, u->data.size() - u->pos);
  std::memcpy(buf, u->data.data() + u->pos, n);
  u->pos += n;
  return n;
}

class SmtpSubmitter final : public Submitter {
 public:
  explicit SmtpSubmitter(config::SubmitConfig config) : config_(std::move(config)) {}

  SubmitOutcome submit(std::string_view envelope_from, std::string_view recipient,
                       std::string_view message) override {
    curl::EasyPtr curl = curl::new_easy();
    if (!curl) return {SubmitStatus::TempFail, "curl_easy_init failed"};
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string from = "<" + std::string(envelope_from) + ">";
    std::string rcpt = "<" + std::string(recipient) + ">";
    SlistPtr rcpts(curl_slist_append(nullptr, rcpt.c_str()));
    if (!rcpts) return {SubmitStatus::TempFail, "out of memory"};
    Upload upload{message};
    curl_easy_setopt(c, CURLOPT_URL, config_.smtp_url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts.get());
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &read_upload);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(config_.timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(std::min<std::int64_t>(config_.timeout.count(), 30)));
    CURLcode rc = curl_easy_perform(c);
    long reply = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) return {SubmitStatus::Sent, std::to_string(reply)};
    detail = config_.smtp_url + ": " + detail;
    // RFC 5321 §4.2.1: 5yz permanent, 4yz transient; no reply at all (connect failure,
    // timeout, a dropped connection) is transient too.
    if (reply >= 500 && reply < 600) return {SubmitStatus::PermFail, detail};
    return {SubmitStatus::TempFail, detail};
  }

 private:
  config::SubmitConfig config_;
};

}  // namespace

std::unique_ptr<Submitter> make_submitter(const config::SubmitConfig& config) {
  if (config.method == config::SubmitMethod::Smtp) return std::make_unique<SmtpSubmitter>(config);
  return std::make_unique<SendmailSubmitter>(config);
}

}  // namespace mailreport::outbound
