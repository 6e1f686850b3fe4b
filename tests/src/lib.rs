pub mod slapd;
pub mod vcsim;
