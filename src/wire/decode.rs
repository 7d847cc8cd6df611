//! Frame → TCP segment. One job: take the bytes of one captured frame and its link type, give back a [`Segment`]
//! or the reason there is none.
//!
//! Never panics on untrusted input: every length is checked (etherparse does the IP and TCP headers; the link
//! headers it has no entry point for — BSD loopback and Linux cooked v2 — are stripped here with explicit checks).
//! Frames cut short by the snap length still decode when the TCP header is whole; the payload length then comes
//! from the IP header.
//!
//! Two paths: [`decode_parts`] reads plain IPv4/TCP (no options, no fragment, not cut) straight from the bytes and
//! hands everything else to [`decode_parts_general`], which goes through etherparse. The general path is also the
//! slow oracle: the tests and the fuzz target check that both give the same answer for every frame.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice,
};

use crate::model::segment::{Segment, SeqNumber, TcpFlags, TimestampNs};
use crate::wire::link::LinkType;

/// Why a frame gave no TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The frame is shorter than its link-layer header.
    TruncatedLink,
    /// The link header names a protocol that is not IPv4 or IPv6 (ARP, LLDP, …).
    NotIp,
    /// An IP header that does not parse (bad version, length below the header, cut short).
    BadIp,
    /// IP carrying something other than TCP (UDP, ICMP, …).
    NotTcp,
    /// A non-first IP fragment: no TCP header in it.
    Fragment,
    /// IP says TCP but the TCP header is cut short or its data offset is impossible.
    BadTcp,
}

impl Skip {
    pub fn describe(&self) -> &'static str {
        match self {
            Skip::TruncatedLink => "frame shorter than its link header",
            Skip::NotIp => "not IPv4/IPv6",
            Skip::BadIp => "malformed or truncated IP header",
            Skip::NotTcp => "not TCP",
            Skip::Fragment => "IP fragment without TCP header",
            Skip::BadTcp => "malformed or truncated TCP header",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for Skip {}

/// Decode one frame into a TCP segment.
pub fn decode(link: LinkType, ts: TimestampNs, frame: &[u8]) -> Result<Segment, Skip> {
    let (mut seg, payload) = decode_parts(link, ts, frame)?;
    seg.payload = payload.to_vec();
    Ok(seg)
}

/// Like [`decode`], but the captured payload is handed back as a slice of `frame` and `Segment::payload` is left
/// empty: no allocation per frame, for summaries of millions of packets.
pub fn decode_parts(
    link: LinkType,
    ts: TimestampNs,
    frame: &[u8],
) -> Result<(Segment, &[u8]), Skip> {
    // Most frames of a busy capture are plain IPv4/TCP: read those directly, the general path below is several
    // times slower. Anything unusual (options, fragments, cuts, tunnels) falls through to it.
    let ip = match link {
        LinkType::Ethernet if frame.get(12..14) == Some(&[0x08, 0x00]) => frame.get(14..),
        LinkType::RawIp | LinkType::Ipv4 => Some(frame),
        _ => None,
    };
    if let Some(found) = ip.and_then(|ip| plain_ipv4_tcp(ts, ip)) {
        return Ok(found);
    }
    decode_parts_general(link, ts, frame)
}

/// IPv4 without options, not a fragment, whole (not cut by the snap length), carrying a whole TCP header.
fn plain_ipv4_tcp(ts: TimestampNs, ip: &[u8]) -> Option<(Segment, &[u8])> {
    if ip.len() < 40 || ip[0] != 0x45 || ip[9] != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
    if fragment != 0 || total < 40 || total > ip.len() {
        return None;
    }
    let tcp = &ip[20..total];
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let payload = &tcp[header_len..];
    Some((
        Segment {
            ts,
            src: SocketAddr::new(IpAddr::V4(src), u16::from_be_bytes([tcp[0], tcp[1]])),
            dst: SocketAddr::new(IpAddr::V4(dst), u16::from_be_bytes([tcp[2], tcp[3]])),
            flags: TcpFlags(u16::from_be_bytes([tcp[12], tcp[13]]) & 0x01ff),
            seq: SeqNumber(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
            ack: SeqNumber(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]])),
            window: u16::from_be_bytes([tcp[14], tcp[15]]),
            len: payload.len() as u32,
            payload: Vec::new(),
            ip_len: total as u32,
        },
        payload,
    ))
}

