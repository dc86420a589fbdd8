// LMTP protocol engine: RFC 2033 (LMTP) over RFC 5321 syntax, with RFC 1870 SIZE, RFC 2034 /
// RFC 3463 enhanced status codes, RFC 2920 PIPELINING, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8.
// See session.hpp for what is and is not done.
#include "mailreport/lmtp/session.hpp"

#include "mailreport/util/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>
#include <utility>

namespace mailreport::lmtp {

namespace {

// RFC 5321 §4.5.3.1.3: a path is at most 256 octets; SMTPUTF8 addresses may be longer in
// bytes, so allow some room before calling an address a syntax error.
constexpr std::size_t kMaxAddress = 512;

char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_upper(x) == ascii_upper(y);
         });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Counts one LMTP message by outcome (docs/metrics.md); once per message, so the registry's
// look-up is no cost worth caching.
void count_message(std::string_view outcome) {
  Metrics::process()
      .counter("mailreport_lmtp_messages_total", "outcome", outcome)
      .fetch_add(1, std::memory_order_relaxed);
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

struct Path {
  std::string address;      // without brackets and source route; "" = null path
  std::string_view params;  // what follows the path
};

// RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">". The angle brackets may be missing
// (as Postfix smtpd tolerates); quoted local parts may hold '>' and spaces.
std::optional<Path> parse_path(std::string_view s) {
  Path p;
  std::string_view inner;
  if (!s.empty() && s.front() == '<') {
    std::size_t i = 1;
    bool quoted = false;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (quoted) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == '>') {
        break;
      } else if (c == '<') {
        return std::nullopt;
      }
    }
    if (i >= s.size()) return std::nullopt;
    inner = s.substr(1, i - 1);
    p.params = s.substr(i + 1);
    if (!p.params.empty() && p.params.front() != ' ') return std::nullopt;
  } else {
    std::size_t sp = s.find(' ');
    inner = s.substr(0, sp);
    p.params = sp == std::string_view::npos ? std::string_view{} : s.substr(sp);
    if (inner.empty()) return std::nullopt;
  }
  // RFC 5321 §4.1.2 / Appendix C: a source route ("@a,@b:") is accepted and ignored.
  if (!inner.empty() && inner.front() == '@') {
    std::size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    inner.remove_prefix(colon + 1);
    if (inner.empty()) return std::nullopt;
  }
  if (inner.size() > kMaxAddress || has_control(inner)) return std::nullopt;
  p.address = std::string(inner);
  return p;
}

struct Param {
  std::string keyword;  // upper-case
  std::optional<std::string_view> value;
};

// RFC 5321 §4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value], separated by spaces.
std::optional<std::vector<Param>> parse_params(std::string_view s) {
  std::vector<Param> out;
  while (true) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (s.empty()) return out;
    std::size_t sp = s.find(' ');
    std::string_view item = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp);
    Param p;
    std::size_t eq = item.find('=');
    std::string_view kw = item.substr(0, eq);
    if (kw.empty() || !std::isalnum(static_cast<unsigned char>(kw.front()))) return std::nullopt;
    for (char c : kw) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return std::nullopt;
    }
    p.keyword = upper(kw);
    if (eq != std::string_view::npos) {
      p.value = item.substr(eq + 1);
      // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under SMTPUTF8 (RFC 6531 §3.3).
      if (p.value->empty() || has_control(*p.value) ||
          p.value->find('=') != std::string_view::npos) {
        return std::nullopt;
      }
    }
    out.push_back(std::move(p));
  }
}

// RFC 1870 §3: size-value = 1*20DIGIT. Values past 2^64 count as "too big".
std::optional<std::uint64_t> parse_size_value(std::string_view v) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return UINT64_MAX;
    n = n * 10 + d;
  }
  return n;
}

bool one_of(std::string_view v, std::initializer_list<std::string_view> options) {
  return std::any_of(options.begin(), options.end(),
                     [&](std::string_view o) { return iequals(v, o); });
}

std::string join_recipients(const std::vector<std::string>& rcpts) {
  std::string out;
  for (const auto& r : rcpts) {
    if (!out.empty()) out += ',';
    out += '<' + r + '>';
  }
  return out;
}

}  // namespace

