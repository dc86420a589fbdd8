// DMARC aggregate report writer: RFC 9990 and RFC 7489 Appendix C XML through libxml2's
// xmlTextWriter, streamed into an output callback (see dmarc_xml_writer.hpp for what differs
// between the two formats). Text is made valid UTF-8 (invalid sequences become U+FFFD) and
// characters XML 1.0 forbids (C0 controls other than tab, LF, CR) become spaces, so that the
// output is always well-formed whatever a stored string holds.
#include "mailreport/report/dmarc_xml_writer.hpp"

#include <arpa/inet.h>
#include <libxml/xmlwriter.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "report/field_syntax.hpp"

namespace mailreport::report {

const char* to_string(DmarcXmlFormat f) noexcept {
  return f == DmarcXmlFormat::Rfc7489 ? "rfc7489" : "rfc9990";
}

std::optional<DmarcXmlFormat> dmarc_xml_format_from(std::string_view s) noexcept {
  if (s == "rfc9990") return DmarcXmlFormat::Rfc9990;
  if (s == "rfc7489") return DmarcXmlFormat::Rfc7489;
  return std::nullopt;
}

namespace {

constexpr const char* kRfc9990Namespace = "urn:ietf:params:xml:ns:dmarc-2.0";
constexpr const char* kGenerator = "mailreport";

const xmlChar* X(const char* s) {
  return reinterpret_cast<const xmlChar*>(s);
}

// Valid UTF-8 without the characters XML 1.0 §2.2 excludes.
std::string xml_text(std::string_view s) {
  std::string out = fieldtext::bounded_utf8(s, std::string::npos);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && u != '\t' && u != '\n' && u != '\r') c = ' ';
  }
  return out;
}

// RFC 7489's schema (Appendix C) only matches IPv6 addresses written with all eight groups;
// the compressed form ("2001:db8::1") would not validate, so it is written out in full.
std::string full_ipv6(const std::string& ip) {
  unsigned char b[16];
  if (ip.find(':') == std::string::npos || inet_pton(AF_INET6, ip.c_str(), b) != 1) return ip;
  if (ip.find('.') != std::string::npos) return ip;  // IPv4-mapped: not matched either way
  std::string out;
  char group[8];
  for (int i = 0; i < 16; i += 2) {
    std::snprintf(group, sizeof group, "%x", (b[i] << 8) | b[i + 1]);
    if (i > 0) out += ':';
    out += group;
  }
  return out;
}

}  // namespace

struct DmarcXmlWriter::Impl {
  DmarcXmlFormat format;
  Output out;
  std::optional<Error> output_error;  // what the output callback refused
  xmlTextWriterPtr writer = nullptr;  // owns its xmlOutputBuffer
  bool began = false;
  bool finished = false;

  ~Impl() {
    if (writer != nullptr) xmlFreeTextWriter(writer);
  }

  static int write_cb(void* ctx, const char* buffer, int len) {
    auto* self = static_cast<Impl*>(ctx);
    if (self->output_error) return -1;
    try {
      auto st = self->out(std::string_view(buffer, static_cast<std::size_t>(len)));
      if (!st) {
        self->output_error = st.error();
        return -1;
      }
    } catch (const std::exception& e) {  // never across libxml2's C frames
      self->output_error = make_error(ErrorCode::Io, std::string("output failed: ") + e.what());
      return -1;
    }
    return len;
  }
  static int close_cb(void*) { return 0; }

  // The output's error if it refused, else a generic one naming the step.
  Status fail(const char* what) {
    if (output_error) return *output_error;
    return make_error(ErrorCode::Io, std::string("writing DMARC XML failed at ") + what);
  }

  bool element(const char* name, std::string_view text) {
    return xmlTextWriterWriteElement(writer, X(name), X(xml_text(text).c_str())) >= 0;
  }
  bool optional_element(const char* name, std::string_view text) {
    return text.empty() || element(name, text);
  }
  bool start(const char* name) { return xmlTextWriterStartElement(writer, X(name)) >= 0; }
  bool end() { return xmlTextWriterEndElement(writer) >= 0; }
};

