//! One deterministic test per rotation style: the tailer is polled by the
//! test (the clock is passed in), never by a timer, and every test asserts
//! the exact lines read and the rotations counted.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use mta_exporter::framing::FramedLine;
use mta_exporter::source::file::{FileTailer, PollReport, RotationKind, StartAt, TailOptions, Target};

/// A tailer and a fake clock.
struct Harness {
    tailer: FileTailer,
    t0: Instant,
}

impl Harness {
    fn new(target: &Path, start: StartAt) -> Harness {
        let mut options = TailOptions::new(start, 4096);
        options.rotate_wait = Duration::from_secs(5);
        options.rescan_interval = Duration::from_secs(1);
        Harness { tailer: FileTailer::new(Target::new(target).expect("target"), options), t0: Instant::now() }
    }

    /// Polls as if `secs` seconds had passed since the start.
    fn poll_at(&mut self, secs: u64) -> (Vec<String>, PollReport) {
        let mut out = Vec::new();
        let report = self.tailer.poll(self.t0 + Duration::from_secs(secs), &mut |l: FramedLine<'_>| {
            out.push(String::from_utf8_lossy(l.bytes).into_owned())
        });
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        (out, report)
    }
}

fn append(path: &Path, text: &str) {
    OpenOptions::new().create(true).append(true).open(path).expect("open").write_all(text.as_bytes()).expect("write");
}

/// A writer that keeps its descriptor, like syslogd or Postfix's maillog_file.
struct Writer(File);

impl Writer {
    fn open(path: &Path) -> Writer {
        Writer(OpenOptions::new().create(true).append(true).open(path).expect("open"))
    }
    fn write(&mut self, text: &str) {
        self.0.write_all(text.as_bytes()).expect("write");
    }
}

fn kinds(report: &PollReport) -> Vec<RotationKind> {
    report.rotations.iter().map(|r| r.kind).collect()
}

#[test]
fn rename_and_create_with_delaycompress_drains_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("a1\na2\n");
    assert_eq!(h.poll_at(0).0, ["a1", "a2"]);
    // logrotate renames; the writer has not reopened yet and keeps writing
    // to the renamed file (delaycompress leaves it uncompressed).
    writer.write("a3\n");
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    writer.write("a4\n");
    append(&log, "b1\n"); // another process already writes to the new file
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["a3", "a4", "b1"]);
    assert_eq!(kinds(&report), [RotationKind::Rename]);
    assert_eq!(report.open_files, 2, "the rotated file is still open");
    writer.write("a5\nhalf");
    assert_eq!(h.poll_at(3).0, ["a5"]);
    // Still within rotate_wait of the last data: nothing is let go.
    assert_eq!(h.poll_at(7).1.open_files, 2);
    // Idle for rotate_wait: let go, and its last line goes out unfinished.
    let (lines, report) = h.poll_at(9);
    assert_eq!(lines, ["half"]);
    assert_eq!(report.open_files, 1);
    // Now the writer reopens (postrotate HUP); nothing more from the old file.
    writer.write(" never read\n");
    let mut writer = Writer::open(&log);
    writer.write("b2\n");
    let (lines, report) = h.poll_at(10);
    assert_eq!(lines, ["b2"]);
    assert!(report.rotations.is_empty());
}

#[test]
fn copytruncate_reads_the_unread_part_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("l1\nl2\n");
    assert_eq!(h.poll_at(0).0, ["l1", "l2"]);
    // Written after our last read, before the copy: only the copy has them.
    writer.write("l3\nl4\npart");
    fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
    File::options().write(true).open(&log).unwrap().set_len(0).unwrap();
    writer.write("ial\nl5\n");
    let (lines, report) = h.poll_at(1);
    // The partial line is finished from the copy; the live file's "ial" is
    // the rest of a line that copytruncate split: it counts as a line.
    assert_eq!(lines, ["l3", "l4", "part", "ial", "l5"]);
    assert_eq!(kinds(&report), [RotationKind::Copytruncate]);
    assert_eq!(report.rotations[0].recovered, 10);
}

