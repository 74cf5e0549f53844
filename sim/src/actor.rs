//! The one trait a model implements, and the context its handlers write their effects into.
//!
//! An actor is a state machine. Its handlers never see the scheduler, a clock, a thread RNG or a
//! global: they read `ctx.now_us()` (simulated time) and write effects — send, set or cancel a
//! timer, observe, write or fsync storage — into the context, and draw any random decision with
//! `ctx.choose`. That is what lets one actor run unchanged on the native scheduler, under
//! exhaustive enumeration and on madsim.

use crate::choices::{ChoiceKind, Choices};
use std::fmt::Debug;
use std::hash::Hash;

/// Index of a node in the scenario (its position in `SimConfig::nodes`).
pub type NodeId = usize;

/// Handle of a timer, for `Ctx::cancel_timer`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// An id hashes as itself, except inside an exhaustive search's state key, where it hashes as
/// the timer it names (see `exhaustive::timer_names`): ids count timers set in the whole run.
impl Hash for TimerId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(crate::exhaustive::timer_names::hashed(self.0));
    }
}

/// A node's behaviour. One scenario uses one actor type (an enum of its roles, usually).
pub trait Actor: Hash {
    /// What nodes send each other.
    type Msg: Clone + Debug + Hash;
    /// What a node asks to be woken with.
    type Timer: Clone + Debug + Hash;
    /// What a node reports to the history the invariants judge.
    type Obs: Clone + Debug + Hash;
    /// One entry of the node's write-ahead log: volatile until fsynced, replayed by `on_crash`.
    type Record: Clone + Debug + Hash;

    /// At time 0 and after every restart.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Self::Msg);
    /// A timer this node set fired (cancelled timers never fire).
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Self::Timer);
    /// The node crashed: forget everything volatile and rebuild from the durable log (the
    /// records fsynced before the crash, in write order). `on_start` follows at restart.
    fn on_crash(&mut self, durable: &[Self::Record]);
    /// Its process is about to die, its machine is not (a process crash; `on_crash` follows):
    /// the OS closes the process's connections, and the peers see a FIN. Send here what they
    /// learn from it, such as a database ending the dead client's sessions at once. Only sends
    /// are allowed. A machine crash closes nothing: the peers find out by timeouts.
    fn on_process_exit(&self, _ctx: &mut Ctx<'_, Self>) {}
}

/// `on_process_exit`, held to its contract (only sends): the backends call this.
pub(crate) fn process_exit<A: Actor>(a: &A, ctx: &mut Ctx<'_, A>) {
    let before = ctx.out.len();
    a.on_process_exit(ctx);
    for c in &ctx.out[before..] {
        let effect = match c {
            Cmd::Send { .. } => continue,
            Cmd::SetTimer { timer, .. } => format!("set a timer {timer:?}"),
            Cmd::CancelTimer(id) => format!("cancel timer {}", id.0),
            Cmd::Observe(o) => format!("observe {o:?}"),
            Cmd::Write(r) | Cmd::WriteOs(r) => format!("write {r:?}"),
            Cmd::Fsync => "fsync".into(),
        };
        panic!("on_process_exit may only send (what the OS tells the peers of a dead process); it asked to {effect}");
    }
}

/// An effect a handler asked for. Backends drain these after each handler returns.
#[derive(Clone, Debug)]
pub enum Cmd<A: Actor + ?Sized> {
    /// `msg` to `to`; with `incarnation`, to that incarnation of it only (lost if it has
    /// crashed since, even once it is back: see `Ctx::reply`).
    Send {
        to: NodeId,
        incarnation: Option<u64>,
        msg: A::Msg,
    },
    SetTimer {
        id: TimerId,
        after_us: u64,
        timer: A::Timer,
    },
    CancelTimer(TimerId),
    Observe(A::Obs),
    Write(A::Record),
    WriteOs(A::Record),
    Fsync,
}

impl<A: Actor + ?Sized> Cmd<A> {
    /// The same effect for another actor type with the same message, timer, observation and
    /// record types (a command is made of those alone).
    pub fn cast<B>(self) -> Cmd<B>
    where
        B: Actor<Msg = A::Msg, Timer = A::Timer, Obs = A::Obs, Record = A::Record> + ?Sized,
    {
        match self {
            Cmd::Send { to, incarnation, msg } => Cmd::Send { to, incarnation, msg },
            Cmd::SetTimer { id, after_us, timer } => Cmd::SetTimer { id, after_us, timer },
            Cmd::CancelTimer(id) => Cmd::CancelTimer(id),
            Cmd::Observe(o) => Cmd::Observe(o),
            Cmd::Write(r) => Cmd::Write(r),
            Cmd::WriteOs(r) => Cmd::WriteOs(r),
            Cmd::Fsync => Cmd::Fsync,
        }
    }
}

/// What a handler sees of the world: simulated time, its own id, and a place to put effects.
pub struct Ctx<'a, A: Actor + ?Sized> {
    pub(crate) now_us: u64,
    pub(crate) me: NodeId,
    pub(crate) out: &'a mut Vec<Cmd<A>>,
    pub(crate) choices: &'a mut Choices,
    pub(crate) next_timer: &'a mut u64,
    pub(crate) incarnation: u64,
}

