//! The command line (SPEC §1). Parsing only: no I/O happens here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes:
  0  success; for status/diagnose: the cluster is healthy
  1  status/diagnose found problems; run/resume ended without the verify steps passing
  2  invalid usage or input (flags, YAML, inventory, unknown runbook or incident)
  3  stopped by the operator (declined, Ctrl-C) - journaled, resumable
  4  a human decision is needed and none could be had (no terminal, no --yes)
  5  journal integrity failure
  6  the incident is locked by another running nats-rescue

Examples:
  nats-rescue -i inventory.yaml status
  nats-rescue -i inventory.yaml diagnose
  nats-rescue -i inventory.yaml run insufficient-nodes --dry-run
  nats-rescue -i inventory.yaml run insufficient-nodes
  nats-rescue resume
  nats-rescue journal export <INCIDENT> --format markdown";

/// Guided, journaled recovery for NATS JetStream clusters that lost their meta leader.
#[derive(Debug, Parser)]
#[command(name = "nats-rescue", version = env!("NATS_RESCUE_VERSION"), about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalOpts {
    /// Cluster inventory
    #[arg(
        short = 'i',
        long,
        global = true,
        env = "NATS_RESCUE_INVENTORY",
        value_name = "FILE"
    )]
    pub inventory: Option<PathBuf>,
    /// Where incident journals live [default: $XDG_STATE_HOME/nats-rescue/incidents]
    #[arg(
        long,
        global = true,
        env = "NATS_RESCUE_JOURNAL_DIR",
        value_name = "DIR"
    )]
    pub journal_dir: Option<PathBuf>,
    /// Extra runbook folder; its files override built-in runbooks of the same id
    #[arg(long, global = true, value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
    /// Machine-readable output on stdout (human text goes to stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// No colour (also honours NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Less output
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More output
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Trust unknown SSH host keys on first contact (the fingerprint is journaled). Changed
    /// keys are always refused.
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One table: per node ssh, service, monitor, server name, meta leader, Raft state, routes, healthz
    #[command(
        after_help = "Exit 0 when the cluster is healthy, 1 when not.\n\nExample:\n  nats-rescue -i inventory.yaml status --json"
    )]
    Status(ViewArgs),
    /// Read-only: run every runbook's diagnose steps and rank the likely causes
    #[command(
        after_help = "Exit 0 when healthy (no findings), 1 when findings were made.\n\nExample:\n  nats-rescue -i inventory.yaml diagnose --json | jq '.findings[0]'"
    )]
    Diagnose(ViewArgs),
    /// One tar.gz of everything status/diagnose read (secrets redacted), with SHA-256s
    #[command(
        after_help = "Prints the file and its SHA-256. Read it anywhere with `diagnose --from FILE`.\n\nExamples:\n  nats-rescue -i inventory.yaml capture\n  nats-rescue -i inventory.yaml capture -o before-fix.tar.gz --incident 20261127T230847Z-insufficient-nodes-3bde"
    )]
    Capture(CaptureArgs),
    /// Execute a runbook (an id such as `insufficient-nodes`, or a path to a .yaml)
    #[command(
        after_help = "Examples:\n  nats-rescue run insufficient-nodes --dry-run\n  nats-rescue run insufficient-nodes --yes\n  nats-rescue run reset-option-b --confirm-destructive prod-east"
    )]
    Run(RunArgs),
    /// Continue an interrupted incident (default: the most recent unfinished one)
    #[command(after_help = "Example:\n  nats-rescue resume --yes")]
    Resume(ResumeArgs),
    /// Incident journals: list, show, verify, export
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Built-in and custom runbooks
    #[command(subcommand)]
    Runbooks(RunbooksCommand),
    /// Local rehearsal cluster (network namespaces, sshd, nats-server)
    #[command(subcommand)]
    Lab(LabCommand),
    /// Write an inventory by looking at the cluster (`inventory init --seed HOST`)
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  nats-rescue completions bash > /etc/bash_completion.d/nats-rescue"
    )]
    Completions { shell: clap_complete::Shell },
    /// Write the man pages or completion scripts into a directory (scripts/release.sh)
    #[command(subcommand, hide = true)]
    Generate(crate::app::generate::GenerateCommand),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ViewArgs {
    /// Offline: read a capture (`nats-rescue capture`) instead of the cluster; no inventory
    /// or SSH needed
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CaptureArgs {
    /// Where to write [default: ./nats-rescue-capture-<cluster>-<UTC time>.tar.gz]; never
    /// overwritten
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Attach it to this incident: its journal records the capture's path and SHA-256
    #[arg(long, value_name = "INCIDENT")]
    pub incident: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ApprovalArgs {
    /// Approve ordinary confirmations without a terminal
    #[arg(long)]
    pub yes: bool,
    /// Approve destructive confirmations; the value must equal the inventory's cluster name
    #[arg(long, value_name = "CLUSTER")]
    pub confirm_destructive: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Runbook id or path to a .yaml file
    pub runbook: String,
    /// Rehearsal: read-only steps run for real, mutating actions are printed and not run
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub approval: ApprovalArgs,
    /// Limit per-node fix steps to these nodes (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Set a runbook variable (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    #[command(flatten)]
    pub signing: SignArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Sign the journal's head when the run ends (see `journal sign`)
    #[arg(long)]
    pub sign: bool,
    /// Key for --sign [default: ~/.ssh/id_ed25519]
    #[arg(long, value_name = "FILE", requires = "sign")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Incident id (default: the most recent unfinished one)
    pub incident: Option<String>,
    #[command(flatten)]
    pub approval: ApprovalArgs,
    #[command(flatten)]
    pub signing: SignArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Markdown,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Incidents, newest first
    List,
    /// The timeline, human-readable
    Show { incident: String },
    /// Check the hash chain; print record count and head hash
    Verify {
        /// Incident id or path to a .jsonl file
        incident: String,
        /// Also read the witness each node keeps of the journal's heads (over SSH, with the
        /// inventory the incident used unless -i is given)
        #[arg(long)]
        witnesses: bool,
        /// Check the signed head against these keys (an ssh-keygen allowed_signers file)
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
    },
    /// Sign the journal's head with an SSH key (sshsig, as `ssh-keygen -Y sign` makes);
    /// without --key, write the head statement for `ssh-keygen -Y sign` to sign
    Sign {
        incident: String,
        /// OpenSSH private key (unencrypted; for a passphrase use ssh-keygen as printed)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// A post-incident report
    Export {
        incident: String,
        #[arg(long, value_enum, default_value = "markdown")]
        format: ExportFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunbooksCommand {
    /// Ids, titles, causes
    List,
    /// Check runbooks (built-in ones when no FILE given) and report every problem
    Validate { files: Vec<PathBuf> },
    /// The steps as the operator will meet them
    Show { runbook: String },
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Connect to one server, read its config, monitoring and service, find the others from
    /// its routes, check each the same way, and write an inventory with a comment per field
    #[command(
        after_help = "Exit 0 when every server was checked, 1 when one could not be (it is still written, with a comment saying what failed), 2 for bad input.\n\nExamples:\n  nats-rescue inventory init --seed 10.0.1.11 -o inventory.yaml\n  nats-rescue inventory init --seed nats-1 --ssh-user ops --sudo --proxy-jump ops@bastion"
    )]
    Init(InventoryInitArgs),
}

#[derive(Debug, Args)]
pub struct InventoryInitArgs {
    /// One server of the cluster: `host`, `user@host` or `host:port` for SSH
    #[arg(long, value_name = "HOST")]
    pub seed: String,
    /// Write the inventory here (refuses to replace a file unless --force) [default: stdout]
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the -o file if it exists
    #[arg(long)]
    pub force: bool,
    /// SSH user [default: $USER]
    #[arg(long, value_name = "NAME")]
    pub ssh_user: Option<String>,
    /// SSH port of every server [default: 22]
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
    /// Private key [default: ssh-agent]
    #[arg(long, value_name = "FILE")]
    pub identity_file: Option<PathBuf>,
    /// known_hosts file to verify (and with --accept-new-host-keys, record) host keys
    /// [default: ~/.ssh/known_hosts]
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Jump host(s), OpenSSH -J syntax (`user@bastion:22`, `a,b` for a chain)
    #[arg(long, value_name = "JUMP")]
    pub proxy_jump: Option<String>,
    /// Read through `sudo -n` (root-only configs and processes)
    #[arg(long)]
    pub sudo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// Kill a majority of the servers
    QuorumLoss,
    /// Drop cluster-port traffic inside the node's namespace
    Partition,
    /// Wrong route ports in every config, restart
    BadRoutes,
    /// Empty per-node hosts file, restart (routes are by hostname)
    Dns,
    /// SIGSTOP the server (a starved, frozen process)
    Frozen,
    /// Stale Raft state: terms and indexes differ between nodes, all stopped
    Diverged,
    /// Permanent loss: kill the server, delete its data dir, stop its sshd, drop all traffic
    /// (`lab heal` leaves it destroyed unless given --rebuild-destroyed)
    Destroy,
    /// Restart one server under a new server_name (n3 -> n3b), data kept; the old name stays
    /// in the meta peer set
    Rename,
    /// Kill 2 of the 3 replicas of stream ORDERS (5+ nodes, after `lab seed`); the meta group
    /// keeps its leader
    StreamQuorum,
    /// `flap NODE SECONDS [ssh|cluster|all]`: drop that traffic for SECONDS, restored by itself
    Flap,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build N local hosts with sshd and nats-server in one JetStream cluster
    Up(LabUpArgs),
    /// Inject a fault
    Break {
        #[arg(value_enum)]
        fault: Fault,
        /// Target nodes (default: the fault's own choice); for flap: NODE SECONDS [ssh|cluster|all]
        nodes: Vec<String>,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Undo injected faults
    Heal {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Also bring destroyed nodes back, with an EMPTY data dir (their data stays lost)
        #[arg(long)]
        rebuild_destroyed: bool,
    },
    /// Remove everything the lab made
    Down {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Publish known messages to an R3 stream (to prove data survives a recovery)
    Seed {
        #[arg(long, default_value_t = 100)]
        messages: u32,
        /// Delete the stream first (its messages and every replica), then create it anew
        #[arg(long)]
        fresh: bool,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show lab state
    Status {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// nats-server binary [default: nats-server on PATH, then /usr/sbin/nats-server]
    #[arg(long, value_name = "PATH")]
    pub nats_server: Option<PathBuf>,
    /// Lab directory [default: /tmp/nats-rescue-lab]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Lab name, used as a prefix for namespaces and the bridge (max 6 chars)
    #[arg(long, default_value = "nrl")]
    pub name: String,
    /// Third octet of the lab's 10.X.Y.0/24 subnet, as X.Y
    #[arg(long, default_value = "213.7")]
    pub subnet: String,
    /// Log in as this new unprivileged local user with NOPASSWD sudo (removed by `lab down`);
    /// the servers, their scripts and data stay root's
    #[arg(long, value_name = "NAME")]
    pub ssh_user: Option<String>,
    /// Routes authenticate: `cluster.authorization` with a random password per lab
    #[arg(long)]
    pub route_auth: bool,
    /// Every client authenticates (no `no_auth_user`); the inventory gets the system user
    #[arg(long)]
    pub accounts: bool,
    /// How server configs are written
    #[arg(long, value_enum, default_value = "classic")]
    pub config_style: crate::lab::state::ConfigStyle,
    /// A jump host: node SSH and monitoring ports answer only the bastion
    #[arg(long)]
    pub bastion: bool,
}
