//! OpenLDAP slapd harness (being written).
