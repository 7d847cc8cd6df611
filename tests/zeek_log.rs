//! `--format zeek` is a conn.log Zeek's tools read: its header parsed as `zeek-cut` parses it (`#separator`, then
//! `#fields` and `#types`), every value valid for its type, and the counts equal to the ones `analyze` reports by
//! Zeek's definitions; `--format zeek-json` carries the same values under Zeek's JSON keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;

fn tcw(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(args)
        .output()
        .expect("binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Frames the capture kept shorter than they were on the wire (cut by the snap length).
fn cut_frames(path: &str) -> usize {
    let mut reader =
        tcp_close_watch::capfile::CaptureReader::open(path).expect("a saved run opens");
    let mut cut = 0;
    while let Some(frame) = reader.next_frame().expect("a saved run reads") {
        cut += usize::from(frame.data.len() < frame.orig_len as usize);
    }
    cut
}

fn saved_runs() -> Vec<String> {
    tcp_close_watch::model::run::Mode::ALL
        .iter()
        .map(|m| {
            format!(
                "{}/captures/{}.pcapng",
                env!("CARGO_MANIFEST_DIR"),
                m.name()
            )
        })
        .collect()
}

/// The rows of a Zeek ASCII log as `zeek-cut` reads it: the separator from `#separator` (`\x09`), the names from
/// `#fields`; each row a map of name → value.
fn zeek_cut(log: &str) -> (Vec<String>, Vec<String>, Vec<HashMap<String, String>>) {
    let mut lines = log.lines();
    let first = lines.next().unwrap();
    let sep = first.strip_prefix("#separator ").expect("#separator first");
    assert_eq!(sep, "\\x09");
    let sep = '\t';
    let (mut fields, mut types, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut meta = HashMap::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.split(sep);
            let key = parts.next().unwrap().to_string();
            let values: Vec<String> = parts.map(str::to_string).collect();
            match key.as_str() {
                "fields" => fields = values,
                "types" => types = values,
                _ => {
                    meta.insert(key, values.join("\t"));
                }
            }
            continue;
        }
        let cells: Vec<&str> = line.split(sep).collect();
        assert_eq!(cells.len(), fields.len(), "{line}");
        rows.push(
            fields
                .iter()
                .cloned()
                .zip(cells.iter().map(|c| c.to_string()))
                .collect(),
        );
    }
    assert_eq!(meta["set_separator"], ",");
    assert_eq!(meta["empty_field"], "(empty)");
    assert_eq!(meta["unset_field"], "-");
    assert_eq!(meta["path"], "conn");
    (fields, types, rows)
}

#[test]
fn conn_log_reads_as_zeek_cut_reads_it_with_zeeks_fields_and_types() {
    let mut args = vec!["analyze", "-f", "zeek"];
    let runs = saved_runs();
    args.extend(runs.iter().map(String::as_str));
    let (fields, types, rows) = zeek_cut(&tcw(&args));
    assert_eq!(
        fields.join(" "),
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes conn_state \
         local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents"
    );
    assert_eq!(
        types.join(" "),
        "time string addr port addr port enum string interval count count string bool bool count string count \
         count count count set[string]"
    );
    assert_eq!(rows.len(), runs.len(), "one connection per saved run");
    for row in &rows {
        for (name, ty) in fields.iter().zip(&types) {
            let v = &row[name];
            if v == "-" {
                continue;
            }
            let ok = match ty.as_str() {
                "time" | "interval" => {
                    v.parse::<f64>().is_ok() && v.split('.').nth(1).map(str::len) == Some(6)
                }
                "addr" => v.parse::<IpAddr>().is_ok(),
                "port" => v.parse::<u16>().is_ok(),
                "count" => v.parse::<u64>().is_ok(),
                "bool" => v == "T" || v == "F",
                "enum" | "string" => !v.is_empty() && !v.contains('\t'),
                _ => v == "(empty)" || !v.is_empty(),
            };
            assert!(ok, "{name} ({ty}) = {v:?}");
        }
        assert!(
            row["uid"].starts_with('C') && row["uid"].len() == 18,
            "{}",
            row["uid"]
        );
    }
    // the same counts analyze reports (by Zeek's definitions) for each connection
    let ours: Vec<serde_json::Value> = runs
        .iter()
        .flat_map(|r| {
            // each saved run alone, its one connection as a Zeek JSON line
            tcw(&["analyze", "-f", "zeek-json", r])
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    for (row, json) in rows.iter().zip(&ours) {
        for key in ["uid", "id.orig_h", "conn_state", "history"] {
            assert_eq!(json[key], row[key].as_str(), "{key}");
        }
        for key in [
            "id.orig_p",
            "id.resp_p",
            "orig_pkts",
            "resp_pkts",
            "missed_bytes",
            "orig_ip_bytes",
            "resp_ip_bytes",
        ] {
            assert_eq!(json[key].as_u64().unwrap().to_string(), row[key], "{key}");
        }
        for key in ["orig_bytes", "resp_bytes"] {
            match json.get(key) {
                Some(n) => assert_eq!(n.as_u64().unwrap().to_string(), row[key], "{key}"),
                None => assert_eq!(row[key], "-", "{key}"),
            }
        }
        // Zeek's JSON writer leaves unset fields out
        for key in ["service", "local_orig", "tunnel_parents"] {
            assert!(json.get(key).is_none(), "{key} in {json}");
        }
    }
}

#[test]
fn zeek_counts_match_the_summary_and_the_segments() {
    for run in saved_runs() {
        let log = tcw(&["analyze", "-f", "zeek", &run]);
        let (_, _, rows) = zeek_cut(&log);
        let row = &rows[0];
        // the timeline's segments, counted by hand: packets per side and payload in sequence space
        let rows_json: Vec<serde_json::Value> =
            tcw(&["analyze", "-f", "json", "--conn", "0", &run])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        let segs = |side: &'static str| {
            rows_json
                .iter()
                .filter(move |r| r["kind"] == "segment" && r["side"] == side)
        };
        assert_eq!(row["orig_pkts"], segs("A").count().to_string(), "{run}");
        assert_eq!(row["resp_pkts"], segs("B").count().to_string(), "{run}");
        // loopback loses nothing, so a byte is missed only where the capture's snap length cut a payload (Zeek's
        // reassembler takes whole payloads alone): zero-window's 10,000-byte segments are cut by design
        if cut_frames(&run) == 0 {
            assert_eq!(row["missed_bytes"], "0", "{run}");
        } else {
            assert_ne!(
                row["missed_bytes"], "0",
                "{run}: a cut payload was acknowledged"
            );
        }
        if row["orig_bytes"] != "-" {
            let sent: u64 = segs("A")
                .filter(|r| !r["flags"].as_str().unwrap().contains('R'))
                .map(|r| r["len"].as_u64().unwrap())
                .sum();
            // orig_bytes counts sequence space, so a retransmitted byte counts once: at most what was sent
            assert!(row["orig_bytes"].parse::<u64>().unwrap() <= sent, "{run}");
        }
    }
}

/// What `tshark` (not our decoder, not our tracker) reads in a file: IP bytes per direction, keyed by
/// (source, source port, destination, destination port), each packet's IP length as its header declares it
/// (IPv6: payload length + 40). `None` after the loud SKIPPED line when tshark is missing.
fn tshark_ip_bytes(file: &str) -> Option<HashMap<(String, String, String, String), u64>> {
    let out = match Command::new("tshark")
        .args(["-r", file, "-Y", "tcp", "-T", "fields", "-E", "separator=|"])
        .args(["-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport"])
        .args(["-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"])
        .args(["-e", "ip.len", "-e", "ipv6.plen"])
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => {
            tcp_close_watch::testing::skip("tshark is not installed (scripts/test.sh installs it)");
            return None;
        }
    };
    let mut sums = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<&str> = line.split('|').collect();
        let (src, dst, len) = if c[0].is_empty() {
            (c[1], c[4], c[7].parse::<u64>().unwrap() + 40)
        } else {
            (c[0], c[3], c[6].parse::<u64>().unwrap())
        };
        let key = (src.into(), c[2].into(), dst.into(), c[5].into());
        *sums.entry(key).or_default() += len;
    }
    Some(sums)
}

