// JSON encodings of list-valued store columns (see json_columns.hpp).
#include "store/json_columns.hpp"

#include <nlohmann/json.hpp>

namespace mailreport::store {

namespace {
using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json::array() : j;
}

std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : std::string();
}

std::string member(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() ? str(*it) : std::string();
}

void put(json& object, const char* name, const std::string& value) {
  if (!value.empty()) object[name] = value;
}
}  // namespace

std::string strings_to_json(const std::vector<std::string>& v) {
  return dump(json(v));
}

std::vector<std::string> strings_from_json(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& e : parse(text)) out.push_back(str(e));
  return out;
}

std::string fields_to_json(const std::vector<report::HeaderField>& fields) {
  json j = json::array();
  for (const auto& f : fields) j.push_back(json::array({f.name, f.value}));
  return dump(j);
}

std::vector<report::HeaderField> fields_from_json(std::string_view text) {
  std::vector<report::HeaderField> out;
  for (const auto& e : parse(text)) {
    if (e.is_array() && e.size() == 2) out.push_back({str(e[0]), str(e[1])});
  }
  return out;
}

std::string reasons_to_json(const std::vector<report::DmarcReason>& reasons) {
  if (reasons.empty()) return "[]";  // nearly every record: no JSON value built
  json j = json::array();
  for (const auto& r : reasons) j.push_back(json{{"type", r.type}, {"comment", r.comment}});
  return dump(j);
}

std::vector<report::DmarcReason> reasons_from_json(std::string_view text) {
  std::vector<report::DmarcReason> out;
  for (const auto& e : parse(text)) {
    if (e.is_object())
      out.push_back({str(e.value("type", json())), str(e.value("comment", json()))});
  }
  return out;
}

std::string dkim_auth_to_json(const std::vector<report::DmarcDkimAuth>& v) {
  if (v.empty()) return "[]";
  json j = json::array();
  for (const auto& d : v) {
    json e = json::object();
    put(e, "domain", d.domain);
    put(e, "selector", d.selector);
    put(e, "result", d.result);
    put(e, "human_result", d.human_result);
    j.push_back(std::move(e));
  }
  return dump(j);
}

std::vector<report::DmarcDkimAuth> dkim_auth_from_json(std::string_view text) {
  std::vector<report::DmarcDkimAuth> out;
  for (const auto& e : parse(text)) {
    if (!e.is_object()) continue;
    out.push_back({member(e, "domain"), member(e, "selector"), member(e, "result"),
                   member(e, "human_result")});
  }
  return out;
}

std::string spf_auth_to_json(const std::vector<report::DmarcSpfAuth>& v) {
  if (v.empty()) return "[]";
  json j = json::array();
  for (const auto& s : v) {
    json e = json::object();
    put(e, "domain", s.domain);
    put(e, "scope", s.scope);
    put(e, "result", s.result);
    put(e, "human_result", s.human_result);
    j.push_back(std::move(e));
  }
  return dump(j);
}

std::vector<report::DmarcSpfAuth> spf_auth_from_json(std::string_view text) {
  std::vector<report::DmarcSpfAuth> out;
  for (const auto& e : parse(text)) {
    if (!e.is_object()) continue;
    out.push_back(
        {member(e, "domain"), member(e, "scope"), member(e, "result"), member(e, "human_result")});
  }
  return out;
}

}  // namespace mailreport::store
