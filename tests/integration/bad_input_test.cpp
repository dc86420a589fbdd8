// Bad input loses nothing (design: "Safety rules"). Hostile and broken messages — a gzip bomb,
// a zip bomb, billion laughs, an external entity, broken MIME — go through `mailreport parse`,
// `mailreport import` and the real mailreport-lmtp receiver. For each: a clear error (or a
// report salvaged with notes), a bounded time (a generous bound that only catches a hang or a
// bomb really expanded, not a benchmark), no crash, and — the point — the raw message kept
// byte for byte with its parse error, and LMTP answering 250 for every recipient (a parse
// failure is not a delivery failure, RFC 2033 §4.2). A line longer than limits.line-length is
// refused over LMTP with 552 5.3.4 and nothing is kept.
#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <zlib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "mailreport/lmtp/client.hpp"
#include "mailreport/report/json.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/store/store.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::RunResult;

constexpr auto kBound = 60s;  // per step; the bombs are cut short in well under a second
constexpr int kExitDataErr = 65;
constexpr std::size_t kLineLength = 4096;  // limits.line-length of the receiver under test
const std::vector<std::string> kRecipients = {"dmarc@reports.test", "tlsrpt@reports.test"};

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

void write(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

// ---------------------------------------------------------------- building the inputs

std::string deflate_with(z_stream& zs, std::string_view in, int flush) {
  std::string out;
  char buf[65536];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    if (deflate(&zs, flush) == Z_STREAM_ERROR) throw std::runtime_error("deflate failed");
    out.append(buf, sizeof buf - zs.avail_out);
  } while (zs.avail_in > 0 || zs.avail_out == 0);
  return out;
}

// A gzip member (RFC 1952) of `prefix` and then `total` bytes of `fill`, made without deflating
// all of it: after Z_FULL_FLUSH deflate starts afresh, so each identical 1 MiB chunk compresses
// to the same bytes, which are repeated (1 GiB of zeros gives about 1 MB).
std::string gzip_bomb(std::string_view prefix, char fill, std::uint64_t total) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&zs, &deflateEnd);
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10);
  out += deflate_with(zs, prefix, Z_FULL_FLUSH);
  const std::string chunk(1u << 20, fill);
  const std::string first = deflate_with(zs, chunk, Z_FULL_FLUSH);
  if (deflate_with(zs, chunk, Z_FULL_FLUSH) != first) throw std::runtime_error("not repeatable");
  const std::uint64_t chunks = total / chunk.size();
  uLong crc =
      crc32(0, reinterpret_cast<const Bytef*>(prefix.data()), static_cast<uInt>(prefix.size()));
  const uLong chunk_crc =
      crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()));
  for (std::uint64_t i = 0; i < chunks; ++i) {
    out += first;
    crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(chunk.size()));
  }
  out += deflate_with(zs, std::string_view(), Z_FINISH);
  const std::uint64_t size = prefix.size() + chunks * chunk.size();
  for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((size >> (8 * i)) & 0xff);  // mod 2^32
  return out;
}

// A zip archive (written by libarchive) with one entry of `total` zero bytes. Deflate makes
// 64 MiB of zeros about 64 KB (1000:1); the compression-ratio limit (200:1, enforced after the
// first MiB) stops it long before the size limit would, so a bigger bomb only costs build time.
std::string zip_bomb(const std::string& name, std::uint64_t total) {
  struct Writer {
    std::string out;
    static la_ssize_t write(archive*, void* self, const void* buf, size_t n) {
      static_cast<Writer*>(self)->out.append(static_cast<const char*>(buf), n);
      return static_cast<la_ssize_t>(n);
    }
  } w;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), &archive_write_free);
  archive_write_set_format_zip(a.get());
  archive_write_set_options(a.get(), "zip:compression-level=9");
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &w, nullptr, &Writer::write, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error("archive_write_open");
  }
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                             &archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(total));
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
    throw std::runtime_error("archive_write_header");
  }
  const std::string chunk(1u << 20, '\0');
  for (std::uint64_t done = 0; done < total; done += chunk.size()) {
    if (archive_write_data(a.get(), chunk.data(), chunk.size()) < 0) {
      throw std::runtime_error("archive_write_data");
    }
  }
  archive_write_close(a.get());
  return w.out;
}

