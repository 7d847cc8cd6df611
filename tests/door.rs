//! Only the door touches the kernel: the scenario and the live run's orchestration make no system call of their
//! own — they ask `os` (through `pipeline::live::Door` for the run), so both can be replayed without privileges.
//! Checked on the source text, outside test modules, like tests/architecture.rs.

use std::path::Path;

/// What only `os/` may name: raw system calls, files (/proc among them), sockets, libpcap, sleeping.
const KERNEL_CONTACT: &[&str] = &[
    "libc::",
    "unsafe",
    "std::fs",
    "/proc",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "pcap::",
    "thread::sleep",
    "yield_now",
];

/// Files that must reach the kernel only through `os`.
const BEHIND_THE_DOOR: &[&str] = &[
    "src/scenario/mod.rs",
    "src/scenario/expect.rs",
    "src/scenario/lex.rs",
    "src/scenario/parse.rs",
    "src/scenario/play.rs",
    "src/scenario/predict.rs",
    "src/scenario/script.rs",
    "src/scenario/shipped.rs",
    "src/scenario/wait.rs",
    "src/pipeline/live.rs",
    "src/pipeline/replay.rs",
];

fn non_test_code(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    }
}

#[test]
fn scenario_and_live_run_reach_the_kernel_only_through_os() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for file in BEHIND_THE_DOOR {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (n, line) in non_test_code(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in KERNEL_CONTACT {
                if code.contains(word) {
                    found.push(format!("{file}:{}: {word}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "kernel contact outside os/ (move it into os/):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scenario_folder_is_all_listed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("src/scenario")).unwrap() {
        let name = format!(
            "src/scenario/{}",
            entry.unwrap().file_name().to_string_lossy()
        );
        assert!(
            BEHIND_THE_DOOR.contains(&name.as_str()),
            "{name} is not checked"
        );
    }
}
