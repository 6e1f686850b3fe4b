//! The README's command table is generated from the declarations; this keeps it so.
//! `UPDATE_README=1 cargo test -p iaas-invocation --test readme` rewrites it after a change.

const BEGIN: &str = "<!-- commands: generated from shared/invocation/src/commands.rs -->\n";
const END: &str = "<!-- /commands -->";

#[test]
fn the_readme_lists_every_command_as_declared() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("the README marks its command table") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("the table's end marker");
    let table = iaas_invocation::commands::markdown_table();
    if readme[start..end] != table && std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(readme[start..end], table, "README.md's command table is stale: run with UPDATE_README=1");
}
