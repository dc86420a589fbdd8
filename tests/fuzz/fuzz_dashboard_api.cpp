// Fuzzes the dashboard's HTTP handler (routes, the API's query parameters, report ids in the
// path, the token check) over a SQLite store holding the sample reports. The input is read as
// lines: the path, then query arguments as name=value (what libmicrohttpd hands over after
// decoding), then, after an empty line, the Authorization header's value (our token when
// absent). Every answer must be a well-formed status with a body of its declared type.
#include <cstddef>
#include <cstdint>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "mailreport/config/config.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/web/dashboard.hpp"

namespace {

using namespace mailreport;

constexpr const char* kToken = "fuzz-token-0123456789abcdef";

struct Fixture {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("mailreport-fuzz-dashboard-" + std::to_string(::getpid()));
  std::unique_ptr<store::Store> store;
  web::Handler handler;

  ~Fixture() {
    handler = nullptr;
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  Fixture() {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    store::SqliteOptions options;
    options.path = dir / "store.db";
    options.synchronous_full = false;
    auto s = store::open_sqlite_store(options);
    if (!s) std::abort();
    store = std::move(*s);
    static NullLogger log;
    ingest::StoreIngestor ingestor(*store, log);
    ingest::Envelope env;
    env.source = "import";
    for (const auto& entry : std::filesystem::directory_iterator(
             std::filesystem::path(MAILREPORT_SOURCE_DIR) / "samples" / "reports")) {
      auto input = Input::from_file(entry.path());
      if (input) (void)ingestor.ingest(env, *input);
    }
    web::DashboardContext ctx;
    ctx.store = store.get();
    ctx.config = [] { return std::make_shared<const config::Config>(); };
    ctx.token = [] { return std::string(kToken); };
    ctx.now = [] { return std::int64_t{1767225600}; };  // 2026-01-01
    handler = web::make_dashboard_handler(std::move(ctx));
  }
};

std::string_view next_line(std::string_view& in) {
  const auto nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  web::Request r;
  r.method = "GET";
  r.remote = "127.0.0.1";
  r.path = std::string(next_line(in));
  if (r.path.empty() || r.path.front() != '/') r.path.insert(r.path.begin(), '/');
  std::string auth = std::string("Bearer ") + kToken;
  while (!in.empty()) {
    std::string_view line = next_line(in);
    if (line.empty()) {
      auth = std::string(in);
      break;
    }
    const auto eq = line.find('=');
    r.query[std::string(line.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : std::string(line.substr(eq + 1));
  }
  r.headers["authorization"] = auth;
  const web::Response response = fixture.handler(r);
  if (response.status < 200 || response.status > 599) std::abort();
  if (response.content_type.empty()) std::abort();
  return 0;
}
