// The character-set layer of the DMARC aggregate parser (see dmarc_input.hpp). XML 1.0 §4.3.3
// and Appendix F: the encoding is named in the XML declaration, which must come first and is
// ASCII-compatible for every encoding this layer converts; anything else is left to libxml2.
#include "dmarc_input.hpp"

#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace mailreport::report::detail {

namespace {

constexpr std::size_t kHead = 4096;  // the look-ahead: XML declaration, stray schema tag
constexpr std::size_t kInBuf = 16 * 1024;
constexpr std::size_t kOutBuf = 64 * 1024;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool starts_with_bytes(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The value of encoding="..." in a leading XML declaration, or empty.
std::string declared_encoding(std::string_view head) {
  if (!starts_with_bytes(head, "<?xml")) return {};
  auto end = head.find("?>");
  if (end == std::string_view::npos) return {};
  std::string_view decl = head.substr(0, end);
  auto at = decl.find("encoding");
  if (at == std::string_view::npos) return {};
  std::size_t i = at + 8;
  auto skip_space = [&] {
    while (i < decl.size() &&
           (decl[i] == ' ' || decl[i] == '\t' || decl[i] == '\r' || decl[i] == '\n')) {
      ++i;
    }
  };
  skip_space();
  if (i >= decl.size() || decl[i] != '=') return {};
  ++i;
  skip_space();
  if (i >= decl.size() || (decl[i] != '"' && decl[i] != '\'')) return {};
  char quote = decl[i++];
  auto close = decl.find(quote, i);
  if (close == std::string_view::npos) return {};
  return std::string(decl.substr(i, close - i));
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

// The byte range of a start tag named "schema" (any prefix) that comes before the first
// <feedback> start tag, or {0, 0}. Quoted attribute values may hold '>'.
std::pair<std::size_t, std::size_t> stray_schema_tag(std::string_view head) {
  std::size_t pos = 0;
  for (;;) {
    std::size_t lt = head.find('<', pos);
    if (lt == std::string_view::npos) return {0, 0};
    std::size_t end = lt + 1;
    while (end < head.size() && is_name_char(head[end])) ++end;
    std::string_view name = head.substr(lt + 1, end - lt - 1);
    std::string_view local =
        name.substr(name.rfind(':') == std::string_view::npos ? 0 : name.rfind(':') + 1);
    if (local == "feedback") return {0, 0};
    if (local == "schema" && end < head.size() &&
        (head[end] == '>' || head[end] == '/' || head[end] == ' ' || head[end] == '\t' ||
         head[end] == '\r' || head[end] == '\n')) {
      char quote = 0;
      for (std::size_t i = end; i < head.size(); ++i) {
        if (quote != 0) {
          if (head[i] == quote) quote = 0;
        } else if (head[i] == '"' || head[i] == '\'') {
          quote = head[i];
        } else if (head[i] == '>') {
          return {lt, i + 1};
        }
      }
      return {0, 0};
    }
    pos = lt + 1;
  }
}

// Input that libxml2 must see as is: a byte-order mark, or the first bytes of "<?xml" in
// UTF-16/UTF-32/EBCDIC (XML 1.0 Appendix F.1).
bool not_ascii_compatible(std::string_view head) {
  if (starts_with_bytes(head, "\xEF\xBB\xBF") || starts_with_bytes(head, "\xFE\xFF") ||
      starts_with_bytes(head, "\xFF\xFE") || starts_with_bytes(head, "\x4C\x6F\xA7\x94")) {
    return true;
  }
  return head.substr(0, 4).find('\0') != std::string_view::npos;
}

}  // namespace

struct DmarcInputSource::Converter {
  explicit Converter(iconv_t c) : cd(c) {}
  ~Converter() { iconv_close(cd); }
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;
  iconv_t cd;
};

DmarcInputSource::DmarcInputSource(ByteSource& inner) : inner_(inner) {}
DmarcInputSource::~DmarcInputSource() = default;

Status DmarcInputSource::prepare() {
  head_.resize(kHead);
  std::size_t got = 0;
  while (got < kHead) {
    auto n = inner_.read(std::span<char>(head_.data() + got, kHead - got));
    if (!n) return std::move(n).error();
    if (*n == 0) break;
    got += *n;
  }
  head_.resize(got);
  if (not_ascii_compatible(head_)) return {};

  if (auto [from, to] = stray_schema_tag(head_); to > from) {
    dropped_tag_ = head_.substr(from, std::min<std::size_t>(to - from, 120));
    head_.erase(from, to - from);
  }

  declared_ = declared_encoding(head_);
  std::string enc = lower(declared_);
  if (enc.empty() || enc == "utf-8" || enc == "utf8") return {};
  if (enc.starts_with("utf-16") || enc.starts_with("utf-32") || enc.starts_with("ucs-") ||
      enc.starts_with("utf16") || enc.starts_with("utf32") || enc == "unicode") {
    // The bytes are ASCII-compatible, so the declaration is wrong: read them as UTF-8.
    unsupported_ = declared_;
    ignore_declaration_ = true;
    return {};
  }
  iconv_t cd = iconv_open("UTF-8", declared_.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    unsupported_ = declared_;
    ignore_declaration_ = true;
    return {};
  }
  conv_ = std::make_unique<Converter>(cd);
  ignore_declaration_ = true;
  in_.resize(kInBuf);
  out_.resize(kOutBuf);
  return {};
}

std::vector<std::string> DmarcInputSource::notes() const {
  std::vector<std::string> notes;
  if (!dropped_tag_.empty()) {
    notes.push_back("dropped a stray start tag before <feedback>: " + dropped_tag_);
  }
  if (!unsupported_.empty()) {
    notes.push_back("the XML declaration names encoding \"" + unsupported_ +
                    "\", which does not match the document or is unknown; read as UTF-8");
  }
  if (replaced_ > 0) {
    notes.push_back(std::to_string(replaced_) + " byte(s) are not valid " + declared_ +
                    " (the first at byte offset " + std::to_string(first_replaced_at_) +
                    "); replaced by U+FFFD");
  }
  return notes;
}

Result<std::size_t> DmarcInputSource::read_raw(std::span<char> buf) {
  if (head_pos_ < head_.size()) {
    std::size_t k = std::min(buf.size(), head_.size() - head_pos_);
    std::memcpy(buf.data(), head_.data() + head_pos_, k);
    head_pos_ += k;
    return k;
  }
  return inner_.read(buf);
}

Result<std::size_t> DmarcInputSource::read(std::span<char> buf) {
  if (!conv_) return read_raw(buf);
  return convert(buf);
}

Status DmarcInputSource::fill_input() {
  if (in_begin_ > 0) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_eof_ || in_end_ == in_.size()) return {};
  auto n = read_raw(std::span<char>(in_.data() + in_end_, in_.size() - in_end_));
  if (!n) return std::move(n).error();
  if (*n == 0) in_eof_ = true;
  in_end_ += *n;
  return {};
}

Result<std::size_t> DmarcInputSource::convert(std::span<char> buf) {
  for (;;) {
    if (out_begin_ < out_end_) {
      std::size_t k = std::min(buf.size(), out_end_ - out_begin_);
      std::memcpy(buf.data(), out_.data() + out_begin_, k);
      out_begin_ += k;
      return k;
    }
    if (flushed_) return std::size_t{0};
    out_begin_ = out_end_ = 0;
    if (in_begin_ == in_end_ || !in_eof_) {
      if (auto st = fill_input(); !st) return std::move(st).error();
    }
    char* outp = out_.data();
    std::size_t outleft = out_.size();
    if (in_begin_ == in_end_ && in_eof_) {
      iconv(conv_->cd, nullptr, nullptr, &outp, &outleft);  // end any shift state
      flushed_ = true;
      out_end_ = out_.size() - outleft;
      continue;
    }
    char* inp = in_.data() + in_begin_;
    std::size_t inleft = in_end_ - in_begin_;
    std::size_t r = iconv(conv_->cd, &inp, &inleft, &outp, &outleft);
    int err = r == static_cast<std::size_t>(-1) ? errno : 0;
    std::size_t used = static_cast<std::size_t>(inp - (in_.data() + in_begin_));
    in_begin_ += used;
    consumed_ += used;
    // EILSEQ: a byte the declared encoding does not define; EINVAL: a sequence cut short, which
    // is only an error at the end of the input. Either way: U+FFFD for one byte, go on.
    bool bad = err == EILSEQ || (err == EINVAL && in_eof_);
    if (bad && outleft >= kReplacement.size()) {
      std::memcpy(outp, kReplacement.data(), kReplacement.size());
      outp += kReplacement.size();
      outleft -= kReplacement.size();
      if (replaced_++ == 0) first_replaced_at_ = consumed_;
      ++in_begin_;
      ++consumed_;
    }
    out_end_ = out_.size() - outleft;
    // E2BIG (output full) and EINVAL before the end need no action: the loop reads or returns.
  }
}

}  // namespace mailreport::report::detail
