// DMARC aggregate report parser: RFC 7489 Appendix C and RFC 9990 §3 / Appendix A XML, streamed
// from a ByteSource to a ReportSink in bounded memory.
//
// How: libxml2's SAX2 parser in recover mode, pulling from the ByteSource through I/O
// callbacks. Not xmlTextReader: in libxml2 2.9.14 (Debian 12) the reader gives up at the first
// well-formedness error even with XML_PARSE_RECOVER (xmlTextReaderPushData returns -1 as soon as
// ctxt->wellFormed == 0), which would lose real reports with an unescaped '<' or a stray byte;
// the SAX2 parser keeps delivering events, builds no tree, and costs fewer instructions per byte.
// Parser errors go to a per-parse structured handler (SAX serror; context-less ones through the
// thread's handler, set for the duration) and end up in `errors` with their line, never on
// stderr. Elements are matched by local name, so reports without a namespace, with the RFC 9990
// namespace (urn:ietf:params:xml:ns:dmarc-2.0), the RFC 7489 one
// (http://dmarc.org/dmarc-xml/0.1) or with undeclared prefixes all parse; elements in any other
// namespace are extensions and are skipped, as are unknown elements (RFC 9990 §5).
//
// Safety: no DTD is loaded and no entity is expanded — the SAX handler has no entityDecl,
// getEntity, getParameterEntity, resolveEntity or externalSubset callback and XML_PARSE_NOENT,
// DTDLOAD, DTDATTR and DTDVALID are off, so `&x;` stays unexpanded text (or is dropped with an
// error) and nothing is read from files or the network (XML_PARSE_NONET). Memory stays flat:
// records go to the sink one by one, every text value is capped (kMaxText), repeated elements
// (kMaxListItems), the error list (kMaxErrors) and the parser's name dictionary
// (kMaxDistinctNames) too.
//
// Input fixes (dmarc_input.hpp): legacy encodings named in the XML declaration (windows-1252,
// ...) are converted to UTF-8 before libxml2, so that a byte the encoding does not define costs
// one U+FFFD instead of the rest of the report; a stray <xs:schema> tag before <feedback> is
// dropped. UTF-8 and UTF-16 go to libxml2 untouched.
//
// Salvage rules (each noted in `errors`, with a line number where there is one): parse errors
// reported by libxml2; <feedback> found below another element; an element inside a text element
// (ignored; when its start tag is broken it was an unescaped '<', and the text is kept as
// "<name..."); invalid UTF-8 replaced by U+FFFD; garbage numbers; over-long values truncated;
// empty <record>s dropped; an input that ends inside <feedback> (the incomplete last record is
// dropped).
//
// Not done: schema validation; <extension> contents; the `lang` attributes.
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc_input.hpp"
#include "mailreport/report/dmarc_xml.hpp"

