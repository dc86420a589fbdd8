// The MTA side of the milter protocol, version 6 (see milter_client.hpp). Packets are a 32-bit
// length in network order (command byte included), the command byte, then the data; strings
// are NUL-terminated. Command and flag values are libmilter's (<libmilter/mfdef.h>).
#include "milter_client.hpp"

#include <arpa/inet.h>
#include <libmilter/mfdef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailreport::test {

namespace {

// What a filter may send at most (1 MiB, the largest SMFIP_MDS_* size, plus the header).
constexpr std::size_t kMaxPacket = (1u << 20) + 16;

Error io_error(const std::string& what) {
  int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK) return make_error(ErrorCode::Io, what + ": timed out");
  return make_error(ErrorCode::Io, what + ": " + std::strerror(e));
}

Error protocol_error(const std::string& what) {
  return make_error(ErrorCode::Invalid, "milter protocol: " + what);
}

void put_u32(std::string& out, std::uint32_t v) {
  v = htonl(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}

std::uint32_t get_u32(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, s.data() + at, 4);
  return ntohl(v);
}

void put_str(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

// The NUL-terminated strings of a packet's data.
std::vector<std::string> strings_of(std::string_view data) {
  std::vector<std::string> out;
  while (!data.empty()) {
    auto nul = data.find('\0');
    out.emplace_back(data.substr(0, nul));
    if (nul == std::string_view::npos) break;
    data.remove_prefix(nul + 1);
  }
  return out;
}

std::optional<MilterAction> action_of(char c) {
  switch (c) {
    case SMFIR_CONTINUE: return MilterAction::Continue;
    case SMFIR_ACCEPT: return MilterAction::Accept;
    case SMFIR_REJECT: return MilterAction::Reject;
    case SMFIR_TEMPFAIL: return MilterAction::TempFail;
    case SMFIR_DISCARD: return MilterAction::Discard;
    case SMFIR_REPLYCODE: return MilterAction::ReplyCode;
    case SMFIR_SKIP: return MilterAction::Skip;
    case SMFIR_CONN_FAIL: return MilterAction::ConnFail;
    case SMFIR_SHUTDOWN: return MilterAction::Shutdown;
    default: return std::nullopt;
  }
}

std::optional<MilterModification> modification_of(char c, std::string_view data) {
  using Kind = MilterModification::Kind;
  MilterModification m;
  auto with_index = [&]() -> bool {
    if (data.size() < 4) return false;
    m.index = get_u32(data, 0);
    data.remove_prefix(4);
    return true;
  };
  switch (c) {
    case SMFIR_ADDHEADER: m.kind = Kind::AddHeader; break;
    case SMFIR_INSHEADER:
      m.kind = Kind::InsertHeader;
      if (!with_index()) return std::nullopt;
      break;
    case SMFIR_CHGHEADER:
      m.kind = Kind::ChangeHeader;
      if (!with_index()) return std::nullopt;
      break;
    case SMFIR_QUARANTINE: m.kind = Kind::Quarantine; break;
    case SMFIR_ADDRCPT:
    case SMFIR_ADDRCPT_PAR: m.kind = Kind::AddRcpt; break;
    case SMFIR_DELRCPT: m.kind = Kind::DelRcpt; break;
    case SMFIR_CHGFROM: m.kind = Kind::ChangeFrom; break;
    case SMFIR_REPLBODY:
      m.kind = Kind::ReplaceBody;
      m.value = std::string(data);
      return m;
    default: return std::nullopt;
  }
  auto s = strings_of(data);
  switch (m.kind) {
    case Kind::AddHeader:
    case Kind::InsertHeader:
    case Kind::ChangeHeader:
      if (s.empty()) return std::nullopt;
      m.name = s[0];
      m.value = s.size() > 1 ? s[1] : "";
      break;
    default:
      m.value = s.empty() ? "" : s[0];
      m.name = s.size() > 1 ? s[1] : "";  // ESMTP arguments of '2' and 'e'
      break;
  }
  return m;
}

// "unix:/p", "local:/p", "/p", "inet:PORT@HOST", "inet6:PORT@HOST".
Result<UniqueFd> open_socket(std::string_view address) {
  auto colon = address.find(':');
  std::string_view scheme = colon == std::string_view::npos ? "unix" : address.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? address : address.substr(colon + 1);
  if (scheme == "unix" || scheme == "local") {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (rest.size() >= sizeof(sa.sun_path)) {
      return make_error(ErrorCode::Invalid, "socket path too long: " + std::string(rest));
    }
    std::memcpy(sa.sun_path, rest.data(), rest.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return io_error("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return io_error("connect " + std::string(rest));
    }
    return fd;
  }
  if (scheme != "inet" && scheme != "inet6") {
    return make_error(ErrorCode::Invalid, "unknown milter address " + std::string(address));
  }
  auto at = rest.find('@');
  std::string port(rest.substr(0, at));
  std::string host = at == std::string_view::npos ? "" : std::string(rest.substr(at + 1));
  if (host.empty() || host == "localhost") host = scheme == "inet6" ? "::1" : "127.0.0.1";
  int p = std::atoi(port.c_str());
  if (p <= 0 || p > 65535)
    return make_error(ErrorCode::Invalid, "bad port in " + std::string(address));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (scheme == "inet6") {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<std::uint16_t>(p));
    if (::inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr) != 1) {
      return make_error(ErrorCode::Invalid, "not an IPv6 address: " + host);
    }
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<std::uint16_t>(p));
    if (::inet_pton(AF_INET, host.c_str(), &sa->sin_addr) != 1) {
      return make_error(ErrorCode::Invalid, "not an IPv4 address: " + host);
    }
    len = sizeof(*sa);
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return io_error("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return io_error("connect " + std::string(address));
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

const char* to_string(MilterAction a) noexcept {
  switch (a) {
    case MilterAction::Continue: return "continue";
    case MilterAction::Accept: return "accept";
    case MilterAction::Reject: return "reject";
    case MilterAction::TempFail: return "tempfail";
    case MilterAction::Discard: return "discard";
    case MilterAction::ReplyCode: return "replycode";
    case MilterAction::Skip: return "skip";
    case MilterAction::ConnFail: return "connfail";
    case MilterAction::Shutdown: return "shutdown";
  }
  return "?";
}

std::vector<std::pair<std::string, std::string>> MilterResult::added_headers() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : modifications) {
    if (m.kind == MilterModification::Kind::AddHeader ||
        m.kind == MilterModification::Kind::InsertHeader) {
      out.emplace_back(m.name, m.value);
    }
  }
  return out;
}

