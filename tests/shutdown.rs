//! Graceful shutdown and the systemd protocol, through the real binary as a child
//! process: `READY=1`, `WATCHDOG=1` (withheld while the store refuses writes) and
//! `STOPPING=1` on a real `NOTIFY_SOCKET`; SIGTERM finishes requests in flight and
//! is bounded; SIGTERM in the middle of a schedule against an external simulated
//! carrier loses nothing and dials no lead twice after the restart.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dialer::app::{HTTP_GRACE, SHUTDOWN_BUDGET};
use support::process::{BIN, log_tail};

/// `dialer serve` as a child, with or without a notify socket.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    /// `watchdog_usec`: `WATCHDOG_USEC` as systemd would set it for `WatchdogSec=`.
    fn start(config: &Path, log: &Path, notify: Option<&Path>, watchdog_usec: Option<u64>) -> Serve {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(config).arg("serve").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_file);
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
        if let Some(socket) = notify {
            cmd.env("NOTIFY_SOCKET", socket);
        }
        if let Some(usec) = watchdog_usec {
            cmd.env("WATCHDOG_USEC", usec.to_string());
        }
        Serve { child: cmd.spawn().expect("start dialer serve"), log: log.to_path_buf() }
    }

    /// SIGTERM, as `systemctl stop` sends (`kill` is a shell builtin everywhere).
    fn terminate(&self) {
        let kill = format!("kill -TERM {}", self.child.id());
        assert!(Command::new("sh").args(["-c", &kill]).status().unwrap().success(), "SIGTERM");
    }

    /// Waits for the process to exit; panics with the log's tail after `timeout`.
    fn exit_within(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}; log:\n{}", self.tail());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn tail(&self) -> String {
        log_tail(&self.log, 4000)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service manager's end of `NOTIFY_SOCKET`: a unix datagram socket.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        Notify { socket: UnixDatagram::bind(&path).unwrap(), path, seen: Vec::new() }
    }

    /// The next datagram's lines, or None at `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<Vec<String>> {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        self.socket.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        self.seen.push(text.clone());
        Some(text.lines().map(String::from).collect())
    }

    /// Waits for a datagram with the line `line` and returns its lines; panics with
    /// what arrived instead.
    fn expect(&mut self, line: &str, within: Duration, serve: &Serve) -> Vec<String> {
        let deadline = Instant::now() + within;
        while let Some(lines) = self.next(deadline) {
            if lines.iter().any(|l| l == line) {
                return lines;
            }
        }
        panic!("no {line} within {within:?}; received {:?}; log:\n{}", self.seen, serve.tail());
    }

    /// How many datagrams carrying `line` arrive during `window`.
    fn count(&mut self, line: &str, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        let mut n = 0;
        while let Some(lines) = self.next(deadline) {
            n += usize::from(lines.iter().any(|l| l == line));
        }
        n
    }
}

/// A dialer with the built-in simulated carrier on a port the system picks (read
/// back from `READY=1`'s status): ports handed out and released for a child to bind
/// are soon handed out again to a parallel test.
fn simple_config(dir: &Path) -> PathBuf {
    let path = dir.join("dialer.toml");
    let db = dir.join("dialer.db");
    std::fs::write(&path, format!("[server]\nbind = \"127.0.0.1:0\"\n\n[database]\npath = \"{}\"\n", db.display()))
        .unwrap();
    path
}

/// Waits for `READY=1` and returns the address from its `STATUS=serving on ADDR`.
fn ready(notify: &mut Notify, serve: &Serve) -> SocketAddr {
    let lines = notify.expect("READY=1", Duration::from_secs(30), serve);
    let status = lines.iter().find_map(|l| l.strip_prefix("STATUS=serving on ")).expect("READY=1 carries a status");
    status.parse().unwrap_or_else(|_| panic!("status {status:?} names the address"))
}

