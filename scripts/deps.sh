#!/usr/bin/env bash
# Install what building and testing tcp-close-watch needs and a fresh Debian/Ubuntu machine lacks, saying what it
# installs. Safe to run again: it installs only what is missing.
set -euo pipefail

missing=()
dpkg -s libpcap-dev >/dev/null 2>&1 || missing+=(libpcap-dev)   # the pcap crate links libpcap
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)     # tests drop privileges with it
command -v setcap >/dev/null 2>&1 || missing+=(libcap2-bin)     # tests try the setcap route the docs give
dpkg -s nftables >/dev/null 2>&1 || missing+=(nftables)         # a test drops the end marker with an nft rule
dpkg -s iproute2 >/dev/null 2>&1 || missing+=(iproute2)         # … in a network namespace of its own (ip netns)
command -v python3 >/dev/null 2>&1 || missing+=(python3)     # tests/watch.rs starts small Python servers
for want in "$@"; do                                            # extra packages a caller asks for (e.g. tshark)
  dpkg -s "$want" >/dev/null 2>&1 || missing+=("$want")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tcp-close-watch: installing ${missing[*]} (apt-get)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "tcp-close-watch: please install ${missing[*]} as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