MilterMessage MilterMessage::from_rfc5322(std::string_view raw) {
  MilterMessage m;
  m.headers.clear();
  std::size_t pos = 0;
  auto next_line = [&](std::string_view& line) -> bool {
    if (pos >= raw.size()) return false;
    auto nl = raw.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? raw.size() : nl;
    line = raw.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl == std::string_view::npos ? raw.size() : nl + 1;
    return true;
  };
  std::string_view line;
  while (next_line(line)) {
    if (line.empty()) break;  // end of the header section
    if ((line.front() == ' ' || line.front() == '\t') && !m.headers.empty()) {
      m.headers.back().second += "\n";  // folded: MTAs hand the fold to milters as LF
      m.headers.back().second += line;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    m.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  // The body with CRLF line ends, as the MTA sends it.
  std::string_view body = pos < raw.size() ? raw.substr(pos) : std::string_view();
  m.body.reserve(body.size() + body.size() / 32);
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) m.body.push_back('\r');
    m.body.push_back(body[i]);
  }
  return m;
}

Result<MilterClient> MilterClient::connect(std::string_view address,
                                           std::chrono::milliseconds timeout) {
  auto fd = open_socket(address);
  if (!fd) return std::move(fd).error();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return MilterClient(std::move(*fd));
}

void MilterClient::put(char command, std::string_view data) {
  put_u32(out_, static_cast<std::uint32_t>(data.size() + 1));
  out_.push_back(command);
  out_.append(data);
}

void MilterClient::put_macros(char command, const MilterMacros& macros) {
  if (macros.empty()) return;
  std::string data(1, command);
  for (const auto& [name, value] : macros) {
    put_str(data, name);
    put_str(data, value);
  }
  put(SMFIC_MACRO, data);
}

Status MilterClient::flush() {
  std::size_t done = 0;
  while (done < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write to filter");
    }
    done += static_cast<std::size_t>(n);
  }
  out_.clear();
  return {};
}

