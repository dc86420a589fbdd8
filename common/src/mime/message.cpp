// MIME message parsing with GMime 3: see mime/message.hpp. GMime's headers stay in this file
// (and header.cpp); every GObject is owned by a GPtr.
#include "mailreport/mime/message.hpp"

#include <gmime/gmime.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace mailreport::mime {

namespace {

struct GObjectDeleter {
  void operator()(void* p) const noexcept {
    if (p) g_object_unref(p);
  }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectDeleter>;

// Trees deeper or larger than this are cut (GMime itself parses them; we stop walking).
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxNodes = 4096;

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string trim(const char* v) {
  std::string s = v ? v : "";
  auto first = s.find_first_not_of(" \t\r\n");
  auto last = s.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}

std::vector<HeaderField> header_fields(GMimeObject* obj) {
  std::vector<HeaderField> out;
  GMimeHeaderList* list = g_mime_object_get_header_list(obj);
  if (!list) return out;
  int count = g_mime_header_list_get_count(list);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* name = g_mime_header_get_name(h);
    if (!name) continue;
    out.push_back(HeaderField{name, trim(g_mime_header_get_value(h))});
  }
  return out;
}

// A GMime stream (a part's raw content) as a ByteSource. The end of a bounded stream is
// judged here: GMime's fs stream answers a read at its bound with -1 and never reports eos.
class GMimeByteSource final : public ByteSource {
 public:
  explicit GMimeByteSource(GPtr<GMimeStream> s) : s_(std::move(s)) {}
  Result<std::size_t> read(std::span<char> buf) override {
    GMimeStream* s = s_.get();
    std::size_t want = buf.size();
    if (s->bound_end != -1) {
      if (s->position >= s->bound_end) return std::size_t{0};
      want = static_cast<std::size_t>(
          std::min<gint64>(s->bound_end - s->position, static_cast<gint64>(want)));
    }
    if (want == 0) return std::size_t{0};
    ssize_t n = g_mime_stream_read(s, buf.data(), want);
    if (n < 0) return make_error(ErrorCode::Io, "MIME part: read failed");
    return static_cast<std::size_t>(n);
  }

