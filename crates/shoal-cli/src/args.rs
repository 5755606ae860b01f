//! The command line: every subcommand, flag and help text of `shoal`, as clap
//! derive structs.
//!
//! This module owns the *shape* of the interface and its `--help` (with
//! examples). It parses values that have a syntax of their own (log positions,
//! query filters) through small parser functions, and runs nothing. The
//! arguments of the node-facing commands are `node_args.rs`'s, of the
//! operations commands `ops_args.rs`'s and of the record commands
//! `record_args.rs`'s, re-exported here.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;

pub use crate::node_args::*;
pub use crate::ops_args::*;
pub use crate::record_args::*;

const ROOT_EXAMPLES: &str = "\
Examples:
  shoal init
  shoal put tasks t1 '{\"title\": \"buy milk\", \"done\": false}'
  echo '{\"done\": true}' | shoal patch tasks t1
  shoal get tasks t1
  shoal map set notes n1 tags work true
  shoal ls tasks --limit 20
  shoal --json status
  shoal invite                 # on the first machine (with `shoal serve` running)
  shoal join shoal2:…          # on the next one, then `shoal serve`
  shoal peers
  shoal diff 12D3KooW… tasks   # which records differ from a peer's
  shoal backup /mnt/usb/shoal-backup   # consistent and verified, daemon running or not
  shoal service install        # a systemd unit running `shoal serve` (settings: DIR/shoal.toml)

Exit codes: 0 ok, 1 not found, 2 invalid input or usage (bad id, bad JSON,
no database: run `shoal init`), 3 storage error (corrupt or foreign database),
4 network or daemon problem (no daemon running, cannot listen, sync timed out).";

/// Shoal: a local-first database whose records replicate peer-to-peer.
///
/// Records are JSON objects, stored under COLLECTION/ID in one SQLite file
/// (DIR/shoal.db). Collection names are 1-64 bytes of [A-Za-z0-9_-] starting
/// with a letter; record ids are 1-128 bytes of [A-Za-z0-9._:-].
#[derive(Debug, Parser)]
#[command(name = "shoal", version, after_help = ROOT_EXAMPLES)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Data directory; the database is DIR/shoal.db
    /// [default: $XDG_DATA_HOME/shoal, or ~/.local/share/shoal]
    #[arg(long, global = true, env = "SHOAL_DATA", value_name = "DIR",
          value_parser = clap::builder::OsStringValueParser::new())]
    pub data: Option<OsString>,
    /// Config file (keys: the long flags of `serve`, see docs/shoal.example.toml)
    /// [default: DIR/shoal.toml if it exists]
    #[arg(long, global = true, env = "SHOAL_CONFIG", value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
    /// Print one machine-readable JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory and the database, and print this node's ids
    #[command(after_help = "\
Creates DIR (mode 0700) and DIR/shoal.db with a fresh node key. Running it
again on an initialized directory changes nothing and prints the same ids.

Examples:
  shoal init
  shoal --data /srv/shoal init")]
    Init,

    /// Create or replace a record (fields not given are removed)
    #[command(after_help = "\
The JSON object is read from the argument, or from stdin when the argument is
omitted or `-`. To change only some fields, use `shoal patch`. Putting at the
id of a deleted record starts a new life of it.

Examples:
  shoal put tasks t1 '{\"title\": \"buy milk\", \"done\": false}'
  shoal put tasks t2 < task.json")]
    Put(WriteArgs),

    /// Change some fields of an existing record (JSON merge-patch)
    #[command(after_help = "\
Top-level merge-patch: each given field is set, a field given as null is
removed, fields not given are kept. The record must exist (exit 1 if not).
The JSON object is read from the argument, or from stdin when omitted or `-`.

Examples:
  shoal patch tasks t1 '{\"done\": true}'
  echo '{\"note\": null}' | shoal patch tasks t1")]
    Patch(WriteArgs),

    /// Print a record's JSON
    #[command(after_help = "\
