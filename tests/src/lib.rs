pub mod bind;
pub mod invocation;
pub mod postgres;
pub mod slack;
pub mod slapd;
pub mod socket_mode;
pub mod vcsim;
