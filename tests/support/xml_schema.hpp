// XSD validation of the XML we generate against the schemas in ../shared/schemas (libxml2's
// xmlschemas), for any test (the writer's and the aggregate builder's). Header only; callers skip
// when the schemas are absent (MAILREPORT_REQUIRE_CORPUS).
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include <memory>
#include <string>

#include "testsupport.hpp"

namespace mailreport::test {

namespace detail {
inline void collect_schema_error(void* ctx, xmlErrorPtr error) {
  if (error != nullptr && error->message != nullptr) {
    *static_cast<std::string*>(ctx) +=
        "line " + std::to_string(error->line) + ": " + error->message;
  }
}
}  // namespace detail

// Validates `xml` against the XSD `xsd` of schemas_dir(); "" when valid, else libxml2's
// messages. RFC 7489's schema declares a target namespace with unqualified local elements,
// while every real report (and our writer) uses no namespace at all: pass that namespace as
// `root_namespace` and the root alone is put in it before validating (and the schema gets it
// as its default namespace, so that its unprefixed type references resolve).
inline std::string schema_errors(const std::string& xml, const std::string& xsd,
                                 const char* root_namespace = nullptr) {
  std::string errors;
  std::string xsd_text = read_file(schemas_dir() / xsd);
  if (root_namespace != nullptr) {
    // RFC 7489's schema names its types without a prefix but declares no default namespace,
    // so as published the references do not resolve (libxml2: "References from this schema
    // to components in no namespace are not allowed"). Declaring the target namespace as the
    // default — the evident intent — makes it load; nothing else is changed.
    const auto at = xsd_text.find("<xs:schema");
    if (at == std::string::npos) return "no <xs:schema> in " + xsd;
    xsd_text.insert(at + 10, std::string(" xmlns=\"") + root_namespace + "\"");
  }
  std::unique_ptr<xmlSchemaParserCtxt, decltype(&xmlSchemaFreeParserCtxt)> pctx(
      xmlSchemaNewMemParserCtxt(xsd_text.data(), static_cast<int>(xsd_text.size())),
      &xmlSchemaFreeParserCtxt);
  std::unique_ptr<xmlSchema, decltype(&xmlSchemaFree)> schema(xmlSchemaParse(pctx.get()),
                                                              &xmlSchemaFree);
  if (!schema) return "the schema " + xsd + " does not load";
  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "report.xml", nullptr,
                    XML_PARSE_NONET),
      &xmlFreeDoc);
  if (!doc) return "not well-formed";
  if (root_namespace != nullptr) {
    xmlNodePtr root = xmlDocGetRootElement(doc.get());
    xmlNsPtr ns = xmlNewNs(root, reinterpret_cast<const xmlChar*>(root_namespace),
                           reinterpret_cast<const xmlChar*>("d"));
    xmlSetNs(root, ns);
  }
  std::unique_ptr<xmlSchemaValidCtxt, decltype(&xmlSchemaFreeValidCtxt)> vctx(
      xmlSchemaNewValidCtxt(schema.get()), &xmlSchemaFreeValidCtxt);
  xmlSchemaSetValidStructuredErrors(vctx.get(), &detail::collect_schema_error, &errors);
  const int rc = xmlSchemaValidateDoc(vctx.get(), doc.get());
  if (rc != 0 && errors.empty()) errors = "invalid (" + std::to_string(rc) + ")";
  return errors;
}

}  // namespace mailreport::test