Exit code 1 if the record does not exist or was deleted.

Examples:
  shoal get tasks t1
  shoal get tasks t1 | jq .title")]
    Get(RecordArgs),

    /// Delete a record
    #[command(
        visible_alias = "rm",
        after_help = "\
The id stays known as a tombstone, so a stale edit from a peer cannot bring the
record back; a later `put` starts a new life. Exit code 1 if there is no live
record to delete.

Examples:
  shoal del tasks t1"
    )]
    Del(RecordArgs),

    /// List the records of a collection, or every collection with its counts
    #[command(after_help = "\
Records come in id order, one per line as `ID  JSON`. When there is a next
page, a line on stderr gives the --after to pass for it.

Examples:
  shoal ls                                 # collections with counts
  shoal ls tasks --prefix 2024- --limit 20
  shoal ls tasks --after t20")]
    Ls(LsArgs),

    /// Set or remove one entry of a record's map field
    #[command(after_help = "\
A map field is a JSON object whose entries merge one by one: entries set on
two machines at once both survive, and a removed entry stays removed (a
tombstone), whichever machine still held it. `set` creates the record if
needed (and turns a field that held a plain object into a map); `rm` needs a
live record (exit code 1 otherwise) and changes nothing if the entry is absent.

Examples:
  shoal map set notes n1 tags work true
  shoal map set boards b1 items i7 '{\"title\": \"milk\"}'
  shoal map rm notes n1 tags work
  shoal --json map set notes n1 tags idea true | jq .clock")]
    Map(MapArgs),

    /// Find records by field values (equality, ranges), optionally sorted
    #[command(after_help = "\
Values are JSON: quote strings ('title=\"milk\"'). Ranges include MIN and
exclude MAX; either side may be left empty. All filters must hold.

Examples:
  shoal query tasks --eq done=false --order due
  shoal query tasks --range due=10..20 --order due:desc --limit 5
  shoal query notes --eq 'author=\"ann\"'")]
    Query(QueryArgs),

    /// Print the change log: every field version written since a version
    #[command(after_help = "\
One line per change: POSITION COLLECTION/ID SLOT VALUE CLOCK LIFE, where
POSITION is VERSION.SEQ of the record's last change, SLOT is `life`, `.field`
or `.field[key]` (a map entry), CLOCK is WALL_MS.COUNTER@SITE and LIFE is odd
for alive records and even for deleted ones. The log holds the current version
of every field (what a replica needs to converge), not a history; it is
streamed, never loaded whole.

--limit N lists at most N changes and stops between records: a record's
changes are never split across listings, so a record that would go past N is
left for the next listing (only a first record of more than N changes is
listed whole). When it stops early, a line on stderr gives the --since to
resume with.

Examples:
  shoal log                        # everything
  shoal log --since 42 --limit 100
  shoal --json log --since 42+57.3 # resume where a cut listing stopped")]
    Log(LogArgs),

    /// Print values that lost to a concurrent edit (the conflict journal)
    #[command(after_help = "\
When two machines change the same field without either having seen the
other's change, the newer clock wins everywhere and the other value is kept
here, on each node where the two met: the record, the field (or map entry),
the kept and the lost value, each with its clock WALL_MS.COUNTER@SITE (the
site is the machine that wrote it). An edit made after seeing the other
machine's value is not a conflict and is not listed.

Newest first, three lines per entry. The journal is this node's own, never
synced, and bounded (10,000 entries, 90 days). To restore a lost value, write
it again: shoal patch COLLECTION ID '{\"FIELD\": VALUE}' (it syncs like any
edit). The dashboard's Conflicts view has a button for it.

Examples:
  shoal conflicts
  shoal conflicts notes --since 2h
  shoal --json conflicts --since 7d --limit 500")]
    Conflicts(crate::conflicts::ConflictsArgs),

    /// Print site id, peer id, db_version and per-collection record counts
    #[command(after_help = "\