impl<'a, A: Actor + ?Sized> Ctx<'a, A> {
    /// Build a context over a backend's buffers (used by backends other than the native one).
    pub fn new(now_us: u64, me: NodeId, out: &'a mut Vec<Cmd<A>>, choices: &'a mut Choices, next_timer: &'a mut u64) -> Self {
        Ctx { now_us, me, out, choices, next_timer, incarnation: 0 }
    }
    /// The same context, in incarnation `incarnation` of its node (the backend's count of the
    /// node's crashes; 0 until the first).
    pub fn in_incarnation(self, incarnation: u64) -> Self {
        Ctx { incarnation, ..self }
    }
    /// Simulated time in microseconds.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }
    pub fn me(&self) -> NodeId {
        self.me
    }
    pub fn send(&mut self, to: NodeId, msg: A::Msg) {
        self.out.push(Cmd::Send { to, incarnation: None, msg });
    }
    /// This node's incarnation: it changes at every crash. A request that carries it can be
    /// answered with `reply`.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    /// Answer on the connection a request came in on: `msg` goes to incarnation `incarnation`
    /// of `to` (what `to`'s `Ctx::incarnation` was when it sent the request), and is lost if
    /// that incarnation has crashed since, even if `to` is back up: a restarted process has new
    /// connections, and an answer on an old one never reaches it.
    pub fn reply(&mut self, to: NodeId, incarnation: u64, msg: A::Msg) {
        self.out.push(Cmd::Send { to, incarnation: Some(incarnation), msg });
    }
    pub fn set_timer(&mut self, after_us: u64, timer: A::Timer) -> TimerId {
        *self.next_timer += 1;
        let id = TimerId(*self.next_timer);
        self.out.push(Cmd::SetTimer { id, after_us, timer });
        id
    }
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.out.push(Cmd::CancelTimer(id));
    }
    pub fn observe(&mut self, obs: A::Obs) {
        self.out.push(Cmd::Observe(obs));
    }
    /// Append a record to this node's log. It is volatile until `fsync`.
    pub fn write(&mut self, rec: A::Record) {
        self.out.push(Cmd::Write(rec));
    }
    /// Append a record and hand it to the OS at once (`write(2)`, no `fsync`): it survives a
    /// process crash, and is lost in a machine crash until `fsync`.
    pub fn write_os(&mut self, rec: A::Record) {
        self.out.push(Cmd::WriteOs(rec));
    }
    /// Make every record written so far durable.
    pub fn fsync(&mut self) {
        self.out.push(Cmd::Fsync);
    }
    /// A random decision in `0..bound` through the run's one choice source; 0 is the simplest.
    pub fn choose(&mut self, kind: ChoiceKind, bound: u32) -> u32 {
        self.choices.pick(kind, bound)
    }
    /// True with probability `p` through the run's choice source (`p <= 0` or `>= 1`: no choice).
    pub fn flip(&mut self, kind: ChoiceKind, p: f64) -> bool {
        self.choices.flip(kind, p)
    }

    /// Run `f` with this context seen as one of actor type `B`, which speaks the same messages,
    /// timers, observations and records. This is how an actor enum that mixes a library's actors
    /// with your own (`models::custom::Mixed`) hands each handler the context its own type
    /// expects: the effects `f` writes land in this context, in order, and draw on the same
    /// choice source and timer ids.
    ///
    /// ```
    /// use sim::{Actor, Ctx, NodeId};
    ///
    /// /// An actor that answers every message with the same message.
    /// #[derive(Hash)]
    /// struct Echo;
    /// impl Actor for Echo {
    ///     type Msg = u32;
    ///     type Timer = ();
    ///     type Obs = u32;
    ///     type Record = ();
    ///     fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
    ///     fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: u32) {
    ///         ctx.observe(msg);
    ///         ctx.send(from, msg);
    ///     }
    ///     fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    ///     fn on_crash(&mut self, _: &[()]) {}
    /// }
    ///
    /// /// Another actor type over the same vocabulary, wrapping one.
    /// #[derive(Hash)]
    /// struct Wrapper(Echo);
    /// impl Actor for Wrapper {
    ///     type Msg = u32;
    ///     type Timer = ();
    ///     type Obs = u32;
    ///     type Record = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
    ///         ctx.as_actor(|c| self.0.on_start(c))
    ///     }
    ///     fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: u32) {
    ///         ctx.as_actor(|c| self.0.on_message(c, from, msg))
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, t: ()) {
    ///         ctx.as_actor(|c| self.0.on_timer(c, t))
    ///     }
    ///     fn on_crash(&mut self, durable: &[()]) {
    ///         self.0.on_crash(durable)
    ///     }
    /// }
    ///
    /// let (mut out, mut choices, mut next_timer) = (Vec::new(), sim::Choices::seeded(1), 0);
    /// let mut ctx = Ctx::<Wrapper>::new(0, 0, &mut out, &mut choices, &mut next_timer);
    /// Wrapper(Echo).on_message(&mut ctx, 3, 42);
    /// assert!(matches!(out[..], [sim::Cmd::Observe(42), sim::Cmd::Send { to: 3, msg: 42, .. }]));
    /// ```
    pub fn as_actor<B, R>(&mut self, f: impl FnOnce(&mut Ctx<'_, B>) -> R) -> R
    where
        B: Actor<Msg = A::Msg, Timer = A::Timer, Obs = A::Obs, Record = A::Record> + ?Sized,
    {
        let mut out = Vec::new();
        let r = f(&mut Ctx {
            now_us: self.now_us,
            me: self.me,
            out: &mut out,
            choices: &mut *self.choices,
            next_timer: &mut *self.next_timer,
            incarnation: self.incarnation,
        });
        self.out.extend(out.into_iter().map(Cmd::cast));
        r
    }
}
