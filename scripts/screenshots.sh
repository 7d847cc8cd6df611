#!/usr/bin/env bash
# Render the coloured terminal table on a white and on a black background (aha + headless chromium), to look at
# whether every colour reads on both: docs/img/colours-white.png and docs/img/colours-black.png.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in aha chromium; do
    command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install aha chromium" >&2; exit 1; }
done
cargo build --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/debug/tcp-close-watch analyze captures/shutdown.pcapng --color always --width 100 >"$tmp/table.ansi"
for bg in white black; do
    fg=black; [ "$bg" = black ] && fg=white
    aha --title colours <"$tmp/table.ansi" |
        sed "s|<head>|<head><style>body{background:$bg;color:$fg;font:14px 'DejaVu Sans Mono',monospace}</style>|" \
            >"$tmp/$bg.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=980,1000 \
        --screenshot="docs/img/colours-$bg.png" "file://$tmp/$bg.html" 2>/dev/null
    echo "docs/img/colours-$bg.png"
done
