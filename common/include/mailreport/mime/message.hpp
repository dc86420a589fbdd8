// A parsed MIME message (RFC 5322 header + RFC 2045/2046 body structure), as the report
// extractor needs it: the tree flattened depth-first (multipart/* and message/rfc822 nested),
// each leaf's content type, parameters and file name, and a stream over its DECODED content
// (base64 / quoted-printable / uuencode removed; no charset conversion).
//
// Parsing is GMime's. File inputs are parsed from the file descriptor with GMime's persistent
// stream, so leaf bodies are not copied into memory: open() streams them from the file.
// A leading mbox "From " line is skipped; CR-only line endings (old Mac mail) are converted
// to LF in memory first, since GMime only knows LF and CRLF.
//
// Not done: charset conversion of bodies, S/MIME or PGP decryption, message/partial
// reassembly, message/external-body.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/mime/header.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::mime {

struct Parameter {
  std::string name;  // lower-case
  std::string value;
};

enum class NodeKind {
  Leaf,       // a body part with content (text/*, application/*, message/delivery-status, ...)
  Multipart,  // multipart/*: its children follow it
  Message,    // message/rfc822, message/global, ...: the embedded message's body follows it
};

// One node of the MIME tree. parts()[0] is the top-level body.
struct Part {
  std::size_t index = 0;
  std::size_t parent = kNoParent;  // index of the enclosing Multipart/Message node
  int depth = 0;                   // 0 for the top-level body
  NodeKind kind = NodeKind::Leaf;
  std::string content_type;           // "type/subtype", lower-case
  std::vector<Parameter> parameters;  // Content-Type parameters
  std::string filename;     // Content-Disposition filename, else Content-Type name; "" if none
  std::string disposition;  // "attachment", "inline" or "" (lower-case)
  std::string transfer_encoding;      // "base64", "quoted-printable", "7bit", ... or ""
  std::vector<std::size_t> children;  // direct children (Multipart: its parts; Message: body)
  // For Message nodes: the embedded message's header fields. For other nodes: the part's
  // own MIME header fields.
  std::vector<HeaderField> headers;

  static constexpr std::size_t kNoParent = static_cast<std::size_t>(-1);

  // Content-Type parameter by name (case-insensitive); nullptr when absent.
  const std::string* parameter(std::string_view name) const;
  bool is_type(std::string_view type_slash_subtype) const {
    return content_type == type_slash_subtype;
  }
  bool is_leaf() const { return kind == NodeKind::Leaf; }
};

class Message {
 public:
  // Parses a whole message. Never fails on malformed MIME (GMime salvages what it can: a
  // missing closing boundary ends the multipart at end of input); fails with Io when the
  // input cannot be read, with Invalid when it holds no message at all (e.g. empty), and with
  // LimitExceeded when a CR-only message that must be converted is larger than max_bytes.
  static Result<Message> parse(const Input& input, std::size_t max_bytes = 256u << 20);

  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  // The top-level header fields, in order, unfolded and RFC 2047-decoded.
  const std::vector<HeaderField>& headers() const noexcept;
  // Every node, depth-first (a node before its children).
  const std::vector<Part>& parts() const noexcept;
  // Header fields of the message that encloses node `index` (the nearest Message node above
  // it, or the top-level headers).
  const std::vector<HeaderField>& enclosing_headers(std::size_t index) const;
  // Notes about what was odd (From line skipped, CR-only line endings converted, ...).
  const std::vector<std::string>& notes() const noexcept;
  // True when the tree was deeper than 64 levels or had more than 4096 nodes: parts() then
  // holds only what came before the cut.
  bool truncated() const noexcept;

  // A stream over the decoded content of a Leaf node. The stream stays valid after the
  // Message is destroyed. Fails with Invalid for other node kinds.
  Result<std::unique_ptr<ByteSource>> open(std::size_t index) const;

  // The node as it appears on the wire: for a Message node the embedded message (header and
  // body), for a Leaf its decoded content. At most max_bytes are produced; *truncated says
  // whether more existed.
  Result<std::string> text(std::size_t index, std::size_t max_bytes,
                           bool* truncated = nullptr) const;

 private:
  struct Impl;
  explicit Message(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Wraps a stream of base64 text (whitespace and line breaks allowed) into a stream of the
// decoded bytes, using GMime's base64 decoder.
std::unique_ptr<ByteSource> base64_decoding_source(std::unique_ptr<ByteSource> encoded);

}  // namespace mailreport::mime
