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
        for key in ["id.orig_p", "id.resp_p", "orig_pkts", "resp_pkts"] {
            assert_eq!(json[key].as_u64().unwrap().to_string(), row[key], "{key}");
        }
        for key in ["orig_bytes", "resp_bytes"] {
            match json.get(key) {
                Some(n) => assert_eq!(n.as_u64().unwrap().to_string(), row[key], "{key}"),
                None => assert_eq!(row[key], "-", "{key}"),
            }
        }
        // Zeek's JSON writer leaves unset fields out
        for key in [
            "service",
            "local_orig",
            "missed_bytes",
            "orig_ip_bytes",
            "tunnel_parents",
        ] {
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
        // not measured: unset, never a made-up 0
        assert_eq!(row["missed_bytes"], "-", "{run}");
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