/// `orig_ip_bytes` and `resp_ip_bytes` are the IP lengths each side sent, summed: tshark's sums, per direction,
/// on saved runs and on corpus files with IPv6, TCP segmentation offload (IPv4 total length 0) and a long
/// connection.
#[test]
fn ip_bytes_are_the_ip_lengths_tshark_reads() {
    let mut files = saved_runs();
    for name in [
        "gap-data-missing.pcapng",
        "kerberos_tso.pcapng",
        "pppoe-over-qinq.pcap",
        "ipv6-violation.pcap",
        "ssh-dups.pcap",
    ] {
        match tcp_close_watch::testing::corpus_file(
            name,
            "ip_bytes_are_the_ip_lengths_tshark_reads",
        ) {
            Some(p) => files.push(p.display().to_string()),
            None => return,
        }
    }
    for file in &files {
        let Some(theirs) = tshark_ip_bytes(file) else {
            return;
        };
        let (_, _, rows) = zeek_cut(&tcw(&["analyze", "-f", "zeek", file]));
        let mut ours: HashMap<(String, String, String, String), u64> = HashMap::new();
        for r in &rows {
            let (oh, op, rh, rp) = (
                &r["id.orig_h"],
                &r["id.orig_p"],
                &r["id.resp_h"],
                &r["id.resp_p"],
            );
            let n = |k: &str| r[k].parse::<u64>().unwrap();
            *ours
                .entry((oh.clone(), op.clone(), rh.clone(), rp.clone()))
                .or_default() += n("orig_ip_bytes");
            *ours
                .entry((rh.clone(), rp.clone(), oh.clone(), op.clone()))
                .or_default() += n("resp_ip_bytes");
        }
        ours.retain(|_, n| *n > 0);
        assert!(!theirs.is_empty(), "{file}");
        assert_eq!(ours, theirs, "{file}");
    }
}

