//! A syslog listener (`--syslog.listen-address`): UDP datagrams and TCP
//! streams, RFC 3164 and RFC 5424 messages, TCP framed by octet counting
//! (`LEN SP MSG`, RFC 6587) or by newlines, decided per frame.
//!
//! Messages are split by `syslog_loose` and the program and message go into
//! the same parse stage as file lines ([`crate::parse::parse_envelope`]).
//!
//! Memory is bounded everywhere: a message longer than `max_message_bytes`
//! is cut (counted in `mta_log_lines_truncated_total`, still parsed), at
//! most `max_connections` TCP connections are served (more are closed and
//! counted), and the queue between the sockets and the parser holds at most
//! `queue_bytes`. When the queue is full a UDP message is dropped and counted
//! (`mta_syslog_messages_dropped_total{reason="overload"}`) and a TCP
//! connection waits (its sender slows down; nothing is lost).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::SystemTime;

use syslog_loose::{ProcId, Variant};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use super::{Context, SourceState};
use crate::envelope::{Envelope, Timestamp};
use crate::framing::{FramedLine, DEFAULT_MAX_LINE};
use crate::metrics::{DropReason, SyslogHandles};
use crate::pipeline::Pipeline;

/// Settings of one syslog listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    pub listen: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    pub max_connections: usize,
    pub max_message_bytes: usize,
    /// Bytes of messages waiting for the parser, at most.
    pub queue_bytes: usize,
}

impl SyslogOptions {
    pub fn new(listen: SocketAddr) -> Self {
        SyslogOptions {
            listen,
            udp: true,
            tcp: true,
            max_connections: 256,
            max_message_bytes: DEFAULT_MAX_LINE,
            queue_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Splits a TCP byte stream into syslog messages (RFC 6587): a frame that
/// starts with a digit is octet-counted (`LEN SP MSG`), any other frame ends
/// at a newline. Pure, so every framing case is tested without sockets.
#[derive(Debug)]
pub struct SyslogFramer {
    max: usize,
    state: FrameState,
    buf: Vec<u8>,
    truncated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameState {
    Start,
    /// Reading the length of an octet-counted frame. The digits are kept
    /// as read: without the space after them they are the start of a
    /// newline-framed message (`007 …` must stay `007`).
    Length {
        value: u64,
        digits: u8,
        text: [u8; 10],
    },
    /// Bytes of an octet-counted frame still to come.
    Octets(u64),
    /// A newline-framed message.
    Line,
}

/// How a connection's stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Clean,
    /// It ended inside an octet-counted frame: that message is dropped.
    Incomplete,
}

impl SyslogFramer {
    pub fn new(max: usize) -> Self {
        SyslogFramer { max: max.max(1), state: FrameState::Start, buf: Vec::new(), truncated: false }
    }

    fn append(&mut self, data: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn emit(&mut self, out: &mut impl FnMut(&[u8], bool)) {
        let mut message = &self.buf[..];
        while let Some(rest) = message.strip_suffix(b"\n").or_else(|| message.strip_suffix(b"\r")) {
            message = rest;
        }
        if !message.is_empty() {
            out(message, self.truncated);
        }
        self.buf.clear();
        self.truncated = false;
        self.state = FrameState::Start;
    }

    /// Feeds bytes; calls `out(message, truncated)` for every complete message.
    pub fn push(&mut self, mut data: &[u8], out: &mut impl FnMut(&[u8], bool)) {
        while let Some(&b) = data.first() {
            match self.state {
                FrameState::Start => match b {
                    b'0'..=b'9' => self.state = FrameState::Length { value: 0, digits: 0, text: [0; 10] },
                    b'\n' | b'\r' | 0 => data = &data[1..],
                    _ => self.state = FrameState::Line,
                },
                FrameState::Length { value, digits, mut text } => {
                    if b.is_ascii_digit() && usize::from(digits) < text.len() {
                        text[usize::from(digits)] = b;
                        self.state =
                            FrameState::Length { value: value * 10 + u64::from(b - b'0'), digits: digits + 1, text };
                        data = &data[1..];
                    } else if b == b' ' {
                        data = &data[1..];
                        self.state = if value == 0 { FrameState::Start } else { FrameState::Octets(value) };
                    } else {
                        // Digits not followed by a space: not a length after
                        // all, but the start of a newline-framed message.
                        self.append(&text[..usize::from(digits)]);
                        self.state = FrameState::Line;
                    }
                }
                FrameState::Octets(remaining) => {
                    let take = (remaining.min(data.len() as u64)) as usize;
                    self.append(&data[..take]);
                    data = &data[take..];
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        self.emit(out);
                    } else {
                        self.state = FrameState::Octets(remaining);
                    }
                }
                FrameState::Line => match memchr::memchr(b'\n', data) {
                    Some(nl) => {
                        self.append(&data[..nl]);
                        data = &data[nl + 1..];
                        self.emit(out);
                    }
                    None => {
                        self.append(data);
                        data = &[];
                    }
                },
            }
        }
    }

    /// The stream ended: a newline-framed message without its newline is
    /// complete; a partial octet-counted frame is not.
    pub fn finish(&mut self, out: &mut impl FnMut(&[u8], bool)) -> Finish {
        let finish = match self.state {
            FrameState::Start => Finish::Clean,
            FrameState::Line => {
                self.emit(out);
                Finish::Clean
            }
            FrameState::Length { .. } | FrameState::Octets(_) => Finish::Incomplete,
        };
        self.buf.clear();
        self.truncated = false;
        self.state = FrameState::Start;
        finish
    }
}

/// One message on its way to the parser.
struct Message {
    bytes: Vec<u8>,
    truncated: bool,
}

/// The bounded queue between the sockets and the parser.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
    space: Arc<Notify>,
    cap: usize,
}

/// What a message costs in the queue (its bytes plus bookkeeping).
fn cost(message: &Message) -> usize {
    message.bytes.len() + 64
}

impl Queue {
    fn try_reserve(&self, cost: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q == 0 || q + cost <= self.cap).then_some(q + cost))
            .is_ok()
    }

