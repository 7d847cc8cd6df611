//! The diagram formats (ladder, SVG, Mermaid) on a timeline built in the test: no privileges needed.

use tcp_close_watch::explain::timeline::{Sides, States, Timeline, build};
use tcp_close_watch::model::calls::{CallKind, Outcome, Peer, SocketCall};
use tcp_close_watch::model::segment::TcpFlags;
use tcp_close_watch::render::{ladder, mermaid, svg};
use tcp_close_watch::testing::{self, seg};

fn sides() -> Sides {
    Sides {
        b_label: "B (server <&>)".into(),
        ..tcp_close_watch::testing::sides()
    }
}

fn abrupt() -> Timeline {
    const ACK: u16 = TcpFlags::ACK;
    let segments = vec![
        seg(10_000, Peer::A, TcpFlags::SYN, 100, 0, b""),
        seg(11_000, Peer::B, TcpFlags::SYN | ACK, 900, 101, b""),
        seg(12_000, Peer::A, ACK, 101, 901, b""),
        seg(
            30_000,
            Peer::A,
            TcpFlags::PSH | ACK,
            101,
            901,
            b"Hello; <B> & #1",
        ),
        seg(40_000, Peer::B, TcpFlags::FIN | ACK, 901, 116, b""),
        seg(61_000, Peer::B, TcpFlags::RST | ACK, 902, 116, b""),
    ];
    let call = |peer, kind, text: &str, t, outcome| SocketCall {
        call: text.into(),
        ..testing::call(peer, kind, t, outcome)
    };
    let calls = vec![
        call(
            Peer::A,
            CallKind::Recv,
            "recv(64)",
            (35_000, 70_000),
            Outcome::Err {
                errno: libc::ECONNRESET,
            },
        ),
        call(
            Peer::B,
            CallKind::Close,
            "close()",
            (60_000, 62_000),
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
        ),
    ];
    build(sides(), &calls, &segments, States::Recorded)
}

#[test]
fn svg_is_well_formed_with_one_arrow_per_segment() {
    let t = abrupt();
    let text = svg::svg(&t, "mode test <title>");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let arrows: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("line")
                && n.attribute("class")
                    .is_some_and(|c| c.starts_with("segment"))
        })
        .collect();
    assert_eq!(arrows.len(), t.segments().count());
    let class_of = |i: usize| arrows[i].attribute("class").unwrap();
    assert_eq!(class_of(4), "segment fin");
    assert_eq!(class_of(5), "segment rst");
    assert_ne!(
        arrows[5].attribute("stroke"),
        arrows[4].attribute("stroke"),
        "RST and FIN in distinct colours"
    );
    // B→A arrows run right to left and slope down
    let x = |i: usize, a: &str| arrows[i].attribute(a).unwrap().parse::<i32>().unwrap();
    assert!(x(5, "x1") > x(5, "x2") && x(5, "y2") > x(5, "y1"));
    assert!(
        text.contains("B (server &lt;&amp;&gt;)"),
        "labels are escaped"
    );
    assert!(
        text.contains("mode test &lt;title&gt;"),
        "the title is on the picture"
    );
}

/// A connection's title (a file path, both addresses, how it ended) is longer than the picture is wide: it goes on
/// two lines, and a line still too long is set smaller to fit the picture's width instead of running off its edge.
#[test]
fn svg_long_title_stays_inside_the_picture() {
    let t = abrupt();
    let title = format!(
        "{}/trace.pcap connection 0: client [2a00:6020:ad0b:8381:fd70:e2f9:f031:9dc4]:49980 → server \
         [2a00:6020:ad0b:8380::10]:389, reset by the server after the client's FIN, conn_state RSTR history SFhr",
        "/a/long/path".repeat(4)
    );
    let text = svg::svg(&t, &title);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let width: i32 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    let lines: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("text") && n.attribute("y").is_some_and(|y| y == "18" || y == "35")
        })
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].text().unwrap().ends_with("connection 0"));
    assert!(lines[1].text().unwrap().starts_with("client ["));
    // DejaVu Sans: about 0.55 of the font size a character
    let size: f32 = lines[1].attribute("font-size").unwrap().parse().unwrap();
    let x: f32 = lines[1].attribute("x").unwrap().parse().unwrap();
    let chars = lines[1].text().unwrap().chars().count() as f32;
    assert!(x + chars * 0.55 * size <= width as f32, "{size}");
}

#[test]
fn ladder_draws_each_segment_and_marks_the_reset() {
    let t = abrupt();
    let text = ladder::ladder(&t, None);
    for flags in [
        "[S] seq 0",
        "[S.] seq 0 ack 1",
        "[P.] seq 1 ack 1 len 15",
        "[F.] seq 1 ack 16 FIN",
    ] {
        assert_eq!(text.matches(flags).count(), 1, "{flags} once in\n{text}");
    }
    let rst_line = text.lines().find(|l| l.contains("[R.]")).unwrap();
    assert!(
        rst_line.contains("RST") && rst_line.contains("=="),
        "{rst_line}"
    );
    // the blocked recv() is drawn when made and when it returned
    assert!(text.contains("recv(64) ..."));
    assert!(text.contains("-> recv = -1 ECONNRESET"));
    assert!(
        text.is_ascii() || text.chars().all(|c| c.is_ascii() || "µ".contains(c)),
        "plain text"
    );
}

#[test]
fn mermaid_has_a_message_per_segment_and_escapes() {
    let t = abrupt();
    let text = mermaid::mermaid(&t, "a title; with # marks");
    assert!(text.starts_with("sequenceDiagram\n"));
    let messages = text
        .lines()
        .filter(|l| l.contains("->>") || l.contains("-x"))
        .count();
    assert_eq!(messages, t.segments().count());
    assert!(text.contains("B-xA: [R.] seq 2 ack 16 RST"));
    assert!(
        text.contains("participant B as B (server #lt;&#gt;)"),
        "markup characters are escaped:\n{text}"
    );
}

/// Several Mermaid diagrams in one output are each fenced under a heading (concatenated bare diagrams do not
/// parse: `mmdc` stopped at the second `sequenceDiagram`); each has a title; a failed call sits in a red box.
#[test]
fn several_mermaid_diagrams_are_fenced_and_titled() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args([
            "analyze",
            &format!("{dir}/captures/abrupt.pcapng"),
            &format!("{dir}/captures/drain.pcapng"),
        ])
        .args(["--conn", "0", "-f", "mermaid"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let blocks: Vec<&str> = text.split("```mermaid\n").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{text}");
    for b in &blocks {
        let body = b.split("```\n").next().unwrap();
        assert!(
            body.starts_with("sequenceDiagram\n    title connection 0: "),
            "{body}"
        );
        assert_eq!(body.matches("sequenceDiagram").count(), 1);
        assert_eq!(
            body.matches("rect ").count(),
            body.matches("    end\n").count(),
            "{body}"
        );
    }
    assert_eq!(text.lines().filter(|l| l.starts_with("## ")).count(), 2);
    // abrupt: A's recv failed with ECONNRESET, drawn as an error
    assert!(
        blocks[0].contains("rect rgb(255, 215, 215)\n    Note left of A: ↳ recv = -1 ECONNRESET"),
        "{}",
        blocks[0]
    );
    let one = std::process::Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args([
            "analyze",
            &format!("{dir}/captures/abrupt.pcapng"),
            "--conn",
            "0",
            "-f",
            "mermaid",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(one.stdout)
            .unwrap()
            .starts_with("sequenceDiagram\n"),
        "one diagram stays bare"
    );
}