 private:
  GPtr<GMimeStream> s_;
};

// Removes a content transfer encoding (base64, quoted-printable, uuencode) incrementally,
// with GMime's decoder state machine.
class DecodingSource final : public ByteSource {
 public:
  DecodingSource(std::unique_ptr<ByteSource> in, GMimeContentEncoding encoding)
      : in_(std::move(in)) {
    g_mime_encoding_init_decode(&state_, encoding);
  }
  Result<std::size_t> read(std::span<char> buf) override {
    while (pos_ == out_.size()) {
      if (eof_) return std::size_t{0};
      std::array<char, 16384> enc;
      auto n = in_->read(enc);
      if (!n) return std::move(n).error();
      out_.resize(g_mime_encoding_outlen(&state_, std::max<std::size_t>(*n, 4)) + 16);
      std::size_t m = *n == 0 ? g_mime_encoding_flush(&state_, enc.data(), 0, out_.data())
                              : g_mime_encoding_step(&state_, enc.data(), *n, out_.data());
      if (*n == 0) eof_ = true;
      out_.resize(m);
      pos_ = 0;
    }
    std::size_t k = std::min(buf.size(), out_.size() - pos_);
    std::memcpy(buf.data(), out_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::unique_ptr<ByteSource> in_;
  GMimeEncoding state_{};
  std::string out_;
  std::size_t pos_ = 0;
  bool eof_ = false;
};

}  // namespace

// ------------------------------------------------------------------ a write-capped stream
// GMimeStreamMem that keeps at most `cap` bytes and silently drops the rest (reporting every
// write as complete, so that g_mime_object_write_to_stream finishes). Used to serialise an
// embedded message in bounded memory.
extern "C" {
struct MrCappedStream {
  GMimeStreamMem parent_object;
  gsize cap;
  gsize seen;
};
struct MrCappedStreamClass {
  GMimeStreamMemClass parent_class;
};
}

G_DEFINE_TYPE(MrCappedStream, mr_capped_stream, GMIME_TYPE_STREAM_MEM)

static ssize_t mr_capped_stream_write(GMimeStream* stream, const char* buf, size_t len) {
  auto* self = reinterpret_cast<MrCappedStream*>(stream);
  gsize kept = self->seen < self->cap ? self->cap - self->seen : 0;
  gsize n = std::min<gsize>(kept, len);
  self->seen += len;
  if (n > 0) {
    ssize_t w = GMIME_STREAM_CLASS(mr_capped_stream_parent_class)->write(stream, buf, n);
    if (w < 0) return w;
  }
  return static_cast<ssize_t>(len);
}

static void mr_capped_stream_class_init(MrCappedStreamClass* klass) {
  GMIME_STREAM_CLASS(klass)->write = mr_capped_stream_write;
}

static void mr_capped_stream_init(MrCappedStream* self) {
  self->cap = 0;
  self->seen = 0;
}

namespace {
GPtr<GMimeStream> new_capped_stream(std::size_t cap) {
  auto* self = static_cast<MrCappedStream*>(g_object_new(mr_capped_stream_get_type(), nullptr));
  GMimeStreamMem* mem = &self->parent_object;
  mem->buffer = g_byte_array_new();
  mem->owner = TRUE;
  self->cap = cap;
  g_mime_stream_construct(GMIME_STREAM(mem), 0, -1);
  return GPtr<GMimeStream>(GMIME_STREAM(mem));
}
}  // namespace

// ------------------------------------------------------------------ Message

const std::string* Part::parameter(std::string_view name) const {
  for (const auto& p : parameters) {
    if (p.name.size() == name.size() &&
        ::strncasecmp(p.name.data(), name.data(), name.size()) == 0) {
      return &p.value;
    }
  }
  return nullptr;
}

struct Message::Impl {
  GPtr<GMimeMessage> root;
  std::vector<HeaderField> headers;
  std::vector<Part> parts;
  std::vector<GMimeObject*> objects;   // parts[i] ↔ objects[i] (owned by root's tree)
  std::vector<std::size_t> enclosing;  // nearest Message node above parts[i], or kNoParent
  std::vector<std::string> notes;
  bool truncated = false;

  void walk(GMimeObject* obj, std::size_t parent, std::size_t enclosing_msg, int depth);
};

void Message::Impl::walk(GMimeObject* obj, std::size_t parent, std::size_t enclosing_msg,
                         int depth) {
  if (!obj) return;
  if (parts.size() >= kMaxNodes || depth > kMaxDepth) {
    if (!truncated) notes.push_back("MIME tree too large or deep: rest not examined");
    truncated = true;
    return;
  }
  Part p;
  p.index = parts.size();
  p.parent = parent;
  p.depth = depth;
  if (GMimeContentType* ct = g_mime_object_get_content_type(obj)) {
    const char* type = g_mime_content_type_get_media_type(ct);
    const char* sub = g_mime_content_type_get_media_subtype(ct);
    p.content_type = lower(std::string(type ? type : "text") + "/" + (sub ? sub : "plain"));
    if (GMimeParamList* params = g_mime_content_type_get_parameters(ct)) {
      int n = g_mime_param_list_length(params);
      for (int i = 0; i < n; ++i) {
        GMimeParam* prm = g_mime_param_list_get_parameter_at(params, i);
        const char* name = g_mime_param_get_name(prm);
        const char* value = g_mime_param_get_value(prm);
        if (name) p.parameters.push_back(Parameter{lower(name), value ? value : ""});
      }
    }
  }
  if (GMimeContentDisposition* cd = g_mime_object_get_content_disposition(obj)) {
    const char* d = g_mime_content_disposition_get_disposition(cd);
    p.disposition = lower(d ? d : "");
    if (const char* f = g_mime_content_disposition_get_parameter(cd, "filename")) p.filename = f;
  }
  if (p.filename.empty()) {
    if (GMimeContentType* ct = g_mime_object_get_content_type(obj)) {
      if (const char* f = g_mime_content_type_get_parameter(ct, "name")) p.filename = f;
    }
  }
  std::size_t self = p.index;
  parts.push_back(std::move(p));
  objects.push_back(obj);
  enclosing.push_back(enclosing_msg);
  if (parent != Part::kNoParent) parts[parent].children.push_back(self);

  if (GMIME_IS_MESSAGE_PART(obj)) {
    parts[self].kind = NodeKind::Message;
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner) {
      parts[self].headers = header_fields(GMIME_OBJECT(inner));
      walk(g_mime_message_get_mime_part(inner), self, self, depth + 1);
    }
  } else if (GMIME_IS_MULTIPART(obj)) {
    parts[self].kind = NodeKind::Multipart;
    parts[self].headers = header_fields(obj);
    GMimeMultipart* mp = GMIME_MULTIPART(obj);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i)
      walk(g_mime_multipart_get_part(mp, i), self, enclosing_msg, depth + 1);
  } else {
    parts[self].kind = NodeKind::Leaf;
    parts[self].headers = header_fields(obj);
    if (GMIME_IS_PART(obj)) {
      GMimeContentEncoding enc = g_mime_part_get_content_encoding(GMIME_PART(obj));
      const char* s = g_mime_content_encoding_to_string(enc);
      parts[self].transfer_encoding = s ? lower(s) : "";
    }
  }
}

