pub mod bind;
pub mod slack;
pub mod slapd;
pub mod vcsim;
