//! Compiles `proto/` with protox (pure Rust), so building needs no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(
        [
            "proto/shardkeeper/v1/event.proto",
            "proto/shardkeeper/v1/proxy.proto",
        ],
        ["proto"],
    )?;
    prost_build::Config::new()
        .bytes(["."])
        // `ctl log dump` prints events as JSON.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        // A remote's token is a secret: never in a dump.
        .field_attribute(
            "shardkeeper.v1.Remote.remote_api_token",
            "#[serde(skip_serializing)]",
        )
        .compile_fds(files)?;
    Ok(())
}