namespace mailreport::report {

namespace {

constexpr std::size_t kMaxText = 64 * 1024;  // one text value
constexpr std::size_t kMaxErrors = 100;      // entries in `errors`
constexpr int kMaxDistinctNames = 100000;    // libxml2 dictionary entries (names, URIs)
constexpr std::size_t kReadChunk = 64 * 1024;
// Repeated elements kept per list (<error> per report; <reason>, <dkim>, <spf> per record).
// RFC 9990 §3.1.3 asks for at most 100 DKIM results per row.
constexpr std::size_t kMaxListItems = 1000;

constexpr std::string_view kNsRfc9990 = "urn:ietf:params:xml:ns:dmarc-2.0";
constexpr std::string_view kNsRfc7489 = "http://dmarc.org/dmarc-xml/0.1";

std::string_view sv(const xmlChar* s) {
  return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

// ------------------------------------------------------------------ value normalisation

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

void to_lower_ascii(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid (RFC 3629 §4: no
// overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n = s.size() - i;
  auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

// Replaces each invalid byte by U+FFFD. Returns false when something was replaced.
bool make_valid_utf8(std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  if (i == s.size()) return true;
  std::string out(s, 0, i);
  bool valid = true;
  while (i < s.size()) {
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      valid = false;
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  s = std::move(out);
  return valid;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  out = v;
  return true;
}

// ------------------------------------------------------------------ element vocabulary

// Containers: elements whose children we interpret.
enum class Ctx : std::uint8_t {
  Feedback,
  Metadata,
  DateRange,
  Policy,
  Record,
  Row,
  Evaluated,
  Reason,
  Identifiers,
  AuthResults,
  AuthDkim,
  AuthSpf,
};

// Text elements.
enum class Field : std::uint8_t {
  Version,
  OrgName,
  Email,
  ExtraContactInfo,
  ReportId,
  Error,
  Generator,
  Begin,
  End,
  Domain,
  DiscoveryMethod,
  Adkim,
  Aspf,
  P,
  Sp,
  Np,
  Pct,
  Fo,
  Testing,
  SourceIp,
  Count,
  Disposition,
  EvalDkim,
  EvalSpf,
  ReasonType,
  ReasonComment,
  EnvelopeTo,
  EnvelopeFrom,
  HeaderFrom,
  DkimDomain,
  DkimSelector,
  DkimResult,
  DkimHumanResult,
  SpfDomain,
  SpfScope,
  SpfResult,
  SpfHumanResult,
};

// Values from a vocabulary defined by RFC 7489 / RFC 9990 / RFC 8601: compared lower-case.
bool is_enum(Field f) {
  switch (f) {
    case Field::DiscoveryMethod:
    case Field::Adkim:
    case Field::Aspf:
    case Field::P:
    case Field::Sp:
    case Field::Np:
    case Field::Testing:
    case Field::Disposition:
    case Field::EvalDkim:
    case Field::EvalSpf:
    case Field::ReasonType:
    case Field::DkimResult:
    case Field::SpfScope:
    case Field::SpfResult: return true;
    default: return false;
  }
}

struct Child {
  std::string_view name;
  bool container;
  Ctx ctx;      // when container
  Field field;  // otherwise
};

constexpr Child C(std::string_view n, Ctx c) {
  return {n, true, c, Field::Version};
}
constexpr Child F(std::string_view n, Field f) {
  return {n, false, Ctx::Feedback, f};
}

// RFC 7489 Appendix C and RFC 9990 Appendix A, by parent. Order inside a parent is not enforced:
// real reports put children in any order.
constexpr Child kFeedback[] = {C("report_metadata", Ctx::Metadata),
                               C("policy_published", Ctx::Policy), C("record", Ctx::Record),
                               F("version", Field::Version)};
constexpr Child kMetadata[] = {F("org_name", Field::OrgName),
                               F("email", Field::Email),
                               F("extra_contact_info", Field::ExtraContactInfo),
                               F("report_id", Field::ReportId),
                               C("date_range", Ctx::DateRange),
                               F("error", Field::Error),
                               F("generator", Field::Generator)};
constexpr Child kDateRange[] = {F("begin", Field::Begin), F("end", Field::End)};
constexpr Child kPolicy[] = {
    F("domain", Field::Domain), F("discovery_method", Field::DiscoveryMethod),
    F("adkim", Field::Adkim),   F("aspf", Field::Aspf),
    F("p", Field::P),           F("sp", Field::Sp),
    F("np", Field::Np),         F("pct", Field::Pct),
    F("fo", Field::Fo),         F("testing", Field::Testing)};
constexpr Child kRecord[] = {C("row", Ctx::Row), C("identifiers", Ctx::Identifiers),
                             C("auth_results", Ctx::AuthResults)};
constexpr Child kRow[] = {F("source_ip", Field::SourceIp), F("count", Field::Count),
                          C("policy_evaluated", Ctx::Evaluated)};
constexpr Child kEvaluated[] = {F("disposition", Field::Disposition), F("dkim", Field::EvalDkim),
                                F("spf", Field::EvalSpf), C("reason", Ctx::Reason)};
constexpr Child kReason[] = {F("type", Field::ReasonType), F("comment", Field::ReasonComment)};
constexpr Child kIdentifiers[] = {F("envelope_to", Field::EnvelopeTo),
                                  F("envelope_from", Field::EnvelopeFrom),
                                  F("header_from", Field::HeaderFrom)};
constexpr Child kAuthResults[] = {C("dkim", Ctx::AuthDkim), C("spf", Ctx::AuthSpf)};
constexpr Child kAuthDkim[] = {F("domain", Field::DkimDomain), F("selector", Field::DkimSelector),
                               F("result", Field::DkimResult),
                               F("human_result", Field::DkimHumanResult)};
constexpr Child kAuthSpf[] = {F("domain", Field::SpfDomain), F("scope", Field::SpfScope),
                              F("result", Field::SpfResult),
                              F("human_result", Field::SpfHumanResult)};

template <std::size_t N>
const Child* find_in(const Child (&table)[N], std::string_view name) {
  for (const Child& c : table) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const Child* find_child(Ctx parent, std::string_view name) {
  switch (parent) {
    case Ctx::Feedback: return find_in(kFeedback, name);
    case Ctx::Metadata: return find_in(kMetadata, name);
    case Ctx::DateRange: return find_in(kDateRange, name);
    case Ctx::Policy: return find_in(kPolicy, name);
    case Ctx::Record: return find_in(kRecord, name);
    case Ctx::Row: return find_in(kRow, name);
    case Ctx::Evaluated: return find_in(kEvaluated, name);
    case Ctx::Reason: return find_in(kReason, name);
    case Ctx::Identifiers: return find_in(kIdentifiers, name);
    case Ctx::AuthResults: return find_in(kAuthResults, name);
    case Ctx::AuthDkim: return find_in(kAuthDkim, name);
    case Ctx::AuthSpf: return find_in(kAuthSpf, name);
  }
  return nullptr;
}

// ------------------------------------------------------------------ libxml2 handles

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* ctxt) const noexcept {
    // A document is only created in SAX-compatibility corner cases; free it if it was.
    if (ctxt->myDoc != nullptr) xmlFreeDoc(ctxt->myDoc);
    xmlFreeParserCtxt(ctxt);
  }
};
using ParserCtxtPtr = std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter>;

// Sets the calling thread's libxml2 structured error handler for its lifetime (libxml2 keeps
// these per thread).
class ThreadErrorHandler {
 public:
  ThreadErrorHandler(void* ctx, xmlStructuredErrorFunc fn)
      : old_ctx_(xmlStructuredErrorContext), old_fn_(xmlStructuredError) {
    xmlSetStructuredErrorFunc(ctx, fn);
  }
  ~ThreadErrorHandler() { xmlSetStructuredErrorFunc(old_ctx_, old_fn_); }
  ThreadErrorHandler(const ThreadErrorHandler&) = delete;
  ThreadErrorHandler& operator=(const ThreadErrorHandler&) = delete;

 private:
  void* old_ctx_;
  xmlStructuredErrorFunc old_fn_;
};

void init_libxml2_once() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// ------------------------------------------------------------------ the parser

class DmarcSaxParser {
 public:
  explicit DmarcSaxParser(ReportSink& sink) : sink_(sink) {
    frames_.reserve(16);
    text_.reserve(256);
  }

  Status run(ByteSource& src);

 private:
  enum class Phase { BeforeFeedback, InFeedback, Done };

  // SAX2 callbacks: trampolines that never let an exception reach libxml2.
  static void on_start(void* self, const xmlChar* localname, const xmlChar* prefix,
                       const xmlChar* uri, int nb_namespaces, const xmlChar** namespaces,
                       int nb_attributes, int nb_defaulted, const xmlChar** attributes) noexcept;
  static void on_end(void* self, const xmlChar* localname, const xmlChar* prefix,
                     const xmlChar* uri) noexcept;
  static void on_characters(void* self, const xmlChar* ch, int len) noexcept;
  static void on_reference(void* self, const xmlChar* name) noexcept;
  static void on_internal_subset(void* self, const xmlChar* name, const xmlChar* external_id,
                                 const xmlChar* system_id) noexcept;
  static void on_error(void* self, xmlErrorPtr error) noexcept;
  static int io_read(void* self, char* buf, int len) noexcept;
  static int io_close(void* self) noexcept;

  template <class F>
  void guarded(F&& f) noexcept;

  void start(const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri);
  void end();
  void characters(std::string_view text);
  void libxml_error(const xmlError& e);

  void open(Ctx c);
  void close(Ctx c);
  void finish_leaf();
  std::string* text_target(Field f);
  void deliver_record();
  void fail(Error e);  // stops the parse with an error

  bool dmarc_namespace(const xmlChar* uri);
  const Child* lookup(Ctx parent, const xmlChar* localname);
  bool list_full(const Child* child) const;
  void note(std::string message);
  void note_at_line(std::string message);
  int line() const;

  ReportSink& sink_;
  ByteSource* src_ = nullptr;
  // libxml2 asks for ~4 KB at a time; the source is read in larger blocks.
  std::vector<char> inbuf_;
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  std::optional<Error> read_error_;
  xmlParserCtxt* ctxt_ = nullptr;

  Phase phase_ = Phase::BeforeFeedback;
  int outside_depth_ = 0;        // open elements before <feedback>
  std::string first_element_;    // the first element seen, for the "not a report" message
  std::string first_xml_error_;  // idem
  std::vector<Ctx> frames_;      // open containers, innermost last
  int skip_ = 0;                 // depth inside an ignored element
  bool in_leaf_ = false;
  Field leaf_ = Field::Version;
  const xmlChar* leaf_name_ = nullptr;  // for messages
  std::string text_;
  bool text_truncated_ = false;
  // The element that was just started, so that a broken start tag (an unescaped '<' in text)
  // can be closed right away (see libxml_error).
  const xmlChar* just_started_ = nullptr;
  // A child element of the current text element (only its name, for the salvage above).
  const xmlChar* leaf_child_ = nullptr;
  const xmlChar* leaf_child_prefix_ = nullptr;

  // libxml2 interns names and namespace URIs in its dictionary, so one name is one pointer for
  // the whole parse: lookups are cached by pointer (only for pointers the dictionary owns).
  struct CacheSlot {
    const xmlChar* name = nullptr;
    Ctx parent = Ctx::Feedback;
    const Child* child = nullptr;
  };
  std::array<CacheSlot, 128> lookup_cache_{};
  const xmlChar* accepted_ns_ = nullptr;

  std::string feedback_ns_;
  DmarcHeader header_;
  DmarcRecord record_;
  bool record_has_content_ = false;
  bool list_cap_noted_ = false;
  bool begun_ = false;

  std::vector<std::string> errors_;
  std::size_t suppressed_errors_ = 0;

  std::optional<Error> failure_;
  std::exception_ptr exception_;
};

template <class F>
void DmarcSaxParser::guarded(F&& f) noexcept {
  if (failure_ || exception_) return;
  try {
    f();
  } catch (...) {
    exception_ = std::current_exception();
    if (ctxt_ != nullptr) xmlStopParser(ctxt_);
  }
}

void DmarcSaxParser::on_start(void* self, const xmlChar* localname, const xmlChar* prefix,
                              const xmlChar* uri, int, const xmlChar**, int, int,
                              const xmlChar**) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  p->guarded([&] {
    p->start(localname, prefix, uri);
    p->just_started_ = localname;
  });
}

void DmarcSaxParser::on_end(void* self, const xmlChar*, const xmlChar*, const xmlChar*) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  p->just_started_ = nullptr;
  p->guarded([&] { p->end(); });
}

void DmarcSaxParser::on_characters(void* self, const xmlChar* ch, int len) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  p->just_started_ = nullptr;
  if (!p->in_leaf_ || p->skip_ > 0) return;  // whitespace between elements, ignored content
  p->guarded([&] {
    p->characters(
        std::string_view(reinterpret_cast<const char*>(ch), static_cast<std::size_t>(len)));
  });
}

// An entity reference that libxml2 did not resolve (we declare none): keep it as text.
void DmarcSaxParser::on_reference(void* self, const xmlChar* name) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  if (!p->in_leaf_ || p->skip_ > 0) return;
  p->guarded([&] {
    std::string ref = "&";
    ref += sv(name);
    ref += ';';
    p->characters(ref);
  });
}

void DmarcSaxParser::on_internal_subset(void* self, const xmlChar* name, const xmlChar*,
                                        const xmlChar*) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  p->guarded([&] {
    p->note_at_line("DOCTYPE " + std::string(sv(name)) +
                    " ignored: no DTD is loaded and no entity is expanded");
  });
}