Result<std::pair<char, std::string>> MilterClient::read_packet() {
  if (auto st = flush(); !st) return std::move(st).error();
  auto fill = [this](std::size_t need) -> Status {
    while (in_.size() - in_pos_ < need) {
      if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
      }
      char buf[16384];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("read from filter");
      }
      if (n == 0) return make_error(ErrorCode::Io, "the filter closed the connection");
      in_.append(buf, static_cast<std::size_t>(n));
    }
    return {};
  };
  if (auto st = fill(4); !st) return std::move(st).error();
  std::uint32_t len = get_u32(in_, in_pos_);
  if (len == 0 || len > kMaxPacket) {
    return protocol_error("packet length " + std::to_string(len));
  }
  if (auto st = fill(4 + len); !st) return std::move(st).error();
  char command = in_[in_pos_ + 4];
  std::string data = in_.substr(in_pos_ + 5, len - 1);
  in_pos_ += 4 + len;
  return std::pair<char, std::string>(command, std::move(data));
}

Result<MilterReply> MilterClient::read_reply(char command, std::vector<MilterModification>* mods) {
  for (;;) {
    auto packet = read_packet();
    if (!packet) return std::move(packet).error();
    auto& [c, data] = *packet;
    if (c == SMFIR_PROGRESS) continue;
    if (auto action = action_of(c)) {
      MilterReply r;
      r.action = *action;
      r.command = command;
      if (*action == MilterAction::ReplyCode) {
        auto s = strings_of(data);
        r.text = s.empty() ? "" : s[0];
      }
      return r;
    }
    auto mod = modification_of(c, data);
    if (!mod) return protocol_error(std::string("unknown reply '") + c + "'");
    if (mods == nullptr) {
      return protocol_error(std::string("modification '") + c + "' before end of message");
    }
    mods->push_back(std::move(*mod));
  }
}

Result<MilterReply> MilterClient::step(char command, std::string_view data,
                                       std::uint32_t no_reply) {
  put(command, data);
  if (protocol_ & no_reply) return MilterReply{MilterAction::Continue, {}, command};
  return read_reply(command);
}

Status MilterClient::negotiate(std::uint32_t actions, std::uint32_t steps) {
  std::string data;
  put_u32(data, SMFI_PROT_VERSION);
  put_u32(data, actions);
  put_u32(data, steps);
  put(SMFIC_OPTNEG, data);
  auto packet = read_packet();
  if (!packet) return std::move(packet).error();
  if (packet->first != SMFIC_OPTNEG || packet->second.size() < MILTER_OPTLEN) {
    return protocol_error(std::string("option negotiation answered with '") + packet->first + "'");
  }
  version_ = get_u32(packet->second, 0);
  actions_ = get_u32(packet->second, 4);
  protocol_ = get_u32(packet->second, 8);
  // The rest are SMFIR_SETSYMLIST macro lists; this client sends the macros it is given.
  if (version_ < 2 || version_ > SMFI_PROT_VERSION) {
    return protocol_error("filter speaks version " + std::to_string(version_));
  }
  if ((actions_ & ~actions) != 0 || (protocol_ & ~steps & ~SMFI_INTERNAL) != 0) {
    return protocol_error("filter asks for actions or steps that were not offered");
  }
  return {};
}

Result<MilterReply> MilterClient::open_session(const MilterSession& s) {
  if (!(protocol_ & SMFIP_NOCONNECT)) {
    put_macros(SMFIC_CONNECT, s.connect_macros);
    std::string data;
    put_str(data, s.client_name);
    in6_addr a6{};
    in_addr a4{};
    if (::inet_pton(AF_INET, s.client_addr.c_str(), &a4) == 1) {
      data.push_back(SMFIA_INET);
    } else if (::inet_pton(AF_INET6, s.client_addr.c_str(), &a6) == 1) {
      data.push_back(SMFIA_INET6);
    } else {
      data.push_back(SMFIA_UNKNOWN);
    }
    if (data.back() != SMFIA_UNKNOWN) {
      std::uint16_t port = htons(s.client_port);
      data.append(reinterpret_cast<const char*>(&port), 2);
      put_str(data, s.client_addr);
    }
    auto r = step(SMFIC_CONNECT, data, SMFIP_NR_CONN);
    if (!r || r->action != MilterAction::Continue) return r;
  }
  if (!(protocol_ & SMFIP_NOHELO)) {
    put_macros(SMFIC_HELO, s.helo_macros);
    std::string data;
    put_str(data, s.helo);
    return step(SMFIC_HELO, data, SMFIP_NR_HELO);
  }
  return MilterReply{MilterAction::Continue, {}, SMFIC_HELO};
}

