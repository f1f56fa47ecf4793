//! Readers of the Alibaba `openb` GPU-sharing trace (cluster-trace-gpu-v2023): node list and pod list.
//!
//! A malformed row is an error naming the file, the line and the column, never a panic: traces come from
//! outside and a typo in one row must not cost an hour of replay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlsched::core::{GpuRequest, MIB, Node, Pod, Resources};
use serde::Deserialize;

pub use crate::trace_error::TraceError;
use crate::trace_error::{invalid, row_error};

/// Pod slots per node. The trace has no pod limit; Kubernetes' default kubelet limit is 110 and no node of
/// the openb trace comes close to it, so it never decides a placement.
pub const PODS_PER_NODE: i64 = 110;

#[derive(Debug, Deserialize)]
struct NodeRow {
    sn: String,
    cpu_milli: i64,
    memory_mib: i64,
    gpu: u32,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PodRow {
    name: String,
    cpu_milli: i64,
    memory_mib: i64,
    num_gpu: u32,
    gpu_milli: i64,
    #[serde(default)]
    gpu_spec: Option<String>,
}

/// One pod of the trace with the GPU amount the replay accounts it for.
#[derive(Debug, Clone)]
pub struct TracePod {
    pub pod: Pod,
    /// `num_gpu × gpu_milli`: what the pod adds to the "arrived" workload.
    pub gpu_milli_total: i64,
}

/// Where rows come from: a file, or a trace compiled into the binary (named for error messages).
pub enum Source<'a> {
    File(&'a Path),
    Bundled { name: &'a str, bytes: &'a [u8] },
}

impl Source<'_> {
    fn name(&self) -> PathBuf {
        match self {
            Source::File(p) => p.to_path_buf(),
            Source::Bundled { name, .. } => PathBuf::from(format!("(bundled) {name}")),
        }
    }
}

/// The node list the FGD paper replays (1213 GPU nodes), compiled in so a fresh checkout needs nothing else.
pub const BUNDLED_NODES: Source<'static> = Source::Bundled {
    name: "openb_node_list_gpu_node.csv",
    bytes: include_bytes!("../traces/openb_node_list_gpu_node.csv"),
};

/// The paper's default pod list (8152 pods).
pub const BUNDLED_PODS: Source<'static> = Source::Bundled {
    name: "openb_pod_list_default.csv",
    bytes: include_bytes!("../traces/openb_pod_list_default.csv"),
};

fn read_rows<T: for<'de> Deserialize<'de>>(source: &Source<'_>) -> Result<Vec<(u64, T)>, TraceError> {
    let file = &source.name();
    let builder = {
        let mut b = csv::ReaderBuilder::new();
        b.trim(csv::Trim::All);
        b
    };
    let input: Box<dyn std::io::Read + '_> = match source {
        Source::File(path) => {
            Box::new(std::fs::File::open(path).map_err(|source| TraceError::Open { file: file.to_path_buf(), source })?)
        }
        Source::Bundled { bytes, .. } => Box::new(*bytes),
    };
    let mut reader = builder.from_reader(input);
    let headers =
        reader.headers().map_err(|e| TraceError::File { file: file.to_path_buf(), message: e.to_string() })?.clone();
    let mut rows = Vec::new();
    for record in reader.deserialize::<T>() {
        match record {
            Ok(row) => rows.push(row),
            Err(err) => return Err(row_error(file, &headers, &err)),
        }
    }
    // csv counts lines from 1 with the header on line 1; rows start on line 2.
    Ok(rows.into_iter().enumerate().map(|(i, r)| (i as u64 + 2, r)).collect())
}

