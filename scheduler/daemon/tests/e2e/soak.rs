//! A soak on the real control plane, outside CI: two `mlsched` processes with leader election whose leader
//! is killed (kill -9, every third time SIGTERM) every fifteenth of the run and replaced at once, the API
//! server restarted at a third and two thirds, nodes drained and added, and single pods and gangs created
//! and deleted all along at moderate load. It prints a summary and fails on a pod lost, a pod bound twice,
//! a node over-committed or a gang left partly bound.
//!
//! ```sh
//! MLSCHED_SOAK_MINUTES=60 cargo test -p mlsched-scheduler --release --test e2e soak -- --ignored --nocapture
//! ```
//! 60 minutes when unset; any (fractional) number of minutes scales every phase. `MLSCHED_SOAK_SEED` repeats
//! a run's dice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use mlsched_tests::cluster::{LABEL_RACK, LABEL_SPINE, gpu_node, pending_pod, pod_group};
use mlsched_tests::podgroup_api_resource;
use mlsched_tests::real::objects;
use mlsched_tests::testing::typed;
use serde_json::json;

use crate::cluster::{Env, until};
use crate::leader::{HolderLog, Instance, bound_by_two, holder};
use crate::recovery::ApiServerDown;

const NODES: usize = 24;
const GPUS: u32 = 8;
/// The live pods request at most this share of the GPUs: everything fits eventually, the faults are the point.
const LOAD: f64 = 0.5;

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// kill -9 to the leader, and a replacement started.
    KillLeader,
    /// SIGTERM to the leader, and a replacement started.
    TermLeader,
    ApiServer,
    DrainNode,
    AddNode,
}

/// The API server restarted at 1/3 and 2/3; a leader fault every 15th of the run (at least 20 s apart), none
/// within 15 s of a restart; a node drained or added every 30th (at least 15 s apart).
fn plan(total: Duration) -> Vec<(Duration, Fault)> {
    let restarts = [total / 3, total * 2 / 3];
    let mut plan: Vec<(Duration, Fault)> = restarts.iter().map(|t| (*t, Fault::ApiServer)).collect();
    let every = (total / 15).max(Duration::from_secs(20));
    let leader = (0..).map(|k| every / 2 + every * k).take_while(|t| *t < total);
    let clear = leader.filter(|t| restarts.iter().all(|r| r.abs_diff(*t) >= Duration::from_secs(15)));
    plan.extend(clear.enumerate().map(|(k, t)| (t, if k % 3 == 2 { Fault::TermLeader } else { Fault::KillLeader })));
    let every = (total / 30).max(Duration::from_secs(15));
    let churn = (1..).map(|k| every * k).take_while(|t| *t < total);
    plan.extend(churn.enumerate().map(|(k, t)| (t, if k % 2 == 0 { Fault::DrainNode } else { Fault::AddNode })));
    plan.sort_by_key(|(t, _)| *t);
    plan
}

struct PodRec {
    created: Instant,
    gpus: u32,
    gang: Option<String>,
    /// How long it runs once bound.
    lifetime: Duration,
    /// When the test's watch first saw it bound, and where.
    bound: Option<(Instant, String)>,
    deleted: bool,
}

/// What the soak created and deleted, and what its watch saw.
#[derive(Default)]
struct Book {
    pods: BTreeMap<String, PodRec>,
    gangs: BTreeMap<String, Vec<String>>,
    nodes: BTreeSet<String>,
    /// Drained nodes, and when they were cordoned.
    drained: BTreeMap<String, Instant>,
    /// Pods seen bound to one node, then to another.
    moved: Vec<String>,
    /// Pods first seen bound to a node more than 2 s after it was cordoned.
    late: Vec<String>,
    overcommits: Vec<String>,
}

