//! The data that flows between the stages: segments, socket calls, TCP states, frames, runs, time. Knows no
//! stage.

pub mod calls;
pub mod frame;
pub mod kernel;
pub mod run;
pub mod seen;
pub mod segment;
pub mod tcp_state;
pub mod time;