/// [`decode_parts`] without the plain-IPv4 fast path: every frame through etherparse. Public so tests and the
/// fuzzer can check that both paths agree.
pub fn decode_parts_general(
    link: LinkType,
    ts: TimestampNs,
    frame: &[u8],
) -> Result<(Segment, &[u8]), Skip> {
    let sliced = match link {
        LinkType::Ethernet => match ethernet_tunnel(frame) {
            Some((proto, inner)) => from_ether_type(proto, inner)?,
            None => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::TruncatedLink)?,
        },
        LinkType::Ppp => {
            // Address 0xff and control 0x03 are optional (RFC 1662 address/control field compression).
            let rest = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
            let proto = rest.get(..2).ok_or(Skip::TruncatedLink)?;
            from_ppp(u16::from_be_bytes([proto[0], proto[1]]), &rest[2..])?
        }
        LinkType::Fddi => {
            // frame control, destination, source (13 bytes), then LLC/SNAP: AA AA 03, OUI, EtherType.
            let h = frame.get(..21).ok_or(Skip::TruncatedLink)?;
            if h[13..16] != [0xaa, 0xaa, 0x03] {
                return Err(Skip::NotIp);
            }
            from_ether_type(u16::from_be_bytes([h[19], h[20]]), &frame[21..])?
        }
        LinkType::IpOverIb => {
            // Destination and source hardware addresses (20 bytes each), EtherType, 2 reserved bytes.
            let h = frame.get(..44).ok_or(Skip::TruncatedLink)?;
            from_ether_type(u16::from_be_bytes([h[40], h[41]]), &frame[44..])?
        }
        LinkType::Nflog => from_ip(nflog_payload(frame)?)?,
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => from_ip(frame)?,
        LinkType::Null | LinkType::Loop => {
            let family = frame.get(..4).ok_or(Skip::TruncatedLink)?;
            let family = [family[0], family[1], family[2], family[3]];
            // NULL is in the writer's byte order, which the file does not tell: a family is a small number, so
            // whichever reading is small is the right one.
            let (le, be) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
            let family = if link == LinkType::Loop || be < le {
                be
            } else {
                le
            };
            match family {
                // AF_INET on every BSD and Linux
                2 => from_ip(&frame[4..])?,
                // AF_INET6: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux)
                10 | 24 | 28 | 30 => from_ip(&frame[4..])?,
                _ => return Err(Skip::NotIp),
            }
        }
        LinkType::LinuxSll => {
            let header = frame.get(..16).ok_or(Skip::TruncatedLink)?;
            let proto = u16::from_be_bytes([header[14], header[15]]);
            from_ether_type(proto, &frame[16..])?
        }
        LinkType::LinuxSll2 => {
            let header = frame.get(..20).ok_or(Skip::TruncatedLink)?;
            let proto = u16::from_be_bytes([header[0], header[1]]);
            from_ether_type(proto, &frame[20..])?
        }
    };
    segment_from(ts, &sliced)
}

fn from_ip(bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    LaxSlicedPacket::from_ip(bytes).map_err(|_| Skip::BadIp)
}

/// Ethernet frames whose (possibly VLAN-tagged) EtherType is PPPoE session or MPLS, which etherparse does not
/// open: the EtherType and the bytes after the tags.
fn ethernet_tunnel(frame: &[u8]) -> Option<(u16, &[u8])> {
    let mut at = 12;
    loop {
        let t = frame.get(at..at + 2)?;
        let t = u16::from_be_bytes([t[0], t[1]]);
        match t {
            0x8100 | 0x88a8 | 0x9100 => at += 4,
            0x8864 | 0x8847 | 0x8848 => return Some((t, frame.get(at + 2..)?)),
            _ => return None,
        }
    }
}

/// PPP protocol number → IP.
fn from_ppp(proto: u16, bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match proto {
        0x0021 | 0x0057 => from_ip(bytes),
        0x0281 | 0x0283 => from_mpls(bytes),
        _ => Err(Skip::NotIp),
    }
}

/// Pop MPLS labels to the bottom of the stack; what follows is IP when its version nibble says so.
fn from_mpls(mut bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    loop {
        let label = bytes.get(..4).ok_or(Skip::TruncatedLink)?;
        let bottom = label[2] & 1 == 1;
        bytes = &bytes[4..];
        if bottom {
            break;
        }
    }
    match bytes.first().map(|b| b >> 4) {
        Some(4) | Some(6) => from_ip(bytes),
        _ => Err(Skip::NotIp),
    }
}