Result<MilterResult> MilterClient::send_message(const MilterMessage& m) {
  MilterResult result;
  // A reply before the end of the message ends it; the MTA then tells the filter to forget it.
  auto ended = [&](MilterReply r) -> Result<MilterResult> {
    result.reply = std::move(r);
    put(SMFIC_ABORT);
    if (auto st = flush(); !st) return std::move(st).error();
    return std::move(result);
  };
  if (!(protocol_ & SMFIP_NOMAIL)) {
    put_macros(SMFIC_MAIL, m.mail_macros);
    std::string data;
    put_str(data, m.mail_from);
    for (const auto& a : m.mail_args) put_str(data, a);
    auto r = step(SMFIC_MAIL, data, SMFIP_NR_MAIL);
    if (!r) return std::move(r).error();
    if (r->action != MilterAction::Continue) return ended(std::move(*r));
  }
  if (!(protocol_ & SMFIP_NORCPT)) {
    std::optional<MilterReply> last_refusal;
    for (const auto& rcpt : m.rcpt_to) {
      put_macros(SMFIC_RCPT, m.rcpt_macros);
      std::string data;
      put_str(data, rcpt);
      auto r = step(SMFIC_RCPT, data, SMFIP_NR_RCPT);
      if (!r) return std::move(r).error();
      switch (r->action) {
        case MilterAction::Continue: break;
        case MilterAction::Reject:
        case MilterAction::TempFail:
        case MilterAction::ReplyCode:
          result.rejected_rcpts.push_back(rcpt);
          last_refusal = std::move(*r);
          break;
        default: return ended(std::move(*r));
      }
    }
    if (!m.rcpt_to.empty() && result.rejected_rcpts.size() == m.rcpt_to.size()) {
      return ended(std::move(*last_refusal));
    }
  }
  if (!(protocol_ & SMFIP_NODATA) && version_ >= 4) {
    auto r = step(SMFIC_DATA, {}, SMFIP_NR_DATA);
    if (!r) return std::move(r).error();
    if (r->action != MilterAction::Continue) return ended(std::move(*r));
  }
  if (!(protocol_ & SMFIP_NOHDRS)) {
    for (const auto& [name, value] : m.headers) {
      std::string data;
      put_str(data, name);
      // SMFIP_HDR_LEADSPC: the filter wants the value as it follows the colon.
      put_str(data, (protocol_ & SMFIP_HDR_LEADSPC) ? " " + value : value);
      auto r = step(SMFIC_HEADER, data, SMFIP_NR_HDR);
      if (!r) return std::move(r).error();
      if (r->action != MilterAction::Continue) return ended(std::move(*r));
    }
  }
  if (!(protocol_ & SMFIP_NOEOH)) {
    auto r = step(SMFIC_EOH, {}, SMFIP_NR_EOH);
    if (!r) return std::move(r).error();
    if (r->action != MilterAction::Continue) return ended(std::move(*r));
  }
  if (!(protocol_ & SMFIP_NOBODY)) {
    std::string_view body = m.body;
    while (!body.empty()) {
      std::string_view chunk = body.substr(0, MILTER_CHUNK_SIZE);
      body.remove_prefix(chunk.size());
      auto r = step(SMFIC_BODY, chunk, SMFIP_NR_BODY);
      if (!r) return std::move(r).error();
      if (r->action == MilterAction::Skip) break;
      if (r->action != MilterAction::Continue) return ended(std::move(*r));
    }
  }
  put_macros(SMFIC_BODYEOB, m.eom_macros);
  put(SMFIC_BODYEOB);
  auto r = read_reply(SMFIC_BODYEOB, &result.modifications);
  if (!r) return std::move(r).error();
  result.reply = std::move(*r);
  return result;
}

Status MilterClient::abort() {
  put(SMFIC_ABORT);
  return flush();
}

Status MilterClient::quit() {
  put(SMFIC_QUIT);
  return flush();
}

}  // namespace mailreport::test
