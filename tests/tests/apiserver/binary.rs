//! The kubeconfig written by the double works with kube's own kubeconfig loader, and the stand-alone
//! `fake-apiserver` binary serves its seeded GPU cluster and stops on SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use mlsched_tests::ApiServer;

async fn client_from_kubeconfig(path: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(path).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn generated_kubeconfig_is_usable() {
    let server = ApiServer::start().await.unwrap();
    let client = client_from_kubeconfig(server.kubeconfig_path()).await;
    assert_eq!(client.default_namespace(), "default");
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert_eq!(ns.list(&ListParams::default()).await.unwrap().items.len(), 2);
    let path = server.kubeconfig_path().to_path_buf();
    drop(server);
    assert!(!path.exists(), "temporary kubeconfig removed with the server");
}

#[tokio::test]
async fn stand_alone_binary_serves_a_gpu_cluster() {
    let dir = std::env::temp_dir().join(format!("mlsched-fake-bin-test-{}", std::process::id()));
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--spines", "1", "--racks-per-spine", "2", "--nodes-per-rack", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fake-apiserver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("utf8");
    assert!(first.starts_with("fake-apiserver listening on http://127.0.0.1:"), "{first}");
    let client = client_from_kubeconfig(&kubeconfig).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 4);
    let gpus = &list.items[0].status.as_ref().unwrap().allocatable.as_ref().unwrap()["nvidia.com/gpu"];
    assert_eq!(gpus.0, "8");
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pending = pods.list(&ListParams::default().fields("spec.schedulerName=mlsched,spec.nodeName=")).await.unwrap();
    assert_eq!(pending.items.len(), 8);

    // Ctrl-C (SIGINT) stops it cleanly.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut waited = Duration::ZERO;
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if waited > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("fake-apiserver did not stop on SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    };
    assert!(exit.success());
    let _ = std::fs::remove_dir_all(&dir);
}