/// The packet inside an NFLOG record: TLVs (length and type in host order, little-endian in practice) after a
/// 4-byte header; type 9 is NFULA_PAYLOAD.
fn nflog_payload(frame: &[u8]) -> Result<&[u8], Skip> {
    let mut rest = frame.get(4..).ok_or(Skip::TruncatedLink)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]);
        if len < 4 {
            return Err(Skip::TruncatedLink);
        }
        if kind == 9 {
            return rest.get(4..len.min(rest.len())).ok_or(Skip::TruncatedLink);
        }
        rest = rest.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    Err(Skip::NotIp)
}

fn from_ether_type(proto: u16, bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match proto {
        // PPPoE session: 6-byte header, then the PPP protocol.
        0x8864 => {
            let h = bytes.get(..8).ok_or(Skip::TruncatedLink)?;
            return from_ppp(u16::from_be_bytes([h[6], h[7]]), &bytes[8..]);
        }
        0x8847 | 0x8848 => return from_mpls(bytes),
        _ => {}
    }
    match EtherType(proto) {
        EtherType::IPV4
        | EtherType::IPV6
        | EtherType::VLAN_TAGGED_FRAME
        | EtherType::PROVIDER_BRIDGING
        | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
            Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), bytes))
        }
        _ => Err(Skip::NotIp),
    }
}

/// The IP layer of a sliced frame: addresses, where the IP header says the packet ends (an address in memory, to
/// compare with where the TCP header starts), and what the IP header carries.
struct IpLayer<'s, 'a> {
    src: IpAddr,
    dst: IpAddr,
    declared_end: usize,
    /// The packet's length as the IP header declares it (IPv6: payload length + 40), as Zeek sums it.
    declared_len: u32,
    payload: &'s LaxIpPayloadSlice<'a>,
}

/// The IPv4 or IPv6 layer, or why there is none.
#[inline]
fn ip_layer<'s, 'a>(sliced: &'s LaxSlicedPacket<'a>) -> Result<IpLayer<'s, 'a>, Skip> {
    match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let start = h.slice().as_ptr() as usize;
            Ok(IpLayer {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                declared_end: start + usize::from(h.total_len()),
                // 0 is what TCP segmentation offload (and Linux BIG TCP) leave: the packet is what was captured
                // (Wireshark's reading; Zeek's too when told to ignore checksums)
                declared_len: match h.total_len() {
                    0 => (h.slice().len() + v4.payload().payload.len()) as u32,
                    n => u32::from(n),
                },
                payload: v4.payload(),
            })
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let start = h.slice().as_ptr() as usize;
            Ok(IpLayer {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                declared_end: start + 40 + usize::from(h.payload_length()),
                declared_len: 40 + u32::from(h.payload_length()),
                payload: v6.payload(),
            })
        }
        Some(LaxNetSlice::Arp(_)) => Err(Skip::NotIp),
        None if sliced.link_exts.is_empty() && sliced.link.is_none() => Err(Skip::BadIp),
        // Ethernet parsed but no IP after it: either another ether type or a broken IP header.
        None => match &sliced.stop_err {
            Some(_) => Err(Skip::BadIp),
            None => Err(Skip::NotIp),
        },
    }
}

/// The TCP flags etherparse read, as our bits.
#[inline]
fn tcp_flags(tcp: &TcpSlice<'_>) -> TcpFlags {
    let bits = [
        (tcp.fin(), TcpFlags::FIN),
        (tcp.syn(), TcpFlags::SYN),
        (tcp.rst(), TcpFlags::RST),
        (tcp.psh(), TcpFlags::PSH),
        (tcp.ack(), TcpFlags::ACK),
        (tcp.urg(), TcpFlags::URG),
        (tcp.ece(), TcpFlags::ECE),
        (tcp.cwr(), TcpFlags::CWR),
        (tcp.ns(), TcpFlags::AE),
    ];
    TcpFlags(
        bits.iter()
            .filter(|(set, _)| *set)
            .fold(0, |acc, (_, bit)| acc | bit),
    )
}

