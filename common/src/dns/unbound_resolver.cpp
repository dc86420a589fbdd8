// dns: the libunbound-backed Resolver (the only file that includes <unbound.h>).
//
// Threading (checked against libunbound 1.17 libunbound.c): one ub_ctx is shared by every
// thread. The context runs in threaded-async mode (ub_ctx_async(ctx, 1)): ub_resolve_async()
// takes the context's locks and hands the query to libunbound's one background worker thread,
// which owns the shared cache and does all network I/O. Answers come back over a pipe
// (ub_fd()); our dispatcher thread polls it and calls ub_process(), which runs the callbacks.
// A synchronous ub_resolve() is thread-safe too, but it cannot be bounded in time and builds a
// whole worker (event base, outside network) per call; the async path gives us the per-query
// timeout: the asking thread waits on its own condition variable until the deadline, then
// ub_cancel()s. With threads, ub_cancel() returns UB_NOERROR only when the answer has not been
// delivered (the callback will then never run and libunbound frees the result), and UB_NOID
// once delivery has started (the callback has run or is running): then we wait for it, which is
// immediate. So the per-query state can live on the asking thread's stack.
//
// Local zones (unbound.conf(5) local-zone types): every local-data owner name gets a zone of its
// own, "transparent" (its data answers, another type of that name is NODATA, every other name
// goes upstream), or "static" under local_only (names below it are NXDOMAIN). local_nxdomain
// names are "static" zones (their local data answers, every other name below is NXDOMAIN).
// local_only adds "." as a "refuse" zone, so nothing reaches the iterator: REFUSED, reported as
// TempError "no upstream". All zones are declared as "local-zone:" options before the context
// is finalized: libunbound 1.17 computes the zones' parent links right when it builds them from
// its configuration, but a zone added afterwards with ub_ctx_zone_add() can hide an enclosing
// "." zone from names sorting after it (seen in testing). The data lines are added afterwards
// with ub_ctx_data_add(), which reports a bad line at once.
//
// CNAMEs in local data are not chased by libunbound (its worker answers the CNAME alone), so
// query() follows them itself (bounded); the answer then carries the final target's packet.
//
// Not done: DNSSEC trust anchors, DNS over TLS, EDNS client subnet.
#include <arpa/nameser.h>
#include <poll.h>
#include <resolv.h>
#include <sys/eventfd.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "mailreport/dns/resolver.hpp"
#include "mailreport/util/bytes.hpp"