Examples:
  shoal status
  shoal --json status | jq .db_version")]
    Status,

    /// Check the whole database file: every page and index, and every record
    #[command(after_help = "\
Reads the whole file: SQLite's integrity check of every page and index, then
Shoal's own invariants on every record (its stored JSON, life, digest and log
position agree with its field clocks). Prints progress on stderr and \"ok\"
at the end; damage exits with code 3 and says what is corrupt. Nothing is
changed. Every command already runs a quick check of the first pages when it
opens the database; this one is complete (and slower on a large file).

Examples:
  shoal check
  shoal --json check | jq .ok")]
    Check,

    /// Collect tombstones: deleted records every known peer has acknowledged,
    /// and those older than the horizon
    #[command(after_help = "\
A deleted record keeps a tombstone (a row with its life and delete clock) so
that a peer's older copy cannot bring it back. Once every peer this node
knows has acknowledged the delete (it has applied this node's log past it),
or the delete is older than --horizon, the tombstone is collected: its row,
its change-log entry and its reconciliation entry go, and a small ledger
entry (collection, id, life, delete clock) stays for good. A stale copy a
peer brings back later — by catch-up, push, reconciliation, pull/push or a
create at the same id — still loses to the delete: its values go to the
conflict journal and the delete is sent to that peer
again. A create at the id starts the record's next life, as after any delete.

Safe next to a running daemon (which also collects every --gc-interval).
Progress goes to stderr; the summary says how many rows were reclaimed, how
many bytes of the file were freed for reuse (the file shrinks only with
VACUUM) and which peers hold collection back.

Examples:
  shoal gc
  shoal gc --horizon 7d
  shoal --json gc | jq .rows_reclaimed")]
    Gc(GcArgs),

    /// Run this node: sync with peers, serve the HTTP API and the web dashboard
    #[command(after_help = "\
Runs until Ctrl-C or SIGTERM. The group secret comes from, first match:
--secret-file PATH (a passphrase, or 64 hex digits = a raw key), $SHOAL_SECRET
(the same), or DIR/group.key (written by `shoal invite` / `shoal join`). It is
never taken from the command line. Without one, run `shoal invite` to create
a group or `shoal join CODE` to join one. A passphrase is stretched under the
group's salt in DIR/group.salt (made at random on first use, carried by
invite codes and written by `shoal join`): the same passphrase on another
machine makes the same group only after it joined with a code.

Listens on /ip4/0.0.0.0/tcp/4040 and /ip4/0.0.0.0/udp/4040/quic-v1 unless
--listen is given (each --listen replaces these defaults). Dials every --peer
and every address in DIR/peers.txt, and redials them while they are away;
finds peers on the LAN by mDNS unless --no-mdns.

The HTTP API (docs/http-api.md; used by `shoal peers`, `shoal sync`, `shoal
diff`/`pull`/`push` and the web dashboard) listens on --http, loopback only
unless --http-public; every /api request needs the header `Authorization:
Bearer TOKEN` with the token in DIR/token. The dashboard is at / on the same
address; the line `dashboard http://IP:PORT/#token=TOKEN` printed at start
opens it signed in. While running, the daemon describes itself in
DIR/daemon.json. Logs go to stderr (RUST_LOG, e.g. RUST_LOG=debug, changes
the default `info`).

