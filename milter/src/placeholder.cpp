// Replaced by the milter session and libmilter wrapper; keeps the library target buildable.
namespace mailreport::milter {}