    /// For UDP: false (and nothing queued) when the queue is full.
    fn offer(&self, message: Message) -> bool {
        if !self.try_reserve(cost(&message)) {
            return false;
        }
        let _ = self.tx.send(message);
        true
    }

    /// For TCP: waits for room (the sender slows down).
    async fn send(&self, message: Message) {
        let cost = cost(&message);
        loop {
            let room = self.space.notified();
            if self.try_reserve(cost) {
                let _ = self.tx.send(message);
                return;
            }
            room.await;
        }
    }
}

/// The bound sockets of a listener, ready to run.
#[derive(Debug)]
pub struct SyslogListener {
    options: SyslogOptions,
    udp: Option<std::net::UdpSocket>,
    tcp: Option<std::net::TcpListener>,
}

impl SyslogListener {
    /// Binds now, so that a busy port stops the exporter at start.
    pub fn bind(options: &SyslogOptions) -> std::io::Result<Self> {
        let listen = options.listen;
        let fail = |proto: &str, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot listen for syslog on {listen} ({proto}): {e}"))
        };
        let udp = if options.udp {
            let socket = std::net::UdpSocket::bind(listen).map_err(|e| fail("udp", e))?;
            socket.set_nonblocking(true)?;
            Some(socket)
        } else {
            None
        };
        // With port 0, TCP takes the port UDP got, so one address serves both.
        let tcp_address = match &udp {
            Some(socket) if listen.port() == 0 => socket.local_addr()?,
            _ => listen,
        };
        let tcp = if options.tcp {
            let listener = std::net::TcpListener::bind(tcp_address).map_err(|e| fail("tcp", e))?;
            listener.set_nonblocking(true)?;
            Some(listener)
        } else {
            None
        };
        Ok(SyslogListener { options: options.clone(), udp, tcp })
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The thread body: serves the sockets until the source stops; a second
    /// thread parses the queued messages.
    pub(super) fn run(self, ctx: Context, handles: SyslogHandles) {
        let Context { status, pipeline, health, stop, shutdown } = ctx;
        let name = status.spec.name.clone();
        let udp_addr = self.udp_addr().map(|a| a.to_string()).unwrap_or_else(|| "none".into());
        let tcp_addr = self.tcp_addr().map(|a| a.to_string()).unwrap_or_else(|| "none".into());
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(err) => {
                tracing::error!(source = %name, error = %err, "cannot start the syslog listener");
                status.set(SourceState::Failing);
                return;
            }
        };
        let (tx, rx) = mpsc::channel();
        let queue = Queue {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            space: Arc::new(Notify::new()),
            cap: self.options.queue_bytes.max(1),
        };
        let parser = {
            // Not the whole queue: the parser must not hold a sender, or the
            // channel would never close and the parser never end.
            let (queued, space) = (Arc::clone(&queue.queued), Arc::clone(&queue.space));
            let health = health.clone();
            std::thread::Builder::new()
                .name(format!("syslog parser {name}"))
                .spawn(move || parse_messages(rx, &queued, &space, pipeline, &health))
        };
        let parser = match parser {
            Ok(thread) => thread,
            Err(err) => {
                tracing::error!(source = %name, error = %err, "cannot start the syslog parser thread");
                status.set(SourceState::Failing);
                return;
            }
        };
        tracing::info!(source = %name, udp = %udp_addr, tcp = %tcp_addr, "syslog listening");
        status.set(SourceState::Open);
        let options = self.options.clone();
        runtime.block_on(async {
            let stopped = async {
                tokio::select! {
                    () = stop.token.cancelled() => {}
                    () = shutdown.triggered() => {}
                }
            };
            let udp = serve_udp(self.udp, &queue, &handles, options.max_message_bytes);
            let tcp = serve_tcp(self.tcp, &queue, &handles, &options, &name);
            tokio::select! {
                () = stopped => {}
                () = async { tokio::join!(udp, tcp); } => {}
            }
        });
        // Dropping the runtime ends the connection tasks; the last sender
        // goes with `queue`, which ends the parser once it has drained.
        runtime.shutdown_background();
        drop(queue);
        let _ = parser.join();
    }
}