Message::Message(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Message::Message(Message&&) noexcept = default;
Message& Message::operator=(Message&&) noexcept = default;
Message::~Message() = default;

const std::vector<HeaderField>& Message::headers() const noexcept {
  return impl_->headers;
}
const std::vector<Part>& Message::parts() const noexcept {
  return impl_->parts;
}
const std::vector<std::string>& Message::notes() const noexcept {
  return impl_->notes;
}
bool Message::truncated() const noexcept {
  return impl_->truncated;
}

const std::vector<HeaderField>& Message::enclosing_headers(std::size_t index) const {
  if (index >= impl_->parts.size()) return impl_->headers;
  std::size_t m = impl_->enclosing[index];
  return m == Part::kNoParent ? impl_->headers : impl_->parts[m].headers;
}

namespace {

// Length of a leading mbox "From " line (with its line break), 0 when there is none.
std::size_t from_line_length(std::string_view head) {
  if (head.substr(0, 5) != "From ") return 0;
  auto e = head.find_first_of("\r\n");
  if (e == std::string_view::npos) return 0;
  if (head.substr(e, 2) == "\r\n") return e + 2;
  return e + 1;
}

bool cr_only(std::string_view head) {
  return head.find('\r') != std::string_view::npos && head.find('\n') == std::string_view::npos;
}

}  // namespace

Result<Message> Message::parse(const Input& input, std::size_t max_bytes) {
  ensure_initialized();
  auto head = input.head(8192);
  if (!head) return std::move(head).error();
  auto impl = std::make_unique<Impl>();

  GPtr<GMimeStream> stream;
  std::size_t skip = from_line_length(*head);
  if (skip > 0) impl->notes.push_back("mbox \"From \" line skipped");
  if (cr_only(*head)) {
    // GMime splits lines at LF only; convert old-Mac CR line endings first.
    auto src = input.open();
    if (!src) return std::move(src).error();
    auto all = read_all(**src, max_bytes);
    if (!all) return std::move(all).error();
    std::replace(all->begin(), all->end(), '\r', '\n');
    impl->notes.push_back("CR-only line endings converted to LF");
    std::string_view body = std::string_view(*all).substr(std::min(skip, all->size()));
    stream.reset(g_mime_stream_mem_new_with_buffer(body.data(), body.size()));
  } else if (input.in_memory()) {
    std::string_view body =
        input.memory().substr(std::min<std::size_t>(skip, input.memory().size()));
    stream.reset(g_mime_stream_mem_new_with_buffer(body.data(), body.size()));
  } else {
    auto fd = input.dup_fd();
    if (!fd) return std::move(fd).error();
    if (::lseek(fd->get(), static_cast<off_t>(skip), SEEK_SET) < 0) {
      return make_error(ErrorCode::Io, input.name() + ": seek failed");
    }
    // The stream owns the descriptor from here on.
    stream.reset(g_mime_stream_fs_new_with_bounds(fd->release(), static_cast<gint64>(skip), -1));
  }
  if (!stream) return make_error(ErrorCode::Io, input.name() + ": cannot create a MIME stream");

  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  // Leaf contents stay in the stream (file or buffer) instead of being copied.
  g_mime_parser_set_persist_stream(parser.get(), TRUE);
  impl->root.reset(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!impl->root) return make_error(ErrorCode::Invalid, input.name() + ": no MIME message found");
  impl->headers = header_fields(GMIME_OBJECT(impl->root.get()));
  impl->walk(g_mime_message_get_mime_part(impl->root.get()), Part::kNoParent, Part::kNoParent, 0);
  return Message(std::move(impl));
}

Result<std::unique_ptr<ByteSource>> Message::open(std::size_t index) const {
  if (index >= impl_->parts.size() || impl_->parts[index].kind != NodeKind::Leaf) {
    return make_error(ErrorCode::Invalid, "MIME part " + std::to_string(index) + " is not a leaf");
  }
  GMimeObject* obj = impl_->objects[index];
  GMimeDataWrapper* content =
      GMIME_IS_PART(obj) ? g_mime_part_get_content(GMIME_PART(obj)) : nullptr;
  GMimeStream* raw = content ? g_mime_data_wrapper_get_stream(content) : nullptr;
  if (!raw) {
    static constexpr char kNothing[] = "";  // a non-null empty view
    return std::unique_ptr<ByteSource>(
        std::make_unique<MemorySource>(std::string_view(kNothing, 0)));
  }
  // An independent view of the content (own position), so several streams can be open.
  GPtr<GMimeStream> sub(g_mime_stream_substream(raw, raw->bound_start, raw->bound_end));
  if (!sub) return make_error(ErrorCode::Io, "MIME part: cannot open content");
  GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(content);
  std::unique_ptr<ByteSource> raw_source = std::make_unique<GMimeByteSource>(std::move(sub));
  if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
      enc == GMIME_CONTENT_ENCODING_UUENCODE) {
    return std::unique_ptr<ByteSource>(
        std::make_unique<DecodingSource>(std::move(raw_source), enc));
  }
  return raw_source;
}

