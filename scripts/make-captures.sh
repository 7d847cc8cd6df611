#!/usr/bin/env bash
# Record one capture per mode into captures/ (as root: it captures loopback) and write captures/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
bin=target/release/tcp-close-watch
kernel="Linux $(uname -r)"
readme=captures/README.md
{
  echo "# Example captures"
  echo
  echo "One capture per mode of \`tcp-close-watch run\`, recorded with \`just captures\` (scripts/make-captures.sh)."
  echo "Each is pcapng with A's and B's socket calls inside: \`tcp-close-watch analyze captures/abrupt.pcapng\` prints"
  echo "the same timeline as the live run, and Wireshark shows the calls and the kernel's own events (reset reasons,"
  echo "state changes, errors; recorded as root) as packet comments"
  echo "(\`tshark -r captures/abrupt.pcapng -T fields -e frame.comment\`). They are also the fixtures of the tests."
  echo
  echo "| file | mode | recorded on | what it shows |"
  echo "|---|---|---|---|"
} > "$readme"
"$bin" modes | awk '$1 != "all" {print $1}' | while read -r mode; do
  "$bin" run --mode "$mode" --write "captures/$mode.pcapng" --color never > /dev/null
  what=$("$bin" modes | awk -v m="$mode" '$1 == m {sub(/^[^ ]+ +/, ""); print}')
  echo "| [\`$mode.pcapng\`]($mode.pcapng) | \`$mode\` | $kernel | $what |" >> "$readme"
done
echo "wrote $(ls captures/*.pcapng | wc -l) captures and $readme"
