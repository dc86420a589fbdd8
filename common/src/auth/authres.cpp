// auth/authres: Authentication-Results (RFC 8601) reader, trusted-upstream translation and
// writer. The grammar (RFC 8601 §2.2):
//   authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS]
//   no-result       = [CFWS] ";" [CFWS] "none"
//   resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//   methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
//   method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
//   reasonspec      = "reason" [CFWS] "=" [CFWS] value
//   propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//   pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
// The reader follows it loosely (see the header for the quirks it accepts); the writer follows
// it strictly.
#include "mailreport/auth/authres.hpp"

#include <algorithm>
#include <cctype>

namespace mailreport::auth {
namespace {

constexpr std::size_t kMaxLine = 78;  // RFC 5322 §2.1.1

bool is_wsp(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_keyword_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}
// RFC 2045 §5.1 token characters.
bool is_token_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A cursor over the header value that knows CFWS (RFC 5322 §3.2.2), quoted strings and the
// loose "run of characters" that real-world values are.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool at_end() const noexcept { return i_ >= s_.size(); }
  char peek() const noexcept { return s_[i_]; }
  void advance() noexcept { ++i_; }
  std::size_t pos() const noexcept { return i_; }
  void reset(std::size_t pos) noexcept { i_ = pos; }

  // Folding white space and comments; comments nest and take quoted-pairs. An unterminated
  // comment runs to the end.
  void skip_cfws() noexcept {
    while (!at_end()) {
      if (is_wsp(peek())) {
        ++i_;
      } else if (peek() == '(') {
        int depth = 0;
        while (!at_end()) {
          char c = s_[i_++];
          if (c == '\\') {
            if (!at_end()) ++i_;
          } else if (c == '(') {
            ++depth;
          } else if (c == ')' && --depth == 0) {
            break;
          }
        }
      } else {
        break;
      }
    }
  }

  bool eat(char c) {
    skip_cfws();
    if (at_end() || peek() != c) return false;
    ++i_;
    return true;
  }

  std::string keyword() {
    std::size_t b = i_;
    while (!at_end() && is_keyword_char(peek())) ++i_;
    return lower(s_.substr(b, i_ - b));
  }

  // At '"': the quoted-string's content, unescaped and unfolded. Unterminated: the rest.
  std::string quoted() {
    std::string out;
    ++i_;
    while (!at_end()) {
      char c = s_[i_++];
      if (c == '\\' && !at_end()) {
        out += s_[i_++];
      } else if (c == '"') {
        break;
      } else if (c != '\r' && c != '\n') {
        out += c;
      }
    }
    return out;
  }

  // Characters up to white space, ';', '(' or one of `also`.
  std::string run(std::string_view also = {}) {
    std::size_t b = i_;
    while (!at_end() && !is_wsp(peek()) && peek() != ';' && peek() != '(' &&
           also.find(peek()) == std::string_view::npos) {
      ++i_;
    }
    return std::string(s_.substr(b, i_ - b));
  }

  // A value or pvalue: a quoted-string ("\"a b\"@example.com" keeps its quotes when an
  // address follows), or a run.
  std::string value() {
    if (at_end() || peek() != '"') return run();
    std::string q = quoted();
    if (at_end() || peek() != '@') return q;
    std::string out = "\"";
    for (char c : q) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"" + run();
  }