void DmarcSaxParser::on_error(void* self, xmlErrorPtr error) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  if (error == nullptr) return;
  p->guarded([&] { p->libxml_error(*error); });
}

// libxml2 pulls input through these; a read error stops the parse and is returned by run().
int DmarcSaxParser::io_read(void* self, char* buf, int len) noexcept {
  auto* p = static_cast<DmarcSaxParser*>(self);
  if (p->failure_ || p->exception_ || p->read_error_ || len <= 0) return -1;
  if (p->ctxt_ != nullptr && xmlDictSize(p->ctxt_->dict) > kMaxDistinctNames) {
    p->failure_ = make_error(
        ErrorCode::LimitExceeded,
        "DMARC report uses more than " + std::to_string(kMaxDistinctNames) + " distinct XML names");
    return -1;
  }
  try {
    if (p->in_pos_ == p->in_len_) {
      auto n = p->src_->read(p->inbuf_);
      if (!n) {
        p->read_error_ = std::move(n).error();
        return -1;
      }
      p->in_pos_ = 0;
      p->in_len_ = *n;
    }
    std::size_t k = std::min(p->in_len_ - p->in_pos_, static_cast<std::size_t>(len));
    std::memcpy(buf, p->inbuf_.data() + p->in_pos_, k);
    p->in_pos_ += k;
    return static_cast<int>(k);
  } catch (...) {
    p->exception_ = std::current_exception();
    return -1;
  }
}