DmarcXmlWriter::DmarcXmlWriter(DmarcXmlFormat format, Output out)
    : impl_(std::make_unique<Impl>()) {
  impl_->format = format;
  impl_->out = std::move(out);
}

DmarcXmlWriter::~DmarcXmlWriter() = default;

Status DmarcXmlWriter::begin(const DmarcHeader& header) {
  Impl& m = *impl_;
  if (m.began) return make_error(ErrorCode::Invalid, "DmarcXmlWriter::begin called twice");
  m.began = true;
  xmlOutputBufferPtr buf = xmlOutputBufferCreateIO(&Impl::write_cb, &Impl::close_cb, &m, nullptr);
  if (buf == nullptr) return make_error(ErrorCode::Io, "xmlOutputBufferCreateIO failed");
  m.writer = xmlNewTextWriter(buf);
  if (m.writer == nullptr) {
    xmlOutputBufferClose(buf);
    return make_error(ErrorCode::Io, "xmlNewTextWriter failed");
  }
  xmlTextWriterSetIndent(m.writer, 1);
  xmlTextWriterSetIndentString(m.writer, X("  "));
  const bool v9990 = m.format == DmarcXmlFormat::Rfc9990;
  if (xmlTextWriterStartDocument(m.writer, "1.0", "UTF-8", nullptr) < 0) return m.fail("start");
  if (!m.start("feedback")) return m.fail("feedback");
  if (v9990 && xmlTextWriterWriteAttribute(m.writer, X("xmlns"), X(kRfc9990Namespace)) < 0) {
    return m.fail("namespace");
  }
  // Both schemas: version is a decimal; "1.0" is the only version either defines.
  if (!m.element("version", "1.0")) return m.fail("version");

  const DmarcReportMetadata& md = header.report_metadata;
  bool ok = m.start("report_metadata") && m.element("org_name", md.org_name) &&
            m.element("email", md.email) &&
            m.optional_element("extra_contact_info", md.extra_contact_info) &&
            m.element("report_id", md.report_id) && m.start("date_range") &&
            m.element("begin", std::to_string(md.date_range.begin)) &&
            m.element("end", std::to_string(md.date_range.end)) && m.end();
  if (ok && !md.error.empty()) {
    if (v9990) {  // at most one <error> in RFC 9990's schema
      std::string joined;
      for (const auto& e : md.error) joined += (joined.empty() ? "" : "; ") + e;
      ok = m.element("error", joined);
    } else {
      for (const auto& e : md.error) ok = ok && m.element("error", e);
    }
  }
  if (ok && v9990) ok = m.element("generator", md.generator.empty() ? kGenerator : md.generator);
  ok = ok && m.end();
  if (!ok) return m.fail("report_metadata");

  const DmarcPolicyPublished& pp = header.policy_published;
  ok = m.start("policy_published") && m.element("domain", pp.domain) &&
       m.optional_element("adkim", pp.adkim) && m.optional_element("aspf", pp.aspf) &&
       m.element("p", pp.p);
  if (v9990) {
    ok = ok && m.optional_element("sp", pp.sp) && m.optional_element("np", pp.np) &&
         m.optional_element("discovery_method", pp.discovery_method) &&
         m.optional_element("fo", pp.fo) && m.optional_element("testing", pp.testing);
  } else {
    // RFC 7489 §6.3: sp defaults to p, pct to 100, fo to 0; the schema requires all three.
    ok = ok && m.element("sp", pp.sp.empty() ? pp.p : pp.sp) &&
         m.element("pct", std::to_string(pp.pct.value_or(100))) &&
         m.element("fo", pp.fo.empty() ? "0" : pp.fo);
  }
  ok = ok && m.end();
  if (!ok) return m.fail("policy_published");
  return {};
}

