//! FILE_CHECK (check_file.c with trackers/track_file.c): the value of a `track_file`, re-read
//! whenever it may have changed (inotify on its directory, [`crate::track::file::watch`]), not
//! in rounds. Without `weight` (or `weight 0`) a non-zero value is down (zero with `reverse`);
//! with `weight W`, value × W (× −1 with `reverse`) is added to the real server's weight, and
//! only the lowest value (i32::MIN, keepalived's IPVS_WEIGHT_FAULT) is down.

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc::{self, UnboundedSender};

use super::Context;
use crate::config::lvs::FileCheck;
use crate::lvs::{CheckEvent, CheckId, Verdict};

/// Sends the file's verdict at start and whenever it changes, until `tx` closes.
pub(super) async fn run(
    id: CheckId,
    check: FileCheck,
    context: Context,
    tx: UnboundedSender<CheckEvent>,
) {
    let send = |verdict: Verdict| {
        tx.send(CheckEvent {
            id,
            verdict,
            latency: None,
            at: Instant::now(),
        })
        .is_ok()
    };
    let Some(path) = context.track_file else {
        if send(Verdict::Down(format!(
            "FILE_CHECK: no track_file {}",
            check.track_file
        ))) {
            tx.closed().await;
        }
        return;
    };
    let (changed_tx, mut changed) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(crate::track::file::watch(vec![path.clone()], changed_tx));
    let mut last = None;
    loop {
        let verdict = verdict(
            read(path.clone()).await,
            check.weight,
            context.real_weight,
            &path,
        );
        if last.as_ref() != Some(&verdict) {
            last = Some(verdict.clone());
            if !send(verdict) {
                break;
            }
        }
        tokio::select! {
            c = changed.recv() => if c.is_none() { break },
            () = tx.closed() => break,
        }
    }
    watcher.abort();
}

/// The file's value as keepalived reads it (unreadable counts as 0, said once a read).
async fn read(path: PathBuf) -> i64 {
    let shown = path.clone();
    match tokio::task::spawn_blocking(move || crate::track::file::read_value(&path)).await {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => {
            tracing::warn!("FILE_CHECK: {}: {why}; counted as 0", shown.display());
            0
        }
        Err(_) => 0,
    }
}

/// keepalived's `process_update_checker_track_file_status`.
fn verdict(
    value: i64,
    weight: Option<(i32, bool)>,
    real_weight: u32,
    path: &std::path::Path,
) -> Verdict {
    let fault = || {
        Verdict::Down(format!(
            "tracked file {} now FAULT state (value {value})",
            path.display()
        ))
    };
    match weight {
        None | Some((0, _)) => {
            let reverse = weight.is_some_and(|(_, r)| r);
            if (value != 0) != reverse {
                fault()
            } else {
                Verdict::Up
            }
        }
        Some((w, reverse)) => {
            let multiplier: i64 = if reverse { -1 } else { 1 };
            let status = value
                .saturating_mul(i64::from(w))
                .saturating_mul(multiplier);
            let status = status.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            if status == i64::from(i32::MIN) {
                fault()
            } else if status == 0 {
                Verdict::Up
            } else {
                let effective = (i64::from(real_weight) + status).clamp(0, i64::from(i32::MAX));
                Verdict::UpWeight(effective as u32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    #[test]
    fn values_become_keepalived_s_states_and_weights() {
        let p = Path::new("/f");
        assert_eq!(verdict(0, None, 5, p), Verdict::Up);
        assert!(matches!(verdict(3, None, 5, p), Verdict::Down(w) if w.contains("FAULT")));
        assert!(matches!(
            verdict(0, Some((0, true)), 5, p),
            Verdict::Down(_)
        ));
        assert_eq!(verdict(1, Some((0, true)), 5, p), Verdict::Up);
        assert_eq!(verdict(2, Some((10, false)), 5, p), Verdict::UpWeight(25));
        assert_eq!(verdict(2, Some((10, true)), 50, p), Verdict::UpWeight(30));
        // Below zero the weight is 0 (the server takes no new flows), not down.
        assert_eq!(verdict(9, Some((10, true)), 5, p), Verdict::UpWeight(0));
        assert!(matches!(
            verdict(i64::MAX, Some((10, true)), 5, p),
            Verdict::Down(_)
        ));
    }

    #[tokio::test]
    async fn a_change_of_the_file_is_sent_at_once() {
        let dir = std::env::temp_dir().join(format!("ha-filecheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rs1");
        std::fs::write(&path, "0\n").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = CheckId {
            service: 0,
            real: 1,
            checker: 2,
        };
        let check = FileCheck {
            track_file: "rs1".into(),
            weight: None,
        };
        let context = Context {
            real_weight: 1,
            run_as: Ok(None),
            track_file: Some(path.clone()),
        };
        let task = tokio::spawn(run(id, check, context, tx));
        let next = async |rx: &mut mpsc::UnboundedReceiver<CheckEvent>| {
            tokio::time::timeout(Duration::from_secs(3), rx.recv())
                .await
                .unwrap()
                .unwrap()
        };
        let e = next(&mut rx).await;
        assert_eq!((e.id, e.verdict), (id, Verdict::Up));
        std::fs::write(&path, "1\n").unwrap();
        assert!(matches!(next(&mut rx).await.verdict, Verdict::Down(_)));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(next(&mut rx).await.verdict, Verdict::Up);
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
