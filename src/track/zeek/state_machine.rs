//! Zeek's `UpdateStateMachine` (TCPSessionAdapter.cc): what one packet does to its sender's endpoint state, one
//! function per state the sender was in. Each returns Zeek's `do_close` (report the sender as closing). Zeek's
//! weirds, events and timers are left out; so is its role flip on a SYN/SYN-ACK reversal (we keep the roles).

use crate::track::ends::Side;
use crate::track::packet::TcpPacket;
use crate::track::zeek::endpoint::EndpointState::{
    Closed, Established, Inactive, Partial, Reset, SynAckSent, SynSent,
};
use crate::track::zeek::endpoint::TcpEndpoint;

/// Zeek's `UpdateStateMachine`: `endpoint` sent `p` (from `side`), `peer` is the other end.
#[inline(always)]
pub(super) fn update_state_machine(
    side: Side,
    endpoint: &mut TcpEndpoint,
    peer: &mut TcpEndpoint,
    p: &TcpPacket,
) -> bool {
    match endpoint.state {
        Inactive => update_inactive_state(side, endpoint, peer, p),
        SynSent | SynAckSent => update_syn_sent_state(endpoint, p),
        Established | Partial => update_established_state(endpoint, peer, p),
        Closed => update_closed_state(endpoint, peer, p),
        Reset => update_reset_state(),
    }
}

/// Zeek's `UpdateInactiveState`: the first packet from this side.
fn update_inactive_state(
    side: Side,
    endpoint: &mut TcpEndpoint,
    peer: &mut TcpEndpoint,
    p: &TcpPacket,
) -> bool {
    let flags = p.flags;
    let mut do_close = false;
    if flags.syn() {
        match side {
            Side::Client => endpoint.set_state(if flags.ack() { SynAckSent } else { SynSent }),
            Side::Server => {
                if !flags.ack() && peer.state == SynAckSent && p.seq == endpoint.start_seq {
                    // SYN/SYN-ACK reversal: Zeek flips the roles; we keep them and establish.
                    peer.set_state(Established);
                }
                if peer.state == SynSent {
                    peer.set_state(Established);
                }
                endpoint.set_state(Established);
            }
        }
    }
    if flags.fin() {
        endpoint.set_state(Closed);
        do_close = true;
    }
    if flags.rst() {
        endpoint.set_state(Reset);
        do_close = true;
    }
    if endpoint.state == Inactive {
        // No control flags to change the state.
        if side == Side::Server && p.len == 0 && peer.state == SynSent {
            // Some stacks ack a SYN before answering it: not a partial connection.
        } else if flags.ack() && peer.state == Established {
            // A SYN-ACK, then a pure ACK: the SYN was missed, not a partial connection.
            endpoint.set_state(Established);
        } else {
            endpoint.set_state(Partial);
        }
    }
    do_close
}

/// Zeek's `UpdateSYN_SentState` (also for SYN_ACK_SENT): only a FIN or a RST changes the state.
fn update_syn_sent_state(endpoint: &mut TcpEndpoint, p: &TcpPacket) -> bool {
    let mut do_close = false;
    if p.flags.fin() {
        endpoint.set_state(Closed);
        do_close = true;
    }
    if p.flags.rst() {
        endpoint.set_state(Reset);
        do_close = true;
    }
    do_close
}

/// Zeek's `UpdateEstablishedState` (also for PARTIAL).
fn update_established_state(
    endpoint: &mut TcpEndpoint,
    peer: &mut TcpEndpoint,
    p: &TcpPacket,
) -> bool {
    let flags = p.flags;
    let mut do_close = false;
    if flags.syn() && endpoint.state == Partial && peer.state == Inactive && !flags.ack() {
        endpoint.set_state(SynSent);
    }
    if flags.fin() && !flags.rst() {
        endpoint.set_state(Closed);
        if peer.state == Reset && peer.prev_state == Closed {
            // A FIN then a RST from the peer was a normal close after all.
            peer.set_state(Closed);
        }
        do_close = true;
    }
    if flags.rst() {
        endpoint.set_state(Reset);
        do_close = true;
    }
    do_close
}

/// Zeek's `UpdateClosedState`: after this side's FIN, only a RST matters, and not once both sides closed.
fn update_closed_state(endpoint: &mut TcpEndpoint, peer: &TcpEndpoint, p: &TcpPacket) -> bool {
    if p.flags.rst() && peer.state != Closed {
        endpoint.set_state(Reset);
        // RST after FIN
        return !endpoint.did_close;
    }
    false
}

/// Zeek's `UpdateResetState`: nothing changes after a RST (Zeek only raises weirds).
fn update_reset_state() -> bool {
    false
}