int DmarcSaxParser::io_close(void*) noexcept {
  return 0;
}

int DmarcSaxParser::line() const {
  return ctxt_ != nullptr ? xmlSAX2GetLineNumber(ctxt_) : 0;
}

void DmarcSaxParser::note(std::string message) {
  if (errors_.size() < kMaxErrors) {
    make_valid_utf8(message);  // messages quote the input
    errors_.push_back(std::move(message));
  } else {
    ++suppressed_errors_;
  }
}

void DmarcSaxParser::note_at_line(std::string message) {
  note("line " + std::to_string(line()) + ": " + message);
}

void DmarcSaxParser::libxml_error(const xmlError& e) {
  std::string msg = e.message ? e.message : "unknown XML error";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  if (phase_ == Phase::BeforeFeedback && first_xml_error_.empty()) {
    first_xml_error_ = "line " + std::to_string(e.line) + ": " + msg;
  }
  if (phase_ == Phase::Done) return;
  note("line " + std::to_string(e.line) + ": " + (e.level == XML_ERR_WARNING ? "warning: " : "") +
       msg);
  // A start tag that libxml2 could not finish ("Couldn't find end of Start Tag x"), which is
  // what an unescaped '<' in text looks like: <email><a@b.example></email>. libxml2 has reported
  // the element as started, then drops it from its element stack without an end event (parser.c
  // xmlParseElementStart: nodePop + namePop); mirror that, or every later end tag would close
  // the wrong element.
  if (e.code == XML_ERR_GT_REQUIRED && just_started_ != nullptr && e.str1 != nullptr &&
      std::strcmp(e.str1, reinterpret_cast<const char*>(just_started_)) == 0) {
    if (in_leaf_ && skip_ == 1 && leaf_child_ == just_started_) {
      // <email><a@b.example></email>: keep the text that the '<' began.
      std::string raw = "<";
      if (leaf_child_prefix_ != nullptr) (raw += sv(leaf_child_prefix_)) += ':';
      raw += sv(leaf_child_);
      characters(raw);
      note_at_line("unescaped '<' in <" + std::string(sv(leaf_name_)) + ">; kept as text");
      leaf_child_ = nullptr;
    }
    just_started_ = nullptr;
    end();
  }
}