// Base64 (GLib's, which comes with GMime) in lines of 76 characters (RFC 2045 §6.8).
std::string base64_lines(std::string_view data) {
  std::unique_ptr<gchar, decltype(&g_free)> encoded(
      g_base64_encode(reinterpret_cast<const guchar*>(data.data()), data.size()), &g_free);
  std::string_view b64(encoded.get());
  std::string out;
  out.reserve(b64.size() + b64.size() / 38 + 4);
  for (std::size_t i = 0; i < b64.size(); i += 76) {
    out.append(b64.substr(i, 76));
    out += "\r\n";
  }
  return out;
}

const std::string kHeaders =
    "Return-Path: <noreply-dmarc@reporter.example>\r\n"
    "From: noreply-dmarc@reporter.example\r\n"
    "To: dmarc@reports.test\r\n"
    "Subject: Report Domain: example.com Submitter: reporter.example Report-ID: <bad-1>\r\n"
    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    "Message-ID: <bad-1@reporter.example>\r\n"
    "MIME-Version: 1.0\r\n";

// A report message: a text part and one base64 attachment.
std::string with_attachment(const std::string& type, const std::string& name,
                            std::string_view content) {
  return kHeaders +
         "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n"
         "--=_b1\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n"
         "--=_b1\r\nContent-Type: " +
         type + "; name=\"" + name +
         "\"\r\n"
         "Content-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment; filename=\"" +
         name + "\"\r\n\r\n" + base64_lines(content) + "--=_b1--\r\n";
}

// Lines of a well-formed DMARC report after the prolog, with `org` as org_name's content.
std::string feedback(const std::string& org, const std::string& report_id = "bad-1") {
  return "<feedback>\r\n"
         "<report_metadata><org_name>" +
         org +
         "</org_name><email>a@reporter.example</email>"
         "<report_id>" +
         report_id +
         "</report_id>\r\n"
         "<date_range><begin>1767225600</begin><end>1767311999</end></date_range>"
         "</report_metadata>\r\n"
         "<policy_published><domain>example.com</domain><p>none</p></policy_published>\r\n"
         "<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>"
         "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>"
         "</row>\r\n<identifiers><header_from>example.com</header_from></identifiers>"
         "<auth_results><spf><domain>example.com</domain><result>pass</result></spf>"
         "</auth_results></record>\r\n</feedback>\r\n";
}

std::string billion_laughs() {
  std::string dtd = "<!DOCTYPE feedback [\r\n<!ENTITY lol0 \"lol\">\r\n";
  for (int i = 1; i <= 9; ++i) {
    dtd += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) dtd += "&lol" + std::to_string(i - 1) + ";";
    dtd += "\">\r\n";
  }
  dtd += "]>\r\n";
  return "<?xml version=\"1.0\"?>\r\n" + dtd + feedback("&lol9;", "laughs-1");
}

std::string external_entity() {
  return "<?xml version=\"1.0\"?>\r\n"
         "<!DOCTYPE feedback [\r\n<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\r\n]>\r\n" +
         feedback("&xxe;", "xxe-1");
}

// ---------------------------------------------------------------- cases

struct Case {
  std::string name;
  std::function<std::string()> make;
  // What the parse error must say (any one of these); empty when a salvaged report is
  // acceptable as well.
  std::vector<std::string> error_has;
  bool may_hold_a_report = false;
  // What a salvaged report's parser notes must say ("" = nothing in particular).
  std::string salvage_note;