Every flag may also come from the config file (--config PATH, else
DIR/shoal.toml; docs/shoal.example.toml lists the keys): each long flag is a
key of the same name, and a flag given here replaces it. The file may also
hold [[share]] rules and local-only collections. On SIGHUP the daemon
re-reads the rules and its peers (the file's `peer` key, DIR/peers.txt)
without dropping sessions; other keys take effect at the next start.

Examples:
  shoal serve
  shoal serve --listen /ip4/0.0.0.0/tcp/5000 --peer /ip4/192.168.1.7/tcp/4040/p2p/12D3KooW…
  SHOAL_SECRET='correct horse battery staple' shoal serve --no-mdns
  shoal serve --secret-file ~/.config/shoal/secret --http 127.0.0.1:7070")]
    Serve(ServeArgs),

    /// Run a relay for one group's members behind NAT (no data directory needed)
    #[command(after_help = "\
Serves libp2p circuit relay v2, identify and ping, to members of one group
only: a peer must prove it holds the group key (the relay holds only the relay
token derived from it, and cannot read or alter what it relays) before it gets
a reservation or a circuit. Prints its peer id and addresses as one JSON line;
DIR/stats.json holds its counters. Give members `--relay
<external address>/p2p/<peer id>` on `shoal serve`.

Examples:
  shoal relay --dir /srv/shoal-relay --token $(shoal relay-token) \\
    --external-address /ip4/203.0.113.7/tcp/4001")]
    Relay(crate::relay_args::RelayArgs),

    /// Print the relay token of this node's group (for `shoal relay --token`)
    RelayToken(crate::relay_args::RelayTokenArgs),

    /// Print an invite code (the group secret and an address to dial)
    #[command(after_help = "\
Creates the group first (a random key in DIR/group.key) if this node has no
group secret yet. The code carries --address, or else the address of the
running `shoal serve` (its first non-loopback listen address). An --address
without /p2p/<peer id> gets this node's id appended.

The code CONTAINS THE GROUP SECRET: whoever has it can join the group and
read and change all its data. Send it only over a private channel.

Examples:
  shoal invite
  shoal invite --address /ip4/203.0.113.7/tcp/4040
  shoal --json invite | jq -r .invite")]
    Invite(InviteArgs),

    /// Join a group with an invite code from `shoal invite`
    #[command(after_help = "\
Writes the group key to DIR/group.key and its salt to DIR/group.salt, and
adds the code's address to DIR/peers.txt. A code with a typo is refused (it
carries a checksum), as is an old `shoal1:` code. Refuses to replace a
different group key unless --force. If
`shoal serve` runs, it dials the peer at once; a daemon started with another
key keeps it until restarted.

Examples:
  shoal join shoal2:5f0c….9a1e….c03b7d21@/ip4/192.168.1.7/tcp/4040/p2p/12D3KooW…
  shoal join --force \"$(cat invite.txt)\"")]
    Join(JoinArgs),

    /// List the running daemon's peers: state, last sync, cursor, lag
    #[command(after_help = "\
STATE is connected, connecting, disconnected, rejected: REASON (by peer / by
us) or unreachable: ERROR. LAST SYNC is when a catch-up with the peer last
completed; CURSOR how far its log is applied here; LAG how many of its
versions are not yet. Needs a running `shoal serve` (exit code 4 if none).

Examples:
  shoal peers
  shoal peers --json | jq '.peers[] | select(.state == \"connected\") | .peer'")]
    Peers,

    /// Catch up with every connected peer now, showing progress
    #[command(after_help = "\
Asks the running daemon to fetch every connected peer's changes, and waits
until each has caught up since the request and is 0 versions behind. Shows a
progress bar on a terminal, a line a second otherwise. Exit code 4 if it is
not done within --timeout (naming the peers still behind), if no peer is
connected (nothing was synced), or if no daemon runs.

Examples:
  shoal sync
  shoal sync --timeout 10 && shoal get tasks t1")]
    Sync(SyncArgs),

    /// Compare records with a peer: which differ, and how
    #[command(after_help = "\
Asks the running daemon to reconcile with PEER and reports every record not in
sync: local-only (alive here, absent or
deleted there), peer-only (the reverse), diverged (alive on both, different
states) or assets-missing (same state, a referenced blob missing on a side).
Records deleted on both sides are not listed. It reads only fingerprints and
ids -- a few round trips, not the records -- and changes nothing.

