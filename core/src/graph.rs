//! `needs:` → a checked DAG (petgraph): every id known and unique, kinds and params valid,
//! inputs of the right type, no cycles; plus its Graphviz and Mermaid renderings.
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use petgraph::algo::tarjan_scc;
use petgraph::dot::{Config, Dot};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostic::{suggest, Diagnostic};
use crate::registry::Registry;
use crate::spec::{Blame, Pipeline};
use crate::stage::{Kind, Stage};

/// When a stage runs relative to the round loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Once, before the first round (or with no loop at all).
    Before,
    /// Every round.
    Loop,
    /// Once, after the last round, because it needs a loop stage's final output.
    After,
}

#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub kind: Kind,
    pub stage: Arc<dyn Stage>,
    /// Indices of the nodes it needs, in `needs:` order.
    pub needs: Vec<usize>,
    pub phase: Phase,
}

/// The resolved pipeline graph; node i of `graph` is `nodes[i]`, edges go need → dependant.
#[derive(Debug)]
pub struct Dag {
    pub nodes: Vec<Node>,
    pub graph: DiGraph<usize, ()>,
    /// Loop feedback as (from, to) node indices: after a round, `to`'s output stands in for `from`'s.
    pub carry: Vec<(usize, usize)>,
}

impl Dag {
    /// Resolves every stage of `p`, collecting all problems rather than stopping at the first.
    pub fn build(
        p: &Pipeline,
        blame: &Blame<'_>,
        registry: &Arc<Registry>,
    ) -> Result<Dag, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let stages: Vec<_> = p.all_stages().collect();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, (path, spec, _)) in stages.iter().enumerate() {
            if !is_id(&spec.id) {
                errors.push(Diagnostic::new(
                    blame.at(&format!("{path}.id")),
                    format!("`{}` is not a usable stage id", spec.id),
                    "use letters, digits, `-` and `_` (no dots: overrides write `ID.PARAM`)",
                ));
            } else if let Some(&first) = index.get(spec.id.as_str()) {
                let first_at = blame.at(&format!("{}.id", stages[first].0));
                errors.push(Diagnostic::new(
                    blame.at(&format!("{path}.id")),
                    format!(
                        "duplicate stage id `{}` (first defined at {first_at})",
                        spec.id
                    ),
                    "give every stage its own id",
                ));
            } else {
                index.insert(&spec.id, i);
            }
        }
        let ids: Vec<&str> = {
            let mut v: Vec<&str> = index.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let mut nodes = Vec::with_capacity(stages.len());
        for (path, spec, in_loop) in &stages {
            let kind = Kind::from_name(&spec.kind);
            if kind.is_none() {
                errors.push(Diagnostic::new(
                    blame.at(&format!("{path}.kind")),
                    format!("unknown stage kind `{}`", spec.kind),
                    suggest(&spec.kind, &Kind::names(), "kinds"),
                ));
            }
            let stage = kind.and_then(|k| {
                match k.build(&spec.params, &format!("{path}.params"), blame, p, registry) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                }
            });
            let mut needs = Vec::new();
            for (j, need) in spec.needs.iter().enumerate() {
                let at = blame.at(&format!("{path}.needs[{j}]"));
                if *need == spec.id {
                    errors.push(Diagnostic::new(
                        at,
                        format!("stage `{need}` needs itself"),
                        "remove its own id from `needs`",
                    ));
                } else if spec.needs[..j].contains(need) {
                    errors.push(Diagnostic::new(
                        at,
                        format!("`{need}` is listed twice in `needs`"),
                        "list it once",
                    ));
                } else if let Some(&n) = index.get(need.as_str()) {
                    needs.push(n);
                } else {
                    errors.push(Diagnostic::new(
                        at,
                        format!(
                            "stage `{}` needs `{need}`, which no stage has as its id",
                            spec.id
                        ),
                        suggest(need, &ids, "ids"),
                    ));
                }
            }
            nodes.push((kind, stage, needs, *in_loop));
        }
        let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len());
        for i in 0..nodes.len() {
            graph.add_node(i);
        }
        for (i, (_, _, needs, _)) in nodes.iter().enumerate() {
            for &n in needs {
                graph.add_edge(NodeIndex::new(n), NodeIndex::new(i), ());
            }
        }
        let cyclic = cycles(
            &graph,
            &stages.iter().map(|s| s.1.id.as_str()).collect::<Vec<_>>(),
        );
        for members in &cyclic {
            let first = members[0];
            let names: Vec<&str> = members
                .iter()
                .chain(Some(&first))
                .map(|&m| stages[m].1.id.as_str())
                .collect();
            errors.push(Diagnostic::new(
                blame.at(&format!("{}.needs", stages[first].0)),
                format!("cycle in `needs`: {} (each needs the next)", names.join(" → ")),
                "a pipeline is a DAG: remove one of these dependencies (per-round feedback belongs in the `loop`)",
            ));
        }
        if !cyclic.is_empty() {
            return Err(errors);
        }
        let phases = phases(
            &graph,
            &nodes.iter().map(|n| &n.2).collect::<Vec<_>>(),
            &nodes.iter().map(|n| n.3).collect::<Vec<_>>(),
        );
        for (i, (kind, _, needs, _)) in nodes.iter().enumerate() {
            let (path, spec, _) = &stages[i];
            if phases[i] == Phase::Loop {
                if let Some(&late) = needs.iter().find(|&&n| phases[n] == Phase::After) {
                    errors.push(Diagnostic::new(
                        blame.at(&format!("{path}.needs")),
                        format!(
                            "loop stage `{}` needs `{}`, which can only run after the loop (it needs a loop stage)",
                            spec.id, stages[late].1.id
                        ),
                        "move that stage into the loop, or drop the dependency",
                    ));
                }
            }
            let Some(kind) = kind else { continue };
            for want in kind.consumes() {
                let found = needs
                    .iter()
                    .any(|&n| nodes[n].0.map(|k| k.produces()) == Some(*want));
                if !found {
                    errors.push(Diagnostic::new(
                        blame.at(&format!("{path}.needs")),
                        format!("stage `{}` ({}) needs a `{}` output, and none of its `needs` gives one", spec.id, kind.name(), want.name()),
                        format!("add the id of a stage that produces `{}` to its `needs`", want.name()),
                    ));
                }
            }
        }
        let mut carry = Vec::new();
        for (c, edge) in p.round_loop.iter().flat_map(|l| l.carry.iter().enumerate()) {
            let at = |field: &str| blame.at(&format!("loop.carry[{c}].{field}"));
            let (Some(&from), Some(&to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            else {
                for (field, id) in [("from", &edge.from), ("to", &edge.to)] {
                    if !index.contains_key(id.as_str()) {
                        errors.push(Diagnostic::new(
                            at(field),
                            format!("`{id}` is not a stage id"),
                            suggest(id, &ids, "ids"),
                        ));
                    }
                }
                continue;
            };
            if phases[from] != Phase::Before {
                errors.push(Diagnostic::new(at("from"), format!("`{}` must be a stage that runs before the loop", edge.from), "carry feeds a loop stage's output back in place of a stage outside the loop, e.g. `{from: policy, to: ppo}`"));
            } else if phases[to] != Phase::Loop {
                errors.push(Diagnostic::new(
                    at("to"),
                    format!("`{}` must be a loop stage", edge.to),
                    "carry feeds a loop stage's output back, e.g. `{from: policy, to: ppo}`",
                ));
            } else if nodes[from].0.map(Kind::produces) != nodes[to].0.map(Kind::produces) {
                errors.push(Diagnostic::new(
                    at("to"),
                    format!(
                        "`{}` and `{}` produce different artifacts",
                        edge.from, edge.to
                    ),
                    "carry a stage's output only into the place of a stage of the same type",
                ));
            } else {
                carry.push((from, to));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let nodes = nodes
            .into_iter()
            .zip(stages)
            .zip(phases)
            .filter_map(|(((kind, stage, needs, _), (_, spec, _)), phase)| {
                Some(Node {
                    id: spec.id.clone(),
                    kind: kind?,
                    stage: stage?,
                    needs,
                    phase,
                })
            })
            .collect();
        Ok(Dag {
            nodes,
            graph,
            carry,
        })
    }

    /// Graphviz DOT; loop stages are drawn dashed.
    pub fn to_dot(&self) -> String {
        let mut labelled = self.graph.map(
            |_, &i| format!("{} ({})", self.nodes[i].id, self.nodes[i].kind.name()),
            |_, _| false,
        );
        // The loop's feedback, drawn but not part of the DAG the scheduler runs.
        for &(from, to) in &self.carry {
            labelled.add_edge(NodeIndex::new(to), NodeIndex::new(from), true);
        }
        let edge_attrs = |_, e: petgraph::graph::EdgeReference<'_, bool>| match *e.weight() {
            true => "style=dashed, label=\"next round\"".to_owned(),
            false => String::new(),
        };
        let node_attrs = |_, (ix, _): (NodeIndex, _)| match self.nodes[ix.index()].phase {
            Phase::Loop => "style=dashed".to_owned(),
            _ => String::new(),
        };
        let dot =
            Dot::with_attr_getters(&labelled, &[Config::EdgeNoLabel], &edge_attrs, &node_attrs);
        dot.to_string()
    }

    /// Mermaid flowchart; loop stages sit in a `loop` subgraph.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        let line = |n: &Node| format!("    {}[\"{} ({})\"]\n", n.id, n.id, n.kind.name());
        for n in self.nodes.iter().filter(|n| n.phase != Phase::Loop) {
            out.push_str(&line(n));
        }
        if self.nodes.iter().any(|n| n.phase == Phase::Loop) {
            out.push_str("    subgraph loop [\"loop (every round)\"]\n");
            for n in self.nodes.iter().filter(|n| n.phase == Phase::Loop) {
                out.push_str("    ");
                out.push_str(&line(n));
            }
            out.push_str("    end\n");
        }
        for n in &self.nodes {
            for &need in &n.needs {
                let _ = writeln!(out, "    {} --> {}", self.nodes[need].id, n.id);
            }
        }
        for &(from, to) in &self.carry {
            let _ = writeln!(
                out,
                "    {} -.->|next round| {}",
                self.nodes[to].id, self.nodes[from].id
            );
        }
        out
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// Each cycle once, as members in `needs` order (each member needs the next, the last the first).
fn cycles(graph: &DiGraph<usize, ()>, ids: &[&str]) -> Vec<Vec<usize>> {
    let mut found = Vec::new();
    for scc in tarjan_scc(graph) {
        if scc.len() < 2 {
            continue;
        }
        let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        // Start at the alphabetically first id so the message is stable; walk the `needs`
        // direction (against the edges) breadth-first back to the start.
        let start = *scc
            .iter()
            .min_by_key(|n| ids[n.index()])
            .expect("non-empty");
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        while let Some(n) = queue.pop_front() {
            for need in graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                if need == start {
                    last = Some(n);
                    break;
                }
                if members.contains(&need) && !parent.contains_key(&need) {
                    parent.insert(need, n);
                    queue.push_back(need);
                }
            }
            if last.is_some() {
                break;
            }
        }
        let mut path = Vec::new();
        let mut at = last.expect("a strongly connected component has a cycle through any member");
        while at != start {
            path.push(at.index());
            at = parent[&at];
        }
        path.push(start.index());
        path.reverse();
        found.push(path);
    }
    found
}

/// Phase of each node from its `needs` and whether it is written inside the loop (in
/// topological order, so deep pipelines cost no recursion).
fn phases(graph: &DiGraph<usize, ()>, needs: &[&Vec<usize>], in_loop: &[bool]) -> Vec<Phase> {
    let order = petgraph::algo::toposort(graph, None).expect("cycles were reported before");
    let mut phase = vec![Phase::Before; needs.len()];
    for n in order {
        let i = n.index();
        phase[i] = if in_loop[i] {
            Phase::Loop
        } else if needs[i].iter().any(|&d| phase[d] != Phase::Before) {
            Phase::After
        } else {
            Phase::Before
        };
    }
    phase
}