Result<std::string> Message::text(std::size_t index, std::size_t max_bytes, bool* truncated) const {
  if (truncated) *truncated = false;
  if (index >= impl_->parts.size()) {
    return make_error(ErrorCode::Invalid, "MIME part " + std::to_string(index) + " does not exist");
  }
  const Part& p = impl_->parts[index];
  if (p.kind == NodeKind::Leaf) {
    auto src = open(index);
    if (!src) return std::move(src).error();
    std::string out;
    std::array<char, 16384> buf;
    for (;;) {
      auto n = (*src)->read(buf);
      if (!n) return std::move(n).error();
      if (*n == 0) break;
      std::size_t room = max_bytes - out.size();
      if (*n > room) {
        out.append(buf.data(), room);
        if (truncated) *truncated = true;
        break;
      }
      out.append(buf.data(), *n);
    }
    return out;
  }
  GMimeObject* obj = impl_->objects[index];
  if (p.kind == NodeKind::Message) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (!inner) return std::string();
    obj = GMIME_OBJECT(inner);
  }
  GPtr<GMimeStream> out = new_capped_stream(max_bytes);
  if (g_mime_object_write_to_stream(obj, nullptr, out.get()) < 0) {
    return make_error(ErrorCode::Io, "MIME part: cannot serialise");
  }
  auto* capped = reinterpret_cast<MrCappedStream*>(out.get());
  if (truncated) *truncated = capped->seen > capped->cap;
  GByteArray* bytes = capped->parent_object.buffer;
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

std::unique_ptr<ByteSource> base64_decoding_source(std::unique_ptr<ByteSource> encoded) {
  ensure_initialized();
  return std::make_unique<DecodingSource>(std::move(encoded), GMIME_CONTENT_ENCODING_BASE64);
}

}  // namespace mailreport::mime