fn segment_from<'a>(
    ts: TimestampNs,
    sliced: &LaxSlicedPacket<'a>,
) -> Result<(Segment, &'a [u8]), Skip> {
    let ip = ip_layer(sliced)?;
    if ip.payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let tcp = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        _ if ip.payload.fragmented => return Err(Skip::Fragment),
        // The snap length cut the TCP options: the fixed 20 bytes still tell ports, numbers and flags.
        _ => return fixed_header_only(ts, &ip, ip.payload.payload),
    };
    let header_len = tcp.header_slice().len();
    let captured_payload = tcp.payload();
    // When the snap length cut the frame, the IP header still says how long the segment was.
    let len = if ip.payload.incomplete {
        let tcp_start = tcp.slice().as_ptr() as usize;
        ip.declared_end.saturating_sub(tcp_start + header_len)
    } else {
        captured_payload.len()
    };
    Ok((
        Segment {
            ts,
            src: SocketAddr::new(ip.src, tcp.source_port()),
            dst: SocketAddr::new(ip.dst, tcp.destination_port()),
            flags: tcp_flags(tcp),
            seq: SeqNumber(tcp.sequence_number()),
            ack: SeqNumber(tcp.acknowledgment_number()),
            window: tcp.window_size(),
            len: u32::try_from(len).unwrap_or(u32::MAX),
            payload: Vec::new(),
            ip_len: ip.declared_len,
        },
        captured_payload,
    ))
}