#[test]
fn copytruncate_race_lines_between_copy_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("l1\n");
    assert_eq!(h.poll_at(0).0, ["l1"]);
    fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
    // Appended between copy and truncate, and read before the truncate.
    writer.write("race1\n");
    assert_eq!(h.poll_at(1).0, ["race1"]);
    // Appended between copy and truncate and NOT read before it: logrotate
    // destroys it (it is in neither file); nothing can count it.
    writer.write("lost-by-logrotate\n");
    File::options().write(true).open(&log).unwrap().set_len(0).unwrap();
    writer.write("l2\n");
    let (lines, report) = h.poll_at(2);
    assert_eq!(lines, ["l2"]);
    // The copy is shorter than what we had read: not our copy to read from.
    assert_eq!(kinds(&report), [RotationKind::Truncate]);
    assert!(!fs::read_to_string(dir.path().join("mail.log.1")).unwrap().contains("lost-by-logrotate"));
}

#[test]
fn repeated_truncation_even_when_the_file_grew_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("gen1 line\n");
    assert_eq!(h.poll_at(0).0, ["gen1 line"]);
    for generation in 2..6 {
        File::options().write(true).open(&log).unwrap().set_len(0).unwrap();
        // Longer than what was read: only the first bytes tell it changed.
        writer.write(&format!("gen{generation} first line\ngen{generation} second line\n"));
        let (lines, report) = h.poll_at(generation);
        assert_eq!(lines, [format!("gen{generation} first line"), format!("gen{generation} second line")]);
        assert_eq!(kinds(&report), [RotationKind::Truncate], "generation {generation}");
    }
}

#[test]
fn truncation_to_zero_hands_out_the_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "");
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    append(&log, "one\ntwo without newline");
    assert_eq!(h.poll_at(0).0, ["one"]);
    // `: > mail.log`
    File::create(&log).unwrap();
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["two without newline"]);
    assert_eq!(kinds(&report), [RotationKind::Truncate]);
    append(&log, "three\n");
    assert_eq!(h.poll_at(2).0, ["three"]);
}

#[test]
fn delete_and_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("old1\n");
    assert_eq!(h.poll_at(0).0, ["old1"]);
    fs::remove_file(&log).unwrap();
    // The writer still holds the deleted file.
    writer.write("old2\n");
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["old2"]);
    assert_eq!(kinds(&report), [RotationKind::Delete]);
    assert!(report.waiting);
    writer.write("old3\n");
    let mut writer = Writer::open(&log);
    writer.write("new1\n");
    let (mut lines, report) = h.poll_at(2);
    lines.sort();
    assert_eq!(lines, ["new1", "old3"]);
    assert!(!report.waiting && report.rotations.is_empty());
}

#[test]
fn kubernetes_data_symlink_swap() {
    // A volume laid out like a ConfigMap/projected volume: the file is a
    // symlink through `..data`, which is swapped atomically to a new directory.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gen1 = root.join("..2026_11_28_17_35_01.1");
    fs::create_dir(&gen1).unwrap();
    let mut writer = Writer::open(&gen1.join("mail.log"));
    symlink("..2026_11_28_17_35_01.1", root.join("..data")).unwrap();
    symlink("..data/mail.log", root.join("mail.log")).unwrap();
    let mut h = Harness::new(&root.join("mail.log"), StartAt::End);
    h.poll_at(0);
    writer.write("v1 a\n");
    assert_eq!(h.poll_at(0).0, ["v1 a"]);

    let gen2 = root.join("..2026_11_28_17_36_01.2");
    fs::create_dir(&gen2).unwrap();
    append(&gen2.join("mail.log"), "v2 a\n");
    symlink("..2026_11_28_17_36_01.2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    writer.write("v1 b\n");
    fs::remove_dir_all(&gen1).unwrap();
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["v1 b", "v2 a"]);
    assert_eq!(kinds(&report), [RotationKind::Symlink]);
    assert!(h.tailer.watch_dirs().contains(&gen2), "the new target's directory is watched");
}

