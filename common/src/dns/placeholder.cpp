// Replaced by the libunbound resolver (resolver.cpp); keeps the module target buildable.
namespace mailreport::dns {}
