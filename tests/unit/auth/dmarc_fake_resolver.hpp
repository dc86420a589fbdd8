// A dns::Resolver answering from a map, for the DMARC tests: TXT records per name, names that
// exist without data, names that fail (TempError), and every query recorded so that tests can
// check which names DMARC asked for and how many. Names not listed answer NXDOMAIN.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth::dmarc_test {

class FakeResolver : public dns::Resolver {
 public:
  // TXT records at `name` (each may be longer than 255: split into character-strings).
  void txt(const std::string& name, std::vector<std::string> records) {
    std::lock_guard lock(mu_);
    txt_[name] = std::move(records);
    exists_.insert(name);
  }
  // The name exists (NOERROR/NODATA for every type without data).
  void exists(const std::string& name) {
    std::lock_guard lock(mu_);
    exists_.insert(name);
  }
  // Every query for `name` (any type) fails; or only queries of one type.
  void fail(const std::string& name) {
    std::lock_guard lock(mu_);
    fail_.insert({name, 0});
  }
  void fail(const std::string& name, dns::RType type) {
    std::lock_guard lock(mu_);
    fail_.insert({name, static_cast<int>(type)});
  }

  dns::Answer query(std::string_view raw, dns::RType type) override {
    std::string name(raw);
    if (!name.empty() && name.back() == '.') name.pop_back();
    std::lock_guard lock(mu_);
    log_.emplace_back(name, type);
    dns::Answer a;
    if (fail_.count({name, 0}) || fail_.count({name, static_cast<int>(type)})) {
      a.status = dns::Status::TempError;
      a.why = "SERVFAIL";
      return a;
    }
    auto it = txt_.find(name);
    if (type == dns::RType::TXT && it != txt_.end() && !it->second.empty()) {
      a.status = dns::Status::Ok;
      for (const auto& r : it->second) a.rdata.push_back(encode_txt(r));
      a.ttl = 300;
      return a;
    }
    a.status = exists_.count(name) ? dns::Status::NoData : dns::Status::NxDomain;
    return a;
  }

  // The names asked for with `type`, in order.
  std::vector<std::string> asked(dns::RType type = dns::RType::TXT) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, t] : log_) {
      if (t == type) out.push_back(n);
    }
    return out;
  }
  std::size_t total() const {
    std::lock_guard lock(mu_);
    return log_.size();
  }
  void clear_log() {
    std::lock_guard lock(mu_);
    log_.clear();
  }

 private:
  static std::vector<std::uint8_t> encode_txt(const std::string& text) {
    // RFC 1035 §3.3.14: <character-string>s of at most 255 octets, each length-prefixed.
    std::vector<std::uint8_t> out;
    std::size_t i = 0;
    do {
      std::size_t n = std::min<std::size_t>(255, text.size() - i);
      out.push_back(static_cast<std::uint8_t>(n));
      out.insert(out.end(), text.begin() + static_cast<std::ptrdiff_t>(i),
                 text.begin() + static_cast<std::ptrdiff_t>(i + n));
      i += n;
    } while (i < text.size());
    return out;
  }

  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::string>> txt_;
  std::set<std::string> exists_;
  std::set<std::pair<std::string, int>> fail_;
  std::vector<std::pair<std::string, dns::RType>> log_;
};

}  // namespace mailreport::auth::dmarc_test