#[test]
fn kubernetes_container_logs_through_var_log_containers() {
    // /var/log/containers/<pod>_<ns>_<container>-<id>.log -> /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log
    let dir = tempfile::tempdir().unwrap();
    let containers = dir.path().join("containers");
    let pod_dir = dir.path().join("pods/mail_mx-0_1234/postfix");
    fs::create_dir_all(&containers).unwrap();
    fs::create_dir_all(&pod_dir).unwrap();
    let mut writer = Writer::open(&pod_dir.join("0.log"));
    symlink(pod_dir.join("0.log"), containers.join("mx-0_mail_postfix-aaa.log")).unwrap();
    // Another container in the same pod: not matched by the glob.
    let other = dir.path().join("pods/mail_mx-0_1234/exporter");
    fs::create_dir_all(&other).unwrap();
    append(&other.join("0.log"), "not ours\n");
    symlink(other.join("0.log"), containers.join("mx-0_mail_exporter-bbb.log")).unwrap();

    let mut h = Harness::new(&containers.join("*_postfix-*.log"), StartAt::End);
    h.poll_at(0);
    writer.write("c0 line1\n");
    append(&other.join("0.log"), "still not ours\n");
    assert_eq!(h.poll_at(0).0, ["c0 line1"]);
    assert!(h.tailer.watch_dirs().contains(&pod_dir));

    // kubelet rotates the container log: rename, the runtime reopens.
    writer.write("c0 line2\n");
    fs::rename(pod_dir.join("0.log"), pod_dir.join("0.log.20261128-173501")).unwrap();
    let mut writer = Writer::open(&pod_dir.join("0.log"));
    writer.write("c0 line3\n");
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["c0 line2", "c0 line3"]);
    assert_eq!(kinds(&report), [RotationKind::Rename]);

    // The container restarts: a new log file and a new symlink; the old
    // symlink goes away. The new file is read from its start.
    let mut restarted = Writer::open(&pod_dir.join("1.log"));
    restarted.write("c1 line1\n");
    symlink(pod_dir.join("1.log"), containers.join("mx-0_mail_postfix-ccc.log")).unwrap();
    writer.write("c0 last\n");
    fs::remove_file(containers.join("mx-0_mail_postfix-aaa.log")).unwrap();
    let (mut lines, report) = h.poll_at(2);
    lines.sort();
    assert_eq!(lines, ["c0 last", "c1 line1"]);
    assert_eq!(h.tailer.paths(), [containers.join("mx-0_mail_postfix-ccc.log")]);
    assert_eq!(report.rotations.len(), 1);
}

#[test]
fn a_file_that_does_not_exist_yet_and_its_directory_neither() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later/mail.log");
    let mut h = Harness::new(&log, StartAt::End);
    for t in 0..3 {
        let (lines, report) = h.poll_at(t);
        assert!(lines.is_empty() && report.waiting);
    }
    fs::create_dir(dir.path().join("later")).unwrap();
    append(&log, "first\n");
    let (lines, report) = h.poll_at(4);
    assert_eq!(lines, ["first"]);
    assert!(!report.waiting);
}

#[test]
fn globs_pick_up_new_files_and_let_go_of_vanished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    append(&a, "a old\n");
    let mut h = Harness::new(&dir.path().join("*.log"), StartAt::End);
    assert_eq!(h.poll_at(0).0, Vec::<String>::new());
    append(&a, "a1\n");
    let b = dir.path().join("b.log");
    append(&b, "b1\n");
    // Not rescanned before rescan_interval: b is not seen yet.
    assert_eq!(h.poll_at(0).0, ["a1"]);
    let (lines, report) = h.poll_at(1);
    assert_eq!(lines, ["b1"], "a file that appears later is read from its start");
    assert_eq!(report.open_files, 2);
    // A file renamed to another matching name continues where it was.
    append(&a, "a2\n");
    fs::rename(&a, dir.path().join("c.log")).unwrap();
    append(&dir.path().join("c.log"), "a3\n");
    let (lines, report) = h.poll_at(2);
    assert_eq!(lines, ["a2", "a3"]);
    assert_eq!(report.open_files, 2);
    // Vanished for good: let go after rotate_wait.
    fs::remove_file(&b).unwrap();
    h.poll_at(3);
    assert_eq!(h.poll_at(20).1.open_files, 1);
    assert_eq!(h.tailer.paths(), [dir.path().join("c.log")]);
}

#[test]
fn a_named_pipe_is_read_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("mail.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut h = Harness::new(&fifo, StartAt::End);
    // Opening does not block although no writer is there.
    let (lines, report) = h.poll_at(0);
    assert!(lines.is_empty() && !report.waiting);
    let mut writer = OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(b"p1\np2\npart").unwrap();
    assert_eq!(h.poll_at(1).0, ["p1", "p2"]);
    writer.write_all(b"ial\n").unwrap();
    drop(writer);
    assert_eq!(h.poll_at(2).0, ["partial"]);
    // A new writer after the first one left.
    let mut writer = OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(b"p3\n").unwrap();
    let (lines, report) = h.poll_at(3);
    assert_eq!(lines, ["p3"]);
    assert!(report.rotations.is_empty());
    assert!(h.tailer.checkpoints().is_empty(), "a pipe has no offsets to save");
}

