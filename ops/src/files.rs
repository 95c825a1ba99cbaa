//! The open-file limit. Every connection is a file, and a process started from a shell or a
//! service manager often gets a soft limit of 1,024 open files while its hard limit allows far
//! more: a server left there would refuse connections (`accept` failing with "too many open
//! files") long before its own `max_connections`. [`raise_open_files`] lifts the soft limit to
//! the hard one at start, as Go's runtime and most servers do, and says so; what only the
//! operator can raise (the hard limit) is named with its setting.

use tracing::{info, warn};

/// This process's open-file limits after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit found at start.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the most an unprivileged process may set).
    pub hard: u64,
}

/// Raises the soft limit of open files to the hard limit (on Linux; elsewhere it reports what
/// is there). `need` is how many files the process may hold at its configured limits, `what`
/// names those limits for the log: a `warn` line when the hard limit is below `need`, an `info`
/// line when the soft limit was raised.
pub fn raise_open_files(need: u64, what: &str) -> std::io::Result<OpenFiles> {
    use rlimit::Resource;
    let (before, hard) = Resource::NOFILE.get()?;
    let now = if before < hard {
        rlimit::increase_nofile_limit(hard)?
    } else {
        before
    };
    let files = OpenFiles { before, now, hard };
    if now > before {
        info!(
            from = before,
            to = now,
            "open-file limit raised to the hard limit"
        );
    }
    if now < need {
        warn!(
            limit = now,
            need,
            "the open-file limit is below what {what} needs: connections past it are refused \
             (raise the hard limit: `ulimit -Hn` as root, LimitNOFILE= in a systemd unit, \
             nofile in /etc/security/limits.conf)"
        );
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_soft_limit_is_raised_to_the_hard_limit() {
        use rlimit::Resource;
        let (_, hard) = Resource::NOFILE.get().expect("rlimit");
        // A soft limit as a shell gives (512 leaves this crate's other tests, running beside
        // this one, far more files than they open).
        let low = hard.min(512);
        Resource::NOFILE
            .set(low, hard)
            .expect("lower the soft limit");
        let files = raise_open_files(0, "this test").expect("rlimit");
        assert_eq!(
            files,
            OpenFiles {
                before: low,
                now: hard,
                hard
            }
        );
        assert_eq!(Resource::NOFILE.get().expect("rlimit"), (hard, hard));
    }
}
