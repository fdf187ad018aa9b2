//! The bench's own limit on open files: a rehearsal holds a connection at
//! each end for every request in flight (the crowd's and, in-process, the
//! gateway's and the site's), thousands of them, and a distribution's
//! default soft limit (1,024) is far below that.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// What the bench asks for when it may raise the hard limit too (root, or
/// `CAP_SYS_RESOURCE`): Linux's default `fs.nr_open`.
pub const WANTED: u64 = 1 << 20;

/// Raises the soft limit on open files to [`WANTED`], or to the hard limit
/// when the hard limit cannot be raised. Returns the soft limit now in
/// force (`None`: unlimited).
pub fn raise() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    // `None`: unlimited already.
    let soft = before.current?;
    if soft >= WANTED {
        return Some(soft);
    }
    let wanted = Rlimit {
        current: Some(WANTED),
        maximum: Some(before.maximum.map_or(WANTED, |hard| hard.max(WANTED))),
    };
    if setrlimit(Resource::Nofile, wanted).is_ok() {
        return Some(WANTED);
    }
    // Not allowed to raise the hard limit: up to it.
    let Some(hard) = before.maximum else {
        return Some(soft);
    };
    let within = Rlimit {
        current: Some(hard),
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, within) {
        Ok(()) => Some(hard),
        Err(_) => Some(soft),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_least_where_it_was_and_is_what_is_reported() {
        let before = getrlimit(Resource::Nofile).current;
        let reported = raise();
        let after = getrlimit(Resource::Nofile).current;
        assert_eq!(reported, after);
        if let (Some(before), Some(after)) = (before, after) {
            assert!(after >= before, "{after} < {before}");
        }
        // A second call changes nothing.
        assert_eq!(raise(), after);
    }
}
