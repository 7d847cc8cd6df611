#!/usr/bin/env bash
# Record captures/analyze/*.pcap from the real kernel: a client and a server in two network namespaces joined by
# a veth pair, tcpdump on the client's end, and loss made by nftables rules that drop chosen segments for a while.
# Each capture is one class of ending that `analyze --conn` must explain (tests/infer.rs asserts on them).
#
#   sudo bash scripts/record-analyze-captures.sh            # all of them
#   sudo bash scripts/record-analyze-captures.sh unread     # one
#
# Needs root, ip (iproute2), nft (nftables), tcpdump and python3. Everything it creates (two namespaces named
# after its pid, their veth pair, the tcpdump and programs in them) is removed on every way out.
set -euo pipefail

cd "$(dirname "$0")/.."
out=captures/analyze
mkdir -p "$out"
C="tcwc$$"   # client namespace (and its veth end)
S="tcws$$"   # server namespace
CA=10.77.0.1
SA=10.77.0.2
PORT=8080

cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  ip netns pids "$C" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$S" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # stop here (the EXIT trap cleans up), not go on to the next step

ip netns add "$C"
ip netns add "$S"
ip link add "$C" type veth peer name "$S"
ip link set "$C" netns "$C"
ip link set "$S" netns "$S"
ip -n "$C" addr add "$CA/24" dev "$C"
ip -n "$S" addr add "$SA/24" dev "$S"
for n in "$C" "$S"; do
  ip -n "$n" link set lo up
  ip -n "$n" link set "$n" up
  # no offloads: segments on the capture as the kernel sent them
  ip netns exec "$n" ethtool -K "$n" tso off gso off gro off >/dev/null 2>&1 || true
done
ip netns exec "$S" nft add table inet tcw
ip netns exec "$S" nft add chain inet tcw in '{ type filter hook input priority 0; }'
ip netns exec "$S" nft add chain inet tcw out '{ type filter hook output priority 0; }'

py() { # run python3 code ($2) in namespace $1, with the addresses in its environment
  ip netns exec "$1" env CA=$CA SA=$SA PORT=$PORT python3 -c "$2"
}

# The capture runs from before the server starts until after the client is done.
record() { # name server-code client-code [extra seconds to wait for the server]
  local name=$1 server=$2 client=$3 linger=${4:-0.5}
  ip netns exec "$C" tcpdump -q -i "$C" -s 200 -U -w "$out/$name.pcap" tcp 2>/dev/null &
  local dump=$!
  sleep 0.5
  py "$S" "$server" &
  local srv=$!
  sleep 0.3
  py "$C" "$client" || true
  sleep "$linger"
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  sleep 0.3
  kill "$dump"
  wait "$dump" 2>/dev/null || true
  echo "recorded $out/$name.pcap ($(stat -c %s "$out/$name.pcap") bytes)"
}

