//! The two reductions that merge states by what a model declares: the `Relevant` history view
//! (`Model::observation_key`) and symmetry (`labels_erased`), on a toy whose runs are small
//! enough to search with and without them.

use sim::exhaustive::replay;
use sim::*;
use std::hash::{Hash, Hasher};

/// A request number no handler reads: it is only carried from message to message and into the
/// observation, so it is a label (`labels_erased`) and hashes without it while a search erases.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Label(u32);

impl Hash for Label {
    fn hash<H: Hasher>(&self, h: &mut H) {
        if !labels_erased() {
            self.0.hash(h);
        }
    }
}

/// Node 0 fires `k` same-key requests at the server (node 1), which asks the store (node 2)
/// whether the key is new and charges if so; the store answers by a lookup (racy: the key is
/// inserted only when the server says it charged) or by one atomic claim. Node 3 sets a timer
/// at start, which moves the clock in the untimed semantics: the same state is then reached with
/// its observations stamped before or after it.
#[derive(Clone, Debug, Hash)]
enum Node {
    Fan { k: u32 },
    Server,
    Store { atomic: bool, has_key: bool },
    Ticker,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Msg {
    Pay(Label),
    Ask(Label),
    Answer { req: Label, new: bool },
    Insert,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Obs {
    Charged(Label),
    Tick,
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = ();
    type Obs = Obs;
    type Record = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match *self {
            Node::Fan { k } => (0..k).for_each(|i| ctx.send(1, Msg::Pay(Label(i)))),
            Node::Ticker => {
                ctx.set_timer(5, ());
            }
            _ => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Node::Server, Msg::Pay(req)) => ctx.send(2, Msg::Ask(req)),
            (Node::Server, Msg::Answer { req, new: true }) => {
                ctx.observe(Obs::Charged(req));
                ctx.send(2, Msg::Insert);
            }
            (Node::Server, Msg::Answer { new: false, .. }) => {}
            (Node::Store { atomic, has_key }, Msg::Ask(req)) => {
                ctx.send(from, Msg::Answer { req, new: !*has_key });
                *has_key |= *atomic;
            }
            (Node::Store { has_key, .. }, Msg::Insert) => *has_key = true,
            (node, msg) => panic!("{node:?} got {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: ()) {
        ctx.observe(Obs::Tick);
    }
    fn on_crash(&mut self, _: &[()]) {}
}

struct Toy {
    config: SimConfig,
    k: u32,
    atomic: bool,
    /// A checker that reads the label (see the last test).
    planted: bool,
}

fn toy(k: u32, atomic: bool) -> Toy {
    let nodes = (0..4).map(|i| NodeSpec::new(format!("n{i}"))).collect();
    Toy { config: SimConfig { nodes, faults: FaultProfile::default(), swarm: false, time_limit_us: 1_000_000 }, k, atomic, planted: false }
}

impl Model for Toy {
    type Actor = Node;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<Node>) {
        nodes.extend([Node::Fan { k: self.k }, Node::Server, Node::Store { atomic: self.atomic, has_key: false }, Node::Ticker]);
    }
    /// The checker counts charges: it reads neither times nor labels, nor the ticks.
    fn observation_key(&self, e: &Entry<Obs>) -> Option<u64> {
        match e.obs {
            Obs::Charged(_) => Some(0),
            Obs::Tick => None,
        }
    }
    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let charges = run.history.iter().filter(|e| matches!(e.obs, Obs::Charged(_))).count();
        let first = run.history.iter().find_map(|e| if let Obs::Charged(Label(l)) = e.obs { Some(l) } else { None });
        if self.planted && first == Some(self.k - 1) {
            return Verdict::Violation(Violation::new("planted_label", "the last request was charged first".into(), vec![]));
        }
        if charges > 1 {
            return Verdict::Violation(Violation::new("exactly_once_charge", format!("charged {charges} times"), vec![]));
        }
        Verdict::Pass
    }
}

fn opts(history: HistoryView, symmetry: bool) -> ExhaustiveOptions {
    ExhaustiveOptions { history, symmetry, ..ExhaustiveOptions::default() }
}