/// Reads a node list (`sn,cpu_milli,memory_mib,gpu,model`).
pub fn read_nodes(source: &Source<'_>) -> Result<Vec<Node>, TraceError> {
    let file = &source.name();
    let mut models: Vec<Arc<str>> = Vec::new();
    let mut nodes = Vec::new();
    for (line, row) in read_rows::<NodeRow>(source)? {
        if row.cpu_milli < 0 {
            return Err(invalid(file, line, "cpu_milli", format!("negative CPU {}", row.cpu_milli)));
        }
        if row.memory_mib < 0 {
            return Err(invalid(file, line, "memory_mib", format!("negative memory {}", row.memory_mib)));
        }
        let memory =
            row.memory_mib.checked_mul(MIB).ok_or_else(|| invalid(file, line, "memory_mib", "memory too large"))?;
        let model = row.model.filter(|m| !m.is_empty() && m != "nan");
        if row.gpu > 0 && model.is_none() {
            return Err(invalid(file, line, "model", format!("node {} has {} GPUs but no model", row.sn, row.gpu)));
        }
        let mut node = Node::new(row.sn, Resources::new(row.cpu_milli, memory, PODS_PER_NODE));
        if let Some(model) = model {
            // One shared string per model keeps 6000 devices cheap to clone and compare.
            let shared = match models.iter().find(|m| ***m == *model) {
                Some(m) => m.clone(),
                None => {
                    models.push(model.as_str().into());
                    models.last().expect("just pushed").clone()
                }
            };
            node = node.with_gpus(row.gpu as usize, &shared);
            for gpu in &mut node.gpus {
                gpu.model = shared.clone();
            }
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(TraceError::File { file: file.to_path_buf(), message: "no nodes".into() });
    }
    Ok(nodes)
}

/// Reads a pod list (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]`), in file order.
pub fn read_pods(source: &Source<'_>) -> Result<Vec<TracePod>, TraceError> {
    let file = &source.name();
    let mut pods = Vec::new();
    for (line, row) in read_rows::<PodRow>(source)? {
        if row.cpu_milli < 0 {
            return Err(invalid(file, line, "cpu_milli", format!("negative CPU {}", row.cpu_milli)));
        }
        if row.memory_mib < 0 {
            return Err(invalid(file, line, "memory_mib", format!("negative memory {}", row.memory_mib)));
        }
        if !(0..=1000).contains(&row.gpu_milli) {
            return Err(invalid(file, line, "gpu_milli", format!("{} is outside 0..=1000", row.gpu_milli)));
        }
        if row.num_gpu > 64 {
            return Err(invalid(file, line, "num_gpu", format!("{} GPUs in one pod", row.num_gpu)));
        }
        let memory =
            row.memory_mib.checked_mul(MIB).ok_or_else(|| invalid(file, line, "memory_mib", "memory too large"))?;
        let mut gpu = if row.num_gpu == 0 || row.gpu_milli == 0 {
            GpuRequest::none()
        } else {
            GpuRequest { count: row.num_gpu, milli_per_gpu: row.gpu_milli, models: None }
        };
        if let Err(e) = gpu.validate() {
            return Err(invalid(file, line, "gpu_milli", e));
        }
        if let Some(spec) = row.gpu_spec.filter(|s| !s.is_empty() && s != "nan") {
            let models: Vec<Arc<str>> =
                spec.split('|').map(str::trim).filter(|m| !m.is_empty()).map(Into::into).collect();
            if models.is_empty() {
                return Err(invalid(file, line, "gpu_spec", format!("{spec:?} names no GPU model")));
            }
            if !gpu.is_none() {
                gpu = gpu.with_models(models);
            }
        }
        let gpu_milli_total = gpu.total_milli();
        pods.push(TracePod { pod: Pod::new(row.name, Resources::new(row.cpu_milli, memory, 1), gpu), gpu_milli_total });
    }
    if pods.is_empty() {
        return Err(TraceError::File { file: file.to_path_buf(), message: "no pods".into() });
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_good_rows_of_both_formats() {
        let f = write(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos\n\
             p0,12000,16384,1,460,,LS\n\
             p1,4000,1024,0,0,nan,BE\n\
             p2,8000,2048,8,1000,V100M16|V100M32,LS\n",
        );
        let pods = read_pods(&Source::File(f.path())).unwrap();
        assert_eq!(pods.len(), 3);
        assert_eq!(pods[0].pod.gpu, GpuRequest::shared(460));
        assert_eq!(pods[0].pod.requests.memory_bytes, 16384 * MIB);
        assert!(pods[1].pod.gpu.is_none());
        assert_eq!(pods[2].gpu_milli_total, 8000);
        assert!(pods[2].pod.gpu.allows_model("V100M32") && !pods[2].pod.gpu.allows_model("T4"));

        let short = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,2,1000\n");
        assert_eq!(read_pods(&Source::File(short.path())).unwrap()[0].pod.gpu, GpuRequest::whole(2));
    }

    #[test]
    fn bad_pod_rows_name_file_line_and_column() {
        let f = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,1,500\np1,abc,10,1,500\n");
        let err = read_pods(&Source::File(f.path())).unwrap_err().to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(err.contains("line 3") && err.contains("column cpu_milli"), "{err}");

        let f = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,1,1500\n");
        let err = read_pods(&Source::File(f.path())).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("column gpu_milli"), "{err}");

        let f = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,2,500\n");
        assert!(read_pods(&Source::File(f.path())).unwrap_err().to_string().contains("cannot span"));

        let f = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10\n");
        assert!(read_pods(&Source::File(f.path())).unwrap_err().to_string().contains("line 2"));

        let f = write("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n");
        assert!(read_pods(&Source::File(f.path())).unwrap_err().to_string().contains("no pods"));
    }

    #[test]
    fn nodes_parse_and_bad_nodes_are_reported() {
        let f = write("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,1024,0,\n");
        let nodes = read_nodes(&Source::File(f.path())).unwrap();
        assert_eq!(nodes[0].gpus.len(), 2);
        assert_eq!(nodes[0].gpu_model(), Some("P100"));
        assert!(nodes[1].gpus.is_empty());

        let f = write("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,\n");
        let err = read_nodes(&Source::File(f.path())).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("column model"), "{err}");

        let f = write("sn,cpu_milli,memory_mib,gpu,model\nn0,-1,262144,2,P100\n");
        assert!(read_nodes(&Source::File(f.path())).unwrap_err().to_string().contains("column cpu_milli"));

        let missing = read_nodes(&Source::File(Path::new("/nonexistent/nodes.csv"))).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/nodes.csv"), "{missing}");
    }

    #[test]
    fn bundled_default_trace_is_the_papers() {
        let nodes = read_nodes(&BUNDLED_NODES).unwrap();
        assert_eq!(nodes.len(), 1213);
        assert_eq!(nodes.iter().map(|n| n.gpus.len()).sum::<usize>(), 6212);
        let pods = read_pods(&BUNDLED_PODS).unwrap();
        assert_eq!(pods.len(), 8152);
        assert_eq!(pods.iter().filter(|p| p.pod.gpu.is_shared()).count(), 3078);
    }
}
