// rust-embed's derive reads dist/ when this crate compiles; a directory named here makes cargo
// rebuild the crate when any file below it changes, is added or is removed.
fn main() {
    println!("cargo:rerun-if-changed=dist");
}
