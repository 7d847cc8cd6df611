//! Zeek's conn.log, as TSV (`--format zeek`, its ASCII writer's header lines, field names and types) and as JSON
//! Lines (`--format zeek-json`, its JSON writer's keys), so that `zeek-cut` and the tools that ingest Zeek logs read
//! it unchanged. The fields are counted by Zeek's definitions (`crate::track::zeek`); what we do not count is
//! unset (`-`, or absent in JSON), as Zeek leaves a field whose analyzer did not run. docs/output.md says which.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::model::time::push_seconds;
use crate::track::conn::{Conn, Side};

/// conn.log's fields, in Zeek's order, with their Zeek types.
pub const FIELDS: [(&str, &str); 21] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
];

/// The header of a conn.log, as Zeek's ASCII writer starts one (without `#open`, which would make the output
/// change from run to run).
pub fn header() -> String {
    let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    let types: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\t{}\n#types\t{}\n",
        names.join("\t"),
        types.join("\t")
    )
}

/// A connection's uid: `C` and 17 base62 characters, as Zeek's, but drawn from the file's name and the
/// connection's id, 4-tuple and start, so the same capture gives the same uids (Zeek's are random per run).
pub fn uid(file: &str, c: &Conn) -> String {
    // FNV-1a over what names the connection, twice with different seeds for 128 bits
    let key = format!(
        "{file}\0{}\0{}\0{}\0{}",
        c.id,
        c.client.socket(),
        c.server.socket(),
        c.start
    );
    let fnv = |seed: u64| {
        key.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    let mut n =
        (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x6c62_272e_07bb_0142));
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::from("C");
    for _ in 0..17 {
        s.push(B62[(n % 62) as usize] as char);
        n /= 62;
    }
    s
}

/// What a connection's conn.log row holds, `None` for an unset field.
struct Row {
    fields: Vec<(&'static str, Option<Value>)>,
}

fn row(file: &str, c: &Conn) -> Row {
    let dur = c.duration();
    // Zeek sets duration and the byte counts only when the connection lasted (set_conn: c$duration > 0secs)
    let lasted = dur > 0;
    let history = c.history();
    let f = vec![
        ("ts", Some(json!(seconds(c.start)))),
        ("uid", Some(json!(uid(file, c)))),
        ("id.orig_h", Some(json!(c.client.ip.to_string()))),
        ("id.orig_p", Some(json!(c.client.port))),
        ("id.resp_h", Some(json!(c.server.ip.to_string()))),
        ("id.resp_p", Some(json!(c.server.port))),
        ("proto", Some(json!("tcp"))),
        // no protocol detection here
        ("service", None),
        ("duration", lasted.then(|| json!(seconds(dur)))),
        ("orig_bytes", lasted.then(|| json!(c.bytes(Side::Client)))),
        ("resp_bytes", lasted.then(|| json!(c.bytes(Side::Server)))),
        ("conn_state", Some(json!(c.conn_state().code()))),
        // Zeek sets these only when Site::local_nets is configured
        ("local_orig", None),
        ("local_resp", None),
        // the content gaps, as Zeek's reassembler finds them (track::zeek::reassem)
        ("missed_bytes", Some(json!(c.zeek.missed_bytes()))),
        ("history", (!history.is_empty()).then(|| json!(history))),
        (
            "orig_pkts",
            Some(json!(c.counts[Side::Client.index()].packets)),
        ),
        // ConnSize's sums of the IP headers' total lengths
        (
            "orig_ip_bytes",
            Some(json!(c.ip_bytes[Side::Client.index()])),
        ),
        (
            "resp_pkts",
            Some(json!(c.counts[Side::Server.index()].packets)),
        ),
        (
            "resp_ip_bytes",
            Some(json!(c.ip_bytes[Side::Server.index()])),
        ),
        ("tunnel_parents", None),
    ];
    Row { fields: f }
}

/// Seconds with Zeek's six decimals.
fn text_seconds(ns: i64) -> String {
    let mut s = String::new();
    push_seconds(&mut s, ns);
    s
}

/// Seconds as a JSON number (Zeek's JSON writer prints times as numbers).
fn seconds(ns: i64) -> f64 {
    text_seconds(ns).parse().unwrap_or(0.0)
}

/// A TSV field as Zeek's ASCII writer escapes it: tabs, the separator and non-printable bytes as `\xNN`.
fn tsv_field(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    };
    let mut out = String::new();
    for ch in text.chars() {
        if ch == '\t' || ch == '\\' || ch.is_control() {
            let mut b = [0u8; 4];
            for byte in ch.encode_utf8(&mut b).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        } else {
            out.push(ch);
        }
    }
    if out.is_empty() {
        "(empty)".into()
    } else {
        out
    }
}

/// One connection as a conn.log TSV line.
pub fn tsv_line(file: &str, c: &Conn) -> String {
    let r = row(file, c);
    let cells: Vec<String> = r
        .fields
        .iter()
        .map(|(k, v)| match (*k, v) {
            (_, None) => "-".to_string(),
            // times from the nanoseconds themselves, not through an f64
            ("ts", Some(_)) => text_seconds(c.start),
            ("duration", Some(_)) => text_seconds(c.duration()),
            (_, Some(v)) => tsv_field(v),
        })
        .collect();
    cells.join("\t") + "\n"
}

/// One connection as Zeek's JSON writer prints it: unset fields left out, keys in conn.log's order.
pub fn json_line(file: &str, c: &Conn) -> String {
    let r = row(file, c);
    let mut m = Map::new();
    for (k, v) in r.fields {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    let mut s = String::from("{");
    // serde_json's map sorts its keys; Zeek writes them in the log's order
    for (k, _) in FIELDS.iter().filter(|(k, _)| m.contains_key(*k)) {
        if s.len() > 1 {
            s.push(',');
        }
        let _ = write!(s, "{}:{}", Value::from(*k), m[*k]);
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_every_field_with_its_type() {
        let h = header();
        let fields = h.lines().find(|l| l.starts_with("#fields")).unwrap();
        let types = h.lines().find(|l| l.starts_with("#types")).unwrap();
        assert_eq!(fields.split('\t').count(), 22);
        assert_eq!(types.split('\t').count(), 22);
        assert!(h.starts_with("#separator \\x09\n"));
    }

    #[test]
    fn tsv_escapes_tabs_and_marks_empty() {
        assert_eq!(tsv_field(&json!("a\tb")), "a\\x09b");
        assert_eq!(tsv_field(&json!("")), "(empty)");
        assert_eq!(tsv_field(&json!(1.5)), "1.500000");
        assert_eq!(tsv_field(&json!(80)), "80");
    }
}