With COLLECTION: the counts and a table of the differing records (ID STATUS),
--limit at a time in id order; a line on stderr gives the --after for the next
page. Without: one line of counts per collection this node has (collections
only the peer has are not listed). The peer must send the collection to this
node and this node accept it (see `shoal share`). Needs a running `shoal
serve` connected to PEER (exit code 4 otherwise).

PEER, here and in pull, push and share, is a peer id, any start of one that
only one known peer's id has (the daemon's peers, DIR/peers.txt, the sharing
rules), or the short form `shoal peers` prints (12D3…4kx6nXTN); an unknown or
ambiguous start is exit code 2, naming the candidates.

Examples:
  shoal diff 12D3KooWDpJ7 tasks            # any unique start of the id
  shoal diff 12D3KooW… tasks
  shoal diff 12D3KooW… tasks --after t41 --limit 100
  shoal diff 12D3KooW…
  shoal --json diff 12D3KooW… tasks | jq .collections[0].counts")]
    Diff(DiffArgs),

    /// Fetch one record's full state from a peer and merge it here
    #[command(after_help = "\
Asks the running daemon to fetch COLLECTION/ID from PEER -- every field with
its clock -- and merge it (the usual per-field merge: nothing newer here is
lost). Prints the result: merged, already in sync, peer does not have it (exit
code 1), not shared with you (the peer's rule), not shared (this node's rule),
peer unreachable or timed out (exit code 4). Running it again is harmless.

Examples:
  shoal pull 12D3KooW… tasks t1
  shoal diff 12D3KooW… tasks && shoal pull 12D3KooW… tasks t7")]
    Pull(TransferArgs),

    /// Offer one record's full state to a peer, which merges it
    #[command(after_help = "\