/// Every combination of the two reductions finds the race of the lookup store, with a
/// counterexample that replays, and holds for the atomic one; each reduction cuts the states.
#[test]
fn relevant_view_and_symmetry_keep_the_verdicts_and_cut_the_states() {
    let mut states = Vec::new();
    for (history, symmetry) in
        [(HistoryView::PerNode, false), (HistoryView::Relevant, false), (HistoryView::PerNode, true), (HistoryView::Relevant, true)]
    {
        let racy = check_exhaustive(&toy(3, false), &opts(history, symmetry), None);
        assert!(racy.exhausted && racy.reduction, "{history:?} {symmetry}: {racy:?}");
        assert_eq!(racy.symmetry, symmetry);
        let c = racy.first.as_ref().unwrap_or_else(|| panic!("{history:?}, symmetry {symmetry}: the race was not found"));
        assert_eq!(c.violation.invariant, "exactly_once_charge");
        // Replays run without erasing: the tape is a real run, whatever merged it in the search.
        let o = replay(&toy(3, false), Semantics::Untimed, &c.tape);
        assert_eq!((o.verdict.violation(), o.history_hash), (Some(&c.violation), c.history_hash));
        let fixed = check_exhaustive(&toy(3, true), &opts(history, symmetry), None);
        assert!(fixed.exhausted && fixed.violations == 0 && fixed.interleavings > 0, "{history:?} {symmetry}: {fixed:?}");
        states.push((racy.distinct_states, fixed.distinct_states));
    }
    eprintln!(
        "states (racy, atomic): per-node {:?}, relevant {:?}, per-node + symmetry {:?}, both {:?}",
        states[0], states[1], states[2], states[3]
    );
    // Relevant: the tick's time no longer splits states. Symmetry: nor which request went first.
    for (more, fewer) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        assert!(states[fewer].0 < states[more].0 && states[fewer].1 < states[more].1, "{states:?}");
    }
    // Nothing is erased outside a search.
    assert!(!labels_erased());
}

/// The default `observation_key` keys the whole entry: `Relevant` is then `PerNode`, exactly.
#[test]
fn the_default_observation_key_is_the_per_node_view() {
    struct Plain(Toy);
    impl Model for Plain {
        type Actor = Node;
        fn config(&self) -> &SimConfig {
            self.0.config()
        }
        fn build(&self, nodes: &mut Vec<Node>) {
            self.0.build(nodes)
        }
        fn check(&self, run: &RunView<'_, Node>) -> Verdict {
            self.0.check(run)
        }
    }
    let model = Plain(toy(2, false));
    let o = |history| ExhaustiveOptions { collect_final_states: true, ..opts(history, false) };
    let (per_node, relevant) =
        (check_exhaustive(&model, &o(HistoryView::PerNode), None), check_exhaustive(&model, &o(HistoryView::Relevant), None));
    assert_eq!(relevant.history, HistoryView::Relevant);
    assert_eq!(
        (relevant.distinct_states, relevant.interleavings, &relevant.by_invariant),
        (per_node.distinct_states, per_node.interleavings, &per_node.by_invariant)
    );
}

/// Erasing is a promise: here the checker reads the label (it fails if the last request is
/// charged first), which breaks it. Without symmetry the search finds that run; with it, the
/// requests are interchangeable, so of the identical-looking deliveries only the first is ever
/// tried and the run is never made. A model must leave a field it reads out of its labels.
#[test]
fn a_checker_that_reads_a_label_breaks_the_promise() {
    let mut m = toy(3, true);
    m.planted = true;
    let kept = check_exhaustive(&m, &opts(HistoryView::PerNode, false), None);
    assert_eq!(kept.by_invariant.keys().collect::<Vec<_>>(), vec!["planted_label"], "{kept:?}");
    let erased = check_exhaustive(&m, &opts(HistoryView::PerNode, true), None);
    assert!(erased.exhausted && erased.violations == 0, "{erased:?}");
}
