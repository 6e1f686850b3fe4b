//! Benchmarks for the iaas gateway, run by hand (`target/release/iaas-bench`, see README.md),
//! never by `cargo test`.
//!
//! - [`proc`]: children (gateway, bare ceiling, dispatch sink, `iaas serve`) and what
//!   `/proc/<pid>` says about their memory and CPU time.
//! - [`slack`]: slash-command bodies signed the way Slack signs them, generated ahead of the
//!   timed loops so the client's HMAC is not measured.
//! - [`load`]: the closed-loop HTTP/1.1 load client (one keep-alive connection per worker).
//! - [`vcenter`]: vCenter SOAP calls per command, counted by vcsim.

pub mod load;
pub mod proc;
pub mod slack;
pub mod vcenter;