async fn serve_udp(socket: Option<std::net::UdpSocket>, queue: &Queue, handles: &SyslogHandles, max: usize) {
    let Some(socket) = socket else { return };
    let socket = match tokio::net::UdpSocket::from_std(socket) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "cannot serve syslog over UDP");
            return;
        }
    };
    // One byte more than allowed, to tell an oversized datagram.
    let mut buf = vec![0u8; max + 1];
    loop {
        let n = match socket.recv_from(&mut buf).await {
            Ok((n, _)) => n,
            Err(err) => {
                tracing::debug!(error = %err, "syslog UDP receive failed");
                continue;
            }
        };
        let truncated = n > max;
        let mut framer = SyslogFramer::new(max);
        framer.state = FrameState::Line;
        let mut message = None;
        let data = &buf[..n.min(max)];
        framer.push(data, &mut |m: &[u8], t| message = Some(Message { bytes: m.to_vec(), truncated: t || truncated }));
        framer.finish(&mut |m: &[u8], t| message = Some(Message { bytes: m.to_vec(), truncated: t || truncated }));
        if let Some(message) = message {
            if !queue.offer(message) {
                handles.dropped(DropReason::Overload);
            }
        }
    }
}

async fn serve_tcp(
    listener: Option<std::net::TcpListener>,
    queue: &Queue,
    handles: &SyslogHandles,
    options: &SyslogOptions,
    name: &str,
) {
    let Some(listener) = listener else { return };
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(error = %err, "cannot serve syslog over TCP");
            return;
        }
    };
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "syslog accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.load(Ordering::Acquire) >= options.max_connections {
            handles.dropped(DropReason::Connections);
            tracing::warn!(source = %name, %peer, limit = options.max_connections, "too many syslog connections; closing the new one");
            drop(stream);
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        handles.connection_opened();
        let (queue, handles, active, max) =
            (queue.clone(), handles.clone(), Arc::clone(&active), options.max_message_bytes);
        let name = name.to_string();
        tokio::spawn(async move {
            serve_connection(stream, &queue, &handles, max, &name, peer).await;
            active.fetch_sub(1, Ordering::AcqRel);
            handles.connection_closed();
        });
    }
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    queue: &Queue,
    handles: &SyslogHandles,
    max: usize,
    name: &str,
    peer: SocketAddr,
) {
    let mut framer = SyslogFramer::new(max);
    let mut buf = vec![0u8; 16 * 1024];
    let mut ready = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            Err(err) => {
                tracing::debug!(source = %name, %peer, error = %err, "syslog connection failed");
                0
            }
        };
        let mut collect = |m: &[u8], truncated: bool| ready.push(Message { bytes: m.to_vec(), truncated });
        let finished = if n == 0 {
            Some(framer.finish(&mut collect))
        } else {
            framer.push(&buf[..n], &mut collect);
            None
        };
        for message in ready.drain(..) {
            queue.send(message).await;
        }
        match finished {
            None => {}
            Some(Finish::Clean) => return,
            Some(Finish::Incomplete) => {
                handles.dropped(DropReason::Incomplete);
                tracing::debug!(source = %name, %peer, "syslog client disconnected in the middle of a message");
                return;
            }
        }
    }
}

/// The parser thread: every queued message through the pipeline.
fn parse_messages(
    rx: mpsc::Receiver<Message>,
    queued: &AtomicUsize,
    space: &Notify,
    mut pipeline: Pipeline,
    health: &crate::metrics::SourceHandles,
) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut bytes = 0;
        // A batch: everything queued now; the timestamp gauge once per batch.
        while let Some(message) = next {
            bytes += message.bytes.len() as u64;
            handle_message(&mut pipeline, &message.bytes, message.truncated);
            queued.fetch_sub(cost(&message), Ordering::AcqRel);
            space.notify_waiters();
            next = rx.try_recv().ok();
        }
        pipeline.add_bytes(bytes);
        let now = SystemTime::now();
        health.read_at(now);
        pipeline.end_batch(now);
    }
}

