//! Which node of a multi-process run this process is: `--nodes N --node-rank R --coordinator
//! HOST:PORT`, else Slurm's variables (`srun dropnas ...`), else torchrun's
//! (`WORLD_SIZE`/`RANK`/`MASTER_ADDR`/`MASTER_PORT`).
//!
//! Node 0 listens on the coordinator's `PORT` for the all-reduce between nodes
//! ([`super::nodes`]) and on `PORT + 1` for the nodes' lifelines ([`super::liveness`]).

use std::net::{SocketAddr, ToSocketAddrs};

/// The port when Slurm gives none (`DROPNAS_PORT` or `MASTER_PORT` set one): torchrun's default.
pub const DEFAULT_PORT: u16 = 29500;

/// Where this process stands among the nodes of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub nodes: usize,
    pub rank: usize,
    /// Node 0's host and port (`None` with one node).
    pub coordinator: Option<(String, u16)>,
    /// Where the values came from, in words (for the log).
    pub source: &'static str,
}

impl Topology {
    pub fn single() -> Self {
        Self { nodes: 1, rank: 0, coordinator: None, source: "one node" }
    }

    /// From the flags, else the environment (`env` reads a variable).
    pub fn resolve(
        nodes: Option<usize>,
        rank: Option<usize>,
        coordinator: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        if nodes.is_some() || rank.is_some() || coordinator.is_some() {
            let nodes = nodes.unwrap_or(1);
            let rank = rank.unwrap_or(0);
            if nodes == 1 && coordinator.is_none() {
                return Ok(Self::single());
            }
            let coordinator =
                coordinator.ok_or("--nodes and --node-rank need --coordinator HOST:PORT (node 0's address)")?;
            return Self::checked(
                nodes,
                rank,
                Some(parse_host_port(coordinator)?),
                "--nodes/--node-rank/--coordinator",
            );
        }
        let num = |name: &str| -> Result<Option<usize>, String> {
            env(name).map(|v| v.trim().parse::<usize>().map_err(|_| format!("{name}={v} is not a number"))).transpose()
        };
        let port = |fallback: Option<String>| -> Result<u16, String> {
            match env("DROPNAS_PORT").or(fallback) {
                Some(p) => p
                    .trim()
                    .parse()
                    .map_err(|_| format!("port `{p}` (DROPNAS_PORT or MASTER_PORT) is not a port number")),
                None => Ok(DEFAULT_PORT),
            }
        };
        let slurm_tasks = num("SLURM_STEP_NUM_TASKS")?.or(num("SLURM_NTASKS")?);
        if let (Some(n), Some(r)) = (slurm_tasks, num("SLURM_PROCID")?)
            && n > 1
        {
            // every task on one machine: keep to loopback
            let one_node = num("SLURM_STEP_NUM_NODES")?.or(num("SLURM_NNODES")?).unwrap_or(1) == 1;
            let host = match env("SLURM_STEP_NODELIST").or(env("SLURM_NODELIST")) {
                Some(list) if !one_node => first_host(&list),
                _ => "127.0.0.1".to_string(),
            };
            return Self::checked(n, r, Some((host, port(env("MASTER_PORT"))?)), "Slurm (SLURM_NTASKS, SLURM_PROCID)");
        }
        if let (Some(n), Some(r)) = (num("WORLD_SIZE")?, num("RANK")?)
            && n > 1
        {
            let host = env("MASTER_ADDR").ok_or("WORLD_SIZE and RANK are set but MASTER_ADDR is not")?;
            return Self::checked(n, r, Some((host, port(env("MASTER_PORT"))?)), "WORLD_SIZE/RANK/MASTER_ADDR");
        }
        Ok(Self::single())
    }

    fn checked(
        nodes: usize,
        rank: usize,
        coordinator: Option<(String, u16)>,
        source: &'static str,
    ) -> Result<Self, String> {
        if nodes == 0 || rank >= nodes {
            return Err(format!("node rank {rank} is not below the number of nodes {nodes} (from {source})"));
        }
        if let Some((_, p)) = &coordinator
            && *p == u16::MAX
        {
            return Err(format!("coordinator port {p}: node 0 also needs the port above it"));
        }
        Ok(Self { nodes, rank, coordinator, source })
    }

    /// The socket address of node 0 at `port + offset`.
    pub fn coordinator_addr(&self, offset: u16) -> Result<SocketAddr, String> {
        let (host, port) = self.coordinator.as_ref().ok_or("one node has no coordinator")?;
        (host.as_str(), port + offset)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve the coordinator {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("the coordinator {host} has no address"))
    }
}

/// `HOST:PORT`.
fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| format!("--coordinator `{s}`: expected HOST:PORT, e.g. 127.0.0.1:29500"))?;
    let port = port.parse().map_err(|_| format!("--coordinator `{s}`: `{port}` is not a port number"))?;
    if host.is_empty() {
        return Err(format!("--coordinator `{s}`: the host is missing"));
    }
    Ok((host.to_string(), port))
}

/// The first host of a Slurm node list (`node[01-04,07],gpu2` gives `node01`).
fn first_host(list: &str) -> String {
    let first = list.split(',').next().unwrap_or(list).trim();
    match first.split_once('[') {
        Some((prefix, range)) => {
            let start = range.split(['-', ',', ']']).next().unwrap_or_default();
            format!("{prefix}{start}")
        }
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn flags_then_slurm_then_torchrun() {
        let none = env_of(&[]);
        assert_eq!(Topology::resolve(None, None, None, &none).unwrap(), Topology::single());
        let t = Topology::resolve(Some(2), Some(1), Some("127.0.0.1:4000"), &none).unwrap();
        assert_eq!((t.nodes, t.rank, t.coordinator.clone()), (2, 1, Some(("127.0.0.1".into(), 4000))));
        assert!(Topology::resolve(Some(2), Some(2), Some("127.0.0.1:4000"), &none).unwrap_err().contains("rank 2"));
        assert!(Topology::resolve(Some(2), Some(0), None, &none).unwrap_err().contains("--coordinator"));
        assert!(Topology::resolve(Some(2), Some(0), Some("nohost"), &none).unwrap_err().contains("HOST:PORT"));

        let slurm = env_of(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "1"),
            ("SLURM_NODELIST", "n[3-4]"),
            ("SLURM_NNODES", "2"),
        ]);
        let t = Topology::resolve(None, None, None, &slurm).unwrap();
        assert_eq!((t.nodes, t.rank, t.coordinator), (2, 1, Some(("n3".into(), DEFAULT_PORT))));
        let one = env_of(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NODELIST", "box"),
            ("DROPNAS_PORT", "4100"),
        ]);
        assert_eq!(Topology::resolve(None, None, None, &one).unwrap().coordinator, Some(("127.0.0.1".into(), 4100)));
        let single = env_of(&[("SLURM_NTASKS", "1"), ("SLURM_PROCID", "0")]);
        assert_eq!(Topology::resolve(None, None, None, &single).unwrap(), Topology::single());

        let torch =
            env_of(&[("WORLD_SIZE", "3"), ("RANK", "2"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "5000")]);
        let t = Topology::resolve(None, None, None, &torch).unwrap();
        assert_eq!((t.nodes, t.rank, t.coordinator), (3, 2, Some(("127.0.0.1".into(), 5000))));
        let bad = env_of(&[("WORLD_SIZE", "x"), ("RANK", "0")]);
        assert!(Topology::resolve(None, None, None, &bad).unwrap_err().contains("WORLD_SIZE=x"));
        assert_eq!(first_host("node[01-04,07],gpu2"), "node01");
    }
}
