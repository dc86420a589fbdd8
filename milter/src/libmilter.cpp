// The libmilter wrapper: registration, the listening socket, negotiation and the callback
// trampolines into Session (see libmilter.hpp). libmilter's headers are included here only.
#include "mailreport/milter/libmilter.hpp"
#include "mailreport/util/privileges.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <libmilter/mfapi.h>

namespace mailreport::milter {

namespace {

std::atomic<Libmilter*> g_instance{nullptr};
std::atomic<std::uint64_t> g_connections{0};

// The filter name libmilter logs with; smfi_register keeps the pointer.
char g_name[] = "mailreport";

// Macros asked for per stage (smfi_setsymlist).
char g_connect_macros[] = "j {daemon_name}";
char g_mail_macros[] = "i {auth_authen}";
char g_eom_macros[] = "i";

constexpr unsigned long kActions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;

// Steps whose callbacks never answer anything but "continue" (see session.hpp).
constexpr unsigned long kNoReply = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                                   SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

Error sys_error(const std::string& what) {
  return make_error(ErrorCode::Io, what + ": " + std::strerror(errno));
}

Status check(int rc, const char* call) {
  if (rc == MI_SUCCESS) return {};
  return make_error(ErrorCode::Io, std::string(call) + " failed");
}

class CtxActions final : public Actions {
 public:
  explicit CtxActions(SMFICTX* ctx) : ctx_(ctx) {}

  Status add_header(std::string_view name, std::string_view value) override {
    std::string n(name), v(value);
    return check(smfi_addheader(ctx_, n.data(), v.data()), "smfi_addheader");
  }
  Status insert_header(int index, std::string_view name, std::string_view value) override {
    std::string n(name), v(value);
    return check(smfi_insheader(ctx_, index, n.data(), v.data()), "smfi_insheader");
  }
  Status change_header(std::string_view name, int index, std::string_view value) override {
    std::string n(name), v(value);
    // A null value deletes the field (smfi_chgheader(3)).
    return check(smfi_chgheader(ctx_, n.data(), index, value.empty() ? nullptr : v.data()),
                 "smfi_chgheader");
  }
  Status quarantine(std::string_view reason) override {
    std::string r(reason);
    return check(smfi_quarantine(ctx_, r.data()), "smfi_quarantine");
  }
  Status set_reply(std::string_view code, std::string_view xcode, std::string_view text) override {
    std::string c(code), x(xcode), t;
    // smfi_setreply(3): the text is a format string for the MTA; CR and LF are not allowed.
    for (char ch : text) {
      if (ch == '%')
        t += "%%";
      else if (ch == '\r' || ch == '\n')
        t += ' ';
      else
        t += ch;
    }
    return check(smfi_setreply(ctx_, c.data(), x.data(), t.data()), "smfi_setreply");
  }

 private:
  SMFICTX* ctx_;
};

class CtxMacros final : public Macros {
 public:
  explicit CtxMacros(SMFICTX* ctx) : ctx_(ctx) {}
  std::optional<std::string> get(std::string_view name) const override {
    std::string n(name);
    const char* v = smfi_getsymval(ctx_, n.data());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

 private:
  SMFICTX* ctx_;
};

sfsistat to_sfsistat(Decision d) {
  switch (d) {
    case Decision::Continue: return SMFIS_CONTINUE;
    case Decision::Accept: return SMFIS_ACCEPT;
    case Decision::Reject: return SMFIS_REJECT;
    case Decision::TempFail: return SMFIS_TEMPFAIL;
    case Decision::Discard: return SMFIS_DISCARD;
  }
  return SMFIS_TEMPFAIL;
}

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa == nullptr) return "";
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf) == nullptr) return "";
    return buf;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf) == nullptr) return "";
    return buf;
  }
  return "";  // AF_UNIX or unknown: a local client
}

// A socket file left by a previous run may go; one a live process answers on may not.
Status check_stale_socket(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(ErrorCode::Io, path.string() + " exists and is not a socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket(AF_UNIX)");
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (live) {
    return make_error(ErrorCode::Io,
                      path.string() + ": another process is listening on this socket");
  }
  return {};
}