COMMON='
import os, socket, struct, subprocess, time
CA, SA, PORT = os.environ["CA"], os.environ["SA"], int(os.environ["PORT"])
def listener(rcvbuf=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((SA, PORT)); s.listen(4); return s
def client(**opt):
    c = socket.socket()
    for k, v in opt.items(): c.setsockopt(*v)
    c.connect((SA, PORT)); return c
def nft(rule): subprocess.run(["nft", *rule.split()], check=True)
'

# refused: nothing listens on the port; the server's kernel answers the SYN with RST/ACK.
refused() {
  record refused "$COMMON
time.sleep(1)" "$COMMON
try: client()
except ConnectionRefusedError: pass"
}

# unread: the server reads 1 byte of a 120-byte request and closes: RST with the rest unread.
unread() {
  record unread "$COMMON
l = listener(); s, _ = l.accept(); s.recv(1); time.sleep(0.3); s.close(); time.sleep(0.5)" "$COMMON
c = client(); c.sendall(b'POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 60\r\n\r\n' + b'x' * 60)
try: c.recv(100)
except ConnectionResetError: pass"
}

# keepalive-race: the server answers, keeps the connection idle 1.5 s and closes it; the client, 0.5 s later,
# sends its next request on it: the server's kernel resets.
keepalive_race() {
  record keepalive-race "$COMMON
l = listener(); s, _ = l.accept(); s.recv(100); s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
time.sleep(1.5); s.close(); time.sleep(1.5)" "$COMMON
c = client(); c.sendall(b'GET /a HTTP/1.1\r\nHost: api\r\n\r\n'); c.recv(100); time.sleep(2.0)
c.sendall(b'GET /b HTTP/1.1\r\nHost: api\r\n\r\n')
try: c.recv(100)
except ConnectionResetError: pass" 1
}

# dead-peer: after one exchange the server's host goes silent (nft drops everything it sends); the client's
# keepalive (idle 1 s, probes every 1 s, 3 of them) gives up and resets.
dead_peer() {
  record dead-peer "$COMMON
l = listener(); s, _ = l.accept(); s.recv(100); s.sendall(b'pong')
nft('add rule inet tcw out tcp sport $PORT drop')
time.sleep(8); nft('flush chain inet tcw out')" "$COMMON
c = client(keep=(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1), idle=(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1),
           intvl=(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1), cnt=(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3))
c.sendall(b'ping'); c.recv(100)
try: c.recv(100)
except (TimeoutError, OSError): pass" 3
}

# zero-window: the server never reads (small receive buffer); the client fills its window, waits 1.5 s through
# the zero window, then gives up with SO_LINGER {1, 0}: RST.
zero_window() {
  record zero-window "$COMMON
l = listener(rcvbuf=4096); s, _ = l.accept(); time.sleep(3)" "$COMMON
c = client(buf=(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)); c.setblocking(False)
try:
    while True: c.send(b'y' * 1000)
except BlockingIOError: pass
time.sleep(1.5)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()" 1
}

# simultaneous-close: the client's first FIN is dropped on its way in; the server, 20 ms later, sends its own FIN
# not having seen the client's: the FINs cross, and each side takes the other's in FIN-WAIT-1.
simultaneous_close() {
  record simultaneous-close "$COMMON
l = listener(); s, _ = l.accept(); s.recv(100)
nft('add rule inet tcw in tcp dport $PORT tcp flags & fin == fin drop')
s.sendall(b'go'); time.sleep(0.02); s.shutdown(socket.SHUT_WR); time.sleep(0.05)
nft('flush chain inet tcw in'); s.recv(100); time.sleep(1); s.close()" "$COMMON
c = client(); c.sendall(b'ready'); c.recv(2); c.shutdown(socket.SHUT_WR); c.recv(100); time.sleep(1); c.close()" 1
}

# fin-retransmit: the client's FIN is dropped for 1.3 s (its first copies are lost), then let through.
fin_retransmit() {
  record fin-retransmit "$COMMON
nft('add rule inet tcw in tcp dport $PORT tcp flags & fin == fin drop')
l = listener(); s, _ = l.accept(); s.recv(100); time.sleep(1.5)
nft('flush chain inet tcw in'); s.recv(100); time.sleep(1.5); s.close()" "$COMMON
c = client(); c.sendall(b'bye'); time.sleep(0.1); c.shutdown(socket.SHUT_WR); c.recv(100); c.close()" 1
}

# simultaneous-open: both sides connect() to each other from fixed ports; their first SYNs are dropped on the
# way into the server, so the retransmitted ones cross and each side answers the other's SYN with a SYN-ACK.
simultaneous_open() {
  record simultaneous-open "$COMMON
nft('add rule inet tcw in tcp flags & syn == syn drop')
nft('add rule inet tcw out tcp flags & syn == syn drop')
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((SA, PORT)); s.settimeout(5)
import threading
threading.Timer(0.6, lambda: (nft('flush chain inet tcw in'), nft('flush chain inet tcw out'))).start()
time.sleep(0.05)
try: s.connect((CA, 5001)); s.sendall(b'hi from the server'); time.sleep(0.5)
except OSError as e: print('server', e)
s.close(); time.sleep(0.5)" "$COMMON
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.bind((CA, 5001)); c.settimeout(5)
try: c.connect((SA, PORT)); c.recv(100); time.sleep(0.5)
except OSError as e: print('client', e)
c.close()" 1.5
}

# self-connect: a socket bound to 127.0.0.1:40000 connects to that same address: it talks to itself (captured on
# the client namespace's loopback).
self_connect() {
  ip netns exec "$C" tcpdump -q -i lo -s 200 -U -w "$out/self-connect.pcap" tcp 2>/dev/null &
  local dump=$!
  sleep 0.5
  py "$C" "$COMMON
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 40000))
s.connect(('127.0.0.1', 40000)); s.sendall(b'hello me'); s.recv(100); s.shutdown(socket.SHUT_WR); s.recv(100)
s.close(); time.sleep(0.3)"
  sleep 0.3
  kill "$dump"
  wait "$dump" 2>/dev/null || true
  echo "recorded $out/self-connect.pcap ($(stat -c %s "$out/self-connect.pcap") bytes)"
}