  Case(std::string n, std::function<std::string()> m, std::vector<std::string> errors,
       bool may_hold = false, std::string note = "")
      : name(std::move(n)),
        make(std::move(m)),
        error_has(std::move(errors)),
        may_hold_a_report(may_hold),
        salvage_note(std::move(note)) {}
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  return {
      {"gzip_bomb_of_zeros",
       [] {
         return with_attachment("application/gzip", "report.xml.gz",
                                gzip_bomb("", '\0', 1ull << 30));
       },
       {"limit exceeded", "unrecognised content"}},
      {"gzip_bomb_behind_an_xml_start",
       [] {
         return with_attachment("application/gzip", "report.xml.gz",
                                gzip_bomb("<?xml version=\"1.0\"?>\n<feedback>", ' ', 1ull << 30));
       },
       {"limit exceeded"}},
      {"zip_bomb",
       [] {
         return with_attachment("application/zip", "report.zip", zip_bomb("report.xml", 64u << 20));
       },
       {"limit exceeded"}},
      {"billion_laughs",
       [] { return with_attachment("text/xml", "report.xml", billion_laughs()); },
       {},
       true,
       "no entity is expanded"},
      {"external_entity",
       [] { return with_attachment("text/xml", "report.xml", external_entity()); },
       {},
       true,
       "no entity is expanded"},
      {"unterminated_boundary_truncated_gzip",
       [] {
         std::string gz = gzip_bomb("<?xml version=\"1.0\"?>\n" + feedback("x"), ' ', 0);
         std::string m = kHeaders +
                         "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n"
                         "--=_b1\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n"
                         "--=_b1\r\nContent-Type: application/gzip; name=\"r.xml.gz\"\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n";
         return m + base64_lines(gz.substr(0, gz.size() / 2));  // no closing boundary
       },
       {"no report", "gzip", "unrecognised", "Invalid", "invalid", "truncated"},
       true,  // the parser salvages what came before the cut, and says so
       "incomplete"},
      {"unterminated_boundary_around_a_whole_report",
       [] {
         std::string m = with_attachment(
             "text/xml", "report.xml", "<?xml version=\"1.0\"?>\r\n" + feedback("Org", "whole-1"));
         return m.substr(0, m.rfind("--=_b1--"));
       },
       {},
       true},
      {"garbage_headers",
       [] {
         return std::string("\x01\x02garbage\xff\xfe\r\n") + "no colon on this line\r\n" +
                ": a field without a name\r\n" + std::string(900, 'X') + ": long name\r\n" +
                "Content-Type: multipart/mixed\r\n"  // no boundary
                "Content-Transfer-Encoding: base64\r\n"
                "\r\n--\r\n" +
                std::string("\x00\x00\xff\x80", 4) + "--=_b1--\r\n";
       },
       {"no report", "unrecognised"}},
      {"multiparts_nested_too_deep",
       [] {
         std::string m = kHeaders + "Content-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n";
         for (int i = 1; i <= 300; ++i) {
           m += "--n" + std::to_string(i - 1) + "\r\nContent-Type: multipart/mixed; boundary=\"n" +
                std::to_string(i) + "\"\r\n\r\n";
         }
         return m + "--n300\r\nContent-Type: text/plain\r\n\r\nend\r\n";
       },
       {"limit exceeded", "no report"}},
  };
}

// The first line of /etc/passwd (root's entry): what an expanded external entity would leak.
std::string passwd_marker() {
  std::ifstream in("/etc/passwd");
  std::string line;
  std::getline(in, line);
  return line.size() > 8 ? line : std::string("root:x:0:0:");
}

// Everything the store holds, as text: raw message descriptions and exported reports.
std::string store_as_text(const fs::path& db) {
  auto s = store::open_sqlite_store({.path = db, .read_only = true});
  if (!s) return "cannot open: " + s.error().describe();
  std::string text;
  auto raws = (*s)->list_raw_messages({});
  if (raws) {
    for (const auto& m : *raws) text += m.parse_error + "\n";
  }
  auto reports = (*s)->list_reports({});
  if (reports) {
    for (const auto& r : *reports) {
      auto full = (*s)->get_report(r.id);
      if (full)
        text += report::to_json(full->report)
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      text += "\n";
    }
  }
  return text;
}

