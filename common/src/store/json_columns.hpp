// JSON encodings of the list-valued columns (nlohmann-json). Invalid UTF-8 in report data is
// replaced, never thrown about; unreadable column text reads back as empty.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/report/model.hpp"

namespace mailreport::store {

std::string strings_to_json(const std::vector<std::string>& v);
std::vector<std::string> strings_from_json(std::string_view text);

// [["Name","value"], ...] in order, repeats kept.
std::string fields_to_json(const std::vector<report::HeaderField>& fields);
std::vector<report::HeaderField> fields_from_json(std::string_view text);

// [{"type": ..., "comment": ...}, ...]
std::string reasons_to_json(const std::vector<report::DmarcReason>& reasons);
std::vector<report::DmarcReason> reasons_from_json(std::string_view text);

// A DMARC record's auth_results: [{"domain", "selector", "result", "human_result"}, ...] and
// [{"domain", "scope", "result", "human_result"}, ...]; empty members are left out.
std::string dkim_auth_to_json(const std::vector<report::DmarcDkimAuth>& v);
std::vector<report::DmarcDkimAuth> dkim_auth_from_json(std::string_view text);
std::string spf_auth_to_json(const std::vector<report::DmarcSpfAuth>& v);
std::vector<report::DmarcSpfAuth> spf_auth_from_json(std::string_view text);

}  // namespace mailreport::store
