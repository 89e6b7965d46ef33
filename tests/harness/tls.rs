//! A private certificate authority for one test (issue 19's TLS with a
//! private CA): a CA, a server certificate for `localhost` and 127.0.0.1 that
//! it signed, a client certificate it signed (mutual TLS), and a second CA
//! that signed nothing here (to show that trust is not given to any CA). Made
//! with the `openssl` command line (installed by `scripts/test-setup`), in PEM
//! files in the test's directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM files of a test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed neither certificate.
    pub other_ca_cert: PathBuf,
}

impl TestPki {
    /// Makes the CA and certificates under `dir/pki`.
    pub fn new(dir: &Path) -> TestPki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let file = |name: &str| dir.join(name);
        let pki = TestPki {
            ca_cert: file("ca.pem"),
            server_cert: file("server.pem"),
            server_key: file("server.key"),
            client_cert: file("client.pem"),
            client_key: file("client.key"),
            other_ca_cert: file("other-ca.pem"),
        };
        for (cert, name) in [
            (&pki.ca_cert, "verdict test CA"),
            (&pki.other_ca_cert, "someone else's CA"),
        ] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &cert.with_extension("key").to_string_lossy(),
                "-out",
                &cert.to_string_lossy(),
            ]);
        }
        pki.sign(
            &pki.server_cert,
            &pki.server_key,
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.sign(
            &pki.client_cert,
            &pki.client_key,
            "verdict worker",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// A key and a certificate for `cn` with extensions `ext`, signed by the CA.
    fn sign(&self, cert: &Path, key: &Path, cn: &str, ext: &str) {
        let csr = cert.with_extension("csr");
        let ext_file = cert.with_extension("ext");
        std::fs::write(&ext_file, ext).expect("extensions file");
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &csr.to_string_lossy(),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr.to_string_lossy(),
            "-days",
            "2",
            "-CA",
            &self.ca_cert.to_string_lossy(),
            "-CAkey",
            &self.ca_cert.with_extension("key").to_string_lossy(),
            "-CAcreateserial",
            "-extfile",
            &ext_file.to_string_lossy(),
            "-out",
            &cert.to_string_lossy(),
        ]);
    }

    /// The client side's environment: trust the CA, show the client
    /// certificate (what `fleet up` hands its processes).
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "VERDICT_REDIS_CA".into(),
                self.ca_cert.display().to_string(),
            ),
            (
                "VERDICT_REDIS_CERT".into(),
                self.client_cert.display().to_string(),
            ),
            (
                "VERDICT_REDIS_KEY".into(),
                self.client_key.display().to_string(),
            ),
        ]
    }
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (install it: scripts/test-setup)");
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