/// Zeek's own conn.log for three corpus files, from Zeek's test suite (testing/btest/Baseline:
/// scripts.base.protocols.irc.starttls, core.pppoe-over-qinq, scripts.base.protocols.ldap.basic and
/// scripts.base.protocols.ldap.gap): every count and letter of ours is Zeek's.
#[test]
fn counts_are_zeeks_own_on_files_from_zeeks_test_suite() {
    let zeek: [(&str, &[(&str, &str)]); 4] = [
        (
            "irc-starttls.pcap",
            &[
                ("orig_bytes", "913"),
                ("resp_bytes", "1903"),
                ("conn_state", "SF"),
                ("missed_bytes", "0"),
                ("history", "ShADadFRf"),
                ("orig_pkts", "11"),
                ("orig_ip_bytes", "1469"),
                ("resp_pkts", "9"),
                ("resp_ip_bytes", "2379"),
            ],
        ),
        (
            "pppoe-over-qinq.pcap",
            &[
                ("orig_bytes", "11352"),
                ("resp_bytes", "4984"),
                ("conn_state", "SF"),
                ("missed_bytes", "0"),
                ("history", "ShADdtaTTtFf"),
                ("orig_pkts", "44"),
                ("orig_ip_bytes", "25283"),
                ("resp_pkts", "42"),
                ("resp_ip_bytes", "13001"),
            ],
        ),
        (
            "simpleauth.pcap",
            &[
                ("orig_bytes", "258"),
                ("resp_bytes", "188"),
                ("conn_state", "RSTO"),
                ("missed_bytes", "0"),
                ("history", "ShADdR"),
                ("orig_pkts", "8"),
                ("orig_ip_bytes", "590"),
                ("resp_pkts", "4"),
                ("resp_ip_bytes", "360"),
            ],
        ),
        // Zeek's baseline keeps only the history here: its 'g' is a gap in the responder's stream, which tshark
        // shows as bytes 211..1553 (frame 7 ends at 211, frame 9 acknowledges 1553, no frame carries them)
        (
            "gap-data-missing.pcapng",
            &[("history", "ShADadgtFr"), ("missed_bytes", "1342")],
        ),
    ];
    for (name, want) in zeek {
        let Some(path) = tcp_close_watch::testing::corpus_file(name, "counts_are_zeeks_own") else {
            return;
        };
        let (_, _, rows) = zeek_cut(&tcw(&["analyze", "-f", "zeek", path.to_str().unwrap()]));
        assert_eq!(rows.len(), 1, "{name}");
        for (k, v) in want {
            assert_eq!(rows[0][*k], *v, "{name}: {k}");
        }
    }
}