// libmilter keeps its listening socket to itself: find it among our descriptors (the one
// listening socket of this process; for a unix socket, the one bound to that path).
struct Listener {
  int fd = -1;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

std::optional<Listener> find_listener(const std::filesystem::path& unix_path) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening) {
      continue;
    }
    Listener l;
    l.fd = fd;
    l.len = sizeof l.addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&l.addr), &l.len) != 0) continue;
    if (l.addr.ss_family == AF_UNIX) {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&l.addr);
      if (!unix_path.empty() && unix_path == un->sun_path) return l;
    } else if (unix_path.empty() && (l.addr.ss_family == AF_INET || l.addr.ss_family == AF_INET6)) {
      // A listener on every address is reached through loopback.
      if (l.addr.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&l.addr);
        if (in->sin_addr.s_addr == htonl(INADDR_ANY)) in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&l.addr);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) in6->sin6_addr = in6addr_loopback;
      }
      return l;
    }
  }
  return std::nullopt;
}

}  // namespace

// One MTA connection: its Session and what libmilter needs to answer for it.
struct Connection {
  explicit Connection(SMFICTX* ctx) : actions(ctx) {}
  CtxActions actions;
  std::unique_ptr<Session> session;
  std::string id;
  unsigned long no_reply = 0;  // the SMFIP_NR_* steps negotiated
  bool failed = false;         // an exception in a step without reply: 451 at end of message
};

struct Libmilter::Callbacks {
  static Libmilter& self() { return *g_instance.load(std::memory_order_acquire); }

  static Connection* connection(SMFICTX* ctx) {
    return static_cast<Connection*>(smfi_getpriv(ctx));
  }

  // The connection of ctx, made (with its session) on the first callback.
  static Connection& ensure(SMFICTX* ctx, bool leading_space = false, unsigned long no_reply = 0) {
    if (Connection* c = connection(ctx)) return *c;
    Libmilter& m = self();
    auto c = std::make_unique<Connection>(ctx);
    c->id = "m" + std::to_string(g_connections.fetch_add(1) + 1);
    c->no_reply = no_reply;
    SessionOptions o;
    o.id = c->id;
    o.header_leading_space = leading_space;
    c->session = m.factory_.create(c->actions, std::move(o));
    if (smfi_setpriv(ctx, c.get()) != MI_SUCCESS) throw std::runtime_error("smfi_setpriv failed");
    {
      std::lock_guard lock(m.mu_);
      ++m.sessions_;
    }
    return *c.release();
  }

  static void release(SMFICTX* ctx) {
    Connection* c = connection(ctx);
    if (c == nullptr) return;
    smfi_setpriv(ctx, nullptr);
    delete c;  // NOLINT(cppcoreguidelines-owning-memory): owned through libmilter's priv
    Libmilter& m = self();
    {
      std::lock_guard lock(m.mu_);
      --m.sessions_;
    }
    m.idle_.notify_all();
  }

  // Runs one step; `nr_bit` is the step's SMFIP_NR_* flag (0 at end of message).
  template <class F>
  static sfsistat step(SMFICTX* ctx, const char* name, unsigned long nr_bit, F&& f) noexcept {
    Connection* c = nullptr;
    try {
      c = &ensure(ctx);
      const Decision d = f(*c);
      if (nr_bit != 0 && (c->no_reply & nr_bit) != 0) {
        if (d != Decision::Continue) {
          self().log_.error(c->id, std::string(name) + ": the session answered " + to_string(d) +
                                       " in a step negotiated without reply; ignored");
        }
        return SMFIS_NOREPLY;
      }
      return to_sfsistat(d);
    } catch (const std::exception& e) {
      return failure(ctx, c, name, e.what(), nr_bit);
    } catch (...) {
      return failure(ctx, c, name, "unknown exception", nr_bit);
    }
  }

  static sfsistat failure(SMFICTX* ctx, Connection* c, const char* name, const char* what,
                          unsigned long nr_bit) noexcept {
    try {
      self().log_.error(c ? c->id : "milter", std::string(name) + " failed: " + what);
    } catch (...) {
    }
    if (c == nullptr) return SMFIS_TEMPFAIL;
    if (nr_bit != 0 && (c->no_reply & nr_bit) != 0) {
      c->failed = true;  // answered at end of message
      return SMFIS_NOREPLY;
    }
    char code[] = "451", xcode[] = "4.3.0", text[] = "Temporary failure in the mail filter";
    smfi_setreply(ctx, code, xcode, text);
    return SMFIS_TEMPFAIL;
  }

  static std::vector<std::string> args(char** argv) {
    std::vector<std::string> out;
    for (char** p = argv; p != nullptr && *p != nullptr; ++p) out.emplace_back(*p);
    return out;
  }