/// A segment from the fixed TCP header alone, when the options (and so the payload) were cut by the snap
/// length. A data offset below 5 words is a broken header, not a cut one.
fn fixed_header_only<'a>(
    ts: TimestampNs,
    ip: &IpLayer<'_, '_>,
    tcp: &'a [u8],
) -> Result<(Segment, &'a [u8]), Skip> {
    let (src_ip, dst_ip, declared_end) = (ip.src, ip.dst, ip.declared_end);
    let h = tcp.get(..20).ok_or(Skip::BadTcp)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < 20 || tcp.len() >= header_len {
        return Err(Skip::BadTcp);
    }
    let bits = u16::from_be_bytes([h[12], h[13]]) & 0x01ff;
    let tcp_start = tcp.as_ptr() as usize;
    let len = declared_end.saturating_sub(tcp_start + header_len);
    Ok((
        Segment {
            ts,
            src: SocketAddr::new(src_ip, u16::from_be_bytes([h[0], h[1]])),
            dst: SocketAddr::new(dst_ip, u16::from_be_bytes([h[2], h[3]])),
            flags: TcpFlags(bits),
            seq: SeqNumber(u32::from_be_bytes([h[4], h[5], h[6], h[7]])),
            ack: SeqNumber(u32::from_be_bytes([h[8], h[9], h[10], h[11]])),
            window: u16::from_be_bytes([h[14], h[15]]),
            len: u32::try_from(len).unwrap_or(u32::MAX),
            payload: Vec::new(),
            ip_len: ip.declared_len,
        },
        &[],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn fast_path_agrees_with_etherparse() {
        let mut frames = Vec::new();
        for (flags, payload) in [
            (0u8, &b""[..]),
            (1, b"hello"),
            (2, b"x"),
            (3, &[7u8; 1000][..]),
        ] {
            for with_options in [false, true] {
                let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .tcp(4000, 80, 0xfffffff0, 700);
                let b = match flags {
                    0 => b.syn(),
                    1 => b.psh().ack(9),
                    2 => b.fin().ack(9).ece(),
                    _ => b.rst().ack(9).urg(3),
                };
                let b = if with_options {
                    b.options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1400)])
                        .unwrap()
                } else {
                    b
                };
                let mut f = Vec::new();
                b.write(&mut f, payload).unwrap();
                // whole, with Ethernet padding, cut in the payload, cut in the header
                let mut padded = f.clone();
                padded.extend([0u8; 6]);
                frames.push(f.clone());
                frames.push(padded);
                frames.push(f[..f.len() - payload.len() / 2].to_vec());
                frames.push(f[..40].to_vec());
            }
        }
        for f in &frames {
            let fast = decode_parts(LinkType::Ethernet, 1, f);
            let general = decode_parts_general(LinkType::Ethernet, 1, f);
            assert_eq!(fast, general, "frame of {} bytes", f.len());
            let ip = &f[14..];
            assert_eq!(
                decode_parts(LinkType::RawIp, 1, ip),
                decode_parts_general(LinkType::RawIp, 1, ip)
            );
        }
    }

    #[test]
    fn options_cut_by_snaplen_still_give_flags() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1000, 80, 42, 500)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut frame = Vec::new();
        b.write(&mut frame, b"").unwrap();
        // 14 + 20 + 20 fixed bytes + 2 of the 4 option bytes
        let s = decode(LinkType::Ethernet, 0, &frame[..56]).unwrap();
        assert_eq!(s.flags.tcpdump(), "S");
        assert_eq!(
            (s.src.port(), s.dst.port(), s.seq.0, s.len),
            (1000, 80, 42, 0)
        );
        // the fixed header itself cut: nothing to read
        assert_eq!(
            decode(LinkType::Ethernet, 0, &frame[..50]),
            Err(Skip::BadTcp)
        );
    }

    fn eth_tcp(
        build: impl FnOnce(
            etherparse::PacketBuilderStep<etherparse::TcpHeader>,
        ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(40000, 8080, 1000, 65535);
        let b = build(b);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn parse_ethernet_rst_ack() {
        let frame = eth_tcp(|b| b.rst().ack(77), b"");
        let s = decode(LinkType::Ethernet, 5, &frame).unwrap();
        assert_eq!(s.ts, 5);
        assert_eq!(s.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(s.flags.tcpdump(), "R.");
        assert_eq!(s.seq, SeqNumber(1000));
        assert_eq!(s.ack, SeqNumber(77));
        assert_eq!(s.len, 0);
    }

    #[test]
    fn parse_payload_and_fin() {
        let frame = eth_tcp(|b| b.fin().psh().ack(1), b"hello");
        let s = decode(LinkType::Ethernet, 0, &frame).unwrap();
        assert_eq!(s.flags.tcpdump(), "FP.");
        assert_eq!(s.len, 5);
        assert_eq!(s.payload, b"hello");
    }

    #[test]
    fn truncated_payload_keeps_ip_length() {
        let frame = eth_tcp(|b| b.psh().ack(1), &[b'x'; 100]);
        // cut 60 payload bytes off, as a snap length would
        let s = decode(LinkType::Ethernet, 0, &frame[..frame.len() - 60]).unwrap();
        assert_eq!(s.len, 100);
        assert_eq!(s.payload.len(), 40);
    }

    #[test]
    fn truncated_tcp_header_is_skipped() {
        let frame = eth_tcp(|b| b.ack(1), b"");
        // 14 ethernet + 20 ip + 10 of the 20 tcp bytes
        assert_eq!(
            decode(LinkType::Ethernet, 0, &frame[..44]),
            Err(Skip::BadTcp)
        );
        assert_eq!(
            decode(LinkType::Ethernet, 0, &frame[..5]),
            Err(Skip::TruncatedLink)
        );
    }

    #[test]
    fn udp_is_not_tcp() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .udp(1, 2);
        let mut frame = Vec::new();
        b.write(&mut frame, b"x").unwrap();
        assert_eq!(decode(LinkType::Ethernet, 0, &frame), Err(Skip::NotTcp));
    }

    fn ip_tcp_v6(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6(
            [0; 16],
            {
                let mut a = [0; 16];
                a[15] = 1;
                a
            },
            64,
        )
        .tcp(1, 2, 9, 100)
        .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn parse_every_link_header() {
        let ip = ip_tcp_v6(b"");
        let mut null_le = 30u32.to_le_bytes().to_vec();
        null_le.extend(&ip);
        let mut null_be = 24u32.to_be_bytes().to_vec();
        null_be.extend(&ip);
        let mut looped = 24u32.to_be_bytes().to_vec();
        looped.extend(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend(0x86ddu16.to_be_bytes());
        sll.extend(&ip);
        let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
        sll2.extend([0u8; 18]);
        sll2.extend(&ip);
        for (link, frame) in [
            (LinkType::RawIp, &ip),
            (LinkType::Ipv6, &ip),
            (LinkType::Null, &null_le),
            (LinkType::Null, &null_be),
            (LinkType::Loop, &looped),
            (LinkType::LinuxSll, &sll),
            (LinkType::LinuxSll2, &sll2),
        ] {
            let s = decode(link, 0, frame).unwrap_or_else(|e| panic!("{link:?}: {e}"));
            assert_eq!(s.flags.tcpdump(), "S", "{link:?}");
            assert_eq!(s.dst.port(), 2, "{link:?}");
            assert!(s.src.is_ipv6());
        }
    }

    #[test]
    fn vlan_tagged_ethernet() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                etherparse::VlanId::try_new(10).unwrap(),
                etherparse::VlanId::try_new(20).unwrap(),
            )
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(5, 6, 1, 10)
            .fin()
            .ack(3);
        let mut frame = Vec::new();
        b.write(&mut frame, b"").unwrap();
        assert_eq!(
            decode(LinkType::Ethernet, 0, &frame)
                .unwrap()
                .flags
                .tcpdump(),
            "F."
        );
    }

    #[test]
    fn unknown_link_numbers_are_none() {
        assert_eq!(LinkType::from_number(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_number(276), Some(LinkType::LinuxSll2));
        assert_eq!(LinkType::from_number(281), None);
    }
}
