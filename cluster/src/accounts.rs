//! Accounts in the cluster: one KV entry per account (`<prefix>_accounts`, keyed by the hex of
//! its folded name) holding all of it: the password's argon2id hash, its rooms, read markers
//! and device keys (hashes only). A registration is a KV `create` (of two nodes registering one
//! name at once, exactly one succeeds); every other change is read, applied
//! ([`LoadedAccount::apply`], the same rules as the SQLite store) and written back with a
//! compare-and-swap on the revision read, again until no other node wrote in between. Every
//! node watches the bucket and hands each account as it is after a change to its hub; a node
//! starting reads every account before it serves anyone.

use crate::names::nick_key;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use natter_core::accounts::PasswordHash;
use natter_core::persist::{AccountRecord, KeyRecord, LoadedAccount, TokenHash, Write};
use natter_core::{Millis, Nick, RoomName, Seq};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::node::ClusterIn;
use crate::{ClusterConfig, ClusterError};

/// Tries of one account write against other nodes' writes to the same account before it is
/// given up (logged): each lost race means another node wrote in between, so this many in a
/// row means the account is written to without pause.
const MAX_WRITE_TRIES: usize = 16;
/// How long an account write is tried again while NATS does not answer (then it is given up,
/// logged, and the node goes back to what the cluster holds).
const WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// The largest account entry read (bincode's limit before it allocates): far above what an
/// account holds (32 keys, a marker per room).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// What the hub asked about accounts, done in order by [`keep_accounts`].
#[derive(Debug)]
pub(crate) enum AccountOp {
    /// Make the account unless one of that name exists.
    Create { id: u64, record: AccountRecord },
    /// Change it, if it is still the registration `registered` (any, if `None`).
    Write {
        account: Nick,
        registered: Option<Millis>,
        write: Write,
    },
}

/// An account as the bucket keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAccount {
    name: Nick,
    /// The argon2id hash as a PHC string.
    hash: String,
    created: Millis,
    rooms: Vec<RoomName>,
    read: Vec<(RoomName, Seq)>,
    /// (id, SHA-256 of the secret, issued).
    keys: Vec<(u64, [u8; 32], Millis)>,
    /// The node that wrote it last.
    node: String,
}

pub(crate) fn encode_account(a: &LoadedAccount, node: &str) -> Result<Bytes, String> {
    let stored = StoredAccount {
        name: a.record.name.clone(),
        hash: a.record.hash.0.clone(),
        created: a.record.created,
        rooms: a.rooms.clone(),
        read: a.read.clone(),
        keys: a.keys.iter().map(|k| (k.id, k.hash.0, k.created)).collect(),
        node: node.to_owned(),
    };
    crate::kept::encode_entry(&stored)
}

pub(crate) fn decode_account(value: &[u8]) -> Result<LoadedAccount, String> {
    let s: StoredAccount = crate::kept::decode_entry::<_, MAX_ENTRY_BYTES>(value, "an account")?;
    Ok(LoadedAccount {
        record: AccountRecord {
            name: s.name,
            hash: PasswordHash(s.hash),
            created: s.created,
        },
        rooms: s.rooms,
        read: s.read,
        keys: s
            .keys
            .into_iter()
            .map(|(id, hash, created)| KeyRecord {
                id,
                hash: TokenHash(hash),
                created,
                // A key's last use is not kept in a cluster (`/devices` is refused there).
                used: None,
            })
            .collect(),
        // Not kept in a cluster: a message to an account with nothing connected is refused
        // there (natter-core's `Hub::hold_direct`).
        held: Vec::new(),
    })
}

