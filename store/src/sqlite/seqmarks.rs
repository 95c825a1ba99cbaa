//! Each room's highest seq, kept outside `natter.db` too (`natter.seqs` beside it), so that a
//! restored backup does not give out again the seqs used after it was made (issue 16: "a room's
//! seqs never restart"). Clients that saw those seqs would otherwise take the new events that
//! reuse them for ones they had seen, and IRC clients would take their msgids (`lobby/1050`) for
//! the old lines': new lines silently lost to them.
//!
//! After each commit the writer appends one line per room written to (`<seq> <room>`); the file
//! is rewritten compactly from the rooms' rows at open and when it grows past
//! [`MAX_SEQ_MARKS_BYTES`]. At open, a room whose mark is above what `natter.db` holds (a backup
//! put back) has its seq floor raised to the mark (the same floor [`Write::SeqsUsed`] raises):
//! its seqs go on after the last one given out, and what was lost shows as missing seqs. A backup
//! copies `natter.db` only, so the marks of the store that was running survive a restore; a
//! mark file that is lost or damaged costs nothing but this protection. Writes are not synced:
//! a crash of the process loses nothing written (the OS has it), a power cut may lose the last
//! lines, as it may lose the last commits with `synchronous = NORMAL`.
//!
//! [`Write::SeqsUsed`]: crate::Write::SeqsUsed

use natter_core::{RoomName, Seq};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The marks file in the data directory.
pub const SEQS_FILE: &str = "natter.seqs";

/// The marks file is rewritten (one line per room) once appends made it this large.
pub const MAX_SEQ_MARKS_BYTES: u64 = 4 * 1024 * 1024;

/// Refuses a database file `db` of no bytes, or none at all, beside a marks file in `dir` that
/// holds a mark: SQLite takes an empty or missing file for a new database, and the store would
/// be made again, empty, where rooms had lines (a copy cut short by a full disk, a file emptied
/// or deleted by mistake, a restore that left the copy elsewhere). Without marks (nothing was
/// ever stored), or with a write-ahead log beside it, it is SQLite's to read. A mark is what
/// [`SeqMarks::open`] reads as one: a torn line, or the junk a power cut can leave in a file
/// written without a sync, is none (it protects nothing, and the operator was told to remove it).
pub(crate) fn refuse_emptied(dir: &Path, db: &Path) -> Result<(), crate::OpenError> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let missing = match std::fs::metadata(db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Ok(m) if m.is_file() && m.len() == 0 => false,
        // A file with pages (SQLite reads it), or something SQLite will say it cannot open.
        _ => return Ok(()),
    };
    let log = std::fs::metadata(Path::new(&wal))
        .ok()
        .filter(|m| m.is_file())
        .is_some_and(|m| m.len() > 0);
    if log {
        return Ok(());
    }
    if !holds_marks(dir) {
        return Ok(());
    }
    if missing {
        return Err(crate::OpenError::Missing {
            path: db.to_path_buf(),
            seqs: dir.join(SEQS_FILE),
        });
    }
    Err(crate::OpenError::Corrupt {
        path: db.to_path_buf(),
        detail: format!(
            "the file is empty, but {SEQS_FILE} beside it holds the seqs its rooms gave out: it was emptied or cut short (a copy onto a full disk?); put a backup in its place, or remove {SEQS_FILE} to start a new, empty store"
        ),
    })
}

/// Whether the marks file in `dir` holds a mark, a room that gave out a seq, as the store's
/// open reads marks: one of a torn line or junk only (a power cut), or none, holds none.
pub fn holds_marks(dir: &Path) -> bool {
    read_marks(&dir.join(SEQS_FILE))
        .values()
        .any(|seq| *seq > 0)
}

/// The open marks file.
pub(crate) struct SeqMarks {
    path: PathBuf,
    /// `None` after a failed write: the protection is off until the next open (said once).
    file: Option<File>,
    bytes: u64,
}