Status DmarcXmlWriter::record(const DmarcRecord& r) {
  Impl& m = *impl_;
  if (!m.began || m.finished) {
    return make_error(ErrorCode::Invalid, "DmarcXmlWriter::record outside begin/finish");
  }
  const bool v9990 = m.format == DmarcXmlFormat::Rfc9990;
  const DmarcPolicyEvaluated& pe = r.row.policy_evaluated;
  std::string disposition = pe.disposition.empty() ? "none" : pe.disposition;
  if (!v9990 && disposition == "pass") disposition = "none";  // not in RFC 7489's schema
  bool ok = m.start("record") && m.start("row") &&
            m.element("source_ip", v9990 ? r.row.source_ip : full_ipv6(r.row.source_ip)) &&
            m.element("count", std::to_string(r.row.count)) && m.start("policy_evaluated") &&
            m.element("disposition", disposition) &&
            m.element("dkim", pe.dkim.empty() ? "fail" : pe.dkim) &&
            m.element("spf", pe.spf.empty() ? "fail" : pe.spf);
  for (const auto& reason : pe.reason) {
    std::string type = reason.type;
    std::string comment = reason.comment;
    if (!v9990 && type == "policy_test_mode") {  // RFC 9990 only
      type = "other";
      if (comment.empty()) comment = "policy_test_mode";
    }
    ok = ok && m.start("reason") && m.element("type", type) &&
         m.optional_element("comment", comment) && m.end();
  }
  ok = ok && m.end() && m.end();  // policy_evaluated, row
  if (!ok) return m.fail("row");

  const DmarcIdentifiers& id = r.identifiers;
  if (v9990) {
    ok = m.start("identifiers") && m.optional_element("envelope_to", id.envelope_to) &&
         m.optional_element("envelope_from", id.envelope_from) &&
         m.element("header_from", id.header_from) && m.end();
  } else {
    ok = m.start("identifiers") && m.optional_element("envelope_to", id.envelope_to) &&
         m.element("envelope_from", id.envelope_from) && m.element("header_from", id.header_from) &&
         m.end();
  }
  if (!ok) return m.fail("identifiers");

  ok = m.start("auth_results");
  for (const auto& d : r.auth_results.dkim) {
    ok = ok && m.start("dkim") && m.element("domain", d.domain);
    // RFC 9990 requires a selector; RFC 7489's schema lets it be absent.
    ok = ok &&
         (v9990 ? m.element("selector", d.selector) : m.optional_element("selector", d.selector));
    ok = ok && m.element("result", d.result) &&
         m.optional_element("human_result", d.human_result) && m.end();
  }
  bool spf_written = false;
  for (const auto& s : r.auth_results.spf) {
    if (v9990 && (spf_written || (!s.scope.empty() && s.scope != "mfrom"))) continue;
    ok = ok && m.start("spf") && m.element("domain", s.domain);
    if (v9990) {
      ok = ok && m.element("scope", "mfrom");
    } else {
      ok = ok && m.element("scope", s.scope.empty() ? "mfrom" : s.scope);
    }
    ok = ok && m.element("result", s.result) &&
         m.optional_element("human_result", s.human_result) && m.end();
    spf_written = true;
  }
  if (!v9990 && !spf_written) {
    // RFC 7489's schema wants at least one SPF result: none was evaluated for this row.
    ok = ok && m.start("spf") && m.element("domain", id.envelope_from) &&
         m.element("scope", "mfrom") && m.element("result", "none") && m.end();
  }
  ok = ok && m.end() && m.end();  // auth_results, record
  if (!ok) return m.fail("auth_results");
  return {};
}

Status DmarcXmlWriter::finish() {
  Impl& m = *impl_;
  if (!m.began || m.finished) {
    return make_error(ErrorCode::Invalid, "DmarcXmlWriter::finish outside begin");
  }
  m.finished = true;
  if (xmlTextWriterEndDocument(m.writer) < 0) return m.fail("end");
  if (xmlTextWriterFlush(m.writer) < 0) return m.fail("flush");
  if (m.output_error) return *m.output_error;
  return {};
}

Result<std::string> write_dmarc_xml(const DmarcAggregate& report, DmarcXmlFormat format) {
  std::string out;
  DmarcXmlWriter w(format, [&](std::string_view piece) -> Status {
    out.append(piece);
    return {};
  });
  if (auto st = w.begin(report.header); !st) return st.error();
  for (const auto& r : report.records) {
    if (auto st = w.record(r); !st) return st.error();
  }
  if (auto st = w.finish(); !st) return st.error();
  return out;
}

}  // namespace mailreport::report
