//! The ways shardkeeper is installed agree with each other: the Debian package's config
//! (the documented one, with the package's data directory), its systemd unit, its
//! maintainer scripts, the Dockerfile and the compose example name the same paths, port
//! and user. (`deploy/debian/check-install.sh` installs the package itself, in `.ci/run`.)

mod common;

use common::Daemon;

const DOCUMENTED: &str = include_str!("../deploy/shardkeeper.toml");
const PACKAGED: &str = include_str!("../deploy/debian/shardkeeper.toml");
const UNIT: &str = include_str!("../deploy/shardkeeper.service");
const CARGO: &str = include_str!("../Cargo.toml");
const PREINST: &str = include_str!("../deploy/debian/preinst");
const POSTINST: &str = include_str!("../deploy/debian/postinst");
const POSTRM: &str = include_str!("../deploy/debian/postrm");
const DOCKERFILE: &str = include_str!("../Dockerfile");
const COMPOSE: &str = include_str!("../docker-compose.yml");
const README: &str = include_str!("../README.md");

const DATA_DIR: &str = "/var/lib/shardkeeper";
const CONFIG: &str = "/etc/shardkeeper/shardkeeper.toml";
const USER: &str = "shardkeeper";

fn key<'a>(toml: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name} = ");
    toml.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in the config"))
        .trim_matches('"')
}

#[test]
fn the_packaged_config_is_the_documented_one_with_the_packages_data_directory() {
    assert_eq!(key(PACKAGED, "data_dir"), DATA_DIR);
    let documented_dir = format!("data_dir = \"{}\"", key(DOCUMENTED, "data_dir"));
    assert_eq!(
        PACKAGED,
        DOCUMENTED.replace(&documented_dir, &format!("data_dir = \"{DATA_DIR}\"")),
        "deploy/debian/shardkeeper.toml must be deploy/shardkeeper.toml but for data_dir: \
         regenerate it with sed (README: Operations)"
    );
}

#[test]
fn the_packaged_config_starts_a_node() {
    let dir = tempfile::tempdir().unwrap();
    // As packaged, but for the data directory (not this machine's /var/lib) and the port.
    let d = Daemon::start_with_config(dir.path(), PACKAGED);
    assert_eq!(d.request("GET", "/ping", b"").status, 204);
    assert!(d.stop().success());
}

#[test]
fn the_package_unit_and_scripts_agree_on_paths_and_user() {
    assert!(UNIT.contains(&format!(
        "ExecStart=/usr/bin/shardkeeper serve --config {CONFIG}\n"
    )));
    assert!(UNIT.contains(&format!("User={USER}\n")));
    assert!(UNIT.contains(&format!("ReadWritePaths={DATA_DIR}\n")));
    assert!(CARGO.contains(&format!(
        "[\"deploy/debian/shardkeeper.toml\", \"{}\", \"640\"]",
        CONFIG.trim_start_matches('/')
    )));
    assert!(CARGO.contains("[\"target/release/shardkeeper\", \"usr/bin/\", \"755\"]"));
    assert!(CARGO.contains("unit-scripts = \"deploy/\"\nunit-name = \"shardkeeper\""));
    assert!(
        PREINST.contains(&format!("--home {DATA_DIR}"))
            && PREINST.contains(&format!("--gecos \"shardkeeper data node\" {USER}"))
    );
    assert!(POSTINST.contains(&format!("-o {USER} -g {USER} {DATA_DIR}")));
    // Removal keeps the data; only a purge deletes it.
    let purge_only = POSTRM.split("if [ \"$1\" = purge ]; then").nth(1).unwrap();
    assert!(purge_only.contains(&format!("rm -rf {DATA_DIR}")));
    assert_eq!(POSTRM.matches(DATA_DIR).count(), 1, "{POSTRM}");
}

#[test]
fn the_container_files_agree_with_the_package() {
    let port = key(PACKAGED, "bind").rsplit(':').next().unwrap();
    for line in [
        format!("COPY deploy/debian/shardkeeper.toml {CONFIG}"),
        format!("VOLUME [\"{DATA_DIR}\"]"),
        format!("EXPOSE {port}"),
        format!("USER {USER}"),
        format!("ENV SHARDKEEPER_BIND=0.0.0.0:{port}"),
        format!("CMD curl -fsS -o /dev/null http://127.0.0.1:{port}/ping || exit 1"),
        format!("ENTRYPOINT [\"/usr/bin/shardkeeper\", \"serve\", \"--config\", \"{CONFIG}\"]"),
    ] {
        assert!(
            DOCKERFILE.lines().any(|l| l.trim() == line),
            "the Dockerfile lacks {line:?}"
        );
    }
    assert!(DOCKERFILE.contains(&format!("--home-dir {DATA_DIR}")));
    // The image, the package and the README's commands ship the same (dist) binary.
    assert!(DOCKERFILE.contains("cargo build --profile dist"));
    assert!(include_str!("../deploy/debian/check-install.sh").contains("cargo deb --profile dist"));
    assert!(README.contains("cargo build --profile dist\ncargo run --profile dist -- serve"));
    assert!(CARGO.contains("[profile.dist]\ninherits = \"release\"\nlto = \"fat\""));
    assert_eq!(
        COMPOSE.matches(&format!(":{DATA_DIR}\n")).count(),
        3,
        "two nodes and the proxy, a volume each"
    );
    let published = COMPOSE
        .lines()
        .filter(|l| l.trim().starts_with("- \"") && l.ends_with(&format!(":{port}\"")))
        .count();
    assert_eq!(published, 2, "each node's container port published");
    assert_eq!(
        COMPOSE
            .matches(&format!("SHARDKEEPER_BIND: \"0.0.0.0:{port}\""))
            .count(),
        2
    );
    assert!(COMPOSE.contains("\"proxy\", \"--config\", \"/etc/shardkeeper/proxy.json\""));
    assert!(DOCKERFILE.contains("COPY deploy/proxy.json /etc/shardkeeper/proxy.json"));
}

/// The compose example's proxy config: influx-proxy's keys, its data under the image's
/// data directory, a circle for each of the compose's nodes.
#[test]
fn the_compose_proxy_config_reads_and_names_the_compose_nodes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/proxy.json");
    let config = shardkeeper::proxy::config::ProxyConfig::load(&path).unwrap();
    assert!(config.data_dir.starts_with(DATA_DIR));
    let urls: Vec<&str> = config
        .circles
        .iter()
        .flat_map(|c| c.backends.iter().map(|b| b.url.as_str()))
        .collect();
    assert_eq!(urls, ["http://node-a:8086", "http://node-b:8086"]);
    for node in ["node-a:", "node-b:"] {
        assert!(COMPOSE.contains(&format!("\n  {node}\n")), "{node}");
    }
    assert!(COMPOSE.contains("\"7076:7076\""));
}
