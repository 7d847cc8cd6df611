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

# let the binary capture without sudo (CAP_NET_RAW and CAP_NET_ADMIN on the file)
setcap: build
    sudo setcap cap_net_raw,cap_net_admin=eip {{bin}}

# record one capture per mode into captures/ (with the socket calls inside) and its README table
captures:
    bash scripts/make-captures.sh