bool DmarcSaxParser::dmarc_namespace(const xmlChar* uri) {
  if (uri == nullptr || uri == accepted_ns_) return true;
  std::string_view u = sv(uri);
  if (u == feedback_ns_ || u == kNsRfc9990 || u == kNsRfc7489) {
    if (xmlDictOwns(ctxt_->dict, uri) == 1) accepted_ns_ = uri;
    return true;
  }
  return false;
}

const Child* DmarcSaxParser::lookup(Ctx parent, const xmlChar* localname) {
  auto h = reinterpret_cast<std::uintptr_t>(localname);
  CacheSlot& slot =
      lookup_cache_[((h >> 3) ^ (h >> 11) ^ static_cast<std::uintptr_t>(parent) * 31) %
                    lookup_cache_.size()];
  if (slot.name == localname && slot.parent == parent) return slot.child;
  const Child* child = find_child(parent, sv(localname));
  if (xmlDictOwns(ctxt_->dict, localname) == 1) slot = {localname, parent, child};
  return child;
}

void DmarcSaxParser::start(const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri) {
  if (phase_ == Phase::Done) return;
  if (skip_ > 0) {
    ++skip_;
    return;
  }
  if (phase_ == Phase::BeforeFeedback) {
    std::string_view name = sv(localname);
    if (name == "feedback") {
      phase_ = Phase::InFeedback;
      feedback_ns_ = std::string(sv(uri));
      header_.xml_namespace = feedback_ns_;
      make_valid_utf8(header_.xml_namespace);
      frames_.push_back(Ctx::Feedback);
      if (outside_depth_ > 0) {
        note_at_line("<feedback> is not the document root (it follows an unclosed <" +
                     first_element_ + ">); parsed anyway");
      }
      return;
    }
    if (first_element_.empty()) {
      if (prefix != nullptr) first_element_ = std::string(sv(prefix)) + ":";
      first_element_ += name;
    }
    ++outside_depth_;
    return;
  }
  if (in_leaf_) {
    // Text elements have no children. Skip it; if its start tag turns out to be broken, it was
    // an unescaped '<' in the text (see libxml_error).
    leaf_child_ = localname;
    leaf_child_prefix_ = prefix;
    ++skip_;
    return;
  }
  if (!dmarc_namespace(uri)) {  // RFC 9990 §5: extensions are namespaced; ignore them
    ++skip_;
    return;
  }
  const Child* child = lookup(frames_.back(), localname);
  if (child == nullptr) {  // unknown element (RFC 9990 §5: SHOULD be ignored)
    ++skip_;
    return;
  }
  if (list_full(child)) {
    if (!list_cap_noted_) {
      note_at_line("more than " + std::to_string(kMaxListItems) + " <" + std::string(child->name) +
                   "> elements in one list; the rest are ignored");
      list_cap_noted_ = true;
    }
    ++skip_;
    return;
  }
  if (child->container) {
    open(child->ctx);
    frames_.push_back(child->ctx);
    return;
  }
  in_leaf_ = true;
  leaf_ = child->field;
  leaf_name_ = localname;
  text_.clear();
  text_truncated_ = false;
  if (frames_.size() > 1 && frames_[1] == Ctx::Record) record_has_content_ = true;
}