// The raw message `id` of the store at `db`, its description and its bytes.
struct Kept {
  store::RawMessageInfo info;
  std::string bytes;
  std::size_t reports = 0;                 // reports stored from it
  std::vector<std::string> report_errors;  // their parser notes
};

std::optional<Kept> kept_message(const fs::path& db, std::int64_t id) {
  auto s = store::open_sqlite_store({.path = db, .read_only = true});
  if (!s) {
    ADD_FAILURE() << s.error().describe();
    return std::nullopt;
  }
  auto info = (*s)->get_raw_message(id);
  if (!info) {
    ADD_FAILURE() << "raw message " << id << " was not kept: " << info.error().describe();
    return std::nullopt;
  }
  Kept k;
  k.info = *info;
  auto st = (*s)->read_raw(id, [&](std::span<const char> piece) -> Status {
    k.bytes.append(piece.data(), piece.size());
    return {};
  });
  if (!st) ADD_FAILURE() << st.error().describe();
  auto reports = (*s)->list_reports({});
  if (reports) {
    for (const auto& r : *reports) {
      if (r.message_id != id) continue;
      ++k.reports;
      auto full = (*s)->get_report(r.id);
      if (!full) continue;
      const auto& errors = std::visit([](const auto& m) { return m.errors; }, full->report);
      k.report_errors.insert(k.report_errors.end(), errors.begin(), errors.end());
    }
  }
  return k;
}

// What every case must show about the kept message.
void expect_kept(const Case& c, const std::string& message, const std::optional<Kept>& k) {
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->info.size, message.size());
  EXPECT_TRUE(k->bytes == message) << "the raw message was not kept byte for byte";
  if (k->reports == 0 && k->info.parse_status != store::ParseStatus::Duplicate) {
    EXPECT_EQ(k->info.parse_status, store::ParseStatus::Unparsed);
    EXPECT_FALSE(k->info.parse_error.empty()) << "an unparsed message is kept with its reason";
  }
  if (k->reports > 0 && !c.salvage_note.empty()) {
    bool noted = false;
    for (const auto& e : k->report_errors) noted = noted || contains(e, c.salvage_note);
    EXPECT_TRUE(noted) << "the salvaged report does not say '" << c.salvage_note << "'";
  }
  if (!c.may_hold_a_report) {
    EXPECT_EQ(k->reports, 0u);
    bool said = false;
    for (const auto& e : c.error_has) said = said || contains(k->info.parse_error, e);
    EXPECT_TRUE(said) << "unclear error: " << k->info.parse_error;
  }
}

// ---------------------------------------------------------------- the receiver