  // Past the next ';' at this level (outside comments and quoted strings), or to the end.
  void skip_to_semicolon() {
    for (;;) {
      skip_cfws();
      if (at_end() || peek() == ';') return;
      if (peek() == '"') {
        (void)quoted();
      } else {
        ++i_;
      }
    }
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

// The authserv-id at the scanner (after CFWS), or "" when the value starts with
// method=result instead (Microsoft 365 writes no authserv-id). The scanner is left after it.
std::string read_authserv_id(Scanner& sc) {
  std::size_t start = sc.pos();
  std::string id = !sc.at_end() && sc.peek() == '"' ? sc.quoted() : sc.run("=/");
  std::size_t after = sc.pos();
  sc.skip_cfws();
  if (!sc.at_end() && (sc.peek() == '=' || sc.peek() == '/')) {
    sc.reset(start);
    return {};
  }
  sc.reset(after);
  return id;
}

enum class ResinfoOutcome { Method, None, Unreadable };

ResinfoOutcome read_resinfo(Scanner& sc, AuthResMethod& m) {
  sc.skip_cfws();
  m.method = sc.keyword();
  if (m.method.empty()) return ResinfoOutcome::Unreadable;
  if (sc.eat('/')) {
    sc.skip_cfws();
    m.version = sc.keyword();
  }
  if (!sc.eat('=')) {
    // RFC 8601 §2.2 no-result: "; none".
    return m.method == "none" ? ResinfoOutcome::None : ResinfoOutcome::Unreadable;
  }
  sc.skip_cfws();
  m.result = sc.keyword();
  if (m.result.empty()) return ResinfoOutcome::Unreadable;
  for (;;) {
    sc.skip_cfws();
    if (sc.at_end() || sc.peek() == ';') break;
    std::string name = sc.keyword();
    if (name.empty()) {  // not a property: skip the word
      if (sc.peek() == '"') {
        (void)sc.quoted();
      } else if (sc.run().empty()) {
        sc.advance();
      }
      continue;
    }
    sc.skip_cfws();
    if (!sc.at_end() && sc.peek() == '.') {  // propspec
      sc.advance();
      sc.skip_cfws();
      AuthResProperty p{std::move(name), sc.keyword(), {}};
      if (!sc.eat('=')) continue;
      sc.skip_cfws();
      p.value = sc.value();
      m.props.push_back(std::move(p));
    } else if (!sc.at_end() && sc.peek() == '=') {
      sc.advance();
      sc.skip_cfws();
      std::string v = sc.value();
      if (name == "reason" && m.reason.empty()) {
        m.reason = std::move(v);
      } else {  // Microsoft's "action=none", "compauth=pass reason=100"
        m.props.push_back({"", std::move(name), std::move(v)});
      }
    }
    // else: a bare word; it was consumed.
  }
  return ResinfoOutcome::Method;
}

std::string domain_of(std::string_view v) {
  auto at = v.rfind('@');
  if (at != std::string_view::npos) v.remove_prefix(at + 1);
  if (!v.empty() && v.back() == '>') v.remove_suffix(1);
  return lower(v);
}

// RFC 8601 §2.7: a result word the RFCs do not define says that something was evaluated but
// not how; we read it as permerror (not a pass, not retried). RFC 5451's "hardfail" is fail.
SpfResult spf_result(std::string_view w) {
  if (w.empty()) return SpfResult::None;
  if (w == "hardfail") return SpfResult::Fail;
  return spf_result_from(w).value_or(SpfResult::PermError);
}
DkimResult dkim_result(std::string_view w) {
  if (w.empty()) return DkimResult::None;
  if (w == "hardfail") return DkimResult::Fail;
  return dkim_result_from(w).value_or(DkimResult::PermError);
}
DmarcResult dmarc_result(std::string_view w) {
  if (w.empty()) return DmarcResult::None;
  return dmarc_result_from(w).value_or(DmarcResult::PermError);
}

// ---- writing

// A quoted-string (RFC 5322 §3.2.4); control characters (CR, LF above all: this text may come
// from DNS or a message) become spaces.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += ' ';
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string value_text(std::string_view v) {
  return is_token(v) ? std::string(v) : quote(v);
}

bool is_atext(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// RFC 8601 pvalue: a value, or [local-part] "@" domain-name written bare.
std::string pvalue_text(std::string_view v) {
  if (is_token(v)) return std::string(v);
  auto at = v.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view local = v.substr(0, at), domain = v.substr(at + 1);
    bool local_ok =
        std::all_of(local.begin(), local.end(), [](char c) { return is_atext(c) || c == '.'; }) &&
        (local.empty() || (local.front() != '.' && local.back() != '.'));
    bool domain_ok = !domain.empty() && std::all_of(domain.begin(), domain.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (local_ok && domain_ok) return std::string(v);
  }
  return quote(v);
}

using Items = std::vector<std::string>;  // one resinfo: "method=result", then comment, props

void add_prop(Items& items, const char* name, std::string_view value) {
  if (!value.empty()) items.push_back(std::string(name) + "=" + pvalue_text(value));
}

void add_reason(Items& items, std::string_view reason) {
  if (!reason.empty()) items.push_back("reason=" + quote(reason));
}

Items spf_items(const SpfVerdict& v) {
  Items items{std::string("spf=") + to_string(v.result)};
  if (v.result != SpfResult::Pass && v.result != SpfResult::None &&
      v.result != SpfResult::Neutral) {
    add_reason(items, v.explanation);
  }
  // Always written, even empty (quoted then), so that a reader can tell the scope.
  const std::string& id = v.identity.empty() ? v.domain : v.identity;
  items.push_back(std::string(v.scope == SpfScope::Helo ? "smtp.helo=" : "smtp.mailfrom=") +
                  pvalue_text(id));
  return items;
}

Items dkim_items(const DkimVerdict& v) {
  Items items{std::string("dkim=") + to_string(v.result)};
  if (v.result != DkimResult::Pass) add_reason(items, v.reason);
  add_prop(items, "header.d", v.domain);
  add_prop(items, "header.s", v.selector);
  add_prop(items, "header.i", v.identity);
  // RFC 6008: the start of b= tells two signatures of one domain apart.
  add_prop(items, "header.b", v.header_b);
  return items;
}

Items dmarc_items(const Evaluation& e) {
  const DmarcVerdict& d = e.dmarc;
  Items items{std::string("dmarc=") + to_string(d.result)};
  const bool evaluated =
      d.record.has_value() && (d.result == DmarcResult::Pass || d.result == DmarcResult::Fail);
  if (evaluated) {
    // As OpenDMARC and Gmail write it: the policy applied and the disposition.
    items.push_back(std::string("(p=") + to_string(d.applied_policy) +
                    " dis=" + to_string(d.disposition) + ")");
  }
  if (d.result != DmarcResult::Pass) add_reason(items, d.reason);
  add_prop(items, "header.from", d.header_from.empty() ? e.header_from : d.header_from);
  // RFC 9989 §9.2 / IANA: policy.dmarc is the policy evaluated (p, sp or np).
  if (evaluated) add_prop(items, "policy.dmarc", to_string(d.applied_policy));
  return items;
}

}  // namespace

std::optional<std::string> AuthResMethod::prop(std::string_view ptype,
                                               std::string_view property) const {
  for (const auto& p : props) {
    if (p.ptype == ptype && p.property == property) return p.value;
  }
  return std::nullopt;
}

Result<AuthResults> parse_authentication_results(std::string_view value) {
  Scanner sc(value);
  AuthResults ar;
  sc.skip_cfws();
  if (sc.at_end()) return make_error(ErrorCode::Invalid, "empty Authentication-Results");
  ar.authserv_id = read_authserv_id(sc);
  const bool bare = ar.authserv_id.empty();  // Microsoft 365: results without an authserv-id
  if (!bare) {
    // authres-version = 1*DIGIT [CFWS]
    std::size_t at = sc.pos();
    sc.skip_cfws();
    std::string v = sc.run();
    if (!v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      ar.version = v;
    } else {
      sc.reset(at);
    }
  }
  bool need_semicolon = !bare;
  bool no_result = false;
  std::size_t unreadable = 0;
  for (;;) {
    sc.skip_cfws();
    if (sc.at_end()) break;
    if (sc.peek() == ';') {
      sc.advance();
    } else if (need_semicolon) {
      // Words between the authserv-id and the first ';' that are no version: skip them.
      sc.skip_to_semicolon();
      ++unreadable;
      continue;
    }
    need_semicolon = true;
    sc.skip_cfws();
    if (sc.at_end() || sc.peek() == ';') continue;  // an empty resinfo ("x; ; spf=pass", "x;")
    AuthResMethod m;
    switch (read_resinfo(sc, m)) {
      case ResinfoOutcome::Method: ar.methods.push_back(std::move(m)); break;
      case ResinfoOutcome::None: no_result = true; break;
      case ResinfoOutcome::Unreadable:
        ++unreadable;
        sc.skip_to_semicolon();
        break;
    }
  }
  if (ar.methods.empty() && !no_result && (bare || unreadable > 0)) {
    return make_error(ErrorCode::Invalid, "Authentication-Results holds no method=result: \"" +
                                              std::string(value.substr(0, 200)) + "\"");
  }
  return ar;
}

std::string authserv_id_of(std::string_view value) {
  Scanner sc(value);
  sc.skip_cfws();
  if (sc.at_end()) return {};
  return read_authserv_id(sc);
}

TrustedVerdicts verdicts_from(const AuthResults& results) {
  TrustedVerdicts t;
  std::vector<SpfVerdict> helo;
  for (const auto& m : results.methods) {
    if (m.method == "spf") {
      SpfVerdict v;
      v.result = spf_result(m.result);
      v.explanation = m.reason;
      // smtp.mfrom: the pre-RFC 7001 spelling, still written by Sendmail's Sender-ID filter.
      auto mailfrom = m.prop("smtp", "mailfrom");
      if (!mailfrom) mailfrom = m.prop("smtp", "mfrom");
      if (mailfrom) {
        v.scope = SpfScope::MailFrom;
        v.identity = *mailfrom;
      } else if (auto h = m.prop("smtp", "helo")) {
        v.scope = SpfScope::Helo;
        v.identity = *h;
      }
      v.domain = domain_of(v.identity);
      (v.scope == SpfScope::Helo ? helo : t.spf).push_back(std::move(v));
    } else if (m.method == "dkim") {
      DkimVerdict v;
      v.result = dkim_result(m.result);
      v.reason = m.reason;
      v.domain = lower(m.prop("header", "d").value_or(""));
      v.selector = m.prop("header", "s").value_or("");
      v.identity = m.prop("header", "i").value_or("");
      v.header_b = m.prop("header", "b").value_or("");
      v.algorithm = lower(m.prop("header", "a").value_or(""));
      if (v.domain.empty() && !v.identity.empty()) v.domain = domain_of(v.identity);
      // RFC 6376 §3.5: i= defaults to "@" d=.
      if (v.identity.empty() && !v.domain.empty()) v.identity = "@" + v.domain;
      t.dkim.push_back(std::move(v));
    } else if (m.method == "dmarc" && !t.dmarc) {
      t.dmarc = dmarc_result(m.result);
      t.dmarc_header_from = lower(m.prop("header", "from").value_or(""));
    }
  }
  // verdict.hpp: mfrom first, then helo.
  for (auto& v : helo) t.spf.push_back(std::move(v));
  return t;
}

std::string format_authentication_results(std::string_view authserv_id, const Evaluation& e) {
  std::vector<Items> resinfos;
  for (const auto& v : e.spf) resinfos.push_back(spf_items(v));
  if (e.dkim.empty()) {
    resinfos.push_back({"dkim=none"});  // RFC 8601 §2.7.1: the message was not signed
  }
  for (const auto& v : e.dkim) resinfos.push_back(dkim_items(v));
  resinfos.push_back(dmarc_items(e));

  // RFC 8601 §2.2 / RFC 5322 §2.2.3: one method per line; LF folding because libmilter hands
  // header values to the MTA with bare LF line ends, which Postfix and Sendmail turn into CRLF.
  // The first line holds "Authentication-Results: " and the authserv-id only.
  std::string out = value_text(authserv_id);
  out += ';';
  for (std::size_t r = 0; r < resinfos.size(); ++r) {
    const Items& items = resinfos[r];
    std::size_t col = 1;  // the tab
    out += "\n\t";
    for (std::size_t k = 0; k < items.size(); ++k) {
      std::string text = items[k];
      if (k + 1 == items.size() && r + 1 < resinfos.size()) text += ';';
      if (k == 0) {
        out += text;
        col += text.size();
      } else if (col + 1 + text.size() <= kMaxLine) {
        out += ' ';
        out += text;
        col += 1 + text.size();
      } else {
        out += "\n\t";
        out += text;
        col = 1 + text.size();
      }
    }
  }
  return out;
}

}  // namespace mailreport::auth