  static sfsistat negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long,
                            unsigned long, unsigned long* pf0, unsigned long* pf1,
                            unsigned long* pf2, unsigned long* pf3) noexcept {
    try {
      *pf0 = f0 & kActions;
      if ((f0 & SMFIF_SETSYMLIST) != 0) {
        *pf0 |= SMFIF_SETSYMLIST;
        smfi_setsymlist(ctx, SMFIM_CONNECT, g_connect_macros);
        smfi_setsymlist(ctx, SMFIM_ENVFROM, g_mail_macros);
        smfi_setsymlist(ctx, SMFIM_EOM, g_eom_macros);
      }
      // libmilter offers the SMFIP_NR_* bits even to MTAs without them (it fakes them).
      // SMFIP_NOEOH: end of headers is no event we need (Session::body and Session::eom start
      // DKIM when eoh() was not called), and every command costs libmilter a poll and reads.
      *pf1 = f1 & (SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC | kNoReply);
      *pf2 = 0;
      *pf3 = 0;
      Connection& c = ensure(ctx, (*pf1 & SMFIP_HDR_LEADSPC) != 0, *pf1 & kNoReply);
      if ((*pf0 & kActions) != kActions) {
        self().log_.warning(c.id, "the MTA does not offer every action we use (offered " +
                                      std::to_string(f0) +
                                      "): forged Authentication-Results may stay, or "
                                      "quarantine fail");
      }
      return SMFIS_CONTINUE;
    } catch (const std::exception& e) {
      return failure(ctx, connection(ctx), "negotiate", e.what(), 0);
    } catch (...) {
      return failure(ctx, connection(ctx), "negotiate", "unknown exception", 0);
    }
  }

  static sfsistat connect(SMFICTX* ctx, char* host, _SOCK_ADDR* addr) noexcept {
    return step(ctx, "connect", SMFIP_NR_CONN, [&](Connection& c) {
      return c.session->connect(host ? host : "", address_text(addr), CtxMacros(ctx));
    });
  }
  static sfsistat helo(SMFICTX* ctx, char* name) noexcept {
    return step(ctx, "helo", SMFIP_NR_HELO,
                [&](Connection& c) { return c.session->helo(name ? name : ""); });
  }
  static sfsistat envfrom(SMFICTX* ctx, char** argv) noexcept {
    return step(ctx, "envfrom", SMFIP_NR_MAIL, [&](Connection& c) {
      c.failed = false;
      return c.session->envfrom(args(argv), CtxMacros(ctx));
    });
  }
  static sfsistat envrcpt(SMFICTX* ctx, char** argv) noexcept {
    return step(ctx, "envrcpt", SMFIP_NR_RCPT,
                [&](Connection& c) { return c.session->envrcpt(args(argv)); });
  }
  static sfsistat header(SMFICTX* ctx, char* name, char* value) noexcept {
    return step(ctx, "header", SMFIP_NR_HDR, [&](Connection& c) {
      return c.session->header(name ? name : "", value ? value : "");
    });
  }
  static sfsistat eoh(SMFICTX* ctx) noexcept {
    return step(ctx, "eoh", SMFIP_NR_EOH, [&](Connection& c) { return c.session->eoh(); });
  }
  static sfsistat body(SMFICTX* ctx, unsigned char* data, size_t len) noexcept {
    return step(ctx, "body", SMFIP_NR_BODY, [&](Connection& c) {
      return c.session->body({reinterpret_cast<const char*>(data), len});
    });
  }
  static sfsistat eom(SMFICTX* ctx) noexcept {
    return step(ctx, "eom", 0, [&](Connection& c) {
      if (std::exchange(c.failed, false)) {
        c.session->abort();
        throw std::runtime_error("an earlier step of this message failed");
      }
      return c.session->eom(CtxMacros(ctx));
    });
  }
  static sfsistat abort(SMFICTX* ctx) noexcept {
    try {
      if (Connection* c = connection(ctx)) {
        c->failed = false;
        c->session->abort();
      }
    } catch (...) {
    }
    return SMFIS_CONTINUE;
  }
  static sfsistat close(SMFICTX* ctx) noexcept {
    try {
      if (Connection* c = connection(ctx)) c->session->close();
    } catch (...) {
    }
    release(ctx);
    return SMFIS_CONTINUE;
  }
};

Libmilter::Libmilter(SessionFactory& factory, Logger& log) : factory_(factory), log_(log) {
  Libmilter* expected = nullptr;
  if (!g_instance.compare_exchange_strong(expected, this)) {
    throw std::logic_error("libmilter is a process singleton: one Libmilter at a time");
  }
}