/// One message: split by `syslog_loose`, then the same parse stage as a
/// file line. A message without a program name is parsed as a plain line
/// (it may be a log line sent without a syslog header).
pub fn handle_message(pipeline: &mut Pipeline, bytes: &[u8], truncated: bool) -> Option<crate::metrics::LineResult> {
    let text = String::from_utf8_lossy(bytes);
    let message = syslog_loose::parse_message(&text, Variant::Either);
    match message.appname {
        Some(program) => {
            let pid = match &message.procid {
                Some(ProcId::Name(name)) => Some(*name),
                _ => None,
            };
            // The timestamp was parsed already; it is passed as a time.
            let envelope = Envelope {
                timestamp: Timestamp::Nil,
                host: message.hostname.unwrap_or(""),
                program,
                pid,
                message: message.msg,
            };
            Some(pipeline.process_envelope(&envelope, message.timestamp.map(SystemTime::from), truncated))
        }
        None => pipeline.process(FramedLine { bytes: text.as_bytes(), truncated }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], max: usize) -> (Vec<(String, bool)>, Finish) {
        let mut framer = SyslogFramer::new(max);
        let mut out = Vec::new();
        let mut collect = |m: &[u8], t: bool| out.push((String::from_utf8_lossy(m).into_owned(), t));
        for chunk in chunks {
            framer.push(chunk, &mut collect);
        }
        let finish = framer.finish(&mut collect);
        (out, finish)
    }

    fn whole(messages: &[&str]) -> Vec<(String, bool)> {
        messages.iter().map(|m| (m.to_string(), false)).collect()
    }

    #[test]
    fn octet_counted_and_newline_frames_mix() {
        let stream = b"11 <13>hello 1<13>line two\n5 <1>x\n<13>last without newline";
        let want = whole(&["<13>hello 1", "<13>line two", "<1>x", "<13>last without newline"]);
        for size in [1, 2, 3, 7, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(frames(&chunks, 100), (want.clone(), Finish::Clean), "chunk size {size}");
        }
    }

    #[test]
    fn oversized_messages_are_cut_and_marked() {
        let mut stream = b"20 <13>0123456789abcdef".to_vec();
        stream.extend_from_slice(b"<13>a very long newline framed message\n<13>ok\n");
        let (got, finish) = frames(&[&stream], 10);
        assert_eq!(finish, Finish::Clean);
        assert_eq!(got, vec![("<13>012345".into(), true), ("<13>a very".into(), true), ("<13>ok".into(), false)]);
    }

    #[test]
    fn a_partial_octet_frame_at_the_end_is_incomplete() {
        assert_eq!(frames(&[b"30 <13>only part"], 100), (vec![], Finish::Incomplete));
        assert_eq!(frames(&[b"12"], 100), (vec![], Finish::Incomplete));
        assert_eq!(frames(&[b"\r\n\n"], 100), (vec![], Finish::Clean));
    }

    #[test]
    fn a_full_queue_refuses_udp_messages_until_the_parser_frees_room() {
        let (tx, rx) = mpsc::channel();
        let queue = Queue { tx, queued: Arc::new(AtomicUsize::new(0)), space: Arc::new(Notify::new()), cap: 1000 };
        let message = |n: usize| Message { bytes: vec![b'x'; n], truncated: false };
        // 3 × (200 + 64) fit in 1000, a fourth does not.
        assert!((0..3).all(|_| queue.offer(message(200))));
        assert!(!queue.offer(message(200)));
        assert_eq!(queue.queued.load(Ordering::Acquire), 3 * 264);
        // The parser takes one: room for one more, not two.
        let taken = rx.try_recv().unwrap();
        queue.queued.fetch_sub(cost(&taken), Ordering::AcqRel);
        assert!(queue.offer(message(200)));
        assert!(!queue.offer(message(200)));
        // A message bigger than the whole queue still goes through an empty one.
        let (tx, _rx) = mpsc::channel();
        let empty = Queue { tx, queued: Arc::new(AtomicUsize::new(0)), space: Arc::new(Notify::new()), cap: 10 };
        assert!(empty.offer(message(500)));
        assert!(!empty.offer(message(1)));
    }

    #[test]
    fn digits_without_a_space_are_a_line() {
        assert_eq!(frames(&[b"2026-11-28 x\n"], 100).0, whole(&["2026-11-28 x"]));
        // Leading zeros and more digits than a length has are kept as sent
        // (found by the property tests: `007` came out as `7`).
        for chunk in [1, 2, 100] {
            let stream = b"007abc\n000\n12345678901234x\n";
            let chunks: Vec<&[u8]> = stream.chunks(chunk).collect();
            assert_eq!(frames(&chunks, 100).0, whole(&["007abc", "000", "12345678901234x"]), "chunk {chunk}");
        }
    }
}
