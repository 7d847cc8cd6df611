//! BPF filters (tcpdump syntax) compiled by libpcap without opening a device, matched against frames.
//!
//! Contract: [`Bpf::new`] checks the expression once (for Ethernet) and refuses a bad one with libpcap's own
//! message; after that nothing fails: a link type the expression cannot be compiled for matches no frame.

use std::collections::HashMap;
use std::fmt;

/// A BPF program per link type, compiled when a frame of that link type first shows up.
pub struct Bpf {
    expr: String,
    programs: HashMap<u32, Option<pcap::BpfProgram>>,
}

/// Why an expression was refused: libpcap's message, as it says it.
#[derive(Debug)]
pub struct BpfError(pcap::Error);

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BpfError {}

impl Bpf {
    /// Compile once for Ethernet to reject a bad expression before reading anything.
    pub fn new(expr: &str) -> Result<Bpf, BpfError> {
        let dead = pcap::Capture::dead(pcap::Linktype(1)).map_err(BpfError)?;
        let prog = dead.compile(expr, true).map_err(BpfError)?;
        let mut programs = HashMap::new();
        programs.insert(1, Some(prog));
        Ok(Bpf {
            expr: expr.to_string(),
            programs,
        })
    }

    pub fn matches(&mut self, link: u32, frame: &[u8]) -> bool {
        let expr = &self.expr;
        let prog = self.programs.entry(link).or_insert_with(|| {
            let dead = pcap::Capture::dead(pcap::Linktype(link as i32)).ok()?;
            dead.compile(expr, true).ok()
        });
        prog.as_ref().is_some_and(|p| p.filter(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_expression_is_refused_with_libpcaps_message() {
        let e = Bpf::new("tcp port banana").err().unwrap();
        assert!(!e.to_string().is_empty());
        assert_eq!(e.to_string(), e.0.to_string());
        assert!(Bpf::new("tcp port 80").is_ok());
    }
}