/// The folded account name a key holds (keys are its hex).
fn folded_of_key(key: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..key.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(key.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Does the hub's account asks in order (`held`: the direct messages kept for accounts, which
/// go with a removed account), each try bounded by `wait`; answers creates at once
/// (a registrant may try again), and tries a write again while NATS does not answer, for up to
/// [`WRITE_PATIENCE`].
pub(crate) async fn keep_accounts(
    accounts: kv::Store,
    held: kv::Store,
    me: String,
    wait: Duration,
    mut rx: mpsc::UnboundedReceiver<AccountOp>,
    tx: mpsc::UnboundedSender<ClusterIn>,
) {
    let late = |_| "no answer in time".to_owned();
    while let Some(op) = rx.recv().await {
        match op {
            AccountOp::Create { id, record } => {
                let result = tokio::time::timeout(wait, create(&accounts, &me, record))
                    .await
                    .map_err(late)
                    .and_then(|r| r);
                if let Err(e) = &result {
                    warn!(error = %e, "account not created");
                }
                let result = result.map_err(|e| format!("the cluster is unavailable ({e})"));
                if tx.send(ClusterIn::AccountCreated { id, result }).is_err() {
                    return;
                }
            }
            AccountOp::Write {
                account,
                registered,
                write,
            } => {
                let label = ("account change", &account);
                let written = crate::kept::patiently(wait, WRITE_PATIENCE, label, || {
                    apply(&accounts, &held, &me, (&account, registered), &write)
                });
                let revision = written.await.unwrap_or_else(|e| {
                    warn!(%account, error = %e, "account change not written; given up");
                    None
                });
                let account = account.folded();
                if tx
                    .send(ClusterIn::AccountWritten { account, revision })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Makes `record`'s account: true if made, false if an account of that name exists.
pub(crate) async fn create(
    accounts: &kv::Store,
    me: &str,
    record: AccountRecord,
) -> Result<bool, String> {
    let key = nick_key(&record.name);
    let account = LoadedAccount {
        record,
        rooms: Vec::new(),
        read: Vec::new(),
        keys: Vec::new(),
        held: Vec::new(),
    };
    let value = encode_account(&account, me)?;
    match accounts.create(&key, value).await {
        Ok(_) => {
            info!(account = %account.record.name, "account registered in the cluster");
            Ok(true)
        }
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Applies `write` to `account`'s entry: read, change, compare-and-swap on the revision read,
/// again if another node wrote in between. The entry's revision after it; `None` if the
/// account is not there (left alone), is another registration of the name than `registered`
/// (the operator removed it and added it again while the write was on its way: left alone;
/// any registration if `None`), or was removed. A removal first forgets the direct messages
/// kept for the account (in `held`), as one node's store drops them with it: the next account
/// of that name is someone else's.
pub(crate) async fn apply(
    accounts: &kv::Store,
    held: &kv::Store,
    me: &str,
    (account, registered): (&Nick, Option<Millis>),
    write: &Write,
) -> Result<Option<u64>, String> {
    let key = nick_key(account);
    let read = || read_registration(accounts, &key, account, registered);
    if matches!(write, Write::DropAccount(_)) {
        if registered.is_some() && read().await?.is_none() {
            return Ok(None);
        }
        crate::held::drop_all(held, account).await?;
    }
    for _ in 0..MAX_WRITE_TRIES {
        let Some((revision, mut a)) = read().await? else {
            return Ok(None);
        };
        if !a.apply(write) {
            match accounts.delete_expect_revision(&key, Some(revision)).await {
                Ok(()) => return Ok(None),
                Err(e) => {
                    debug!(%account, error = %e, "account removal raced; again");
                    continue;
                }
            }
        }
        let value = encode_account(&a, me)?;
        match accounts.update(&key, value, revision).await {
            Ok(revision) => return Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                debug!(%account, "another node wrote the account meanwhile; again");
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{MAX_WRITE_TRIES} tries lost to other writers"))
}

/// `account`'s entry (under `key`) with its revision, if it is the registration `registered`
/// (any, if `None`).
async fn read_registration(
    accounts: &kv::Store,
    key: &str,
    account: &Nick,
    registered: Option<Millis>,
) -> Result<Option<(u64, LoadedAccount)>, String> {
    let entry = accounts.entry(key).await.map_err(|e| e.to_string())?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
        return Ok(None);
    };
    let a = decode_account(&entry.value)?;
    if registered.is_some_and(|r| r != a.record.created) {
        info!(%account, "a write for an earlier registration of the name; left out");
        return Ok(None);
    }
    Ok(Some((entry.revision, a)))
}

/// What an entry of the bucket tells the hub: the account as it is, or its removal.
fn news(entry: &kv::Entry) -> Option<ClusterIn> {
    match entry.operation {
        kv::Operation::Put => match decode_account(&entry.value) {
            Ok(account) => Some(ClusterIn::Account {
                account,
                revision: entry.revision,
            }),
            Err(why) => {
                warn!(key = %entry.key, %why, "account not understood; skipped");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            folded_of_key(&entry.key).map(ClusterIn::AccountDropped)
        }
    }
}

/// Every account the bucket holds with its revision (`stream`: the bucket's stream), and the
/// revision to watch from for what comes after.
pub(crate) async fn load(
    js: &jetstream::Context,
    stream: &str,
    accounts: &kv::Store,
    wait: Duration,
) -> Result<(Vec<(LoadedAccount, u64)>, u64), String> {
    let (entries, from) = crate::kept::read_all(js, stream, accounts, wait, "accounts").await?;
    let all = entries
        .iter()
        .filter_map(|e| match news(e) {
            Some(ClusterIn::Account { account, revision }) => Some((account, revision)),
            _ => None,
        })
        .collect();
    Ok((all, from))
}

/// Hands every change of the bucket from revision `from` on to the hub, in order; after NATS
/// comes back (a new connection) it watches again from the revision after the last one handed
/// over.
pub(crate) async fn watch_accounts(
    accounts: kv::Store,
    from: u64,
    tx: mpsc::UnboundedSender<ClusterIn>,
    links: watch::Receiver<u64>,
) {
    crate::kept::watch_changes(accounts, from, tx, links, "accounts", news).await;
}

/// The cluster's accounts alone, without joining as a node: what the operator's
/// `natter-server account …` commands work on while the nodes run (each node hears a change
/// through its watch, at once).
#[derive(Debug)]
pub struct ClusterAccounts {
    js: jetstream::Context,
    kv: kv::Store,
    /// The direct messages kept for accounts (a removed account's go with it).
    held: kv::Store,
    /// Rooms' settings: an account added or removed here lifts the rights they give its name.
    rooms: kv::Store,
    stream: String,
    rooms_stream: String,
    wait: Duration,
}

impl ClusterAccounts {
    /// Connects to NATS and opens the accounts' bucket (made if missing).
    pub async fn open(cfg: &ClusterConfig) -> Result<ClusterAccounts, ClusterError> {
        let client = crate::nats_url::with_credentials(async_nats::ConnectOptions::new(), cfg)
            .connect(crate::nats_url::bare_all(&cfg.servers).as_slice())
            .await
            .map_err(|source| ClusterError::Connect {
                servers: crate::nats_url::shown_all(&cfg.servers),
                source,
            })?;
        let mut js = jetstream::new(client);
        js.set_timeout(cfg.ack_timeout);
        let kv = crate::node::bucket(&js, cfg, "accounts", Duration::ZERO).await?;
        let held = crate::node::bucket(&js, cfg, "held", Duration::ZERO).await?;
        let rooms = crate::node::bucket(&js, cfg, "rooms", Duration::ZERO).await?;
        Ok(ClusterAccounts {
            js,
            kv,
            held,
            rooms,
            stream: format!("KV_{}_accounts", cfg.prefix),
            rooms_stream: format!("KV_{}_rooms", cfg.prefix),
            wait: 5 * cfg.ack_timeout,
        })
    }

    /// The account called `name` (folded), if there is one.
    pub async fn get(&self, name: &Nick) -> Result<Option<LoadedAccount>, String> {
        let entry = self
            .kv
            .entry(nick_key(name))
            .await
            .map_err(|e| e.to_string())?;
        entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| decode_account(&e.value))
            .transpose()
    }

    /// Every account.
    pub async fn list(&self) -> Result<Vec<LoadedAccount>, String> {
        let (all, _) = load(&self.js, &self.stream, &self.kv, self.wait).await?;
        Ok(all.into_iter().map(|(a, _)| a).collect())
    }

    /// Makes the account `record`: false if one of that name exists. It is given no rights
    /// rooms still give its name (an earlier account's, removed while no node ran to lift
    /// them): they are lifted here, as a node lifts them when the name is registered through
    /// it (`Hub::handle_account_created`), with or without nodes running, and before the
    /// account is made: lifted after, a new holder quick enough to sign in and register a
    /// room before the lift reached it lost the room (until the forty-third session).
    pub async fn create(&self, record: AccountRecord) -> Result<bool, String> {
        if self.get(&record.name).await?.is_some() {
            return Ok(false);
        }
        self.lift_rights(&record.name, record.created).await?;
        create(&self.kv, "operator", record).await
    }

    /// Applies `write` to `account` (merged with the nodes' writes, as theirs are). A removal's
    /// rights in rooms are lifted by the running nodes as they hear of it (one of them says
    /// so in the rooms), and, with every node down, by the name's next registration or
    /// [`ClusterAccounts::create`].
    pub async fn write(&self, account: &Nick, write: &Write) -> Result<(), String> {
        apply(&self.kv, &self.held, "operator", (account, None), write)
            .await
            .map(|_| ())
    }

    /// Lifts the founder, operator and voice rooms give `name`, which an earlier account of
    /// the name left, before the account registered at `created` is made. Members are not
    /// told with an event (no node's log is written): they get the rooms' new settings, as
    /// when no node has the account's user. A room is left alone once another registration
    /// holds the name (the lift carries `created`, [`crate::rooms::apply`]): a node made it
    /// meanwhile, and lifted what it found then; this one's `create` will find it taken.
    async fn lift_rights(&self, name: &Nick, created: Millis) -> Result<(), String> {
        use natter_core::moderation::PolicyEdit;
        let (rooms, _) =
            crate::rooms::load(&self.js, &self.rooms_stream, &self.rooms, self.wait).await?;
        let same = |n: &Nick| n.folded() == name.folded();
        for (room, shared, _) in rooms {
            let p = &shared.policy;
            let held = p.founder.as_ref().is_some_and(same)
                || p.ops.iter().any(same)
                || p.voiced.iter().any(same);
            if held {
                let edit = PolicyEdit::AccountGone {
                    name: name.clone(),
                    registered: Some(created),
                };
                let on = (&self.js, &self.kv);
                crate::rooms::apply(on, &self.rooms, "operator", &room, &edit).await?;
                info!(%room, account = %name, "a room's rights of the name lifted");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_reads_back_as_written_and_its_key_names_it() {
        let name = Nick::new("Alice").unwrap();
        let a = LoadedAccount {
            record: AccountRecord {
                name: name.clone(),
                hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
                created: Millis(7),
            },
            rooms: vec![RoomName::new("#r").unwrap()],
            read: vec![(RoomName::new("#r").unwrap(), Seq(4))],
            keys: vec![KeyRecord {
                id: 9,
                hash: TokenHash([3; 32]),
                created: Millis(8),
                used: None,
            }],
            held: Vec::new(),
        };
        let bytes = encode_account(&a, "node1").unwrap();
        assert_eq!(decode_account(&bytes).unwrap(), a);
        assert!(decode_account(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode_account(&longer).is_err());
        assert_eq!(folded_of_key(&nick_key(&name)).as_deref(), Some("alice"));
        assert_eq!(folded_of_key("zz"), None);
    }
}
