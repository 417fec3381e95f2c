//! The example Kubernetes manifests (`deploy/kubernetes/`): the documents
//! they embed are valid for the crate, the flags ConfigMap is never mounted
//! with `subPath`, and the controller runs as a single replica that is
//! recreated, not rolled.

use std::fs;
use std::path::PathBuf;

fn manifest(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "deploy", "kubernetes", name]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The literal block scalar under `key: |`, dedented.
fn block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines.next().unwrap_or_else(|| panic!("no {key}: | block"));
    let indent = header.len() - header.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect();
    let strip = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(strip..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_seed_flags_document_is_the_genesis_set_at_zero() {
    let yaml = manifest("flags-configmap.yaml");
    let flags = block(&yaml, "flags.json");
    let snapshot = genesis_flags::Snapshot::from_json(&flags).unwrap();
    let rollout = snapshot.rollout_status("phase_4_deployment").unwrap();
    assert_eq!(rollout.percentage.ppm(), 0);
    assert_eq!(rollout.flags.len(), 10);
}

#[cfg(feature = "prometheus")]
#[test]
fn the_gate_config_is_valid() {
    let yaml = manifest("controller.yaml");
    let gate = block(&yaml, "gate.json");
    genesis_flags::rollout::prometheus::GateConfig::from_json(&gate).unwrap();
}

#[test]
fn the_flags_configmap_is_mounted_as_a_directory() {
    for name in ["service.yaml", "controller.yaml", "service-http.yaml"] {
        let yaml = manifest(name);
        assert!(
            !yaml.lines().any(|l| l.trim_start().starts_with("subPath")),
            "{name} uses subPath"
        );
    }
    let service = manifest("service.yaml");
    assert!(service.contains("mountPath: /etc/genesis-flags\n"));
    assert!(service.contains("- /etc/genesis-flags/flags.json\n"));
}

#[test]
fn the_controller_is_one_replica_recreated_with_its_state_on_a_volume() {
    let yaml = manifest("controller.yaml");
    assert!(yaml.contains("  replicas: 1\n"));
    assert!(yaml.contains("    type: Recreate\n"));
    assert!(yaml.contains("accessModes: [\"ReadWriteOnce\"]"));
    assert!(yaml.contains("claimName: genesis-flags-controller-state"));
    assert!(yaml.contains("--state /state/rollout-state.json"));
}