class Receiver {
 public:
  // Starts mailreport-lmtp on a free loopback port; retries when another process took the
  // port between choosing and binding it.
  explicit Receiver(const fs::path& dir) : dir_(dir) {
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      std::uint16_t port = test::free_loopback_port();
      write(dir_ / "lmtp.toml",
            "[report.analysis]\naddresses = [\"dmarc@*\", \"tlsrpt@*\"]\n"
            "[store]\npath = \"" +
                (dir_ / "lmtp.db").string() +
                "\"\n"
                "[lmtp]\nunix-socket = \"\"\ntcp = \"127.0.0.1:" +
                std::to_string(port) +
                "\"\n"
                "hostname = \"receiver.test\"\n"
                "[limits]\nline-length = " +
                std::to_string(kLineLength) + "\n");
      if (start(port)) port_ = port;
    }
  }
  ~Receiver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::uint16_t port() const { return port_; }
  fs::path db() const { return dir_ / "lmtp.db"; }
  std::string log() const { return test::read_file(dir_ / "lmtp.log"); }

 private:
  bool start(std::uint16_t port) {
    const auto binary = test::lmtp_binary();
    std::vector<std::string> args{binary.string(), "--config", (dir_ / "lmtp.toml").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const auto log = dir_ / "lmtp.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) return false;  // it gave up (port taken?)
      if (auto c = lmtp::Client::connect_tcp("127.0.0.1", port, 5s)) {
        c->quit();
        pid_ = pid;
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return false;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// The message id in "250 2.0.0 <rcpt> delivered, stored as message N".
std::int64_t stored_id(const std::string& text) {
  auto at = text.rfind("stored as message ");
  if (at == std::string::npos) return 0;
  return std::stoll(text.substr(at + 18));
}

class BadInput : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    receiver_dir_ = std::make_unique<test::TempDir>();
    receiver_ = std::make_unique<Receiver>(receiver_dir_->path());
  }
  static void TearDownTestSuite() {
    receiver_.reset();
    receiver_dir_.reset();
  }

  void SetUp() override {
    ASSERT_NE(receiver_->port(), 0) << "mailreport-lmtp did not start";
    write(config_path(), "[store]\npath = \"" + (dir_ / "import.db").string() + "\"\n");
  }

  fs::path config_path() const { return dir_ / "mailreport.toml"; }

  RunResult mr(const std::vector<std::string>& args) {
    std::vector<std::string> argv{test::cli_binary().string(), "-c", config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv, "/dev/null", 2 * kBound);
    EXPECT_FALSE(r.timed_out) << "mailreport " << args.front() << " hung";
    EXPECT_LT(r.elapsed, kBound) << "mailreport " << args.front() << " took too long";
    EXPECT_GE(r.exit_code, 0);
    EXPECT_LT(r.exit_code, 128) << "mailreport " << args.front() << " crashed:\n" << r.err;
    return r;
  }

  static std::unique_ptr<test::TempDir> receiver_dir_;
  static std::unique_ptr<Receiver> receiver_;
  test::TempDir dir_;
};

std::unique_ptr<test::TempDir> BadInput::receiver_dir_;
std::unique_ptr<Receiver> BadInput::receiver_;

TEST_P(BadInput, ParseGivesAClearErrorInBoundedTime) {
  const Case& c = GetParam();
  write(dir_ / "message.eml", c.make());
  auto r = mr({"parse", (dir_ / "message.eml").string()});
  auto j = nlohmann::json::parse(r.out);
  if (j.at("error").is_string()) {
    EXPECT_EQ(r.exit_code, kExitDataErr);
    EXPECT_TRUE(j.at("reports").empty()) << r.out.substr(0, 2000);
    bool said = c.error_has.empty();
    for (const auto& e : c.error_has) said = said || contains(j.at("error").get<std::string>(), e);
    EXPECT_TRUE(said) << "unclear error: " << j.at("error");
  } else {
    EXPECT_TRUE(c.may_hold_a_report) << r.out.substr(0, 2000);
    EXPECT_EQ(r.exit_code, 0);
    ASSERT_FALSE(j.at("reports").empty());
    EXPECT_TRUE(contains(j.at("reports").dump(), c.salvage_note))
        << "the salvaged report does not say '" << c.salvage_note << "'";
  }
  EXPECT_FALSE(contains(r.out + r.err, passwd_marker()));
}

TEST_P(BadInput, ImportKeepsTheRawMessageWithItsError) {
  const Case& c = GetParam();
  const std::string message = c.make();
  write(dir_ / "message.eml", message);
  auto r = mr({"import", (dir_ / "message.eml").string()});
  EXPECT_FALSE(contains(r.out, "not stored")) << r.out << r.err;
  if (contains(r.out, "imported 1")) {
    EXPECT_TRUE(c.may_hold_a_report) << r.out << r.err;
    EXPECT_EQ(r.exit_code, 0);
  } else {
    EXPECT_TRUE(contains(r.out, "imported 0, duplicate 0, failed 1")) << r.out << r.err;
    EXPECT_EQ(r.exit_code, kExitDataErr);
    EXPECT_TRUE(contains(r.err, "not parsed (kept raw as message 1): ")) << r.err;
  }
  expect_kept(c, message, kept_message(dir_ / "import.db", 1));
  EXPECT_FALSE(contains(r.out + r.err, passwd_marker()));
  EXPECT_FALSE(contains(store_as_text(dir_ / "import.db"), passwd_marker()));

  // The administrator sees it, reason included.
  auto list = mr({"list", "messages", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto rows = nlohmann::json::parse(list.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("size"), message.size());
  auto exported = mr({"export", "--format", "json"});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_FALSE(contains(exported.out, passwd_marker()));
  EXPECT_FALSE(contains(exported.out, "lollollol")) << "an entity was expanded";
}

TEST_P(BadInput, LmtpAnswers250AndKeepsTheRawMessageWithItsError) {
  const Case& c = GetParam();
  const std::string message = c.make();
  const auto start = std::chrono::steady_clock::now();
  auto client = lmtp::Client::connect_tcp("127.0.0.1", receiver_->port(), kBound);
  ASSERT_TRUE(client) << client.error().describe();
  ASSERT_TRUE(client->hello("mta.test"));
  auto replies = client->deliver("noreply-dmarc@reporter.example", kRecipients, message);
  ASSERT_TRUE(replies) << replies.error().describe() << "\n" << receiver_->log();
  client->quit();
  EXPECT_LT(std::chrono::steady_clock::now() - start, kBound);

  ASSERT_EQ(replies->size(), kRecipients.size());
  std::int64_t id = 0;
  for (const auto& r : *replies) {
    // RFC 2033 §4.2: one reply per recipient; a parse failure is not a delivery failure.
    EXPECT_EQ(r.reply.code, 250) << r.recipient << ": " << r.reply.text;
    EXPECT_TRUE(contains(r.reply.text, "2.0.0")) << r.reply.text;
    EXPECT_FALSE(contains(r.reply.text, passwd_marker()));
    std::int64_t n = stored_id(r.reply.text);
    EXPECT_GT(n, 0) << r.reply.text;
    if (id != 0) {
      EXPECT_EQ(n, id) << "the message is stored once";
    }
    id = n;
  }
  ASSERT_GT(id, 0);
  auto kept = kept_message(receiver_->db(), id);
  expect_kept(c, message, kept);
  if (kept) {
    EXPECT_EQ(kept->info.meta.source, "lmtp");
    EXPECT_EQ(kept->info.meta.mail_from, "noreply-dmarc@reporter.example");
    EXPECT_EQ(kept->info.meta.rcpt_to, kRecipients);
  }
  EXPECT_FALSE(contains(store_as_text(receiver_->db()), passwd_marker()));
  EXPECT_FALSE(contains(receiver_->log(), passwd_marker()));
}

std::string case_name(const ::testing::TestParamInfo<Case>& param) {
  return param.param.name;
}

INSTANTIATE_TEST_SUITE_P(Hostile, BadInput, ::testing::ValuesIn(cases()), case_name);

// The salvaged XML reports must not have expanded anything: the entity references stay
// unresolved and the parser says why.
TEST(BadInputXml, EntitiesAreNeitherLoadedNorExpanded) {
  test::TempDir dir;
  write(dir / "mailreport.toml", "[store]\npath = \"" + (dir / "s.db").string() + "\"\n");
  write(dir / "laughs.xml", billion_laughs());
  write(dir / "xxe.xml", external_entity());
  auto r = test::run_command({test::cli_binary().string(), "-c", (dir / "mailreport.toml").string(),
                              "parse", (dir / "laughs.xml").string(), (dir / "xxe.xml").string()});
  ASSERT_FALSE(r.timed_out);
  EXPECT_LT(r.elapsed, kBound);
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out << r.err;
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line);
    if (j.at("reports").empty()) {
      EXPECT_TRUE(j.at("error").is_string());  // refusing the document is fine too
      continue;
    }
    const auto& rep = j.at("reports")[0];
    const std::string org = rep.at("report_metadata").at("org_name");
    EXPECT_FALSE(contains(org, "lol")) << "billion laughs expanded: " << org.substr(0, 80);
    EXPECT_FALSE(contains(org, "root")) << "external entity loaded: " << org;
    bool noted = false;
    for (const auto& e : rep.at("errors"))
      noted = noted || contains(e.get<std::string>(), "DOCTYPE");
    EXPECT_TRUE(noted) << "the ignored DTD is not noted: " << rep.at("errors");
  }
  EXPECT_FALSE(contains(r.out + r.err, passwd_marker()));
}

// limits.line-length: over LMTP a longer line is refused after the data with 552 5.3.4 for
// every recipient and nothing is kept (RFC 5321 §4.5.3.1.6, RFC 2033 §4.2); the session goes
// on. `mailreport import` has no line limit: it stores the report.
TEST(BadInputLongLine, LmtpRefusesWith552AndImportStores) {
  test::TempDir dir;
  Receiver receiver(dir.path());
  ASSERT_NE(receiver.port(), 0) << "mailreport-lmtp did not start";
  const std::string xml = "<?xml version=\"1.0\"?>\r\n<!-- " + std::string(3 * kLineLength, 'x') +
                          " -->\r\n" + feedback("Long Line Org", "long-1");
  const std::string message = kHeaders +
                              "Content-Type: text/xml\r\n"
                              "Content-Disposition: attachment; filename=\"report.xml\"\r\n\r\n" +
                              xml;

  auto count_raw = [&] {
    auto s = store::open_sqlite_store({.path = receiver.db(), .read_only = true});
    if (!s) return std::size_t{0};
    auto raws = (*s)->list_raw_messages({});
    return raws ? raws->size() : 0;
  };
  const std::size_t before = count_raw();
  auto client = lmtp::Client::connect_tcp("127.0.0.1", receiver.port(), kBound);
  ASSERT_TRUE(client) << client.error().describe();
  ASSERT_TRUE(client->hello("mta.test"));
  auto replies = client->deliver("noreply-dmarc@reporter.example", kRecipients, message);
  ASSERT_TRUE(replies) << replies.error().describe();
  ASSERT_EQ(replies->size(), kRecipients.size());
  for (const auto& r : *replies) {
    EXPECT_EQ(r.reply.code, 552) << r.recipient << ": " << r.reply.text;
    EXPECT_TRUE(contains(r.reply.text, "5.3.4")) << r.reply.text;
  }
  EXPECT_EQ(count_raw(), before) << "a refused message must not be kept";

  // The same connection delivers the next message normally.
  const std::string fine = kHeaders +
                           "Content-Type: text/xml\r\n"
                           "Content-Disposition: attachment; filename=\"report.xml\"\r\n\r\n"
                           "<?xml version=\"1.0\"?>\r\n" +
                           feedback("Short Line Org", "short-1");
  replies = client->deliver("noreply-dmarc@reporter.example", {kRecipients[0]}, fine);
  ASSERT_TRUE(replies) << replies.error().describe();
  ASSERT_EQ(replies->size(), 1u);
  EXPECT_EQ((*replies)[0].reply.code, 250) << (*replies)[0].reply.text;
  client->quit();
  EXPECT_EQ(count_raw(), before + 1);

  // Import: no line limit; the report is stored (or, at worst, kept raw with a clean error).
  write(dir / "mailreport.toml", "[store]\npath = \"" + (dir / "import.db").string() + "\"\n");
  write(dir / "long.eml", message);
  auto r = test::run_command({test::cli_binary().string(), "-c", (dir / "mailreport.toml").string(),
                              "import", (dir / "long.eml").string()});
  ASSERT_FALSE(r.timed_out);
  EXPECT_LT(r.exit_code, 128) << r.err;
  EXPECT_TRUE(contains(r.out, "imported 1, duplicate 0, failed 0") ||
              contains(r.out, "imported 0, duplicate 0, failed 1"))
      << r.out << r.err;
  auto kept = kept_message(dir / "import.db", 1);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->bytes, message);
}

}  // namespace
}  // namespace mailreport