std::string Session::reply(int code, std::string_view enhanced, std::string_view text) {
  std::string out = std::to_string(code);
  out += ' ';
  if (!enhanced.empty()) {
    out += enhanced;
    out += ' ';
  }
  out += text;
  out += "\r\n";
  return out;
}

Session::Session(SessionOptions options, RecipientFilter accept_recipient,
                 ingest::Ingestor& ingestor, Logger& logger)
    : opt_(std::move(options)),
      accept_(std::move(accept_recipient)),
      ingestor_(ingestor),
      log_(logger),
      spool_(opt_.spool_dir, opt_.memory_spool) {}

void Session::say(int code, std::string_view enhanced, std::string_view text) {
  out_ += reply(code, enhanced, text);
}

std::string Session::take_output() {
  return std::exchange(out_, std::string{});
}

bool Session::idle() const noexcept {
  return phase_ == Phase::Command && in_pos_ == in_.size() && !discarding_command_;
}

void Session::greet() {
  // RFC 5321 §4.3.1 greeting; no enhanced code before LHLO (RFC 2034 §3).
  Metrics::process()
      .counter("mailreport_lmtp_sessions_total")
      .fetch_add(1, std::memory_order_relaxed);
  say(220, "", opt_.hostname + " LMTP mailreport ready");
}

void Session::timeout() {
  if (closed()) return;
  if (phase_ == Phase::Data) {
    log_.info(opt_.id, "timeout during DATA from=<" + tx_.mail_from + "> to=" +
                           join_recipients(tx_.rcpt_to) + ": message discarded, not acknowledged");
  }
  say(421, "4.4.2", opt_.hostname + " timeout, closing connection");
  phase_ = Phase::Closed;
  spool_.clear();
}

void Session::shutdown() {
  if (closed()) return;
  say(421, "4.3.2", opt_.hostname + " shutting down, try again later");
  phase_ = Phase::Closed;
  spool_.clear();
}

void Session::feed(std::string_view bytes) {
  if (closed()) return;
  in_.append(bytes);
  process();
}

void Session::process() {
  while (!closed()) {
    bool progressed = phase_ == Phase::Data ? process_data() : process_command_line();
    if (!progressed) break;
  }
  if (closed()) {
    in_.clear();
    in_pos_ = 0;
    return;
  }
  in_.erase(0, in_pos_);
  in_pos_ = 0;
}

bool Session::process_command_line() {
  std::string_view rest(in_.data() + in_pos_, in_.size() - in_pos_);
  std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    if (discarding_command_) {
      in_pos_ = in_.size();
    } else if (rest.size() > opt_.command_line_length + 1) {  // +1: a CR may still follow
      // Answer at once and skip to the end of the line, so that the buffer stays bounded.
      say(500, "5.5.2", "line too long");
      discarding_command_ = true;
      in_pos_ = in_.size();
    }
    return false;
  }
  std::string_view line = rest.substr(0, lf);
  in_pos_ += lf + 1;
  if (discarding_command_) {
    discarding_command_ = false;
    return true;
  }
  // RFC 5321 §2.3.8: lines end in CRLF; a bare LF is tolerated.
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > opt_.command_line_length) {
    say(500, "5.5.2", "line too long");
    return true;
  }
  handle_command(line);
  return true;
}

bool Session::process_data() {
  std::string_view rest(in_.data() + in_pos_, in_.size() - in_pos_);
  std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    if (data_.discarding_line) {
      in_pos_ = in_.size();
    } else if (rest.size() > opt_.line_length + 1) {
      data_.line_too_long = true;
      data_.discarding_line = true;
      spool_.clear();
      in_pos_ = in_.size();
    }
    return false;
  }
  std::string_view line = rest.substr(0, lf + 1);
  in_pos_ += lf + 1;
  if (data_.discarding_line) {
    data_.discarding_line = false;
    return true;
  }
  handle_data_line(line);
  return true;
}

