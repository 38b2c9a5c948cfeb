//! Byte-stream sources: standard input (`--log.path -`, for
//! `journalctl -f -o cat | mta_exporter …`) and a command whose standard
//! output is the log (`journalctl -o json --follow`), restarted with
//! exponential backoff when it exits.
//!
//! Each runs on its own thread with a small current-thread runtime, so a
//! stop (shutdown or reconcile) interrupts a read that would block forever.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Context, SourceState};
use crate::framing::LineFramer;

/// First delay before a command that exited is started again; doubled up
/// to [`MAX_BACKOFF`] while it keeps exiting soon after its start.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A command that ran at least this long is considered healthy again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

const READ_CHUNK: usize = 64 * 1024;

fn runtime(ctx: &Context) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(err) => {
            tracing::error!(source = %ctx.status.spec.name, error = %err, "cannot start the source's runtime");
            ctx.status.set(SourceState::Failing);
            None
        }
    }
}

/// How a stream read ended.
enum End {
    Eof,
    Stopped,
    Error(std::io::Error),
}

/// Reads `reader` into the pipeline until it ends or the source stops.
async fn pump(ctx: &mut Context, reader: &mut (impl AsyncRead + Unpin), framer: &mut LineFramer) -> End {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            () = ctx.stop.token.cancelled() => return End::Stopped,
            () = ctx.shutdown.triggered() => return End::Stopped,
        };
        match read {
            Ok(0) => {
                // The input ended: its last line counts even without a newline.
                let pipeline = &mut ctx.pipeline;
                framer.flush(|line| {
                    pipeline.process(line);
                });
                // And a partial container line the decoder still holds.
                pipeline.finish();
                return End::Eof;
            }
            Ok(n) => {
                let pipeline = &mut ctx.pipeline;
                framer.push(&buf[..n], |line| {
                    pipeline.process(line);
                });
                pipeline.add_bytes(n as u64);
                let now = SystemTime::now();
                ctx.health.read_at(now);
                ctx.pipeline.end_batch(now);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return End::Error(e),
        }
    }
}

/// The thread body of the stdin source.
pub(super) fn read_stdin(mut ctx: Context, max_line: usize) {
    let Some(rt) = runtime(&ctx) else { return };
    rt.block_on(async {
        let mut framer = LineFramer::new(max_line);
        let mut stdin = tokio::io::stdin();
        ctx.status.set(SourceState::Open);
        match pump(&mut ctx, &mut stdin, &mut framer).await {
            End::Eof => ctx.status.set(SourceState::Ended),
            End::Stopped => {}
            End::Error(err) => {
                ctx.health.read_error();
                tracing::error!(source = %ctx.status.spec.name, error = %err, "cannot read standard input");
                ctx.status.set(SourceState::Failing);
            }
        }
    });
    // A read of stdin blocked in tokio's blocking pool cannot be cancelled;
    // do not wait for it.
    rt.shutdown_background();
}

/// The thread body of a command source.
pub(super) fn run_command(mut ctx: Context, argv: &[String], max_line: usize) {
    let Some(rt) = runtime(&ctx) else { return };
    rt.block_on(async {
        let name = ctx.status.spec.name.clone();
        let mut backoff = MIN_BACKOFF;
        loop {
            let started = Instant::now();
            let outcome = run_once(&mut ctx, argv, max_line).await;
            match outcome {
                Ok(None) => return,
                Ok(Some(status)) => {
                    tracing::warn!(source = %name, command = %argv.join(" "), %status, "command exited; restarting it");
                }
                Err(err) => {
                    ctx.health.read_error();
                    tracing::error!(source = %name, command = %argv.join(" "), error = %err, "cannot run command; retrying");
                }
            }
            ctx.status.set(SourceState::Failing);
            if started.elapsed() >= HEALTHY_RUN {
                backoff = MIN_BACKOFF;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = ctx.stop.token.cancelled() => return,
                () = ctx.shutdown.triggered() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    rt.shutdown_background();
}

/// Runs the command once. `Ok(None)`: the source was stopped (the child is
/// killed); `Ok(Some(status))`: the command exited by itself.
async fn run_once(
    ctx: &mut Context,
    argv: &[String],
    max_line: usize,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the command is empty"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout =
        child.stdout.take().ok_or_else(|| std::io::Error::other("the command's standard output is not a pipe"))?;
    ctx.status.set(SourceState::Open);
    let mut framer = LineFramer::new(max_line);
    match pump(ctx, &mut stdout, &mut framer).await {
        End::Stopped => {
            let _ = child.kill().await;
            Ok(None)
        }
        End::Eof => child.wait().await.map(Some),
        End::Error(err) => {
            let _ = child.kill().await;
            Err(err)
        }
    }
}
