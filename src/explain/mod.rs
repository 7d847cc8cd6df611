//! What the segments and calls mean: one timeline, the states inferred from it, and the story in words.
//!
//! The explain stage: it reads values the stages below made (calls, segments, recorded states) and computes what
//! the renderers show, without I/O and without knowing how anything is drawn. It may use model, wire, capfile, os,
//! scenario and track; never render or pipeline.
//!
//! - [`timeline`]: the one builder, [`timeline::build`], for a live run, a saved run and `analyze --conn`.
//! - [`infer`]: the TCP states the wire implies and the ⚠ notes; only `timeline::build` calls it.
//! - [`account`]: the account of one captured connection (`analyze --conn`): what happened, the likely cause with
//!   its evidence, what else fits, what to check.
//! - [`outside`]: why a reset came that no call caused (a keepalive timer, a destroy from outside).
//! - [`calls_only`]: what the socket calls alone prove about a reset, for a run with no capture.
//! - [`story`]: the verdict, the account in words ("what happened") and the `--mode all` comparison row.

pub mod account;
pub mod calls_only;
pub mod infer;
pub mod outside;
pub mod rows;
pub mod story;
pub mod timeline;