void Session::handle_data_line(std::string_view line) {
  std::string_view content = line.substr(0, line.size() - 1);  // without LF
  if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
  // RFC 5321 §4.1.1.4: the mail data ends with a line holding a single ".".
  if (content == ".") {
    end_of_data();
    return;
  }
  if (data_.too_big || data_.line_too_long) return;  // consume until the dot, keep nothing
  if (content.size() > opt_.line_length) {
    data_.line_too_long = true;
    spool_.clear();
    return;
  }
  // RFC 5321 §4.5.2: a leading "." was doubled by the client; remove one.
  if (line.front() == '.') line.remove_prefix(1);
  if (spool_.size() + line.size() > opt_.message_size) {
    // RFC 1870 §6.3 / RFC 5321 §4.5.3.1.10: refuse after the data with 552; keep nothing.
    data_.too_big = true;
    spool_.clear();
    return;
  }
  spool_.append(line);
}

void Session::end_of_data() {
  phase_ = Phase::Command;
  const auto& rcpts = tx_.rcpt_to;
  std::string ctx = opt_.id + "." + std::to_string(++delivered_);
  std::string what = "from=<" + tx_.mail_from + "> to=" + join_recipients(rcpts);

  // RFC 2033 §4.2: after the final ".", one reply per successful RCPT, in RCPT order, even
  // when forward-paths repeat. The message is stored once, so every reply says the same.
  auto reply_each = [&](int code, std::string_view enh, std::string_view text) {
    for (const auto& r : rcpts) say(code, enh, "<" + r + "> " + std::string(text));
  };

  if (data_.too_big) {
    log_.info(ctx, what + " size>" + std::to_string(opt_.message_size) +
                       " outcome=rejected (message too big)");
    count_message("rejected");
    reply_each(552, "5.3.4", "message exceeds fixed maximum message size");
  } else if (data_.line_too_long) {
    log_.info(ctx, what + " outcome=rejected (line longer than " +
                       std::to_string(opt_.line_length) + " bytes)");
    count_message("rejected");
    reply_each(552, "5.3.4", "line too long");
  } else {
    std::uint64_t size = spool_.size();
    what += " size=" + std::to_string(size);
    auto input = spool_.finish(ctx);
    if (!input) {
      log_.error(ctx, what + " outcome=spool error: " + input.error().describe());
      count_message("tempfail");
      reply_each(451, "4.3.0", "temporary failure spooling the message, try again later");
    } else {
      ingest::Envelope env;
      env.source = "lmtp";
      env.mail_from = tx_.mail_from;
      for (const auto& r : rcpts) {
        if (std::find(env.rcpt_to.begin(), env.rcpt_to.end(), r) == env.rcpt_to.end()) {
          env.rcpt_to.push_back(r);
        }
      }
      env.client = opt_.client;
      std::optional<Result<ingest::Outcome>> result;
      try {
        result.emplace(ingestor_.ingest(env, *input));
      } catch (const std::exception& e) {
        result.emplace(make_error(ErrorCode::Store, std::string("exception: ") + e.what()));
      }
      if (!result->ok()) {
        // Nothing committed: the MTA keeps the message and retries.
        log_.error(ctx, what + " outcome=store error: " + result->error().describe());
        count_message("tempfail");
        reply_each(451, "4.3.0", "temporary failure storing the message, try again later");
      } else {
        const ingest::Outcome& o = result->value();
        std::string outcome;
        if (o.parse_error) {
          outcome = "parse error: " + *o.parse_error;
          count_message("unparsed");
        } else if (o.reports_stored == 0 && o.duplicates > 0) {
          outcome = "duplicate";
          count_message("duplicate");
        } else {
          outcome = "reports stored";
          count_message("stored");
        }
        log_.info(ctx, what + " message=" + std::to_string(o.message_id) +
                           " reports=" + std::to_string(o.reports_stored) +
                           " duplicates=" + std::to_string(o.duplicates) + " outcome=" + outcome);
        // A parse failure is not a delivery failure: the raw message is stored with its
        // reason, so the recipient gets 250 like any other.
        reply_each(250, "2.0.0", "delivered, stored as message " + std::to_string(o.message_id));
      }
    }
  }
  reset_transaction();
}

void Session::reset_transaction() {
  tx_ = Transaction{};
  data_ = DataState{};
  spool_.clear();
}