/// One Ethernet/IPv4 frame of the gap tests: client 10.0.0.1:40000, server 10.0.0.2:80; `flags` in tcpdump's
/// letters (`S`, `S.`, `.`, `P.`, `F.`).
fn frame(from_client: bool, flags: &str, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 1000);
    let b = match flags {
        "S" => b.syn(),
        "S." => b.syn().ack(ack),
        "F." => b.fin().ack(ack),
        "P." => b.psh().ack(ack),
        _ => b.ack(ack),
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// A capture written by the test: `(frame, bytes cut from its end by the snap length)` in order, 1 ms apart.
fn capture(frames: &[(Vec<u8>, usize)]) -> tempfile_path::Path {
    use tcp_close_watch::capfile::{Endian, write::PcapWriter};
    let mut w = PcapWriter::new(Endian::Little, false, 65535, 1);
    for (i, (f, cut)) in frames.iter().enumerate() {
        let ts = 1_700_000_000_000_000_000 + i as i64 * 1_000_000;
        w.record(ts, &f[..f.len() - cut], f.len() as u32);
    }
    tempfile_path::Path::with(&w.into_bytes())
}

/// A file that removes itself, named per process and call so that tests running at once do not collide.
mod tempfile_path {
    use std::sync::atomic::{AtomicU32, Ordering};
    pub struct Path(pub std::path::PathBuf);
    impl Path {
        pub fn with(bytes: &[u8]) -> Path {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("tcw-gap-{}-{n}.pcap", std::process::id()));
            std::fs::write(&p, bytes).unwrap();
            Path(p)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A 100-byte segment in the middle of the client's 300 that the server acknowledges: missed, and with it the
/// rest unharmed; the same segment arriving late (out of order) before the acknowledgment: nothing missed; a
/// segment whose payload the snap length cut: missed too, as Zeek's reassembler never takes a cut payload.
#[test]
fn missed_bytes_are_the_acknowledged_bytes_no_captured_segment_carried() {
    let (c, s) = (true, false);
    let data = [b'a'; 100];
    let handshake = || {
        vec![
            (frame(c, "S", 100, 0, b""), 0),
            (frame(s, "S.", 500, 101, b""), 0),
            (frame(c, ".", 101, 501, b""), 0),
            (frame(c, "P.", 101, 501, &data), 0),
        ]
    };
    let close = || {
        vec![
            (frame(s, ".", 501, 401, b""), 0),
            (frame(c, "F.", 401, 501, b""), 0),
            (frame(s, "F.", 501, 402, b""), 0),
            (frame(c, ".", 402, 502, b""), 0),
        ]
    };
    let zeek = |frames: Vec<(Vec<u8>, usize)>| {
        let file = capture(&frames);
        let (_, _, rows) = zeek_cut(&tcw(&["analyze", "-f", "zeek", file.as_str()]));
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        (
            r["missed_bytes"].clone(),
            r["history"].clone(),
            r["orig_bytes"].clone(),
        )
    };

    // 201..301 never captured
    let mut lost = handshake();
    lost.push((frame(c, "P.", 301, 501, &data), 0));
    lost.extend(close());
    let (missed, history, orig_bytes) = zeek(lost);
    assert_eq!(missed, "100");
    assert!(
        history.contains('G'),
        "{history}: Zeek logs a gap of the originator as G"
    );
    // sequence space still says 300 were sent
    assert_eq!(orig_bytes, "300");

    // the same, but 201..301 arrives after 301..401 and before the ack
    let mut late = handshake();
    late.push((frame(c, "P.", 301, 501, &data), 0));
    late.push((frame(c, "P.", 201, 501, &data), 0));
    late.extend(close());
    let (missed, history, _) = zeek(late);
    assert_eq!(missed, "0");
    assert!(!history.contains('G'), "{history}");

    // every segment there, but the snap length cut 40 bytes of the second one's payload
    let mut cut = handshake();
    cut.push((frame(c, "P.", 201, 501, &data), 40));
    cut.push((frame(c, "P.", 301, 501, &data), 0));
    cut.extend(close());
    let (missed, _, _) = zeek(cut);
    assert_eq!(missed, "100");
}
