// Which Content-Type values mark a DSN (RFC 3464 §2: multipart/report with
// report-type=delivery-status), whatever their case, quoting, comments and folding.
#include <gtest/gtest.h>

#include "../../../milter/src/dsn.hpp"

namespace mailreport::milter::dsn {
namespace {

TEST(DsnContentType, RecognisesDeliveryStatusReports) {
  EXPECT_TRUE(is_delivery_status("multipart/report; report-type=delivery-status; boundary=x"));
  EXPECT_TRUE(is_delivery_status(
      " multipart/report; "
      "report-type=delivery-status;\r\n\tboundary=\"95768AE4099.1795246282/mx.test\""));
  EXPECT_TRUE(is_delivery_status("Multipart/Report; Report-Type=\"Delivery-Status\""));
  EXPECT_TRUE(
      is_delivery_status("multipart/report (a bounce); boundary=b; report-type=delivery-status"));
}

TEST(DsnContentType, RefusesOtherReportsAndTypes) {
  EXPECT_FALSE(is_delivery_status("multipart/report; report-type=feedback-report"));
  EXPECT_FALSE(is_delivery_status("multipart/report; report-type=disposition-notification"));
  EXPECT_FALSE(is_delivery_status("multipart/report"));
  EXPECT_FALSE(is_delivery_status("multipart/mixed; report-type=delivery-status"));
  EXPECT_FALSE(is_delivery_status("text/plain"));
  EXPECT_FALSE(is_delivery_status(""));
  EXPECT_FALSE(is_delivery_status("multipart/report; report-type=delivery-status-x"));
}

}  // namespace
}  // namespace mailreport::milter::dsn