fn restart(h: Harness, target: &Path) -> Harness {
    let checkpoints = h.tailer.checkpoints();
    drop(h);
    let options = TailOptions::new(StartAt::End, 4096);
    Harness {
        tailer: FileTailer::new(Target::new(target).unwrap(), options).with_checkpoints(checkpoints, true),
        t0: Instant::now(),
    }
}

#[test]
fn a_restart_continues_exactly_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("r1\nr2\nhalf");
    assert_eq!(h.poll_at(0).0, ["r1", "r2"]);
    let h = restart(h, &log);
    let mut h = h;
    writer.write(" line\nr3\n");
    assert_eq!(h.poll_at(0).0, ["half line", "r3"]);
}

#[test]
fn a_file_replaced_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("before1\n");
    assert_eq!(h.poll_at(0).0, ["before1"]);
    let checkpoints = h.tailer.checkpoints();
    drop(h);
    // While stopped: more lines, a rename rotation, more lines in both.
    writer.write("down1\n");
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    writer.write("down2\n");
    let mut writer = Writer::open(&log);
    writer.write("new1\n");
    let mut h = Harness {
        tailer: FileTailer::new(Target::new(&log).unwrap(), TailOptions::new(StartAt::End, 4096))
            .with_checkpoints(checkpoints, true),
        t0: Instant::now(),
    };
    let (mut lines, report) = h.poll_at(0);
    lines.sort();
    assert_eq!(lines, ["down1", "down2", "new1"]);
    assert_eq!(kinds(&report), [RotationKind::Rename]);
    writer.write("new2\n");
    assert_eq!(h.poll_at(1).0, ["new2"]);
}

#[test]
fn copytruncate_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut writer = Writer::open(&log);
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    writer.write("seen\n");
    assert_eq!(h.poll_at(0).0, ["seen"]);
    let checkpoints = h.tailer.checkpoints();
    drop(h);
    writer.write("unseen\n");
    fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
    File::options().write(true).open(&log).unwrap().set_len(0).unwrap();
    writer.write("after the truncation, a longer first line\n");
    let mut h = Harness {
        tailer: FileTailer::new(Target::new(&log).unwrap(), TailOptions::new(StartAt::End, 4096))
            .with_checkpoints(checkpoints, true),
        t0: Instant::now(),
    };
    let (lines, report) = h.poll_at(0);
    assert_eq!(lines, ["unseen", "after the truncation, a longer first line"]);
    assert_eq!(kinds(&report), [RotationKind::Copytruncate]);
}

#[test]
fn a_rotated_file_gone_while_stopped_is_reported_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "");
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    append(&log, "x\n");
    h.poll_at(0);
    let checkpoints = h.tailer.checkpoints();
    drop(h);
    fs::remove_file(&log).unwrap();
    append(&log, "fresh\n");
    let mut h = Harness {
        tailer: FileTailer::new(Target::new(&log).unwrap(), TailOptions::new(StartAt::End, 4096))
            .with_checkpoints(checkpoints, true),
        t0: Instant::now(),
    };
    let (lines, report) = h.poll_at(0);
    assert_eq!(lines, ["fresh"]);
    // The inode may have been recycled for the new file: either way the old
    // content is gone, and the new file is read whole.
    assert_eq!(report.rotations.len(), 1);
}

#[test]
fn an_older_file_with_the_same_content_is_not_a_copy() {
    // Identical lines everywhere: only the copy's age tells it apart.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "");
    let mut h = Harness::new(&log, StartAt::End);
    h.poll_at(0);
    append(&log, &"same line\n".repeat(100));
    assert_eq!(h.poll_at(0).0.len(), 100);
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    append(&dir.path().join("mail.log.1"), &"other\n".repeat(10));
    append(&log, &"same line\n".repeat(50));
    let (lines, _) = h.poll_at(1);
    assert_eq!(lines.len(), 60);
    h.poll_at(2);
    File::create(&log).unwrap();
    append(&log, "after\n");
    let (lines, report) = h.poll_at(3);
    assert_eq!(lines, ["after"]);
    assert_eq!(kinds(&report), [RotationKind::Truncate]);
}
