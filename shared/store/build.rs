// `sqlx::migrate!` embeds the migrations at compile time but does not tell cargo about new
// files: without this, a migration added to the folder is missing from the build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
