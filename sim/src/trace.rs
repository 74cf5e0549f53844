//! The full timeline of one run, recorded only when asked (replay); the bulk path records nothing.

use crate::actor::NodeId;
use serde::{Deserialize, Serialize};

/// Which way a partition cuts a node off.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutDir {
    /// Nothing in, nothing out.
    Both,
    /// The node hears nothing; what it sends gets through.
    Inbound,
    /// What the node sends is lost; it still hears others.
    Outbound,
}

/// What a crash takes down.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashKind {
    /// Kernel panic, power loss: the OS's page cache goes too; only fsynced writes survive.
    #[default]
    Machine,
    /// OOM kill, SIGKILL, a deploy's restart: the process's memory goes; the OS keeps what the
    /// process wrote to it.
    Process,
}

impl CrashKind {
    pub fn name(self) -> &'static str {
        match self {
            CrashKind::Machine => "machine crash",
            CrashKind::Process => "process crash",
        }
    }
}

/// Why a message never arrived.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    Network,
    Partition,
    /// The receiver was down, or restarted after the message was sent (its connection reset).
    ReceiverDown,
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum TraceKind {
    Send {
        to: NodeId,
        msg: String,
        duplicated: bool,
    },
    /// The copy just sent to `to` is late: due at no deadline, it may arrive at any later
    /// moment (bounded semantics, `Bounds::max_late`).
    Late {
        to: NodeId,
    },
    /// The node's restart after the crash just traced is late: it may come at any later moment.
    LateRestart,
    Lose {
        to: NodeId,
        msg: String,
        cause: LossCause,
    },
    Deliver {
        from: NodeId,
        msg: String,
    },
    Timer {
        timer: String,
    },
    Crash {
        writes_lost: u64,
        kind: CrashKind,
    },
    Restart,
    Pause {
        until_us: u64,
    },
    Resume,
    PartitionStart {
        dir: CutDir,
    },
    PartitionEnd {
        dir: CutDir,
    },
    Write {
        record: String,
    },
    Fsync {
        durable_records: usize,
    },
    Observe {
        obs: String,
        index: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub at_us: u64,
    pub node: NodeId,
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// A fault as it struck. Every run keeps these (faults are rare, the buffer is reused), so a
/// violation message can name the faults behind it even on the bulk path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultNote {
    pub at_us: u64,
    pub node: NodeId,
    pub kind: FaultKind,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FaultKind {
    /// The node crashed; `writes_lost` writes vanished (not fsynced, or for a process crash
    /// not even handed to the OS).
    Crash {
        writes_lost: u64,
        #[serde(default)]
        kind: CrashKind,
    },
    Restart,
    Pause {
        until_us: u64,
    },
    Partition {
        dir: CutDir,
    },
    /// A message from `node` to `to` was lost (by the network or a partition).
    Lost {
        to: NodeId,
        cause: LossCause,
    },
    /// A message from `node` to `to` was delivered twice.
    Duplicated {
        to: NodeId,
    },
    /// A copy of a message from `node` to `to` was sent late: it may arrive at any later
    /// moment, past the delay bound (bounded semantics, `Bounds::max_late`).
    Late {
        to: NodeId,
    },
    /// `node`'s restart after the crash just noted is late: it may come at any later moment,
    /// past `restart_delay_us_max` (bounded semantics, `Bounds::max_late`).
    LateRestart,
}
