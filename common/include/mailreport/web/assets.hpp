// The dashboard page's static files (HTML, JavaScript, CSS, icon), built into the binary at
// build time from common/src/web/assets/ (cmake/EmbedAssets.cmake): the page works offline,
// with no CDN and nothing installed beside the program.
#pragma once

#include <string_view>

namespace mailreport::web {

struct Asset {
  std::string_view path;          // "/", "/assets/app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view data;
};

// nullptr when there is no such file.
const Asset* find_asset(std::string_view path);

}  // namespace mailreport::web
