//! A small SMTP server on 127.0.0.1 for the mail tests: EHLO, optional STARTTLS (rustls with
//! a certificate from a private CA), AUTH PLAIN/LOGIN, MAIL, RCPT, DATA. It keeps every
//! message it accepts; faults queued with `fail_next` answer a message's data with a 4xx or 5xx
//! reply, or drop the connection without answering, and keep nothing of it.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    /// (user, password) when the client logged in.
    pub auth: Option<(String, String)>,
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    gate: Gate,
    faults: Faults,
}

/// How the server answers a message's data instead of accepting it.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This reply (`451 ...` or `554 ...`), and the message is not kept.
    Reply(&'static str),
    /// The connection closed after the data, before any answer; the message is not kept.
    Drop,
}

/// Faults for the next messages, first in first out; shared by every session.
#[derive(Clone, Default)]
struct Faults(Arc<Mutex<VecDeque<Fault>>>);

/// Holds every message after its data arrived and before the server's "250" (a slow server),
/// so that a test can act while a client waits for the answer.
#[derive(Clone, Default)]
pub struct Gate {
    closed: Arc<AtomicBool>,
    waiting: Arc<AtomicBool>,
}

impl Gate {
    fn pass(&self) {
        self.waiting.store(true, Ordering::SeqCst);
        while self.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A private CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_pki() -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "votewatch test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// A port on 127.0.0.1 with nothing listening (until a server is started on it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    pub fn start(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> SmtpServer {
        SmtpServer::start_with(port, tls, false)
    }

    /// With `implicit`, TLS starts with the first byte (SMTPS) instead of after STARTTLS.
    pub fn start_with(
        port: u16,
        tls: Option<Arc<rustls::ServerConfig>>,
        implicit: bool,
    ) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Gate::default();
        let faults = Faults::default();
        let (r, s, g, f) = (received.clone(), stop.clone(), gate.clone(), faults.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(20)))
                            .unwrap();
                        let (r, tls, g, f) = (r.clone(), tls.clone(), g.clone(), f.clone());
                        std::thread::spawn(move || {
                            let _ = session(stream, tls, implicit, r, g, f);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SmtpServer {
            port,
            received,
            stop,
            thread: Some(thread),
            gate,
            faults,
        }
    }

    /// The next messages' data get these answers, one each, instead of being accepted.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.faults.0.lock().unwrap().extend(faults.iter().cloned());
    }

    /// How many queued faults have not been used yet.
    pub fn faults_left(&self) -> usize {
        self.faults.0.lock().unwrap().len()
    }

    /// From now on, every message waits for `open_gate` before it is answered.
    pub fn close_gate(&self) {
        self.gate.closed.store(true, Ordering::SeqCst);
    }

    pub fn open_gate(&self) {
        self.gate.closed.store(false, Ordering::SeqCst);
    }

    /// True once a message has waited at the closed gate.
    pub fn someone_waits(&self) -> bool {
        self.gate.waiting.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Reads one CRLF-terminated line, byte by byte (so nothing is buffered across STARTTLS).
fn line(c: &mut Conn) -> io::Result<Option<String>> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if c.read(&mut b)? == 0 {
            return Ok(if out.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&out).into_owned())
            });
        }
        out.push(b[0]);
        if out.ends_with(b"\r\n") {
            out.truncate(out.len() - 2);
            return Ok(Some(String::from_utf8_lossy(&out).into_owned()));
        }
    }
}

fn say(c: &mut Conn, text: &str) -> io::Result<()> {
    c.write_all(text.as_bytes())?;
    c.write_all(b"\r\n")?;
    c.flush()
}

fn b64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn session(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    implicit: bool,
    store: Arc<Mutex<Vec<Received>>>,
    gate: Gate,
    faults: Faults,
) -> io::Result<()> {
    let mut c = Conn::Plain(stream);
    let mut secure = false;
    if let (true, Some(cfg)) = (implicit, tls.clone()) {
        let Conn::Plain(tcp) = c else { unreachable!() };
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        c = Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
        secure = true;
    }
    let mut auth = None;
    let mut from = String::new();
    let mut to = Vec::new();
    say(&mut c, "220 votewatch-test ESMTP")?;
    while let Some(cmd) = line(&mut c)? {
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let mut caps = vec!["250-localhost"];
            if tls.is_some() && !secure {
                caps.push("250-STARTTLS");
            }
            caps.push("250-AUTH PLAIN LOGIN");
            caps.push("250 8BITMIME");
            say(&mut c, &caps.join("\r\n"))?;
        } else if upper.starts_with("HELO")
            || upper.starts_with("NOOP")
            || upper.starts_with("RSET")
        {
            say(&mut c, "250 OK")?;
        } else if upper.starts_with("STARTTLS") {
            let Some(cfg) = tls.clone() else {
                say(&mut c, "502 no TLS here")?;
                continue;
            };
            say(&mut c, "220 go ahead")?;
            let Conn::Plain(tcp) = c else { unreachable!() };
            let conn = rustls::ServerConnection::new(cfg).unwrap();
            c = Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
            secure = true;
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd[10..].trim().to_string();
            let arg = if arg.is_empty() {
                say(&mut c, "334 ")?;
                line(&mut c)?.unwrap_or_default()
            } else {
                arg
            };
            let decoded = b64(&arg);
            let parts: Vec<&str> = decoded.split('\0').collect();
            auth = Some((
                parts.get(1).unwrap_or(&"").to_string(),
                parts.get(2).unwrap_or(&"").to_string(),
            ));
            say(&mut c, "235 OK")?;
        } else if upper.starts_with("AUTH LOGIN") {
            say(&mut c, "334 VXNlcm5hbWU6")?;
            let user = b64(&line(&mut c)?.unwrap_or_default());
            say(&mut c, "334 UGFzc3dvcmQ6")?;
            let pass = b64(&line(&mut c)?.unwrap_or_default());
            auth = Some((user, pass));
            say(&mut c, "235 OK")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['<', '>'])
                .to_string();
            to.clear();
            say(&mut c, "250 OK")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_string());
            say(&mut c, "250 OK")?;
        } else if upper.starts_with("DATA") {
            say(&mut c, "354 go on")?;
            let mut data = Vec::new();
            while let Some(l) = line(&mut c)? {
                if l == "." {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                data.extend_from_slice(l.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            gate.pass();
            let fault = faults.0.lock().unwrap().pop_front();
            match fault {
                Some(Fault::Reply(reply)) => {
                    say(&mut c, reply)?;
                    continue;
                }
                Some(Fault::Drop) => return Ok(()),
                None => {}
            }
            store.lock().unwrap().push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
                tls: secure,
                auth: auth.clone(),
            });
            say(&mut c, "250 queued")?;
        } else if upper.starts_with("QUIT") {
            say(&mut c, "221 bye")?;
            return Ok(());
        } else {
            say(&mut c, "500 what?")?;
        }
    }
    Ok(())
}