void Session::handle_command(std::string_view line) {
  std::size_t sp = line.find(' ');
  std::string verb = upper(line.substr(0, sp));
  std::string_view arg =
      sp == std::string_view::npos ? std::string_view{} : trim_spaces(line.substr(sp + 1));

  if (verb == "LHLO") {
    cmd_lhlo(arg);
  } else if (verb == "HELO" || verb == "EHLO") {
    // RFC 2033 §4.1: LHLO replaces HELO and EHLO.
    say(500, "5.5.1", "this is LMTP, use LHLO");
  } else if (verb == "MAIL") {
    cmd_mail(arg);
  } else if (verb == "RCPT") {
    cmd_rcpt(arg);
  } else if (verb == "DATA") {
    cmd_data(arg);
  } else if (verb == "RSET") {
    if (!arg.empty()) return say(501, "5.5.4", "syntax: RSET");
    reset_transaction();
    say(250, "2.0.0", "OK");
  } else if (verb == "NOOP") {
    say(250, "2.0.0", "OK");  // RFC 5321 §4.1.1.9: an argument is allowed and ignored
  } else if (verb == "VRFY") {
    if (arg.empty()) return say(501, "5.5.4", "syntax: VRFY address");
    // RFC 5321 §3.5.3: 252 when the server will not verify.
    say(252, "2.5.0", "cannot VRFY user, but will accept message for report mailboxes");
  } else if (verb == "QUIT") {
    say(221, "2.0.0", opt_.hostname + " closing connection");
    phase_ = Phase::Closed;
  } else {
    say(500, "5.5.2", "command not recognized");
  }
}

void Session::cmd_lhlo(std::string_view arg) {
  if (arg.empty() || has_control(arg)) return say(501, "5.5.4", "syntax: LHLO hostname");
  // RFC 5321 §4.1.4: EHLO (here LHLO) resets any transaction in progress.
  reset_transaction();
  greeted_lhlo_ = true;
  // RFC 5321 §4.1.1.1 multi-line reply; RFC 2033 §5 (unverified): PIPELINING and
  // ENHANCEDSTATUSCODES are required, 8BITMIME recommended.
  out_ += "250-" + opt_.hostname + "\r\n";
  out_ += "250-PIPELINING\r\n";
  out_ += "250-ENHANCEDSTATUSCODES\r\n";
  out_ += "250-8BITMIME\r\n";
  out_ += "250-SIZE " + std::to_string(opt_.message_size) + "\r\n";
  out_ += "250 SMTPUTF8\r\n";
}

void Session::cmd_mail(std::string_view arg) {
  if (!greeted_lhlo_) return say(503, "5.5.1", "send LHLO first");
  if (tx_.active) return say(503, "5.5.1", "nested MAIL command");
  if (!istarts_with(arg, "FROM:")) return say(501, "5.5.4", "syntax: MAIL FROM:<address>");
  auto path = parse_path(trim_spaces(arg.substr(5)));
  if (!path) return say(501, "5.1.7", "bad sender address syntax");
  auto params = parse_params(path->params);
  if (!params) return say(501, "5.5.4", "bad MAIL parameter syntax");
  for (const auto& p : *params) {
    const auto& kw = p.keyword;
    if (kw == "SIZE") {  // RFC 1870 §6
      auto n = p.value ? parse_size_value(*p.value) : std::nullopt;
      if (!n) return say(501, "5.5.4", "bad SIZE value");
      if (*n > opt_.message_size) {
        return say(552, "5.3.4", "message size exceeds fixed maximum message size");
      }
    } else if (kw == "BODY") {  // RFC 6152 §2
      if (!p.value || !one_of(*p.value, {"7BIT", "8BITMIME"})) {
        return say(501, "5.5.4", "bad BODY value");
      }
    } else if (kw == "SMTPUTF8") {  // RFC 6531 §3.4: no value
      if (p.value) return say(501, "5.5.4", "SMTPUTF8 takes no value");
    } else if (kw == "RET") {  // RFC 3461 §4.3
      if (!p.value || !one_of(*p.value, {"FULL", "HDRS"})) {
        return say(501, "5.5.4", "bad RET value");
      }
    } else if (kw == "AUTH" || kw == "ENVID") {  // RFC 4954 §5, RFC 3461 §4.4: xtext
      if (!p.value) return say(501, "5.5.4", "missing " + kw + " value");
    } else {
      // RFC 5321 §4.1.1.11: 555 for a parameter that is not recognized.
      return say(555, "5.5.4", "unsupported MAIL parameter " + kw);
    }
  }
  tx_ = Transaction{};
  tx_.active = true;
  tx_.mail_from = std::move(path->address);
  say(250, "2.1.0", "sender OK");
}