#[test]
fn systemd_hears_ready_then_watchdog_pings_only_while_the_store_writes_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let config = simple_config(dir.path());
    let mut notify = Notify::bind(dir.path());
    // WatchdogSec=1s: a ping is due every half second.
    let mut serve = Serve::start(&config, &dir.path().join("dialer.log"), Some(&notify.path), Some(1_000_000));
    let addr = ready(&mut notify, &serve);
    assert!(notify.seen[0].starts_with("READY=1"), "READY=1 comes first: {:?}", notify.seen);
    TcpStream::connect(addr).expect("READY=1 comes after the listener is bound");
    notify.expect("WATCHDOG=1", Duration::from_secs(5), &serve);
    notify.expect("WATCHDOG=1", Duration::from_secs(5), &serve);

    // Another process holds the write lock: the watchdog's write cannot commit, so
    // systemd must hear nothing (and would restart the service after WatchdogSec).
    let locker = rusqlite::Connection::open(dir.path().join("dialer.db")).unwrap();
    locker.busy_timeout(Duration::from_secs(10)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    notify.count("WATCHDOG=1", Duration::from_millis(800)); // a ping that committed just before
    let pings_while_locked = notify.count("WATCHDOG=1", Duration::from_secs(3));
    locker.execute_batch("COMMIT").unwrap();
    assert_eq!(pings_while_locked, 0, "pinged while the database refused writes: {:?}", notify.seen);
    notify.expect("WATCHDOG=1", Duration::from_secs(10), &serve);
    assert!(serve.tail().contains("watchdog: not pinging systemd"), "the skip is logged:\n{}", serve.tail());

    serve.terminate();
    let signalled = Instant::now();
    notify.expect("STOPPING=1", Duration::from_secs(5), &serve);
    let status = serve.exit_within(SHUTDOWN_BUDGET + Duration::from_secs(5));
    assert!(status.success(), "{status}; log:\n{}", serve.tail());
    let took = signalled.elapsed();
    eprintln!("idle shutdown: {took:?}");
    assert!(took < Duration::from_secs(5), "an idle dialer stops at once, took {took:?}");
}

/// Reads one HTTP response head (up to the blank line).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A webhook POST whose headers the server has read and whose body it is waiting
/// for: `100 Continue` is sent when the handler starts reading the body.
fn request_in_flight(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /webhooks/twilio/status?attempt_id=1 HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let interim = read_head(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {interim:?}");
    stream.write_all(&body.as_bytes()[..body.len() / 2]).unwrap();
    stream
}

#[test]
fn sigterm_finishes_requests_in_flight_refuses_new_ones_and_cuts_stalled_ones_at_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let config = simple_config(dir.path());
    let mut notify = Notify::bind(dir.path());
    let mut serve = Serve::start(&config, &dir.path().join("dialer.log"), Some(&notify.path), None);
    let addr = ready(&mut notify, &serve);

    let body = "CallSid=CA0123456789abcdef0123456789abcdef&CallStatus=completed&SequenceNumber=9";
    let mut finishing = request_in_flight(addr, body);
    let mut stalled = request_in_flight(addr, body);
    serve.terminate();
    let signalled = Instant::now();
    notify.expect("STOPPING=1", Duration::from_secs(5), &serve);

    // The listener closes: new connections are refused from now on.
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after STOPPING=1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The request in flight is finished and answered (unsigned: refused with 403).
    finishing.write_all(&body.as_bytes()[body.len() / 2..]).unwrap();
    let answer = read_head(&mut finishing);
    assert!(answer.starts_with("HTTP/1.1 403"), "the request in flight was answered: {answer:?}");

    // The stalled request holds the process only until the HTTP grace runs out.
    let status = serve.exit_within(SHUTDOWN_BUDGET + Duration::from_secs(5));
    let took = signalled.elapsed();
    eprintln!("shutdown with a stalled request: {took:?}");
    assert!(status.success(), "{status}; log:\n{}", serve.tail());
    assert!(took < HTTP_GRACE + Duration::from_secs(3), "bounded by the grace: took {took:?}");
    let mut rest = Vec::new();
    let cut = stalled.read_to_end(&mut rest).map(|_| String::from_utf8_lossy(&rest).into_owned());
    assert!(!matches!(&cut, Ok(text) if text.starts_with("HTTP/1.1 2")), "the stalled request cannot succeed: {cut:?}");
}

/// SIGTERM in the middle of a schedule, then a restart (a file of its own for length).
#[path = "shutdown/schedule.rs"]
mod schedule;
