//! Lines as Linux 6.18 printed them for an abort on close and a refused connect (tests/tracefs.rs sees them live).

use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn event(line: &str) -> (i64, KernelEventKind) {
    match parse_line(line) {
        Line::Event { clock_ns, kind } => (clock_ns, kind),
        other => panic!("not an event: {other:?} from {line}"),
    }
}

#[test]
fn parse_send_reset_with_its_reason() {
    let (t, k) = event(
        "         python3-20093   [001] .....   832.997502: tcp_send_reset: skbaddr=0000000000000000 \
         skaddr=000000001ecaa9fd src=127.0.0.1:45678 dest=127.0.0.1:54966 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE",
    );
    assert_eq!(t, 832_997_502_000);
    assert_eq!(
        k,
        KernelEventKind::SendReset {
            reason: "TCP_ABORT_ON_CLOSE".into(),
            state: Some(TcpState::Closed),
            src: a("127.0.0.1:45678"),
            dst: a("127.0.0.1:54966"),
        }
    );
}

#[test]
fn parse_send_reset_without_a_socket_and_over_ipv6() {
    let (_, k) = event(
        "python3-20093 [001] ..s1. 833.048135: tcp_send_reset: skbaddr=000000001e638baa skaddr=0000000000000000 \
         src=[::1]:45679 dest=[::1]:57204 state=UNKNOWN reason=NO_SOCKET",
    );
    assert_eq!(
        k,
        KernelEventKind::SendReset {
            reason: "NO_SOCKET".into(),
            state: None,
            src: a("[::1]:45679"),
            dst: a("[::1]:57204"),
        }
    );
}

#[test]
fn parse_state_change_receive_reset_and_error() {
    let (_, k) = event(
        "python3-20093   [001] .....   832.997331: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP \
         sport=45678 dport=54966 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 \
         oldstate=TCP_ESTABLISHED newstate=TCP_CLOSE",
    );
    assert_eq!(
        k,
        KernelEventKind::StateChange {
            old: TcpState::Established,
            new: TcpState::Closed,
            src: a("127.0.0.1:45678"),
            dst: a("127.0.0.1:54966"),
        }
    );
    let (_, k) = event(
        "python3-20093   [001] ..s2.   832.997484: tcp_receive_reset: family=AF_INET6 sport=54966 dport=45678 \
         saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 sock_cookie=1044",
    );
    assert_eq!(
        k,
        KernelEventKind::ReceiveReset {
            src: a("[::1]:54966"),
            dst: a("[::1]:45678"),
        }
    );
    let (_, k) = event(
        "python3-20093   [001] ..s2.   832.997494: inet_sk_error_report: family=AF_INET protocol=IPPROTO_TCP \
         sport=54966 dport=45678 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 \
         daddrv6=::ffff:127.0.0.1 error=104",
    );
    assert_eq!(
        k,
        KernelEventKind::ErrorReport {
            errno: 104,
            src: a("127.0.0.1:54966"),
            dst: a("127.0.0.1:45678"),
        }
    );
}

#[test]
fn a_task_name_with_colons_and_spaces_does_not_confuse_the_cut() {
    let (t, k) = event(
        "  my task: inet_sk_error_report: x-7 [000] ..... 1.000001: inet_sk_error_report: family=AF_INET \
         protocol=IPPROTO_TCP sport=1 dport=2 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::1 daddrv6=::1 error=111",
    );
    assert_eq!(t, 1_000_001_000);
    assert!(matches!(k, KernelEventKind::ErrorReport { errno: 111, .. }));
}

#[test]
fn lost_events_other_protocols_and_garbage() {
    assert_eq!(parse_line("CPU:1 [LOST 12 EVENTS]"), Line::Lost(12));
    assert_eq!(parse_line(""), Line::Skip);
    assert_eq!(
        parse_line(
            "x-1 [000] ..... 5.000001: inet_sock_set_state: family=AF_INET protocol=IPPROTO_MPTCP sport=1 dport=2 \
             saddr=127.0.0.1 daddr=127.0.0.1 oldstate=TCP_CLOSE newstate=TCP_SYN_SENT"
        ),
        Line::Skip
    );
    assert_eq!(parse_line("something else entirely"), Line::Unreadable);
    assert_eq!(
        parse_line("x-1 [000] ..... 5.000001: tcp_receive_reset: family=AF_INET sport=1"),
        Line::Unreadable
    );
    assert_eq!(
        parse_line("x-1 [000] ..... 5.00000x: tcp_receive_reset: family=AF_INET"),
        Line::Unreadable
    );
}

#[test]
fn state_names_and_clock_stamps() {
    assert_eq!(tcp_state("TCP_FIN_WAIT2"), Some(TcpState::FinWait2));
    assert_eq!(tcp_state("TCP_NEW_SYN_RECV"), Some(TcpState::SynReceived));
    assert_eq!(tcp_state("UNKNOWN"), None);
    assert_eq!(clock_ns("12.5"), Some(12_500_000_000));
    assert_eq!(clock_ns("12.000000001"), Some(12_000_000_001));
    assert_eq!(clock_ns("12"), None);
}