impl SeqMarks {
    /// Reads the marks beside the store `conn` (open, migrated), raises the seq floor of every
    /// room whose mark is above what the store holds, and starts the file anew from the store.
    pub(crate) fn open(dir: &Path, conn: &Connection) -> rusqlite::Result<SeqMarks> {
        let path = dir.join(SEQS_FILE);
        let marks = read_marks(&path);
        let held = room_seqs(conn)?;
        let mut raised = 0usize;
        for (room, mark) in &marks {
            let have = held.get(room).copied().unwrap_or(0);
            if *mark > have {
                raised += 1;
                conn.prepare_cached(
                    "INSERT INTO rooms (name, topic, last_seq) VALUES (?1, NULL, ?2)
                     ON CONFLICT (name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                )?
                .execute(params![room, i64::try_from(*mark).unwrap_or(i64::MAX)])?;
                info!(%room, stored = have, given_out = mark, "seq marks: room behind its marks");
            }
        }
        if raised > 0 {
            warn!(
                rooms = raised,
                "store: natter.db holds fewer events than were given out (a backup restored?): \
                 those rooms' seqs go on after the last one given out, and what was lost shows \
                 as missed"
            );
        }
        let mut marks = SeqMarks {
            path,
            file: None,
            bytes: 0,
        };
        marks.rewrite(conn);
        Ok(marks)
    }

    /// Notes the highest seqs just committed, one per room.
    pub(crate) fn committed<'a>(&mut self, seqs: impl IntoIterator<Item = (&'a RoomName, Seq)>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut lines = String::new();
        for (room, seq) in seqs {
            lines.push_str(&format!("{} {}\n", seq.0, room.as_str()));
        }
        if lines.is_empty() {
            return;
        }
        match file.write_all(lines.as_bytes()) {
            Ok(()) => self.bytes += lines.len() as u64,
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "seq marks: not written; a restored backup may give out seqs again");
                self.file = None;
            }
        }
    }

    /// Whether the file has grown enough to be rewritten.
    pub(crate) fn due(&self) -> bool {
        self.bytes > MAX_SEQ_MARKS_BYTES
    }

    /// Writes the file anew, one line per room of the store (a temporary file renamed over it,
    /// so a crash leaves the old file or the new one), and appends to it from then on.
    pub(crate) fn rewrite(&mut self, conn: &Connection) {
        self.file = None;
        let done = room_seqs(conn)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|seqs| {
                let tmp = self.path.with_extension("seqs.tmp");
                let mut text = String::new();
                for (room, seq) in seqs.iter().filter(|(_, s)| **s > 0) {
                    text.push_str(&format!("{seq} {room}\n"));
                }
                // The server's user's only, as the store's other files.
                let mut create = OpenOptions::new();
                create.create(true).truncate(true).write(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
                let written = create.open(&tmp).and_then(|mut f| {
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &self.path)
                });
                if written.is_err() {
                    // Not left behind (a full disk kept an empty one after every start).
                    let _ = std::fs::remove_file(&tmp);
                }
                written?;
                let file = OpenOptions::new().append(true).open(&self.path)?;
                Ok((file, text.len() as u64))
            });
        match done {
            Ok((file, bytes)) => {
                self.file = Some(file);
                self.bytes = bytes;
            }
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "seq marks: not written; a restored backup may give out seqs again");
            }
        }
    }
}

/// The highest mark of each room in the file at `path` (none when it is missing; a line that
/// does not read, UTF-8 or not, is skipped: a torn last line after a power cut).
fn read_marks(path: &Path) -> HashMap<String, u64> {
    let mut marks: HashMap<String, u64> = HashMap::new();
    let Ok(file) = File::open(path) else {
        return marks;
    };
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else {
            break;
        };
        let Ok(line) = String::from_utf8(line) else {
            continue;
        };
        // As `BufRead::lines` read it.
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let Some((seq, room)) = line.split_once(' ') else {
            continue;
        };
        let (Ok(seq), Ok(room)) = (seq.parse::<u64>(), RoomName::new(room)) else {
            continue;
        };
        let m = marks.entry(room.as_str().to_owned()).or_default();
        *m = (*m).max(seq);
    }
    marks
}

/// Every room of the store with its last seq (as the store's load reads it).
fn room_seqs(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut st = conn.prepare(super::read::LOAD_ROOMS_SQL)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(3)?)))?;
    let mut seqs = HashMap::new();
    for row in rows {
        let (room, seq) = row?;
        seqs.insert(room, u64::try_from(seq).unwrap_or(0));
    }
    Ok(seqs)
}