namespace mailreport::dns {
namespace {

struct UbCtxDelete {
  void operator()(ub_ctx* c) const noexcept { ub_ctx_delete(c); }
};
using UbCtxPtr = std::unique_ptr<ub_ctx, UbCtxDelete>;
struct UbResultDelete {
  void operator()(ub_result* r) const noexcept { ub_resolve_free(r); }
};
using UbResultPtr = std::unique_ptr<ub_result, UbResultDelete>;

constexpr int kClassIn = 1;       // RFC 1035 §3.2.4
constexpr int kMaxCnameHops = 8;  // local CNAME chains we follow ourselves
constexpr std::size_t kMinCache = 64 * 1024;

// One outstanding query: filled by the callback on the dispatcher thread.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int err = 0;
  UbResultPtr result;
};

extern "C" {
// Runs on the dispatcher thread inside ub_process(). Nothing here throws past the C boundary.
static void on_ub_answer(void* arg, int err, ub_result* result) noexcept {
  UbResultPtr owned(result);
  auto* p = static_cast<Pending*>(arg);
  try {
    std::lock_guard lock(p->mu);
    p->err = err;
    p->result = std::move(owned);
    p->done = true;
    // Notify under the lock: the waiter may destroy *p as soon as it can take the lock.
    p->cv.notify_all();
  } catch (...) {  // std::mutex::lock failing: the waiter times out instead
  }
}
}

std::string strip_dot(std::string_view name) {
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  return std::string(name);
}

bool same_name(std::string_view a, std::string_view b) {
  auto norm = [](std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return s;
  };
  a = norm(a);
  b = norm(b);
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A zone name as unbound's "local-zone:" option wants it: lower case, one trailing dot, checked
// with libresolv's ns_name_pton (labels <= 63 octets, name <= 255). nullopt when it is not a
// domain name.
std::optional<std::string> zone_name(std::string_view name) {
  constexpr std::string_view kNotInAZoneName(" \t\r\n\"\0", 6);
  if (name.empty() || name.find_first_of(kNotInAZoneName) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string z(name);
  std::transform(z.begin(), z.end(), z.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (z.back() != '.') z += '.';
  unsigned char wire[NS_MAXCDNAME];
  if (::ns_name_pton(z.c_str(), wire, sizeof wire) < 0) return std::nullopt;
  return z;
}

// Whether zone name `name` is `zone` or below it (both as zone_name() returns them).
bool is_at_or_below(const std::string& name, const std::string& zone) {
  if (zone == ".") return true;
  if (name.size() < zone.size()) return false;
  if (name.compare(name.size() - zone.size(), zone.size(), zone) != 0) return false;
  return name.size() == zone.size() || name[name.size() - zone.size() - 1] == '.';
}

// The owner name of an unbound local-data line: its first field.
std::string owner_of(std::string_view line) {
  auto b = line.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = line.find_first_of(" \t", b);
  return std::string(line.substr(b, e == std::string_view::npos ? e : e - b));
}

// RCODE names of RFC 1035 §4.1.1 and RFC 6895 §2.3.
std::string rcode_name(int rcode) {
  switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "rcode " + std::to_string(rcode);
  }
}

class UnboundResolver final : public Resolver {
 public:
  UnboundResolver(UbCtxPtr ctx, UniqueFd stop, const ResolverOptions& options, Logger& log)
      : ctx_(std::move(ctx)),
        stop_(std::move(stop)),
        timeout_(options.timeout),
        local_only_(options.local_only),
        log_(log) {
    dispatcher_ = std::thread([this] { dispatch(); });
  }

  ~UnboundResolver() override {
    const std::uint64_t one = 1;
    if (::write(stop_.get(), &one, sizeof one) < 0) {
      // An eventfd write only fails on overflow; the dispatcher is then already awake.
    }
    if (dispatcher_.joinable()) dispatcher_.join();
    // ctx_ goes after the dispatcher: ub_ctx_delete stops the background worker and frees the
    // queries that were cancelled but not yet answered.
  }

  Answer query(std::string_view name, RType type) override {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + timeout_;
    Answer answer;
    std::string current(name);
    std::uint32_t chain_ttl = UINT32_MAX;
    for (int hop = 0;; ++hop) {
      Step step = ask(current, type, deadline);
      if (step.cname.empty()) {
        answer = std::move(step.answer);
        break;
      }
      // NOERROR holding only a CNAME (local data): follow it (RFC 1034 §3.6.2), bounded.
      chain_ttl = std::min(chain_ttl, step.answer.ttl);
      if (hop + 1 == kMaxCnameHops) {
        answer = Answer{};
        answer.why = "CNAME chain longer than " + std::to_string(kMaxCnameHops) + " at " +
                     strip_dot(step.cname);
        break;
      }
      current = std::move(step.cname);
    }
    if (answer.status == Status::Ok) answer.ttl = std::min(answer.ttl, chain_ttl);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::string line = strip_dot(name);
    line += ' ';
    line += to_string(type);
    line += ": ";
    line += to_string(answer.status);
    if (!answer.why.empty()) line += " (" + answer.why + ")";
    line += ", " + std::to_string(answer.rdata.size()) + " records, " + std::to_string(us) + " us";
    log_.debug("dns", line);
    return answer;
  }

 private:
  struct Step {
    Answer answer;
    std::string cname;  // set when the answer is a bare CNAME to follow
  };

  // One libunbound query, no CNAME following.
  Step ask(const std::string& name, RType type, std::chrono::steady_clock::time_point deadline) {
    Step s;
    Answer& a = s.answer;
    if (name.empty() || name.find('\0') != std::string::npos) {
      a.status = Status::NxDomain;
      a.why = "invalid domain name";
      return s;
    }
    Pending p;
    int id = 0;
    int rc = ub_resolve_async(ctx_.get(), name.c_str(), static_cast<int>(type), kClassIn, &p,
                              on_ub_answer, &id);
    if (rc != 0) {
      a.why = std::string("unbound: ") + ub_strerror(rc);
      return s;
    }
    std::unique_lock lock(p.mu);
    if (!p.cv.wait_until(lock, deadline, [&] { return p.done; })) {
      lock.unlock();
      if (ub_cancel(ctx_.get(), id) == UB_NOERROR) {
        // Cancelled before delivery: the callback never runs, p is ours alone.
        a.why = "timeout after " + std::to_string(timeout_.count()) + " ms";
        return s;
      }
      // Delivery already started on the dispatcher thread: the callback is about to finish.
      lock.lock();
      p.cv.wait(lock, [&] { return p.done; });
    }
    if (p.err == UB_SYNTAX) {
      // libunbound could not make a query of it (label over 63 octets, name over 255): no
      // such name can exist.
      a.status = Status::NxDomain;
      a.why = "invalid domain name";
      return s;
    }
    if (p.err != 0 || !p.result) {
      a.why = std::string("unbound: ") + ub_strerror(p.err);
      return s;
    }
    const ub_result& r = *p.result;
    s.answer = convert(r);
    if (s.answer.status == Status::NoData && r.canonname && r.qname &&
        !same_name(r.canonname, r.qname)) {
      s.cname = r.canonname;
      s.answer.ttl = static_cast<std::uint32_t>(std::max(0, r.ttl));
    }
    return s;
  }

  Answer convert(const ub_result& r) const {
    Answer a;
    a.secure = r.secure != 0;
    if (r.bogus) {
      a.why = std::string("DNSSEC bogus: ") + (r.why_bogus ? r.why_bogus : "");
      return a;
    }
    switch (r.rcode) {
      case 0: break;  // NOERROR
      case 3:         // NXDOMAIN (RFC 1035 §4.1.1)
        a.status = Status::NxDomain;
        break;
      case 5:  // REFUSED
        a.why = local_only_ ? "no upstream: name not in local data (local_only)" : "REFUSED";
        return a;
      default: a.why = rcode_name(r.rcode); return a;
    }
    if (r.answer_packet && r.answer_len > 0) {
      auto* p = static_cast<const std::uint8_t*>(r.answer_packet);
      a.packet.assign(p, p + r.answer_len);
    }
    if (a.status == Status::NxDomain) return a;
    if (r.havedata && r.data) {
      for (int i = 0; r.data[i]; ++i) {
        auto* d = reinterpret_cast<const std::uint8_t*>(r.data[i]);
        a.rdata.emplace_back(d, d + r.len[i]);
      }
      a.status = Status::Ok;
      a.ttl = static_cast<std::uint32_t>(std::max(0, r.ttl));
      return a;
    }
    a.status = Status::NoData;  // RFC 2308 §2.2: NOERROR without records of the type
    return a;
  }

  void dispatch() {
    pollfd fds[2] = {{ub_fd(ctx_.get()), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    for (;;) {
      int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        log_.error("dns", std::string("resolver dispatcher: poll: ") + std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) {
        int rc = ub_process(ctx_.get());
        if (rc != 0) {
          // The pipe to libunbound's worker is broken: every query now times out.
          log_.error("dns", std::string("resolver dispatcher: ") + ub_strerror(rc));
          return;
        }
      }
    }
  }

  UbCtxPtr ctx_;
  UniqueFd stop_;
  std::chrono::milliseconds timeout_;
  bool local_only_;
  Logger& log_;
  std::thread dispatcher_;
};

Error config_error(std::string what, std::string_view value, int rc) {
  return make_error(ErrorCode::Invalid, what + " \"" + std::string(value) +
                                            "\": unbound refuses it (" + ub_strerror(rc) + ")");
}

}  // namespace

const char* to_string(RType type) noexcept {
  switch (type) {
    case RType::A: return "A";
    case RType::NS: return "NS";
    case RType::CNAME: return "CNAME";
    case RType::SOA: return "SOA";
    case RType::PTR: return "PTR";
    case RType::MX: return "MX";
    case RType::TXT: return "TXT";
    case RType::AAAA: return "AAAA";
  }
  return "?";
}

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::Ok: return "ok";
    case Status::NoData: return "nodata";
    case Status::NxDomain: return "nxdomain";
    case Status::TempError: return "temperror";
  }
  return "?";
}

Result<std::shared_ptr<Resolver>> make_unbound_resolver(const ResolverOptions& options,
                                                        Logger& log) {
  UbCtxPtr ctx(ub_ctx_create());
  if (!ctx) return make_error(ErrorCode::Io, "unbound: cannot create a resolver context");
  int rc = ub_ctx_async(ctx.get(), 1);
  if (rc != 0) return config_error("async mode", "threads", rc);

  // Options first: adding a zone or data finalizes the context.
  std::size_t cache = std::max(options.cache_size, kMinCache);
  // unbound.conf(5) advises an rrset cache about twice the message cache. infra-cache-max-rtt:
  // no single upstream wait longer than our whole per-query budget, so unbound gives up on a
  // dead server (SERVFAIL) rather than only being cancelled by us.
  const std::pair<const char*, std::string> settings[] = {
      {"msg-cache-size:", std::to_string(cache / 3)},
      {"rrset-cache-size:", std::to_string(cache - cache / 3)},
      {"infra-cache-max-rtt:",
       std::to_string(std::clamp<std::int64_t>(options.timeout.count(), 1000, 120000))},
  };
  for (const auto& [opt, value] : settings) {
    rc = ub_ctx_set_option(ctx.get(), opt, value.c_str());
    if (rc != 0) return config_error(std::string("option ") + opt, value, rc);
  }

  // Local zones, before anything finalizes the context (see the top of this file).
  std::vector<std::string> nxdomain;
  for (const auto& name : options.local_nxdomain) {
    auto z = zone_name(name);
    if (!z) return config_error("dns.local-nxdomain entry", name, UB_SYNTAX);
    nxdomain.push_back(*z);
  }
  std::vector<std::pair<std::string, const char*>> zones;
  auto add_zone = [&](const std::string& z, const char* type) {
    for (const auto& have : zones) {
      if (have.first == z) return;
    }
    zones.emplace_back(z, type);
  };
  for (const auto& z : nxdomain) add_zone(z, "static");
  if (options.local_only) add_zone(".", "refuse");
  for (const auto& line : options.local_data) {
    auto owner = zone_name(owner_of(line));
    if (!owner) continue;  // ub_ctx_data_add below names the line
    if (options.local_only) {
      add_zone(*owner, "static");
    } else if (std::none_of(nxdomain.begin(), nxdomain.end(),
                            [&](const std::string& z) { return is_at_or_below(*owner, z); })) {
      add_zone(*owner, "transparent");
    }
  }
  for (const auto& [zone, type] : zones) {
    std::string value = zone + " " + type;
    rc = ub_ctx_set_option(ctx.get(), "local-zone:", value.c_str());
    if (rc != 0) return config_error("local zone", value, rc);
  }

  if (!options.local_only) {
    for (const auto& ns : options.nameservers) {
      rc = ub_ctx_set_fwd(ctx.get(), ns.c_str());  // "addr" or "addr@port"
      if (rc != 0) return config_error("dns.nameservers entry", ns, rc);
    }
    if (options.nameservers.empty()) {
      rc = ub_ctx_resolvconf(ctx.get(), nullptr);
      if (rc != 0) return config_error("system resolver list", "/etc/resolv.conf", rc);
    }
  }
  for (const auto& line : options.local_data) {
    rc = ub_ctx_data_add(ctx.get(), line.c_str());
    if (rc != 0) return config_error("dns.local-data line", line, rc);
  }

  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) {
    return make_error(ErrorCode::Io, std::string("resolver: eventfd: ") + std::strerror(errno));
  }
  return std::shared_ptr<Resolver>(
      std::make_shared<UnboundResolver>(std::move(ctx), std::move(stop), options, log));
}

}  // namespace mailreport::dns