void Session::cmd_rcpt(std::string_view arg) {
  if (!tx_.active) return say(503, "5.5.1", "need MAIL command");
  if (!istarts_with(arg, "TO:")) return say(501, "5.5.4", "syntax: RCPT TO:<address>");
  auto path = parse_path(trim_spaces(arg.substr(3)));
  if (!path || path->address.empty()) return say(501, "5.1.3", "bad recipient address syntax");
  auto params = parse_params(path->params);
  if (!params) return say(501, "5.5.4", "bad RCPT parameter syntax");
  for (const auto& p : *params) {
    if (p.keyword == "NOTIFY" || p.keyword == "ORCPT") {  // RFC 3461 §4.1, §4.2
      if (!p.value) return say(501, "5.5.4", "missing " + p.keyword + " value");
    } else {
      return say(555, "5.5.4", "unsupported RCPT parameter " + p.keyword);
    }
  }
  // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
  if (tx_.rcpt_to.size() >= opt_.max_recipients) {
    return say(452, "4.5.3", "too many recipients");
  }
  if (!accept_ || !accept_(path->address)) {
    return say(550, "5.1.1", "<" + path->address + "> not a report mailbox");
  }
  say(250, "2.1.5", "<" + path->address + "> recipient OK");
  tx_.rcpt_to.push_back(std::move(path->address));
}

void Session::cmd_data(std::string_view arg) {
  if (!arg.empty()) return say(501, "5.5.4", "syntax: DATA");
  if (!tx_.active) return say(503, "5.5.1", "need MAIL command");
  // RFC 2033 §4.2: with no successful RCPT, DATA fails with 503.
  if (tx_.rcpt_to.empty()) return say(503, "5.5.1", "no valid recipients");
  phase_ = Phase::Data;
  data_ = DataState{};
  spool_.clear();
  say(354, "", "start mail input; end with <CRLF>.<CRLF>");
}

// ---- fuzz entry point ----

namespace {

class DiscardingIngestor final : public ingest::Ingestor {
 public:
  Result<ingest::Outcome> ingest(const ingest::Envelope&, const Input& message) override {
    auto src = message.open();
    if (!src) return std::move(src).error();
    auto all = read_all(**src, 1u << 20);
    if (!all) return std::move(all).error();
    if (all->size() != message.size()) return make_error(ErrorCode::Io, "size mismatch");
    if (all->size() % 7 == 3) return make_error(ErrorCode::Store, "simulated store failure");
    ingest::Outcome o;
    o.message_id = static_cast<std::int64_t>(all->size());
    return o;
  }
};

}  // namespace

void fuzz_session(std::string_view bytes) {
  DiscardingIngestor ingestor;
  NullLogger logger;
  SessionOptions opt;
  opt.hostname = "fuzz.example";
  opt.message_size = 8192;
  opt.line_length = 200;
  opt.command_line_length = 100;
  opt.max_recipients = 4;
  opt.memory_spool = 1024;
  Session s(
      opt, [](std::string_view a) { return !a.empty() && a.front() != 'x'; }, ingestor, logger);
  s.greet();
  std::size_t chunk = bytes.empty() ? 1 : static_cast<unsigned char>(bytes.front()) % 17;
  if (chunk == 0) chunk = bytes.size() + 1;
  while (!bytes.empty() && !s.closed()) {
    std::size_t n = std::min(chunk, bytes.size());
    s.feed(bytes.substr(0, n));
    bytes.remove_prefix(n);
    (void)s.take_output();
  }
  if (!s.closed()) s.timeout();
  (void)s.take_output();
}

}  // namespace mailreport::lmtp