bool DmarcSaxParser::list_full(const Child* child) const {
  const DmarcRecord& r = record_;
  if (child->container) {
    switch (child->ctx) {
      case Ctx::Reason: return r.row.policy_evaluated.reason.size() >= kMaxListItems;
      case Ctx::AuthDkim: return r.auth_results.dkim.size() >= kMaxListItems;
      case Ctx::AuthSpf: return r.auth_results.spf.size() >= kMaxListItems;
      default: return false;
    }
  }
  return child->field == Field::Error && header_.report_metadata.error.size() >= kMaxListItems;
}

void DmarcSaxParser::end() {
  if (phase_ == Phase::Done) return;
  if (skip_ > 0) {
    --skip_;
    if (skip_ == 0 && in_leaf_ && leaf_child_ != nullptr) {
      note_at_line("element <" + std::string(sv(leaf_child_)) + "> inside <" +
                   std::string(sv(leaf_name_)) + "> ignored");
      leaf_child_ = nullptr;
    }
    return;
  }
  if (phase_ == Phase::BeforeFeedback) {
    if (outside_depth_ > 0) --outside_depth_;
    return;
  }
  if (in_leaf_) {
    finish_leaf();
    in_leaf_ = false;
    return;
  }
  Ctx c = frames_.back();
  frames_.pop_back();
  close(c);
}

void DmarcSaxParser::characters(std::string_view text) {
  if (text_.size() + text.size() > kMaxText) {
    text.remove_suffix(text.size() - std::min(text.size(), kMaxText - text_.size()));
    text_truncated_ = true;
  }
  text_.append(text);
}

void DmarcSaxParser::open(Ctx c) {
  DmarcPolicyEvaluated& ev = record_.row.policy_evaluated;
  switch (c) {
    case Ctx::Record:
      record_ = DmarcRecord{};
      record_has_content_ = false;
      break;
    case Ctx::Reason: ev.reason.emplace_back(); break;
    case Ctx::AuthDkim: record_.auth_results.dkim.emplace_back(); break;
    case Ctx::AuthSpf: record_.auth_results.spf.emplace_back(); break;
    default: break;
  }
}

void DmarcSaxParser::close(Ctx c) {
  switch (c) {
    case Ctx::Record: deliver_record(); break;
    case Ctx::Feedback:
      phase_ = Phase::Done;
      xmlStopParser(ctxt_);  // whatever follows </feedback> is not ours
      break;
    default: break;
  }
}

void DmarcSaxParser::deliver_record() {
  if (!record_has_content_) {
    note_at_line("empty <record> ignored");
    return;
  }
  if (!begun_) {
    begun_ = true;
    if (auto st = sink_.dmarc_begin(header_); !st) return fail(std::move(st).error());
  }
  if (auto st = sink_.dmarc_record(std::move(record_)); !st) return fail(std::move(st).error());
  record_ = DmarcRecord{};
}

