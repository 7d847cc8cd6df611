# tcp-close-watch recipes. `just` lists them. Capture needs root: prefix with sudo, or run `just setcap` once.

bin := "target/release/tcp-close-watch"

default:
    @just --list

# build the release binary (installs libpcap-dev if missing)
build:
    bash scripts/deps.sh
    cargo build --release

# the classic lesson: B closes with unread data, A gets ECONNRESET
demo mode="abrupt": build
    {{bin}} run --mode {{mode}}

# every mode, one after the other, with its timeline and account
modes: build
    for m in $({{bin}} modes | awk '$1 != "all" {print $1}'); do {{bin}} run --mode $m; done

# the comparison of every mode (the teacher's slide); FORMAT = table, markdown, json, csv
all format="table": build
    {{bin}} run --mode all --format {{format}}

# the whole test suite (as the README's Quick start runs it)
test:
    bash scripts/test.sh

# format and lint
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# time `run --mode abrupt` and `run --mode all` against references measured in the same run
bench: build
    bash bench/run.sh

# CONCURRENT `run --mode all` at once, ROUNDS times, quiet then with CPU hogs (as root): hangs and wrong stories
# with exit 0 must be 0; also counts incomplete runs and drops
stress concurrent="40" rounds="5": build
    bash scripts/stress.sh {{concurrent}} {{rounds}}

# nginx + wrk with `Connection: close` on loopback, alone then under `watch` (as root): connections/s seen vs done,
# drops, trace losses, watch's CPU and peak memory; cleans up what it started
load seconds="30" connections="64":
    bash scripts/load.sh {{seconds}} {{connections}}

# watch's capacity (as root): the cheapest connections (examples/connload.rs) alone, under tcpdump, then watched:
# connections/s and the ratios, seen vs made, drops, trace losses, CPU per connection, memory at 10 s and at the end
bench-watch seconds="30" threads="4":
    bash bench/watch.sh {{seconds}} {{threads}}

# watch's own ceiling (as root): connections' frames written onto lo in a namespace of its own (examples/frameload.rs),
# no TCP stack cost behind them: connections/s alone, under tcpdump, watched; seen vs written, drops, CPU, memory
bench-watch-capacity seconds="20" rate="0":
    bash bench/watch.sh frames {{seconds}} {{rate}}

# let the binary capture without sudo (CAP_NET_RAW on the file; it gives it up once the capture is open)
setcap: build
    sudo setcap cap_net_raw=eip {{bin}}

# record one capture per mode into captures/ (with the socket calls inside) and its README table
captures:
    bash scripts/make-captures.sh

# Write a synthetic capture: just synth 1000000 /tmp/synth-1m.pcap
synth connections="100000" out="/tmp/tcw-synth.pcap":
    cargo run --release --quiet --example synth -- --connections {{connections}} {{out}}

# how soon a scenario's wait on the wire or the kernel's events lets the next step go, against a state poll (root)
bench-waits: build
    python3 bench/waits.py

# analyze beside tcptrace/tshark/tcpdump on 100k- and 1M-connection captures (in /tmp); see bench/RESULTS.md
bench-analyze:
    bash bench/analyze.sh

# Our counts against tshark's on ../shared/corpus (fails loudly under CI when the corpus is missing)
corpus:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -f ../shared/corpus/truth.tsv ]; then
        echo "corpus not found at ../shared/corpus" >&2
        if [ "${CI:-}" = "true" ]; then exit 1; fi
        exit 0
    fi
    cargo test --test corpus -- --nocapture

# Fuzz the capture reader, the frame decoder and the printers (seconds per target; needs cargo-fuzz and the nightly toolchain
# that is installed here: `cargo install cargo-fuzz`; without nightly, prefix RUSTC_BOOTSTRAP=1)
fuzz seconds="300":
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    mkdir -p corpus/capfile
    if [ -d ../../shared/corpus/pcaps ]; then cp -n ../../shared/corpus/pcaps/* corpus/capfile/ 2>/dev/null || true; fi
    cargo +nightly fuzz run capfile corpus/capfile -- -max_total_time={{seconds}} -rss_limit_mb=2048
    cargo +nightly fuzz run decode -- -max_total_time={{seconds}}
    # the printers: captures and saved runs' strings through every format (the stable test runs a short version)
    mkdir -p corpus/printers
    cp -n ../captures/*.pcapng corpus/printers/ 2>/dev/null || true
    cargo +nightly fuzz run printers corpus/printers -- -max_total_time={{seconds}} -rss_limit_mb=2048

# remake the generated timelines, comparison and SVG pictures in docs/ from captures/
docs:
    cargo run --quiet --example make_docs

# the coloured table rendered on white and on black (aha + chromium) into docs/img/colours-*.png, to look at
screenshots:
    bash scripts/screenshots.sh

# install: the binary (cargo install --path .), CAP_NET_RAW on it (setcap, so `run` captures without sudo), the man
# pages and bash/zsh/fish completions under PREFIX (with sudo when not root)
install prefix="/usr/local":
    #!/usr/bin/env bash
    set -euo pipefail
    bash scripts/deps.sh
    echo "building (first time takes a few minutes)…" >&2
    cargo install --path . --locked --quiet
    bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/tcp-close-watch"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root setcap cap_net_raw=eip "$bin"
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    "$bin" generate man --dir "$tmp"
    "$bin" generate bash >"$tmp/tcp-close-watch.bash"
    "$bin" generate zsh >"$tmp/_tcp-close-watch"
    "$bin" generate fish >"$tmp/tcp-close-watch.fish"
    as_root install -D -m 644 -t "{{prefix}}/share/man/man1" "$tmp"/*.1
    as_root install -D -m 644 "$tmp/tcp-close-watch.bash" "{{prefix}}/share/bash-completion/completions/tcp-close-watch"
    as_root install -D -m 644 "$tmp/_tcp-close-watch" "{{prefix}}/share/zsh/site-functions/_tcp-close-watch"
    as_root install -D -m 644 "$tmp/tcp-close-watch.fish" "{{prefix}}/share/fish/vendor_completions.d/tcp-close-watch.fish"
    echo "installed $bin (with CAP_NET_RAW), man tcp-close-watch, and completions under {{prefix}}/share" >&2
