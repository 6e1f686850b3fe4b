pub mod bind;
pub mod slapd;
pub mod vcsim;