void DmarcSaxParser::fail(Error e) {
  failure_ = std::move(e);
  xmlStopParser(ctxt_);
}

std::string* DmarcSaxParser::text_target(Field f) {
  DmarcReportMetadata& md = header_.report_metadata;
  DmarcPolicyPublished& pp = header_.policy_published;
  DmarcPolicyEvaluated& ev = record_.row.policy_evaluated;
  DmarcIdentifiers& id = record_.identifiers;
  auto& dkim = record_.auth_results.dkim;
  auto& spf = record_.auth_results.spf;
  switch (f) {
    case Field::Version: return &header_.version;
    case Field::OrgName: return &md.org_name;
    case Field::Email: return &md.email;
    case Field::ExtraContactInfo: return &md.extra_contact_info;
    case Field::ReportId: return &md.report_id;
    case Field::Error: return &md.error.emplace_back();
    case Field::Generator: return &md.generator;
    case Field::Domain: return &pp.domain;
    case Field::DiscoveryMethod: return &pp.discovery_method;
    case Field::Adkim: return &pp.adkim;
    case Field::Aspf: return &pp.aspf;
    case Field::P: return &pp.p;
    case Field::Sp: return &pp.sp;
    case Field::Np: return &pp.np;
    case Field::Fo: return &pp.fo;
    case Field::Testing: return &pp.testing;
    case Field::SourceIp: return &record_.row.source_ip;
    case Field::Disposition: return &ev.disposition;
    case Field::EvalDkim: return &ev.dkim;
    case Field::EvalSpf: return &ev.spf;
    case Field::ReasonType: return &ev.reason.back().type;
    case Field::ReasonComment: return &ev.reason.back().comment;
    case Field::EnvelopeTo: return &id.envelope_to;
    case Field::EnvelopeFrom: return &id.envelope_from;
    case Field::HeaderFrom: return &id.header_from;
    case Field::DkimDomain: return &dkim.back().domain;
    case Field::DkimSelector: return &dkim.back().selector;
    case Field::DkimResult: return &dkim.back().result;
    case Field::DkimHumanResult: return &dkim.back().human_result;
    case Field::SpfDomain: return &spf.back().domain;
    case Field::SpfScope: return &spf.back().scope;
    case Field::SpfResult: return &spf.back().result;
    case Field::SpfHumanResult: return &spf.back().human_result;
    case Field::Begin:
    case Field::End:
    case Field::Pct:
    case Field::Count: return nullptr;
  }
  return nullptr;
}

void DmarcSaxParser::finish_leaf() {
  if (text_truncated_) {
    note_at_line("<" + std::string(sv(leaf_name_)) + "> longer than " + std::to_string(kMaxText) +
                 " bytes; truncated");
  }
  std::string_view value = trim(text_);
  switch (leaf_) {
    case Field::Begin:
    case Field::End: {
      std::int64_t& target = leaf_ == Field::Begin ? header_.report_metadata.date_range.begin
                                                   : header_.report_metadata.date_range.end;
      if (!parse_number(value, target)) {
        note_at_line("<" + std::string(sv(leaf_name_)) + "> is not a number of seconds: \"" +
                     std::string(value.substr(0, 64)) + "\"");
      }
      return;
    }
    case Field::Count:
      if (!parse_number(value, record_.row.count)) {
        note_at_line("<count> is not a number: \"" + std::string(value.substr(0, 64)) + "\"");
      }
      return;
    case Field::Pct: {
      // RFC 7489 §6.3: 0..100. Absent or empty ⇒ nullopt; RFC 9990 dropped it.
      int pct = 0;
      if (value.empty()) return;
      if (parse_number(value, pct) && pct >= 0 && pct <= 100) {
        header_.policy_published.pct = pct;
      } else {
        note_at_line("<pct> is not a percentage: \"" + std::string(value.substr(0, 64)) + "\"");
      }
      return;
    }
    default: break;
  }
  std::string* target = text_target(leaf_);
  if (target == nullptr) return;
  target->assign(value);
  if (is_enum(leaf_)) to_lower_ascii(*target);
  if (!make_valid_utf8(*target)) {
    note_at_line("<" + std::string(sv(leaf_name_)) +
                 "> is not valid UTF-8; invalid bytes replaced by U+FFFD");
  }
}

