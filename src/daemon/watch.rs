//! Watching `feeds.toml` for the supervisor: events about the file (through a symbolic
//! link and a Kubernetes ConfigMap's `..data` swap too), and the [`Snapshot`] that tells
//! one version of the file from another, so a change is applied only once it has settled.

use tokio::sync::mpsc;

/// What identifies a version of the config file: its size, mtime and a hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    len: u64,
    modified: Option<std::time::SystemTime>,
    hash: blake3::Hash,
}

/// The file's bytes with their [`Snapshot`] (`None` when it cannot be read).
pub(super) async fn snapshot(path: &std::path::Path) -> Option<(Snapshot, Vec<u8>)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    let id = Snapshot {
        len: meta.len(),
        modified: meta.modified().ok(),
        hash: blake3::hash(&bytes),
    };
    Some((id, bytes))
}

/// The file a config path leads to when it is a symbolic link (through every link): its
/// folder and name. `None` when it is not a link (or leads nowhere).
fn link_target(path: &std::path::Path) -> Option<(std::path::PathBuf, std::ffi::OsString)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    Some((
        target.parent()?.to_path_buf(),
        target.file_name()?.to_owned(),
    ))
}

/// The task watching the config file; ends with the supervisor (dropping this aborts it).
pub(super) struct FileWatch(tokio::task::JoinHandle<()>);

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the config file's folder (editors replace the file by renaming another over it,
/// which a watch on the file itself would miss) and signals events about the file. When
/// the path is a symbolic link, the folder of the file it leads to is watched too (found
/// again after every event, so a link pointed elsewhere is followed): an edit of the target
/// is a change, and so is a swap of `..data` beside the link (the Kubernetes ConfigMap
/// layout, `feeds.toml -> ..data/feeds.toml`).
pub(super) fn watch_file(
    path: &std::path::Path,
    tx: mpsc::UnboundedSender<()>,
) -> Option<FileWatch> {
    use notify::Watcher;
    let link = path.to_path_buf();
    let name = path.file_name()?.to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let (raw_tx, mut raw) = mpsc::unbounded_channel::<notify::Event>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            let _ = raw_tx.send(event);
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(
            error = %e,
            dir = %dir.display(),
            "cannot watch the config file's folder; reload with SIGHUP"
        );
        return None;
    }
    let own_dir = std::fs::canonicalize(&dir).ok();
    // The target's folder being watched besides `dir`, and the target's name.
    let mut target: Option<(std::path::PathBuf, std::ffi::OsString)> = None;
    let follow =
        move |watcher: &mut notify::RecommendedWatcher,
              target: &mut Option<(std::path::PathBuf, std::ffi::OsString)>| {
            let now = link_target(&link);
            let old_dir = target.as_ref().map(|(d, _)| d.clone());
            let new_dir = now.as_ref().map(|(d, _)| d.clone());
            if old_dir != new_dir {
                if let Some(d) = &old_dir
                    && Some(d) != own_dir.as_ref()
                {
                    let _ = watcher.unwatch(d);
                }
                if let Some(d) = &new_dir
                    && Some(d) != own_dir.as_ref()
                    && let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive)
                {
                    tracing::warn!(
                        error = %e,
                        dir = %d.display(),
                        "cannot watch the folder the config file's link leads to; reload with SIGHUP"
                    );
                }
            }
            *target = now;
        };
    follow(&mut watcher, &mut target);
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = tx.closed() => break,
                event = raw.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
            };
            let target_name = target.as_ref().map(|(_, n)| n.clone());
            let hit = event.paths.iter().any(|p| {
                let file = p.file_name();
                file == Some(&name)
                    || file == Some(std::ffi::OsStr::new("..data"))
                    || (file.is_some() && file == target_name.as_deref())
            });
            // The link may lead elsewhere now (its target or `..data` replaced).
            follow(&mut watcher, &mut target);
            if hit && tx.send(()).is_err() {
                break;
            }
        }
    });
    Some(FileWatch(task))
}
