// Hand-written parser for the expression grammar in expression.hpp (it is not TOML).
#include "config/expression.hpp"

namespace mailreport::config::detail {

namespace {

constexpr std::string_view kConfigGet = "config_get";

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<std::vector<Term>> parse() {
    std::vector<Term> terms;
    skip_space();
    if (at_end()) return fail("empty expression");
    for (;;) {
      auto term = parse_term();
      if (!term.ok()) return std::move(term).error();
      terms.push_back(std::move(term).value());
      skip_space();
      if (at_end()) return terms;
      if (s_[pos_] != '+') return fail("expected '+' or the end of the expression");
      ++pos_;
      skip_space();
      if (at_end()) return fail("expected a term after '+'");
    }
  }

 private:
  Result<Term> parse_term() {
    if (s_[pos_] == '\'') {
      auto lit = parse_literal();
      if (!lit.ok()) return std::move(lit).error();
      return Term{Term::Kind::Literal, std::move(lit).value()};
    }
    if (s_.substr(pos_).starts_with(kConfigGet)) {
      pos_ += kConfigGet.size();
      skip_space();
      if (at_end() || s_[pos_] != '(') return fail("expected '(' after config_get");
      ++pos_;
      skip_space();
      if (at_end() || s_[pos_] != '\'') return fail("config_get takes one 'quoted.key'");
      auto key = parse_literal();
      if (!key.ok()) return std::move(key).error();
      skip_space();
      if (at_end() || s_[pos_] != ')') return fail("expected ')' after the key of config_get");
      ++pos_;
      if (key.value().empty()) return fail("config_get needs a key");
      return Term{Term::Kind::ConfigGet, std::move(key).value()};
    }
    return fail("expected a 'quoted literal' or config_get('key')");
  }

  // At the opening quote. `\'` and `\\` are the only escapes.
  Result<std::string> parse_literal() {
    const std::size_t open = pos_;
    ++pos_;
    std::string out;
    while (!at_end()) {
      char c = s_[pos_++];
      if (c == '\'') return out;
      if (c == '\\') {
        if (at_end() || (s_[pos_] != '\'' && s_[pos_] != '\\')) {
          return fail("only \\' and \\\\ may follow a backslash in a literal");
        }
        c = s_[pos_++];
      }
      out.push_back(c);
    }
    pos_ = open;
    return fail("unterminated literal (a literal quote is written \\')");
  }

  void skip_space() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool at_end() const { return pos_ >= s_.size(); }

  Error fail(std::string_view what) const {
    return make_error(ErrorCode::Invalid, "bad expression at column " + std::to_string(pos_ + 1) +
                                              ": " + std::string(what));
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

bool looks_like_expression(std::string_view text) {
  return text.find('\'') != std::string_view::npos ||
         text.find(kConfigGet) != std::string_view::npos;
}

Result<std::vector<Term>> parse_expression(std::string_view text) {
  return Parser(text).parse();
}

}  // namespace mailreport::config::detail
