//! `serve` over HTTPS (`https_enabled`) with a certificate made in the test: curl with
//! `--cacert`, both Python libraries, the node's own client (which refuses a certificate
//! it cannot verify unless told the remote is insecure), and a renewal served after SIGHUP.

mod common;

use common::{python_with, run_client_script, tool_available, wait_until, Daemon};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use shardkeeper::client::{ClientOptions, InfluxClient, TlsOptions};
use std::path::Path;
use std::process::Command;

/// A CA of the test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for localhost and 127.0.0.1, written as PEM (chain, key).
    fn issue_to(&self, cert: &Path, key: &Path) {
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let key_pair = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key_pair, &self.issuer).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, key_pair.serialize_pem()).unwrap();
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        format!(
            "https_enabled = true\nhttps_certificate = \"{}\"\nhttps_private_key = \"{}\"\n",
            self.path("server.pem").display(),
            self.path("server.key").display()
        )
    }
}

/// curl's answer status for `url` trusting `ca`, or its exit code when it failed.
fn curl(url: &str, ca: &Path) -> Result<String, i32> {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(out.status.code().unwrap_or(-1)),
    }
}

fn client(url: &str, tls: TlsOptions) -> InfluxClient {
    InfluxClient::new(
        url,
        ClientOptions {
            tls,
            ..ClientOptions::default()
        },
    )
    .expect("client")
}

#[test]
fn https_serves_curl_the_python_libraries_and_the_client_and_reloads_on_sighup() {
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let (first_ca, second_ca) = (TestCa::new("first test CA"), TestCa::new("second test CA"));
    std::fs::write(files.path("first-ca.pem"), first_ca.pem()).unwrap();
    std::fs::write(files.path("second-ca.pem"), second_ca.pem()).unwrap();
    first_ca.issue_to(&files.path("server.pem"), &files.path("server.key"));
    let log = files.path("node.log");
    let d = Daemon::start_logging_to(&files.path("data"), &files.config(), &[], &log);
    let url = format!("https://localhost:{}", d.addr.port());

    if tool_available(Command::new("curl").arg("--version"), "curl") {
        assert_eq!(
            curl(&format!("{url}/ping"), &files.path("first-ca.pem")),
            Ok("204".into())
        );
        // 60: the peer's certificate cannot be verified against the CA given.
        assert_eq!(
            curl(&format!("{url}/ping"), &files.path("second-ca.pem")),
            Err(60)
        );
    }

    if python_with("influxdb, influxdb_client") {
        let port = d.addr.port().to_string();
        let ca = files.path("first-ca.pem");
        let out = run_client_script("tls_clients.py", &[&port, ca.to_str().unwrap()], b"");
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            got["v1_points"],
            serde_json::json!([{"time": "2024-01-01T00:00:00Z", "v": 1}])
        );
        assert_eq!(got["v2_ping"], true, "{got}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let trusting = |pem: &str| TlsOptions {
            ca_certificate_pem: Some(pem.as_bytes().to_vec()),
            insecure: false,
        };
        client(&url, trusting(&first_ca.pem()))
            .ping()
            .await
            .expect("the right CA");
        let e = client(&url, trusting(&second_ca.pem()))
            .ping()
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");
        client(&url, TlsOptions::default())
            .ping()
            .await
            .expect_err("the built-in roots do not know the test's CA");
        let insecure = TlsOptions {
            ca_certificate_pem: None,
            insecure: true,
        };
        client(&url, insecure)
            .ping()
            .await
            .expect("a remote marked insecure");
    });

    // A renewal by another CA: served once the node is told, without a restart.
    second_ca.issue_to(&files.path("server.pem"), &files.path("server.key"));
    assert_eq!(
        curl(&format!("{url}/ping"), &files.path("first-ca.pem")),
        Ok("204".into())
    );
    d.signal(libc::SIGHUP);
    wait_until("the renewed certificate to be served", || {
        curl(&format!("{url}/ping"), &files.path("second-ca.pem")).is_ok()
    });
    assert_eq!(
        curl(&format!("{url}/ping"), &files.path("first-ca.pem")),
        Err(60)
    );

    // A reload that fails (a key that is not the certificate's) keeps the one in use.
    first_ca.issue_to(&files.path("other.pem"), &files.path("server.key"));
    d.signal(libc::SIGHUP);
    wait_until("the failed reload to be logged", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("TLS reload failed"))
    });
    assert_eq!(
        curl(&format!("{url}/ping"), &files.path("second-ca.pem")),
        Ok("204".into())
    );
    assert!(d.stop().success());
}

#[test]
fn a_missing_or_mismatched_certificate_stops_the_start() {
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let missing = Daemon::try_start_with(&files.path("data"), Some(&files.config()))
        .err()
        .expect("started without a certificate");
    assert!(
        missing.contains("https_certificate") && missing.contains("server.pem"),
        "{missing}"
    );

    let ca = TestCa::new("test CA");
    ca.issue_to(&files.path("server.pem"), &files.path("server.key"));
    ca.issue_to(&files.path("server.pem"), &files.path("unused.key"));
    let mismatched = Daemon::try_start_with(&files.path("data"), Some(&files.config()))
        .err()
        .expect("started with a key that is not the certificate's");
    assert!(mismatched.contains("does not match"), "{mismatched}");
}
