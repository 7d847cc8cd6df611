//! Link-layer header types: the LINKTYPE_*/DLT numbers capture files and libpcap use, and their names.
//!
//! Contract: pure lookups, never a panic; a number we do not decode is `None`, and the caller names it (the reader
//! hands frames on with `Err(number)`).

/// The link-layer header type of a capture (LINKTYPE_* numbers of tcpdump.org, plus the DLT aliases files use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order (LINKTYPE_NULL, 0).
    Null,
    /// Ethernet II, possibly with 802.1Q / QinQ tags (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Raw IPv4 or IPv6 (LINKTYPE_RAW 101, and DLT_RAW 12 and 14 as some systems write them).
    RawIp,
    /// OpenBSD loopback: a 4-byte address family in network byte order (LINKTYPE_LOOP, 108).
    Loop,
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113).
    LinuxSll,
    /// Raw IPv4 (LINKTYPE_IPV4, 228).
    Ipv4,
    /// Raw IPv6 (LINKTYPE_IPV6, 229).
    Ipv6,
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276).
    LinuxSll2,
    /// PPP, with or without HDLC address/control bytes (LINKTYPE_PPP 9, PPP_HDLC 50).
    Ppp,
    /// FDDI with an 802.2 LLC/SNAP header (LINKTYPE_FDDI, 10).
    Fddi,
    /// Linux netfilter NFLOG (LINKTYPE_NFLOG, 239): the packet sits in a TLV.
    Nflog,
    /// IP over InfiniBand (LINKTYPE_IPOIB, 242): two 20-byte hardware addresses, an EtherType, 2 reserved bytes.
    IpOverIb,
}

impl LinkType {
    /// The link type for a LINKTYPE/DLT number, or `None` when we do not decode it.
    pub fn from_number(n: u32) -> Option<LinkType> {
        Some(match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            9 | 50 => LinkType::Ppp,
            10 => LinkType::Fddi,
            239 => LinkType::Nflog,
            242 => LinkType::IpOverIb,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkType::Null => "NULL (BSD loopback)",
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::RawIp => "RAW (raw IP)",
            LinkType::Loop => "LOOP (OpenBSD loopback)",
            LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
            LinkType::Ipv4 => "IPV4 (raw IPv4)",
            LinkType::Ipv6 => "IPV6 (raw IPv6)",
            LinkType::LinuxSll2 => "LINUX_SLL2 (Linux cooked v2)",
            LinkType::Ppp => "PPP",
            LinkType::Fddi => "FDDI",
            LinkType::Nflog => "NFLOG (Linux netfilter log)",
            LinkType::IpOverIb => "IPOIB (IP over InfiniBand)",
        }
    }

    /// The LINKTYPE/DLT number libpcap wants to compile a filter for this link type.
    pub fn number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 12,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Ppp => 9,
            LinkType::Fddi => 10,
            LinkType::Nflog => 239,
            LinkType::IpOverIb => 242,
        }
    }
}
