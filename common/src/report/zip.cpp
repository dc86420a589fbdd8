// Zip archives with libarchive: see zip.hpp. libarchive's headers stay in this file.
//
// Ratio accounting: libarchive does not say how many compressed bytes belong to an entry, so
// an entry's input is the raw bytes read from the source since its header was read, plus one
// read block (what libarchive may hold buffered). That is an overestimate of the input, i.e.
// the ratio cap is slightly lenient, never strict.
#include "report/zip.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <memory>
#include <optional>

namespace mailreport::report::detail {

namespace {

constexpr std::size_t kBlock = 16384;

struct ArchiveDeleter {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// The client side of libarchive's read callback. No exception may cross it.
struct Client {
  ByteSource* src = nullptr;
  std::array<char, kBlock> buf{};
  std::optional<Error> error;
};

la_ssize_t read_callback(archive* a, void* data, const void** out) noexcept {
  auto* c = static_cast<Client*>(data);
  try {
    auto n = c->src->read(c->buf);
    if (!n) {
      c->error = n.error();
      archive_set_error(a, EIO, "%s", n.error().message.c_str());
      return -1;
    }
    *out = c->buf.data();
    return static_cast<la_ssize_t>(*n);
  } catch (...) {
    c->error = make_error(ErrorCode::Io, "zip: read failed");
    archive_set_error(a, EIO, "read failed");
    return -1;
  }
}

std::string archive_message(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown error";
}

std::string entry_label(const ZipEntry& e) {
  return e.name.empty() ? "entry #" + std::to_string(e.number) + " (no name)"
                        : "entry '" + e.name + "'";
}

// The content of the current entry.
class EntrySource final : public ByteSource {
 public:
  EntrySource(archive* a, Client& client, std::string label)
      : a_(a), client_(client), label_(std::move(label)) {}
  Result<std::size_t> read(std::span<char> buf) override {
    la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (client_.error) return *client_.error;
    return make_error(ErrorCode::Invalid, "zip: " + label_ + ": " + archive_message(a_));
  }

 private:
  archive* a_;
  Client& client_;
  std::string label_;
};

}  // namespace

Result<ZipWalk> for_each_zip_entry(ByteSource& in, const DecompressionCaps& caps,
                                   std::size_t max_entries, const ZipEntryFn& fn,
                                   std::vector<std::string>* notes) {
  ArchivePtr a(archive_read_new());
  if (!a) return make_error(ErrorCode::Invalid, "zip: cannot initialise libarchive");
  archive_read_support_format_zip(a.get());
  Client client;
  client.src = &in;
  if (archive_read_open(a.get(), &client, nullptr, read_callback, nullptr) != ARCHIVE_OK) {
    if (client.error) return *client.error;
    return make_error(ErrorCode::Invalid, "zip: " + archive_message(a.get()));
  }
  ZipWalk walk;
  std::size_t number = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc == ARCHIVE_WARN && notes) notes->push_back("zip: " + archive_message(a.get()));
    if (rc < ARCHIVE_WARN) {
      if (client.error) return *client.error;
      return make_error(ErrorCode::Invalid, "zip: " + archive_message(a.get()));
    }
    ++number;
    // Directories and symbolic links hold no report.
    if (archive_entry_filetype(entry) == AE_IFDIR || archive_entry_filetype(entry) == AE_IFLNK) {
      continue;
    }
    ZipEntry e;
    e.number = number;
    if (const char* p = archive_entry_pathname(entry)) e.name = p;
    if (archive_entry_is_encrypted(entry)) {
      if (notes) notes->push_back("zip: " + entry_label(e) + " is encrypted, skipped");
      continue;
    }
    if (walk.entries >= max_entries) {
      return make_error(ErrorCode::LimitExceeded,
                        "zip: more than " + std::to_string(max_entries) + " entries");
    }
    ++walk.entries;
    std::uint64_t start = static_cast<std::uint64_t>(archive_filter_bytes(a.get(), -1));
    archive* raw = a.get();
    EntrySource content(raw, client, entry_label(e));
    CappedSource capped(
        content,
        [raw, start] {
          auto now = static_cast<std::uint64_t>(archive_filter_bytes(raw, -1));
          return (now > start ? now - start : 0) + kBlock;
        },
        caps, "zip");
    if (auto s = fn(e, capped); !s) return std::move(s).error();
    if (capped.tripped()) return *capped.tripped();
    // Skip the rest of the entry through the caps: libarchive would otherwise inflate it
    // without limits to find the next header.
    if (auto s = drain(capped); !s) {
      if (s.error().code != ErrorCode::Invalid) return std::move(s).error();
      // A damaged entry: what the callback saw has been reported; the rest cannot be found.
      if (notes) notes->push_back(s.error().message + " (rest of the archive skipped)");
      break;
    }
  }
  return walk;
}

}  // namespace mailreport::report::detail