Status DmarcSaxParser::run(ByteSource& src) {
  init_libxml2_once();

  xmlSAXHandler sax;
  std::memset(&sax, 0, sizeof sax);
  sax.initialized = XML_SAX2_MAGIC;
  sax.startElementNs = &DmarcSaxParser::on_start;
  sax.endElementNs = &DmarcSaxParser::on_end;
  sax.characters = &DmarcSaxParser::on_characters;  // CDATA too (cdataBlock is null)
  sax.reference = &DmarcSaxParser::on_reference;
  sax.internalSubset = &DmarcSaxParser::on_internal_subset;
  sax.serror = &DmarcSaxParser::on_error;
  // Deliberately null: entityDecl, getEntity, getParameterEntity, resolveEntity,
  // externalSubset — no entity is ever defined, expanded or loaded.

  detail::DmarcInputSource input(src);
  if (auto st = input.prepare(); !st) return st;
  src_ = &input;
  inbuf_.resize(kReadChunk);
  // Errors that libxml2 raises without a parser context (I/O, encoding) go to the calling
  // thread's handler: route them to `errors` too, never to stderr.
  ThreadErrorHandler thread_errors(this, &DmarcSaxParser::on_error);
  ParserCtxtPtr ctxt(xmlCreateIOParserCtxt(&sax, this, &DmarcSaxParser::io_read,
                                           &DmarcSaxParser::io_close, this,
                                           XML_CHAR_ENCODING_NONE));
  if (!ctxt) {
    if (read_error_) return std::move(*read_error_);
    if (exception_) std::rethrow_exception(exception_);
    return make_error(ErrorCode::Invalid, "cannot create an XML parser");
  }
  ctxt_ = ctxt.get();
  // No XML_PARSE_NOENT / DTDLOAD / DTDATTR / DTDVALID / HUGE: see the file comment.
  // XML_PARSE_IGNORE_ENC when the input layer already converted the bytes to UTF-8.
  xmlCtxtUseOptions(ctxt_, XML_PARSE_RECOVER | XML_PARSE_NONET |
                               (input.ignore_declared_encoding() ? XML_PARSE_IGNORE_ENC : 0));
  xmlParseDocument(ctxt_);
  if (exception_) std::rethrow_exception(exception_);
  if (read_error_) return std::move(*read_error_);
  if (failure_) return std::move(*failure_);

  if (phase_ == Phase::BeforeFeedback) {
    std::string why;
    if (!first_element_.empty()) {
      why = "the root element is <" + first_element_ + ">";
    } else if (!first_xml_error_.empty()) {
      why = "not XML (" + first_xml_error_ + ")";
    } else {
      why = "no element found";
    }
    make_valid_utf8(why);
    return make_error(ErrorCode::Invalid,
                      "not a DMARC aggregate report: no <feedback> element; " + why);
  }
  if (phase_ == Phase::InFeedback) {
    header_.complete = false;
    note_at_line("input ended before </feedback>; the report may be incomplete");
    if (in_leaf_ || frames_.size() > 1) {
      if (std::find(frames_.begin(), frames_.end(), Ctx::Record) != frames_.end()) {
        note_at_line("the last <record> is incomplete and was dropped");
      } else if (in_leaf_) {
        finish_leaf();
      }
    }
  }
  auto input_notes = input.notes();
  for (auto& n : input_notes) make_valid_utf8(n);  // they quote the input
  errors_.insert(errors_.begin(), input_notes.begin(), input_notes.end());
  if (suppressed_errors_ > 0) {
    errors_.push_back("... and " + std::to_string(suppressed_errors_) + " more errors");
  }
  if (!begun_) {
    // A <feedback> with neither metadata nor policy nor a record (e.g. "<feedback" followed by
    // binary garbage) carries no report: it is kept raw with the reason instead of being stored
    // as an empty report that would look parsed.
    const auto& meta = header_.report_metadata;
    if (meta.org_name.empty() && meta.report_id.empty() &&
        header_.policy_published.domain.empty()) {
      std::string why =
          "not a DMARC aggregate report: <feedback> holds no report metadata, "
          "policy or record";
      if (!errors_.empty()) why += " (" + errors_.front() + ")";
      make_valid_utf8(why);
      return make_error(ErrorCode::Invalid, std::move(why));
    }
    begun_ = true;
    if (auto st = sink_.dmarc_begin(header_); !st) return st;
  }
  return sink_.dmarc_end(header_, errors_);
}

}  // namespace

Status parse_dmarc_xml(ByteSource& src, ReportSink& sink) {
  DmarcSaxParser parser(sink);
  return parser.run(src);
}

}  // namespace mailreport::report