Libmilter::~Libmilter() {
  // Sessions still open would call into a dead object: the daemon waits (wait_idle) or exits
  // without destroying it.
  g_instance.store(nullptr);
}

Status Libmilter::open(const ListenOptions& options) {
  if (opened_) return make_error(ErrorCode::Invalid, "the milter socket is already open");
  smfiDesc desc{};
  desc.xxfi_name = g_name;
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = kActions;
  desc.xxfi_connect = &Callbacks::connect;
  desc.xxfi_helo = &Callbacks::helo;
  desc.xxfi_envfrom = &Callbacks::envfrom;
  desc.xxfi_envrcpt = &Callbacks::envrcpt;
  desc.xxfi_header = &Callbacks::header;
  desc.xxfi_eoh = &Callbacks::eoh;
  desc.xxfi_body = &Callbacks::body;
  desc.xxfi_eom = &Callbacks::eom;
  desc.xxfi_abort = &Callbacks::abort;
  desc.xxfi_close = &Callbacks::close;
  desc.xxfi_unknown = nullptr;
  desc.xxfi_data = nullptr;
  desc.xxfi_negotiate = &Callbacks::negotiate;
  if (smfi_register(desc) != MI_SUCCESS) {
    return make_error(ErrorCode::Invalid, "smfi_register failed");
  }
  std::string conn = options.socket;
  if (smfi_setconn(conn.data()) != MI_SUCCESS) {
    return make_error(ErrorCode::Invalid, "smfi_setconn(" + options.socket + ") failed");
  }
  smfi_settimeout(static_cast<int>(options.timeout.count()));

  if (!options.unix_path.empty()) {
    if (auto st = check_stale_socket(options.unix_path); !st) return st;
  }
  // Created with no permission for others; the configured mode follows at once.
  const mode_t old_mask = ::umask(0177);
  const int rc = smfi_opensocket(true);
  ::umask(old_mask);
  if (rc != MI_SUCCESS) {
    return make_error(ErrorCode::Io, "cannot listen on " + options.socket +
                                         " (libmilter logs why to syslog: address in use, "
                                         "missing directory, permissions)");
  }
  opened_ = true;

  if (!options.unix_path.empty()) {
    const std::string p = options.unix_path.string();
    if (::chmod(p.c_str(), options.mode) != 0) return sys_error("chmod " + p);
    if (!options.owner.empty() || !options.group.empty()) {
      if (::geteuid() == 0) {
        if (auto st = chown_by_name(p, options.owner, options.group, "milter.socket-owner",
                                    "milter.socket-group");
            !st) {
          return st;
        }
      } else {
        log_.warning("milter", "not running as root: " + p + " keeps its owner and group");
      }
    }
  }
  auto listener = find_listener(options.unix_path);
  if (!listener) {
    log_.warning("milter",
                 "could not find libmilter's listening socket: no TCP_NODELAY, and "
                 "stopping may take up to 5 s");
  } else {
    wake_addr_.assign(reinterpret_cast<const char*>(&listener->addr), listener->len);
    if (options.unix_path.empty()) {
      int one = 1;
      if (::setsockopt(listener->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        log_.warning("milter", std::string("TCP_NODELAY: ") + std::strerror(errno) +
                                   ": replies at end of message may wait for delayed ACKs");
      }
    }
  }
  log_.info("milter", "listening on " + options.socket);
  return {};
}

Status Libmilter::run() {
  if (!opened_) return make_error(ErrorCode::Invalid, "open() the socket first");
  if (smfi_main() != MI_SUCCESS) return make_error(ErrorCode::Io, "smfi_main failed");
  return {};
}

void Libmilter::stop() {
  // libmilter's listener holds a lock while it waits in select() for up to 5 s, and
  // smfi_stop() needs that lock to close the socket: a connection of our own wakes it.
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    smfi_stop();
    done = true;
  });
  while (!done && !wake_addr_.empty()) {
    sockaddr_storage ss{};
    std::memcpy(&ss, wake_addr_.data(), std::min(wake_addr_.size(), sizeof ss));
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      (void)::connect(fd, reinterpret_cast<const sockaddr*>(&ss),
                      static_cast<socklen_t>(wake_addr_.size()));
      ::close(fd);
    }
    for (int i = 0; i < 20 && !done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  stopper.join();
}

bool Libmilter::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, timeout, [&] { return sessions_ == 0; });
}

std::size_t Libmilter::open_sessions() const {
  std::lock_guard lock(mu_);
  return sessions_;
}

}  // namespace mailreport::milter
