// bench-gen-dmarc: writes a synthetic DMARC aggregate report (RFC 7489 format, uncompressed)
// of about SIZE megabytes to stdout or a file, for the ingest benchmark.
//   bench-gen-dmarc --mb 100 --out /tmp/agg-100mb.xml [--report-id ID]
// Records vary the source IP, counts, results and selectors so that nothing is trivially
// repetitive for the parser or the store.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::uint64_t mb = 100;
  const char* out = nullptr;
  std::string report_id = "bench-report-1";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--mb") && i + 1 < argc) {
      mb = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!std::strcmp(argv[i], "--report-id") && i + 1 < argc) {
      report_id = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench-gen-dmarc [--mb N] [--out FILE] [--report-id ID]\n");
      return 64;
    }
  }
  FILE* f = out ? std::fopen(out, "wb") : stdout;
  if (!f) {
    std::perror(out);
    return 1;
  }
  const std::uint64_t target = mb << 20;
  std::uint64_t written = 0;
  auto put = [&](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), f);
    written += s.size();
  };
  put("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n"
      "  <report_metadata>\n    <org_name>Bench Reporter</org_name>\n"
      "    <email>noreply-dmarc@bench.example</email>\n    <report_id>" + report_id +
      "</report_id>\n    <date_range>\n      <begin>1767225600</begin>\n"
      "      <end>1767311999</end>\n    </date_range>\n  </report_metadata>\n"
      "  <policy_published>\n    <domain>example.com</domain>\n    <adkim>r</adkim>\n"
      "    <aspf>r</aspf>\n    <p>reject</p>\n    <sp>reject</sp>\n    <pct>100</pct>\n"
      "    <fo>1</fo>\n  </policy_published>\n");
  std::uint64_t n = 0;
  char rec[2048];
  while (written < target) {
    ++n;
    bool pass = (n % 7) != 0;
    int len = std::snprintf(
        rec, sizeof rec,
        "  <record>\n    <row>\n      <source_ip>%u.%u.%u.%u</source_ip>\n"
        "      <count>%llu</count>\n      <policy_evaluated>\n"
        "        <disposition>%s</disposition>\n        <dkim>%s</dkim>\n"
        "        <spf>%s</spf>\n      </policy_evaluated>\n    </row>\n"
        "    <identifiers>\n      <header_from>example.com</header_from>\n"
        "      <envelope_from>bounce%llu.example.com</envelope_from>\n    </identifiers>\n"
        "    <auth_results>\n      <dkim>\n        <domain>example.com</domain>\n"
        "        <selector>s%llu</selector>\n        <result>%s</result>\n      </dkim>\n"
        "      <spf>\n        <domain>bounce%llu.example.com</domain>\n"
        "        <scope>mfrom</scope>\n        <result>%s</result>\n      </spf>\n"
        "    </auth_results>\n  </record>\n",
        static_cast<unsigned>(10 + (n >> 24) % 200), static_cast<unsigned>((n >> 16) & 255),
        static_cast<unsigned>((n >> 8) & 255), static_cast<unsigned>(n & 255),
        static_cast<unsigned long long>(1 + n % 97), pass ? "none" : "reject",
        pass ? "pass" : "fail", (n % 3) ? "pass" : "fail", static_cast<unsigned long long>(n % 50),
        static_cast<unsigned long long>(n % 4), pass ? "pass" : "fail",
        static_cast<unsigned long long>(n % 50), (n % 3) ? "pass" : "softfail");
    put(std::string(rec, static_cast<std::size_t>(len)));
  }
  put("</feedback>\n");
  if (out) std::fclose(f);
  std::fprintf(stderr, "bench-gen-dmarc: %llu records, %llu bytes\n",
               static_cast<unsigned long long>(n), static_cast<unsigned long long>(written));
  return 0;
}
