//! The kernel's socket table (/proc/net/tcp and tcp6): the state of a socket whose fd is already closed —
//! an orphan in FIN_WAIT2 or a TIME_WAIT entry — looked up by its address pair.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::tcp_state::TcpState;

/// The state of the socket with this local and remote address, or `None` if the kernel has no such socket.
pub fn state_of(local: SocketAddr, remote: SocketAddr) -> Option<TcpState> {
    let path = if local.is_ipv6() {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let table = std::fs::read_to_string(path).ok()?;
    find(&table, local, remote)
}

fn find(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<TcpState> {
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        let _slot = f.next()?;
        let l = parse_addr(f.next()?)?;
        let r = parse_addr(f.next()?)?;
        let st = u8::from_str_radix(f.next()?, 16).ok()?;
        (l == local && r == remote)
            .then(|| TcpState::from_linux(st))
            .flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6); each 32-bit group is printed in host byte order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let group = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(group(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&group(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 0100007F:9C40 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   1: 0100007F:9C40 0100007F:1F90 05 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000
";

    #[test]
    fn finds_states_by_address_pair() {
        let b: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(find(TABLE, b, a), Some(TcpState::TimeWait));
        assert_eq!(find(TABLE, a, b), Some(TcpState::FinWait2));
        assert_eq!(find(TABLE, a, "127.0.0.1:1".parse().unwrap()), None);
    }

    #[test]
    fn parses_ipv6_groups() {
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
    }
}