impl Book {
    fn seen(&mut self, pod: &Pod, now: Instant) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else { return };
        let name = pod.name_any();
        let Some(rec) = self.pods.get_mut(&name) else { return };
        match &rec.bound {
            None => {
                if self.drained.get(&node).is_some_and(|t| now > *t + Duration::from_secs(2)) {
                    self.late.push(format!("{name} on {node}"));
                }
                rec.bound = Some((now, node));
            }
            Some((_, first)) if *first != node => self.moved.push(format!("{name}: {first}, then {node}")),
            Some(_) => {}
        }
    }

    /// A node with live pods bound to it (any node if none has).
    fn busy_node(&self, rng: &mut Rng) -> String {
        let busy = |n: &&String| self.pods.values().any(|p| !p.deleted && p.bound.as_ref().is_some_and(|b| b.1 == **n));
        let mut nodes: Vec<&String> = self.nodes.iter().filter(busy).collect();
        if nodes.is_empty() {
            nodes = self.nodes.iter().collect();
        }
        nodes[rng.below(nodes.len() as u32) as usize].clone()
    }

    fn live_gpus(&self) -> u32 {
        self.pods.values().filter(|p| !p.deleted).map(|p| p.gpus).sum()
    }

    /// Pods whose time is up (a gang's once all its members' is), and pods bound to drained nodes.
    fn due(&self, now: Instant) -> Vec<String> {
        let up = |p: &PodRec| !p.deleted && p.bound.as_ref().is_some_and(|(t, _)| now >= *t + p.lifetime);
        let live = self.pods.iter().filter(|(_, p)| !p.deleted);
        let mut due: Vec<String> =
            live.clone().filter(|(_, p)| p.gang.is_none() && up(p)).map(|(n, _)| n.clone()).collect();
        due.extend(self.gangs.values().filter(|m| m.iter().all(|m| up(&self.pods[m]))).map(|m| m[0].clone()));
        let drained = |p: &PodRec| p.bound.as_ref().is_some_and(|(_, n)| self.drained.contains_key(n));
        due.extend(live.filter(|(_, p)| drained(p)).map(|(n, _)| n.clone()));
        due
    }

    /// Marks `pods` deleted, a gang member with its whole gang; returns the pods and PodGroups to delete.
    fn delete(&mut self, pods: Vec<String>) -> (Vec<String>, Vec<String>) {
        let (mut gone, mut groups) = (Vec::new(), Vec::new());
        for p in pods {
            let members = match self.pods.get(&p).and_then(|r| r.gang.clone()) {
                Some(g) if !self.pods[&p].deleted => {
                    groups.push(g.clone());
                    self.gangs[&g].clone()
                }
                _ => vec![p],
            };
            for m in members {
                if let Some(r) = self.pods.get_mut(&m).filter(|r| !r.deleted) {
                    r.deleted = true;
                    gone.push(m);
                }
            }
        }
        (gone, groups)
    }
}

/// xorshift64*: a few dice, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as u32 % n
    }
}

