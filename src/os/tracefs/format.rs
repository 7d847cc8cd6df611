//! An event's `format` file: which fields this kernel's tracepoint has, and the names it prints for enum values
//! (`__print_symbolic`). Layouts and enum numbers change between kernels, so every choice about an event — its
//! in-kernel filter, whether it carries a reset reason — is read from here at run time.

/// One `field:` line: `field:int oldstate; offset:16; size:4; signed:1;` (tab-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The C declaration without the name (`int`, `enum sk_rst_reason`, `__u8`).
    pub ty: String,
    pub name: String,
    pub size: usize,
}

/// The parts of a `format` file we use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFormat {
    pub fields: Vec<Field>,
    pub print_fmt: String,
}

impl EventFormat {
    pub fn parse(text: &str) -> EventFormat {
        let mut out = EventFormat::default();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("field:") {
                if let Some(f) = parse_field(rest) {
                    out.fields.push(f);
                }
            } else if let Some(rest) = line.strip_prefix("print fmt:") {
                out.print_fmt = rest.trim().to_string();
            }
        }
        out
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The `(value, name)` pairs the kernel prints for `REC-><field>`, in the kernel's order; empty when the
    /// field is printed as a number.
    pub fn symbols(&self, field: &str) -> Vec<(String, String)> {
        let key = format!("__print_symbolic(REC->{field},");
        let Some(start) = self.print_fmt.find(&key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut rest = &self.print_fmt[start + key.len()..];
        // Pairs `{ 11, "TCP_ABORT_ON_CLOSE" }` until the call's closing parenthesis.
        while let Some(open) = rest.find('{') {
            if rest[..open].contains(')') {
                break;
            }
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let pair = &rest[open + 1..open + close];
            if let Some((v, n)) = pair.split_once(',') {
                out.push((v.trim().to_string(), n.trim().trim_matches('"').to_string()));
            }
            rest = &rest[open + close + 1..];
        }
        out
    }

    /// The in-kernel filter that keeps only TCP events touching one of `ports`, or `None` when this layout has no
    /// port fields to filter on (then the reader filters on the printed addresses instead).
    pub fn port_filter(&self, ports: &[u16]) -> Option<String> {
        if self.field("sport").is_none() || self.field("dport").is_none() || ports.is_empty() {
            return None;
        }
        let any_port = ports
            .iter()
            .map(|p| format!("sport == {p} || dport == {p}"))
            .collect::<Vec<_>>()
            .join(" || ");
        Some(match self.field("protocol") {
            Some(_) => format!("protocol == {} && ({any_port})", libc::IPPROTO_TCP),
            None => any_port,
        })
    }
}

fn parse_field(rest: &str) -> Option<Field> {
    let mut parts = rest.split(';').map(str::trim);
    let decl = parts.next()?;
    let size = parts
        .find_map(|p| p.strip_prefix("size:"))
        .and_then(|s| s.parse().ok())?;
    // `__u8 saddr[28]` → type `__u8`, name `saddr`.
    let (ty, name) = decl.rsplit_once(' ')?;
    let name = name.split('[').next().unwrap_or(name);
    Some(Field {
        ty: ty.trim().to_string(),
        name: name.to_string(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcp:tcp_send_reset` on Linux 6.18, shortened: no port fields, a reason enum.
    const SEND_RESET_618: &str = "name: tcp_send_reset\nID: 2280\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n\
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;\n\n\
print fmt: \"src=%pISpc state=%s reason=%s\", REC->saddr, REC->state ? __print_symbolic(REC->state, \
{ TCP_ESTABLISHED, \"TCP_ESTABLISHED\" }, { TCP_CLOSE, \"TCP_CLOSE\" }) : \"UNKNOWN\", \
__print_symbolic(REC->reason, { 0, \"NOT_SPECIFIED\" }, { 1, \"NO_SOCKET\" }, { 11, \"TCP_ABORT_ON_CLOSE\" })\n";

    /// `sock:inet_sock_set_state`, shortened.
    const SET_STATE: &str = "format:\n\
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;\n\
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;\n\
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;\n\
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;\n";

    #[test]
    fn parse_fields_and_symbols() {
        let f = EventFormat::parse(SEND_RESET_618);
        assert_eq!(f.field("reason").unwrap().ty, "enum sk_rst_reason");
        assert_eq!(f.field("saddr").unwrap().size, 28);
        assert!(f.field("sport").is_none());
        let reasons = f.symbols("reason");
        assert_eq!(reasons.len(), 3);
        assert_eq!(reasons[2], ("11".into(), "TCP_ABORT_ON_CLOSE".into()));
        assert_eq!(f.symbols("state")[1].1, "TCP_CLOSE");
        assert!(f.symbols("nothing").is_empty());
    }

    #[test]
    fn filter_on_ports_where_the_layout_has_them() {
        let f = EventFormat::parse(SET_STATE);
        assert_eq!(
            f.port_filter(&[8080]).unwrap(),
            "protocol == 6 && (sport == 8080 || dport == 8080)"
        );
        assert_eq!(
            f.port_filter(&[1, 2]).unwrap(),
            "protocol == 6 && (sport == 1 || dport == 1 || sport == 2 || dport == 2)"
        );
        assert_eq!(f.port_filter(&[]), None);
        assert_eq!(
            EventFormat::parse(SEND_RESET_618).port_filter(&[8080]),
            None
        );
    }
}
