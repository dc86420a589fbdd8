// Placeholder so that the module has a source until its first file lands (issue 6).
namespace mailreport {}
