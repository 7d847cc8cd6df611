//! BPF filters (tcpdump syntax) compiled by libpcap without opening a device, matched against frames.

use std::collections::HashMap;

/// A BPF program per link type, compiled when a frame of that link type first shows up.
pub struct Bpf {
    expr: String,
    programs: HashMap<u32, Option<pcap::BpfProgram>>,
}

impl Bpf {
    /// Compile once for Ethernet to reject a bad expression before reading anything.
    pub fn new(expr: &str) -> Result<Bpf, String> {
        let dead = pcap::Capture::dead(pcap::Linktype(1)).map_err(|e| e.to_string())?;
        let prog = dead.compile(expr, true).map_err(|e| e.to_string())?;
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