Asks the running daemon to send COLLECTION/ID -- every field with its clock --
to PEER, which merges it. Prints the result: merged, already in sync, not found
on this node (exit code 1), not shared with you (the peer refused), not shared
(this node's rule), peer unreachable or timed out (exit code 4).

Examples:
  shoal push 12D3KooW… tasks t1")]
    Push(TransferArgs),

    /// Set which collections flow to and from a peer, or list the rules
    #[command(after_help = "\
Each node keeps its own rules, from its own point of view: --send (this node
sends COLLECTION to PEER but does not accept PEER's changes to it), --receive
(accepts but does not send), --both (the default for every pair) or --none.
PEER `*` sets the rule for every peer without one of its own. Sync, `shoal
diff`, `pull` and `push` all obey them; a change takes effect at
once, daemon running or not. Changes left out while a collection was not
shared cross later, by anti-entropy (every 5 minutes while the daemons are
connected) or `shoal push`.

Examples:
  shoal share 12D3KooW… diary --none
  shoal share 12D3KooWDpJ7 inbox --receive  # any unique start of the id
  shoal share '*' diary --none             # every peer without its own rule
  shoal share --list")]
    Share(ShareArgs),
    /// Mark a collection local-only: it never leaves this node and nothing from
    /// peers is accepted into it (`--off` lifts the mark)
    #[command(after_help = "\
A local-only collection never leaves this node and nothing from any peer is
accepted into it, whatever the per-peer rules say. --off lifts the mark. Takes
effect at once, daemon running or not; `shoal share --list` shows the marks.

Examples:
  shoal local-only scratch
  shoal local-only scratch --off")]
    LocalOnly(LocalOnlyArgs),

    /// Declare, show or remove a collection's data version and JSON Schema
    Schema(crate::schema::SchemaArgs),

    /// Devices of the group: list, approve, revoke, set roles; the owner key
    Devices(crate::devices::DevicesArgs),
    /// Take only the records of a collection matching a filter (a partial replica)
    Partial(crate::partial::PartialArgs),

    /// Store files as blobs, copy them out, list them, collect garbage
    #[command(after_help = "\
A blob is a file's bytes, stored beside the database (DIR/shoal.blobs) under its
BLAKE3 hash. A record refers to one with a field holding the reference object
`shoal blob add` prints with --json: {\"$blob\": HASH, \"size\": N, \"type\": MIME}.
`shoal serve` fetches the blobs live records reference from peers that have
them; `shoal blob ls --missing` lists those not here yet.

Examples:
  shoal blob add photo.png --type image/png
  shoal put notes n1 \"{\\\"photo\\\": $(shoal --json blob add photo.png)}\"
  shoal blob get 5f0c… copy.png
  shoal blob ls --missing
  shoal blob gc --grace-secs 0")]
    Blob(BlobArgs),

    /// Copy the database and its blobs to a new directory, verified (daemon may run)
    #[command(after_help = "\
Takes one consistent copy of DIR/shoal.db with SQLite's online backup API
(a running `shoal serve` keeps writing meanwhile; the copy holds exactly what
was committed when it began), copies the blobs it holds, and checks the copy
before keeping it: every page and record (as `shoal check`) and every blob
re-hashed. DEST must not exist or be empty; the backup is built beside it and
moved into place only once verified. Shows progress on a terminal; --json
prints what was copied (records, tombstones, bytes, blobs).

By default the backup holds NO secret: not the group key, not the API token,
and not this node's key (removed from the copy), so it can be kept on less
trusted storage and can never start as a second copy of this node. Restoring
it gives a node with a new identity, which then needs `shoal join` (or
--secret-file) to rejoin the group. --include-secrets also copies the node
key and DIR/group.key: that backup is as secret as the group key itself.

Examples:
  shoal backup /mnt/usb/shoal-$(date +%F)
  shoal --json backup /srv/backups/shoal-nightly | jq .records")]
    Backup(BackupArgs),

    /// Make a new data directory from a backup, as a new node that catches up from peers
    #[command(after_help = "\
Restores SRC into the data directory (--data / $SHOAL_DATA), which must not
exist or be empty. The backup is checked first (its file digest, every page
and record, every blob re-hashed); a damaged backup exits with code 3 and
nothing is restored.

The restored node takes a NEW identity: a new node key, so a new peer id and
site id. It keeps every record with its clocks, the sharing rules, the peers
list and its cursors about its peers; its own writes carry the new site id,
so they can never collide with the old node's, and peers sync with it as a
new peer (from the start of its log). Rules other nodes set for the old peer
id do not apply to the new one. Two nodes with one identity would make
replicas diverge, so --same-identity keeps the old key only together with
--old-machine-is-gone (your statement that the old machine will never run its
data again) and a backup made with --include-secrets.

Examples:
  shoal --data ~/shoal-restored restore /mnt/usb/shoal-2026-12-01
  shoal --data /srv/shoal restore /mnt/usb/shoal-full --same-identity --old-machine-is-gone")]
    Restore(RestoreArgs),

    /// Install or remove a systemd unit that runs `shoal serve` for this data directory
    #[command(after_help = "\
Examples:
  shoal service install --print
  shoal service install && systemctl --user enable --now shoal
  shoal service uninstall")]
    Service(ServiceArgs),

    /// Show three replicas writing concurrently and converging, then their dashboard
    #[command(after_help = "\
Starts three replicas (laptop, desktop, server) in this process, each with its
own database and its own node on loopback, sharing a generated group secret.
They write while disconnected -- conflicting edits to one record, different
tags added to one map field -- then connect in a line (laptop-desktop-server),
converge, race a delete against an edit while connected, and print what each
holds and a digest of every field version and clock. Exits non-zero if the
replicas do not converge within 30 s. Then it serves the laptop's web
dashboard (and HTTP API) and prints its URL, token included; the server
touches one record every 3 s so changes arrive live. Ctrl-C stops everything
cleanly. Ignores --data; uses a temporary directory unless --dir is given.
mDNS stays off; nothing listens beyond loopback.

Examples:
  shoal demo
  shoal demo --http 127.0.0.1:4041     # a fixed dashboard port
  shoal demo --dir /tmp/shoal-demo     # keep the three data directories to inspect")]
    Demo(DemoArgs),
}