# handshake-timeout: nft drops every SYN-ACK the server sends; the client (net.ipv4.tcp_syn_retries 1 in its
# namespace) sends its SYN twice and connect() fails with ETIMEDOUT, without a RST.
handshake_timeout() {
  ip netns exec "$C" sysctl -qw net.ipv4.tcp_syn_retries=1
  record handshake-timeout "$COMMON
nft('add rule inet tcw out tcp flags & (syn | ack) == syn | ack drop')
l = listener(); time.sleep(3.5); nft('flush chain inet tcw out')" "$COMMON
try: client()
except (TimeoutError, OSError): pass" 1.5
  ip netns exec "$C" sysctl -qw net.ipv4.tcp_syn_retries=6
}

# fin-wait2-timeout: the client (net.ipv4.tcp_fin_timeout 1 in its namespace) close()s; the server acknowledges
# the FIN but keeps its half open; 2.5 s later, long after the client's orphaned socket timed out of FIN_WAIT2,
# the server sends: the client's kernel has no socket for it and answers with a bare RST.
fin_wait2_timeout() {
  ip netns exec "$C" sysctl -qw net.ipv4.tcp_fin_timeout=1
  record fin-wait2-timeout "$COMMON
l = listener(); s, _ = l.accept(); s.recv(100); s.sendall(b'ok'); s.recv(100); time.sleep(2.5)
s.sendall(b'late news'); time.sleep(0.5); s.close()" "$COMMON
c = client(); c.sendall(b'hello'); c.recv(2); c.close(); time.sleep(3.5)" 0.5
  ip netns exec "$C" sysctl -qw net.ipv4.tcp_fin_timeout=60
}

# duplicate-syn: a copy of the client's SYN, taken off the client's veth end with an AF_PACKET socket, is sent
# again 0.5 s after the connection closed (the client closed first and sits in TIME_WAIT): the network
# duplicated the SYN and delayed the copy. The listening server answers it with a new SYN-ACK, the client's
# TIME_WAIT socket answers that with its old ACK, and the server resets the half-open one.
duplicate_syn() {
  record duplicate-syn "$COMMON
l = listener(); s, _ = l.accept(); s.recv(100); s.sendall(b'pong'); s.recv(100); s.close(); time.sleep(2)" "$COMMON
ETH_P_ALL = 3
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)); raw.bind(('$C', 0))
raw.settimeout(2)
import threading
syn = []
def sniff():
    while not syn:
        f = raw.recv(2000)
        # Ethernet + IPv4 (no options: 20 bytes) + TCP: flags at 14 + 20 + 13
        if len(f) > 47 and f[12:14] == b'\x08\x00' and f[23] == 6 and f[47] & 0x12 == 0x02:
            syn.append(f)
t = threading.Thread(target=sniff); t.start(); time.sleep(0.1)
c = client(); c.sendall(b'ping'); c.recv(4); c.close(); t.join(); time.sleep(0.5)
# the captured copy may carry a partial checksum (checksum offload on the veth): fill it in, as the wire had it
f = bytearray(syn[0][:14 + 20 + (syn[0][46] >> 4) * 4])
seg = f[34:]; seg[16:18] = b'\0\0'
data = bytes(f[26:34]) + struct.pack('!HH', 6, len(seg)) + bytes(seg)
data += b'\0' * (len(data) % 2)
x = sum(struct.unpack('!%dH' % (len(data) // 2), data))
while x >> 16: x = (x & 0xffff) + (x >> 16)
f[50:52] = struct.pack('!H', ~x & 0xffff)
raw.send(bytes(f)); time.sleep(1)" 1
}

all=(refused unread keepalive_race dead_peer zero_window simultaneous_close fin_retransmit simultaneous_open self_connect
  handshake_timeout fin_wait2_timeout duplicate_syn)
for name in "${@:-${all[@]}}"; do
  "${name//-/_}"
done