/// Sends `request` until it is answered, or answered `done` (409: an earlier try created it; 404: gone
/// already), for up to 90 s while the API server is away. Returns when the request that went through was sent.
async fn retrying<T>(what: &str, done: u16, mut request: impl AsyncFnMut() -> kube::Result<T>) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut tried = None;
    loop {
        let sent = Instant::now();
        match request().await {
            Ok(_) => return sent,
            Err(kube::Error::Api(s)) if s.code == done => return tried.unwrap_or(sent),
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: {e}");
                tried = Some(sent);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn groups_api(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.admin.clone(), &env.ns, &podgroup_api_resource())
}

/// A single pod (`members` 1) or a PodGroup `name` with pods `name-0..`.
async fn create(env: &Env, book: &Mutex<Book>, name: &str, members: u32, gpus: u32, lifetime: Duration) {
    let gang = (members > 1).then(|| name.to_string());
    let names: Vec<String> = match &gang {
        Some(g) => (0..members).map(|i| format!("{g}-{i}")).collect(),
        None => vec![name.into()],
    };
    {
        let mut b = book.lock().unwrap();
        for n in &names {
            let rec =
                PodRec { created: Instant::now(), gpus, gang: gang.clone(), lifetime, bound: None, deleted: false };
            b.pods.insert(n.clone(), rec);
        }
        if let Some(g) = &gang {
            b.gangs.insert(g.clone(), names.clone());
        }
    }
    let pp = PostParams::default();
    if let Some(g) = &gang {
        let api = groups_api(env);
        let group: DynamicObject = typed(pod_group(&env.ns, g, members, None));
        retrying(&format!("creating PodGroup {g}"), 409, async || api.create(&pp, &group).await).await;
    }
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    for n in &names {
        let pod: Pod = typed(pending_pod(&env.ns, n, gpus, "mlsched", gang.as_deref()));
        let sent = retrying(&format!("creating pod {n}"), 409, async || api.create(&pp, &pod).await).await;
        book.lock().unwrap().pods.get_mut(n).expect("booked").created = sent;
    }
}

async fn remove(env: &Env, (pods, groups): (Vec<String>, Vec<String>)) {
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    for p in &pods {
        retrying(&format!("deleting pod {p}"), 404, async || api.delete(p, &now).await).await;
    }
    let api = groups_api(env);
    for g in &groups {
        retrying(&format!("deleting PodGroup {g}"), 404, async || api.delete(g, &now).await).await;
    }
}

/// Creates a unit (a single pod, or a gang of 2 to 4) every half second while the live pods request less
/// than [`LOAD`] of the GPUs, and deletes pods 20 to 60 s after they were bound (gangs whole) or once
/// their node is drained; until `working` ends.
async fn workload(env: &Env, book: &Mutex<Book>, working: &AtomicBool, mut rng: Rng) {
    let mut next = 0;
    while working.load(Relaxed) {
        let due = {
            let mut b = book.lock().unwrap();
            let due = b.due(Instant::now());
            b.delete(due)
        };
        remove(env, due).await;
        let members = if rng.below(10) < 7 { 1 } else { 2 + rng.below(3) };
        let gpus = [1, 2, 4][rng.below(3) as usize];
        let lifetime = Duration::from_secs(20 + u64::from(rng.below(40)));
        let fits = {
            let b = book.lock().unwrap();
            f64::from(b.live_gpus() + members * gpus) <= LOAD * f64::from(b.nodes.len() as u32 * GPUS)
        };
        if fits {
            let name = format!("{}{next}", if members > 1 { "g" } else { "s" });
            create(env, book, &name, members, gpus, lifetime).await;
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Notes when each pod is first seen bound, until `watching` ends.
async fn watch_binds(env: &Env, book: &Mutex<Book>, watching: &AtomicBool) {
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
    while watching.load(Relaxed) {
        match tokio::time::timeout(Duration::from_millis(500), events.next()).await {
            Ok(Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)))) => {
                book.lock().unwrap().seen(&p, Instant::now());
            }
            // The API server is away: the watcher tries again when polled.
            Ok(Some(Err(_))) => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => {}
        }
    }
}

/// Looks for over-committed nodes every 10 s until `watching` ends; returns how many looks were answered.
async fn check_overcommit(env: &Env, book: &Mutex<Book>, watching: &AtomicBool) -> u32 {
    let mut checks = 0;
    while watching.load(Relaxed) {
        if let Ok(found) = env.overcommitted().await {
            checks += 1;
            book.lock().unwrap().overcommits.extend(found);
        }
        for _ in 0..10 {
            if watching.load(Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    checks
}

async fn add_node(env: &Env, book: &Mutex<Book>, i: usize) {
    let name = format!("soak-n{i}");
    let (rack, spine) = (format!("rack-{}", i / 4), format!("spine-{}", i / 8));
    let node = gpu_node(&name, GPUS, 64, 512, &[(LABEL_RACK, &rack), (LABEL_SPINE, &spine)]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while let Err(e) = objects::add_node(&env.admin, node.clone()).await {
        assert!(Instant::now() < deadline, "adding {name}: {e}");
        // Perhaps half made: start over.
        let _ = Api::<Node>::all(env.admin.clone()).delete(&name, &DeleteParams::default()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    book.lock().unwrap().nodes.insert(name);
}

/// Drains `node` as `kubectl drain` would (cordon, then its pods, a gang member with its whole gang) and
/// removes it. Returns the number of pods deleted.
async fn drain(env: &Env, book: &Mutex<Book>, node: &str) -> usize {
    let nodes: Api<Node> = Api::all(env.admin.clone());
    let cordon = Patch::Merge(json!({"spec": {"unschedulable": true}}));
    let pp = PatchParams::default();
    retrying(&format!("cordoning {node}"), 0, async || nodes.patch(node, &pp, &cordon).await).await;
    let cordoned = Instant::now();
    book.lock().unwrap().nodes.remove(node);
    // Binds sent before the scheduler saw the cordon land meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let doomed = {
        let mut b = book.lock().unwrap();
        let on_node = b.pods.iter().filter(|(_, p)| !p.deleted && p.bound.as_ref().is_some_and(|(_, n)| n == node));
        let names = on_node.map(|(n, _)| n.clone()).collect();
        // From here on the workload deletes what is bound to it.
        b.drained.insert(node.to_string(), cordoned);
        b.delete(names)
    };
    let count = doomed.0.len();
    remove(env, doomed).await;
    retrying(&format!("deleting node {node}"), 404, async || nodes.delete(node, &DeleteParams::default()).await).await;
    count
}

/// The running `mlsched` processes, and the stopped ones whose logs the checks read too.
#[derive(Default)]
struct Schedulers {
    running: Vec<Instance>,
    stopped: Vec<Instance>,
    started: usize,
}

impl Schedulers {
    fn start(&mut self, env: &Env) -> &Instance {
        self.started += 1;
        self.running.push(Instance::start(env, &format!("soak-{}", self.started), None));
        self.running.last().unwrap()
    }

    fn all(&self) -> Vec<&Instance> {
        self.running.iter().chain(&self.stopped).collect()
    }
}

struct Takeover {
    kill: bool,
    after: Duration,
    by: String,
    /// After SIGTERM: exited with status 0.
    clean: Option<bool>,
}

/// kill -9 (or SIGTERM) the leader, start its replacement at once, and time the takeover.
async fn fault_leader(env: &Env, s: &mut Schedulers, holders: &HolderLog, kill: bool) -> Takeover {
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(h) = holder(env).await
            && let Some(i) = s.running.iter().position(|i| i.process.name == h)
        {
            break i;
        }
        assert!(Instant::now() < deadline, "no running scheduler leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut old = s.running.remove(leader);
    let name = old.process.name.clone();
    let at = Instant::now();
    if kill {
        old.process.kill();
    } else {
        old.process.signal(libc::SIGTERM);
    }
    s.start(env);
    until(&format!("another scheduler takes over from {name}"), Duration::from_secs(30), || async {
        holders.held_by_other(&name, at).is_some()
    })
    .await;
    let (took, by) = holders.held_by_other(&name, at).unwrap();
    let clean = if kill {
        None
    } else {
        until(&format!("{name} exits"), Duration::from_secs(15), || {
            let exited = old.process.exited();
            async move { exited.is_some() }
        })
        .await;
        old.process.exited().map(|status| status.success())
    };
    s.stopped.push(old);
    s.running.last().unwrap().until_ready().await;
    Takeover { kill, after: took - at, by, clean }
}

/// Seconds with two decimals, for lists of durations.
fn secs(ds: impl IntoIterator<Item = Duration>) -> String {
    ds.into_iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(" ")
}

/// A bind refused because its pod was bound already, to the very node this bind named, of a pod no instance
/// logged bound: the instance's own earlier bind whose answer was lost (the API server went away), sent
/// again; not a second binder.
fn own_bind_again(line: &str, logged_bound: &BTreeSet<String>) -> bool {
    let field = |key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)).map(str::to_string);
    let assigned = line.split("already assigned to node \"").nth(1).and_then(|r| r.split('"').next());
    let (Some(pod), Some(node)) = (field("pod="), field("node=")) else { return false };
    assigned == Some(node.as_str()) && !logged_bound.contains(&pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "an hour: MLSCHED_SOAK_MINUTES=60 cargo test -p mlsched-scheduler --release --test e2e soak -- --ignored"]
async fn an_hour_of_churn() {
    let minutes: f64 = std::env::var("MLSCHED_SOAK_MINUTES").map_or(60.0, |m| m.parse().expect("minutes"));
    let total = Duration::from_secs_f64(minutes * 60.0);
    let clock = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let seed = std::env::var("MLSCHED_SOAK_SEED").map_or(clock, |s| s.parse().expect("seed"));
    eprintln!("soak: {minutes} min, seed {seed}");
    let env = Env::new("soak").await;
    let book = Mutex::new(Book::default());
    for i in 0..NODES {
        add_node(&env, &book, i).await;
    }
    let mut s = Schedulers::default();
    s.start(&env);
    until("soak-1 leads", Duration::from_secs(30), || async { holder(&env).await.as_deref() == Some("soak-1") }).await;
    s.start(&env).until_ready().await;
    let holders = HolderLog::every(&env, Duration::from_millis(100));
    let (working, watching) = (AtomicBool::new(true), AtomicBool::new(true));
    let begun = Instant::now();
    let (mut takeovers, mut restarts, mut drained, mut added) = (Vec::new(), Vec::new(), 0, 0);
    let control = async {
        let mut rng = Rng(seed.rotate_left(32) | 1);
        for (at, fault) in plan(total) {
            tokio::time::sleep_until((begun + at).into()).await;
            let t = begun.elapsed().as_secs();
            match fault {
                Fault::KillLeader | Fault::TermLeader => {
                    let kill = matches!(fault, Fault::KillLeader);
                    let to = fault_leader(&env, &mut s, &holders, kill).await;
                    let how = if kill { "kill -9" } else { "SIGTERM" };
                    eprintln!("soak {t} s: {how} to the leader, {} took over after {} s", to.by, secs([to.after]));
                    takeovers.push(to);
                }
                Fault::ApiServer => {
                    let down = ApiServerDown::kill(&env.cluster.control_plane).await;
                    let killed = Instant::now();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let back = down.restart().await;
                    eprintln!("soak {t} s: API server restarted, down {:.1} s", (back - killed).as_secs_f64());
                    restarts.push((killed, back));
                }
                Fault::DrainNode => {
                    let node = book.lock().unwrap().busy_node(&mut rng);
                    let pods = drain(&env, &book, &node).await;
                    eprintln!("soak {t} s: drained {node} ({pods} pods) and removed it");
                    drained += pods;
                }
                Fault::AddNode => {
                    add_node(&env, &book, NODES + added).await;
                    added += 1;
                }
            }
        }
        tokio::time::sleep_until((begun + total).into()).await;
        working.store(false, Relaxed);
        // The final drain: what is still pending gets two minutes more.
        let settle = Instant::now();
        let all_bound = || book.lock().unwrap().pods.values().all(|p| p.deleted || p.bound.is_some());
        while !all_bound() && settle.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("soak: final drain {:.1} s", settle.elapsed().as_secs_f64());
        watching.store(false, Relaxed);
    };
    let rng = Rng(seed | 1);
    let ((), (), (), checks) = tokio::join!(
        control,
        workload(&env, &book, &working, rng),
        watch_binds(&env, &book, &watching),
        check_overcommit(&env, &book, &watching)
    );

    // What the API server holds at the end, and what the soak and its watch saw.
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    let in_the_end: BTreeMap<String, Option<String>> = api
        .list(&ListParams::default())
        .await
        .expect("pods listed")
        .into_iter()
        .map(|p| (p.name_any(), p.spec.and_then(|s| s.node_name)))
        .collect();
    let book = book.into_inner().unwrap();
    let live: Vec<(&String, &PodRec)> = book.pods.iter().filter(|(_, p)| !p.deleted).collect();
    let lost: Vec<&String> = live
        .iter()
        .filter(|(n, p)| p.bound.is_none() && in_the_end.get(*n).is_none_or(Option::is_none))
        .map(|(n, _)| *n)
        .collect();
    let vanished = live.iter().filter(|(n, _)| !in_the_end.contains_key(*n)).count();
    let partial: Vec<String> = book
        .gangs
        .iter()
        .filter(|(_, m)| !book.pods[&m[0]].deleted)
        .filter_map(|(g, m)| {
            let bound = m.iter().filter(|p| in_the_end.get(*p).is_some_and(Option::is_some)).count();
            (bound > 0 && bound < m.len()).then(|| format!("{g}: {bound} of {} bound", m.len()))
        })
        .collect();
    let mut overcommits = book.overcommits.clone();
    overcommits.extend(env.overcommitted().await.expect("pods and nodes listed"));
    let instances = s.all();
    let logged_bound: BTreeSet<String> = instances.iter().flat_map(|i| i.bound_pods()).collect();
    let (mut double, mut sent_again) = (bound_by_two(&instances), Vec::new());
    for i in &instances {
        for line in i.binds_refused_as_bound() {
            let entry = format!("{}: {line}", i.process.name);
            if own_bind_again(&line, &logged_bound) { sent_again.push(entry) } else { double.push(entry) }
        }
    }
    double.extend(book.moved.iter().cloned());
    let mut latency: Vec<Duration> =
        book.pods.values().filter_map(|p| Some(p.bound.as_ref()?.0.saturating_duration_since(p.created))).collect();
    latency.sort();
    let pct = |q: f64| latency.get(((latency.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
    let first_binds: Vec<Duration> = restarts
        .iter()
        .filter_map(|(_, back)| {
            book.pods.values().filter_map(|p| Some(p.bound.as_ref()?.0)).filter(|t| t > back).min().map(|t| t - *back)
        })
        .collect();
    let crashed: Vec<String> = s
        .running
        .iter_mut()
        .filter_map(|i| i.process.exited().map(|st| format!("{} exited ({st})", i.process.name)))
        .collect();
    let (kills, terms): (Vec<&Takeover>, Vec<&Takeover>) = takeovers.iter().partition(|t| t.kill);
    let gang_pods: usize = book.gangs.values().map(Vec::len).sum();
    let unclean = terms.iter().filter(|t| t.clean != Some(true)).count();

    eprintln!("soak summary ({minutes} min, seed {seed}):");
    eprintln!("  pods created: {} ({} single, {gang_pods} in gangs)", book.pods.len(), book.pods.len() - gang_pods);
    eprintln!("  gangs created: {}", book.gangs.len());
    eprintln!("  pods deleted by the soak: {} ({drained} by node drains)", book.pods.len() - live.len());
    eprintln!("  pods gone otherwise (not deleted by the soak, absent at the end): {vanished}");
    eprintln!("  nodes: {NODES} at the start, {added} added, {} drained and removed", book.drained.len());
    eprintln!("  leader kills: {} kill -9, {} SIGTERM", kills.len(), terms.len());
    eprintln!("  takeover after kill -9 (s): {}", secs(kills.iter().map(|t| t.after)));
    eprintln!("  takeover after SIGTERM (s): {}", secs(terms.iter().map(|t| t.after)));
    eprintln!("  unclean exits after SIGTERM: {unclean}");
    eprintln!("  API server restarts: {}, down (s): {}", restarts.len(), secs(restarts.iter().map(|(k, b)| *b - *k)));
    eprintln!("  first bind after the API server's return (s): {}", secs(first_binds.iter().copied()));
    eprintln!("  binds seen: {}", latency.len());
    eprintln!("  creation to bind p50 (s): {}", secs(pct(0.5)));
    eprintln!("  creation to bind p99 (s): {}", secs(pct(0.99)));
    eprintln!("  creation to bind worst (s): {}", secs(latency.last().copied()));
    eprintln!("  pods lost: {}", lost.len());
    eprintln!("  double binds: {}", double.len());
    eprintln!("  binds refused as the binder's own earlier bind sent again: {}", sent_again.len());
    eprintln!("  over-commits: {} ({checks} checks)", overcommits.len());
    eprintln!("  partial gangs at the end: {}", partial.len());
    eprintln!("  binds to a drained node more than 2 s after its cordon: {}", book.late.len());
    eprintln!("  schedulers crashed: {}", crashed.len());
    for (what, list) in [("sent again", &sent_again), ("late binds", &book.late)] {
        for l in list {
            eprintln!("  {what}: {l}");
        }
    }

    let logs = env.cluster.control_plane.dir.display();
    assert!(lost.is_empty(), "pods lost: {lost:?} (logs in {logs})");
    assert!(double.is_empty(), "pods bound twice:\n{}", double.join("\n"));
    assert!(overcommits.is_empty(), "over-commits:\n{}", overcommits.join("\n"));
    assert!(partial.is_empty(), "partial gangs: {partial:?}");
    assert!(crashed.is_empty() && unclean == 0, "schedulers crashed: {crashed:?}, unclean SIGTERM exits: {unclean}");
    for i in &mut s.running {
        i.process.stop(Duration::from_secs(10));
    }
    env.finish().await;
}
